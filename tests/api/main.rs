//! One integration-test binary (faster to build and link than one per file).

mod auth;
mod boundary;
mod browser;
mod cli;
mod delivery;
mod docs;
mod doctor;
mod durability;
mod errors;
mod exchanges;
mod full_disk;
mod hardening;
mod harness;
mod helpers;
mod hostile;
mod http2;
mod layout;
mod limits;
mod memory;
mod openapi;
mod operating;
mod pg;
mod postgres;
mod preflight;
mod refusal_log;
mod tls;
