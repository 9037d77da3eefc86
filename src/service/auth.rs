//! Staff authentication: password login with lock-out, web sessions with a CSRF token, and
//! bearer tokens for the API. Session ids and tokens are random 256-bit values; only their
//! SHA-256 is stored.

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::models::user::{self, ApiToken, Session, User};
use crate::error::{Error, Result};
use crate::service::users::{Role, verify_password};
use chrono::{DateTime, Utc};
use diesel::Connection;

/// Failed attempts that lock an account.
pub const LOCKOUT_FAILURES: i64 = 5;
/// The window in which failures count, and how long the lock lasts.
pub const LOCKOUT_WINDOW_SECS: i64 = 15 * 60;
/// Session lifetime.
pub const SESSION_SECS: i64 = 8 * 3600;
/// Prefix that makes kofu tokens recognisable (e.g. to secret scanners).
pub const TOKEN_PREFIX: &str = "kofu_";

/// The authenticated staff member of a request.
#[derive(Debug, Clone)]
pub struct StaffUser {
    /// User id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Municipality (clerks).
    pub municipality_code: Option<String>,
    /// CSRF token of the web session (None for bearer tokens).
    pub csrf: Option<String>,
    /// Must the user change the one-time password?
    pub must_change_password: bool,
}

impl StaffUser {
    /// The audit actor.
    pub fn actor(&self) -> Actor {
        Actor::new(self.username.clone(), self.role.as_str())
    }

    fn from_user(u: &User, csrf: Option<String>) -> Result<Self> {
        Ok(StaffUser {
            id: u.id,
            username: u.username.clone(),
            role: Role::parse(&u.role)?,
            municipality_code: u.municipality_code.clone(),
            csrf,
            must_change_password: u.must_change_password,
        })
    }
}

/// Random 256-bit secret, hex.
pub fn random_secret() -> Result<String> {
    let mut b = [0u8; 32];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(hex::encode(b))
}

/// SHA-256 hex of a secret (what the database keeps).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(openssl::sha::sha256(secret.as_bytes()))
}

/// A new web session: the cookie value (secret) and the CSRF token.
#[derive(Debug)]
pub struct NewSession {
    /// Cookie value.
    pub cookie: String,
    /// CSRF token for forms.
    pub csrf: String,
    /// The user.
    pub user: StaffUser,
}

/// Check a password login. Failures are recorded and audited; five within fifteen minutes
/// lock the account for fifteen minutes (an unknown username is treated the same way, so
/// the answer does not reveal which names exist).
pub fn login(
    conn: &mut DbConn,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    let now_s = now.timestamp();
    let username = username.trim();
    let anon = Actor::new(username, "anonymous");
    if user::recent_failures(conn, username, now_s - LOCKOUT_WINDOW_SECS)? >= LOCKOUT_FAILURES {
        user::record_login_attempt(conn, username, now_s, false)?;
        audit::append(
            conn,
            now_s,
            &anon,
            "login.locked",
            &format!("username:{username}"),
            "",
        )?;
        return Err(Error::Locked(
            "too many failed logins; try again in 15 minutes or ask an administrator".into(),
        ));
    }
    let found = User::by_username(conn, username)?;
    let ok = match &found {
        Some(u) => verify_password(password, &u.password_hash) && !u.disabled,
        None => {
            // Spend about the same time as a real check, so timing does not reveal names.
            let _ = crate::service::users::hash_password(password);
            false
        }
    };
    let Some(u) = found.filter(|_| ok) else {
        user::record_login_attempt(conn, username, now_s, false)?;
        audit::append(
            conn,
            now_s,
            &anon,
            "login.failed",
            &format!("username:{username}"),
            "",
        )?;
        return Err(Error::Unauthenticated);
    };
    let cookie = random_secret()?;
    let csrf = random_secret()?;
    let staff = StaffUser::from_user(&u, Some(csrf.clone()))?;
    conn.transaction(|c| {
        user::record_login_attempt(c, username, now_s, true)?;
        Session::insert(
            c,
            &Session {
                id_hash: secret_hash(&cookie),
                user_id: u.id,
                csrf_token: csrf.clone(),
                created_at: now_s,
                expires_at: now_s + SESSION_SECS,
            },
        )?;
        audit::append(
            c,
            now_s,
            &staff.actor(),
            "login",
            &format!("user:{}", u.id),
            "",
        )?;
        Ok::<_, Error>(())
    })?;
    Ok(NewSession {
        cookie,
        csrf,
        user: staff,
    })
}

/// The user of a live session cookie.
pub fn session_user(
    conn: &mut DbConn,
    cookie: &str,
    now: DateTime<Utc>,
) -> Result<Option<StaffUser>> {
    match Session::live(conn, &secret_hash(cookie), now.timestamp())? {
        Some((s, u)) if !u.disabled => Ok(Some(StaffUser::from_user(&u, Some(s.csrf_token))?)),
        _ => Ok(None),
    }
}

/// End a session.
pub fn logout(conn: &mut DbConn, cookie: &str, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
    Session::delete(conn, &secret_hash(cookie))?;
    audit::append(conn, now.timestamp(), actor, "logout", "", "")?;
    Ok(())
}

/// Create an API token for `user_id`; the token is returned once.
pub fn create_token(
    conn: &mut DbConn,
    user_id: i64,
    label: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(i64, String)> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(Error::bad(
            "label",
            "give the token a label of 1–100 characters",
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let row = conn.transaction(|c| {
        let row = ApiToken::insert(c, user_id, &secret_hash(&token), label, now.timestamp())?;
        audit::append(
            c,
            now.timestamp(),
            actor,
            "token.create",
            &format!("token:{}", row.id),
            &format!("user={user_id}"),
        )?;
        Ok::<_, Error>(row)
    })?;
    Ok((row.id, token))
}

/// The user of a live bearer token.
pub fn token_user(conn: &mut DbConn, token: &str) -> Result<Option<StaffUser>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    match ApiToken::live(conn, &secret_hash(token))? {
        Some((_, u)) if !u.disabled => Ok(Some(StaffUser::from_user(&u, None)?)),
        _ => Ok(None),
    }
}

/// Change one's password (after the one-time password).
pub fn change_password(
    conn: &mut DbConn,
    user: &StaffUser,
    old: &str,
    new: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let u = User::by_id(conn, user.id)?.ok_or(Error::Unauthenticated)?;
    if !verify_password(old, &u.password_hash) {
        return Err(Error::bad(
            "current_password",
            "the current password is wrong",
        ));
    }
    if new.chars().count() < 12 {
        return Err(Error::bad("new_password", "at least 12 characters"));
    }
    if new == old {
        return Err(Error::bad(
            "new_password",
            "must differ from the current password",
        ));
    }
    let hash = crate::service::users::hash_password(new)?;
    conn.transaction(|c| {
        User::set_password(c, u.id, &hash)?;
        audit::append(
            c,
            now.timestamp(),
            &user.actor(),
            "user.password_changed",
            &format!("user:{}", u.id),
            "",
        )?;
        Ok::<_, Error>(())
    })
}
