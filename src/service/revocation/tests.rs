//! The transition table, case by case.

use super::*;

fn card(status: &str, state: &str, written: bool) -> CardRow {
    CardRow {
        id: 1,
        card_number: "1234567890128".into(),
        application_id: 1,
        batch_id: 1,
        state: state.into(),
        chip_serial: None,
        keygen: None,
        pins: None,
        expires_on: "2031-11-21".into(),
        created_at: 0,
        updated_at: 0,
        written_at: written.then_some(1),
        tracking_number: None,
        shipped_at: None,
        delivered_at: None,
        returned_at: None,
        handed_over_at: None,
        handed_over_by: None,
        status: status.into(),
    }
}

/// What each rule permits, case by case: `Ok`, refused for the actor (Forbidden), or
/// refused for the card's status or delivery state (Conflict).
#[test]
fn the_rules_permit_what_the_table_says() {
    use Action::*;
    use By::{Callcenter, Office, Registry, System};
    #[derive(Debug, PartialEq)]
    enum Want {
        Ok,
        Forbidden,
        Conflict,
    }
    use Want::{Conflict as C, Forbidden as F, Ok as Y};
    let cases: &[(Action, By, &str, &str, bool, Want)] = &[
        // A loss report: the call centre, on an active card in the holder's hands.
        (ReportLoss, Callcenter, ACTIVE, "delivered", true, Y),
        (ReportLoss, Callcenter, ACTIVE, "handed_over", true, Y),
        (ReportLoss, Callcenter, ACTIVE, "shipped", true, Y),
        (ReportLoss, Office, ACTIVE, "delivered", true, F),
        (ReportLoss, Callcenter, SUSPENDED, "delivered", true, C),
        (ReportLoss, Callcenter, ACTIVE, "returned", true, C),
        (ReportLoss, Callcenter, ACTIVE, "allocated", false, C),
        // Revoke and lift: the office, on a suspended card only.
        (Revoke, Office, SUSPENDED, "delivered", true, Y),
        (Revoke, Office, ACTIVE, "delivered", true, C),
        (Revoke, Callcenter, SUSPENDED, "delivered", true, F),
        (LiftHold, Office, SUSPENDED, "delivered", true, Y),
        (LiftHold, Office, REVOKED, "delivered", true, C),
        // The holder's own request: active or suspended, in the holder's hands.
        (HolderRequest, Office, ACTIVE, "handed_over", true, Y),
        (HolderRequest, Office, SUSPENDED, "delivered", true, Y),
        (HolderRequest, Office, ACTIVE, "written", true, C),
        (HolderRequest, Office, DESTROYED, "delivered", true, C),
        // Destruction: before the card reached the holder, by the office or kofu.
        (Destroy, Office, ACTIVE, "returned", true, Y),
        (Destroy, System, ACTIVE, "written", true, Y),
        (Destroy, Office, ACTIVE, "delivered", true, C),
        (Destroy, Callcenter, ACTIVE, "returned", true, F),
        // The registry feed: live cards only, never by staff.
        (FieldsChanged, Registry, ACTIVE, "delivered", true, Y),
        (FieldsChanged, Registry, SUSPENDED, "delivered", true, Y),
        (FieldsChanged, Registry, REVOKED, "delivered", true, C),
        (FieldsChanged, Office, ACTIVE, "delivered", true, F),
        (Death, Registry, SUSPENDED, "delivered", true, Y),
        (Death, Office, ACTIVE, "delivered", true, F),
        // Superseded by the holder's new card: kofu only.
        (Supersede, System, ACTIVE, "delivered", true, Y),
        (Supersede, Office, ACTIVE, "delivered", true, F),
        (Supersede, System, REVOKED, "delivered", true, C),
    ];
    for (action, by, status, state, written, want) in cases {
        let got = rule(*action)
            .unwrap()
            .permits(&card(status, state, *written), *by);
        let got = match got {
            Ok(()) => Want::Ok,
            Err(Error::Forbidden(_)) => Want::Forbidden,
            Err(Error::Conflict(_)) => Want::Conflict,
            Err(e) => panic!("{action:?} by {by:?}: {e}"),
        };
        assert_eq!(
            &got, want,
            "{action:?} by {by:?} on a {status} card in state {state}"
        );
    }
    // Every action has its rule, once.
    for r in RULES {
        assert_eq!(RULES.iter().filter(|o| o.action == r.action).count(), 1);
    }
}
