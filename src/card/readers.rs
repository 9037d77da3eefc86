//! The card stack: the slots of the card readers' PKCS#11 module, what each token in them is
//! (blank, labelled with a card number, unreadable), and taking a card for personalisation.
//!
//! A card is taken in one step under a lock: `C_InitToken` with the card number as label and
//! the derived security-officer PIN, the security officer's login, `C_InitPIN`, and the
//! holder's login. A token that does not go through that step is **set aside**: kofu never
//! picks it again in this process (by chip serial, or by slot when it has none) and tells the
//! caller, who records it so that the operator pulls the physical card. Nothing here knows
//! the database; the batch runner decides what a set-aside token means for its card.
//!
//! What an interrupted personalisation can leave, and the rule for each:
//! - nothing (killed before `C_InitToken`): the card is still blank and is taken again;
//! - a token labelled with the number that refuses `C_InitToken` with its SO PIN, or takes
//!   it and then refuses the SO login (SoftHSM2 leaves a token without an SO PIN when killed
//!   inside `C_InitToken`), or cannot have its PIN set: set aside, and the number is burnt
//!   ([`Taken::NumberBurnt`]) so that no two cards ever carry one number;
//! - a token labelled with the number and the right SO PIN (killed after `C_InitToken` or
//!   `C_InitPIN`): initialised again, which wipes whatever it held;
//! - a blank card that cannot be initialised: set aside, and the next blank one is taken.

use crate::card::token::Card;
use crate::error::{Error, Result};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

fn p11(e: P11Error) -> Error {
    Error::Crypto(format!("PKCS#11: {e}"))
}

/// Why a token is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsideReason {
    /// It carries a card number but refuses that card's security-officer PIN.
    SoPinMismatch,
    /// It cannot be initialised.
    InitFailed,
    /// Its holder PIN cannot be set, or it no longer opens with its PIN.
    PinFailed,
    /// Its token information cannot be read.
    Unreadable,
    /// It is initialised with a label that is no card kofu knows.
    UnknownLabel,
    /// It carries the number of a card that was written on another chip.
    OtherCard,
    /// It is a card spoiled while being written.
    Spoiled,
}

impl AsideReason {
    /// Every reason, in the order the pages list them.
    pub const ALL: [AsideReason; 7] = [
        AsideReason::SoPinMismatch,
        AsideReason::InitFailed,
        AsideReason::PinFailed,
        AsideReason::Unreadable,
        AsideReason::UnknownLabel,
        AsideReason::OtherCard,
        AsideReason::Spoiled,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AsideReason::SoPinMismatch => "so_pin_mismatch",
            AsideReason::InitFailed => "init_failed",
            AsideReason::PinFailed => "pin_failed",
            AsideReason::Unreadable => "unreadable",
            AsideReason::UnknownLabel => "unknown_label",
            AsideReason::OtherCard => "other_card",
            AsideReason::Spoiled => "spoiled",
        }
    }

    /// Parse a stored value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// For the operator's page.
    pub fn label_ja(self) -> &'static str {
        match self {
            AsideReason::SoPinMismatch => "セキュリティ責任者PINが一致しない",
            AsideReason::InitFailed => "初期化できない",
            AsideReason::PinFailed => "PINを設定できない・PINで開けない",
            AsideReason::Unreadable => "読み取れない",
            AsideReason::UnknownLabel => "kofu の知らないラベル",
            AsideReason::OtherCard => "他のチップに書いたカードの番号",
            AsideReason::Spoiled => "書損",
        }
    }
}

/// A token kofu will not use, and why: for the record and the operator's pull list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The reader slot it was found in.
    pub slot: u64,
    /// The chip serial (empty when the token reports none).
    pub chip_serial: String,
    /// Its label (empty when it has none).
    pub label: String,
    /// Why.
    pub reason: AsideReason,
    /// What the token said (the PKCS#11 error), for the log and the record.
    pub detail: String,
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A card not yet initialised.
    Blank {
        /// Slot.
        slot: u64,
    },
    /// An initialised card.
    Labelled {
        /// Slot.
        slot: u64,
        /// Token label.
        label: String,
        /// Chip serial.
        serial: String,
    },
    /// A card whose token information cannot be read.
    Unreadable {
        /// Slot.
        slot: u64,
        /// The error.
        error: String,
    },
}

/// The outcome of taking a card for a card number.
pub enum Taken {
    /// Personalised and open, the holder logged in.
    Card(Card),
    /// A token carrying the number had to be set aside: the number must not be used again.
    NumberBurnt(SetAside),
}

/// Why a personalised card did not open.
#[derive(Debug, Clone)]
pub enum NotOpened {
    /// It is in no reader.
    Missing(String),
    /// It is there and refuses the PIN (for a card being written: to be set aside).
    Refused(SetAside),
}

impl std::fmt::Display for NotOpened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotOpened::Missing(why) => f.write_str(why),
            NotOpened::Refused(t) => f.write_str(&t.detail),
        }
    }
}

/// A token kofu set aside in this process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Skip {
    Serial(String),
    Slot(u64),
}

/// The card readers of one PKCS#11 module.
pub struct Readers {
    ctx: Pkcs11,
    // Taking a card (initialise, SO login, set the PIN) is one step, or two writers take
    // the same blank card, or one logs in to a token the other has just initialised.
    take: Mutex<()>,
    skip: Mutex<HashSet<Skip>>,
}

/// The step of taking a card that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Init,
    SoLogin,
    SetPin,
    Open,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Init => "C_InitToken",
            Stage::SoLogin => "security officer login",
            Stage::SetPin => "C_InitPIN",
            Stage::Open => "holder login",
        }
    }
}

/// A PKCS#11 error in a few words (the return value's name), for records and pages.
fn short(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("{rv:?} ({function:?})"),
        other => other.to_string(),
    }
}

impl Readers {
    /// Load the module.
    pub fn open(module: &Path) -> Result<Self> {
        let ctx = crate::ca::signer::load_module(module)?;
        Ok(Readers {
            ctx,
            take: Mutex::new(()),
            skip: Mutex::new(HashSet::new()),
        })
    }

    /// Never take the tokens with these chip serials (set aside earlier, recorded).
    pub fn skip_serials<'a>(&self, serials: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut skip = self.skip_list()?;
        skip.extend(
            serials
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| Skip::Serial(s.to_string())),
        );
        Ok(())
    }

    fn skip_list(&self) -> Result<std::sync::MutexGuard<'_, HashSet<Skip>>> {
        self.skip
            .lock()
            .map_err(|_| Error::Internal("card reader lock poisoned".into()))
    }

    /// Never take this token again in this process.
    fn set_aside(&self, t: &SetAside) -> Result<()> {
        let key = if t.chip_serial.is_empty() {
            Skip::Slot(t.slot)
        } else {
            Skip::Serial(t.chip_serial.clone())
        };
        self.skip_list()?.insert(key);
        tracing::warn!(
            slot = t.slot,
            chip = %t.chip_serial,
            label = %t.label,
            reason = t.reason.as_str(),
            detail = %t.detail,
            "card set aside"
        );
        Ok(())
    }

    /// Set aside a token found by [`Readers::survey`] (the caller has recorded it).
    pub fn set_aside_found(&self, t: &SetAside) -> Result<()> {
        self.set_aside(t)
    }

    fn skipped(&self, slot: Slot, serial: &str) -> Result<bool> {
        let skip = self.skip_list()?;
        Ok(skip.contains(&Skip::Slot(slot.id()))
            || (!serial.is_empty() && skip.contains(&Skip::Serial(serial.to_string()))))
    }

    /// Every slot with a token, and what it holds.
    pub fn survey(&self) -> Result<Vec<Token>> {
        let mut out = Vec::new();
        for slot in self.ctx.get_slots_with_token().map_err(p11)? {
            out.push(match self.ctx.get_token_info(slot) {
                Err(e) => Token::Unreadable {
                    slot: slot.id(),
                    error: e.to_string(),
                },
                Ok(info) if !info.token_initialized() => Token::Blank { slot: slot.id() },
                Ok(info) => Token::Labelled {
                    slot: slot.id(),
                    label: info.label().trim_end().to_string(),
                    serial: info.serial_number().trim_end().to_string(),
                },
            });
        }
        Ok(out)
    }

    /// The slots not set aside holding cards labelled `label` (and with chip serial
    /// `serial`, if given).
    fn find(&self, label: &str, serial: Option<&str>) -> Result<Vec<Slot>> {
        let mut out = Vec::new();
        for slot in self.ctx.get_slots_with_token().map_err(p11)? {
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            let chip = info.serial_number().trim_end();
            if info.token_initialized()
                && info.label().trim_end() == label
                && serial.is_none_or(|s| chip == s)
                && !self.skipped(slot, chip)?
            {
                out.push(slot);
            }
        }
        Ok(out)
    }

    /// A slot not set aside with a card that is not yet initialised.
    fn next_blank(&self) -> Result<Option<Slot>> {
        for slot in self.ctx.get_slots_with_token().map_err(p11)? {
            if let Ok(info) = self.ctx.get_token_info(slot)
                && !info.token_initialized()
                && !self.skipped(slot, info.serial_number().trim_end())?
            {
                tracing::debug!(slot = slot.id(), "blank card taken");
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// What the token in `slot` says of itself now: (chip serial, label).
    fn identify(&self, slot: Slot) -> (String, String) {
        match self.ctx.get_token_info(slot) {
            Ok(i) => (
                i.serial_number().trim_end().to_string(),
                if i.token_initialized() {
                    i.label().trim_end().to_string()
                } else {
                    String::new()
                },
            ),
            Err(_) => (String::new(), String::new()),
        }
    }

    /// Personalise a card for number `label`: the card labelled `label` that an interrupted
    /// run left (it is wiped), or else the next blank card. Tokens that fail are set aside
    /// and reported to `aside` before anything else happens; a failing token that carries
    /// `label` burns the number.
    pub fn personalise(
        &self,
        label: &str,
        so_pin: &str,
        user_pin: &str,
        aside: &mut dyn FnMut(&SetAside) -> Result<()>,
    ) -> Result<Taken> {
        let so = AuthPin::from(so_pin.to_string());
        let pin = AuthPin::from(user_pin.to_string());
        let _guard = self
            .take
            .lock()
            .map_err(|_| Error::Internal("card reader lock poisoned".into()))?;
        // A card an interrupted run left carrying the number comes first; if it will not be
        // taken back, the number is burnt.
        if let Some(slot) = self.find(label, None)?.first().copied() {
            return match self.take_slot(slot, label, &so, &pin)? {
                Ok(card) => Ok(Taken::Card(card)),
                Err((stage, e)) => {
                    let t = self.failed(slot, label, stage, &e);
                    self.set_aside(&t)?;
                    aside(&t)?;
                    Ok(Taken::NumberBurnt(t))
                }
            };
        }
        while let Some(slot) = self.next_blank()? {
            match self.take_slot(slot, label, &so, &pin)? {
                Ok(card) => return Ok(Taken::Card(card)),
                Err((stage, e)) => {
                    let t = self.failed(slot, label, stage, &e);
                    self.set_aside(&t)?;
                    aside(&t)?;
                    // A token that now carries the number burns it; one that stayed blank
                    // only costs this card.
                    if stage != Stage::Init || t.label == label {
                        return Ok(Taken::NumberBurnt(t));
                    }
                }
            }
        }
        Err(Error::Unavailable(
            "no blank card in the readers: insert blank cards and run the batch again".into(),
        ))
    }

    /// The record of a token that failed at `stage`.
    fn failed(&self, slot: Slot, label: &str, stage: Stage, e: &P11Error) -> SetAside {
        let (chip_serial, now_label) = self.identify(slot);
        let pin_refused = matches!(
            e,
            P11Error::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _)
        );
        let reason = match stage {
            Stage::Init | Stage::SoLogin if pin_refused => AsideReason::SoPinMismatch,
            Stage::SoLogin | Stage::Init => AsideReason::InitFailed,
            Stage::SetPin | Stage::Open => AsideReason::PinFailed,
        };
        SetAside {
            slot: slot.id(),
            chip_serial,
            label: if now_label.is_empty() && stage != Stage::Init {
                label.to_string()
            } else {
                now_label
            },
            reason,
            detail: format!("{}: {}", stage.as_str(), short(e)),
        }
    }

    /// Initialise the token in `slot` as card `label`, set its PIN and log the holder in.
    /// The inner error is the token's refusal (the caller sets the token aside).
    fn take_slot(
        &self,
        slot: Slot,
        label: &str,
        so: &AuthPin,
        pin: &AuthPin,
    ) -> Result<std::result::Result<Card, (Stage, P11Error)>> {
        if let Err(e) = self.ctx.init_token(slot, so, label) {
            return Ok(Err((Stage::Init, e)));
        }
        step(label, "token initialised");
        let session = match self.ctx.open_rw_session(slot) {
            Ok(s) => s,
            Err(e) => return Ok(Err((Stage::SoLogin, e))),
        };
        if let Err(e) = session.login(UserType::So, Some(so)) {
            return Ok(Err((Stage::SoLogin, e)));
        }
        if let Err(e) = session.init_pin(pin) {
            return Ok(Err((Stage::SetPin, e)));
        }
        step(label, "pin set");
        if let Err(e) = session.logout() {
            return Ok(Err((Stage::SetPin, e)));
        }
        match self.card(slot, session, label, pin)? {
            Ok(card) => Ok(Ok(card)),
            Err(e) => Ok(Err((Stage::Open, e))),
        }
    }

    /// Open the personalised card labelled `label` with chip serial `serial` and log in.
    /// The inner error says why not: the card is in no reader, or it does not open with
    /// `user_pin` (a wrong PIN, or a chip left inconsistent by an interrupted write).
    pub fn open_card(
        &self,
        label: &str,
        serial: &str,
        user_pin: &str,
    ) -> Result<std::result::Result<Card, NotOpened>> {
        let Some(slot) = self.find(label, Some(serial))?.first().copied() else {
            return Ok(Err(NotOpened::Missing(format!(
                "card {label} (chip {serial}) is in no reader"
            ))));
        };
        let session = self.ctx.open_rw_session(slot).map_err(p11)?;
        match self.card(slot, session, label, &AuthPin::from(user_pin.to_string()))? {
            Ok(card) => Ok(Ok(card)),
            Err(e) => Ok(Err(NotOpened::Refused(SetAside {
                slot: slot.id(),
                chip_serial: serial.to_string(),
                label: label.to_string(),
                reason: AsideReason::PinFailed,
                detail: format!("card {label} does not open with its PIN: {}", short(&e)),
            }))),
        }
    }

    /// Log the holder in on `session`; the inner error is a refusal of the card's.
    fn card(
        &self,
        slot: Slot,
        session: cryptoki::session::Session,
        label: &str,
        pin: &AuthPin,
    ) -> Result<std::result::Result<Card, P11Error>> {
        match session.login(UserType::User, Some(pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(
                e @ P11Error::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::UserPinNotInitialized
                    | RvError::TokenNotRecognized
                    | RvError::DeviceError
                    | RvError::GeneralError,
                    _,
                ),
            ) => return Ok(Err(e)),
            Err(e) => {
                return Err(Error::Crypto(format!("cannot log in to card {label}: {e}")));
            }
        }
        // Asked for the one mechanism: the whole list makes cryptoki log an error for each
        // vendor mechanism it has no name for (about 30 per card on SoftHSM2).
        let can_generate = match self
            .ctx
            .get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        {
            Ok(_) => true,
            Err(P11Error::Pkcs11(RvError::MechanismInvalid, _)) => false,
            Err(e) => return Err(p11(e)),
        };
        let serial = self
            .ctx
            .get_token_info(slot)
            .map_err(p11)?
            .serial_number()
            .trim_end()
            .to_string();
        Ok(Ok(Card::new(session, label, serial, can_generate)))
    }
}

/// Log a step of writing card `label` (the card number only: nothing personal). The crash
/// tests kill the runner right after these lines.
pub fn step(label: &str, what: &str) {
    tracing::debug!(card = %label, step = what, "card step");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_have_labels() {
        for r in AsideReason::ALL {
            assert_eq!(AsideReason::parse(r.as_str()), Some(r));
            assert!(!r.label_ja().is_empty());
        }
        assert_eq!(AsideReason::parse("nonsense"), None);
    }
}
