//! Diesel schema, shared by both backends (the migrations under migrations/sqlite and
//! migrations/postgres create the same tables). Times are Unix seconds (UTC).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        role -> Text,
        municipality_code -> Nullable<Text>,
        password_hash -> Text,
        must_change_password -> Bool,
        disabled -> Bool,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        username -> Text,
        at -> BigInt,
        success -> Bool,
        source -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        label -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> BigInt,
        actor -> Text,
        role -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    cas (name) {
        name -> Text,
        subject -> Text,
        cert_der -> Binary,
        key_ref -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    certificates (id) {
        id -> BigInt,
        serial -> Text,
        issuer -> Text,
        profile -> Text,
        state -> Text,
        tbs_der -> Nullable<Binary>,
        cert_der -> Nullable<Binary>,
        not_before -> BigInt,
        not_after -> BigInt,
        created_at -> BigInt,
        issued_at -> Nullable<BigInt>,
        card_id -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        revocation_reason -> Nullable<Integer>,
        status_seq -> Nullable<BigInt>,
        crl_shard -> Nullable<Integer>,
        key_hash -> Nullable<Binary>,
    }
}

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    crls (id) {
        id -> BigInt,
        issuer -> Text,
        shard -> Integer,
        kind -> Text,
        number -> BigInt,
        base_number -> Nullable<BigInt>,
        covers_seq -> BigInt,
        entries -> BigInt,
        this_update -> BigInt,
        next_update -> BigInt,
        der -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    certificate_links (id) {
        id -> BigInt,
        old_certificate_id -> BigInt,
        new_certificate_id -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    mail_queue (id) {
        id -> BigInt,
        kind -> Text,
        message -> Binary,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    cards (id) {
        id -> BigInt,
        card_number -> Text,
        application_id -> BigInt,
        batch_id -> BigInt,
        state -> Text,
        chip_serial -> Nullable<Text>,
        keygen -> Nullable<Text>,
        pins -> Nullable<Binary>,
        expires_on -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        written_at -> Nullable<BigInt>,
        tracking_number -> Nullable<Text>,
        shipped_at -> Nullable<BigInt>,
        delivered_at -> Nullable<BigInt>,
        returned_at -> Nullable<BigInt>,
        handed_over_at -> Nullable<BigInt>,
        handed_over_by -> Nullable<BigInt>,
        status -> Text,
    }
}

diesel::table! {
    resident_staging (id) {
        id -> BigInt,
        import_id -> BigInt,
        municipality_code -> Text,
        resident_key -> Binary,
        status -> Text,
        dob_key -> Binary,
        name_key -> Binary,
        pii -> Binary,
        updated_at -> BigInt,
        content_key -> Binary,
    }
}

diesel::table! {
    residents (id) {
        id -> BigInt,
        municipality_code -> Text,
        resident_key -> Binary,
        status -> Text,
        dob_key -> Binary,
        name_key -> Binary,
        pii -> Binary,
        updated_at -> BigInt,
        content_key -> Nullable<Binary>,
    }
}

diesel::table! {
    registry_events (id) {
        id -> BigInt,
        municipality_code -> Text,
        event_id -> Text,
        resident_id -> BigInt,
        kind -> Text,
        effective_date -> Text,
        changed_fields -> Text,
        applied_at -> BigInt,
        processed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    applications (id) {
        id -> BigInt,
        reference -> Text,
        kind -> Text,
        state -> Text,
        municipality_code -> Text,
        delivery -> Text,
        form_application -> Bool,
        form_power_of_attorney -> Bool,
        form_consent -> Bool,
        pii -> Binary,
        created_by -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        registry_status -> Nullable<Text>,
        verdicts -> Nullable<Text>,
        resident_id -> Nullable<BigInt>,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<BigInt>,
        decision_reason -> Nullable<Text>,
        batch_id -> Nullable<BigInt>,
        previous_application_id -> Nullable<BigInt>,
        card_id -> Nullable<BigInt>,
        renews_certificate_id -> Nullable<BigInt>,
        resident_key -> Nullable<Binary>,
    }
}

diesel::table! {
    issuance_batches (id) {
        id -> BigInt,
        reference -> Text,
        state -> Text,
        ordered_by -> BigInt,
        ordered_at -> BigInt,
        application_count -> BigInt,
    }
}

diesel::table! {
    verifiers (id) {
        id -> BigInt,
        name -> Text,
        contact -> Text,
        cas -> Text,
        status -> Text,
        rate_limit -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    verifier_credentials (id) {
        id -> BigInt,
        verifier_id -> BigInt,
        kind -> Text,
        label -> Text,
        token_hash -> Nullable<Text>,
        certificate_id -> Nullable<BigInt>,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    verifier_serials (verifier_id, certificate_id) {
        verifier_id -> BigInt,
        certificate_id -> BigInt,
        card_id -> BigInt,
        seq -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    linkage_events (seq) {
        seq -> BigInt,
        kind -> Text,
        card_id -> BigInt,
        certificate_id -> BigInt,
        new_certificate_id -> Nullable<BigInt>,
        reason -> Nullable<Integer>,
        at -> BigInt,
    }
}

diesel::table! {
    set_aside_cards (id) {
        id -> BigInt,
        batch_id -> BigInt,
        card_id -> Nullable<BigInt>,
        chip_serial -> Text,
        token_label -> Text,
        reason -> Text,
        detail -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        instance -> Text,
        acquired_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, scope, idem_key) {
        user_id -> BigInt,
        scope -> Text,
        idem_key -> Text,
        request_hash -> Text,
        status -> Integer,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(verifier_credentials -> verifiers (verifier_id));
diesel::joinable!(verifier_serials -> verifiers (verifier_id));
diesel::joinable!(verifier_serials -> certificates (certificate_id));
diesel::joinable!(verifier_credentials -> certificates (certificate_id));
diesel::joinable!(registry_events -> residents (resident_id));

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    resident_staging,
    login_attempts,
    sessions,
    api_tokens,
    audit_log,
    audit_head,
    cas,
    certificates,
    residents,
    registry_events,
    applications,
    issuance_batches,
    cards,
    mail_queue,
    counters,
    crls,
    certificate_links,
    verifiers,
    verifier_credentials,
    verifier_serials,
    linkage_events,
    set_aside_cards,
    leases,
    idempotency_keys,
);
