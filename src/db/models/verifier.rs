//! Verifiers, their credentials, and the linkage events they read: the values of their text
//! columns.

super::text_enum! {
    /// A verifier's standing (`verifiers.status`).
    VerifierStatus {
        /// Its credentials are admitted.
        Active = "active",
        /// Refused on every request until the admin lets it in again.
        Suspended = "suspended",
    }
}

super::text_enum! {
    /// What a verifier credential is (`verifier_credentials.kind`).
    CredentialKind {
        /// A client certificate of the verifier-client profile (mutual TLS).
        Certificate = "certificate",
        /// A bearer token (`kofuv_…`; only its hash is kept).
        Token = "token",
    }
}

super::text_enum! {
    /// What happened to a card's certificate (`linkage_events.kind`), as the change feed says.
    LinkageKind {
        /// Revoked, or put on hold.
        Revoked = "revoked",
        /// A hold was lifted.
        HoldLifted = "hold_lifted",
        /// Renewed: a new signing certificate follows the old.
        Renewed = "renewed",
    }
}
