//! Issuance batches for operators and the office: the list, one batch with its progress
//! (the page refreshes itself while the batch runs), the operator's button that starts or
//! resumes writing the cards, and the office's links to the delivery documents.

use crate::app::AppState;
use crate::audit;
use crate::db::models::batch::BatchState;
use crate::db::models::card::CardState;
use crate::error::Result;
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::service::auth::StaffUser;
use crate::service::orders::{self, Batch};
use crate::service::users::Role;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

/// Links of the batch pages.
pub const BATCH_NAV: &[(&str, &str)] = &[("/batches", "発行バッチ")];

#[derive(Template)]
#[template(path = "pages/batches.html")]
struct ListPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    batches: Vec<Batch>,
}

/// `GET /batches` (office, operator).
pub async fn list(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let batches = state.with_conn(|c| orders::list(c, 200)).await?;
    html(&ListPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: BATCH_NAV,
        batches,
    })
}

#[derive(Template)]
#[template(path = "pages/batch.html")]
struct BatchPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    batch: Batch,
    state_label: &'static str,
    written: usize,
    cards: Vec<CardView>,
    set_aside: Vec<AsideView>,
    running_on: Option<String>,
    can_run: bool,
    can_print: bool,
    started: bool,
    message: Option<(bool, String)>,
}

/// A token set aside while the batch was written: the operator pulls it from the stack.
struct AsideView {
    chip: String,
    label: String,
    reason: &'static str,
    detail: String,
    at: String,
    at_iso: String,
}

/// A card row on the batch page.
struct CardView {
    number: String,
    display: String,
    state: String,
    label: &'static str,
    delivery: String,
}

fn card_state_label(s: &str) -> &'static str {
    match s {
        "allocated" => "番号割当済",
        "personalised" => "初期化済",
        "certified" => "証明書発行済",
        "written" => "書込完了",
        "spoiled" => "書損",
        "shipped" => "発送済",
        "delivered" => "配達済",
        "returned" => "返戻",
        "handed_over" => "窓口交付済",
        _ => "不明",
    }
}

/// Query of the batch page.
#[derive(Debug, Deserialize)]
pub struct BatchQuery {
    #[serde(default)]
    started: Option<String>,
    #[serde(default)]
    recorded: Option<String>,
}

/// `GET /batches/{id}` (office, operator); the read is audited.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    query: web::Query<BatchQuery>,
) -> Result<HttpResponse> {
    let message = query
        .recorded
        .as_ref()
        .map(|n| (true, format!("カード {n} の配送・交付を記録しました。")));
    let started = query.started.is_some();
    render(&state, user, id.into_inner(), started, message).await
}

async fn render(
    state: &AppState,
    user: StaffUser,
    id: i64,
    started: bool,
    message: Option<(bool, String)>,
) -> Result<HttpResponse> {
    let now = state.clock.now();
    let actor = user.actor();
    let (batch, cards, deliveries, set_aside, running_on) = state
        .with_write(move |c| {
            let (batch, _) = orders::show(c, id)?;
            let cards = crate::service::batches::cards(c, id)?;
            let set_aside = crate::service::card_stack::for_batch(c, id)?;
            let running_on = crate::service::lease::holder_of(
                c,
                &crate::service::batches::lease_name(id),
                now.timestamp(),
            )?
            .map(|b| b.instance);
            let deliveries = orders::deliveries(c, id)?;
            audit::append(
                c,
                now.timestamp(),
                &actor,
                "batch.view",
                &format!("batch:{id}"),
                "",
            )?;
            Ok((batch, cards, deliveries, set_aside, running_on))
        })
        .await?;
    let written = cards
        .iter()
        .filter(|c| {
            !matches!(
                CardState::parse(&c.state),
                Some(
                    CardState::Allocated
                        | CardState::Personalised
                        | CardState::Certified
                        | CardState::Spoiled
                )
            )
        })
        .count();
    let state_label = match BatchState::parse(&batch.state) {
        Some(BatchState::Ordered) => "発券指示済（未着手）",
        Some(BatchState::Running) => "書き込み中",
        _ => "完了",
    };
    let mut resp = html(&BatchPage {
        username: user.username.clone(),
        role_label: user.role.label_ja(),
        csrf: user.csrf.clone().unwrap_or_default(),
        nav: BATCH_NAV,
        state_label,
        written,
        cards: cards
            .iter()
            .map(|c| CardView {
                number: c.card_number.clone(),
                display: crate::card::number::display(&c.card_number),
                state: c.state.clone(),
                label: card_state_label(&c.state),
                delivery: deliveries
                    .iter()
                    .find(|(a, _)| *a == c.application_id)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        set_aside: set_aside
            .iter()
            .map(|t| AsideView {
                chip: t.chip_serial.clone(),
                label: t.token_label.clone(),
                reason: t.reason_ja(),
                detail: t.detail.clone(),
                at: crate::jp::time::written(t.created_at),
                at_iso: crate::jp::time::iso(t.created_at),
            })
            .collect(),
        running_on,
        can_run: user.role == Role::Operator,
        can_print: user.role == Role::Office,
        started,
        message: message.clone(),
        batch,
    })?;
    if message.is_some_and(|(ok, _)| !ok) {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

/// The run button's form.
#[derive(Debug, Deserialize)]
pub struct RunForm {
    csrf: String,
}

impl HasCsrf for RunForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /batches/{id}/run` (operator): start or resume the run, back to the batch page.
pub async fn run(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_form, user): CsrfForm<RunForm>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    state.start_batch(user.actor(), id).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/batches/{id}?started=1")))
        .finish())
}

/// The delivery form of one card (office).
#[derive(Debug, Deserialize)]
pub struct DeliveryForm {
    csrf: String,
    event: String,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    identity_checked: Option<String>,
}

impl HasCsrf for DeliveryForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /cards/{number}/delivery` (office): record shipment, delivery, return or counter
/// handover, then back to the batch page; a refusal is shown there and changes nothing.
pub async fn record_delivery(
    state: web::Data<AppState>,
    number: web::Path<String>,
    CsrfForm(form, user): CsrfForm<DeliveryForm>,
) -> Result<HttpResponse> {
    use crate::service::delivery::{self, Event};
    let number = crate::card::number::parse(&number)?;
    let event = match form.event.as_str() {
        "shipped" => Event::Shipped {
            tracking_number: form.tracking_number.clone().unwrap_or_default(),
        },
        "delivered" => Event::Delivered,
        "returned" => Event::Returned,
        "handed_over" => Event::HandedOver {
            identity_checked: form.identity_checked.is_some(),
        },
        other => {
            return Err(crate::error::Error::bad(
                "event",
                format!("unknown delivery event {other:?}"),
            ));
        }
    };
    let key = state.data_key()?;
    let now = state.clock.now();
    let (u, n) = (user.clone(), number.clone());
    let batch_id = state
        .with_conn({
            let n = number.clone();
            move |c| {
                crate::db::models::card::CardRow::by_number(c, &n)?
                    .map(|card| card.batch_id)
                    .ok_or_else(|| crate::error::Error::NotFound(format!("card {n}")))
            }
        })
        .await?;
    match state
        .with_write(move |c| delivery::record(c, &key, &u, &n, &event, now))
        .await
    {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/batches/{batch_id}?recorded={number}")))
            .finish()),
        Err(e) if e.is_client_error() => {
            render(&state, user, batch_id, false, Some((false, e.to_string()))).await
        }
        Err(e) => Err(e),
    }
}
