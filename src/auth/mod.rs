//! Who is calling: AWS Signature Version 4, in the Authorization header or in a presigned URL.
//!
//! Pure functions plus one trait ([`CredentialStore`]); nothing here knows about storage or
//! S3 operations. [`authenticate`] checks the headers only, so it runs before any body byte
//! is read (which is what makes `Expect: 100-continue` answerable with an error).

mod credentials;
mod error;
pub mod sigv4;

pub use credentials::{CredentialStore, Identity, SecretKey, StaticCredentials, UserCredential};
pub use error::AuthError;
pub use sigv4::{Authenticated, PayloadHash, RequestParts, SigningContext, StreamingMode, authenticate};
