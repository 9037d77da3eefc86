//! The auditor's page: the newest entries and the chain's verification. Reading is audited.

use crate::app::AppState;
use crate::audit::{self, Entry};
use crate::error::{Error, Result};
use crate::http::extract::Staff;
use crate::http::views::html;
use actix_web::{HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "pages/audit.html")]
struct AuditPage {
    username: String,
    role_label: &'static str,
    csrf: String,
    verified: std::result::Result<i64, String>,
    entries: Vec<Entry>,
}

/// `GET /audit`.
pub async fn page(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    let now = state.clock.now().timestamp();
    let actor = user.actor();
    let (verified, entries) = state
        .with_write(move |c| {
            audit::append(c, now, &actor, "audit.read", "audit_log", "")?;
            let v = match audit::verify(c) {
                Ok(v) => Ok(v.entries),
                Err(Error::AuditBroken { seq, message }) => Err(format!("{seq} 番：{message}")),
                Err(e) => return Err(e),
            };
            Ok((v, audit::list(c, None, 100)?))
        })
        .await?;
    html(&AuditPage {
        username: user.username,
        role_label: user.role.label_ja(),
        csrf: user.csrf.unwrap_or_default(),
        verified,
        entries,
    })
}
