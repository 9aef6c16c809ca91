//! `/-/metrics`: the Prometheus exposition, and its bearer token.

use aws_sdk_s3::primitives::ByteStream;

use crate::common::*;

async fn scrape(server: &TestServer, token: Option<&str>) -> RawResponse {
    let mut raw = Raw::new("GET", &format!("127.0.0.1:{}", server.port()), "/-/metrics");
    if let Some(t) = token {
        raw = raw.header("authorization", &format!("Bearer {t}"));
    }
    raw.send(server.addr).await
}

/// The value of the series whose line starts with `name{` and carries every label in `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn requests_latencies_and_the_store_are_measured() {
    let server = TestServer::start_configured(|c| c.metrics.node = "it-node".into()).await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("metered").send().await.expect("bucket");
    let before = scrape(&server, None).await;
    assert_eq!(before.status, 200);
    assert_eq!(before.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let puts = |text: &str| {
        value(text, "s3d_requests_total", &["operation=\"PutObject\"", "status=\"200\"", "node=\"it-node\""])
    };
    let before_puts = puts(&before.text()).unwrap_or(0.0);
    s3.put_object().bucket("metered").key("k").body(ByteStream::from_static(b"12345")).send().await.expect("put");
    s3.get_object().bucket("metered").key("nope").send().await.expect_err("404");

    let text = scrape(&server, None).await.text();
    assert!(puts(&text).expect("PutObject counted") >= before_puts + 1.0, "{text}");
    let missing = value(&text, "s3d_requests_total", &["operation=\"GetObject\"", "status=\"404\""]);
    assert!(missing.is_some_and(|n| n >= 1.0), "{text}");
    for series in [
        "s3d_request_duration_seconds_count",
        "s3d_metadata_duration_seconds_count",
        "s3d_requests_in_flight",
        "s3d_connections_open",
        "s3d_received_bytes_total",
        "s3d_sent_bytes_total",
        "s3d_users",
    ] {
        assert!(value(&text, series, &["node=\"it-node\""]).is_some(), "{series} missing:\n{text}");
    }
    assert!(value(&text, "s3d_metadata_duration_seconds_count", &["backend=\"rocksdb\""]).is_some_and(|n| n > 0.0));
    // The scrape itself is in flight while it is rendered.
    assert!(value(&text, "s3d_requests_in_flight", &[]).is_some_and(|n| n >= 1.0));
    server.stop().await;
}

#[tokio::test]
async fn a_token_protects_the_metrics() {
    let server = TestServer::start_configured(|c| c.metrics.token = Some("scrape-secret".into())).await;
    for token in [None, Some("wrong"), Some("scrape-secre")] {
        let resp = scrape(&server, token).await;
        assert_eq!((resp.status, resp.header("www-authenticate")), (401, Some("Bearer")), "{token:?}");
        assert!(!resp.text().contains("s3d_"));
    }
    let resp = scrape(&server, Some("scrape-secret")).await;
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("s3d_requests_total"));
    server.stop().await;
}
