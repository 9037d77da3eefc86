//! JSON handlers under /api/v1: parse, call a service, convert.

pub mod applications;
pub mod audit;
pub mod batches;
pub mod cards;
pub mod certificates;
pub mod me;
pub mod users;
