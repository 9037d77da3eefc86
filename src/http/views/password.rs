//! Changing one's password (required after the one-time password).

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{CsrfForm, HasCsrf, Staff};
use crate::http::views::html;
use crate::service::auth::{self, StaffUser};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/password.html")]
struct PasswordPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    must_change: bool,
    error: Option<String>,
    done: bool,
}

fn page(user: &StaffUser, error: Option<String>, done: bool) -> Result<HttpResponse> {
    html(&PasswordPage {
        username: user.username.clone(),
        role_label: user.role.label_ja(),
        csrf: user.csrf.clone().unwrap_or_default(),
        must_change: user.must_change_password && !done,
        error,
        done,
    })
}

/// `GET /password`.
pub async fn form(Staff(user): Staff) -> Result<HttpResponse> {
    page(&user, None, false)
}

/// The form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

impl HasCsrf for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /password`.
pub async fn submit(
    state: web::Data<AppState>,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse> {
    let CsrfForm(f, user) = form;
    let now = state.clock.now();
    let u = user.clone();
    match state
        .with_write(move |c| {
            auth::change_password(c, &u, &f.current_password, &f.new_password, now)
        })
        .await
    {
        Ok(()) => page(&user, None, true),
        Err(Error::BadInput { field, message }) => {
            let label = if field == "current_password" {
                "現在のパスワード"
            } else {
                "新しいパスワード"
            };
            let msg = match message.as_str() {
                "the current password is wrong" => "現在のパスワードが違います。",
                "at least 12 characters" => "12文字以上にしてください。",
                _ => "現在のパスワードと異なるものにしてください。",
            };
            let mut resp = page(&user, Some(format!("{label}：{msg}")), false)?;
            *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e),
    }
}
