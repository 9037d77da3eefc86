//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the whole `/api/v1`.
//!
//! Made from the route table ([`crate::http::routes`]): paths, methods, path parameters, who
//! may call each operation, its summary, body and query parameters are all declared there
//! with the handler, so the document cannot list a route that does not exist or miss one
//! that does.

use crate::http::{Access, routes};
use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

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
    for r in routes().filter(|r| r.path.starts_with("/api/v1/")) {
        let (sec, who) = security(r.access);
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                // Record ids are integers; card numbers and serials are strings.
                let ty = if matches!(name, "id" | "credential" | "token") {
                    "integer"
                } else {
                    "string"
                };
                json!({"name": name, "in": "path", "required": true, "schema": {"type": ty}})
            })
            .collect();
        let mut op = json!({
            "operationId": format!("{} {}", r.method, r.path),
            "summary": r.summary,
            "description": who,
            "security": sec,
            "responses": {
                (if r.created { "201" } else { "200" }): {"description": if r.created { "created" } else { "done" }},
                "4XX": {"description": "refused; the body names what is wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        params.extend(r.query.iter().map(|(n, desc)| {
            json!({"name": n, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
        }));
        if let Some(body) = r.body
            && let Ok(schema) = serde_json::from_str::<Value>(body)
        {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
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
                "Forms": {"type": "object", "additionalProperties": false, "properties": {"application": {"type": "boolean"}, "power_of_attorney": {"type": "boolean"}, "consent": {"type": "boolean"}}},
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

    /// Every `/api/v1` route has a summary, every body schema is JSON, and the document
    /// lists exactly the table's API routes.
    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let doc = document_value();
        let mut listed = 0;
        for r in routes().filter(|r| r.path.starts_with("/api/v1/")) {
            assert!(!r.summary.is_empty(), "{r:?} has no summary");
            if let Some(b) = r.body {
                serde_json::from_str::<Value>(b)
                    .unwrap_or_else(|e| panic!("{r:?}: body schema: {e}"));
            }
            assert!(
                doc["paths"][r.path][r.method.to_ascii_lowercase()].is_object(),
                "{r:?} missing from the document"
            );
            listed += 1;
        }
        let in_doc: usize = doc["paths"]
            .as_object()
            .map(|p| {
                p.values()
                    .filter_map(Value::as_object)
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(in_doc, listed);
    }
}
