use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

const DEV: User = User {
    id: "s3d-dev",
    name: "dev",
    access_key: s3d::config::DEV_ACCESS_KEY,
    secret_key: s3d::config::DEV_SECRET_KEY,
};

/// A running `s3d` binary; killed on drop so no test leaves a process behind.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    /// Every line the daemon logs after its start.
    log: mpsc::Receiver<String>,
}

impl Daemon {
    /// Waits (up to 20 s) for a log line containing `needle`.
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("s3d did not log {needle:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3d"));
    cmd.arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(data_dir);
    for var in ["S3D_CONFIG", "S3D_ACCESS_KEY", "S3D_SECRET_KEY", "S3D_SECRET_KEY_FILE", "S3D_LISTEN", "S3D_DATA_DIR"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

fn spawn(mut cmd: Command) -> Daemon {
    let mut child = cmd.spawn().expect("spawn s3d");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // Keep draining stderr so the daemon never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut daemon = Daemon { child, addr: "0.0.0.0:0".parse().expect("placeholder"), log: rx };
    let line = daemon.wait_for_log("listening on ");
    let i = line.find("listening on ").expect("found") + "listening on ".len();
    daemon.addr = line[i..].split_whitespace().next().unwrap_or("").parse().expect("socket address");
    daemon
}

fn wait_exit(d: &mut Daemon) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = d.child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("s3d did not exit within 10 s");
}

fn signal(d: &Daemon, sig: &str) {
    let ok = Command::new("kill").arg(sig).arg(d.child.id().to_string()).status().expect("kill");
    assert!(ok.success());
}

#[tokio::test]
async fn health_and_graceful_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = spawn(command(dir.path()));
    let resp = Raw::new("GET", &d.addr.to_string(), "/-/health").send(d.addr).await;
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok\n"));
    assert_eq!(resp.header("server"), Some("s3d"));
    // On a virtual-host name the same path is an object key and needs auth.
    let resp = Raw::new("GET", &format!("bkt.s3.localhost:{}", d.addr.port()), "/-/health").send(d.addr).await;
    resp.assert_error(403, "AccessDenied");

    signal(&d, "-TERM");
    assert!(wait_exit(&mut d).success(), "SIGTERM exits cleanly");
    let mut d = spawn(command(dir.path()));
    signal(&d, "-INT");
    assert!(wait_exit(&mut d).success(), "SIGINT exits cleanly");
}

#[tokio::test]
async fn acknowledged_uploads_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = spawn(command(dir.path()));
    let s3 = sdk_client(d.addr.port(), DEV, Style::Path);
    s3.create_bucket().bucket("durable").send().await.expect("bucket");
    let up = s3.create_multipart_upload().bucket("durable").key("k").send().await.expect("upload");
    signal(&d, "-KILL");
    drop(d);

    let d = spawn(command(dir.path()));
    let s3 = sdk_client(d.addr.port(), DEV, Style::VirtualHost);
    let list = s3.list_multipart_uploads().bucket("durable").send().await.expect("list");
    assert_eq!(list.uploads().len(), 1);
    assert_eq!(list.uploads()[0].upload_id(), up.upload_id());
}

#[tokio::test]
async fn credentials_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = command(dir.path());
    cmd.env("S3D_ACCESS_KEY", "env-access").env("S3D_SECRET_KEY", "env-secret");
    let d = spawn(cmd);
    let user = User { id: "s3d-admin", name: "admin", access_key: "env-access", secret_key: "env-secret" };
    let s3 = sdk_client(d.addr.port(), user, Style::Path);
    s3.create_bucket().bucket("envbucket").send().await.expect("env user works");
    let list = s3.list_buckets().send().await.expect("list");
    assert_eq!(list.owner().and_then(|o| o.id()), Some("s3d-admin"));
    let err = sdk_client(d.addr.port(), DEV, Style::Path).list_buckets().send().await.expect_err("dev user replaced");
    assert_eq!(sdk_code(&err).as_deref(), Some("InvalidAccessKeyId"));
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("listen = \"127.0.0.1:0\"\nbogus_key = 1\n", "bogus_key"),
        ("listen = \"not an address\"\n", "listen"),
        ("region = \"\"\n", "region"),
    ];
    for (text, key) in cases {
        let file = dir.path().join("s3d.toml");
        std::fs::write(&file, text).expect("write config");
        let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
            .arg("--config")
            .arg(&file)
            .env_remove("S3D_LISTEN")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
}

#[test]
fn default_config_file_starts_the_same_server() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).expect("read");
    let raw = s3d::config::RawConfig::from_toml(&text).expect("parses");
    assert_eq!(raw, s3d::config::RawConfig::default());
}

#[tokio::test]
async fn sighup_reloads_the_tls_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = crate::tls::make_certs(dir.path(), "hup");
    let config = dir.path().join("s3d.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
            certs.cert.display(),
            certs.key.display()
        ),
    )
    .expect("config");
    let mut cmd = command(&dir.path().join("data"));
    cmd.arg("--config").arg(&config);
    let d = spawn(cmd);
    d.wait_for_log("serving TLS at 127.0.0.1:");
    signal(&d, "-HUP");
    d.wait_for_log("SIGHUP: TLS certificate reloaded");
    std::fs::write(&certs.cert, b"broken").expect("write");
    signal(&d, "-HUP");
    d.wait_for_log("keeping the previous certificate");
    // Still serving.
    let resp = Raw::new("GET", &d.addr.to_string(), "/-/health").send(d.addr).await;
    assert_eq!(resp.status, 200);
}
