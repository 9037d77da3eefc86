//! JSON handlers under /api/v1: parse, call a service, convert.

pub mod applications;
pub mod audit;
pub mod batches;
pub mod cards;
pub mod certificates;
pub mod linkage;
pub mod me;
pub mod openapi;
pub mod users;
pub mod verifiers;
