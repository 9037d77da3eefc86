//! Workflows. Each function takes `now` (from the Clock) and a connection; writes compose
//! inside a caller's transaction.

pub mod auth;
pub mod batches;
pub mod ca;
pub mod card_stack;
pub mod cert_store;
pub mod crl;
pub mod delivery;
pub mod duties;
pub mod idempotency;
pub mod intake;
pub mod issuance;
pub mod lease;
pub mod linkage;
pub mod ocsp;
pub mod orders;
pub mod refusals;
pub mod renewal;
pub mod revocation;
pub mod status;
pub mod tls_server;
pub mod users;
pub mod verification;
pub mod verifier_identity;
pub mod verifiers;
