//! Intake and four-field verification through the API, as the office and the clerks use
//! them: applications in era form and half-width kana, the registry check with verdicts,
//! clerks confined to their municipality (refusals audited), an unreachable registry that
//! loses nothing, and personal data that never sits in the database in clear.

use crate::common::*;
use actix_web::http::StatusCode;
use actix_web::test;
use kofu::audit::Actor;
use kofu::registry::extract::{self, DEMO_EXTRACT};
use kofu::service::users::Role;
use serde_json::{Value, json};
use std::sync::Arc;

fn clerk_token(env: &Env, muni: &str) -> String {
    ready_user(env, &format!("clerk-{muni}"), Role::Clerk, Some(muni))
}

pub fn application(name: &str, kana: &str, dob: &str, address: &str, muni: &str) -> Value {
    json!({
        "kind": "new", "name": name, "name_kana": kana, "birth_date": dob, "sex": "male",
        "address": address, "postal_code": "〒100-0005", "municipality_code": muni, "delivery": "mail",
        "email": "applicant@example.jp",
        "forms": {"application": true, "power_of_attorney": true, "consent": true}
    })
}

#[actix_web::test]
async fn intake_check_and_decision_through_the_api() {
    for env in envs() {
        extract::import_extract(
            &mut env.conn(),
            &data_key(),
            DEMO_EXTRACT.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let tokens = tokens(&env);
        let office = &tokens[&Role::Office];
        let clerk = &tokens[&Role::Clerk]; // 131016
        let osaka = clerk_token(&env, "271004");
        let app = test::init_service(kofu::http::app(state(&env))).await;

        // Era date, half-width kana, 高 for the registry's 髙, address in numbers for 一丁目2番3号.
        let (st, body) = call!(
            app,
            post,
            "/api/v1/applications",
            office,
            application(
                "高橋 一郎",
                "ﾀｶﾊｼ ｲﾁﾛｳ",
                "S35.10.10",
                "千代田区丸の内1-2-3",
                "131016"
            )
        );
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert_eq!(body["state"], "pending_verification");
        let id = body["id"].as_i64().unwrap();
        let (_, got) = call!(app, get, format!("/api/v1/applications/{id}"), office);
        assert_eq!(
            got["applicant"]["name_kana"], "タカハシ\u{3000}イチロウ",
            "stored as full-width katakana"
        );
        assert_eq!(got["applicant"]["birth_date_era"], "昭和35年10月10日");
        assert_eq!(got["applicant"]["postal_code"], "1000005");

        // The clerk of 131016 sees it and checks it.
        let (st, queue) = call!(app, get, "/api/v1/verification", clerk);
        assert_eq!(st, StatusCode::OK);
        assert!(queue.as_array().unwrap().iter().any(|a| a["id"] == id));
        let (st, check) = call!(app, post, format!("/api/v1/applications/{id}/check"), clerk);
        assert_eq!(st, StatusCode::OK, "{check}");
        assert_eq!(check["registry_status"], "resident");
        assert_eq!(
            check["verdicts"],
            json!({"name": "equivalent", "name_kana": "exact", "birth_date": "exact", "sex": "exact", "address": "equivalent"})
        );
        assert_eq!(check["registry"]["name"], "髙橋 一郎");
        assert_eq!(check["approvable"], true);

        // The clerk of 271004 can neither list, view, check nor decide it.
        let (_, q) = call!(app, get, "/api/v1/verification", osaka);
        assert!(!q.as_array().unwrap().iter().any(|a| a["id"] == id));
        assert_eq!(
            call!(app, get, format!("/api/v1/applications/{id}"), osaka).0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call!(app, post, format!("/api/v1/applications/{id}/check"), osaka).0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call!(
                app,
                post,
                format!("/api/v1/applications/{id}/decision"),
                osaka,
                json!({"approve": true})
            )
            .0,
            StatusCode::FORBIDDEN
        );
        let denied = kofu::audit::list(&mut env.conn(), None, 1000).unwrap();
        assert_eq!(
            denied
                .iter()
                .filter(|e| e.action == "access.denied"
                    && e.actor == "clerk-271004"
                    && e.target == format!("application:{id}"))
                .count(),
            3
        );

        // Rejecting needs a reason; approving works once; a second decision conflicts.
        let (st, _) = call!(
            app,
            post,
            format!("/api/v1/applications/{id}/decision"),
            clerk,
            json!({"approve": false})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let (st, body) = call!(
            app,
            post,
            format!("/api/v1/applications/{id}/decision"),
            clerk,
            json!({"approve": true, "reason": "4情報一致"})
        );
        assert_eq!(
            (st, body["state"].as_str()),
            (StatusCode::OK, Some("verified"))
        );
        let (st, _) = call!(
            app,
            post,
            format!("/api/v1/applications/{id}/decision"),
            clerk,
            json!({"approve": false, "reason": "x"})
        );
        assert_eq!(st, StatusCode::CONFLICT);

        // Awkward cases against the demo extract.
        for (name, kana, dob, sex, address, status, approvable) in [
            (
                "佐藤 陽子",
                "サトウ ヨウコ",
                "1970-07-07",
                "female",
                "千代田区大手町1-1-1",
                "ambiguous",
                false,
            ),
            (
                "木村 誠",
                "キムラ マコト",
                "昭和25年3月3日",
                "male",
                "千代田区丸の内3-3-3",
                "moved_out",
                false,
            ),
            (
                "森 恵子",
                "モリ ケイコ",
                "1940-12-01",
                "female",
                "千代田区大手町2-2-2",
                "deceased",
                false,
            ),
            (
                "架空 人物",
                "カクウ ジンブツ",
                "2000-01-01",
                "male",
                "千代田区千代田9-9",
                "not_found",
                false,
            ),
            (
                "山崎 花子",
                "やまざき はなこ",
                "昭和50年4月1日",
                "female",
                "千代田区霞が関一丁目2番3号",
                "resident",
                true,
            ),
            (
                "山崎 花子",
                "ヤマザキ ハナコ",
                "1975-04-01",
                "male",
                "千代田区霞が関1-2-3",
                "resident",
                false,
            ),
            (
                "渡辺 真",
                "ワタナベ マコト",
                "1984-02-29",
                "male",
                "千代田区永田町1-7-2",
                "resident",
                false,
            ),
        ] {
            let mut a = application(name, kana, dob, address, "131016");
            a["sex"] = json!(sex);
            let (_, b) = call!(app, post, "/api/v1/applications", office, a);
            let id = b["id"].as_i64().unwrap_or_else(|| panic!("{name}: {b}"));
            let (_, c) = call!(app, post, format!("/api/v1/applications/{id}/check"), clerk);
            assert_eq!(c["registry_status"], status, "{name}: {c}");
            assert_eq!(c["approvable"], approvable, "{name}: {c}");
            if !approvable {
                let (st, _) = call!(
                    app,
                    post,
                    format!("/api/v1/applications/{id}/decision"),
                    clerk,
                    json!({"approve": true})
                );
                assert_eq!(st, StatusCode::CONFLICT, "{name}: approval must be refused");
            }
        }
        let (_, c) = call!(
            app,
            get,
            "/api/v1/applications?state=pending_verification",
            office
        );
        assert_eq!(c.as_array().unwrap().len(), 7);
        assert!(
            c.to_string().find("渡辺").is_none(),
            "the list carries no personal data"
        );

        // Incomplete forms wait; recording the last form sends the application on.
        let mut incomplete = application(
            "鈴木 一郎",
            "スズキ イチロウ",
            "1980-01-01",
            "千代田区千代田1-1",
            "131016",
        );
        incomplete["forms"] =
            json!({"application": true, "power_of_attorney": false, "consent": true});
        let (_, b) = call!(app, post, "/api/v1/applications", office, incomplete);
        assert_eq!(b["state"], "documents_incomplete");
        let id = b["id"].as_i64().unwrap();
        let (_, b) = call!(
            app,
            post,
            format!("/api/v1/applications/{id}/forms"),
            office,
            json!({"application": true, "power_of_attorney": true, "consent": true})
        );
        assert_eq!(b["state"], "pending_verification");
    }
}

#[actix_web::test]
async fn bad_intake_names_every_field_and_stores_nothing() {
    for env in envs() {
        let tokens = tokens(&env);
        let app = test::init_service(kofu::http::app(state(&env))).await;
        let before = kofu::audit::verify(&mut env.conn()).unwrap().entries;
        let (st, body) = call!(
            app,
            post,
            "/api/v1/applications",
            tokens[&Role::Office],
            json!({"kind": "lost", "name": "", "name_kana": "山田", "birth_date": "平成31年5月1日", "sex": "x",
                   "address": "", "postal_code": "12-34", "municipality_code": "131017", "delivery": "drone", "email": "no-at-sign"})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "kind",
                "name",
                "name_kana",
                "birth_date",
                "sex",
                "address",
                "postal_code",
                "municipality_code",
                "delivery",
                "email"
            ]
        );
        assert!(
            body["errors"][3]["message"]
                .as_str()
                .unwrap()
                .contains("令和元年5月1日")
        );
        let (st, body) = call!(
            app,
            post,
            "/api/v1/applications",
            tokens[&Role::Office],
            json!({"kind": "new", "surprise": 1})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let big = "x".repeat(100_000);
        let (st, body) = call!(
            app,
            post,
            "/api/v1/applications",
            tokens[&Role::Office],
            json!({"kind": big})
        );
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["error"].as_str().unwrap().contains("larger than"),
            "{body}"
        );
        use diesel::prelude::*;
        let n: i64 = kofu::db::schema::applications::table
            .count()
            .get_result(&mut *env.conn())
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            kofu::audit::verify(&mut env.conn()).unwrap().entries,
            before
        );
    }
}

#[actix_web::test]
async fn unreachable_registry_loses_nothing() {
    let env = envs().remove(0);
    let tokens = tokens(&env);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut st = state(&env);
    st.registry = Some(Arc::new(
        kofu::registry::http::HttpRegistry::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            std::time::Duration::from_secs(1),
        )
        .unwrap(),
    ));
    let app = test::init_service(kofu::http::app(st)).await;
    let (_, b) = call!(
        app,
        post,
        "/api/v1/applications",
        tokens[&Role::Office],
        application(
            "山田 太郎",
            "ヤマダ タロウ",
            "1960-10-10",
            "千代田区千代田1-1",
            "131016"
        )
    );
    let id = b["id"].as_i64().unwrap();
    let (st, body) = call!(
        app,
        post,
        format!("/api/v1/applications/{id}/check"),
        tokens[&Role::Clerk]
    );
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{body}"
    );
    let (_, got) = call!(
        app,
        get,
        format!("/api/v1/applications/{id}"),
        tokens[&Role::Office]
    );
    assert_eq!(got["state"], "pending_verification");
    assert!(
        kofu::audit::list(&mut env.conn(), None, 50)
            .unwrap()
            .iter()
            .any(|e| e.action == "registry.unavailable")
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[actix_web::test]
async fn personal_data_is_never_stored_in_clear() {
    for env in envs() {
        extract::import_extract(
            &mut env.conn(),
            &data_key(),
            DEMO_EXTRACT.as_bytes(),
            &Actor::new("t", "cli"),
            now(),
        )
        .unwrap();
        let tokens = tokens(&env);
        let app = test::init_service(kofu::http::app(state(&env))).await;
        let (st, _) = call!(
            app,
            post,
            "/api/v1/applications",
            tokens[&Role::Office],
            application(
                "暗号 確認太郎",
                "アンゴウ カクニンタロウ",
                "1960-10-10",
                "千代田区秘密町7-7-7",
                "131016"
            )
        );
        assert_eq!(st, StatusCode::CREATED);
        let needles: Vec<&str> = vec![
            "暗号 確認太郎",
            "確認太郎",
            "アンゴウ",
            "秘密町",
            "髙橋 一郎",
            "丸の内一丁目2番3号",
            "applicant@example.jp",
        ];
        drop(app);
        let dump = database_bytes(&env, &["applications", "residents"]);
        assert!(dump.len() > 10_000, "the dump holds the rows");
        for n in needles {
            assert!(
                !contains(&dump, n.as_bytes()),
                "{}: {n:?} found in clear",
                env.db.label
            );
            assert!(
                !contains(&dump, hex::encode(n.as_bytes()).as_bytes()),
                "{}: {n:?} found hex-encoded",
                env.db.label
            );
        }
    }
}
