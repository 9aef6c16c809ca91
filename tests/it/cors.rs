use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use crate::common::*;

fn rules() -> CorsConfiguration {
    let web = CorsRule::builder()
        .id("web")
        .allowed_origins("https://*.example.com")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("content-type")
        .allowed_headers("x-amz-*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .expect("rule");
    let anyone = CorsRule::builder().allowed_origins("*").allowed_methods("HEAD").build().expect("rule");
    CorsConfiguration::builder().cors_rules(web).cors_rules(anyone).build().expect("config")
}

fn preflight(server: &TestServer, target: &str, origin: Option<&str>, method: &str, headers: Option<&str>) -> Raw {
    let mut raw =
        Raw::new("OPTIONS", &server.host("web", Style::Path), target).header("access-control-request-method", method);
    if let Some(o) = origin {
        raw = raw.header("origin", o);
    }
    if let Some(h) = headers {
        raw = raw.header("access-control-request-headers", h);
    }
    raw
}

/// Put/Get/DeleteBucketCors with AWS's validation, preflights answered from the rules
/// without credentials, and `Access-Control-*` headers on matching cross-origin requests.
#[tokio::test]
async fn cors_rules_preflights_and_response_headers() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::VirtualHost);
    s3.create_bucket().bucket("web").send().await.expect("bucket");
    let err = s3.get_bucket_cors().bucket("web").send().await.expect_err("none yet");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchCORSConfiguration"));

    // Before any rule, a preflight is refused.
    let resp = preflight(&server, "/web/k", Some("https://app.example.com"), "GET", None).send(server.addr).await;
    resp.assert_error(403, "AccessForbidden");
    assert!(resp.text().contains("CORS is not enabled for this bucket"));

    s3.put_bucket_cors().bucket("web").cors_configuration(rules()).send().await.expect("put cors");
    let got = s3.get_bucket_cors().bucket("web").send().await.expect("get cors");
    assert_eq!(got.cors_rules(), rules().cors_rules());

    // A matching preflight, of an object and of the bucket.
    for target in ["/web/photos/a.jpg", "/web"] {
        let resp = preflight(&server, target, Some("https://app.example.com"), "PUT", Some("Content-Type, X-Amz-Date"))
            .send(server.addr)
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("access-control-allow-origin"), Some("https://app.example.com"));
        assert_eq!(resp.header("access-control-allow-methods"), Some("GET, PUT"));
        assert_eq!(resp.header("access-control-allow-headers"), Some("content-type, x-amz-date"));
        assert_eq!(resp.header("access-control-expose-headers"), Some("ETag"));
        assert_eq!(resp.header("access-control-max-age"), Some("600"));
        assert_eq!(resp.header("access-control-allow-credentials"), Some("true"));
        assert!(resp.header("vary").is_some_and(|v| v.contains("Origin")));
    }
    let any = preflight(&server, "/web/k", Some("http://elsewhere"), "HEAD", None).send(server.addr).await;
    assert_eq!((any.status, any.header("access-control-allow-origin")), (200, Some("*")));
    assert_eq!(any.header("access-control-allow-credentials"), None);

    // Refused: an origin, a method or a header no rule allows; malformed preflights.
    for (origin, method, headers) in [
        ("https://evil.test", "GET", None),
        ("https://app.example.com", "DELETE", None),
        ("https://app.example.com", "GET", Some("x-secret")),
    ] {
        let resp = preflight(&server, "/web/k", Some(origin), method, headers).send(server.addr).await;
        resp.assert_error(403, "AccessForbidden");
        assert_eq!(xml_value(&resp.text(), "Method").as_deref(), Some(method));
        assert_eq!(xml_value(&resp.text(), "ResourceType").as_deref(), Some("OBJECT"));
    }
    preflight(&server, "/web/k", None, "GET", None).send(server.addr).await.assert_error(400, "BadRequest");
    let resp = preflight(&server, "/web/k", Some("https://app.example.com"), "PATCH", None).send(server.addr).await;
    resp.assert_error(400, "BadRequest");
    let resp = Raw::new("OPTIONS", &server.host("nope", Style::Path), "/nope/k")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send(server.addr)
        .await;
    resp.assert_error(404, "NoSuchBucket");

    // The actual request carries the headers of the rule that allows it (errors too).
    s3.put_object().bucket("web").key("k").body(b"x".to_vec().into()).send().await.expect("put");
    let get = Raw::new("GET", &server.host("web", Style::Path), "/web/k")
        .header("origin", "https://app.example.com")
        .sign(ALICE)
        .send(server.addr)
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(get.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(get.header("access-control-expose-headers"), Some("ETag"));
    let missing = Raw::new("GET", &server.host("web", Style::Path), "/web/missing")
        .header("origin", "https://app.example.com")
        .sign(ALICE)
        .send(server.addr)
        .await;
    missing.assert_error(404, "NoSuchKey");
    assert_eq!(missing.header("access-control-allow-origin"), Some("https://app.example.com"));
    let other = Raw::new("GET", &server.host("web", Style::Path), "/web/k")
        .header("origin", "https://evil.test")
        .sign(ALICE)
        .send(server.addr)
        .await;
    assert_eq!((other.status, other.header("access-control-allow-origin")), (200, None));
    assert!(other.header("vary").is_some_and(|v| v.contains("Origin")));

    // Bad rules get AWS's errors; deleting the rules ends CORS.
    let bad = CorsRule::builder().allowed_origins("*").allowed_methods("PATCH").build().expect("rule");
    let err = s3
        .put_bucket_cors()
        .bucket("web")
        .cors_configuration(CorsConfiguration::builder().cors_rules(bad).build().expect("config"))
        .send()
        .await
        .expect_err("PATCH");
    assert_eq!(err.into_service_error().meta().code(), Some("InvalidRequest"));
    s3.delete_bucket_cors().bucket("web").send().await.expect("delete cors");
    let resp = preflight(&server, "/web/k", Some("https://app.example.com"), "GET", None).send(server.addr).await;
    resp.assert_error(403, "AccessForbidden");
    server.stop().await;
}
