//! kofu (交付): certificate authority and IC-card issuance back office for a municipal
//! social-security card scheme. See SPEC.md (shared) and README.md.

pub mod app;
pub mod audit;
pub mod ca;
pub mod card;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod jp;
pub mod mail;
pub mod pdf;
pub mod pii;
pub mod registry;
pub mod service;
