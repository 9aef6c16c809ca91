//! The single integration-test binary: a real s3d server on 127.0.0.1:0 driven by the AWS
//! Rust SDK (real SigV4, real XML) and by raw signed HTTP requests for inputs no SDK sends.

mod common;

/// Object ownership controls and ACLs on buckets and objects.
mod acl;
/// Hostile input: unsigned headers, dates, ranges and sizes that once panicked or wrapped.
mod attack;
/// Object and bucket tagging, GetObjectAttributes.
mod attributes;
/// SigV4: every failure mode and its error code.
mod auth;
/// Service and bucket operations.
mod bucket;
/// Flexible checksums and aws-chunked bodies.
mod checksum;
/// CORS rules, preflights and response headers.
mod cors;
/// The built binary: config, health, restart persistence, signals.
mod daemon;
/// Malformed input: bad headers, names, digests; no panics, no hangs.
mod errors;
/// Small differences from AWS that clients notice.
mod exactness;
/// Lifecycle rules: validation, announced dates, the worker acting.
mod lifecycle;
/// Timeouts on every wait a client controls, and the connection cap.
mod limits;
/// Prometheus metrics at /-/metrics.
mod metrics;
/// Seeded random clients checked against a model, with reopens; nothing lost or leaked.
mod model;
/// CreateMultipartUpload, ListMultipartUploads, AbortMultipartUpload.
mod multipart;
/// Objects: put, get, head, ranges, conditionals, delete, copy, listings.
mod object;
/// Bucket policies: anonymous and other users' access, Deny, conditions.
mod policy;
/// Browser uploads: POST Object forms, their policies and signatures.
mod post;
/// The PostgreSQL metadata store: nodes sharing it, the database lost and back.
mod postgres;
/// Races with readers and Complete; housekeeping in the background.
mod race;
/// HTTPS: uploads over TLS, certificate reload, bad certificates.
mod tls;
/// Users managed at run time: the admin endpoint, `s3d user`, nodes seeing changes.
mod users;
/// Versioning: versions, delete markers, the null version, listings.
mod versioning;
