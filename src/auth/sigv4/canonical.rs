//! The canonical request, with S3's rules: the path is URI-encoded exactly once (S3 does not
//! double-encode and does not normalise `.`/`..` or repeated slashes), the query is sorted with
//! empty values rendered `key=`, and header values are trimmed with inner runs of spaces folded.

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};

/// Everything but the unreserved characters `A-Z a-z 0-9 - _ . ~` is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// As [`UNRESERVED`], but keeping `/` for paths.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// SigV4's `UriEncode`: unreserved bytes stay, every other byte becomes `%XX` (upper-case hex).
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    percent_encode(bytes, if keep_slash { PATH } else { UNRESERVED }).to_string()
}

/// The canonical URI of a raw request path: decoded once, then encoded once.
///
/// Decoding first makes `~`, `%7E` and `%7e` sign alike, as they do on S3.
pub fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    uri_encode(&decoded, true)
}

/// Splits a raw query string into percent-decoded byte pairs. `+` stays a literal plus, as
/// S3 treats it in SigV4 (clients encode a space as `%20`).
pub fn query_pairs(raw_query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    raw_query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode_str(k).collect(), percent_decode_str(v).collect())
    })
}

/// The canonical query string: every pair encoded once, sorted by name then value.
/// `skip` names a parameter left out (the presigned `X-Amz-Signature`).
pub fn canonical_query(raw_query: &str, skip: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .filter(|(k, _)| skip.is_none_or(|s| k.as_slice() != s.as_bytes()))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims a header value and folds inner runs of spaces into one. Bytes that are not UTF-8
/// are read as latin-1: clients such as botocore sign the text of a header whose bytes
/// Python's http.client then sends in latin-1.
fn push_folded(out: &mut String, value: &[u8]) {
    let text: std::borrow::Cow<'_, str> = match std::str::from_utf8(value) {
        Ok(s) => s.into(),
        Err(_) => value.iter().map(|&b| char::from(b)).collect::<String>().into(),
    };
    let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
    if let Some(first) = words.next() {
        out.push_str(first);
        for w in words {
            out.push(' ');
            out.push_str(w);
        }
    }
}

/// `name:value\n` for each signed header, values of repeated headers joined by `,`.
/// `host_fallback` stands in for a missing `host` header (HTTP/2's `:authority`).
pub fn canonical_headers(headers: &HeaderMap, signed: &[String], host_fallback: &str) -> String {
    let mut out = String::with_capacity(256);
    for name in signed {
        out.push_str(name);
        out.push(':');
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() && name == "host" {
            out.push_str(host_fallback);
        }
        let mut first = true;
        for v in values {
            if !first {
                out.push(',');
            }
            first = false;
            push_folded(&mut out, v.as_bytes());
        }
        out.push('\n');
    }
    out
}

/// Joins the six parts of the canonical request.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        signed_headers.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn uri_is_encoded_once_and_not_normalised() {
        assert_eq!(canonical_uri("/test.txt"), "/test.txt");
        assert_eq!(canonical_uri("/b/a%20b+c%2Bd"), "/b/a%20b%2Bc%2Bd");
        assert_eq!(canonical_uri("/b/%7E~/./../x//y"), "/b/~~/./../x//y");
        assert_eq!(canonical_uri("/b/caf%C3%A9"), "/b/caf%C3%A9");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn query_is_sorted_with_empty_values() {
        assert_eq!(canonical_query("uploads", None), "uploads=");
        assert_eq!(canonical_query("uploads=", None), "uploads=");
        assert_eq!(canonical_query("prefix=&max-keys=1000&delimiter=", None), "delimiter=&max-keys=1000&prefix=");
        assert_eq!(
            canonical_query("x-id=UploadPart&uploadId=a%2Fb&partNumber=2", None),
            "partNumber=2&uploadId=a%2Fb&x-id=UploadPart"
        );
        assert_eq!(canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", Some("X-Amz-Signature")), "X-Amz-Date=1");
        assert_eq!(canonical_query("prefix=a b&k=%7e", None), "k=~&prefix=a%20b");
        assert_eq!(canonical_query("", None), "");
    }

    #[test]
    fn headers_are_trimmed_folded_and_joined() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.com"));
        h.insert("x-amz-meta-a", HeaderValue::from_static("  a   b  "));
        h.append("x-amz-meta-b", HeaderValue::from_static("one"));
        h.append("x-amz-meta-b", HeaderValue::from_static(" two "));
        let signed: Vec<String> = ["host", "x-amz-meta-a", "x-amz-meta-b"].map(String::from).to_vec();
        assert_eq!(
            canonical_headers(&h, &signed, "unused"),
            "host:example.com\nx-amz-meta-a:a b\nx-amz-meta-b:one,two\n"
        );
        h.remove("host");
        assert!(canonical_headers(&h, &signed, "fallback:9000").starts_with("host:fallback:9000\n"));
    }
}
