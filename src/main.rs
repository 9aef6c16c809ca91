//! The `s3d` daemon: parse flags, load the configuration, start logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use s3d::config::{self, Overrides};

/// An S3-compatible object storage server.
#[derive(Parser, Debug)]
#[command(name = "s3d", version, about)]
struct Cli {
    /// Configuration file (TOML); without one the built-in defaults apply.
    #[arg(long, env = "S3D_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:9000.
    #[arg(long, env = "S3D_LISTEN")]
    listen: Option<String>,
    /// Directory for metadata and object data.
    #[arg(long, env = "S3D_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region clients must sign for.
    #[arg(long, env = "S3D_REGION")]
    region: Option<String>,
    /// Comma-separated base domains for virtual-host addressing.
    #[arg(long, env = "S3D_DOMAINS", value_delimiter = ',')]
    domains: Option<Vec<String>>,
    /// fsync data and metadata before acknowledging writes (true/false).
    #[arg(long, env = "S3D_FSYNC")]
    fsync: Option<bool>,
    /// Log format: text or json.
    #[arg(long, env = "S3D_LOG_FORMAT")]
    log_format: Option<String>,
    /// HTTPS listen address (needs a certificate and key).
    #[arg(long, env = "S3D_TLS_LISTEN")]
    tls_listen: Option<String>,
    /// PEM certificate (chain) for HTTPS.
    #[arg(long, env = "S3D_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "S3D_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir,
        region: cli.region,
        domains: cli.domains,
        fsync: cli.fsync,
        log_format: cli.log_format,
        tls_listen: cli.tls_listen,
        tls_cert: cli.tls_cert,
        tls_key: cli.tls_key,
    };
    let config = match config::load(cli.config.as_deref(), &overrides, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("s3d: {e}");
            return ExitCode::from(2);
        }
    };
    s3d::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s3d: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(s3d::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("s3d: {e}");
            ExitCode::FAILURE
        }
    }
}
