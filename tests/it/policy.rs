use crate::common::*;

fn anonymous(server: &TestServer, method: &str, target: &str) -> Raw {
    Raw::new(method, &server.host("pub", Style::Path), target)
}

const PUBLIC_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow",
    "Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}"#;

/// Bucket policies: a public-read bucket serves anonymous GETs and nothing else, a second
/// user gets what a statement naming it allows, an explicit Deny stops even the owner (who
/// can still repair the policy), and conditions see the client's address.
#[tokio::test]
async fn bucket_policies_decide_who_may_do_what() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("pub").send().await.expect("bucket");
    s3.put_object().bucket("pub").key("a.txt").body(b"hello".to_vec().into()).send().await.expect("put");
    anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await.assert_error(403, "AccessDenied");
    let err = s3.get_bucket_policy().bucket("pub").send().await.expect_err("none yet");
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchBucketPolicy"));

    // A new bucket blocks public access, as on AWS: a public policy is refused until the
    // block is lifted; RestrictPublicBuckets keeps a public policy from granting anonymous
    // callers anything.
    let block = s3.get_public_access_block().bucket("pub").send().await.expect("default block");
    let c = block.public_access_block_configuration().expect("configuration");
    assert_eq!(
        (c.block_public_acls(), c.ignore_public_acls(), c.block_public_policy(), c.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let err = s3.put_bucket_policy().bucket("pub").policy(PUBLIC_READ).send().await.expect_err("blocked");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    let only_restrict =
        aws_sdk_s3::types::PublicAccessBlockConfiguration::builder().restrict_public_buckets(true).build();
    let put = s3.put_public_access_block().bucket("pub").public_access_block_configuration(only_restrict);
    put.send().await.expect("put block");
    s3.put_bucket_policy().bucket("pub").policy(PUBLIC_READ).send().await.expect("no longer blocked");
    anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await.assert_error(403, "AccessDenied");
    s3.delete_public_access_block().bucket("pub").send().await.expect("lift the block");
    let err = s3.get_public_access_block().bucket("pub").send().await.expect_err("none");
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchPublicAccessBlockConfiguration"));

    s3.put_bucket_policy().bucket("pub").policy(PUBLIC_READ).send().await.expect("policy");
    let got = s3.get_bucket_policy().bucket("pub").send().await.expect("get policy");
    assert_eq!(got.policy(), Some(PUBLIC_READ));
    let status = s3.get_bucket_policy_status().bucket("pub").send().await.expect("status");
    assert_eq!(status.policy_status().and_then(|s| s.is_public()), Some(true));

    let get = anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await;
    assert_eq!((get.status, get.body.as_slice()), (200, &b"hello"[..]));
    // Whether a key exists is for those who may list: anonymous callers here may not.
    anonymous(&server, "GET", "/pub/missing").send(server.addr).await.assert_error(403, "AccessDenied");
    let resp = anonymous(&server, "GET", "/pub/a.txt?response-content-type=text%2Fhtml").send(server.addr).await;
    resp.assert_error(400, "InvalidRequest");
    anonymous(&server, "PUT", "/pub/b.txt").body(b"x").send(server.addr).await.assert_error(403, "AccessDenied");
    anonymous(&server, "GET", "/pub").send(server.addr).await.assert_error(403, "AccessDenied");
    anonymous(&server, "DELETE", "/pub/a.txt").send(server.addr).await.assert_error(403, "AccessDenied");
    anonymous(&server, "GET", "/").send(server.addr).await.assert_error(403, "AccessDenied");
    // A signed request from another user is not anonymous, and the policy names anyone.
    let bob = server.client(BOB, Style::VirtualHost);
    bob.get_object().bucket("pub").key("a.txt").send().await.expect("bob reads a public object");
    let err = bob.put_object().bucket("pub").key("b").body(b"x".to_vec().into()).send().await.expect_err("bob writes");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));

    // A read-only user: GET and list, nothing else.
    let read_only = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob-id"},
        "Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"]}]}"#;
    s3.put_bucket_policy().bucket("pub").policy(read_only).send().await.expect("policy");
    anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await.assert_error(403, "AccessDenied");
    bob.get_object().bucket("pub").key("a.txt").send().await.expect("bob reads");
    let listed = bob.list_objects_v2().bucket("pub").send().await.expect("bob lists");
    assert_eq!(listed.contents().len(), 1);
    let err = bob.delete_object().bucket("pub").key("a.txt").send().await.expect_err("bob deletes");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    let err = bob.get_bucket_policy().bucket("pub").send().await.expect_err("bob reads the policy");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    let err = bob.get_object().bucket("pub").key("missing").send().await.expect_err("missing");
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchKey"), "bob may list: 404");
    let status = s3.get_bucket_policy_status().bucket("pub").send().await.expect("status");
    assert_eq!(status.policy_status().and_then(|s| s.is_public()), Some(false));

    // An explicit Deny stops the owner too, key by key in a DeleteObjects; the owner can
    // still replace the policy, which nobody else may manage even when a statement allows it.
    let deny = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::pub/a*"},
        {"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"]}]}"#;
    s3.put_bucket_policy().bucket("pub").policy(deny).send().await.expect("policy");
    let err = s3.delete_object().bucket("pub").key("a.txt").send().await.expect_err("denied");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    s3.put_object().bucket("pub").key("b.txt").body(b"b".to_vec().into()).send().await.expect("put b");
    let objects =
        ["a.txt", "b.txt"].map(|k| aws_sdk_s3::types::ObjectIdentifier::builder().key(k).build().expect("id"));
    let delete = aws_sdk_s3::types::Delete::builder().set_objects(Some(objects.to_vec())).build().expect("delete");
    let out = s3.delete_objects().bucket("pub").delete(delete).send().await.expect("delete objects");
    assert_eq!(out.deleted().iter().filter_map(|d| d.key()).collect::<Vec<_>>(), ["b.txt"]);
    assert_eq!(
        out.errors().iter().map(|e| (e.key(), e.code())).collect::<Vec<_>>(),
        [(Some("a.txt"), Some("AccessDenied"))]
    );
    let resp = bob.put_bucket_policy().bucket("pub").policy(PUBLIC_READ).send().await.expect_err("not the owner");
    assert_eq!(resp.raw_response().map(|r| r.status().as_u16()), Some(405));
    s3.delete_bucket_policy().bucket("pub").send().await.expect("the owner removes it");
    s3.get_object().bucket("pub").key("a.txt").send().await.expect("the owner reads");

    // Conditions see the client's address (127.0.0.1 here).
    let from = |net: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*",
            "Condition":{{"IpAddress":{{"aws:SourceIp":"{net}"}}}}}}]}}"#
        )
    };
    s3.put_bucket_policy().bucket("pub").policy(from("127.0.0.0/8")).send().await.expect("policy");
    assert_eq!(anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await.status, 200);
    s3.put_bucket_policy().bucket("pub").policy(from("10.0.0.0/8")).send().await.expect("policy");
    anonymous(&server, "GET", "/pub/a.txt").send(server.addr).await.assert_error(403, "AccessDenied");

    // Anonymous writers a policy lets in: plain and unsigned aws-chunked bodies are stored
    // decoded, owned by the bucket's owner; a body claiming chunk signatures is refused.
    let drop_box = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
        "Resource":"arn:aws:s3:::pub/drop/*"}]}"#;
    s3.put_bucket_policy().bucket("pub").policy(drop_box).send().await.expect("policy");
    let framed = b"5\r\nhello\r\n0\r\n\r\n";
    let put = anonymous(&server, "PUT", "/pub/drop/chunked")
        .header("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "5")
        .body(framed)
        .send(server.addr)
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let got = s3.get_object().bucket("pub").key("drop/chunked").send().await.expect("get");
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), b"hello");
    let listed = s3.list_objects_v2().bucket("pub").prefix("drop/").fetch_owner(true).send().await.expect("list");
    assert_eq!(listed.contents()[0].owner().and_then(|o| o.id()), Some(ALICE.id), "the bucket owner owns it");
    let resp = anonymous(&server, "PUT", "/pub/drop/signed")
        .header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        .body(framed)
        .send(server.addr)
        .await;
    resp.assert_error(403, "AccessDenied");
    anonymous(&server, "PUT", "/pub/elsewhere").body(b"x").send(server.addr).await.assert_error(403, "AccessDenied");

    // Malformed policies get AWS's code; the bucket keeps the policy it had.
    for bad in [
        "not json",
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
    ] {
        let err = s3.put_bucket_policy().bucket("pub").policy(bad).send().await.expect_err("malformed");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        assert_eq!(err.into_service_error().meta().code(), Some("MalformedPolicy"));
    }
    assert_eq!(s3.get_bucket_policy().bucket("pub").send().await.expect("kept").policy(), Some(drop_box));
    server.stop().await;
}

/// Behind a trusted proxy, `aws:SourceIp` is the client `X-Forwarded-For` names; from
/// anyone else the header is ignored.
#[tokio::test]
async fn source_ip_behind_trusted_proxies() {
    let net = s3d::s3::policy::parse_cidr("127.0.0.0/8").expect("cidr");
    let server = TestServer::start_configured(|c| c.trusted_proxies = vec![net]).await;
    let plain = TestServer::start().await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::pub/*","Condition":{"IpAddress":{"aws:SourceIp":"198.51.100.0/24"}}}]}"#;
    for s in [&server, &plain] {
        let s3 = s.client(ALICE, Style::Path);
        s3.create_bucket().bucket("pub").send().await.expect("bucket");
        s3.delete_public_access_block().bucket("pub").send().await.expect("lift the block");
        s3.put_object().bucket("pub").key("a").body(b"a".to_vec().into()).send().await.expect("put");
        s3.put_bucket_policy().bucket("pub").policy(policy).send().await.expect("policy");
    }
    let get = |s: &TestServer, forwarded: Option<&'static str>| {
        let raw = anonymous(s, "GET", "/pub/a");
        let raw = match forwarded {
            Some(f) => raw.header("x-forwarded-for", f),
            None => raw,
        };
        let addr = s.addr;
        async move { raw.send(addr).await.status }
    };
    assert_eq!(get(&server, Some("198.51.100.7")).await, 200);
    assert_eq!(get(&server, Some("198.51.100.7, 127.0.0.5")).await, 200, "trusted hops are skipped");
    assert_eq!(get(&server, Some("198.51.100.7, 203.0.113.1")).await, 403, "the nearest untrusted hop counts");
    assert_eq!(get(&server, None).await, 403);
    assert_eq!(get(&plain, Some("198.51.100.7")).await, 403, "untrusted peers cannot claim an address");
    server.stop().await;
    plain.stop().await;
}
