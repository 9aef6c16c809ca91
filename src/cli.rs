//! `s3d user …`: managing users from the command line, while the servers run.
//!
//! With the PostgreSQL backend the command changes the shared database directly; every node
//! picks the change up within a second or two. With the embedded RocksDB, the running daemon
//! holds the database: the command goes through its admin endpoint (signed as the first
//! `admin = true` user of the configuration), and opens the database itself only when no
//! daemon answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use crate::auth::SecretKey;
use crate::clock::Timestamp;
use crate::config::{Config, MetadataConfig};
use crate::directory::{self, NewUser};
use crate::storage::postgres::PostgresMetadataStore;
use crate::storage::rocks::RocksMetadataStore;
use crate::storage::{MetadataStore, UserRecord};

/// What to do.
#[derive(Clone, Debug)]
pub enum UserCommand {
    Add(NewUser),
    List,
    Remove { access_key: String },
    RotateKey { id: String },
}

/// A user as the command prints it; the secret only after an addition or a rotation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub access_key: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from_config: Option<bool>,
}

impl UserView {
    fn of(u: &UserRecord, secret: bool) -> Self {
        UserView {
            id: u.id.clone(),
            name: u.name.clone(),
            access_key: u.access_key.clone(),
            secret_key: secret.then(|| u.secret_key.clone()),
            admin: u.admin,
            from_config: (!secret).then_some(u.from_config),
        }
    }
}

/// What the command found out.
#[derive(Debug)]
pub enum Outcome {
    One(UserView),
    Many(Vec<UserView>),
}

impl Outcome {
    /// `name: value` lines (or one JSON value with `json`).
    pub fn render(&self, json: bool) -> String {
        match (self, json) {
            (Outcome::One(u), true) => serde_json::to_string(u).unwrap_or_default() + "\n",
            (Outcome::Many(all), true) => serde_json::to_string(all).unwrap_or_default() + "\n",
            (Outcome::One(u), false) => {
                let mut out = format!("id: {}\nname: {}\naccess_key: {}\n", u.id, u.name, u.access_key);
                if let Some(s) = &u.secret_key {
                    out.push_str(&format!("secret_key: {s}\n"));
                }
                out.push_str(&format!("admin: {}\n", u.admin));
                out
            }
            (Outcome::Many(all), false) => {
                let mut out = String::new();
                for u in all {
                    let source = if u.from_config == Some(true) { "config" } else { "added" };
                    let admin = if u.admin { " admin" } else { "" };
                    out.push_str(&format!("{}\t{}\t{}\t{source}{admin}\n", u.access_key, u.id, u.name));
                }
                out
            }
        }
    }
}

/// Runs a user command against the configured metadata store.
pub async fn run(config: &Config, command: UserCommand) -> Result<Outcome, String> {
    match &config.metadata {
        MetadataConfig::Postgres { url, .. } => {
            let store = PostgresMetadataStore::connect(url, 2)
                .await
                .map_err(|e| format!("cannot use the PostgreSQL metadata store (metadata.url): {e}"))?;
            direct(&store, command).await
        }
        MetadataConfig::Rocks { dir } => match through_endpoint(config, &command).await {
            Ok(outcome) => Ok(outcome),
            Err(Endpoint::Answered(message)) => Err(message),
            Err(Endpoint::Unreachable(why)) => {
                let store = RocksMetadataStore::open(dir, config.fsync).map_err(|e| {
                    format!(
                        "no s3d answers at {} ({why}), and the database in {} cannot be opened: {e}",
                        endpoint_addr(config.listen),
                        dir.display()
                    )
                })?;
                direct(&store, command).await
            }
        },
    }
}

/// Applies the command to the store itself.
async fn direct(store: &dyn MetadataStore, command: UserCommand) -> Result<Outcome, String> {
    let fail = |e: directory::UserError| e.to_string();
    Ok(match command {
        UserCommand::Add(new) => {
            Outcome::One(UserView::of(&directory::add_user(store, new).await.map_err(fail)?, true))
        }
        UserCommand::RotateKey { id } => {
            Outcome::One(UserView::of(&directory::rotate_key(store, &id).await.map_err(fail)?, true))
        }
        UserCommand::Remove { access_key } => {
            Outcome::One(UserView::of(&directory::remove_user(store, &access_key).await.map_err(fail)?, false))
        }
        UserCommand::List => {
            let users = store.users().await.map_err(|e| e.to_string())?;
            Outcome::Many(users.iter().map(|u| UserView::of(u, false)).collect())
        }
    })
}

enum Endpoint {
    /// Nothing answered: no daemon runs here.
    Unreachable(String),
    /// The daemon refused or failed the request; the message says why.
    Answered(String),
}

/// Where the daemon of this configuration can be reached: its listen address, with a
/// wildcard address replaced by loopback.
fn endpoint_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn percent(s: &str) -> String {
    crate::auth::sigv4::canonical::uri_encode(s.as_bytes(), false)
}

#[derive(Deserialize)]
struct Listing {
    users: Vec<UserView>,
}

async fn through_endpoint(config: &Config, command: &UserCommand) -> Result<Outcome, Endpoint> {
    let admin = config.users.iter().find(|u| u.admin).ok_or_else(|| {
        Endpoint::Answered("the configuration has no user with admin = true to sign admin requests with".into())
    })?;
    let (method, query, body) = match command {
        UserCommand::List => ("GET", String::new(), Vec::new()),
        UserCommand::Remove { access_key } => ("DELETE", format!("access-key={}", percent(access_key)), Vec::new()),
        UserCommand::RotateKey { id } => ("POST", format!("id={}&rotate-key=", percent(id)), Vec::new()),
        UserCommand::Add(new) => {
            let body = serde_json::json!({
                "id": new.id,
                "name": new.name,
                "access_key": new.access_key,
                "secret_key": new.secret_key.as_ref().map(SecretKey::expose),
                "admin": new.admin,
            });
            ("POST", String::new(), serde_json::to_vec(&body).map_err(|e| Endpoint::Answered(e.to_string()))?)
        }
    };
    let addr = endpoint_addr(config.listen);
    let host = addr.to_string();
    let path = "/-/admin/users";
    let signed = crate::auth::sigv4::signing::sign_headers(
        method,
        path,
        &query,
        &host,
        &body,
        &admin.access_key,
        admin.secret_key.expose(),
        &config.region,
        Timestamp::now(),
    );
    let target = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
    let mut request = http::Request::builder().method(method).uri(target).header("host", &host);
    for (name, value) in signed {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|e| Endpoint::Answered(e.to_string()))?;

    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| Endpoint::Unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Endpoint::Unreachable(e.to_string()))?;
        tokio::spawn(connection);
        let response = sender.send_request(request).await.map_err(|e| Endpoint::Answered(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| Endpoint::Answered(e.to_string()))?.to_bytes();
        Ok::<_, Endpoint>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| Endpoint::Answered(format!("s3d at {addr} did not answer within 30 s")))??;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        let field = |tag: &str| {
            let open = format!("<{tag}>");
            let start = text.find(&open)? + open.len();
            Some(text[start..].split(&format!("</{tag}>")).next()?.to_owned())
        };
        let code = field("Code").unwrap_or_else(|| status.to_string());
        let message = field("Message").unwrap_or_default();
        return Err(Endpoint::Answered(format!("s3d at {addr} refused: {code}: {message}")));
    }
    let parse = |e: serde_json::Error| Endpoint::Answered(format!("unexpected answer from s3d at {addr}: {e}"));
    Ok(match command {
        UserCommand::List => Outcome::Many(serde_json::from_slice::<Listing>(&bytes).map_err(parse)?.users),
        _ => Outcome::One(serde_json::from_slice::<UserView>(&bytes).map_err(parse)?),
    })
}
