//! Bucket operations.

pub mod acl;
pub mod cors;
pub mod create;
pub mod delete;
pub mod head;
pub mod lifecycle;
pub mod list;
pub mod location;
pub mod policy;
pub mod public_access;
pub mod versioning;
