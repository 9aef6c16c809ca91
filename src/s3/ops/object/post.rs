//! PostObject, a browser's form upload:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html>
//!
//! The fields before the file are read (at most 20 KiB of them), the policy they carry is
//! verified and judged ([`crate::s3::post_policy`]), the signer (or, without a policy, the
//! anonymous caller) is authorized as for a PutObject, and the file then streams to the blob
//! store exactly like a PUT's body. Fields after the file are ignored, as on AWS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::auth::Authenticated;
use crate::auth::sigv4::canonical::uri_encode;
use crate::clock::Timestamp;
use crate::s3::ops::data::{self, Keep, MAX_PUT_SIZE};
use crate::s3::post_policy::{self, Fields, PostPolicy};
use crate::s3::xml::XmlWriter;
use crate::s3::{BodyStream, Ctx, OpName, S3Error, S3ErrorCode, S3Request, S3Response, checksum, headers, types};
use crate::storage::WriteCondition;

/// How many bytes of form (fields and their framing) may come before the file.
const MAX_PRE_DATA: usize = 20 * 1024;

pub async fn call(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let boundary = boundary(&req.headers)?;
    let host = crate::s3::S3Service::authority(&req);
    // The parser keeps what it has read until it finds a boundary: the raw bytes before the
    // file are bounded too, not only the field values.
    let file_found = Arc::new(AtomicBool::new(false));
    let found = Arc::clone(&file_found);
    let mut before_file = 0usize;
    let body = req.body.map(move |chunk| {
        let chunk = chunk?;
        if !found.load(Ordering::Relaxed) {
            if before_file > 2 * MAX_PRE_DATA {
                return Err(pre_data_too_large());
            }
            before_file += chunk.len();
        }
        Ok(chunk)
    });
    let mut form = multer::Multipart::new(body, boundary.clone());
    let (mut fields, file) = read_fields(&mut form, boundary.len()).await?;
    file_found.store(true, Ordering::Relaxed);
    let Some(file) = file else {
        return Err(S3Error::invalid_argument("POST requires exactly one file upload per request.", "file", "0"));
    };
    // `${filename}` in the key is the file's name (its last path segment), before the policy
    // judges the key.
    let file_name = file.file_name().unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("").to_owned();
    let key = fields.required("key")?.replace("${filename}", &file_name);
    if key.is_empty() {
        return Err(S3Error::invalid_argument("User key must have a length greater than 0.", "key", ""));
    }
    types::validate_key(&key)?;
    fields.set("key", key.clone());

    let (signer, (min, max)) = if post_policy::signed(&fields) {
        let signer = post_policy::authenticate(&fields, &*cx.s3.credentials, &cx.s3.config.region, cx.s3.config.sigv2)?;
        let policy = PostPolicy::decode(fields.required("policy")?)?;
        policy.check(&fields, &bucket.name, Timestamp::now())?;
        (signer, policy.length_range())
    } else {
        (Authenticated::anonymous(&HeaderMap::new())?, (0, u64::MAX))
    };
    tracing::Span::current().record("user", signer.identity.id.as_str());

    // The fields that stand for a PUT's headers, checked as a PUT's are.
    let h = as_headers(&fields)?;
    let mut attributes = headers::object_attributes(&h)?;
    if let Some(doc) = fields.get("tagging") {
        attributes.tags = crate::s3::ops::tagging::parse_object_tags(doc.as_bytes())?;
    }
    let checksum = checksum::request_checksum(&h)?;
    let signed = Ctx {
        s3: cx.s3,
        auth: &signer,
        query: cx.query,
        bucket_name: cx.bucket_name,
        key: Some(&key),
        bucket: cx.bucket.clone(),
        peer: cx.peer,
        secure: cx.secure,
        object_grant: None,
    };
    let access = cx.s3.bucket_access(&signer, bucket).await?;
    let mut facts = cx.facts(&h);
    facts.tags = Some(&attributes.tags);
    access.check(OpName::PutObject, Some(&key), &facts)?;
    if !attributes.tags.is_empty() {
        access.check(OpName::PutObjectTagging, Some(&key), &facts)?;
    }
    access.check_acl_headers(Some(&key), &facts)?;
    let ownership = crate::s3::acl::new_object(&signed, &h).await?;
    let body: BodyStream = Box::pin(file.map_err(form_error));
    let limit = max.min(MAX_PUT_SIZE);
    let stored = data::store_body(&signed, body, &h, None, limit, &checksum, Keep::Inline).await?;
    if stored.digest.len < min {
        if stored.inline.is_none() {
            cx.s3.storage.discard(vec![stored.blob.clone()]).await;
        }
        return Err(S3Error::with_message(
            S3ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size",
        )
        .field("ProposedSize", stored.digest.len.to_string())
        .field("MinSizeAllowed", min.to_string()));
    }
    let (algorithm, sum) = stored.checksum();
    let object = data::single_part_object(&bucket.name, &key, ownership, stored.part(1), attributes);
    let etag = data::quoted(&object.etag);
    let rules = data::lifecycle_rules(cx).await?;
    let mut resp = S3Response::new(StatusCode::NO_CONTENT);
    resp = data::expiration_header(resp, rules.as_ref(), &object);
    let outcome = cx.s3.storage.put_object(object, &WriteCondition::None).await.map_err(data::condition_error)?;

    let location = object_url(cx, &host, &key);
    resp = resp.header("etag", &etag).header("location", &location).header(algorithm.header_name(), sum);
    resp = data::version_header(resp, bucket, outcome.version_id);
    let redirect = fields.get("success_action_redirect").or_else(|| fields.get("redirect"));
    if let Some(url) = redirect.and_then(|r| redirect_to(r, &bucket.name, &key, &etag)) {
        resp.status = StatusCode::SEE_OTHER;
        resp.headers.insert(http::header::LOCATION, url);
        return Ok(resp);
    }
    match fields.get("success_action_status") {
        Some("200") => resp.status = StatusCode::OK,
        Some("201") => {
            // AWS writes this document without a namespace.
            let mut w = XmlWriter::with_root("PostResponse", None);
            w.elem("Location", &location).elem("Bucket", &bucket.name).elem("Key", &key).elem("ETag", &etag);
            let mut created = S3Response::xml(w.finish());
            created.status = StatusCode::CREATED;
            created.headers.extend(resp.headers);
            return Ok(created);
        }
        _ => {}
    }
    Ok(resp)
}

/// The boundary of a `multipart/form-data` body; any other body is refused as AWS refuses
/// it.
fn boundary(h: &HeaderMap) -> Result<String, S3Error> {
    let content_type = h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(S3Error::new(S3ErrorCode::PreconditionFailed)
            .field("Condition", "Bucket POST must be of the enclosure-type multipart/form-data"));
    }
    multer::parse_boundary(content_type).map_err(|e| S3Error::new(S3ErrorCode::MalformedPOSTRequest).source(e))
}

/// The fields up to the file, and the file (unread), if the form has one.
async fn read_fields(
    form: &mut multer::Multipart<'static>,
    boundary_len: usize,
) -> Result<(Fields, Option<multer::Field<'static>>), S3Error> {
    let mut fields = Fields::default();
    let mut pre_data = 0usize;
    let too_large = pre_data_too_large;
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("").to_owned();
        if name.eq_ignore_ascii_case("file") {
            return Ok((fields, Some(field)));
        }
        // What the field's framing takes on the wire: its boundary line and its
        // Content-Disposition header.
        pre_data += boundary_len + name.len() + 50;
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            pre_data += chunk.len();
            if pre_data > MAX_PRE_DATA {
                return Err(too_large());
            }
            value.extend_from_slice(&chunk);
        }
        if pre_data > MAX_PRE_DATA {
            return Err(too_large());
        }
        let value = String::from_utf8(value).map_err(|_| {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "POST form fields must be UTF-8.")
                .field("ArgumentName", name.clone())
        })?;
        fields.push(&name, &value);
    }
    Ok((fields, None))
}

/// AWS's error for a form whose fields before the file are too long.
fn pre_data_too_large() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::MaxPostPreDataLengthExceeded,
        "Your POST request fields preceeding the upload file was too large.",
    )
    .field("MaxPostPreDataLengthBytes", MAX_PRE_DATA.to_string())
}

/// Maps a failure to read the form: the body's own error, or a malformed form.
fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<S3Error>() {
            Ok(e) => *e,
            Err(other) => S3Error::new(S3ErrorCode::IncompleteBody).source(other),
        },
        other => S3Error::new(S3ErrorCode::MalformedPOSTRequest).source(other),
    }
}

/// The fields that a PUT would send as headers: the content headers, `x-amz-*` (but the
/// form's own signing fields), and `acl` as `x-amz-acl`.
fn as_headers(fields: &Fields) -> Result<HeaderMap, S3Error> {
    const CONTENT: [&str; 7] = [
        "cache-control",
        "content-type",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-md5",
        "expires",
    ];
    const SIGNING: [&str; 6] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ];
    if fields.get("acl").is_some() && fields.get("x-amz-acl").is_some() {
        return Err(S3Error::invalid_argument("A form may set its ACL with acl or x-amz-acl, not both.", "acl", ""));
    }
    let mut h = HeaderMap::new();
    for (name, value) in fields.iter() {
        let header = match name {
            "acl" => "x-amz-acl",
            n if CONTENT.contains(&n) => n,
            n if n.starts_with("x-amz-") && !SIGNING.contains(&n) => n,
            _ => continue,
        };
        let invalid = || S3Error::invalid_argument(format!("The form field {name} is not valid."), name, value);
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| invalid())?;
        h.insert(header, value);
    }
    Ok(h)
}

/// The new object's URL, as the request addressed the bucket.
fn object_url(cx: &Ctx<'_>, host: &str, key: &str) -> String {
    let scheme = if cx.secure { "https" } else { "http" };
    let key = uri_encode(key.as_bytes(), false);
    let bucket = cx.bucket_name.unwrap_or("");
    if cx.s3.virtual_host_bucket(host).is_some_and(|b| b == bucket) {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{bucket}/{key}")
    }
}

/// `success_action_redirect` with `bucket`, `key` and `etag` added to its query, if it is an
/// http(s) URL (any other value is ignored, as on AWS).
fn redirect_to(url: &str, bucket: &str, key: &str, etag: &str) -> Option<HeaderValue> {
    let uri: http::Uri = url.trim().parse().ok()?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return None;
    }
    let enc = |s: &str| uri_encode(s.as_bytes(), false);
    let (base, fragment) = match url.trim().split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url.trim(), None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}bucket={}&key={}&etag={}", enc(bucket), enc(key), enc(etag));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    HeaderValue::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_carry_bucket_key_and_etag() {
        let r = |u: &str| redirect_to(u, "b", "a dir/x.png", "\"e\"").map(|v| v.to_str().expect("ascii").to_owned());
        assert_eq!(
            r("https://example.com/done").as_deref(),
            Some("https://example.com/done?bucket=b&key=a%20dir%2Fx.png&etag=%22e%22")
        );
        assert_eq!(
            r("http://example.com/d?x=1#top").as_deref(),
            Some("http://example.com/d?x=1&bucket=b&key=a%20dir%2Fx.png&etag=%22e%22#top")
        );
        assert_eq!(r("/relative"), None);
        assert_eq!(r("javascript:alert(1)"), None);
        assert_eq!(r("not a url"), None);
    }

    #[test]
    fn fields_become_headers() {
        let mut f = Fields::default();
        for (k, v) in [
            ("Content-Type", "image/png"),
            ("acl", "private"),
            ("x-amz-meta-a", "1"),
            ("x-amz-credential", "AK/…"),
            ("key", "k"),
            ("success_action_status", "201"),
        ] {
            f.push(k, v);
        }
        let h = as_headers(&f).expect("valid");
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-amz-acl", "x-amz-meta-a"]);
        let mut bad = Fields::default();
        bad.push("x-amz-meta-a", "line\nbreak");
        assert_eq!(as_headers(&bad).expect_err("newline").code, S3ErrorCode::InvalidArgument);
    }

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        /// Any body, whole or cut into pieces, read as a form: fields and a file, or a client
        /// error; never a panic.
        #[test]
        fn fuzz_form_bodies(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just("--b\r\n".to_owned()),
                    proptest::prelude::Just("--b--\r\n".to_owned()),
                    proptest::prelude::Just("Content-Disposition: form-data; name=\"key\"\r\n\r\n".to_owned()),
                    proptest::prelude::Just("Content-Disposition: form-data; name=\"file\"; filename=\"a/../b\"\r\n\r\n".to_owned()),
                    proptest::prelude::Just("\r\n".to_owned()),
                    "\\PC{0,12}",
                ],
                0..12,
            ),
            split in 1usize..64,
        ) {
            let body = parts.concat().into_bytes();
            let chunks: Vec<Result<bytes::Bytes, S3Error>> =
                body.chunks(split).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
            let stream: BodyStream = Box::pin(futures_util::stream::iter(chunks));
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let outcome = rt.block_on(async {
                let mut form = multer::Multipart::new(stream, "b");
                read_fields(&mut form, 1).await.map(|(fields, file)| (fields.iter().count(), file.is_some()))
            });
            if let Err(e) = outcome {
                proptest::prop_assert!(e.status().is_client_error(), "{:?}", e.code);
            }
        }
    }

    #[test]
    fn only_form_data_is_a_form() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(v).expect("value"));
            m
        };
        assert_eq!(boundary(&h("multipart/form-data; boundary=xyz")).expect("form"), "xyz");
        assert_eq!(boundary(&h("application/json")).expect_err("json").code, S3ErrorCode::PreconditionFailed);
        assert_eq!(boundary(&HeaderMap::new()).expect_err("none").code, S3ErrorCode::PreconditionFailed);
        assert_eq!(
            boundary(&h("multipart/form-data")).expect_err("no boundary").code,
            S3ErrorCode::MalformedPOSTRequest
        );
    }
}
