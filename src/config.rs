//! Configuration: a TOML file read into [`RawConfig`] (unknown keys rejected), overridden by
//! flags and `S3D_*` environment variables, then validated into a typed [`Config`].
//! `config/default.toml` documents every key and equals [`RawConfig::default`].

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{Identity, SecretKey, UserCredential};

/// The development user of the built-in defaults; the README documents its keys.
pub const DEV_ACCESS_KEY: &str = "s3d-dev-access-key";
pub const DEV_SECRET_KEY: &str = "s3d-dev-secret-key";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub region: String,
    pub domains: Vec<String>,
    pub fsync: bool,
    pub log_format: String,
    pub shutdown_timeout_secs: u64,
    pub tls: Option<RawTls>,
    pub limits: RawLimits,
    pub gc: RawGc,
    pub lifecycle: RawLifecycle,
    pub metadata: RawMetadata,
    pub blobs: RawBlobs,
    pub metrics: RawMetrics,
    pub auth: RawAuth,
    pub users: Vec<RawUser>,
}

/// `[auth]`: which signature versions are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// Accept Signature Version 2 (HMAC-SHA1): presigned URLs of aws-cli v1 and boto3's
    /// defaults, s3cmd with `signature_v2`.
    pub sigv2: bool,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client, for
    /// the `aws:SourceIp` of bucket policies.
    pub trusted_proxies: Vec<String>,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth { sigv2: true, trusted_proxies: Vec::new() }
    }
}

/// `[metrics]`: the Prometheus endpoint `/-/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// A file holding the token.
    pub token_file: Option<PathBuf>,
    /// The `node` label of every series (default: the host name).
    pub node: Option<String>,
}

/// `[metadata]`: where bucket, object and upload records live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetadata {
    /// `rocksdb` (embedded, in `data_dir/meta`) or `postgres` (shared by several nodes).
    pub backend: String,
    /// The PostgreSQL connection URL (or key=value string).
    pub url: Option<String>,
    /// A file holding the URL, so that its password need not sit in this file.
    pub url_file: Option<PathBuf>,
    /// Connections each node keeps to PostgreSQL at most.
    pub pool_size: usize,
}

impl Default for RawMetadata {
    fn default() -> Self {
        RawMetadata { backend: "rocksdb".into(), url: None, url_file: None, pool_size: 16 }
    }
}

/// `[blobs]`: where object bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlobs {
    /// Defaults to `data_dir/blobs`; nodes sharing a metadata store share this directory.
    pub dir: Option<PathBuf>,
    /// Objects up to this many bytes (by a PUT or a copy) are kept inside their metadata
    /// record instead of a file; 0 turns that off.
    pub inline_max: u64,
}

/// Default of `[blobs] inline_max`.
pub const DEFAULT_INLINE_MAX: u64 = 16 * 1024;
/// Largest `[blobs] inline_max`: an inline body is held in memory until it is committed.
pub const MAX_INLINE_MAX: u64 = 1024 * 1024;

impl Default for RawBlobs {
    fn default() -> Self {
        RawBlobs { dir: None, inline_max: DEFAULT_INLINE_MAX }
    }
}

/// `[lifecycle]`: how the lifecycle worker keeps time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLifecycle {
    pub day_secs: u64,
    pub interval_secs: u64,
}

impl Default for RawLifecycle {
    fn default() -> Self {
        RawLifecycle { day_secs: 86_400, interval_secs: 3600 }
    }
}

/// `[limits]`: how long s3d waits on a client and how many it serves at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub request_head_timeout_secs: u64,
    pub keep_alive_idle_secs: u64,
    pub body_idle_timeout_secs: u64,
    pub response_idle_timeout_secs: u64,
    pub max_connections: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        // AWS drops a connection that sends nothing for about 20 seconds.
        RawLimits {
            request_head_timeout_secs: 20,
            keep_alive_idle_secs: 20,
            body_idle_timeout_secs: 20,
            response_idle_timeout_secs: 20,
            max_connections: 4096,
        }
    }
}

/// `[gc]`: when unreferenced blobs and remembered completions are reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGc {
    pub grace_secs: u64,
    pub interval_secs: u64,
    pub sweep_interval_secs: u64,
    pub completed_retention_secs: u64,
}

impl Default for RawGc {
    fn default() -> Self {
        RawGc { grace_secs: 900, interval_secs: 60, sweep_interval_secs: 3600, completed_retention_secs: 86_400 }
    }
}

/// `[tls]`: an HTTPS listener beside the plain one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub listen: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub id: String,
    pub name: String,
    pub access_key: String,
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// May manage users (`s3d user …`, the admin endpoint).
    #[serde(default)]
    pub admin: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:9000".into(),
            data_dir: PathBuf::from("./data"),
            region: "us-east-1".into(),
            domains: vec!["s3.localhost".into()],
            fsync: true,
            log_format: "text".into(),
            shutdown_timeout_secs: 30,
            tls: None,
            limits: RawLimits::default(),
            gc: RawGc::default(),
            lifecycle: RawLifecycle::default(),
            metadata: RawMetadata::default(),
            blobs: RawBlobs::default(),
            metrics: RawMetrics::default(),
            auth: RawAuth::default(),
            users: vec![RawUser {
                id: "s3d-dev".into(),
                name: "dev".into(),
                access_key: DEV_ACCESS_KEY.into(),
                secret_key: Some(DEV_SECRET_KEY.into()),
                secret_key_file: None,
                admin: true,
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub domains: Vec<String>,
    /// fsync blobs and the metadata WAL before acknowledging a write.
    pub fsync: bool,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    pub tls: Option<TlsConfig>,
    pub limits: crate::http::Limits,
    pub gc: crate::storage::GcConfig,
    pub lifecycle: crate::storage::expiry::LifecycleSettings,
    pub metadata: MetadataConfig,
    /// Where blobs live (`data_dir/blobs` unless `[blobs] dir` says otherwise).
    pub blob_dir: PathBuf,
    /// Objects up to this size are kept in their metadata record (`[blobs] inline_max`).
    pub inline_max: u64,
    pub metrics: MetricsConfig,
    /// Accept Signature Version 2 (`[auth] sigv2`).
    pub sigv2: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`[auth] trusted_proxies`).
    pub trusted_proxies: Vec<(std::net::IpAddr, u8)>,
    pub users: Vec<UserCredential>,
}

/// The validated `[metrics]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The bearer token scrapes must present, if any (never logged).
    pub token: Option<String>,
    pub node: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { token: None, node: crate::metrics::default_node_name() }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node", &self.node)
            .finish()
    }
}

/// The validated `[metadata]` table.
#[derive(Clone, PartialEq, Eq)]
pub enum MetadataConfig {
    /// RocksDB in this directory (`data_dir/meta`).
    Rocks { dir: PathBuf },
    /// PostgreSQL at `url` (which may hold a password: never logged).
    Postgres { url: String, pool_size: usize },
}

impl fmt::Debug for MetadataConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataConfig::Rocks { dir } => f.debug_struct("Rocks").field("dir", dir).finish(),
            MetadataConfig::Postgres { pool_size, .. } => {
                f.debug_struct("Postgres").field("url", &"<redacted>").field("pool_size", pool_size).finish()
            }
        }
    }
}

/// A validated `[tls]` table. The files are read (and re-read on SIGHUP) by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Values given on the command line or in `S3D_*` variables; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub domains: Option<Vec<String>>,
    pub fsync: Option<bool>,
    pub log_format: Option<String>,
    pub tls_listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Longest duration a setting may have (a year): timers and ages are computed from it.
const MAX_DURATION_SECS: u64 = 365 * 24 * 3600;

fn invalid(key: &str, detail: impl fmt::Display) -> ConfigError {
    ConfigError(format!("invalid value for `{key}`: {detail}"))
}

impl RawConfig {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("configuration: {e}")))
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read configuration {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.listen {
            self.listen = v.clone();
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = &o.region {
            self.region = v.clone();
        }
        if let Some(v) = &o.domains {
            self.domains = v.clone();
        }
        if let Some(v) = o.fsync {
            self.fsync = v;
        }
        if let Some(v) = &o.log_format {
            self.log_format = v.clone();
        }
        if o.tls_listen.is_some() || o.tls_cert.is_some() || o.tls_key.is_some() {
            let mut tls =
                self.tls.clone().unwrap_or(RawTls { listen: String::new(), cert: PathBuf::new(), key: PathBuf::new() });
            if let Some(v) = &o.tls_listen {
                tls.listen = v.clone();
            }
            if let Some(v) = &o.tls_cert {
                tls.cert = v.clone();
            }
            if let Some(v) = &o.tls_key {
                tls.key = v.clone();
            }
            self.tls = Some(tls);
        }
    }

    /// `S3D_METADATA_BACKEND` and `S3D_METADATA_URL` replace `[metadata] backend` and `url`
    /// (and `url_file`); `S3D_BLOB_DIR` replaces `[blobs] dir`.
    pub fn apply_metadata_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(backend) = env("S3D_METADATA_BACKEND") {
            self.metadata.backend = backend;
        }
        if let Some(url) = env("S3D_METADATA_URL") {
            self.metadata.url = Some(url);
            self.metadata.url_file = None;
        }
        if let Some(dir) = env("S3D_BLOB_DIR") {
            self.blobs.dir = Some(PathBuf::from(dir));
        }
    }

    /// `S3D_ACCESS_KEY` with `S3D_SECRET_KEY` (or `S3D_SECRET_KEY_FILE`) replace the user list
    /// with that one user (`S3D_USER_ID`, `S3D_USER_NAME` name it), so that containers can
    /// take credentials from their environment.
    pub fn apply_user_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let Some(access_key) = env("S3D_ACCESS_KEY") else {
            if env("S3D_SECRET_KEY").is_some() || env("S3D_SECRET_KEY_FILE").is_some() {
                return Err(ConfigError("S3D_SECRET_KEY needs S3D_ACCESS_KEY".into()));
            }
            return Ok(());
        };
        self.users = vec![RawUser {
            id: env("S3D_USER_ID").unwrap_or_else(|| "s3d-admin".into()),
            name: env("S3D_USER_NAME").unwrap_or_else(|| "admin".into()),
            access_key,
            secret_key: env("S3D_SECRET_KEY"),
            secret_key_file: env("S3D_SECRET_KEY_FILE").map(PathBuf::from),
            admin: true,
        }];
        Ok(())
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| invalid("listen", format!("{:?} is not an IP:PORT address", self.listen)))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let region_ok = !self.region.is_empty()
            && self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(invalid("region", format!("{:?} is not a region name like us-east-1", self.region)));
        }
        let mut domains = Vec::with_capacity(self.domains.len());
        for d in &self.domains {
            let d = d.to_ascii_lowercase();
            let ok = !d.is_empty()
                && !d.starts_with('.')
                && !d.ends_with('.')
                && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(invalid("domains", format!("{d:?} is not a domain name")));
            }
            domains.push(d);
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid("log_format", format!("{other:?}; expected \"text\" or \"json\"")));
            }
        };
        let tls = match self.tls {
            None => None,
            Some(t) => {
                let listen = t
                    .listen
                    .parse()
                    .map_err(|_| invalid("tls.listen", format!("{:?} is not an IP:PORT address", t.listen)))?;
                if t.cert.as_os_str().is_empty() {
                    return Err(invalid("tls.cert", "a PEM certificate file is required"));
                }
                if t.key.as_os_str().is_empty() {
                    return Err(invalid("tls.key", "a PEM private key file is required"));
                }
                Some(TlsConfig { listen, cert: t.cert, key: t.key })
            }
        };
        let secs = |key: &str, v: u64| -> Result<Duration, ConfigError> {
            match v {
                0 => Err(invalid(key, "must be at least 1 second")),
                v if v > MAX_DURATION_SECS => Err(invalid(key, format!("must be at most {MAX_DURATION_SECS} seconds"))),
                v => Ok(Duration::from_secs(v)),
            }
        };
        let l = &self.limits;
        if l.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        let limits = crate::http::Limits {
            head_timeout: secs("limits.request_head_timeout_secs", l.request_head_timeout_secs)?,
            keep_alive_idle: secs("limits.keep_alive_idle_secs", l.keep_alive_idle_secs)?,
            body_idle: secs("limits.body_idle_timeout_secs", l.body_idle_timeout_secs)?,
            response_idle: secs("limits.response_idle_timeout_secs", l.response_idle_timeout_secs)?,
            max_connections: l.max_connections,
        };
        let g = &self.gc;
        let gc = crate::storage::GcConfig {
            grace: secs("gc.grace_secs", g.grace_secs)?,
            interval: secs("gc.interval_secs", g.interval_secs)?,
            sweep_interval: secs("gc.sweep_interval_secs", g.sweep_interval_secs)?,
            completed_retention: secs("gc.completed_retention_secs", g.completed_retention_secs)?,
        };
        let lifecycle = crate::storage::expiry::LifecycleSettings {
            day: secs("lifecycle.day_secs", self.lifecycle.day_secs)?,
            interval: secs("lifecycle.interval_secs", self.lifecycle.interval_secs)?,
        };
        let metadata = validate_metadata(self.metadata, &self.data_dir)?;
        let blob_dir = match self.blobs.dir {
            Some(d) if d.as_os_str().is_empty() => return Err(invalid("blobs.dir", "must not be empty")),
            Some(d) => d,
            None => self.data_dir.join("blobs"),
        };
        if self.blobs.inline_max > MAX_INLINE_MAX {
            return Err(invalid("blobs.inline_max", format!("must be at most {MAX_INLINE_MAX}")));
        }
        let metrics = validate_metrics(self.metrics)?;
        let trusted_proxies = self
            .auth
            .trusted_proxies
            .iter()
            .map(|n| {
                crate::s3::policy::parse_cidr(n)
                    .ok_or_else(|| invalid("auth.trusted_proxies", format!("{n:?} is not an address or network")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.users.is_empty() {
            return Err(invalid("users", "at least one user is required"));
        }
        let (mut ids, mut keys) = (HashSet::new(), HashSet::new());
        let mut users = Vec::with_capacity(self.users.len());
        for (i, u) in self.users.into_iter().enumerate() {
            let key = |k: &str| format!("users[{i}].{k}");
            if u.id.is_empty() || !ids.insert(u.id.clone()) {
                return Err(invalid(&key("id"), "must be non-empty and unique"));
            }
            let key_ok = !u.access_key.is_empty()
                && u.access_key.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b',' && b != b'=');
            if !key_ok || !keys.insert(u.access_key.clone()) {
                return Err(invalid(
                    &key("access_key"),
                    "must be unique, non-empty printable ASCII without '/', ',' or '='",
                ));
            }
            let secret = match (u.secret_key, u.secret_key_file) {
                (Some(s), None) => s,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                    .map_err(|e| invalid(&key("secret_key_file"), format!("{}: {e}", path.display())))?,
                _ => {
                    return Err(invalid(&key("secret_key"), "give exactly one of secret_key and secret_key_file"));
                }
            };
            if secret.is_empty() {
                return Err(invalid(&key("secret_key"), "must not be empty"));
            }
            users.push(UserCredential {
                access_key: u.access_key,
                secret_key: SecretKey::new(secret),
                identity: Identity { id: u.id, display_name: u.name },
                admin: u.admin,
            });
        }
        Ok(Config {
            listen,
            data_dir: self.data_dir,
            region: self.region,
            domains,
            fsync: self.fsync,
            log_format,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            tls,
            limits,
            gc,
            lifecycle,
            metadata,
            blob_dir,
            inline_max: self.blobs.inline_max,
            metrics,
            sigv2: self.auth.sigv2,
            trusted_proxies,
            users,
        })
    }
}

fn validate_metrics(m: RawMetrics) -> Result<MetricsConfig, ConfigError> {
    let token = match (m.token, m.token_file) {
        (Some(t), None) => Some(t),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| invalid("metrics.token_file", format!("{}: {e}", path.display())))?,
        ),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(invalid("metrics.token", "give only one of token and token_file")),
    };
    if token.as_ref().is_some_and(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(invalid("metrics.token", "must be non-empty printable ASCII without spaces"));
    }
    let node = match m.node {
        Some(n) if n.is_empty() || n.chars().any(char::is_control) => {
            return Err(invalid("metrics.node", "must be non-empty, without control characters"));
        }
        Some(n) => n,
        None => crate::metrics::default_node_name(),
    };
    Ok(MetricsConfig { token, node })
}

fn validate_metadata(m: RawMetadata, data_dir: &Path) -> Result<MetadataConfig, ConfigError> {
    match m.backend.as_str() {
        "rocksdb" => {
            if m.url.is_some() || m.url_file.is_some() {
                return Err(invalid("metadata.url", "only the postgres backend takes a URL"));
            }
            Ok(MetadataConfig::Rocks { dir: data_dir.join("meta") })
        }
        "postgres" => {
            let url = match (m.url, m.url_file) {
                (Some(u), None) => u,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| invalid("metadata.url_file", format!("{}: {e}", path.display())))?,
                (None, None) => {
                    return Err(invalid(
                        "metadata.url",
                        "the postgres backend needs url, url_file or S3D_METADATA_URL",
                    ));
                }
                (Some(_), Some(_)) => return Err(invalid("metadata.url", "give only one of url and url_file")),
            };
            // Checked now so that a typo fails start-up; the message never repeats the URL,
            // which may hold a password.
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                return Err(invalid("metadata.url", format!("not a PostgreSQL connection URL ({e})")));
            }
            if m.pool_size == 0 || m.pool_size > 10_000 {
                return Err(invalid("metadata.pool_size", "must be between 1 and 10000"));
            }
            Ok(MetadataConfig::Postgres { url, pool_size: m.pool_size })
        }
        other => Err(invalid("metadata.backend", format!("{other:?}; expected \"rocksdb\" or \"postgres\""))),
    }
}

/// File (if any), then overrides, then the user environment, then validation.
pub fn load(
    file: Option<&Path>,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut raw = match file {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    raw.apply(overrides);
    raw.apply_metadata_env(&env);
    raw.apply_user_env(env)?;
    raw.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_equals_built_in_defaults() {
        let text = include_str!("../config/default.toml");
        assert_eq!(RawConfig::from_toml(text).expect("parses"), RawConfig::default());
        let config = RawConfig::default().validate().expect("defaults are valid");
        assert_eq!(config.limits, crate::http::Limits::default());
        assert_eq!(config.gc, crate::storage::GcConfig::default());
        assert_eq!(config.lifecycle, crate::storage::expiry::LifecycleSettings::default());
    }

    #[test]
    fn postgres_metadata_from_the_file_or_the_environment() {
        let text = "[metadata]\nbackend = \"postgres\"\nurl = \"postgres://s3d:pw@db/s3d\"\n[blobs]\ndir = \"/srv/b\"";
        let config = RawConfig::from_toml(text).expect("parses").validate().expect("valid");
        assert_eq!(config.metadata, MetadataConfig::Postgres { url: "postgres://s3d:pw@db/s3d".into(), pool_size: 16 });
        assert_eq!(config.blob_dir, PathBuf::from("/srv/b"));
        assert!(!format!("{config:?}").contains("pw@"), "the URL is never printed");
        let mut raw = RawConfig::from_toml(text).expect("parses");
        raw.apply_metadata_env(|k| (k == "S3D_METADATA_URL").then(|| "postgres://other/s3d".to_owned()));
        let config = raw.validate().expect("valid");
        assert_eq!(config.metadata, MetadataConfig::Postgres { url: "postgres://other/s3d".into(), pool_size: 16 });
        // A container switches the default file to PostgreSQL with the environment alone.
        let mut raw = RawConfig::default();
        raw.apply_metadata_env(|k| match k {
            "S3D_METADATA_BACKEND" => Some("postgres".into()),
            "S3D_METADATA_URL" => Some("postgres://db/s3d".into()),
            "S3D_BLOB_DIR" => Some("/shared".into()),
            _ => None,
        });
        let config = raw.validate().expect("valid");
        assert_eq!(config.metadata, MetadataConfig::Postgres { url: "postgres://db/s3d".into(), pool_size: 16 });
        assert_eq!(config.blob_dir, PathBuf::from("/shared"));
        let defaults = RawConfig::default().validate().expect("valid");
        assert_eq!(defaults.metadata, MetadataConfig::Rocks { dir: PathBuf::from("./data/meta") });
        assert_eq!(defaults.blob_dir, PathBuf::from("./data/blobs"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = RawConfig::from_toml("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").expect_err("unknown");
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err =
            RawConfig::from_toml("[[users]]\nid='a'\nname='b'\naccess_key='c'\nsecret='d'\n").expect_err("unknown");
        assert!(err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            ("listen = \"nope\"", "`listen`"),
            ("region = \"US East\"", "`region`"),
            ("domains = [\".bad\"]", "`domains`"),
            ("log_format = \"xml\"", "`log_format`"),
            ("users = []", "`users`"),
            ("[limits]\nmax_connections = 0", "`limits.max_connections`"),
            ("[limits]\nbody_idle_timeout_secs = 0", "`limits.body_idle_timeout_secs`"),
            ("[gc]\ngrace_secs = 0", "`gc.grace_secs`"),
            ("[limits]\nrequest_head_timeout_secs = 18446744073709551615", "`limits.request_head_timeout_secs`"),
            ("[tls]\nlisten = \"x\"\ncert = \"c\"\nkey = \"k\"\n", "`tls.listen`"),
            ("[[users]]\nid='a'\nname='b'\naccess_key='c'\n", "`users[0].secret_key`"),
            ("[[users]]\nid='a'\nname='b'\naccess_key='c/d'\nsecret_key='x'\n", "`users[0].access_key`"),
            ("[metadata]\nbackend = \"mysql\"", "`metadata.backend`"),
            ("[metadata]\nbackend = \"postgres\"", "`metadata.url`"),
            ("[metadata]\nbackend = \"postgres\"\nurl = \"postgres://s3d@db:port/s3d\"", "`metadata.url`"),
            ("[metadata]\nbackend = \"postgres\"\nurl = \"postgres://db/s3d\"\npool_size = 0", "`metadata.pool_size`"),
            ("[metadata]\nbackend = \"postgres\"\nurl_file = \"/nonexistent/url\"", "`metadata.url_file`"),
            ("[metadata]\nurl = \"postgres://db/s3d\"", "`metadata.url`"),
            ("[blobs]\ndir = \"\"", "`blobs.dir`"),
            ("[blobs]\ninline_max = 1048577", "`blobs.inline_max`"),
            ("[auth]\ntrusted_proxies = [\"10.0.0.0/33\"]", "`auth.trusted_proxies`"),
        ];
        for (text, key) in cases {
            let err = RawConfig::from_toml(text).expect("parses").validate().expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let err = RawConfig::from_toml("[limits]\nidle = 3").expect_err("unknown");
        assert!(err.to_string().contains("idle"), "{err}");
        let err = RawConfig::from_toml("fsync = \"yes\"").expect_err("type");
        assert!(err.to_string().contains("fsync"), "{err}");
    }

    #[test]
    fn overrides_and_secret_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-file\n").expect("write");
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            domains: Some(vec!["S3.Example.COM".into()]),
            fsync: Some(false),
            ..Overrides::default()
        };
        let env = |k: &str| match k {
            "S3D_ACCESS_KEY" => Some("AK".to_string()),
            "S3D_SECRET_KEY_FILE" => Some(secret.display().to_string()),
            _ => None,
        };
        let c = load(None, &overrides, env).expect("loads");
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.domains, ["s3.example.com"]);
        assert!(!c.fsync);
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].access_key, "AK");
        assert_eq!(c.users[0].secret_key.expose(), "from-file");
    }
}
