//! Office pages: the intake form (one screen, errors beside each field, typed values kept),
//! the list of applications, one application (its personal data shown; the read audited),
//! and recording the forms that arrived.

use crate::app::AppState;
use crate::db::models::application::ApplicationRow;
use crate::error::{Error, Result};
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::jp::{era::format_era, postal_display};
use crate::service::auth::StaffUser;
use crate::service::intake::{self, Applicant, ApplicationInput, DELIVERIES, Forms, KINDS};
use crate::service::verification;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use std::collections::HashMap;

/// Links of the office's pages.
pub const OFFICE_NAV: &[(&str, &str)] = &[
    ("/applications", "申請一覧"),
    ("/applications/new", "申請の受付"),
];

#[derive(Template)]
#[template(path = "pages/application_new.html")]
struct NewPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    kinds: &'static [(&'static str, &'static str)],
    deliveries: &'static [(&'static str, &'static str)],
    values: ApplicationInput,
    errors: HashMap<String, String>,
}

impl NewPage {
    fn err(&self, field: &str) -> &str {
        self.errors.get(field).map_or("", String::as_str)
    }
}

fn new_page(
    user: &StaffUser,
    values: ApplicationInput,
    errors: HashMap<String, String>,
) -> Result<HttpResponse> {
    let failed = !errors.is_empty();
    let mut resp = html(&NewPage {
        username: user.username.clone(),
        role_label: user.role.label_ja(),
        csrf: user.csrf.clone().unwrap_or_default(),
        nav: OFFICE_NAV,
        kinds: &KINDS,
        deliveries: &DELIVERIES,
        values,
        errors,
    })?;
    if failed {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

/// `GET /applications/new`.
pub async fn new_form(Staff(user): Staff) -> Result<HttpResponse> {
    let values = ApplicationInput {
        kind: "new".into(),
        delivery: "mail".into(),
        ..Default::default()
    };
    new_page(&user, values, HashMap::new())
}

/// The intake form as posted (checkboxes are absent when unticked).
#[derive(Debug, Deserialize)]
pub struct IntakeForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    name_kana: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    municipality_code: String,
    #[serde(default)]
    delivery: String,
    #[serde(default)]
    email: String,
    form_application: Option<String>,
    form_power_of_attorney: Option<String>,
    form_consent: Option<String>,
}

impl HasCsrf for IntakeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /applications`.
pub async fn create(
    state: web::Data<AppState>,
    form: CsrfForm<IntakeForm>,
) -> Result<HttpResponse> {
    let CsrfForm(f, user) = form;
    let input = ApplicationInput {
        kind: f.kind,
        name: f.name,
        name_kana: f.name_kana,
        birth_date: f.birth_date,
        sex: f.sex,
        address: f.address,
        postal_code: f.postal_code,
        municipality_code: f.municipality_code,
        delivery: f.delivery,
        email: Some(f.email),
        forms: Forms {
            application: f.form_application.is_some(),
            power_of_attorney: f.form_power_of_attorney.is_some(),
            consent: f.form_consent.is_some(),
        },
    };
    let key = state.data_key()?;
    let now = state.clock.now();
    let (kept, u) = (input.clone(), user.clone());
    match state
        .with_write(move |c| intake::create(c, &key, &input, u.id, &u.actor(), now))
        .await
    {
        Ok((id, _, _)) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/applications/{id}?created=1")))
            .finish()),
        Err(Error::Invalid(list)) => {
            let errors = list.into_iter().map(|e| (e.field, e.message)).collect();
            new_page(&user, kept, errors)
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "pages/applications.html")]
struct ListPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    rows: Vec<(ApplicationRow, (&'static str, &'static str, &'static str))>,
}

/// `GET /applications`.
pub async fn list(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let rows = state
        .with_conn(|c| Ok(ApplicationRow::list(c, None, None, None, 200)?))
        .await?;
    html(&ListPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: OFFICE_NAV,
        rows: rows
            .into_iter()
            .map(|r| {
                let l = intake::labels(&r.state, &r.kind, &r.delivery);
                (r, l)
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "pages/application.html")]
struct DetailPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    nav: &'static [(&'static str, &'static str)],
    row: ApplicationRow,
    applicant: Applicant,
    birth_era: String,
    postal: String,
    created: bool,
    labels: (&'static str, &'static str, &'static str),
}

/// Query of the detail page.
#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    created: Option<String>,
}

/// `GET /applications/{id}`: shows personal data; the read is audited.
pub async fn detail(
    state: web::Data<AppState>,
    Staff(user): Staff,
    id: web::Path<i64>,
    q: web::Query<DetailQuery>,
) -> Result<HttpResponse> {
    let key = state.data_key()?;
    let now = state.clock.now();
    let id = id.into_inner();
    let u = user.clone();
    let (row, applicant) = state
        .with_write(move |c| verification::view(c, &key, &u, id, now))
        .await?;
    html(&DetailPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        nav: OFFICE_NAV,
        birth_era: format_era(applicant.person.birth_date),
        postal: postal_display(&applicant.person.postal_code),
        labels: intake::labels(&row.state, &row.kind, &row.delivery),
        row,
        applicant,
        created: q.created.is_some(),
    })
}

/// The forms checkboxes.
#[derive(Debug, Deserialize)]
pub struct FormsForm {
    csrf: String,
    form_application: Option<String>,
    form_power_of_attorney: Option<String>,
    form_consent: Option<String>,
}

impl HasCsrf for FormsForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /applications/{id}/forms`.
pub async fn forms(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    form: CsrfForm<FormsForm>,
) -> Result<HttpResponse> {
    let CsrfForm(f, user) = form;
    let forms = Forms {
        application: f.form_application.is_some(),
        power_of_attorney: f.form_power_of_attorney.is_some(),
        consent: f.form_consent.is_some(),
    };
    let now = state.clock.now();
    let id = id.into_inner();
    state
        .with_write(move |c| intake::update_forms(c, id, forms, &user.actor(), now))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/applications/{id}")))
        .finish())
}
