//! `/api/v1/batches`: issuance orders (発券指示).

use crate::app::AppState;
use crate::audit;
use crate::error::Result;
use crate::http::extract::Staff;
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

/// `POST /api/v1/batches` (office).
pub async fn create(
    state: web::Data<AppState>,
    Staff(user): Staff,
    body: web::Json<NewBatch>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let ids = body.into_inner().application_ids;
    let batch = state
        .with_write(move |c| orders::order(c, &user, &ids, now))
        .await?;
    Ok(HttpResponse::Created().json(batch))
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
