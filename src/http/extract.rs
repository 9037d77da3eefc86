//! Extractors: the current staff user (put in place by the middleware), forms that must
//! carry the session's CSRF token, and body-size limits with errors that name the problem.

use crate::error::Error;
use crate::service::auth::StaffUser;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

/// Largest JSON or form body accepted (CSRs and identity files are small).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The logged-in staff member.
#[derive(Debug, Clone)]
pub struct Staff(pub StaffUser);

impl FromRequest for Staff {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<StaffUser>()
                .cloned()
                .map(Staff)
                .ok_or(Error::Unauthenticated),
        )
    }
}

/// Constant-time comparison of a sent CSRF token with the session's.
pub fn csrf_matches(sent: &str, expected: Option<&str>) -> bool {
    match expected {
        Some(e) if !sent.is_empty() && sent.len() == e.len() => {
            openssl::memcmp::eq(sent.as_bytes(), e.as_bytes())
        }
        _ => false,
    }
}

/// A form that carries a `csrf` field.
pub trait HasCsrf {
    /// The token sent with the form.
    fn csrf(&self) -> &str;
}

/// A URL-encoded form whose CSRF token has been checked against the session.
pub struct CsrfForm<T>(pub T, pub StaffUser);

impl<T: DeserializeOwned + HasCsrf + 'static> FromRequest for CsrfForm<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = req.extensions().get::<StaffUser>().cloned();
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            let user = user.ok_or(Error::Unauthenticated)?;
            let form = form
                .await
                .map_err(|e| Error::bad("form", e.to_string()))?
                .into_inner();
            if !csrf_matches(form.csrf(), user.csrf.as_deref()) {
                return Err(Error::Csrf(
                    "the form's security token is missing or stale; reload the page".into(),
                ));
            }
            Ok(CsrfForm(form, user))
        })
    }
}

/// JSON config: size limit and errors that say what is wrong.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _| {
            let msg = match &err {
                actix_web::error::JsonPayloadError::Overflow { limit }
                | actix_web::error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
                    format!("body larger than {limit} bytes")
                }
                actix_web::error::JsonPayloadError::ContentType => {
                    "expected Content-Type: application/json".into()
                }
                other => format!("invalid JSON: {other}"),
            };
            Error::bad("body", msg).into()
        })
}

/// Largest body of a serial-list request: room for more than the allowed number of serials,
/// so that an over-long list is refused with the count, not a size.
pub const SERIAL_LIST_LIMIT: usize = 8 * 1024 * 1024;

/// JSON config of the serial-list routes.
pub fn serial_list_config() -> web::JsonConfig {
    json_config().limit(SERIAL_LIST_LIMIT)
}

/// The verifier of a request (put in place by the middleware).
#[derive(Debug, Clone)]
pub struct Verifier(pub crate::service::verifiers::VerifierIdentity);

impl FromRequest for Verifier {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<crate::service::verifiers::VerifierIdentity>()
                .cloned()
                .map(Verifier)
                .ok_or(Error::Unauthenticated),
        )
    }
}

/// Form config: size limit and clear errors.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _| Error::bad("form", err.to_string()).into())
}

/// Path config: a path segment that does not parse is named (JSON error, not plain text).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| Error::bad("path", err.to_string()).into())
}

/// Query config: a query string that does not parse (unknown or malformed parameter) is
/// named in the JSON error.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| Error::bad("query", query_message(&err)).into())
}

fn query_message(err: &actix_web::error::QueryPayloadError) -> String {
    let text = err.to_string();
    // actix prefixes serde's message with "Query deserialize error: ".
    text.strip_prefix("Query deserialize error: ")
        .unwrap_or(&text)
        .to_string()
}

/// A JSON body that must be an object: `web::Json` of a struct would also take an array of
/// its fields in order (`[]` for a struct whose fields all have defaults), which no schema
/// of the API allows. Limits and errors are those of [`json_config`].
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        type Object = serde_json::Map<String, serde_json::Value>;
        let object = web::Json::<Object>::from_request(req, payload);
        Box::pin(async move {
            let object = object.await?.into_inner();
            serde_json::from_value(serde_json::Value::Object(object))
                .map(Body)
                .map_err(|e| Error::bad("body", format!("invalid JSON: {e}")).into())
        })
    }
}
