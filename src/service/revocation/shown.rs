//! What the screens and the API show of a card's lifecycle: its certificates with their
//! status, the actions the table allows, the office's list of suspended cards.

use super::*;

/// One certificate on a card, as the screens and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct CertView {
    /// Serial (hex).
    pub serial: String,
    /// signing or authentication.
    pub profile: String,
    /// good, held, revoked.
    pub status: CertStatus,
    /// Reason (RFC 5280 name).
    pub reason: Option<&'static str>,
    /// Since (Unix seconds).
    pub revoked_at: Option<i64>,
    /// notAfter (Unix seconds).
    pub not_after: i64,
}

/// A card's status and certificates (nothing personal).
pub fn certificates_view(conn: &mut DbConn, card_id: i64) -> Result<Vec<CertView>> {
    card_certificates(conn, card_id)?
        .into_iter()
        .map(|c| {
            Ok(CertView {
                status: CertStatus::of(c.revocation_reason),
                reason: c
                    .revocation_reason
                    .map(Reason::from_code)
                    .transpose()?
                    .map(Reason::as_str),
                serial: c.serial,
                profile: c.profile,
                revoked_at: c.revoked_at,
                not_after: c.not_after,
            })
        })
        .collect()
}

/// The actions the table allows on this card for this kind of actor (for the screens).
pub fn allowed(card: &CardRow, by: By) -> Vec<Action> {
    RULES
        .iter()
        .filter(|r| r.permits(card, by).is_ok())
        .map(|r| r.action)
        .collect()
}

/// Suspended cards, the longest suspended first (the office's list), at most `limit`.
pub fn suspended_cards(conn: &mut DbConn, limit: i64) -> Result<Vec<CardRow>> {
    Ok(cards::table
        .filter(cards::status.eq(SUSPENDED))
        .order(cards::updated_at.asc())
        .limit(limit)
        .select(CardRow::as_select())
        .load(conn)?)
}
