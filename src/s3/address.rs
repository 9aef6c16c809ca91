//! Which bucket and key a request addresses: virtual-host style (`<bucket>.<domain>` in Host)
//! or path style (`/<bucket>/<key>`).

use percent_encoding::percent_decode_str;

use super::error::{S3Error, S3ErrorCode};
use super::types::{validate_bucket_name, validate_key};

/// The bucket and key of a request; both `None` for service-level requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub virtual_host: bool,
}

/// Host without port, lower-cased; handles `[::1]:9000`.
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// The bucket a Host names under one of `domains`, if any.
pub fn virtual_host_bucket(host: &str, domains: &[String]) -> Option<String> {
    let host = host_name(host);
    domains.iter().find_map(|d| {
        host.strip_suffix(d.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
    })
}

fn decode(raw: &str) -> Result<String, S3Error> {
    String::from_utf8(percent_decode_str(raw).collect())
        .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."))
}

/// Resolves the bucket and key of a request from its Host and raw path. The path is
/// percent-decoded exactly once.
pub fn resolve(host: Option<&str>, raw_path: &str, domains: &[String]) -> Result<Address, S3Error> {
    let path = decode(raw_path)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key, virtual_host) = match host.and_then(|h| virtual_host_bucket(h, domains)) {
        Some(bucket) => (Some(bucket), path, true),
        None => match path.split_once('/') {
            Some((b, k)) => (Some(b.to_owned()), k, false),
            None if path.is_empty() => (None, "", false),
            None => (Some(path.to_owned()), "", false),
        },
    };
    if let Some(b) = &bucket {
        validate_bucket_name(b)?;
    }
    let key = if key.is_empty() {
        None
    } else {
        validate_key(key)?;
        Some(key.to_owned())
    };
    Ok(Address { bucket, key, virtual_host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["s3.localhost".into(), "s3.cn-north-1.jcloudcs.com".into()]
    }

    fn addr(host: &str, path: &str) -> Result<Address, S3Error> {
        resolve(Some(host), path, &domains())
    }

    fn some(b: &str, k: Option<&str>, vh: bool) -> Address {
        Address { bucket: Some(b.into()), key: k.map(Into::into), virtual_host: vh }
    }

    #[test]
    fn virtual_host_style() {
        assert_eq!(addr("bkt.s3.localhost:9000", "/a/b.txt").expect("ok"), some("bkt", Some("a/b.txt"), true));
        assert_eq!(addr("BKT.S3.LOCALHOST", "/").expect("ok"), some("bkt", None, true));
        assert_eq!(
            addr("oss-example.s3.cn-north-1.jcloudcs.com", "/example-object").expect("ok"),
            some("oss-example", Some("example-object"), true)
        );
        assert_eq!(addr("my.dotted.bucket.s3.localhost", "/k").expect("ok"), some("my.dotted.bucket", Some("k"), true));
    }

    #[test]
    fn path_style_for_every_other_host() {
        for host in ["127.0.0.1:9000", "localhost", "s3.localhost", "[::1]:9000", "example.com"] {
            assert_eq!(addr(host, "/bkt/dir/k").expect("ok"), some("bkt", Some("dir/k"), false), "{host}");
            assert_eq!(addr(host, "/bkt/").expect("ok"), some("bkt", None, false));
            assert_eq!(addr(host, "/bkt").expect("ok"), some("bkt", None, false));
            assert_eq!(addr(host, "/").expect("ok"), Address { bucket: None, key: None, virtual_host: false });
        }
        assert_eq!(resolve(None, "/bkt/k", &domains()).expect("ok"), some("bkt", Some("k"), false));
    }

    #[test]
    fn keys_are_decoded_exactly_once() {
        assert_eq!(addr("h", "/bkt/a%20b+c%252F%E2%9C%93").expect("ok").key.as_deref(), Some("a b+c%2F✓"));
        assert_eq!(addr("h", "/bkt//lead").expect("ok").key.as_deref(), Some("/lead"));
    }

    #[test]
    fn invalid_input_gets_s3_errors() {
        assert_eq!(addr("h", "/bkt/%FF").expect_err("utf-8").code, S3ErrorCode::InvalidURI);
        assert_eq!(addr("h", "/Bad_Bucket/k").expect_err("name").code, S3ErrorCode::InvalidBucketName);
        let long = format!("/bkt/{}", "k".repeat(1025));
        assert_eq!(addr("h", &long).expect_err("long").code, S3ErrorCode::KeyTooLongError);
        assert!(addr("h", &format!("/bkt/{}", "k".repeat(1024))).is_ok());
    }
}
