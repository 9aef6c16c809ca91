//! The rules of the user directory, shared by every metadata store: each store loads its
//! users (few: a table scan), asks [`Users`] what a change does, and applies the answer
//! atomically.

use std::collections::{BTreeMap, HashSet};

use super::{Resource, StorageError, UserRecord};

/// Users by id.
pub struct Users(pub BTreeMap<String, UserRecord>);

/// What a change writes: users to store (by id) and ids to remove, removals first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    pub put: Vec<UserRecord>,
    pub remove: Vec<String>,
}

impl Users {
    pub fn new(users: impl IntoIterator<Item = UserRecord>) -> Self {
        Users(users.into_iter().map(|u| (u.id.clone(), u)).collect())
    }

    fn by_key(&self, access_key: &str) -> Option<&UserRecord> {
        self.0.values().find(|u| u.access_key == access_key)
    }

    pub fn create(&self, user: UserRecord) -> Result<UserChange, StorageError> {
        if self.0.contains_key(&user.id) || self.by_key(&user.access_key).is_some() {
            return Err(StorageError::Conflict);
        }
        Ok(UserChange { put: vec![user], remove: Vec::new() })
    }

    pub fn replace_key(
        &self,
        id: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<(UserRecord, UserChange), StorageError> {
        let mut user = self.0.get(id).cloned().ok_or(StorageError::NotFound(Resource::User))?;
        if self.by_key(access_key).is_some_and(|other| other.id != id) {
            return Err(StorageError::Conflict);
        }
        user.access_key = access_key.to_owned();
        user.secret_key = secret_key.to_owned();
        Ok((user.clone(), UserChange { put: vec![user], remove: Vec::new() }))
    }

    pub fn delete(&self, access_key: &str) -> Result<(UserRecord, UserChange), StorageError> {
        let user = self.by_key(access_key).cloned().ok_or(StorageError::NotFound(Resource::User))?;
        let remove = vec![user.id.clone()];
        Ok((user, UserChange { put: Vec::new(), remove }))
    }

    pub fn seed(&self, wanted: Vec<UserRecord>) -> Result<UserChange, StorageError> {
        let ids: HashSet<&str> = wanted.iter().map(|u| u.id.as_str()).collect();
        let remove: Vec<String> =
            self.0.values().filter(|u| u.from_config && !ids.contains(u.id.as_str())).map(|u| u.id.clone()).collect();
        let mut put = Vec::with_capacity(wanted.len());
        for mut user in wanted {
            let holder = self.by_key(&user.access_key).filter(|o| o.id != user.id && !remove.contains(&o.id));
            if holder.is_some() {
                return Err(StorageError::Conflict);
            }
            if let Some(existing) = self.0.get(&user.id) {
                user.created = existing.created;
            }
            user.from_config = true;
            if self.0.get(&user.id) != Some(&user) {
                put.push(user);
            }
        }
        Ok(UserChange { put, remove })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn user(id: &str, key: &str, from_config: bool) -> UserRecord {
        UserRecord {
            id: id.into(),
            name: format!("{id}-name"),
            access_key: key.into(),
            secret_key: format!("{key}-secret"),
            admin: false,
            from_config,
            created: Timestamp(1),
        }
    }

    #[test]
    fn seeding_replaces_only_seeded_users() {
        let users = Users::new([user("old", "K1", true), user("runtime", "K2", false), user("kept", "K3", true)]);
        let change = users.seed(vec![user("kept", "K3", true), user("new", "K1", true)]).expect("seed");
        assert_eq!(change.remove, ["old"]);
        assert_eq!(change.put.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["new"]);
        // A key held by a user added at run time cannot be seeded to another.
        assert!(matches!(users.seed(vec![user("x", "K2", true)]), Err(StorageError::Conflict)));
    }

    #[test]
    fn keys_and_ids_are_unique() {
        let users = Users::new([user("a", "K1", false), user("b", "K2", false)]);
        assert!(matches!(users.create(user("a", "K9", false)), Err(StorageError::Conflict)));
        assert!(matches!(users.create(user("c", "K2", false)), Err(StorageError::Conflict)));
        assert!(matches!(users.replace_key("a", "K2", "s"), Err(StorageError::Conflict)));
        assert!(matches!(users.replace_key("zz", "K7", "s"), Err(StorageError::NotFound(Resource::User))));
        let (rotated, _) = users.replace_key("a", "K7", "s7").expect("rotate");
        assert_eq!((rotated.access_key.as_str(), rotated.secret_key.as_str()), ("K7", "s7"));
        assert!(matches!(users.delete("K9"), Err(StorageError::NotFound(Resource::User))));
        assert_eq!(users.delete("K2").expect("delete").1.remove, ["b"]);
    }
}
