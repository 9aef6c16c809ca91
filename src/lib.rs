//! s3d: an S3-compatible object storage server.
//!
//! # Architecture
//!
//! ```text
//! http  ──►  s3 (routing, operations, wire types, S3 errors)  ──►  storage (traits) ◄── rocks / memory impls
//!   │           │
//!   └───────────┴──►  auth (SigV4; depends on nothing in this crate but its own CredentialStore trait)
//! config, telemetry: read only by app.rs, which hands each layer its own settings
//! ```
//!
//! Imports only go one way along those arrows:
//! - [`http`] is the only module that names axum or hyper's server types.
//! - [`s3`] knows neither axum nor RocksDB; it speaks `http` types and S3 semantics.
//! - [`storage`] knows no HTTP, XML or S3 error types; its traits speak buckets, objects and uploads.
//! - [`auth`] is pure functions plus one trait ([`auth::CredentialStore`]).

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod http;
pub mod metrics;
pub mod s3;
pub mod storage;
pub mod telemetry;
#[doc(hidden)]
pub mod testing;
