//! Access keys, secrets and the [`CredentialStore`] that maps one to the other.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret access key: zeroized on drop, never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(Zeroizing::new(secret.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The user a request acts as: the canonical id and display name S3 shows as Owner/Initiator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub display_name: String,
}

/// One access key of one user.
#[derive(Clone, Debug)]
pub struct UserCredential {
    pub access_key: String,
    pub secret_key: SecretKey,
    pub identity: Identity,
    /// May manage users through the admin endpoint.
    pub admin: bool,
}

/// Finds the credential for an access key id.
pub trait CredentialStore: Send + Sync {
    fn lookup(&self, access_key: &str) -> Option<Arc<UserCredential>>;
}

/// Credentials fixed at start-up (from the configuration).
#[derive(Debug, Default)]
pub struct StaticCredentials {
    by_access_key: HashMap<String, Arc<UserCredential>>,
}

impl StaticCredentials {
    pub fn new(users: impl IntoIterator<Item = UserCredential>) -> Self {
        let by_access_key = users.into_iter().map(|u| (u.access_key.clone(), Arc::new(u))).collect();
        StaticCredentials { by_access_key }
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<Arc<UserCredential>> {
        self.by_access_key.get(access_key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug() {
        let s = SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{s:?}"), "SecretKey(<redacted>)");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    }
}
