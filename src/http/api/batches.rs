//! `/api/v1/batches`: issuance orders (発券指示).

use crate::app::AppState;
use crate::audit;
use crate::error::Result;
use crate::http::extract::{Body, Staff};
use crate::service::orders;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Body of `POST /api/v1/batches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    /// Verified applications to order.
    pub application_ids: Vec<i64>,
}

/// `POST /api/v1/batches` (office); with `Idempotency-Key`, a retry gets the first answer.
pub async fn create(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    Staff(user): Staff,
    body: Body<NewBatch>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let ids = body.into_inner().application_ids;
    let idem = crate::http::idempotency_key(&req)?;
    let request =
        serde_json::to_vec(&ids).map_err(|e| crate::error::Error::Internal(e.to_string()))?;
    let answer = state
        .with_write(move |c| {
            crate::service::idempotency::once(
                c,
                &crate::service::idempotency::Request {
                    user_id: user.id,
                    scope: "POST /api/v1/batches",
                    key: idem.as_deref(),
                    body: &request,
                },
                now,
                crate::http::error::status_u16,
                |c| {
                    let batch = orders::order(c, &user, &ids, now)?;
                    Ok((
                        201,
                        serde_json::to_value(&batch)
                            .map_err(|e| crate::error::Error::Internal(e.to_string()))?,
                    ))
                },
            )
        })
        .await?;
    crate::http::answer(&answer)
}

/// `GET /api/v1/batches/{id}` (office, operator); the read is audited.
pub async fn get(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let id = id.into_inner();
    let (batch, apps, cards) = state
        .with_write(move |c| {
            let (batch, apps) = orders::show(c, id)?;
            let cards = crate::service::batches::cards(c, id)?;
            audit::append(
                c,
                now.timestamp(),
                &user.actor(),
                "batch.view",
                &format!("batch:{id}"),
                "",
            )?;
            Ok((batch, apps, cards))
        })
        .await?;
    let mut counts = std::collections::BTreeMap::new();
    for card in &cards {
        *counts.entry(card.state.clone()).or_insert(0usize) += 1;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "batch": batch,
        "cards": counts,
        "card_numbers": cards.iter().map(|c| serde_json::json!({"application_id": c.application_id, "card_number": c.card_number, "state": c.state})).collect::<Vec<_>>(),
        "applications": apps.into_iter().map(|(id, reference, state)| serde_json::json!({"id": id, "reference": reference, "state": state})).collect::<Vec<_>>(),
    })))
}
