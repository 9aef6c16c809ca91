use std::time::Duration;

use md5::{Digest, Md5};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use s3d::auth::sigv4::signing;
use s3d::clock::Timestamp;

use crate::common::*;

type Field = (String, String);

const BOUNDARY: &str = "----s3dFormBoundary7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body: the fields in order, then the file (if any).
fn form_body(fields: &[(String, String)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    if let Some((filename, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: text/html\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The signing fields of a Signature Version 4 form whose policy has `conditions` (JSON
/// array items) and expires `valid_for` from now (in the past when negative).
fn signed_v4(user: User, conditions: &[&str], valid_for: i64) -> Vec<(String, String)> {
    let now = Timestamp::now();
    let (date, credential) = credential(user, now);
    let expiration = if valid_for >= 0 {
        now.plus(Duration::from_secs(valid_for as u64))
    } else {
        now.minus(Duration::from_secs(valid_for.unsigned_abs()))
    };
    let mut all: Vec<String> = conditions.iter().map(|c| (*c).to_owned()).collect();
    all.push(r#"{"x-amz-algorithm": "AWS4-HMAC-SHA256"}"#.to_owned());
    all.push(format!(r#"{{"x-amz-credential": "{credential}"}}"#));
    all.push(format!(r#"{{"x-amz-date": "{date}"}}"#));
    let policy = format!(r#"{{"expiration": "{}", "conditions": [{}]}}"#, expiration.to_xml(), all.join(", "));
    sign_v4(user, now, &policy)
}

/// `x-amz-date` and `x-amz-credential` of a form signed by `user` at `now`.
fn credential(user: User, now: Timestamp) -> (String, String) {
    let date = now.to_amz_date();
    let credential = format!("{}/{}/{REGION}/s3/aws4_request", user.access_key, &date[..8]);
    (date, credential)
}

/// The signing fields of a Signature Version 4 form carrying `policy` (any text).
fn sign_v4(user: User, now: Timestamp, policy: &str) -> Vec<(String, String)> {
    let (date, credential) = credential(user, now);
    let policy = B64.encode(policy);
    let key = signing::signing_key(user.secret_key, &date[..8], REGION, "s3");
    let signature = hex::encode(signing::hmac(&key, policy.as_bytes()));
    owned(&[
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", &credential),
        ("x-amz-date", &date),
        ("policy", &policy),
        ("x-amz-signature", &signature),
    ])
}

async fn post(
    server: &TestServer,
    host: &str,
    target: &str,
    fields: &[(String, String)],
    file: Option<(&str, &[u8])>,
) -> RawResponse {
    Raw::new("POST", host, target)
        .header("content-type", &format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(&form_body(fields, file))
        .send(server.addr)
        .await
}

/// Browser uploads: a form signed with Signature Version 4 (or 2) stores its file as a PUT
/// would, with the fields as headers, and answers as `success_action_*` asks; forms outside
/// their policy, signature or limits get AWS's errors and leave nothing behind.
#[tokio::test]
async fn browser_form_uploads() {
    let server = TestServer::start().await;
    let s3 = server.client(ALICE, Style::Path);
    s3.create_bucket().bucket("forms").send().await.expect("bucket");
    let path_host = server.host("forms", Style::Path);
    let conditions = [
        r#"{"bucket": "forms"}"#,
        r#"["starts-with", "$key", "uploads/"]"#,
        r#"["starts-with", "$Content-Type", "image/"]"#,
        r#"{"x-amz-meta-uuid": "14365123651274"}"#,
        r#"["eq", "$success_action_status", "201"]"#,
        r#"["content-length-range", 1, 4194304]"#,
    ];
    let mut fields = owned(&[
        ("key", "uploads/${filename}"),
        ("Content-Type", "image/png"),
        ("x-amz-meta-uuid", "14365123651274"),
        ("success_action_status", "201"),
    ]);
    fields.extend(signed_v4(ALICE, &conditions, 600));
    let resp = post(&server, &path_host, "/forms", &fields, Some(("dir\\photo one.png", b"PNG bytes"))).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let etag = format!("\"{}\"", hex::encode(Md5::digest(b"PNG bytes")));
    let location = format!("http://{path_host}/forms/uploads%2Fphoto%20one.png");
    assert_eq!(
        resp.text(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{location}</Location>\
             <Bucket>forms</Bucket><Key>uploads/photo one.png</Key><ETag>{}</ETag></PostResponse>",
            etag.replace('"', "&quot;")
        )
    );
    assert_eq!(resp.header("etag"), Some(etag.as_str()));
    assert_eq!(resp.header("location"), Some(location.as_str()));
    let got = s3.get_object().bucket("forms").key("uploads/photo one.png").send().await.expect("stored");
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(got.metadata().and_then(|m| m.get("uuid")).map(String::as_str), Some("14365123651274"));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), b"PNG bytes");

    // The default answer is 204; virtual-host style locates the object under the bucket's
    // host. A file larger than a small object streams to a blob of its own.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let vhost = server.host("forms", Style::VirtualHost);
    let mut fields = owned(&[("key", "uploads/big.bin"), ("Content-Type", "image/raw")]);
    fields.extend(signed_v4(ALICE, &conditions[..3].iter().copied().chain([conditions[5]]).collect::<Vec<_>>(), 600));
    let blobs = blob_count(&server);
    let resp = post(&server, &vhost, "/", &fields, Some(("big.bin", &big))).await;
    assert_eq!((resp.status, resp.body.len()), (204, 0), "{}", resp.text());
    assert_eq!(resp.header("location").map(str::to_owned), Some(format!("http://{vhost}/uploads%2Fbig.bin")));
    assert_eq!(blob_count(&server), blobs + 1);
    let got = s3.get_object().bucket("forms").key("uploads/big.bin").send().await.expect("stored");
    assert_eq!(got.content_length(), Some(big.len() as i64));
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), &big[..]);

    // success_action_redirect: 303 to the page, with the bucket, key and ETag added.
    let mut fields = owned(&[("key", "uploads/r.txt"), ("success_action_redirect", "https://app.example/done?x=1")]);
    fields.extend(signed_v4(
        ALICE,
        &[
            r#"{"bucket": "forms"}"#,
            r#"{"key": "uploads/r.txt"}"#,
            r#"["starts-with", "$success_action_redirect", "https://app.example/"]"#,
        ],
        600,
    ));
    let resp = post(&server, &path_host, "/forms", &fields, Some(("r.txt", b"hi"))).await;
    assert_eq!(resp.status, 303, "{}", resp.text());
    let etag = hex::encode(Md5::digest(b"hi"));
    assert_eq!(
        resp.header("location").map(str::to_owned),
        Some(format!("https://app.example/done?x=1&bucket=forms&key=uploads%2Fr.txt&etag=%22{etag}%22"))
    );
    let got = s3.head_object().bucket("forms").key("uploads/r.txt").send().await.expect("stored");
    // The file part's own Content-Type is not the object's: only a field sets it.
    assert_eq!(got.content_type(), Some("binary/octet-stream"));

    // Signature Version 2 forms, as boto3 makes them for SigV2 clients.
    let policy = B64.encode(format!(
        r#"{{"expiration": "{}", "conditions": [{{"bucket": "forms"}}, {{"key": "v2.txt"}}]}}"#,
        Timestamp::now().plus(Duration::from_secs(600)).to_xml()
    ));
    let signature = s3d::auth::sigv2::sign(ALICE.secret_key, &policy);
    let fields = owned(&[
        ("key", "v2.txt"),
        ("AWSAccessKeyId", ALICE.access_key),
        ("policy", &policy),
        ("signature", &signature),
    ]);
    let resp = post(&server, &path_host, "/forms", &fields, Some(("v2.txt", b"two"))).await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    let mut wrong = fields.clone();
    wrong[3].1 = s3d::auth::sigv2::sign("not the secret", &policy);
    post(&server, &path_host, "/forms", &wrong, Some(("v2.txt", b"two")))
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    // Refusals, none of which leaves a blob or an object behind.
    let blobs = blob_count(&server);
    let failing = |pairs: &[(&str, &str)], conditions: &[&str], valid_for: i64| {
        let mut f = owned(pairs);
        f.extend(signed_v4(ALICE, conditions, valid_for));
        f
    };
    let base = [r#"{"bucket": "forms"}"#, r#"["starts-with", "$key", "uploads/"]"#];
    let ranged = [base[0], base[1], r#"["content-length-range", 1048576, 2097152]"#];
    // (fields, file, status, code, part of the message)
    type Case<'a> = (Vec<Field>, Option<(&'a str, &'a [u8])>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (failing(&[("key", "uploads/a")], &base, -60), Some(("a", b"x")), 403, "AccessDenied", "Policy expired."),
        (
            failing(&[("key", "elsewhere/a")], &base, 600),
            Some(("a", b"x")),
            403,
            "AccessDenied",
            r#"Policy Condition failed: ["starts-with", "$key", "uploads/"]"#,
        ),
        (
            failing(&[("key", "uploads/a"), ("acl", "private")], &base, 600),
            Some(("a", b"x")),
            403,
            "AccessDenied",
            "Extra input fields: acl",
        ),
        (failing(&[("key", "uploads/a")], &ranged, 600), Some(("a", &big)), 400, "EntityTooLarge", ""),
        (failing(&[("key", "uploads/a")], &ranged, 600), Some(("a", b"small")), 400, "EntityTooSmall", ""),
        (
            failing(&[("key", "uploads/a")], &base, 600),
            None,
            400,
            "InvalidArgument",
            "POST requires exactly one file upload per request.",
        ),
        (
            failing(&[], &base, 600),
            Some(("a", b"x")),
            400,
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.",
        ),
        (
            failing(&[("key", "uploads/a"), ("x-ignore-padding", &"p".repeat(21 * 1024))], &base, 600),
            Some(("a", b"x")),
            400,
            "MaxPostPreDataLengthExceeded",
            "",
        ),
        (
            failing(
                &[("key", "uploads/a"), ("x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")],
                &[base[0], base[1], r#"["starts-with", "$x-amz-checksum-sha256", ""]"#],
                600,
            ),
            Some(("a", b"x")),
            400,
            "BadDigest",
            "",
        ),
    ];
    for (fields, file, status, code, message) in cases {
        let resp = post(&server, &path_host, "/forms", &fields, file).await;
        resp.assert_error(status, code);
        assert!(
            resp.text().replace("&quot;", "\"").replace("&apos;", "'").contains(message),
            "{message}: {}",
            resp.text()
        );
    }
    for (doc, message) in [
        ("{not json", "Invalid Policy: Invalid JSON."),
        (r#"{"conditions": []}"#, "Invalid Policy: Policy missing expiration."),
        (r#"{"expiration": "2030-01-01T00:00:00Z"}"#, "Invalid Policy: Policy missing conditions."),
    ] {
        let mut bad_policy = owned(&[("key", "uploads/a")]);
        bad_policy.extend(sign_v4(ALICE, Timestamp::now(), doc));
        let resp = post(&server, &path_host, "/forms", &bad_policy, Some(("a", b"x"))).await;
        resp.assert_error(400, "InvalidPolicyDocument");
        assert_eq!(xml_value(&resp.text(), "Message").as_deref(), Some(message));
    }
    let resp = Raw::new("POST", &path_host, "/forms")
        .header("content-type", "text/plain")
        .body(b"key=a")
        .send(server.addr)
        .await;
    resp.assert_error(412, "PreconditionFailed");
    assert_eq!(
        xml_value(&resp.text(), "Condition").as_deref(),
        Some("Bucket POST must be of the enclosure-type multipart/form-data")
    );
    let resp = Raw::new("POST", &path_host, "/forms")
        .header("content-type", &format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!("--{BOUNDARY}\r\nno headers here").as_bytes())
        .send(server.addr)
        .await;
    resp.assert_error(400, "MalformedPOSTRequest");
    assert_eq!(blob_count(&server), blobs);
    let listed = s3.list_objects_v2().bucket("forms").prefix("uploads/a").send().await.expect("list");
    assert_eq!(listed.key_count(), Some(0));

    // Who may post: a form with no policy is anonymous, and another user's signature is that
    // user's; both need the bucket's policy to let them write.
    let anonymous = owned(&[("key", "drop/a.txt")]);
    post(&server, &path_host, "/forms", &anonymous, Some(("a.txt", b"x"))).await.assert_error(403, "AccessDenied");
    let mut bobs = owned(&[("key", "uploads/bob.txt")]);
    bobs.extend(signed_v4(BOB, &base, 600));
    post(&server, &path_host, "/forms", &bobs, Some(("b", b"x"))).await.assert_error(403, "AccessDenied");
    s3.delete_public_access_block().bucket("forms").send().await.expect("lift the block");
    let drop_box = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
        "Resource":"arn:aws:s3:::forms/drop/*"},{"Effect":"Allow","Principal":{"AWS":"bob-id"},"Action":"s3:PutObject",
        "Resource":"arn:aws:s3:::forms/uploads/*","Condition":{"StringEquals":{"s3:authType":"POST"}}}]}"#;
    s3.put_bucket_policy().bucket("forms").policy(drop_box).send().await.expect("policy");
    let resp = post(&server, &path_host, "/forms", &anonymous, Some(("a.txt", b"x"))).await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    let resp = post(&server, &path_host, "/forms", &bobs, Some(("b", b"x"))).await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    // Objects belong to the bucket's owner, whoever posted them.
    let acl_owner =
        s3.list_objects_v2().bucket("forms").prefix("uploads/bob").fetch_owner(true).send().await.expect("list");
    assert_eq!(acl_owner.contents()[0].owner().and_then(|o| o.id()), Some(ALICE.id));
    // A form to a missing bucket.
    post(&server, &server.host("nope", Style::Path), "/nope", &anonymous, Some(("a", b"x")))
        .await
        .assert_error(404, "NoSuchBucket");
    server.stop().await;
}
