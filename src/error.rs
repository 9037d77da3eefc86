//! The one application error. Every module's error converts into [`Error`]; each variant has
//! a stable code that users and support staff can quote. [`Error`] is mapped to HTTP in one
//! place (its `ResponseError` impl): client errors carry a message naming what is wrong,
//! server errors carry only the code and the request id, never the cause.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;

/// The application error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that fails validation; `field` names what is wrong.
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    /// Not logged in, or credentials not accepted.
    #[error("authentication required")]
    Unauthenticated,
    /// The credential was valid once and has expired (an API token past its expiry).
    #[error("credential expired: {0}")]
    Expired(String),
    /// Logged in, but the role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing asked for does not exist (or may not be seen).
    #[error("not found: {0}")]
    NotFound(String),
    /// A state change lost a race or is not allowed from the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many failed attempts; try later.
    #[error("locked: {0}")]
    Locked(String),
    /// A verifier made more requests than its limit allows.
    #[error("rate limited: {message}")]
    RateLimited { message: String, retry_after: u64 },
    /// A certificate or CRL failed a lint rule; nothing was signed.
    #[error("lint rule {rule} failed: {message}")]
    Lint { rule: &'static str, message: String },
    /// Configuration is missing or inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// Database failure.
    #[error("database: {0}")]
    Db(String),
    /// Cryptographic or key-store failure.
    #[error("crypto: {0}")]
    Crypto(String),
    /// File or other I/O failure.
    #[error("io: {0}")]
    Io(String),
    /// Several fields or lines are wrong; each is named (forms, CSV imports).
    #[error("{}", summarize(.0))]
    Invalid(Vec<FieldError>),
    /// An external system (the resident registry) did not answer; nothing was changed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The audit chain does not verify.
    #[error("audit chain broken at entry {seq}: {message}")]
    AuditBroken { seq: i64, message: String },
    /// Anything else that is our fault.
    #[error("internal: {0}")]
    Internal(String),
}

/// One wrong field or line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Line number (CSV imports), counting the header as line 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn summarize(errors: &[FieldError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(20)
        .map(|e| match e.line {
            Some(l) => format!("line {l}, {}: {}", e.field, e.message),
            None => format!("{}: {}", e.field, e.message),
        })
        .collect();
    let more = errors.len().saturating_sub(20);
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Convenience constructor for a validation error on `field`.
    pub fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadInput { .. } => "KF0400",
            Error::Unauthenticated => "KF0401",
            Error::Expired(_) => "KF0441",
            Error::Forbidden(_) => "KF0403",
            Error::NotFound(_) => "KF0404",
            Error::Conflict(_) => "KF0409",
            Error::Locked(_) => "KF0423",
            Error::RateLimited { .. } => "KF0429",
            Error::Lint { .. } => "CA0001",
            Error::Config(_) => "KF1001",
            Error::Db(_) => "KF1002",
            Error::Crypto(_) => "CA0002",
            Error::Io(_) => "KF1003",
            Error::AuditBroken { .. } => "AU0001",
            Error::Invalid(_) => "KF0400",
            Error::Unavailable(_) => "KF0503",
            Error::Internal(_) => "KF1000",
        }
    }

    /// Whether the error is the caller's (4xx): shown to the user, nothing changed.
    pub fn is_client_error(&self) -> bool {
        self.status_code().is_client_error()
    }

    /// The HTTP status it maps to.
    pub fn http_status(&self) -> u16 {
        self.status_code().as_u16()
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => Error::NotFound("record".into()),
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            ) => Error::Conflict(format!("already exists ({})", info.message())),
            other => Error::Db(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Error::Db(e.to_string())
    }
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Error::Crypto(e.to_string())
    }
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::Crypto(format!("DER: {e}"))
    }
}

impl From<std::num::TryFromIntError> for Error {
    fn from(e: std::num::TryFromIntError) -> Self {
        Error::Internal(format!("number out of range: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl From<actix_web::error::BlockingError> for Error {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Error::Internal(e.to_string())
    }
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
        match self {
            Error::BadInput { .. } | Error::Lint { .. } | Error::Invalid(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unauthenticated | Error::Expired(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Locked(_) | Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
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
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, Error::Unauthenticated | Error::Expired(_)) {
            resp.insert_header(("WWW-Authenticate", "Bearer realm=\"kofu\""));
        }
        if let Error::RateLimited { retry_after, .. } = self {
            resp.insert_header(("Retry-After", retry_after.to_string()));
        }
        resp.json(body)
    }
}

/// A fresh id to tie a failed request's log line to what the client was shown.
pub fn new_request_id() -> String {
    let mut b = [0u8; 8];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        return "unavailable".into();
    }
    hex::encode(b)
}
