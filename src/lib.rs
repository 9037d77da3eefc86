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

// mimalloc instead of glibc's malloc: a million-row import allocates and frees small
// strings by the million, and glibc's allocator was a tenth of its time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
