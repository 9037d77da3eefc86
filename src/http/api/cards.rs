//! Cards and delivery: a batch's documents as PDF, running a batch, and recording a card's
//! way to its holder.

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{Body, Staff};
use crate::service::auth::StaffUser;
use crate::service::delivery::{self, Event};
use crate::service::revocation;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

fn pdf(bytes: Vec<u8>, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("cache-control", "no-store"))
        .body(bytes)
}

/// Query of the labels document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelQuery {
    /// `sheet` (A4, ten per page; the default) or `single` (one per page).
    #[serde(default)]
    pub layout: Option<String>,
}

fn nothing(what: &str) -> Error {
    Error::Conflict(format!("nothing to print: {what}"))
}

/// Which document of a batch.
enum Document {
    Labels { single: bool },
    PinMailers,
    CounterNotices,
}

/// Read the batch's data (audited), then render the document off the async threads.
async fn document(
    state: &AppState,
    user: StaffUser,
    id: i64,
    which: Document,
) -> Result<HttpResponse> {
    let (key, font, office) = (
        state.data_key()?,
        state.font()?,
        state.config.delivery.office(),
    );
    let now = state.clock.now();
    let (bytes, name) = match which {
        Document::Labels { single } => {
            let list = state
                .with_write(move |c| delivery::labels(c, &key, &user, id, now))
                .await?;
            if list.is_empty() {
                return Err(nothing("mailing labels (no written card goes by mail)"));
            }
            let bytes = web::block(move || {
                if single {
                    crate::pdf::single_labels(&font, &office, &list)
                } else {
                    crate::pdf::label_sheets(&font, &office, &list)
                }
            })
            .await
            .map_err(Error::from)??;
            (bytes, "labels")
        }
        Document::PinMailers => {
            let list = state
                .with_write(move |c| delivery::pin_mailers(c, &key, &user, id, now))
                .await?;
            if list.is_empty() {
                return Err(nothing("PIN mailers (every card's PINs are gone)"));
            }
            let bytes = web::block(move || crate::pdf::pin_mailers(&font, &office, &list))
                .await
                .map_err(Error::from)??;
            (bytes, "pin-mailers")
        }
        Document::CounterNotices => {
            let list = state
                .with_write(move |c| delivery::counter_notices(c, &key, &user, id, now))
                .await?;
            if list.is_empty() {
                return Err(nothing(
                    "counter notices (no written card waits at the counter)",
                ));
            }
            let bytes = web::block(move || crate::pdf::counter_notices(&font, &office, &list))
                .await
                .map_err(Error::from)??;
            (bytes, "counter-notices")
        }
    };
    Ok(pdf(bytes, &format!("{name}-{id}.pdf")))
}

/// `GET /api/v1/batches/{id}/labels.pdf` (office).
pub async fn labels(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    query: web::Query<LabelQuery>,
) -> Result<HttpResponse> {
    let single = match query.layout.as_deref() {
        None | Some("sheet") => false,
        Some("single") => true,
        Some(other) => {
            return Err(Error::bad(
                "layout",
                format!("expected sheet or single, got {other:?}"),
            ));
        }
    };
    document(&state, user, id.into_inner(), Document::Labels { single }).await
}

/// `GET /api/v1/batches/{id}/pin-mailers.pdf` (office).
pub async fn pin_mailers(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    document(&state, user, id.into_inner(), Document::PinMailers).await
}

/// `GET /api/v1/batches/{id}/counter-notices.pdf` (office).
pub async fn counter_notices(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    document(&state, user, id.into_inner(), Document::CounterNotices).await
}

/// Body of `POST /api/v1/cards/{number}/delivery`.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeliveryEvent {
    /// Posted by restricted-delivery mail.
    Shipped {
        /// Tracking number.
        tracking_number: String,
    },
    /// Delivered by the post office.
    Delivered,
    /// Returned undeliverable.
    Returned,
    /// Handed over at the counter.
    HandedOver {
        /// The identity document was checked.
        identity_checked: bool,
    },
}

/// `POST /api/v1/cards/{number}/delivery` (office).
pub async fn record(
    state: web::Data<AppState>,
    Staff(user): Staff,
    number: web::Path<String>,
    body: Body<DeliveryEvent>,
) -> Result<HttpResponse> {
    let event = match body.into_inner() {
        DeliveryEvent::Shipped { tracking_number } => Event::Shipped { tracking_number },
        DeliveryEvent::Delivered => Event::Delivered,
        DeliveryEvent::Returned => Event::Returned,
        DeliveryEvent::HandedOver { identity_checked } => Event::HandedOver { identity_checked },
    };
    let number = crate::card::number::parse(&number)?;
    let now = state.clock.now();
    let key = state.data_key()?;
    let card = state
        .with_write(move |c| delivery::record(c, &key, &user, &number, &event, now))
        .await?;
    Ok(HttpResponse::Ok().json(card_json(&card)))
}

fn card_json(card: &crate::db::models::card::CardRow) -> serde_json::Value {
    serde_json::json!({
        "card_number": card.card_number,
        "state": card.state,
        "status": card.status,
        "batch_id": card.batch_id,
        "application_id": card.application_id,
        "keygen": card.keygen,
        "expires_on": card.expires_on,
        "tracking_number": card.tracking_number,
        "written_at": card.written_at,
        "shipped_at": card.shipped_at,
        "delivered_at": card.delivered_at,
        "returned_at": card.returned_at,
        "handed_over_at": card.handed_over_at,
    })
}

/// `GET /api/v1/cards/{number}` (office, operator): the card's state (nothing personal).
pub async fn get(
    state: web::Data<AppState>,
    Staff(_user): Staff,
    number: web::Path<String>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    let (card, certs) = state
        .with_conn(move |c| {
            let card = crate::db::models::card::CardRow::by_number(c, &number)?
                .ok_or_else(|| Error::NotFound(format!("card {number}")))?;
            let certs = revocation::certificates_view(c, card.id)?;
            Ok((card, certs))
        })
        .await?;
    let mut v = card_json(&card);
    v["certificates"] = serde_json::to_value(certs).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(v))
}

/// Body of a loss or theft report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossReport {
    /// `lost` or `stolen`.
    pub kind: String,
    /// The caller's answers to the identity questions (at least two).
    pub answers: revocation::IdentityAnswers,
}

fn outcome_json(o: &revocation::Outcome) -> serde_json::Value {
    serde_json::json!({
        "card_number": o.card_number,
        "status": o.card_status,
        "certificates": o.certificates,
        "follow_up": o.follow_up.as_ref().map(|(id, r)| serde_json::json!({"id": id, "reference": r})),
    })
}

/// `POST /api/v1/cards/{number}/loss-report` (call centre): both certificates on hold at once.
pub async fn report_loss(
    state: web::Data<AppState>,
    Staff(user): Staff,
    number: web::Path<String>,
    body: Body<LossReport>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let stolen = match body.kind.as_str() {
        "lost" => false,
        "stolen" => true,
        other => {
            return Err(Error::bad(
                "kind",
                format!("{other:?}: expected lost or stolen"),
            ));
        }
    };
    let number = crate::card::number::parse(&number)?;
    let (key, now) = (state.data_key()?, state.clock.now());
    let outcome = state
        .with_write(move |c| {
            revocation::report_loss(
                c,
                &key,
                &number,
                stolen,
                &body.answers,
                user.id,
                &user.actor(),
                now,
            )
        })
        .await?;
    state.refresh_ocsp().await;
    Ok(HttpResponse::Ok().json(outcome_json(&outcome)))
}

/// Body of an office status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// revoke, lift_hold, holder_request or destroy.
    pub action: revocation::Action,
}

/// `POST /api/v1/cards/{number}/status` (office).
pub async fn change_status(
    state: web::Data<AppState>,
    Staff(user): Staff,
    number: web::Path<String>,
    body: Body<StatusChange>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    let action = body.into_inner().action;
    let now = state.clock.now();
    let outcome = state
        .with_write(move |c| {
            revocation::office_action(c, &number, action, user.id, &user.actor(), now)
        })
        .await?;
    state.refresh_ocsp().await;
    Ok(HttpResponse::Ok().json(outcome_json(&outcome)))
}

/// Body of a renewal at the counter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalBody {
    /// The card's PIN, typed by the holder on the counter's PIN pad. Used once, never kept.
    pub pin: String,
}

/// `POST /api/v1/cards/{number}/renewal` (operator): a new signing key and certificate on
/// the holder's card for its verified renewal application.
pub async fn renew(
    state: web::Data<AppState>,
    Staff(user): Staff,
    number: web::Path<String>,
    body: Body<RenewalBody>,
) -> Result<HttpResponse> {
    let number = crate::card::number::parse(&number)?;
    let renewed = state
        .renew_on_card(user.actor(), number, body.into_inner().pin)
        .await?;
    Ok(HttpResponse::Ok().json(renewed))
}

/// `POST /api/v1/batches/{id}/run` (operator): 202, the run continues in the background.
pub async fn run(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    state.start_batch(user.actor(), id).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"batch": id, "running": true})))
}
