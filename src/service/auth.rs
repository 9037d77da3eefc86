//! Staff authentication: password login with lock-out, web sessions with a CSRF token, and
//! bearer tokens for the API. Session ids and tokens are random 256-bit values; only their
//! SHA-256 is stored.

use crate::audit::{self, Actor};
use crate::config::AuthConfig;
use crate::db::DbConn;
use crate::db::models::user::{self, ApiToken, Session, User};
use crate::error::{Error, Result};
use crate::service::refusals::Refusals;
use crate::service::users::{Role, verify_password};
use chrono::{DateTime, Utc};
use diesel::Connection;

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

/// Where a login comes from and the rules it is held to.
pub struct LoginContext<'a> {
    /// The client's address (the TCP peer).
    pub source: &'a str,
    /// Lock-out rules.
    pub policy: &'a AuthConfig,
    /// Where repeated refusals are counted instead of audited one by one.
    pub refusals: &'a Refusals,
}

/// Check a password login. Failures are recorded per account and source address:
/// `failures_per_source` within `lockout_window_s` lock the account for that address only,
/// so nobody can lock a colleague out from elsewhere; `failures_per_account` from all
/// addresses within `account_window_s` lock it everywhere (a slow, distributed guess). An
/// unknown username is treated the same way, so the answer does not reveal which names
/// exist. Failures are audited, a flood of them counted ([`Refusals`]).
pub fn login(
    conn: &mut DbConn,
    ctx: &LoginContext<'_>,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    let now_s = now.timestamp();
    let username = username.trim();
    let policy = ctx.policy;
    let anon = Actor::new(username, "anonymous");
    let refuse = |conn: &mut DbConn, action: &str, detail: &str| -> Result<()> {
        user::record_login_attempt(conn, username, ctx.source, now_s, false)?;
        let target = format!("username:{username}");
        if ctx.refusals.admit(
            &format!("login:{username}:{}", ctx.source),
            &anon,
            action,
            &target,
            now_s,
        )? {
            audit::append(conn, now_s, &anon, action, &target, detail)?;
        }
        Ok(())
    };
    let from_here = user::recent_failures(
        conn,
        username,
        Some(ctx.source),
        now_s - policy.lockout_window_s,
    )?;
    if from_here >= policy.failures_per_source {
        refuse(conn, "login.locked", &format!("source={}", ctx.source))?;
        return Err(Error::Locked(format!(
            "too many failed logins from this address; try again in {} minutes or ask an administrator",
            policy.lockout_window_s / 60
        )));
    }
    let everywhere = user::recent_failures(conn, username, None, now_s - policy.account_window_s)?;
    if everywhere >= policy.failures_per_account {
        refuse(conn, "login.locked", "account ceiling")?;
        return Err(Error::Locked(format!(
            "too many failed logins for this account from several addresses; it is locked for \
             up to {} minutes, or until an administrator resets its password",
            policy.account_window_s / 60
        )));
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
        refuse(conn, "login.failed", &format!("source={}", ctx.source))?;
        return Err(Error::Unauthenticated);
    };
    let cookie = random_secret()?;
    let csrf = random_secret()?;
    let staff = StaffUser::from_user(&u, Some(csrf.clone()))?;
    conn.transaction(|c| {
        user::record_login_attempt(c, username, ctx.source, now_s, true)?;
        User::logged_in(c, u.id, now_s)?;
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
            &format!("source={}", ctx.source),
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

/// Create an API token for `user_id`, valid for `days` days; the token is returned once.
pub fn create_token(
    conn: &mut DbConn,
    user_id: i64,
    label: &str,
    days: i64,
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
    if days < 1 {
        return Err(Error::bad("days", "a token lasts at least one day"));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let expires_at = now.timestamp() + days * 86_400;
    let row = conn.transaction(|c| {
        let row = ApiToken::insert(
            c,
            user_id,
            &secret_hash(&token),
            label,
            now.timestamp(),
            expires_at,
        )?;
        audit::append(
            c,
            now.timestamp(),
            actor,
            "token.create",
            &format!("token:{}", row.id),
            &format!("user={user_id} days={days}"),
        )?;
        Ok::<_, Error>(row)
    })?;
    Ok((row.id, token))
}

/// A bearer token's user, with the token's id and when its use was last recorded.
#[derive(Debug, Clone)]
pub struct TokenUse {
    /// The user.
    pub user: StaffUser,
    /// Token id.
    pub token_id: i64,
    /// Last recorded use.
    pub last_used_at: Option<i64>,
}

/// The user of a live bearer token: None for an unknown or revoked token or a disabled
/// account; an expired token is refused naming its expiry.
pub fn token_user(conn: &mut DbConn, token: &str, now: DateTime<Utc>) -> Result<Option<TokenUse>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    match ApiToken::live(conn, &secret_hash(token))? {
        Some((t, _)) if t.expires_at.is_some_and(|e| e <= now.timestamp()) => {
            Err(Error::Expired(format!(
                "this API token expired on {} JST; ask for a new one",
                crate::jp::time::written(t.expires_at.unwrap_or_default())
            )))
        }
        Some((t, u)) if !u.disabled => Ok(Some(TokenUse {
            user: StaffUser::from_user(&u, None)?,
            token_id: t.id,
            last_used_at: t.last_used_at,
        })),
        _ => Ok(None),
    }
}

/// Check the caller's own password again before a sensitive step (minting a token): a
/// wrong one is refused and audited.
pub fn confirm_password(
    conn: &mut DbConn,
    user: &StaffUser,
    password: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let u = User::by_id(conn, user.id)?.ok_or(Error::Unauthenticated)?;
    if verify_password(password, &u.password_hash) {
        return Ok(());
    }
    audit::append(
        conn,
        now.timestamp(),
        &user.actor(),
        "token.refused",
        &format!("user:{}", user.id),
        "wrong password",
    )?;
    Err(Error::bad("password", "the password is wrong"))
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
