//! Staff users and roles (SPEC §1), with argon2id password hashes.

use crate::audit::{self, Actor};
use crate::ca::identity::check_municipality_code;
use crate::db::DbConn;
use crate::db::models::user::{NewUser, User};
use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use diesel::Connection;
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
                return Err(Error::Conflict(format!("user {username} already exists")));
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
