//! Staff users, their login attempts, web sessions and API tokens.

use crate::db::DbConn;
use crate::db::schema::{api_tokens, login_attempts, sessions, users};
use crate::error::{Error, Result};
use diesel::prelude::*;
use serde::Serialize;

/// Staff roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Consortium office staff.
    Office,
    /// Municipal resident-affairs clerk, scoped to one municipality.
    Clerk,
    /// Card issuance operator.
    Operator,
    /// Call-centre staff.
    Callcenter,
    /// Auditor.
    Auditor,
    /// System administrator.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Office,
        Role::Clerk,
        Role::Operator,
        Role::Callcenter,
        Role::Auditor,
        Role::Admin,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Office => "office",
            Role::Clerk => "clerk",
            Role::Operator => "operator",
            Role::Callcenter => "callcenter",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Japanese label for the UI.
    pub fn label_ja(self) -> &'static str {
        match self {
            Role::Office => "協議会事務局",
            Role::Clerk => "市区町村窓口",
            Role::Operator => "発行オペレーター",
            Role::Callcenter => "コールセンター",
            Role::Auditor => "監査担当",
            Role::Admin => "システム管理者",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Result<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Error::bad("role", format!("unknown role {s:?}; roles: office, clerk, operator, callcenter, auditor, admin"))
        })
    }
}

/// A staff user row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub municipality_code: Option<String>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// A new staff user.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub role: &'a str,
    pub municipality_code: Option<&'a str>,
    pub password_hash: &'a str,
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: i64,
}

impl User {
    /// Look a user up by name.
    pub fn by_username(conn: &mut DbConn, name: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(users::username.eq(name))
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// Look a user up by id.
    pub fn by_id(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// Insert a user and return it.
    pub fn insert(conn: &mut DbConn, new: &NewUser<'_>) -> QueryResult<User> {
        // `returning(as_returning())` does not build on the multi-backend connection.
        diesel::insert_into(users::table)
            .values(new)
            .execute(conn)?;
        users::table
            .filter(users::username.eq(new.username))
            .select(User::as_select())
            .first(conn)
    }

    /// All users, by name.
    pub fn list(conn: &mut DbConn) -> QueryResult<Vec<User>> {
        users::table
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)
    }

    /// How many users exist.
    pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
        users::table.count().get_result(conn)
    }

    /// Disable or enable; returns rows changed.
    pub fn set_disabled(conn: &mut DbConn, id: i64, disabled: bool) -> QueryResult<usize> {
        diesel::update(users::table.find(id).filter(users::disabled.ne(disabled)))
            .set(users::disabled.eq(disabled))
            .execute(conn)
    }

    /// Active administrators other than `except`.
    pub fn other_active_admins(conn: &mut DbConn, except: i64) -> QueryResult<i64> {
        users::table
            .filter(users::role.eq(Role::Admin.as_str()))
            .filter(users::disabled.eq(false))
            .filter(users::id.ne(except))
            .count()
            .get_result(conn)
    }

    /// Replace the password with a one-time one the user must change at the next login.
    pub fn set_one_time_password(conn: &mut DbConn, id: i64, hash: &str) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(hash),
                users::must_change_password.eq(true),
            ))
            .execute(conn)
    }

    /// Record a successful login.
    pub fn logged_in(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::last_login_at.eq(Some(now)))
            .execute(conn)
    }

    /// Replace the password hash and clear the must-change flag.
    pub fn set_password(conn: &mut DbConn, id: i64, hash: &str) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(hash),
                users::must_change_password.eq(false),
            ))
            .execute(conn)
    }
}

/// Record a login attempt from `source` (the client's address).
pub fn record_login_attempt(
    conn: &mut DbConn,
    username: &str,
    source: &str,
    at: i64,
    success: bool,
) -> QueryResult<usize> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::username.eq(username),
            login_attempts::source.eq(source),
            login_attempts::at.eq(at),
            login_attempts::success.eq(success),
        ))
        .execute(conn)
}

/// Failed attempts for `username` since `since` (from `source` only, if given), counting
/// only those after the last success (from that source, if given; by the attempts' order,
/// so a success and failures in the same second are told apart).
pub fn recent_failures(
    conn: &mut DbConn,
    username: &str,
    source: Option<&str>,
    since: i64,
) -> QueryResult<i64> {
    let mut last = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::success.eq(true))
        .select(diesel::dsl::max(login_attempts::id))
        .into_boxed();
    let mut failures = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::at.ge(since))
        .into_boxed();
    if let Some(src) = source {
        last = last.filter(login_attempts::source.eq(src));
        failures = failures.filter(login_attempts::source.eq(src));
    }
    let last_success: Option<i64> = last.first(conn)?;
    failures
        .filter(login_attempts::id.gt(last_success.unwrap_or(0)))
        .count()
        .get_result(conn)
}

/// A web session row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Session {
    /// Store a new session.
    pub fn insert(conn: &mut DbConn, s: &Session) -> QueryResult<usize> {
        diesel::insert_into(sessions::table).values(s).execute(conn)
    }

    /// A live session and its user.
    pub fn live(
        conn: &mut DbConn,
        id_hash: &str,
        now: i64,
    ) -> QueryResult<Option<(Session, User)>> {
        sessions::table
            .inner_join(users::table)
            .filter(sessions::id_hash.eq(id_hash))
            .filter(sessions::expires_at.gt(now))
            .select((Session::as_select(), User::as_select()))
            .first(conn)
            .optional()
    }

    /// End a session.
    pub fn delete(conn: &mut DbConn, id_hash: &str) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)
    }

    /// End every session of a user; returns how many.
    pub fn delete_all(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
    }
}

/// An API token row (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub token_hash: String,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiToken {
    /// Store a token hash for a user, valid until `expires_at`.
    pub fn insert(
        conn: &mut DbConn,
        user_id: i64,
        token_hash: &str,
        label: &str,
        now: i64,
        expires_at: i64,
    ) -> QueryResult<ApiToken> {
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::user_id.eq(user_id),
                api_tokens::token_hash.eq(token_hash),
                api_tokens::label.eq(label),
                api_tokens::created_at.eq(now),
                api_tokens::expires_at.eq(Some(expires_at)),
            ))
            .execute(conn)?;
        api_tokens::table
            .filter(api_tokens::token_hash.eq(token_hash))
            .select(ApiToken::as_select())
            .first(conn)
    }

    /// The live (unrevoked) token with this hash, and its user.
    pub fn live(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<(ApiToken, User)>> {
        api_tokens::table
            .inner_join(users::table)
            .filter(api_tokens::token_hash.eq(token_hash))
            .filter(api_tokens::revoked_at.is_null())
            .select((ApiToken::as_select(), User::as_select()))
            .first(conn)
            .optional()
    }

    /// A user's tokens, newest first (revoked and expired ones included).
    pub fn of_user(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<ApiToken>> {
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .order(api_tokens::id.desc())
            .select(ApiToken::as_select())
            .load(conn)
    }

    /// Revoke every live token of a user; returns how many.
    pub fn revoke_all(conn: &mut DbConn, user_id: i64, now: i64) -> QueryResult<usize> {
        diesel::update(
            api_tokens::table
                .filter(api_tokens::user_id.eq(user_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(Some(now)))
        .execute(conn)
    }

    /// Record a use (the caller keeps this to a few writes an hour per token).
    pub fn touch(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(Some(now)))
            .execute(conn)
    }

    /// Revoke a user's token.
    pub fn revoke(conn: &mut DbConn, id: i64, user_id: i64, now: i64) -> QueryResult<usize> {
        diesel::update(
            api_tokens::table
                .filter(api_tokens::id.eq(id))
                .filter(api_tokens::user_id.eq(user_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(Some(now)))
        .execute(conn)
    }
}
