//! Staff users and roles (SPEC §1), with argon2id password hashes.

use crate::audit::{self, Actor};
use crate::ca::identity::check_municipality_code;
use crate::db::DbConn;
use crate::db::models::user::{ApiToken, NewUser, Session, User};
use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::Serialize;

pub use crate::db::models::user::Role;

/// Hash a password with argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Crypto(format!("password hashing failed: {e}")))
}

/// Check a password against a stored hash (constant-time comparison inside argon2).
pub fn verify_password(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A random one-time password: 20 characters from an alphabet without look-alikes.
pub fn one_time_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut out = String::with_capacity(20);
    let mut buf = [0u8; 1];
    while out.len() < 20 {
        openssl::rand::rand_bytes(&mut buf)?;
        // Reject bytes past the largest multiple of the alphabet size: no modulo bias.
        let limit = 256 - 256 % ALPHABET.len();
        if (buf[0] as usize) < limit {
            out.push(ALPHABET[buf[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

fn check_username(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(Error::bad(
            "username",
            "2–64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter",
        ))
    }
}

/// Create a staff user with a one-time password (returned once, never stored in clear).
pub fn add(
    conn: &mut DbConn,
    username: &str,
    role: Role,
    municipality: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(User, String)> {
    check_username(username)?;
    match (role, municipality) {
        (Role::Clerk, None) => {
            return Err(Error::bad(
                "municipality",
                "a clerk needs --municipality CODE",
            ));
        }
        (Role::Clerk, Some(code)) => check_municipality_code(code)?,
        (_, Some(_)) => {
            return Err(Error::bad(
                "municipality",
                "only clerks are scoped to a municipality",
            ));
        }
        (_, None) => {}
    }
    let password = one_time_password()?;
    let hash = hash_password(&password)?;
    let user = conn.transaction(|c| {
        // Write first (SQLite takes the write lock at once); the unique index on the name
        // decides between two admins adding the same user at the same time.
        let user = match User::insert(
            c,
            &NewUser {
                username,
                role: role.as_str(),
                municipality_code: municipality,
                password_hash: &hash,
                must_change_password: true,
                disabled: false,
                created_at: now.timestamp(),
            },
        ) {
            Ok(u) => u,
            Err(e) if crate::db::is_unique_violation(&e) => {
                return Err(Error::Duplicate(format!("user {username} already exists")));
            }
            Err(e) => return Err(e.into()),
        };
        audit::append(
            c,
            now.timestamp(),
            actor,
            "user.create",
            &format!("user:{}", user.id),
            &format!("role={}", role.as_str()),
        )?;
        Ok(user)
    })?;
    Ok((user, password))
}

/// Disable an account: its sessions end and its tokens are revoked at once; it cannot log
/// in until enabled again. The last active administrator cannot be disabled (the audit entry
/// is appended first, which on either backend serialises two administrators disabling each
/// other at the same moment).
pub fn disable(conn: &mut DbConn, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<User> {
    let now_s = now.timestamp();
    conn.transaction(|c| {
        crate::db::lock_for_write(c)?;
        let u = User::by_id(c, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))?;
        audit::append(
            c,
            now_s,
            actor,
            "user.disable",
            &format!("user:{id}"),
            &format!("username={}", u.username),
        )?;
        if u.disabled {
            return Err(Error::Conflict(format!(
                "{} is already disabled",
                u.username
            )));
        }
        if u.role == Role::Admin.as_str() && User::other_active_admins(c, id)? == 0 {
            return Err(Error::Conflict(format!(
                "{} is the last active administrator and cannot be disabled",
                u.username
            )));
        }
        User::set_disabled(c, id, true)?;
        let sessions = Session::delete_all(c, id)?;
        let tokens = ApiToken::revoke_all(c, id, now_s)?;
        audit::append(
            c,
            now_s,
            actor,
            "user.disabled",
            &format!("user:{id}"),
            &format!("sessions_ended={sessions} tokens_revoked={tokens}"),
        )?;
        Ok(User {
            disabled: true,
            ..u
        })
    })
}

/// Enable a disabled account (it logs in with its password again; tokens stay revoked).
pub fn enable(conn: &mut DbConn, id: i64, actor: &Actor, now: DateTime<Utc>) -> Result<User> {
    conn.transaction(|c| {
        let u = User::by_id(c, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))?;
        if User::set_disabled(c, id, false)? != 1 {
            return Err(Error::Conflict(format!("{} is not disabled", u.username)));
        }
        audit::append(
            c,
            now.timestamp(),
            actor,
            "user.enable",
            &format!("user:{id}"),
            &format!("username={}", u.username),
        )?;
        Ok(User {
            disabled: false,
            ..u
        })
    })
}

/// Reset an account's password to a new one-time password (returned once), to be changed
/// at the next login; its sessions end.
pub fn reset_password(
    conn: &mut DbConn,
    id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(User, String)> {
    let password = one_time_password()?;
    let hash = hash_password(&password)?;
    let user = conn.transaction(|c| {
        let u = User::by_id(c, id)?.ok_or_else(|| Error::NotFound(format!("user {id}")))?;
        User::set_one_time_password(c, id, &hash)?;
        let sessions = Session::delete_all(c, id)?;
        audit::append(
            c,
            now.timestamp(),
            actor,
            "user.password_reset",
            &format!("user:{id}"),
            &format!("username={} sessions_ended={sessions}", u.username),
        )?;
        Ok::<_, Error>(u)
    })?;
    Ok((user, password))
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Id.
    pub id: i64,
    /// Label.
    pub label: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last use recorded (to within five minutes).
    pub last_used_at: Option<i64>,
    /// Expiry.
    pub expires_at: Option<i64>,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// `live`, `expired` or `revoked`.
    pub status: &'static str,
}

/// A user's tokens, newest first.
pub fn tokens(conn: &mut DbConn, user_id: i64, now: DateTime<Utc>) -> Result<Vec<TokenInfo>> {
    let now_s = now.timestamp();
    Ok(ApiToken::of_user(conn, user_id)?
        .into_iter()
        .map(|t| TokenInfo {
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now_s) {
                "expired"
            } else {
                "live"
            },
            id: t.id,
            label: t.label,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        })
        .collect())
}

/// Revoke token `token_id` of user `user_id` (refused, changing nothing, if it is not a live
/// token of that user).
pub fn revoke_token(
    conn: &mut DbConn,
    user_id: i64,
    token_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.transaction(|c| {
        if ApiToken::revoke(c, token_id, user_id, now.timestamp())? != 1 {
            return Err(Error::NotFound(format!(
                "no live token {token_id} of user {user_id}"
            )));
        }
        audit::append(
            c,
            now.timestamp(),
            actor,
            "token.revoke",
            &format!("token:{token_id}"),
            &format!("user={user_id}"),
        )?;
        Ok(())
    })
}

/// An account as the admin's list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: String,
    /// Municipality (clerks).
    pub municipality_code: Option<String>,
    /// Disabled.
    pub disabled: bool,
    /// Must change the one-time password.
    pub must_change_password: bool,
    /// Last successful login.
    pub last_login_at: Option<i64>,
    /// Live tokens.
    pub live_tokens: i64,
}

/// Every account (kofu's own system account left out), by name.
pub fn accounts(conn: &mut DbConn, now: DateTime<Utc>) -> Result<Vec<Account>> {
    use crate::db::schema::api_tokens;
    use diesel::prelude::*;
    let live: Vec<(i64, i64)> = api_tokens::table
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now.timestamp())),
        )
        .group_by(api_tokens::user_id)
        .select((api_tokens::user_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(User::list(conn)?
        .into_iter()
        .filter(|u| !u.username.starts_with("kofu:"))
        .map(|u| Account {
            live_tokens: live
                .iter()
                .find(|(id, _)| *id == u.id)
                .map_or(0, |(_, n)| *n),
            id: u.id,
            username: u.username,
            role: u.role,
            municipality_code: u.municipality_code,
            disabled: u.disabled,
            must_change_password: u.must_change_password,
            last_login_at: u.last_login_at,
        })
        .collect())
}

/// A user by login name, or not found.
pub fn by_name(conn: &mut DbConn, name: &str) -> Result<User> {
    User::by_username(conn, name)?.ok_or_else(|| Error::NotFound(format!("user {name}")))
}
