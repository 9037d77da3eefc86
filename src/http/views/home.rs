//! The landing page after login: who you are and what your role can do.

use crate::app::AppState;
use crate::error::Result;
use crate::http::extract::Staff;
use crate::http::views::html;
use crate::service::users::Role;
use actix_web::{HttpResponse, web};
use askama::Template;

/// A menu entry; `href` is None for work that later issues bring.
pub struct MenuItem {
    /// Label.
    pub label: &'static str,
    /// Link.
    pub href: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    username: String,
    role_label: &'static str,
    municipality: Option<String>,
    csrf: String,
    menu: Vec<MenuItem>,
    ca_loaded: bool,
}

fn menu(role: Role) -> Vec<MenuItem> {
    let m = |label, href| MenuItem { label, href };
    match role {
        Role::Office => vec![
            m("申請の受付", None),
            m("発券指示（API: POST /api/v1/batches）", None),
            m("発行バッチと配送書類", Some("/batches")),
            m("カードの状態・失効の承認", Some("/cards")),
        ],
        Role::Clerk => vec![m("4情報の照合", None)],
        Role::Operator => vec![m("発行バッチの実行", Some("/batches"))],
        Role::Callcenter => vec![
            m("紛失・盗難の受付（一時停止）", Some("/callcenter")),
            m("カードの状態", Some("/cards")),
        ],
        Role::Auditor => vec![m("監査ログ", Some("/audit"))],
        Role::Admin => vec![
            m("職員アカウントの管理", Some("/users")),
            m("検証者の管理", Some("/verifiers")),
        ],
    }
}

/// `GET /`.
pub async fn page(state: web::Data<AppState>, Staff(user): Staff) -> Result<HttpResponse> {
    html(&HomePage {
        username: user.username,
        role_label: user.role.label_ja(),
        municipality: user.municipality_code,
        csrf: user.csrf.unwrap_or_default(),
        menu: menu(user.role),
        ca_loaded: state.ca.is_some(),
    })
}
