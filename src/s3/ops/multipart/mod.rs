//! The multipart upload lifecycle.

pub mod abort;
pub mod create;
pub mod list_uploads;
