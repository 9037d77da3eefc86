//! E-mail notifications to applicants who gave an address (SPEC §2.5): application
//! received, card shipped, card ready at the counter. A notice is queued in the database in
//! the same transaction as the event that causes it (sealed: the address and name are
//! personal data) and rendered from templates/email when it is sent. A worker sends what is
//! due over SMTP (lettre); when the server is down the notice stays queued and is retried
//! with back-off (1 minute, doubling, at most an hour), so none is lost.

use crate::config::MailConfig;
use crate::db::DbConn;
use crate::db::schema::mail_queue;
use crate::error::{Error, Result};
use crate::pii::DataKey;
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use lettre::Transport as _;
use serde::{Deserialize, Serialize};

/// Sealing domain of queued messages.
const MAIL_TABLE: &str = "mail_queue.message";
/// Longest wait between attempts, seconds.
const MAX_BACKOFF: i64 = 3600;

/// What to tell the applicant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// The application was recorded.
    Received {
        /// Applicant's name.
        name: String,
        /// Application reference.
        reference: String,
        /// Delivery at the counter (else by mail).
        counter: bool,
    },
    /// The card was posted.
    Shipped {
        /// Applicant's name.
        name: String,
        /// Application reference.
        reference: String,
        /// Tracking number.
        tracking: String,
    },
    /// The card waits at the counter.
    CounterReady {
        /// Applicant's name.
        name: String,
        /// Application reference.
        reference: String,
    },
}

impl Notice {
    fn kind(&self) -> &'static str {
        match self {
            Notice::Received { .. } => "received",
            Notice::Shipped { .. } => "shipped",
            Notice::CounterReady { .. } => "counter_ready",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Queued {
    to: String,
    notice: Notice,
}

#[derive(Template)]
#[template(path = "email/received.txt")]
struct ReceivedMail<'a> {
    name: &'a str,
    reference: &'a str,
    counter: bool,
    office: &'a str,
    phone: &'a str,
}

#[derive(Template)]
#[template(path = "email/shipped.txt")]
struct ShippedMail<'a> {
    name: &'a str,
    reference: &'a str,
    tracking: &'a str,
    office: &'a str,
    phone: &'a str,
}

#[derive(Template)]
#[template(path = "email/counter_ready.txt")]
struct CounterReadyMail<'a> {
    name: &'a str,
    reference: &'a str,
    office: &'a str,
    address: &'a str,
    hours: &'a str,
    phone: &'a str,
}

/// Subject and body of a notice.
pub fn render(notice: &Notice, office: &crate::pdf::Office) -> Result<(String, String)> {
    let err = |e: askama::Error| Error::Internal(format!("mail template: {e}"));
    Ok(match notice {
        Notice::Received {
            name,
            reference,
            counter,
        } => (
            format!("【社会保障カード】申請を受け付けました（{reference}）"),
            ReceivedMail {
                name,
                reference,
                counter: *counter,
                office: &office.name,
                phone: &office.phone,
            }
            .render()
            .map_err(err)?,
        ),
        Notice::Shipped {
            name,
            reference,
            tracking,
        } => (
            format!("【社会保障カード】カードを発送しました（{reference}）"),
            ShippedMail {
                name,
                reference,
                tracking,
                office: &office.name,
                phone: &office.phone,
            }
            .render()
            .map_err(err)?,
        ),
        Notice::CounterReady { name, reference } => (
            format!("【社会保障カード】窓口でお受け取りいただけます（{reference}）"),
            CounterReadyMail {
                name,
                reference,
                office: &office.name,
                address: &office.address,
                hours: &office.counter_hours,
                phone: &office.phone,
            }
            .render()
            .map_err(err)?,
        ),
    })
}

/// Queue `notice` for `to`, inside the caller's transaction.
pub fn enqueue(
    conn: &mut DbConn,
    key: &DataKey,
    to: &str,
    notice: Notice,
    now: DateTime<Utc>,
) -> Result<()> {
    let kind = notice.kind();
    let sealed = key.seal_json(
        MAIL_TABLE,
        &Queued {
            to: to.to_string(),
            notice,
        },
    )?;
    diesel::insert_into(mail_queue::table)
        .values((
            mail_queue::kind.eq(kind),
            mail_queue::message.eq(&sealed),
            mail_queue::state.eq(crate::db::models::mail::MailState::Pending.as_str()),
            mail_queue::attempts.eq(0),
            mail_queue::next_attempt_at.eq(now.timestamp()),
            mail_queue::created_at.eq(now.timestamp()),
        ))
        .execute(conn)?;
    Ok(())
}

/// An SMTP connection as configured.
pub struct Mailer {
    smtp: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
    office: crate::pdf::Office,
}

impl Mailer {
    /// The configured transport; None when no SMTP host is configured.
    pub fn from_config(cfg: &MailConfig, office: crate::pdf::Office) -> Result<Option<Self>> {
        let Some(host) = &cfg.host else {
            return Ok(None);
        };
        let builder = match cfg.security.as_str() {
            "starttls" => lettre::SmtpTransport::starttls_relay(host),
            "tls" => lettre::SmtpTransport::relay(host),
            "none" => Ok(lettre::SmtpTransport::builder_dangerous(host)),
            other => {
                return Err(Error::Config(format!(
                    "mail.security: expected starttls, tls or none, got {other:?}"
                )));
            }
        }
        .map_err(|e| Error::Config(format!("mail.host {host}: {e}")))?;
        let mut builder = builder
            .port(cfg.port)
            .timeout(Some(std::time::Duration::from_secs(cfg.timeout_s)));
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.clone(),
                    pass.expose().clone(),
                ));
        }
        let from = cfg
            .from
            .parse()
            .map_err(|e| Error::Config(format!("mail.from {:?}: {e}", cfg.from)))?;
        Ok(Some(Mailer {
            smtp: builder.build(),
            from,
            office,
        }))
    }

    fn send(&self, to: &str, subject: &str, body: String) -> std::result::Result<(), String> {
        let to: lettre::message::Mailbox = to
            .parse()
            .map_err(|_| "the recipient address is not valid".to_string())?;
        let msg = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("message: {e}"))?;
        // The error text may quote the address: keep only its kind.
        self.smtp.send(&msg).map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                "rejected by the mail server (permanent)".to_string()
            } else if e.is_transient() {
                "rejected by the mail server (transient)".to_string()
            } else {
                "mail server unreachable".to_string()
            }
        })
    }
}

/// What a delivery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Messages sent.
    pub sent: usize,
    /// Messages that failed and wait for their next attempt.
    pub deferred: usize,
}

/// Wait before attempt number `attempts + 1`.
pub fn backoff(attempts: i32) -> i64 {
    let exp = attempts.clamp(0, 16) as u32;
    (60i64 << exp).min(MAX_BACKOFF)
}

/// Seconds a message being sent is held by its sender.
const CLAIM_S: i64 = 600;

/// Send up to 100 due messages, each claimed first, then sent and marked sent (or deferred
/// with back-off). Connections are taken only to read and to record, never held while
/// talking to the mail server.
pub fn deliver_due(
    pool: &crate::db::DbPool,
    key: &DataKey,
    mailer: &Mailer,
    now: DateTime<Utc>,
) -> Result<Round> {
    let now_s = now.timestamp();
    let due: Vec<(i64, i32, Vec<u8>)> = mail_queue::table
        .filter(mail_queue::state.eq(crate::db::models::mail::MailState::Pending.as_str()))
        .filter(mail_queue::next_attempt_at.le(now_s))
        .order(mail_queue::id.asc())
        .limit(100)
        .select((mail_queue::id, mail_queue::attempts, mail_queue::message))
        .load(&mut *pool.get()?)?;
    let mut round = Round::default();
    for (id, attempts, sealed) in due {
        // Claim it first: whoever else looks at the queue (another instance, `kofu mail
        // deliver`) passes it over while it is being sent. A sender killed in between leaves
        // it to be tried again after the claim has run out (once more at most).
        let claimed = diesel::update(
            mail_queue::table
                .find(id)
                .filter(mail_queue::state.eq(crate::db::models::mail::MailState::Pending.as_str()))
                .filter(mail_queue::next_attempt_at.le(now_s)),
        )
        .set(mail_queue::next_attempt_at.eq(now_s + CLAIM_S))
        .execute(&mut *pool.get()?)?;
        if claimed != 1 {
            continue;
        }
        let q: Queued = key.open_json(MAIL_TABLE, &sealed)?;
        let (subject, body) = render(&q.notice, &mailer.office)?;
        let outcome = mailer.send(&q.to, &subject, body);
        let mut conn = pool.get()?;
        match outcome {
            Ok(()) => {
                diesel::update(mail_queue::table.find(id).filter(
                    mail_queue::state.eq(crate::db::models::mail::MailState::Pending.as_str()),
                ))
                .set((
                    mail_queue::state.eq(crate::db::models::mail::MailState::Sent.as_str()),
                    mail_queue::attempts.eq(attempts + 1),
                    mail_queue::sent_at.eq(now_s),
                    mail_queue::last_error.eq(None::<String>),
                ))
                .execute(&mut *conn)?;
                round.sent += 1;
            }
            Err(why) => {
                tracing::warn!(mail = id, attempts = attempts + 1, error = %why, "mail deferred");
                diesel::update(mail_queue::table.find(id))
                    .set((
                        mail_queue::attempts.eq(attempts + 1),
                        mail_queue::next_attempt_at.eq(now_s + backoff(attempts)),
                        mail_queue::last_error.eq(why),
                    ))
                    .execute(&mut *conn)?;
                round.deferred += 1;
            }
        }
    }
    Ok(round)
}

/// Messages waiting to be sent.
pub fn pending(conn: &mut DbConn) -> Result<i64> {
    Ok(mail_queue::table
        .filter(mail_queue::state.eq(crate::db::models::mail::MailState::Pending.as_str()))
        .count()
        .get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1), 120);
        assert_eq!(backoff(5), 1920);
        assert_eq!(backoff(6), 3600);
        assert_eq!(backoff(500), 3600);
    }
}
