//! The admin endpoint: user management over HTTP, for the `s3d user` command and for
//! automation. Requests are signed with SigV4 like any S3 request, by a user with
//! `admin = true`; bodies and answers are JSON.
//!
//! - `GET /-/admin/users`: every user (no secrets).
//! - `POST /-/admin/users` with `{"id", "name"?, "access_key"?, "secret_key"?, "admin"?}`: adds
//!   a user (keys generated when absent) and answers with its secret, the only time it is shown.
//! - `POST /-/admin/users?rotate-key&id=ID`: gives the user a new key and secret.
//! - `DELETE /-/admin/users?access-key=AK`: removes the user with that key.
//!
//! Changes reach every node sharing the metadata store within a second or two.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::query::Query;
use super::{ResponseBody, S3Error, S3ErrorCode, S3Request, S3Response, S3Service, headers};
use crate::auth::{PayloadHash, SecretKey};
use crate::directory::{NewUser, UserError};
use crate::storage::UserRecord;

/// The path every admin request starts with; `-` cannot start a bucket name.
pub const PREFIX: &str = "/-/admin/";
const USERS: &str = "/-/admin/users";
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUser {
    id: String,
    #[serde(default)]
    name: String,
    access_key: Option<String>,
    secret_key: Option<String>,
    #[serde(default)]
    admin: bool,
}

/// A user as listed (no secret).
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    name: &'a str,
    access_key: &'a str,
    admin: bool,
    from_config: bool,
    created: String,
}

/// A user with its secret: the answer to an addition or a key rotation.
#[derive(Serialize)]
struct WithSecret<'a> {
    id: &'a str,
    name: &'a str,
    access_key: &'a str,
    secret_key: &'a str,
    admin: bool,
}

fn listed(u: &UserRecord) -> Listed<'_> {
    Listed {
        id: &u.id,
        name: &u.name,
        access_key: &u.access_key,
        admin: u.admin,
        from_config: u.from_config,
        created: u.created.to_xml(),
    }
}

fn with_secret(u: &UserRecord) -> WithSecret<'_> {
    WithSecret { id: &u.id, name: &u.name, access_key: &u.access_key, secret_key: &u.secret_key, admin: u.admin }
}

fn json(value: &impl Serialize) -> Result<S3Response, S3Error> {
    let body = serde_json::to_vec(value).map_err(S3Error::internal)?;
    let mut resp = S3Response::new(StatusCode::OK).header("content-type", "application/json");
    resp.body = ResponseBody::Full(body.into());
    Ok(resp)
}

fn user_error(e: UserError) -> S3Error {
    match e {
        UserError::Invalid(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        UserError::Exists => S3Error::new(S3ErrorCode::EntityAlreadyExists),
        UserError::NotFound => S3Error::new(S3ErrorCode::NoSuchEntity),
        UserError::Storage(e) => e.into(),
    }
}

fn required<'q>(query: &'q Query, name: &str) -> Result<&'q str, S3Error> {
    query.get(name).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, format!("the query parameter {name} is required"))
    })
}

pub async fn call(s3: &S3Service, req: S3Request) -> Result<S3Response, S3Error> {
    headers::check_header_section(&req.headers)?;
    let authority = S3Service::authority(&req);
    let authenticated = s3.authenticate(&req, &authority, None)?;
    if authenticated.anonymous {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    // Presigned URLs are for handing out one object operation, never user management; and
    // Signature Version 2 does not sign the query string that names the user to change.
    let admin = s3.credentials.lookup(&authenticated.access_key).is_some_and(|c| c.admin);
    if !admin || authenticated.presigned || authenticated.signature_v2 {
        return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Only an admin user may manage users."));
    }
    if req.uri.path() != USERS {
        return Err(S3Error::with_message(S3ErrorCode::InvalidRequest, "Unknown admin resource."));
    }
    let query = Query::parse(req.uri.query().unwrap_or(""));
    let users = &s3.users;
    match req.method {
        Method::GET => {
            let all = users.list().await.map_err(user_error)?;
            json(&serde_json::json!({ "users": all.iter().map(listed).collect::<Vec<_>>() }))
        }
        Method::DELETE => {
            let removed = users.remove(required(&query, "access-key")?).await.map_err(user_error)?;
            tracing::info!(user = %removed.id, access_key = %removed.access_key, "user removed");
            json(&listed(&removed))
        }
        Method::POST if query.get("rotate-key").is_some() => {
            let rotated = users.rotate(required(&query, "id")?).await.map_err(user_error)?;
            tracing::info!(user = %rotated.id, access_key = %rotated.access_key, "access key rotated");
            json(&with_secret(&rotated))
        }
        Method::POST => {
            // The body carries secrets: it must be signed, not sent as UNSIGNED-PAYLOAD.
            if !matches!(authenticated.payload, PayloadHash::Sha256(_)) {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "Admin request bodies must be signed (x-amz-content-sha256: the body's SHA-256).",
                ));
            }
            let body = super::body::read_small(req.body, authenticated.payload, None, MAX_BODY).await?;
            let add: AddUser = serde_json::from_slice(&body).map_err(|e| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, format!("the request body is not a user: {e}"))
            })?;
            let new = NewUser {
                id: add.id,
                name: add.name,
                access_key: add.access_key,
                secret_key: add.secret_key.map(SecretKey::new),
                admin: add.admin,
            };
            let added = users.add(new).await.map_err(user_error)?;
            tracing::info!(user = %added.id, access_key = %added.access_key, admin = added.admin, "user added");
            json(&with_secret(&added))
        }
        _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::directory::{UserError, add_user, valid_access_key};
    use crate::s3::xml::fuzzing::config;
    use crate::storage::memory::MemoryMetadataStore;

    proptest! {
        #![proptest_config(config())]

        /// Any body is parsed or refused without a panic, and a user made of arbitrary fields
        /// is stored only when every field passes the rules; otherwise the answer says why.
        #[test]
        fn fuzz_admin_user_bodies(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            id in "\\PC{0,3}[\\x00-\\x1f]?\\PC{0,300}",
            name in "\\PC{0,300}",
            key in proptest::option::of("[ -~\\x00\\u{e9}]{0,140}"),
            secret in proptest::option::of("\\PC{0,40}"),
        ) {
            let _ = serde_json::from_slice::<AddUser>(&body);
            let doc = serde_json::json!({ "id": id, "name": name, "access_key": key, "secret_key": secret });
            let add: AddUser = serde_json::from_value(doc).expect("a well-formed document");
            let new = NewUser {
                id: add.id,
                name: add.name,
                access_key: add.access_key,
                secret_key: add.secret_key.map(SecretKey::new),
                admin: add.admin,
            };
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            match rt.block_on(add_user(&MemoryMetadataStore::new(), new)) {
                Ok(user) => {
                    prop_assert!(!user.id.is_empty() && user.id.len() <= 256 && !user.id.chars().any(char::is_control));
                    prop_assert!(user.name.len() <= 256 && !user.name.chars().any(char::is_control));
                    prop_assert!(valid_access_key(&user.access_key) && !user.secret_key.is_empty());
                }
                Err(UserError::Invalid(_)) => {}
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
