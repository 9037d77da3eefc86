//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the whole `/api/v1`.
//!
//! Paths, methods, path parameters and who may call each operation come from the route
//! table ([`crate::http::ROUTES`]), so the document cannot list a route that does not exist
//! or miss one that does; [`OPERATIONS`] adds each operation's summary and body, and a test
//! holds the two tables to each other.

use crate::http::{Access, ROUTES};
use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

/// One documented operation: method, path, summary, request body schema, query parameters.
pub struct Operation {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern as in the route table.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// JSON body schema (as JSON text), if any.
    pub body: Option<&'static str>,
    /// Query parameters: name, description.
    pub query: &'static [(&'static str, &'static str)],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    query: &'static [(&'static str, &'static str)],
) -> Operation {
    Operation {
        method,
        path,
        summary,
        body,
        query,
    }
}

const SERIALS: &str = r#"{"type":"object","required":["serials"],"additionalProperties":false,"properties":{"serials":{"type":"array","maxItems":10000,"items":{"type":"string","pattern":"^[0-9A-Fa-f:]{1,59}$"},"description":"signing-certificate serials, hex"}}}"#;

/// Every `/api/v1` operation.
pub const OPERATIONS: &[Operation] = &[
    op("GET", "/api/v1/openapi.json", "This document.", None, &[]),
    op(
        "GET",
        "/api/v1/me",
        "The logged-in staff member.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/tokens",
        "Create an API token for oneself, giving one's password again; the token is in this answer only.",
        Some(
            r#"{"type":"object","required":["label","password"],"additionalProperties":false,"properties":{"label":{"type":"string","minLength":1,"maxLength":100},"password":{"type":"string"},"days":{"type":"integer","minimum":1,"description":"default auth.token_days, at most auth.token_max_days"}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/tokens",
        "One's own API tokens: label, created, last used, expiry, status (never the secret).",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/tokens/{id}/revoke",
        "Revoke one of one's own API tokens.",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/users",
        "List staff accounts: role, municipality, disabled, last login, live tokens.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/users/{id}/disable",
        "Disable an account: its sessions end and its tokens are revoked at once (not the last active admin).",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/users/{id}/enable",
        "Enable a disabled account.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/users/{id}/password-reset",
        "Reset an account's password to a one-time password (in this answer only); its sessions end.",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/users/{id}/tokens",
        "An account's API tokens (never the secret).",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/users/{id}/tokens/{token}/revoke",
        "Revoke one of an account's API tokens.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/users",
        "Add a staff user; the one-time password is in this answer only.",
        Some(
            r#"{"type":"object","required":["username","role"],"properties":{"username":{"type":"string"},"role":{"enum":["office","clerk","operator","callcenter","auditor","admin"]},"municipality_code":{"type":"string","description":"clerks only"}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/audit",
        "Audit log entries, newest first.",
        None,
        &[
            ("before", "entries before this sequence number"),
            ("limit", "at most this many"),
        ],
    ),
    op(
        "GET",
        "/api/v1/audit/verify",
        "Verify the audit log's hash chain.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/applications",
        "Record a mailed application. With an Idempotency-Key header, a retry gets the first answer again (Idempotent-Replayed: true) and creates nothing.",
        Some(
            r##"{"type":"object","required":["kind","name","name_kana","birth_date","sex","address","postal_code","municipality_code","delivery","forms"],"properties":{"kind":{"enum":["new","reissue","renewal"]},"name":{"type":"string"},"name_kana":{"type":"string"},"birth_date":{"type":"string","description":"ISO or Japanese era form (昭和35年10月10日, S35.10.10)"},"sex":{"type":"string"},"address":{"type":"string"},"postal_code":{"type":"string"},"municipality_code":{"type":"string","description":"6 digits with check digit"},"delivery":{"enum":["mail","counter"]},"email":{"type":"string"},"forms":{"$ref":"#/components/schemas/Forms"}}}"##,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/applications",
        "List applications.",
        None,
        &[
            ("state", "only applications in this state"),
            ("municipality_code", "only this municipality"),
            ("before", "ids before this one"),
            ("limit", "at most this many"),
        ],
    ),
    op(
        "GET",
        "/api/v1/applications/{id}",
        "One application.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/applications/{id}/forms",
        "Record which of the three forms have arrived.",
        Some(r##"{"$ref":"#/components/schemas/Forms"}"##),
        &[],
    ),
    op(
        "POST",
        "/api/v1/applications/{id}/check",
        "Compare the four fields with the resident registry (clerk of the municipality).",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/applications/{id}/decision",
        "Approve or reject after the check.",
        Some(
            r#"{"type":"object","required":["approve"],"properties":{"approve":{"type":"boolean"},"reason":{"type":"string","description":"required to reject"}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/verification",
        "The clerk's queue (own municipality only).",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/batches",
        "Order issuance of verified applications (a batch). With an Idempotency-Key header, a retry gets the first answer again and creates nothing.",
        Some(
            r#"{"type":"object","required":["application_ids"],"properties":{"application_ids":{"type":"array","items":{"type":"integer"}}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/batches/{id}",
        "A batch and its progress.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/batches/{id}/run",
        "Run (or resume) writing a batch's cards.",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/batches/{id}/labels.pdf",
        "Restricted-delivery mailing labels (PDF).",
        None,
        &[("layout", "a4 (sheets) or single")],
    ),
    op(
        "GET",
        "/api/v1/batches/{id}/pin-mailers.pdf",
        "PIN mailers (PDF).",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/batches/{id}/counter-notices.pdf",
        "Counter-pickup notice letters (PDF).",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/cards/{number}",
        "A card, its delivery and its certificates' statuses.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/cards/{number}/delivery",
        "Record shipping, delivery, return or handover.",
        Some(
            r#"{"type":"object","required":["event"],"properties":{"event":{"enum":["shipped","delivered","returned","handed_over"]},"tracking_number":{"type":"string","description":"shipped"},"identity_checked":{"type":"boolean","description":"handed_over"}}}"#,
        ),
        &[],
    ),
    op(
        "POST",
        "/api/v1/cards/{number}/loss-report",
        "Loss or theft reported by the holder: after the identity questions, the card's certificates are put on hold.",
        Some(
            r#"{"type":"object","required":["kind","answers"],"properties":{"kind":{"enum":["lost","stolen"]},"answers":{"type":"object","properties":{"name_kana":{"type":"string"},"birth_date":{"type":"string"},"postal_code":{"type":"string"}}}}}"#,
        ),
        &[],
    ),
    op(
        "POST",
        "/api/v1/cards/{number}/status",
        "Revoke, lift a hold, revoke at the holder's request or destroy (office).",
        Some(
            r#"{"type":"object","required":["action"],"properties":{"action":{"enum":["revoke","lift_hold","holder_request","destroy"]}}}"#,
        ),
        &[],
    ),
    op(
        "POST",
        "/api/v1/cards/{number}/renewal",
        "Write a new signing certificate to the card at the counter (holder's PIN).",
        Some(r#"{"type":"object","required":["pin"],"properties":{"pin":{"type":"string"}}}"#),
        &[],
    ),
    op(
        "POST",
        "/api/v1/certificates",
        "Issue an infrastructure certificate (OCSP responder, verifier client, TLS server) from a CSR signed with SHA-256 or stronger. Holder certificates are never issued from a request.",
        Some(
            r#"{"type":"object","required":["profile","csr"],"additionalProperties":false,"properties":{"profile":{"enum":["ocsp","verifier-client","tls-server"]},"csr":{"type":"string","description":"PEM"},"ca":{"type":"string"}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/certificates/{serial}",
        "One certificate.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/crls/publish",
        "Sign and publish CRLs now.",
        Some(r#"{"type":"object","properties":{"delta_only":{"type":"boolean"}}}"#),
        &[],
    ),
    op(
        "GET",
        "/api/v1/verifiers",
        "List verifiers and their credentials.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/verifiers",
        "Register a verifier.",
        Some(
            r#"{"type":"object","required":["name","contact","cas"],"additionalProperties":false,"properties":{"name":{"type":"string"},"contact":{"type":"string"},"cas":{"type":"array","items":{"enum":["signing","authentication","infrastructure"]}},"rate_limit":{"type":"integer","description":"requests per minute"}}}"#,
        ),
        &[],
    ),
    op(
        "GET",
        "/api/v1/verifiers/{id}",
        "One verifier and its credentials.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/verifiers/{id}/status",
        "Suspend or reactivate a verifier (takes effect at the next request).",
        Some(
            r#"{"type":"object","required":["status"],"properties":{"status":{"enum":["active","suspended"]}}}"#,
        ),
        &[],
    ),
    op(
        "POST",
        "/api/v1/verifiers/{id}/tokens",
        "Give a verifier an API token; the token is in this answer only.",
        Some(r#"{"type":"object","required":["label"],"properties":{"label":{"type":"string"}}}"#),
        &[],
    ),
    op(
        "POST",
        "/api/v1/verifiers/{id}/certificates",
        "Give a verifier a client certificate for mutual TLS (verifier-client profile).",
        Some(
            r#"{"type":"object","required":["label","csr"],"properties":{"label":{"type":"string"},"csr":{"type":"string","description":"PEM"}}}"#,
        ),
        &[],
    ),
    op(
        "POST",
        "/api/v1/verifiers/{id}/credentials/{credential}/revoke",
        "Revoke a verifier's token or client certificate (the certificate is revoked in CRL and OCSP too).",
        None,
        &[],
    ),
    op(
        "GET",
        "/api/v1/verifier",
        "Who these verifier credentials belong to.",
        None,
        &[],
    ),
    op(
        "POST",
        "/api/v1/linkage/serials",
        "Register signing-certificate serials that the verifier's users presented (idempotent).",
        Some(SERIALS),
        &[],
    ),
    op(
        "POST",
        "/api/v1/linkage/query",
        "For registered serials: status, linked authentication serial, newest signing serial after renewals. Any other serial is answered {\"found\": false}, as if it did not exist.",
        Some(SERIALS),
        &[],
    ),
    op(
        "GET",
        "/api/v1/linkage/changes",
        "Changes since a cursor (linked, renewed, revoked, hold_lifted) as JSON lines or CSV; the next cursor is in the Kofu-Next-Cursor header and in every entry.",
        None,
        &[
            (
                "cursor",
                "start after this cursor (omitted: from the beginning)",
            ),
            ("limit", "at most this many entries (1–10000)"),
            ("format", "jsonl (default) or csv"),
        ],
    ),
];

fn security(access: Access) -> (Value, String) {
    match access {
        Access::Public => (json!([]), "Anyone.".into()),
        Access::AnyStaff => (
            json!([{"staffToken": []}, {"staffSession": []}]),
            "Any staff member.".into(),
        ),
        Access::Roles(roles) => (
            json!([{"staffToken": []}, {"staffSession": []}]),
            format!(
                "Roles: {}.",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Access::Revocation | Access::Verifier => (
            json!([{"verifierToken": []}, {"verifierCertificate": []}]),
            "Registered verifiers.".into(),
        ),
    }
}

/// The document.
pub fn document_value() -> Value {
    let mut paths = Map::new();
    for r in ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        let doc = OPERATIONS
            .iter()
            .find(|o| o.method == r.method && o.path == r.path);
        let (sec, who) = security(r.access);
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "operationId": format!("{} {}", r.method, r.path),
            "summary": doc.map_or("", |d| d.summary),
            "description": who,
            "security": sec,
            "responses": {
                "200": {"description": "done"},
                "4XX": {"description": "refused; the body names what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if let Some(d) = doc {
            params.extend(d.query.iter().map(|(n, desc)| {
                json!({"name": n, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
            }));
            if let Some(body) = d.body
                && let Ok(schema) = serde_json::from_str::<Value>(body)
            {
                op["requestBody"] =
                    json!({"required": true, "content": {"application/json": {"schema": schema}}});
            }
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kofu API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every staff action of kofu, and the verifier services (serial linkage). Staff authenticate with a bearer token (POST /api/v1/tokens) or a session cookie plus X-CSRF-Token; verifiers with a client certificate on the TLS listener or a verifier token.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "staffToken": {"type": "http", "scheme": "bearer", "description": "kofu_… token of a staff member"},
                "staffSession": {"type": "apiKey", "in": "cookie", "name": crate::http::SESSION_COOKIE},
                "verifierToken": {"type": "http", "scheme": "bearer", "description": "kofuv_… token of a verifier"},
                "verifierCertificate": {"type": "mutualTLS", "description": "client certificate of the verifier-client profile, on the TLS listener"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"code": {"type": "string"}, "error": {"type": "string"}, "field": {"type": "string"}, "errors": {"type": "array"}}},
                "Forms": {"type": "object", "properties": {"application": {"type": "boolean"}, "power_of_attorney": {"type": "boolean"}, "consent": {"type": "boolean"}}},
            },
        },
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(document_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        for r in ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/")) {
            let d = OPERATIONS
                .iter()
                .find(|o| o.method == r.method && o.path == r.path);
            assert!(
                d.is_some_and(|d| !d.summary.is_empty()),
                "{} {} has no entry in OPERATIONS",
                r.method,
                r.path
            );
        }
        for o in OPERATIONS {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.method == o.method && r.path == o.path),
                "OPERATIONS documents {} {}, which is not a route",
                o.method,
                o.path
            );
            if let Some(b) = o.body {
                serde_json::from_str::<Value>(b)
                    .unwrap_or_else(|e| panic!("{} {}: body schema: {e}", o.method, o.path));
            }
        }
    }
}
