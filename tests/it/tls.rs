use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CompletedMultipartUpload};

use crate::common::*;

/// A throwaway CA and a leaf for localhost names, made with the openssl CLI (rustls refuses a
/// self-signed certificate that is also a CA, so a single certificate will not do).
pub struct Certs {
    pub ca_pem: Vec<u8>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_certs(dir: &Path, name: &str) -> Certs {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=DNS:localhost,DNS:s3.localhost,DNS:*.s3.localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]].concat());
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &ext,
    ]);
    Certs { ca_pem: std::fs::read(dir.join(&ca)).expect("ca"), cert: dir.join(cert), key: dir.join(key) }
}

async fn tls_server() -> (TestServer, Certs, tempfile::TempDir) {
    let certs_dir = tempfile::tempdir().expect("tempdir");
    let certs = make_certs(certs_dir.path(), "one");
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path().to_path_buf());
    // The certificate files are replaced in place when the test reloads them.
    let (cert, key) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    std::fs::copy(&certs.cert, &cert).expect("copy");
    std::fs::copy(&certs.key, &key).expect("copy");
    config.tls = Some(s3d::config::TlsConfig { listen: "127.0.0.1:0".parse().expect("addr"), cert, key });
    (TestServer::start_with(config, data).await, certs, certs_dir)
}

#[tokio::test]
async fn https_uploads_with_unsigned_trailers_in_both_styles() {
    let (server, certs, _dir) = tls_server().await;
    let port = server.running().tls_addr.expect("tls").port();
    let file_dir = tempfile::tempdir().expect("tempdir");
    let path = file_dir.path().join("f");
    let body: Vec<u8> = (0..(6 * 1024 * 1024 + 3)).map(|i: usize| (i % 253) as u8).collect();
    std::fs::write(&path, &body).expect("write");
    for style in [Style::Path, Style::VirtualHost] {
        let s3 = sdk_client_with(port, ALICE, style, Some(&certs.ca_pem));
        let bucket = if style == Style::Path { "tls-path" } else { "tls-vhost" };
        s3.create_bucket().bucket(bucket).send().await.expect("create over https");
        // Over HTTPS the SDK sends file bodies as STREAMING-UNSIGNED-PAYLOAD-TRAILER.
        s3.put_object()
            .bucket(bucket)
            .key("file")
            .body(ByteStream::from_path(&path).await.expect("body"))
            .send()
            .await
            .expect("put");
        s3.put_object()
            .bucket(bucket)
            .key("small")
            .body(ByteStream::from_static(b"tiny"))
            .send()
            .await
            .expect("put small");
        let id = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key("mp")
            .send()
            .await
            .expect("create")
            .upload_id()
            .expect("id")
            .to_owned();
        let parts = upload_file_slices(
            &s3,
            bucket,
            "mp",
            &id,
            &path,
            &[(0, 5 * 1024 * 1024), (5 * 1024 * 1024, 1024 * 1024 + 3)],
            None,
        )
        .await;
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key("mp")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .expect("complete");
        for key in ["file", "mp"] {
            let got =
                s3.get_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send().await.expect("get");
            assert!(got.body.collect().await.expect("validated body").into_bytes() == body, "{bucket}/{key}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn certificates_reload_without_restart() {
    let (server, certs, dir) = tls_server().await;
    let port = server.running().tls_addr.expect("tls").port();
    sdk_client_with(port, ALICE, Style::Path, Some(&certs.ca_pem))
        .list_buckets()
        .send()
        .await
        .expect("first certificate");
    let two = make_certs(dir.path(), "two");
    std::fs::copy(&two.cert, server.dir.path().join("cert.pem")).expect("copy");
    std::fs::copy(&two.key, server.dir.path().join("key.pem")).expect("copy");
    server.running().reload_tls().expect("reload");
    sdk_client_with(port, ALICE, Style::Path, Some(&two.ca_pem)).list_buckets().send().await.expect("new certificate");
    assert!(
        sdk_client_with(port, ALICE, Style::Path, Some(&certs.ca_pem)).list_buckets().send().await.is_err(),
        "old CA no longer fits"
    );
    // A broken file keeps the current certificate.
    std::fs::write(server.dir.path().join("cert.pem"), b"garbage").expect("write");
    assert!(server.running().reload_tls().is_err());
    sdk_client_with(port, ALICE, Style::Path, Some(&two.ca_pem)).list_buckets().send().await.expect("still served");
    // Plain HTTP stays available beside HTTPS.
    server.client(ALICE, Style::Path).list_buckets().send().await.expect("plain http");
    server.stop().await;
}

#[tokio::test]
async fn missing_or_invalid_certificates_stop_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.pem"), b"not a certificate").expect("write");
    for (cert, key, needle) in [("missing.pem", "missing.key", "missing.pem"), ("bad.pem", "bad.pem", "bad.pem")] {
        let mut config = test_config(dir.path().join("data"));
        config.tls = Some(s3d::config::TlsConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            cert: dir.path().join(cert),
            key: dir.path().join(key),
        });
        let err = s3d::app::start(config).await.err().expect("refused");
        assert!(err.to_string().contains(needle), "{err}");
        // Refused before any store was opened (or its directory made).
        assert!(!dir.path().join("data").exists());
    }
}
