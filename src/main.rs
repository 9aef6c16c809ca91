//! The `s3d` daemon: parse flags, load the configuration, start logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use s3d::auth::SecretKey;
use s3d::cli;
use s3d::config::{self, Overrides};
use s3d::directory::NewUser;

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage users and access keys (in the metadata store every node reads).
    User {
        #[command(subcommand)]
        action: UserAction,
        /// Print JSON instead of `name: value` lines.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Add a user; its access key and secret are generated unless given, and printed once.
    Add {
        #[arg(long)]
        id: String,
        /// Display name (defaults to the id).
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
        /// Let the user manage users.
        #[arg(long)]
        admin: bool,
    },
    /// List users (without secrets).
    List,
    /// Remove the user with this access key.
    Remove {
        #[arg(long)]
        access_key: String,
    },
    /// Give a user a new access key and secret; the old key stops working.
    RotateKey {
        #[arg(long)]
        id: String,
    },
}

fn user_command(action: UserAction) -> cli::UserCommand {
    match action {
        UserAction::Add { id, name, access_key, secret_key, admin } => {
            cli::UserCommand::Add(NewUser { id, name, access_key, secret_key: secret_key.map(SecretKey::new), admin })
        }
        UserAction::List => cli::UserCommand::List,
        UserAction::Remove { access_key } => cli::UserCommand::Remove { access_key },
        UserAction::RotateKey { id } => cli::UserCommand::RotateKey { id },
    }
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s3d: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::User { action, json }) = cli.command {
        return match runtime.block_on(cli::run(&config, user_command(action))) {
            Ok(outcome) => {
                print!("{}", outcome.render(json));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("s3d: {e}");
                ExitCode::FAILURE
            }
        };
    }
    s3d::telemetry::init(config.log_format);
    match runtime.block_on(s3d::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("s3d: {e}");
            ExitCode::FAILURE
        }
    }
}
