//! kofu's integration tests: one binary, modules by area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

mod architecture;
mod at_rest;
mod audit;
mod bad_input;
mod browser;
mod card_stack;
mod cards;
mod certificates;
mod documents;
mod first_start;
mod instances;
mod intake;
mod mail;
mod orders;
mod pkcs11;
mod registry;
mod revocation;
mod routes;
mod serials;
mod trust;
mod verifiers;
mod web;
