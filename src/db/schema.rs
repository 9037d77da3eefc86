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
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        username -> Text,
        at -> BigInt,
        success -> Bool,
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
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    login_attempts,
    sessions,
    api_tokens,
    audit_log,
    audit_head,
    cas,
    certificates,
);
