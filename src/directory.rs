//! The user directory: users and access keys live in the metadata store, so that every node
//! authenticates the same users and a change made anywhere (`s3d user …`, the admin endpoint
//! of any node) takes effect everywhere within [`REFRESH`].
//!
//! Requests are authenticated from an in-memory copy, refreshed from the store every
//! [`REFRESH`] and at once after a change made through this node; while the store is out of
//! reach, the last copy keeps serving.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use tokio::task::JoinHandle;

use crate::auth::{CredentialStore, Identity, SecretKey, UserCredential};
use crate::clock::Timestamp;
use crate::storage::{MetadataStore, StorageError, UserRecord};

/// How often each node re-reads the users.
pub const REFRESH: Duration = Duration::from_secs(1);

/// A user to add; the access key and secret are generated when not given.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub id: String,
    pub name: String,
    pub access_key: Option<String>,
    pub secret_key: Option<SecretKey>,
    pub admin: bool,
}

/// Why a user change was refused.
#[derive(Debug)]
pub enum UserError {
    /// The input is not acceptable (the message says why).
    Invalid(String),
    /// The id or access key is taken.
    Exists,
    /// No such user.
    NotFound,
    Storage(StorageError),
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserError::Invalid(m) => f.write_str(m),
            UserError::Exists => f.write_str("a user with this id or access key exists"),
            UserError::NotFound => f.write_str("no such user"),
            UserError::Storage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UserError {}

impl From<StorageError> for UserError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict => UserError::Exists,
            StorageError::NotFound(crate::storage::Resource::User) => UserError::NotFound,
            other => UserError::Storage(other),
        }
    }
}

/// Whether `key` may be an access key: what SigV4's Credential field can carry.
pub fn valid_access_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b',' && b != b'=')
}

fn random_bytes<const N: usize>() -> Result<[u8; N], UserError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| UserError::Storage(StorageError::Io(format!("random source: {e}"))))?;
    Ok(b)
}

/// A new access key: `S3D` and 17 upper-case letters and digits (AWS's shape).
fn generate_access_key() -> Result<String, UserError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const _: () = assert!(ALPHABET.len() == 32);
    // 32 symbols: each random byte gives one without bias.
    let bytes = random_bytes::<17>()?;
    let tail: String = bytes.iter().map(|b| ALPHABET[usize::from(b % 32)] as char).collect();
    Ok(format!("S3D{tail}"))
}

/// A new secret: 240 random bits in 40 base64 characters (AWS's shape).
fn generate_secret() -> Result<String, UserError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(random_bytes::<30>()?))
}

/// The store's record of a configured user.
pub fn seeded(u: &UserCredential) -> UserRecord {
    UserRecord {
        id: u.identity.id.clone(),
        name: u.identity.display_name.clone(),
        access_key: u.access_key.clone(),
        secret_key: u.secret_key.expose().to_owned(),
        admin: u.admin,
        from_config: true,
        created: Timestamp::now(),
    }
}

fn credential(u: &UserRecord) -> UserCredential {
    UserCredential {
        access_key: u.access_key.clone(),
        secret_key: SecretKey::new(u.secret_key.clone()),
        identity: Identity { id: u.id.clone(), display_name: u.name.clone() },
        admin: u.admin,
    }
}

/// Adds a user to `meta`; returns it with its (possibly generated) secret.
pub async fn add_user(meta: &dyn MetadataStore, new: NewUser) -> Result<UserRecord, UserError> {
    let id_ok = !new.id.is_empty() && new.id.len() <= 256 && !new.id.chars().any(char::is_control);
    if !id_ok {
        return Err(UserError::Invalid("the user id must be 1-256 characters without control characters".into()));
    }
    let name = if new.name.is_empty() { new.id.clone() } else { new.name };
    if name.len() > 256 || name.chars().any(char::is_control) {
        return Err(UserError::Invalid("the name must be at most 256 characters without control characters".into()));
    }
    let access_key = match new.access_key {
        Some(k) if valid_access_key(&k) => k,
        Some(_) => {
            return Err(UserError::Invalid(
                "the access key must be printable ASCII without '/', ',' or '=' (at most 128 characters)".into(),
            ));
        }
        None => generate_access_key()?,
    };
    let secret_key = match new.secret_key {
        Some(s) if !s.expose().is_empty() => s.expose().to_owned(),
        Some(_) => return Err(UserError::Invalid("the secret key must not be empty".into())),
        None => generate_secret()?,
    };
    let user = UserRecord {
        id: new.id,
        name,
        access_key,
        secret_key,
        admin: new.admin,
        from_config: false,
        created: Timestamp::now(),
    };
    meta.create_user(user.clone()).await?;
    Ok(user)
}

/// Gives user `id` a new generated access key and secret; the old key stops working.
pub async fn rotate_key(meta: &dyn MetadataStore, id: &str) -> Result<UserRecord, UserError> {
    Ok(meta.replace_user_key(id, &generate_access_key()?, &generate_secret()?).await?)
}

/// Removes the user with this access key.
pub async fn remove_user(meta: &dyn MetadataStore, access_key: &str) -> Result<UserRecord, UserError> {
    Ok(meta.delete_user(access_key).await?)
}

/// The users in the store, serving [`CredentialStore`] lookups from memory.
pub struct UserDirectory {
    meta: Arc<dyn MetadataStore>,
    by_key: RwLock<Arc<HashMap<String, Arc<UserCredential>>>>,
}

impl UserDirectory {
    /// Seeds the configured users into the store and loads every user.
    pub async fn open(meta: Arc<dyn MetadataStore>, configured: &[UserCredential]) -> Result<Arc<Self>, StorageError> {
        meta.seed_users(configured.iter().map(seeded).collect()).await?;
        let directory = Arc::new(UserDirectory { meta, by_key: RwLock::new(Arc::default()) });
        directory.refresh().await?;
        Ok(directory)
    }

    /// Re-reads the users from the store.
    pub async fn refresh(&self) -> Result<(), StorageError> {
        let users = self.meta.users().await?;
        let map: HashMap<String, Arc<UserCredential>> =
            users.iter().map(|u| (u.access_key.clone(), Arc::new(credential(u)))).collect();
        crate::metrics::metrics().users.set(i64::try_from(map.len()).unwrap_or(i64::MAX));
        *self.by_key.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        Ok(())
    }

    /// Refreshes every [`REFRESH`] until aborted.
    pub fn spawn_refresh(self: &Arc<Self>) -> JoinHandle<()> {
        let directory = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match directory.refresh().await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("users are read from the metadata store again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "cannot re-read users; serving the last known ones");
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// The display name of the user with canonical id `id`, if there is one.
    pub fn display_name(&self, id: &str) -> Option<String> {
        let map = self.by_key.read().unwrap_or_else(|p| p.into_inner());
        map.values().find(|u| u.identity.id == id).map(|u| u.identity.display_name.clone())
    }

    pub async fn list(&self) -> Result<Vec<UserRecord>, UserError> {
        Ok(self.meta.users().await?)
    }

    pub async fn add(&self, new: NewUser) -> Result<UserRecord, UserError> {
        let user = add_user(&*self.meta, new).await?;
        self.refresh().await?;
        Ok(user)
    }

    pub async fn rotate(&self, id: &str) -> Result<UserRecord, UserError> {
        let user = rotate_key(&*self.meta, id).await?;
        self.refresh().await?;
        Ok(user)
    }

    pub async fn remove(&self, access_key: &str) -> Result<UserRecord, UserError> {
        let user = remove_user(&*self.meta, access_key).await?;
        self.refresh().await?;
        Ok(user)
    }
}

impl CredentialStore for UserDirectory {
    fn lookup(&self, access_key: &str) -> Option<Arc<UserCredential>> {
        self.by_key.read().unwrap_or_else(|p| p.into_inner()).get(access_key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryMetadataStore;

    #[tokio::test]
    async fn generated_keys_have_aws_shapes_and_authenticate_at_once() {
        let meta: Arc<dyn MetadataStore> = Arc::new(MemoryMetadataStore::new());
        let dev = UserCredential {
            access_key: "dev-key".into(),
            secret_key: SecretKey::new("dev-secret"),
            identity: Identity { id: "dev".into(), display_name: "dev".into() },
            admin: true,
        };
        let dir = UserDirectory::open(meta, &[dev]).await.expect("open");
        assert!(dir.lookup("dev-key").is_some_and(|c| c.admin));
        let u = dir.add(NewUser { id: "app".into(), ..NewUser::default() }).await.expect("add");
        assert_eq!((u.access_key.len(), u.secret_key.len(), u.name.as_str()), (20, 40, "app"));
        assert!(u.access_key.starts_with("S3D") && valid_access_key(&u.access_key));
        assert!(dir.lookup(&u.access_key).is_some_and(|c| !c.admin && c.secret_key.expose() == u.secret_key));
        let rotated = dir.rotate("app").await.expect("rotate");
        assert_ne!(rotated.access_key, u.access_key);
        assert!(dir.lookup(&u.access_key).is_none() && dir.lookup(&rotated.access_key).is_some());
        assert!(matches!(dir.add(NewUser { id: "app".into(), ..NewUser::default() }).await, Err(UserError::Exists)));
        let bad = NewUser { id: "x".into(), access_key: Some("a/b".into()), ..NewUser::default() };
        assert!(matches!(dir.add(bad).await, Err(UserError::Invalid(_))));
        dir.remove(&rotated.access_key).await.expect("remove");
        assert!(dir.lookup(&rotated.access_key).is_none());
        assert!(matches!(dir.remove("nope").await, Err(UserError::NotFound)));
    }
}
