//! Row types, one module per table family.

pub mod ca;
pub mod user;
