//! Row types, one module per table family.

pub mod application;
pub mod ca;
pub mod card;
pub mod user;
