//! Issuance batches for operators and the office: the list, one batch with its progress
//! (the page refreshes itself while the batch runs), the operator's button that starts or
//! resumes writing the cards, and the office's links to the delivery documents.

use crate::app::AppState;
use crate::audit;
use crate::error::Result;
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
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
    cards: Vec<(String, &'static str)>,
    can_run: bool,
    can_print: bool,
    started: bool,
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
}

/// `GET /batches/{id}` (office, operator); the read is audited.
pub async fn show(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    query: web::Query<BatchQuery>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let now = state.clock.now();
    let actor = user.actor();
    let (batch, cards) = state
        .with_write(move |c| {
            let (batch, _) = orders::show(c, id)?;
            let cards = crate::service::batches::cards(c, id)?;
            audit::append(
                c,
                now.timestamp(),
                &actor,
                "batch.view",
                &format!("batch:{id}"),
                "",
            )?;
            Ok((batch, cards))
        })
        .await?;
    let written = cards
        .iter()
        .filter(|c| {
            !matches!(
                c.state.as_str(),
                "allocated" | "personalised" | "certified" | "spoiled"
            )
        })
        .count();
    let state_label = match batch.state.as_str() {
        "ordered" => "発券指示済（未着手）",
        "running" => "書き込み中",
        _ => "完了",
    };
    html(&BatchPage {
        username: user.username.clone(),
        role_label: user.role.label_ja(),
        csrf: user.csrf.clone().unwrap_or_default(),
        nav: BATCH_NAV,
        state_label,
        written,
        cards: cards
            .iter()
            .map(|c| {
                (
                    crate::card::number::display(&c.card_number),
                    card_state_label(&c.state),
                )
            })
            .collect(),
        can_run: user.role == Role::Operator,
        can_print: user.role == Role::Office,
        started: query.started.is_some(),
        batch,
    })
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
    state
        .with_conn(move |c| orders::show(c, id).map(|_| ()))
        .await?;
    let st = state.get_ref().clone();
    web::block(move || crate::http::api::cards::start_run(&st, &user, id))
        .await
        .map_err(crate::error::Error::from)??;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/batches/{id}?started=1")))
        .finish())
}
