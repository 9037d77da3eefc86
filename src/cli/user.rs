//! `kofu user …`: staff accounts and their credentials (the same services as the admin's
//! pages and `/api/v1/users`).

use super::open;
use crate::audit::{self, Actor};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::models::user::User;
use crate::error::{Error, Result};
use crate::service::auth;
use crate::service::users::{self, Role};

/// `kofu user add`.
pub fn add(cfg: &Config, role: &str, municipality: Option<&str>, name: &str) -> Result<()> {
    let role = Role::parse(role)?;
    let pool = open(cfg)?;
    let (user, otp) = users::add(
        &mut *pool.get()?,
        name,
        role,
        municipality,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    println!(
        "user {} ({}) created; one-time password: {otp}",
        user.username, user.role
    );
    println!("the password must be changed at first login");
    Ok(())
}

/// `kofu user list`: accounts, roles, last login, live tokens.
pub fn list(cfg: &Config) -> Result<()> {
    let pool = open(cfg)?;
    for a in users::accounts(&mut *pool.get()?, SystemClock.now())? {
        println!(
            "{:<20} {:<10} {:<8} {:<9} last login {:<22} tokens {}",
            a.username,
            a.role,
            a.municipality_code.as_deref().unwrap_or("-"),
            if a.disabled { "disabled" } else { "active" },
            a.last_login_at.map_or("never".to_string(), |t| format!(
                "{} JST",
                crate::jp::time::written(t)
            )),
            a.live_tokens
        );
    }
    Ok(())
}

/// `kofu user disable NAME` / `kofu user enable NAME`.
pub fn set_disabled(cfg: &Config, name: &str, disabled: bool) -> Result<()> {
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let u = users::by_name(&mut conn, name)?;
    if disabled {
        users::disable(&mut conn, u.id, &Actor::cli(), SystemClock.now())?;
        println!("{name} disabled: its sessions ended and its tokens are revoked");
    } else {
        users::enable(&mut conn, u.id, &Actor::cli(), SystemClock.now())?;
        println!("{name} enabled");
    }
    Ok(())
}

/// `kofu user reset-password NAME`: a new one-time password, printed once.
pub fn reset_password(cfg: &Config, name: &str) -> Result<()> {
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let u = users::by_name(&mut conn, name)?;
    let (_, otp) = users::reset_password(&mut conn, u.id, &Actor::cli(), SystemClock.now())?;
    println!("one-time password of {name}: {otp}");
    println!("it must be changed at the next login; the account's sessions have ended");
    Ok(())
}

/// `kofu user tokens NAME`: the account's tokens (never their secrets).
pub fn tokens(cfg: &Config, name: &str) -> Result<()> {
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let u = users::by_name(&mut conn, name)?;
    let when = |t: Option<i64>| t.map_or("-".to_string(), crate::jp::time::written);
    for t in users::tokens(&mut conn, u.id, SystemClock.now())? {
        println!(
            "{:>5}  {:<8} {:<24} created {}  last used {}  expires {}",
            t.id,
            t.status,
            t.label,
            crate::jp::time::written(t.created_at),
            when(t.last_used_at),
            when(t.expires_at)
        );
    }
    Ok(())
}

/// `kofu user revoke-token NAME ID`.
pub fn revoke_token(cfg: &Config, name: &str, token: i64) -> Result<()> {
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let u = users::by_name(&mut conn, name)?;
    users::revoke_token(&mut conn, u.id, token, &Actor::cli(), SystemClock.now())?;
    println!("token {token} of {name} revoked");
    Ok(())
}

/// `kofu user password NAME`: set a password read from standard input (never from the
/// command line), e.g. for an administrator who forgot theirs or a service account.
pub fn password(cfg: &Config, name: &str) -> Result<()> {
    let mut pw = String::new();
    std::io::stdin().read_line(&mut pw)?;
    let pw = pw.trim_end_matches(['\r', '\n']);
    if pw.chars().count() < 12 {
        return Err(Error::bad(
            "password",
            "at least 12 characters, read from standard input",
        ));
    }
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let user = User::by_username(&mut conn, name)?
        .ok_or_else(|| Error::bad("username", format!("no user {name}")))?;
    let hash = users::hash_password(pw)?;
    User::set_password(&mut conn, user.id, &hash)?;
    audit::append(
        &mut conn,
        SystemClock.now().timestamp(),
        &Actor::cli(),
        "user.password_set",
        &format!("user:{}", user.id),
        "",
    )?;
    println!("password of {name} set");
    Ok(())
}

/// `kofu user token NAME`: a bearer token for the API, printed once.
pub fn token(cfg: &Config, name: &str, label: &str, days: Option<i64>) -> Result<()> {
    let days = crate::http::api::me::token_days(&cfg.auth, days)?;
    let pool = open(cfg)?;
    let mut conn = pool.get()?;
    let user = User::by_username(&mut conn, name)?
        .ok_or_else(|| Error::bad("username", format!("no user {name}")))?;
    let (_, token) = auth::create_token(
        &mut conn,
        user.id,
        label,
        days,
        &Actor::cli(),
        SystemClock.now(),
    )?;
    println!("{token}");
    Ok(())
}
