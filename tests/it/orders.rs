//! Issuance orders: only verified applications, never by the person who recorded them
//! (separation of duties, refused and audited), and never twice.

use crate::common::*;
use crate::intake::application;
use actix_web::http::StatusCode;
use actix_web::test;
use kofu::audit::Actor;
use kofu::registry::extract::{self, DEMO_EXTRACT};
use kofu::service::users::Role;
use serde_json::json;

#[actix_web::test]
async fn orders_respect_separation_of_duties() {
    for env in envs() {
        extract::import_extract(
            &mut env.conn(),
            &data_key(),
            DEMO_EXTRACT.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let recorder = ready_user(&env, "office-a", Role::Office, None);
        let orderer = ready_user(&env, "office-b", Role::Office, None);
        let clerk = ready_user(&env, "clerk-131016", Role::Clerk, Some("131016"));
        let app = test::init_service(kofu::http::app(state(&env))).await;

        let mut ids = Vec::new();
        for (name, kana, dob, sex, address) in [
            (
                "高橋 一郎",
                "タカハシ イチロウ",
                "S35.10.10",
                "male",
                "千代田区丸の内1-2-3",
            ),
            (
                "山崎 花子",
                "ヤマザキ ハナコ",
                "1975-04-01",
                "female",
                "千代田区霞が関1-2-3",
            ),
            (
                "架空 人物",
                "カクウ ジンブツ",
                "2000-01-01",
                "male",
                "千代田区千代田9-9",
            ),
        ] {
            let mut a = application(name, kana, dob, address, "131016");
            a["sex"] = json!(sex);
            let (st, b) = call!(app, post, "/api/v1/applications", recorder, a);
            assert_eq!(st, StatusCode::CREATED);
            ids.push(b["id"].as_i64().unwrap());
        }
        for id in &ids[..2] {
            let (st, b) = call!(
                app,
                post,
                format!("/api/v1/applications/{id}/decision"),
                clerk,
                json!({"approve": true})
            );
            assert_eq!(st, StatusCode::OK, "{b}");
        }

        // The person who recorded them may not order them.
        let (st, b) = call!(
            app,
            post,
            "/api/v1/batches",
            recorder,
            json!({"application_ids": &ids[..2]})
        );
        assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains("another office member")
        );
        let audit = kofu::audit::list(&mut env.conn(), None, 200).unwrap();
        assert!(audit.iter().any(|e| e.action == "access.denied"
            && e.actor == "office-a"
            && e.detail.contains("separation of duties")));

        // Only verified applications; the pending one is named.
        let (st, b) = call!(
            app,
            post,
            "/api/v1/batches",
            orderer,
            json!({"application_ids": &ids})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(b["errors"][0]["field"], format!("application {}", ids[2]));
        assert_eq!(
            call!(
                app,
                post,
                "/api/v1/batches",
                orderer,
                json!({"application_ids": []})
            )
            .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // Another office member orders them, once.
        let (st, batch) = call!(
            app,
            post,
            "/api/v1/batches",
            orderer,
            json!({"application_ids": &ids[..2]})
        );
        assert_eq!(st, StatusCode::CREATED, "{batch}");
        assert_eq!(batch["application_count"], 2);
        let (st, again) = call!(
            app,
            post,
            "/api/v1/batches",
            orderer,
            json!({"application_ids": &ids[..2]})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{again}");
        let id = batch["id"].as_i64().unwrap();
        let (st, shown) = call!(app, get, format!("/api/v1/batches/{id}"), orderer);
        assert_eq!(st, StatusCode::OK);
        let states: Vec<&str> = shown["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["ordered", "ordered"]);
        kofu::audit::verify(&mut env.conn()).unwrap();
        let audit = kofu::audit::list(&mut env.conn(), None, 50).unwrap();
        assert!(audit.iter().any(|e| e.action == "batch.order"
            && e.actor == "office-b"
            && e.detail == "applications=2"));
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.action == "application.ordered")
                .count(),
            2
        );
    }
}
