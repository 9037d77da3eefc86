//! How database failures become the application [`Error`]: a missing row is "not found", a
//! unique constraint is "already exists" (callers that draw again on a collision match on
//! [`Error::Duplicate`]), anything else is a database failure.

use crate::error::Error;

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => Error::NotFound("record".into()),
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            ) => Error::Duplicate(info.message().to_string()),
            other => Error::Db(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Error::Db(e.to_string())
    }
}
