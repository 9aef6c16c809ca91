use std::time::{Duration, SystemTime};

use crate::common::*;

async fn server_with_bucket() -> TestServer {
    let server = TestServer::start().await;
    server.client(ALICE, Style::Path).create_bucket().bucket("bkt").send().await.expect("bucket");
    server
}

fn list_uploads(server: &TestServer) -> Raw {
    Raw::new("GET", &server.host("bkt", Style::Path), "/bkt?uploads")
}

#[tokio::test]
async fn wrong_secret_shows_what_was_signed() {
    let server = server_with_bucket().await;
    let wrong = User { secret_key: "not-the-secret", ..ALICE };
    let resp = list_uploads(&server).sign(wrong).send(server.addr).await;
    resp.assert_error(403, "SignatureDoesNotMatch");
    let body = resp.text();
    let sts = xml_value(&body, "StringToSign").expect("StringToSign");
    assert!(sts.starts_with("AWS4-HMAC-SHA256\n"), "{sts}");
    let creq = xml_value(&body, "CanonicalRequest").expect("CanonicalRequest");
    assert!(creq.starts_with("GET\n/bkt\nuploads=\n"), "{creq}");
    assert_eq!(xml_value(&body, "AWSAccessKeyId").as_deref(), Some(ALICE.access_key));
    server.stop().await;
}

#[tokio::test]
async fn auth_failures_have_distinct_codes() {
    let server = server_with_bucket().await;
    let unknown = User { access_key: "AKNOBODY", ..ALICE };
    list_uploads(&server).sign(unknown).send(server.addr).await.assert_error(403, "InvalidAccessKeyId");

    let skewed = SystemTime::now() - Duration::from_secs(20 * 60);
    let resp = list_uploads(&server).sign_at(ALICE, REGION, skewed).send(server.addr).await;
    resp.assert_error(403, "RequestTimeTooSkewed");
    assert!(resp.text().contains("<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"));

    let resp = list_uploads(&server).sign_at(ALICE, "eu-central-1", SystemTime::now()).send(server.addr).await;
    resp.assert_error(400, "AuthorizationHeaderMalformed");
    assert_eq!(xml_value(&resp.text(), "Region").as_deref(), Some(REGION));

    for bad in [
        "AWS4-HMAC-SHA256 Credential=garbage",
        "AWS4-HMAC-SHA256 Credential=AKALICE0000000000001/20260101/us-east-1/s3/aws4_request, Signature=00",
        "Bearer token",
    ] {
        let resp = list_uploads(&server)
            .header("authorization", bad)
            .header("x-amz-date", &s3d::clock::Timestamp::now().to_amz_date())
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .send(server.addr)
            .await;
        resp.assert_error(400, "AuthorizationHeaderMalformed");
    }

    list_uploads(&server).send(server.addr).await.assert_error(403, "AccessDenied");
    server.stop().await;
}

#[tokio::test]
async fn payload_hash_header_is_required_and_checked() {
    let server = server_with_bucket().await;
    // Signed with the hash of one body, sent with another.
    let signed =
        Raw::new("PUT", &server.host("", Style::Path), "/newbucket").body(b"<CreateBucketConfiguration/>").sign(ALICE);
    let mut tampered = signed.clone();
    tampered.body = b"<CreateBucketConfigurati0n/>".to_vec();
    tampered.send(server.addr).await.assert_error(400, "XAmzContentSHA256Mismatch");
    let list = server.client(ALICE, Style::Path).list_buckets().send().await.expect("list");
    assert_eq!(list.buckets().len(), 1, "no bucket created by the rejected request");

    let mut missing = list_uploads(&server).sign(ALICE);
    missing.headers.retain(|(k, _)| k != "x-amz-content-sha256");
    missing.send(server.addr).await.assert_error(400, "InvalidRequest");

    let mut bad = list_uploads(&server).sign(ALICE);
    for (k, v) in &mut bad.headers {
        if k == "x-amz-content-sha256" {
            *v = "not-a-hash".into();
        }
    }
    bad.send(server.addr).await.assert_error(400, "InvalidArgument");

    let unsigned = list_uploads(&server).header("x-amz-content-sha256", "UNSIGNED-PAYLOAD").sign(ALICE);
    assert_eq!(unsigned.send(server.addr).await.status, 200);
    server.stop().await;
}

/// The variations real clients put on the wire all verify.
#[tokio::test]
async fn client_variations_verify() {
    let server = server_with_bucket().await;
    let host = server.host("bkt", Style::Path);
    // s3cmd writes no space after the commas of the Authorization header.
    let mut s3cmd = list_uploads(&server).sign(ALICE);
    for (k, v) in &mut s3cmd.headers {
        if k == "authorization" {
            *v = v.replace(", ", ",");
        }
    }
    assert_eq!(s3cmd.send(server.addr).await.status, 200);
    // `?uploads=`, the Rust SDK's x-id, trailing-slash bucket paths, signed content headers.
    for (method, target) in [
        ("POST", "/bkt/k1?uploads="),
        ("POST", "/bkt/k2?uploads&x-id=CreateMultipartUpload"),
        ("GET", "/bkt/?uploads"),
        ("GET", "/bkt/?uploads&max-uploads=10&prefix=&delimiter="),
    ] {
        let resp = Raw::new(method, &host, target)
            .header("content-type", "application/octet-stream")
            .header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
            .header("accept-encoding", "gzip")
            .header("x-amz-meta-mtime", "1700000000")
            .sign(ALICE)
            .send(server.addr)
            .await;
        assert_eq!(resp.status, 200, "{method} {target}: {}", resp.text());
    }
    server.stop().await;
}

#[tokio::test]
async fn presigned_urls() {
    let server = server_with_bucket().await;
    let host = server.host("bkt", Style::Path);
    let url = Raw::new("GET", &host, "/bkt?uploads").presign(ALICE, SystemTime::now(), Duration::from_secs(300));
    assert!(url.target.contains("X-Amz-Signature="), "{}", url.target);
    let resp = url.send(server.addr).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("<ListMultipartUploadsResult"));

    // A presigned CreateMultipartUpload works too.
    let resp = Raw::new("POST", &host, "/bkt/presigned-key?uploads")
        .presign(ALICE, SystemTime::now(), Duration::from_secs(60))
        .send(server.addr)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let mut tampered = url.clone();
    tampered.target = tampered.target.replace("uploads", "uploads&prefix=x");
    tampered.send(server.addr).await.assert_error(403, "SignatureDoesNotMatch");

    let expired = Raw::new("GET", &host, "/bkt?uploads").presign(
        ALICE,
        SystemTime::now() - Duration::from_secs(3600),
        Duration::from_secs(60),
    );
    let resp = expired.send(server.addr).await;
    resp.assert_error(403, "AccessDenied");
    assert!(resp.text().contains("Request has expired"));
    // As AWS shows it: how long it was valid for, when it expired, and the server's time.
    assert!(xml_value(&resp.text(), "X-Amz-Expires").is_some(), "{}", resp.text());
    assert!(xml_value(&resp.text(), "Expires").is_some_and(|e| e.ends_with('Z')));
    assert!(xml_value(&resp.text(), "ServerTime").is_some_and(|t| t.ends_with('Z')));

    let too_long =
        Raw::new("GET", &host, "/bkt?uploads").presign(ALICE, SystemTime::now(), Duration::from_secs(604_801));
    too_long.send(server.addr).await.assert_error(400, "AuthorizationQueryParametersError");
    server.stop().await;
}

/// Signature Version 2, header and query forms, both addressing styles: the strings to sign
/// are written out here as AWS defines them, and signed with HMAC-SHA1.
#[tokio::test]
async fn signature_version_2() {
    use s3d::auth::sigv2::sign;
    let server = server_with_bucket().await;
    let date = s3d::clock::Timestamp::now().to_http_date();
    for style in [Style::Path, Style::VirtualHost] {
        let key = format!("v2-{style:?}");
        let sts = format!("PUT\n\ntext/plain\n{date}\nx-amz-meta-colour:blue\n/bkt/{key}");
        let put = Raw::new("PUT", &server.host("bkt", style), &server.target("bkt", &key, style))
            .header("date", &date)
            .header("content-type", "text/plain")
            .header("x-amz-meta-colour", "blue")
            .header("authorization", &format!("AWS {}:{}", ALICE.access_key, sign(ALICE.secret_key, &sts)))
            .body(b"hello")
            .send(server.addr)
            .await;
        assert_eq!(put.status, 200, "{}", put.text());

        let expires = (s3d::clock::Timestamp::now().unix_seconds() + 60).to_string();
        let sig = sign(ALICE.secret_key, &format!("GET\n\n\n{expires}\n/bkt/{key}"));
        let query = format!(
            "AWSAccessKeyId={}&Expires={expires}&Signature={}",
            ALICE.access_key,
            percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC)
        );
        let target = format!("{}?{query}", server.target("bkt", &key, style));
        let get = Raw::new("GET", &server.host("bkt", style), &target).send(server.addr).await;
        assert_eq!((get.status, get.body.as_slice()), (200, &b"hello"[..]), "{}", get.text());
        assert_eq!(get.header("x-amz-meta-colour"), Some("blue"));

        // Another key under the same signature, or an added header, does not verify.
        let other = format!("{}?{query}", server.target("bkt", "other", style));
        let resp = Raw::new("GET", &server.host("bkt", style), &other).send(server.addr).await;
        resp.assert_error(403, "SignatureDoesNotMatch");
        assert!(xml_value(&resp.text(), "StringToSign").is_some_and(|s| s.ends_with("/bkt/other")));
        assert!(xml_value(&resp.text(), "CanonicalRequest").is_none(), "no canonical request in version 2");
        let resp = Raw::new("GET", &server.host("bkt", style), &target)
            .header("x-amz-meta-extra", "1")
            .send(server.addr)
            .await;
        resp.assert_error(403, "SignatureDoesNotMatch");
    }
    // A presigned PUT carrying metadata in its query (as botocore puts it there): signed as
    // headers, stored as headers.
    let expires = (s3d::clock::Timestamp::now().unix_seconds() + 60).to_string();
    let sig = sign(ALICE.secret_key, &format!("PUT\n\n\n{expires}\nx-amz-meta-colour:red\n/bkt/meta"));
    let encoded = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC).to_string();
    let target = format!(
        "/bkt/meta?AWSAccessKeyId={}&Expires={expires}&Signature={encoded}&x-amz-meta-colour=red",
        ALICE.access_key
    );
    let put = Raw::new("PUT", &server.host("bkt", Style::Path), &target).body(b"m").send(server.addr).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let head = server.client(ALICE, Style::Path).head_object().bucket("bkt").key("meta").send().await.expect("head");
    assert_eq!(head.metadata().and_then(|m| m.get("colour")).map(String::as_str), Some("red"));
    let tampered = target.replace("colour=red", "colour=blue");
    let put = Raw::new("PUT", &server.host("bkt", Style::Path), &tampered).body(b"m").send(server.addr).await;
    put.assert_error(403, "SignatureDoesNotMatch");

    // Operations picked by a parameter it does not sign, and user management, need SigV4.
    let sig = sign(ALICE.secret_key, &format!("GET\n\n\n{date}\nx-amz-object-attributes:ETag\n/bkt/meta"));
    let v2 = format!("AWS {}:{sig}", ALICE.access_key);
    let resp = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt/meta?attributes")
        .header("date", &date)
        .header("x-amz-object-attributes", "ETag")
        .header("authorization", &v2)
        .send(server.addr)
        .await;
    resp.assert_error(400, "InvalidRequest");
    let sig = sign(ALICE.secret_key, &format!("GET\n\n\n{date}\n/-/admin/users"));
    let resp = Raw::new("GET", &server.host("bkt", Style::Path), "/-/admin/users")
        .header("date", &date)
        .header("authorization", &format!("AWS {}:{sig}", ALICE.access_key))
        .send(server.addr)
        .await;
    resp.assert_error(403, "AccessDenied");

    // One mechanism at a time.
    let sig = sign(ALICE.secret_key, &format!("GET\n\n\n{date}\n/bkt/v2-Path"));
    let resp = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt/v2-Path?X-Amz-Algorithm=AWS4-HMAC-SHA256")
        .header("date", &date)
        .header("authorization", &format!("AWS {}:{sig}", ALICE.access_key))
        .send(server.addr)
        .await;
    resp.assert_error(400, "InvalidArgument");
    server.stop().await;

    // Turned off, it is refused as AWS refuses it where it is retired.
    let server = TestServer::start_configured(|c| c.sigv2 = false).await;
    let resp = Raw::new("GET", &server.host("bkt", Style::Path), "/bkt/k")
        .header("date", &date)
        .header("authorization", &format!("AWS {}:{sig}", ALICE.access_key))
        .send(server.addr)
        .await;
    resp.assert_error(400, "InvalidRequest");
    assert!(resp.text().contains("Please use AWS4-HMAC-SHA256"));
    server.stop().await;
}
