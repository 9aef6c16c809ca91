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
    // On a virtual-host name the same path is an object key: an anonymous GET of it, in a
    // bucket that does not exist (as on AWS, that the bucket is missing is no secret).
    let resp = Raw::new("GET", &format!("bkt.s3.localhost:{}", d.addr.port()), "/-/health").send(d.addr).await;
    resp.assert_error(404, "NoSuchBucket");

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

/// Concurrent writes commit together (their WAL syncs shared); each 200 still means durable:
/// 64 PUTs, 16 CreateMultipartUploads and a DeleteObjects of 300 keys (one commit) run at
/// once, and the server is killed with SIGKILL the moment the last 200 arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_committed_writes_survive_kill_9_right_after_their_200s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = spawn(command(dir.path()));
    let s3 = sdk_client(d.addr.port(), DEV, Style::Path);
    s3.create_bucket().bucket("group").send().await.expect("bucket");
    for k in 0..300 {
        s3.put_object().bucket("group").key(format!("old/{k}")).body(vec![1u8].into()).send().await.expect("old");
    }
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s3 = s3.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("object {i} ").repeat(400).into_bytes();
            s3.put_object().bucket("group").key(format!("new/{i}")).body(body.into()).send().await.expect("put");
            None
        }));
    }
    for i in 0..16 {
        let s3 = s3.clone();
        tasks.push(tokio::spawn(async move {
            let up = s3.create_multipart_upload().bucket("group").key(format!("up/{i}")).send().await.expect("up");
            up.upload_id().map(str::to_owned)
        }));
    }
    let ids: Vec<_> = (0..300)
        .map(|k| aws_sdk_s3::types::ObjectIdentifier::builder().key(format!("old/{k}")).build().expect("id"))
        .collect();
    let delete = aws_sdk_s3::types::Delete::builder().set_objects(Some(ids)).quiet(true).build().expect("delete");
    let deleted = s3.delete_objects().bucket("group").delete(delete).send().await.expect("delete objects");
    assert!(deleted.errors().is_empty(), "{:?}", deleted.errors());
    let mut uploads = Vec::new();
    for t in tasks {
        uploads.extend(t.await.expect("writer"));
    }
    signal(&d, "-KILL");
    drop(d);

    let d = spawn(command(dir.path()));
    let s3 = sdk_client(d.addr.port(), DEV, Style::VirtualHost);
    for i in 0..64 {
        let got = s3.get_object().bucket("group").key(format!("new/{i}")).send().await.expect("acknowledged put");
        let bytes = got.body.collect().await.expect("body").into_bytes();
        assert_eq!(bytes, format!("object {i} ").repeat(400).as_bytes(), "new/{i}");
    }
    let old = s3.list_objects_v2().bucket("group").prefix("old/").send().await.expect("list");
    assert_eq!(old.key_count(), Some(0), "every acknowledged delete stayed deleted");
    let listed = s3.list_multipart_uploads().bucket("group").send().await.expect("uploads");
    let mut listed: Vec<_> = listed.uploads().iter().filter_map(|u| u.upload_id().map(str::to_owned)).collect();
    listed.sort();
    uploads.sort();
    assert_eq!(listed, uploads, "every acknowledged upload");
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

/// What a key holds: acknowledged content, or (while a write is in flight when the server
/// dies) either of two.
#[derive(Clone, Debug, PartialEq)]
enum Held {
    Absent,
    Bytes(Vec<u8>),
}

fn held_matches(held: &Held, got: &Option<Vec<u8>>) -> bool {
    match (held, got) {
        (Held::Absent, None) => true,
        (Held::Bytes(b), Some(g)) => b == g,
        _ => false,
    }
}

/// Writers on their own keys until the first error (the kill); returns per key the
/// acknowledged state and the state of a write that was in flight.
async fn write_until_killed(
    s3: aws_sdk_s3::Client,
    writer: usize,
    model: Vec<Held>,
    seed: u64,
) -> (Vec<Held>, Vec<Option<Held>>) {
    use aws_sdk_s3::primitives::ByteStream;
    let mut model = model;
    let mut pending: Vec<Option<Held>> = vec![None; model.len()];
    let mut x = seed | 1;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    loop {
        let k = (rand() % model.len() as u64) as usize;
        let key = format!("w{writer}/k{k}");
        let next = if rand() % 4 == 0 {
            Held::Absent
        } else {
            let len = [0usize, 10, 4096, 200_000, 1_500_000][(rand() % 5) as usize];
            let fill = rand() as u8;
            Held::Bytes((0..len).map(|i| (i as u8).wrapping_add(fill)).collect())
        };
        pending[k] = Some(next.clone());
        let ok = match &next {
            Held::Absent => s3.delete_object().bucket("soak").key(&key).send().await.is_ok(),
            Held::Bytes(b) => {
                s3.put_object().bucket("soak").key(&key).body(ByteStream::from(b.clone())).send().await.is_ok()
            }
        };
        if !ok {
            return (model, pending);
        }
        model[k] = next;
        pending[k] = None;
    }
}

/// Writes under concurrent load are killed with SIGKILL at random moments, again and again:
/// after each restart every acknowledged write reads back whole (a write in flight may have
/// landed or not), nothing listed lacks its bytes, and once everything is deleted no blob
/// outlives the grace period and a sweep. `S3D_KILL_CYCLES` sets the number of cycles
/// (`scripts/soak` runs many).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_repeated_kill_9_under_load() {
    use aws_sdk_s3::config::retry::RetryConfig;
    let cycles: u64 = std::env::var("S3D_KILL_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    const WRITERS: usize = 4;
    const KEYS: usize = 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("s3d.toml");
    std::fs::write(&config, "[gc]\ngrace_secs = 1\ninterval_secs = 1\nsweep_interval_secs = 1\n").expect("config");
    let data = dir.path().join("data");
    let start = || {
        let mut cmd = command(&data);
        cmd.arg("--config").arg(&config);
        spawn(cmd)
    };
    let client = |d: &Daemon| {
        let s3 = sdk_client(d.addr.port(), DEV, Style::Path);
        aws_sdk_s3::Client::from_conf(s3.config().to_builder().retry_config(RetryConfig::disabled()).build())
    };
    let mut models: Vec<Vec<Held>> = vec![vec![Held::Absent; KEYS]; WRITERS];
    let d = start();
    client(&d).create_bucket().bucket("soak").send().await.expect("bucket");
    let mut d = Some(d);
    for cycle in 0..cycles {
        let daemon = d.take().expect("running");
        let tasks: Vec<_> = models
            .iter()
            .enumerate()
            .map(|(w, m)| tokio::spawn(write_until_killed(client(&daemon), w, m.clone(), cycle * 131 + w as u64 + 7)))
            .collect();
        tokio::time::sleep(Duration::from_millis(700 + 450 * (cycle % 4))).await;
        signal(&daemon, "-KILL");
        drop(daemon);
        let mut pending = Vec::new();
        for (w, t) in tasks.into_iter().enumerate() {
            let (m, p) = t.await.expect("writer");
            models[w] = m;
            pending.push(p);
        }
        let daemon = start();
        let s3 = client(&daemon);
        for (w, m) in models.iter_mut().enumerate() {
            for (k, held) in m.iter_mut().enumerate() {
                let key = format!("w{w}/k{k}");
                let got = match s3.get_object().bucket("soak").key(&key).send().await {
                    Ok(o) => Some(o.body.collect().await.expect("a whole body").into_bytes().to_vec()),
                    Err(e) => {
                        assert_eq!(sdk_code(&e).as_deref(), Some("NoSuchKey"), "cycle {cycle}, {key}: {e:?}");
                        None
                    }
                };
                if held_matches(held, &got) {
                    continue;
                }
                match &pending[w][k] {
                    Some(in_flight) if held_matches(in_flight, &got) => *held = in_flight.clone(),
                    other => panic!("cycle {cycle}, {key}: acknowledged {held:?}, in flight {other:?}, read {got:?}"),
                }
            }
        }
        let listed = s3.list_objects_v2().bucket("soak").send().await.expect("list");
        let expected = models.iter().flatten().filter(|h| **h != Held::Absent).count();
        assert_eq!(listed.contents().len(), expected, "cycle {cycle}: listing agrees with the acknowledged writes");
        d = Some(daemon);
    }
    let daemon = d.take().expect("running");
    let s3 = client(&daemon);
    for (w, m) in models.iter().enumerate() {
        for k in 0..m.len() {
            s3.delete_object().bucket("soak").key(format!("w{w}/k{k}")).send().await.expect("delete");
        }
    }
    // Garbage after the 1 s grace period and a collector run; orphans of the kills after a sweep.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<String> = walk(&data.join("blobs")).into_iter().filter(|p| !p.contains("/blobs/tmp/")).collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "blobs left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tmp = walk(&data.join("blobs").join("tmp"));
    assert!(tmp.is_empty(), "temporary files left behind: {tmp:?}");
}

/// The published development keys on a non-loopback address are worth a loud warning.
#[test]
fn dev_credentials_beyond_loopback_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3d"));
    cmd.arg("--listen").arg("0.0.0.0:0").arg("--data-dir").arg(dir.path());
    for var in ["S3D_CONFIG", "S3D_ACCESS_KEY", "S3D_SECRET_KEY", "S3D_SECRET_KEY_FILE", "S3D_LISTEN", "S3D_DATA_DIR"] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
    let d = spawn(cmd);
    let line = d.wait_for_log("published development credentials");
    assert!(line.contains("WARN"), "{line}");
}
