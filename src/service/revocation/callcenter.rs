//! The call centre's loss report: the caller answers identity questions, compared with the
//! application's data (only which were asked and whether each matched is recorded), and the
//! card is suspended only when enough were asked and all matched.

use super::*;

/// Identity questions the call centre asks before suspending a card. The caller's answers
/// are compared with the application's data; only which questions were asked and whether
/// each matched is recorded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityAnswers {
    /// Name in kana (フリガナ), as the caller says it.
    pub name_kana: Option<String>,
    /// Date of birth (ISO or era form).
    pub birth_date: Option<String>,
    /// Postal code of the address.
    pub postal_code: Option<String>,
}

/// At least this many questions must be asked, and every one must match.
pub const QUESTIONS_NEEDED: usize = 2;

/// Check the caller's answers against the holder's data. Returns the audit text
/// (`name_kana=match,birth_date=match`) and whether all matched.
pub fn check_answers(
    key: &DataKey,
    conn: &mut DbConn,
    card: &CardRow,
    answers: &IdentityAnswers,
) -> Result<(String, bool)> {
    let app = ApplicationRow::get(conn, card.application_id)?
        .ok_or_else(|| Error::NotFound(format!("application {}", card.application_id)))?;
    let holder = crate::service::intake::applicant(key, &app)?;
    let mut asked = Vec::new();
    if let Some(k) = &answers.name_kana {
        let ok = crate::jp::kana::key(k) == crate::jp::kana::key(&holder.person.name_kana);
        asked.push(("name_kana", ok));
    }
    if let Some(d) = &answers.birth_date {
        let ok = crate::jp::era::parse(d).is_ok_and(|d| d == holder.person.birth_date);
        asked.push(("birth_date", ok));
    }
    if let Some(p) = &answers.postal_code {
        let ok = crate::jp::postal_code(p).is_ok_and(|p| p == holder.person.postal_code);
        asked.push(("postal_code", ok));
    }
    let text = asked
        .iter()
        .map(|(q, ok)| format!("{q}={}", if *ok { "match" } else { "mismatch" }))
        .collect::<Vec<_>>()
        .join(",");
    let all = asked.len() >= QUESTIONS_NEEDED && asked.iter().all(|(_, ok)| *ok);
    Ok((text, all))
}

/// Loss or theft: check identity, then suspend. A failed check is audited and refused.
#[allow(clippy::too_many_arguments)]
pub fn report_loss(
    conn: &mut DbConn,
    key: &DataKey,
    number: &crate::card::number::CardNumber,
    stolen: bool,
    answers: &IdentityAnswers,
    user_id: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let asked = [
        answers.name_kana.is_some(),
        answers.birth_date.is_some(),
        answers.postal_code.is_some(),
    ]
    .iter()
    .filter(|a| **a)
    .count();
    if asked < QUESTIONS_NEEDED {
        return Err(Error::bad(
            "answers",
            format!(
                "ask at least {QUESTIONS_NEEDED} identity questions (name_kana, birth_date, postal_code)"
            ),
        ));
    }
    let card = card_by_number(conn, number)?;
    let (questions, ok) = check_answers(key, conn, &card, answers)?;
    if !ok {
        audit::append(
            conn,
            now.timestamp(),
            actor,
            "card.report_loss_refused",
            &format!("card:{number}"),
            &format!("questions={questions}"),
        )?;
        return Err(Error::Forbidden(
            "the caller's answers do not match the holder's data; the card is not suspended".into(),
        ));
    }
    let detail = format!(
        "kind={} questions={questions}",
        if stolen { "stolen" } else { "lost" }
    );
    conn.transaction(|c| {
        apply(
            c,
            &card,
            Action::ReportLoss,
            By::Callcenter,
            Some(user_id),
            actor,
            &detail,
            now,
        )
    })
}
