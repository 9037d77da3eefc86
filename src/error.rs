//! The one application error. Every module's error converts into [`Error`]; each variant has
//! a stable code that users and support staff can quote ([`CODES`], and the table in README).
//! This module knows no framework: the HTTP mapping lives in `http::error`, the database
//! conversion in `db::error`, so `ca/` can use [`Error`] without depending on either.

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
    /// The path exists, but not with this method; `allow` lists the methods it takes.
    #[error("method not allowed: this path takes {allow}")]
    MethodNotAllowed { allow: String },
    /// The action is not allowed from the current state (of an application, card, batch,
    /// account); the message says which state and what would be.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing changed between reading and writing (another person or run acted first);
    /// reload and try again.
    #[error("changed meanwhile: {0}")]
    Changed(String),
    /// The work is already being done (a batch run, by another instance); wait for it.
    #[error("already running: {0}")]
    Running(String),
    /// It already exists (a user name, a certified key, a CA); nothing was created.
    #[error("already exists: {0}")]
    Duplicate(String),
    /// The record belongs to another municipality than the user's.
    #[error("forbidden: {0}")]
    OtherMunicipality(String),
    /// A form's or request's anti-forgery token is missing or stale.
    #[error("forbidden: {0}")]
    Csrf(String),
    /// The same person may not do both steps (record and order, for example).
    #[error("forbidden: {0}")]
    SeparationOfDuties(String),
    /// The account must change its one-time password before anything else.
    #[error("forbidden: {0}")]
    PasswordChange(String),
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

    /// The stable error code (one of [`CODES`]).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadInput { .. } => "KF0400",
            Error::Unauthenticated => "KF0401",
            Error::Expired(_) => "KF0441",
            Error::Forbidden(_) => "KF0403",
            Error::OtherMunicipality(_) => "KF0430",
            Error::Csrf(_) => "KF0431",
            Error::PasswordChange(_) => "KF0432",
            Error::SeparationOfDuties(_) => "KF0433",
            Error::NotFound(_) => "KF0404",
            Error::MethodNotAllowed { .. } => "KF0405",
            Error::Conflict(_) => "KF0409",
            Error::Changed(_) => "KF0410",
            Error::Running(_) => "KF0411",
            Error::Duplicate(_) => "KF0412",
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

    /// What kind of failure this is: the one list from which the HTTP status
    /// (`http::error::status`) and [`Error::is_client_error`] both follow.
    pub fn kind(&self) -> Kind {
        match self {
            Error::BadInput { .. } | Error::Lint { .. } | Error::Invalid(_) => Kind::Input,
            Error::Unauthenticated | Error::Expired(_) => Kind::Unauthenticated,
            Error::Forbidden(_)
            | Error::OtherMunicipality(_)
            | Error::Csrf(_)
            | Error::PasswordChange(_)
            | Error::SeparationOfDuties(_) => Kind::Forbidden,
            Error::NotFound(_) => Kind::NotFound,
            Error::MethodNotAllowed { .. } => Kind::Method,
            Error::Conflict(_) | Error::Changed(_) | Error::Running(_) | Error::Duplicate(_) => {
                Kind::Conflict
            }
            Error::Locked(_) | Error::RateLimited { .. } => Kind::TooMany,
            Error::Unavailable(_) => Kind::Unavailable,
            Error::Config(_)
            | Error::Db(_)
            | Error::Crypto(_)
            | Error::Io(_)
            | Error::AuditBroken { .. }
            | Error::Internal(_) => Kind::Ours,
        }
    }

    /// Whether the error is the caller's (HTTP 4xx): shown to the user, nothing changed.
    pub fn is_client_error(&self) -> bool {
        !matches!(self.kind(), Kind::Unavailable | Kind::Ours)
    }
}

/// The kinds of [`Error`], one per answer a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A field, line or lint rule is wrong.
    Input,
    /// No credential, or one not accepted.
    Unauthenticated,
    /// The user may not do this.
    Forbidden,
    /// No such record.
    NotFound,
    /// The path does not take this method.
    Method,
    /// Not from this state, changed meanwhile, already running or already there.
    Conflict,
    /// Too many attempts or requests.
    TooMany,
    /// An outside system did not answer.
    Unavailable,
    /// Our fault: configuration, database, crypto, I/O, audit chain, anything else.
    Ours,
}

/// Every code [`Error::code`] gives, with what it means and what to do: the table in README
/// ("Error codes") lists the same, and a test keeps the two in step.
pub const CODES: &[(&str, &str)] = &[
    (
        "KF0400",
        "a field or line is wrong (named in the answer); nothing was changed",
    ),
    ("KF0401", "not logged in, or the credential is not accepted"),
    ("KF0403", "the role may not do this"),
    ("KF0404", "no such record (or not one the user may see)"),
    (
        "KF0405",
        "the path does not take this method; `Allow` lists those it takes",
    ),
    (
        "KF0409",
        "not allowed from the current state; the message names the state",
    ),
    (
        "KF0410",
        "changed meanwhile by someone else; reload and try again",
    ),
    (
        "KF0411",
        "already running (a batch run on another instance); wait for it",
    ),
    (
        "KF0412",
        "already exists (user name, certified key, CA); nothing was created",
    ),
    ("KF0423", "too many failed logins; wait and try again"),
    ("KF0429", "rate limit reached; retry after the time given"),
    ("KF0430", "the record belongs to another municipality"),
    (
        "KF0431",
        "the form's security token is missing or stale; reload the page",
    ),
    ("KF0432", "change the one-time password first"),
    (
        "KF0433",
        "separation of duties: another person must take this step",
    ),
    (
        "KF0441",
        "the credential has expired; the message names the day",
    ),
    (
        "KF0503",
        "the resident registry did not answer; nothing was changed",
    ),
    ("KF1000", "internal error; quote the request id to support"),
    ("KF1001", "configuration missing or inconsistent"),
    ("KF1002", "database failure"),
    ("KF1003", "file or other I/O failure"),
    (
        "CA0001",
        "a certificate or CRL failed a lint rule; nothing was signed",
    ),
    ("CA0002", "cryptographic or key-store failure"),
    ("AU0001", "the audit chain does not verify"),
];

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
