//! The one place [`Error`] becomes an HTTP answer: client errors carry a message naming what
//! is wrong (and the field), server errors carry only the code and a request id, never the
//! cause (which goes to the log).

use crate::error::{Error, FieldError, Kind};
use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

/// The HTTP status of an error.
pub fn status(e: &Error) -> StatusCode {
    match e.kind() {
        Kind::Input => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Method => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Ours => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The HTTP status of an error, as a number (stored with replayable answers).
pub fn status_u16(e: &Error) -> u16 {
    status(e).as_u16()
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status(self)
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let request_id = new_request_id();
        // Client errors, and an unavailable registry, say what is wrong; other server errors
        // carry only the code and request id.
        let body = if self.is_client_error() || matches!(self, Error::Unavailable(_)) {
            let field = match self {
                Error::BadInput { field, .. } => Some(field.as_str()),
                _ => None,
            };
            let errors = match self {
                Error::Invalid(list) => Some(list.as_slice()),
                _ => None,
            };
            ErrorBody {
                code,
                error: self.to_string(),
                field,
                errors,
            }
        } else {
            // The cause goes to the log (never personal data: causes are technical), the
            // client gets only the code and the request id to quote.
            tracing::error!(code, request_id = %request_id, cause = %self, "request failed");
            ErrorBody {
                code,
                error: format!("internal error, request id {request_id}"),
                field: None,
                errors: None,
            }
        };
        let mut resp = HttpResponse::build(status(self));
        if matches!(self, Error::Unauthenticated | Error::Expired(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"kofu\""));
        }
        if let Error::MethodNotAllowed { allow } = self {
            resp.insert_header(("Allow", allow.as_str()));
        }
        if let Error::RateLimited { retry_after, .. } = self {
            resp.insert_header(("Retry-After", retry_after.to_string()));
        }
        resp.json(body)
    }
}

/// A blocking task that panicked or was cancelled.
impl From<actix_web::error::BlockingError> for Error {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// A fresh id to tie a failed request's log line to what the client was shown.
fn new_request_id() -> String {
    let mut b = [0u8; 8];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        return "unavailable".into();
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code in the one table maps to a status, and README lists every code.
    #[test]
    fn codes_are_documented() {
        let readme = include_str!("../../README.md");
        for (code, _) in crate::error::CODES {
            assert!(readme.contains(&format!("`{code}`")), "README lacks {code}");
        }
        let samples = [
            Error::Conflict(String::new()),
            Error::Changed(String::new()),
            Error::Running(String::new()),
            Error::Duplicate(String::new()),
            Error::OtherMunicipality(String::new()),
            Error::Csrf(String::new()),
            Error::PasswordChange(String::new()),
            Error::SeparationOfDuties(String::new()),
        ];
        for e in samples {
            assert!(crate::error::CODES.iter().any(|(c, _)| *c == e.code()));
            assert!(status(&e).is_client_error());
            assert!(e.is_client_error());
        }
    }
}
