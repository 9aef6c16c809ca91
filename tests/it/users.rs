//! Users managed at run time: the admin endpoint, the `s3d user` command, and nodes that
//! share a metadata store seeing each other's changes.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::Client;
use serde_json::Value;

use crate::common::*;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A user built from an admin answer (`{"id", "name", "access_key", "secret_key"}`).
fn user_of(v: &Value) -> User {
    let field = |k: &str| leak(v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned());
    User { id: field("id"), name: field("name"), access_key: field("access_key"), secret_key: field("secret_key") }
}

async fn admin(server: &TestServer, user: User, method: &str, query: &str, body: &[u8]) -> RawResponse {
    let target = if query.is_empty() { "/-/admin/users".to_owned() } else { format!("/-/admin/users?{query}") };
    Raw::new(method, &format!("127.0.0.1:{}", server.port()), &target).body(body).sign(user).send(server.addr).await
}

fn json(resp: &RawResponse) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    serde_json::from_slice(&resp.body).expect("JSON")
}

async fn works(s3: &Client) -> Result<(), String> {
    s3.list_buckets().send().await.map(drop).map_err(|e| sdk_code(&e).unwrap_or_else(|| format!("{e:?}")))
}

#[tokio::test]
async fn the_admin_endpoint_manages_users() {
    let server = TestServer::start().await;
    admin(&server, BOB, "GET", "", b"").await.assert_error(403, "AccessDenied");
    let listed = json(&admin(&server, ALICE, "GET", "", b"").await);
    let ids: Vec<&str> = listed["users"].as_array().expect("users").iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids, ["alice-id", "bob-id"]);
    assert!(!String::from_utf8_lossy(&admin(&server, ALICE, "GET", "", b"").await.body).contains("secret"));

    let carol = json(&admin(&server, ALICE, "POST", "", br#"{"id":"carol","name":"Carol"}"#).await);
    let carol = user_of(&carol);
    assert_eq!((carol.access_key.len(), carol.secret_key.len()), (20, 40));
    let as_carol = server.client(carol, Style::Path);
    as_carol.create_bucket().bucket("carols").send().await.expect("a new user works at once");
    let owner = as_carol.list_buckets().send().await.expect("list").owner().and_then(|o| o.id()).map(str::to_owned);
    assert_eq!(owner.as_deref(), Some("carol"));
    admin(&server, ALICE, "POST", "", br#"{"id":"carol"}"#).await.assert_error(409, "EntityAlreadyExists");
    admin(&server, ALICE, "POST", "", br#"{"id":"x","access_key":"a/b","secret_key":"s"}"#)
        .await
        .assert_error(400, "InvalidArgument");
    admin(&server, ALICE, "POST", "", br#"{"name":"no id"}"#).await.assert_error(400, "InvalidArgument");
    // A body with secrets must be covered by the signature.
    let unsigned = Raw::new("POST", &format!("127.0.0.1:{}", server.port()), "/-/admin/users")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .body(br#"{"id":"dave"}"#)
        .sign(ALICE)
        .send(server.addr)
        .await;
    unsigned.assert_error(400, "InvalidRequest");
    // A presigned URL never manages users.
    let presigned = Raw::new("GET", &format!("127.0.0.1:{}", server.port()), "/-/admin/users")
        .presign(ALICE, SystemTime::now(), Duration::from_secs(60))
        .send(server.addr)
        .await;
    presigned.assert_error(403, "AccessDenied");

    let rotated = user_of(&json(&admin(&server, ALICE, "POST", "rotate-key&id=carol", b"").await));
    assert_ne!(rotated.access_key, carol.access_key);
    assert_eq!(works(&as_carol).await, Err("InvalidAccessKeyId".into()));
    let as_rotated = server.client(rotated, Style::VirtualHost);
    assert_eq!(works(&as_rotated).await, Ok(()));
    admin(&server, ALICE, "POST", "rotate-key&id=nobody", b"").await.assert_error(404, "NoSuchEntity");

    let removed = json(&admin(&server, ALICE, "DELETE", &format!("access-key={}", rotated.access_key), b"").await);
    assert_eq!(removed["id"], "carol");
    assert!(removed.get("secret_key").is_none());
    assert_eq!(works(&as_rotated).await, Err("InvalidAccessKeyId".into()));
    admin(&server, ALICE, "DELETE", "access-key=nope", b"").await.assert_error(404, "NoSuchEntity");
    server.stop().await;
}

/// Waits until `check` holds, for as long as the directory refresh may take (and then some).
async fn within_seconds(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_added_on_one_node_authenticates_on_the_others() {
    let metadata = postgres_metadata().await;
    let blobs = tempfile::tempdir().expect("blobs");
    let (m, b) = (metadata.clone(), blobs.path().to_path_buf());
    let a = TestServer::start_configured(move |c| {
        c.metadata = m;
        c.blob_dir = b;
    })
    .await;
    let (m, b) = (metadata, blobs.path().to_path_buf());
    let other = TestServer::start_configured(move |c| {
        c.metadata = m;
        c.blob_dir = b;
    })
    .await;
    let erin = user_of(&json(&admin(&a, ALICE, "POST", "", br#"{"id":"erin"}"#).await));
    let on_other = other.client(erin, Style::Path);
    within_seconds("the new user authenticating on the other node", async || works(&on_other).await.is_ok()).await;
    admin(&a, ALICE, "DELETE", &format!("access-key={}", erin.access_key), b"").await;
    within_seconds("the removed user being refused on the other node", async || {
        works(&on_other).await == Err("InvalidAccessKeyId".into())
    })
    .await;
    a.stop().await;
    other.stop().await;
}

fn s3d(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3d"));
    cmd.arg("--config").arg(config).args(args);
    for var in ["S3D_CONFIG", "S3D_ACCESS_KEY", "S3D_SECRET_KEY", "S3D_LISTEN", "S3D_DATA_DIR", "S3D_METADATA_URL"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run s3d")
}

fn ok_json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `s3d user …` against a running daemon (through its admin endpoint, RocksDB being locked
/// by it), and against the database itself once the daemon is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_command_works_with_and_without_a_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config = dir.path().join("s3d.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n", dir.path().join("data").display()),
    )
    .expect("config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    within_seconds("the daemon listening", async || tokio::net::TcpStream::connect(addr).await.is_ok()).await;

    let added = ok_json(s3d(&config, &["user", "add", "--id", "app", "--name", "App", "--json"]));
    let app = user_of(&added);
    assert_eq!(works(&sdk_client(port, app, Style::Path)).await, Ok(()));
    let text = s3d(&config, &["user", "add", "--id", "svc", "--access-key", "SVCKEY", "--secret-key", "svc-secret"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).expect("utf-8");
    assert!(text.contains("access_key: SVCKEY\n") && text.contains("secret_key: svc-secret\n"), "{text}");
    let dup = s3d(&config, &["user", "add", "--id", "app"]);
    assert!(!dup.status.success() && String::from_utf8_lossy(&dup.stderr).contains("EntityAlreadyExists"));
    let listed = ok_json(s3d(&config, &["user", "list", "--json"]));
    let keys: Vec<&str> = listed.as_array().expect("array").iter().filter_map(|u| u["access_key"].as_str()).collect();
    assert_eq!(keys.len(), 3, "{listed}");
    assert!(!listed.to_string().contains("secret"));
    let rotated = user_of(&ok_json(s3d(&config, &["user", "rotate-key", "--id", "app", "--json"])));
    assert_eq!(works(&sdk_client(port, app, Style::Path)).await, Err("InvalidAccessKeyId".into()));
    assert_eq!(works(&sdk_client(port, rotated, Style::Path)).await, Ok(()));

    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
    // No daemon: the command opens the database itself.
    let removed = ok_json(s3d(&config, &["user", "remove", "--access-key", rotated.access_key, "--json"]));
    assert_eq!(removed["id"], "app");
    let listed = ok_json(s3d(&config, &["user", "list", "--json"]));
    assert_eq!(listed.as_array().expect("array").len(), 2);
}
