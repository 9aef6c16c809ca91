//! Object operations.

pub mod acl;
pub mod attributes;
pub mod copy;
pub mod delete;
pub mod delete_many;
pub mod get;
pub mod list;
pub mod post;
pub mod put;
