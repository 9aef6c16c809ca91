//! PutBucketCors, GetBucketCors, DeleteBucketCors, the preflight `OPTIONS` request, and the
//! `Access-Control-*` headers of cross-origin requests:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketCors.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketCors.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketCors.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html>

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::s3::ops::{bucket_setting, read_document, store_bucket_setting};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response, S3Service};
use crate::storage::{BucketSetting, BucketSettingKind, CorsConfiguration, CorsRule};

const MAX_RULES: usize = 100;
const MAX_BODY: usize = 64 * 1024;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];
/// What a response to a cross-origin request varies by.
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

#[derive(Deserialize)]
struct CorsXml {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    max_age_seconds: Option<String>,
}

fn invalid(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// Parses and validates a `CORSConfiguration` document as AWS does.
fn parse(doc: &[u8]) -> Result<CorsConfiguration, S3Error> {
    let xml: CorsXml = from_xml(doc, ElementLimits::list("CORSRule", MAX_RULES, 200))?;
    if xml.rules.is_empty() {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut rules = Vec::with_capacity(xml.rules.len());
    for r in xml.rules {
        if r.allowed_methods.is_empty() || r.allowed_origins.is_empty() {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        }
        if let Some(m) = r.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(invalid(format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}")));
        }
        if let Some(o) = r.allowed_origins.iter().find(|o| o.matches('*').count() > 1) {
            return Err(invalid(format!("AllowedOrigin \"{o}\" can not have more than one wildcard.")));
        }
        if let Some(h) = r.allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
            return Err(invalid(format!("AllowedHeader \"{h}\" can not have more than one wildcard.")));
        }
        if r.id.as_ref().is_some_and(|id| id.chars().count() > 255) {
            return Err(invalid("ID length should not exceed allowed limit of 255".into()));
        }
        let max_age_seconds = match r.max_age_seconds.as_deref().map(str::trim) {
            None => None,
            Some(v) => Some(v.parse::<u32>().map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?),
        };
        let trim = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_owned()).collect::<Vec<_>>();
        rules.push(CorsRule {
            id: r.id,
            allowed_methods: trim(r.allowed_methods),
            allowed_origins: trim(r.allowed_origins),
            allowed_headers: trim(r.allowed_headers),
            expose_headers: trim(r.expose_headers),
            max_age_seconds,
        });
    }
    Ok(CorsConfiguration { rules })
}

fn render(config: &CorsConfiguration) -> bytes::Bytes {
    let mut w = XmlWriter::new("CORSConfiguration");
    for r in &config.rules {
        w.start("CORSRule");
        w.opt("ID", r.id.as_deref());
        for (name, values) in [
            ("AllowedHeader", &r.allowed_headers),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedOrigin", &r.allowed_origins),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in values {
                w.elem(name, v);
            }
        }
        w.opt("MaxAgeSeconds", r.max_age_seconds.map(|s| s.to_string()).as_deref());
        w.end();
    }
    w.finish()
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let config = parse(&read_document(cx, req, MAX_BODY).await?)?;
    store_bucket_setting(cx, BucketSettingKind::Cors, Some(BucketSetting::Cors(config)), StatusCode::OK).await
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    match bucket_setting(cx, BucketSettingKind::Cors, S3ErrorCode::NoSuchCORSConfiguration).await? {
        BucketSetting::Cors(config) => Ok(S3Response::xml(render(&config))),
        _ => Err(S3Error::internal("a setting of another kind")),
    }
}

pub async fn delete(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    store_bucket_setting(cx, BucketSettingKind::Cors, None, StatusCode::NO_CONTENT).await
}

fn text<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

async fn configuration(s3: &S3Service, bucket: &str) -> Result<Option<CorsConfiguration>, S3Error> {
    Ok(match s3.meta.get_bucket_setting(bucket, BucketSettingKind::Cors).await? {
        Some(BucketSetting::Cors(c)) => Some(c),
        _ => None,
    })
}

/// The headers a matching rule gives a response to `origin`.
fn allow(resp: S3Response, rule: &CorsRule, origin: &str) -> S3Response {
    let mut resp = if rule.any_origin() {
        resp.header("access-control-allow-origin", "*")
    } else {
        resp.header("access-control-allow-origin", origin).header("access-control-allow-credentials", "true")
    };
    resp = resp.header("access-control-allow-methods", rule.allowed_methods.join(", "));
    if !rule.expose_headers.is_empty() {
        resp = resp.header("access-control-expose-headers", rule.expose_headers.join(", "));
    }
    if let Some(age) = rule.max_age_seconds {
        resp = resp.header("access-control-max-age", age.to_string());
    }
    resp
}

/// Answers a preflight `OPTIONS` request from the bucket's rules. Browsers send it without
/// credentials, so it is answered before authentication.
pub async fn preflight(s3: &S3Service, headers: &HeaderMap, bucket: &str, object: bool) -> Result<S3Response, S3Error> {
    let Some(origin) = text(headers, "origin") else {
        return Err(S3Error::new(S3ErrorCode::BadRequest));
    };
    let method = text(headers, "access-control-request-method").unwrap_or("null");
    if !METHODS.contains(&method) {
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            format!("Invalid Access-Control-Request-Method: {method}"),
        ));
    }
    if s3.meta.get_bucket(bucket).await?.is_none() {
        return Err(S3Error::new(S3ErrorCode::NoSuchBucket).field("BucketName", bucket));
    }
    let refused = |message: Option<&'static str>| {
        let e = match message {
            Some(m) => S3Error::with_message(S3ErrorCode::AccessForbidden, m),
            None => S3Error::new(S3ErrorCode::AccessForbidden),
        };
        e.field("Method", method).field("ResourceType", if object { "OBJECT" } else { "BUCKET" })
    };
    let Some(config) = configuration(s3, bucket).await? else {
        return Err(refused(Some("CORSResponse: CORS is not enabled for this bucket.")));
    };
    let requested: Vec<String> = text(headers, "access-control-request-headers")
        .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
        .unwrap_or_default();
    let names: Vec<&str> = requested.iter().map(String::as_str).collect();
    let Some(rule) = config.find(origin, method, &names) else {
        return Err(refused(None));
    };
    let mut resp = allow(S3Response::new(StatusCode::OK), rule, origin);
    if !requested.is_empty() {
        resp = resp.header("access-control-allow-headers", requested.join(", "));
    }
    Ok(resp.header("vary", VARY))
}

/// Adds the `Access-Control-*` headers of the rule that allows a cross-origin request (one
/// with an `Origin` header) to a response, as S3 does on answers and errors alike.
pub async fn decorate(s3: &S3Service, origin: &str, method: &str, bucket: &str, resp: S3Response) -> S3Response {
    let config = match configuration(s3, bucket).await {
        Ok(Some(c)) => c,
        Ok(None) => return resp,
        Err(e) => {
            tracing::debug!(error = %e, "could not read the bucket's CORS rules");
            return resp;
        }
    };
    let resp = resp.header("vary", VARY);
    match config.find(origin, method, &[]) {
        Some(rule) => allow(resp, rule, origin),
        None => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> String {
        format!("<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</CORSConfiguration>")
    }

    #[test]
    fn rules_round_trip_and_bad_ones_get_aws_errors() {
        let text = doc("<CORSRule><ID>web</ID><AllowedHeader>*</AllowedHeader><AllowedMethod>GET</AllowedMethod>\
             <AllowedMethod>PUT</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin>\
             <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>\
             <CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>");
        let c = parse(text.as_bytes()).expect("valid");
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].max_age_seconds, Some(3000));
        assert_eq!(parse(&render(&c)).expect("rendered"), c);
        let code = |rules: &str| parse(doc(rules).as_bytes()).expect_err("invalid");
        assert_eq!(code("").code, S3ErrorCode::MalformedXML);
        assert_eq!(code("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>").code, S3ErrorCode::MalformedXML);
        let e = code("<CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>");
        assert_eq!(e.code, S3ErrorCode::InvalidRequest);
        assert!(e.message.contains("Unsupported method is PATCH"));
        let e = code("<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*.*</AllowedOrigin></CORSRule>");
        assert!(e.message.contains("can not have more than one wildcard"));
        let e = code(
            "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>\
             <MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule>",
        );
        assert_eq!(e.code, S3ErrorCode::MalformedXML);
        let many =
            "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>".repeat(101);
        assert_eq!(code(&many).code, S3ErrorCode::MalformedXML, "at most 100 rules");
    }

    proptest::proptest! {
        #![proptest_config(crate::s3::xml::fuzzing::config())]

        #[test]
        fn fuzz_cors_bodies(doc in crate::s3::xml::fuzzing::arbitrary_document(&[
            "CORSConfiguration", "CORSRule", "ID", "AllowedMethod", "AllowedOrigin", "AllowedHeader",
            "ExposeHeader", "MaxAgeSeconds",
        ])) {
            if let Err(e) = parse(doc.as_bytes()) {
                proptest::prop_assert!(e.status().is_client_error(), "{:?}", e.code);
            }
        }
    }
}
