//! PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration, DeleteBucketLifecycle:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLifecycleConfiguration.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketLifecycle.html>
//!
//! The rules are validated as AWS validates them and kept with the bucket; the lifecycle
//! worker ([`crate::storage::expiry`]) applies them. Transitions to other storage classes
//! are refused: s3d has one tier.

use http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Timestamp;
use crate::s3::headers::{TagLimit, validate_tags};
use crate::s3::ops::{bucket_setting, read_document, store_bucket_setting};
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::{
    BucketSetting, BucketSettingKind, Expiration, LifecycleConfiguration, LifecycleFilter, LifecycleRule,
    NoncurrentExpiration,
};

const MAX_RULES: usize = 1000;
const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Deserialize)]
struct LifecycleXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleXml {
    #[serde(rename = "ID")]
    id: Option<String>,
    filter: Option<FilterXml>,
    prefix: Option<String>,
    status: Option<String>,
    expiration: Option<ExpirationXml>,
    noncurrent_version_expiration: Option<NoncurrentXml>,
    abort_incomplete_multipart_upload: Option<AbortXml>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<IgnoredAny>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct FilterXml {
    prefix: Option<String>,
    tag: Option<TagXml>,
    object_size_greater_than: Option<String>,
    object_size_less_than: Option<String>,
    and: Option<AndXml>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AndXml {
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
    object_size_greater_than: Option<String>,
    object_size_less_than: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagXml {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExpirationXml {
    date: Option<String>,
    days: Option<String>,
    expired_object_delete_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NoncurrentXml {
    noncurrent_days: Option<String>,
    newer_noncurrent_versions: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AbortXml {
    days_after_initiation: Option<String>,
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message)
}

/// A positive whole number of days, as AWS requires of every `Days` field.
fn days(value: &str, field: &'static str, action: &'static str) -> Result<u32, S3Error> {
    match value.trim().parse::<i64>() {
        Ok(n) if n > 0 => u32::try_from(n).map_err(|_| malformed()),
        Ok(_) => Err(invalid(format!("'{field}' for {action} action must be a positive integer"))),
        Err(_) => Err(malformed()),
    }
}

fn size(value: &str) -> Result<u64, S3Error> {
    value.trim().parse::<u64>().map_err(|_| malformed())
}

fn filter(rule: &RuleXml) -> Result<LifecycleFilter, S3Error> {
    match (&rule.filter, &rule.prefix) {
        (Some(_), Some(_)) => Err(malformed()),
        // The original form: a prefix alone.
        (None, Some(p)) => Ok(LifecycleFilter { prefix: p.clone(), ..LifecycleFilter::default() }),
        (None, None) => Ok(LifecycleFilter::default()),
        (Some(f), None) => {
            let given = usize::from(f.prefix.is_some())
                + usize::from(f.tag.is_some())
                + usize::from(f.object_size_greater_than.is_some())
                + usize::from(f.object_size_less_than.is_some())
                + usize::from(f.and.is_some());
            if given > 1 {
                return Err(malformed());
            }
            let (prefix, tags, gt, lt) = match &f.and {
                Some(a) => (a.prefix.clone(), &a.tags[..], &a.object_size_greater_than, &a.object_size_less_than),
                None => (f.prefix.clone(), f.tag.as_slice(), &f.object_size_greater_than, &f.object_size_less_than),
            };
            let tags = tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect();
            let tags = validate_tags(tags, TagLimit::Bucket)?;
            let filter = LifecycleFilter {
                prefix: prefix.unwrap_or_default(),
                tags,
                size_greater_than: gt.as_deref().map(size).transpose()?,
                size_less_than: lt.as_deref().map(size).transpose()?,
            };
            if let (Some(gt), Some(lt)) = (filter.size_greater_than, filter.size_less_than)
                && gt >= lt
            {
                return Err(invalid("ObjectSizeGreaterThan must be less than ObjectSizeLessThan"));
            }
            Ok(filter)
        }
    }
}

/// The `Expiration` action; `None` for `ExpiredObjectDeleteMarker` false, which asks for
/// nothing.
fn expiration(e: &ExpirationXml) -> Result<Option<Expiration>, S3Error> {
    let marker = match e.expired_object_delete_marker.as_deref().map(str::trim) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(malformed()),
    };
    if marker.is_some() && (e.days.is_some() || e.date.is_some()) {
        return Err(invalid(
            "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy",
        ));
    }
    match (&e.days, &e.date) {
        (Some(_), Some(_)) => Err(malformed()),
        (Some(d), None) => Ok(Some(Expiration::Days(days(d, "Days", "Expiration")?))),
        (None, Some(date)) => {
            let t = OffsetDateTime::parse(date.trim(), &Rfc3339).map_err(|_| malformed())?;
            let midnight =
                t.offset().is_utc() && t.hour() == 0 && t.minute() == 0 && t.second() == 0 && t.nanosecond() == 0;
            if !midnight {
                return Err(invalid("'Date' must be at midnight GMT"));
            }
            let nanos = i64::try_from(t.unix_timestamp_nanos()).map_err(|_| invalid("'Date' is out of range"))?;
            Ok(Some(Expiration::Date(Timestamp(nanos))))
        }
        (None, None) => match marker {
            Some(true) => Ok(Some(Expiration::ExpiredObjectDeleteMarker)),
            Some(false) => Ok(None),
            None => Err(malformed()),
        },
    }
}

/// A `<LifecycleConfiguration>` as AWS validates it.
fn parse(doc: &[u8]) -> Result<LifecycleConfiguration, S3Error> {
    let xml: LifecycleXml = from_xml(doc, ElementLimits::list("Rule", MAX_RULES, 40))?;
    if xml.rules.is_empty() || xml.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let mut rules: Vec<LifecycleRule> = Vec::with_capacity(xml.rules.len());
    for r in xml.rules {
        if !r.transitions.is_empty() || !r.noncurrent_transitions.is_empty() {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "Transitions to other storage classes are not supported by this server",
            )
            .header("x-amz-not-implemented", "Transition"));
        }
        let id = match r.id.as_deref() {
            Some(id) if id.chars().count() > 255 => {
                return Err(invalid("ID length should not exceed allowed limit of 255"));
            }
            Some(id) => id.to_owned(),
            // AWS names a rule given without an ID.
            None => crate::storage::BlobId::generate().map_err(S3Error::internal)?.0,
        };
        if rules.iter().any(|existing| existing.id == id) {
            return Err(invalid("Rule ID must be unique. Found same ID for more than one rule"));
        }
        let enabled = match r.status.as_deref().map(str::trim) {
            Some("Enabled") => true,
            Some("Disabled") => false,
            _ => return Err(malformed()),
        };
        let filter = filter(&r)?;
        let expiration = r.expiration.as_ref().map(expiration).transpose()?.flatten();
        let noncurrent_expiration = match &r.noncurrent_version_expiration {
            Some(n) => {
                let d = n.noncurrent_days.as_deref().ok_or_else(malformed)?;
                let newer = match n.newer_noncurrent_versions.as_deref() {
                    None => None,
                    Some(v) => match v.trim().parse::<u32>() {
                        Ok(k) if (1..=100).contains(&k) => Some(k),
                        _ => return Err(invalid("NewerNoncurrentVersions must be between 1 and 100")),
                    },
                };
                Some(NoncurrentExpiration {
                    days: days(d, "NoncurrentDays", "NoncurrentVersionExpiration")?,
                    newer_noncurrent_versions: newer,
                })
            }
            None => None,
        };
        let abort_incomplete_after_days = match &r.abort_incomplete_multipart_upload {
            Some(a) => {
                let d = a.days_after_initiation.as_deref().ok_or_else(malformed)?;
                Some(days(d, "DaysAfterInitiation", "AbortIncompleteMultipartUpload")?)
            }
            None => None,
        };
        if expiration.is_none() && noncurrent_expiration.is_none() && abort_incomplete_after_days.is_none() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "At least one action needs to be specified in a rule",
            ));
        }
        let tagged = !filter.tags.is_empty();
        if tagged && abort_incomplete_after_days.is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "AbortIncompleteMultipartUpload cannot be specified with Tags.",
            ));
        }
        if tagged && expiration == Some(Expiration::ExpiredObjectDeleteMarker) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "ExpiredObjectDeleteMarker cannot be specified with Tags.",
            ));
        }
        rules.push(LifecycleRule {
            id,
            enabled,
            filter,
            expiration,
            noncurrent_expiration,
            abort_incomplete_after_days,
        });
    }
    Ok(LifecycleConfiguration { rules })
}

fn render(config: &LifecycleConfiguration) -> bytes::Bytes {
    let mut w = XmlWriter::new("LifecycleConfiguration");
    for r in &config.rules {
        w.start("Rule").elem("ID", &r.id);
        let f = &r.filter;
        let conditions = usize::from(!f.prefix.is_empty())
            + f.tags.len()
            + usize::from(f.size_greater_than.is_some())
            + usize::from(f.size_less_than.is_some());
        w.start("Filter");
        if conditions > 1 {
            w.start("And");
        }
        if !f.prefix.is_empty() || conditions == 0 {
            w.elem("Prefix", &f.prefix);
        }
        for (k, v) in &f.tags {
            w.start("Tag").elem("Key", k).elem("Value", v).end();
        }
        if let Some(n) = f.size_greater_than {
            w.elem("ObjectSizeGreaterThan", &n.to_string());
        }
        if let Some(n) = f.size_less_than {
            w.elem("ObjectSizeLessThan", &n.to_string());
        }
        if conditions > 1 {
            w.end();
        }
        w.end();
        w.elem("Status", if r.enabled { "Enabled" } else { "Disabled" });
        match &r.expiration {
            Some(Expiration::Days(d)) => {
                w.start("Expiration").elem("Days", &d.to_string()).end();
            }
            Some(Expiration::Date(t)) => {
                w.start("Expiration").elem("Date", &t.to_xml()).end();
            }
            Some(Expiration::ExpiredObjectDeleteMarker) => {
                w.start("Expiration").elem("ExpiredObjectDeleteMarker", "true").end();
            }
            None => {}
        }
        if let Some(n) = &r.noncurrent_expiration {
            w.start("NoncurrentVersionExpiration").elem("NoncurrentDays", &n.days.to_string());
            if let Some(k) = n.newer_noncurrent_versions {
                w.elem("NewerNoncurrentVersions", &k.to_string());
            }
            w.end();
        }
        if let Some(d) = r.abort_incomplete_after_days {
            w.start("AbortIncompleteMultipartUpload").elem("DaysAfterInitiation", &d.to_string()).end();
        }
        w.end();
    }
    w.finish()
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let config = parse(&read_document(cx, req, MAX_BODY).await?)?;
    let setting = Some(BucketSetting::Lifecycle(config));
    store_bucket_setting(cx, BucketSettingKind::Lifecycle, setting, StatusCode::OK).await
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    match bucket_setting(cx, BucketSettingKind::Lifecycle, S3ErrorCode::NoSuchLifecycleConfiguration).await? {
        BucketSetting::Lifecycle(config) => Ok(S3Response::xml(render(&config))),
        _ => Err(S3Error::internal("a setting of another kind")),
    }
}

pub async fn delete(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    store_bucket_setting(cx, BucketSettingKind::Lifecycle, None, StatusCode::NO_CONTENT).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::s3::xml::fuzzing::{arbitrary_document, config};

    fn doc(rules: &str) -> String {
        format!(
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>"
        )
    }

    #[test]
    fn rules_as_clients_send_them_round_trip() {
        let text = doc("<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>t</Key><Value>v</Value></Tag>\
             <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status>\
             <Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>\
             <NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
             <Rule><ID>uploads</ID><Filter><Prefix></Prefix></Filter><Status>Disabled</Status>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
             <Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Enabled</Status>\
             <Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>\
             <Rule><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>");
        let c = parse(text.as_bytes()).expect("valid");
        assert_eq!(c.rules.len(), 4);
        assert_eq!(c.rules[0].filter.prefix, "logs/");
        assert_eq!(c.rules[0].filter.tags, vec![("t".to_string(), "v".to_string())]);
        assert_eq!(c.rules[0].expiration, Some(Expiration::Days(30)));
        assert_eq!(
            c.rules[0].noncurrent_expiration.as_ref().map(|n| (n.days, n.newer_noncurrent_versions)),
            Some((7, Some(2)))
        );
        assert!(!c.rules[1].enabled);
        assert_eq!(c.rules[1].abort_incomplete_after_days, Some(1));
        assert_eq!(c.rules[2].filter.prefix, "tmp/");
        assert!(matches!(c.rules[2].expiration, Some(Expiration::Date(_))));
        assert_eq!(c.rules[3].expiration, Some(Expiration::ExpiredObjectDeleteMarker));
        assert!(!c.rules[3].id.is_empty(), "a rule without an ID gets one");
        // What is rendered parses back to the same rules.
        assert_eq!(parse(&render(&c)).expect("rendered"), c);
    }

    #[test]
    fn invalid_rules_get_aws_codes() {
        let code = |rules: &str| parse(doc(rules).as_bytes()).expect_err(rules).code;
        let exp = "<Expiration><Days>1</Days></Expiration>";
        assert_eq!(code(""), S3ErrorCode::MalformedXML);
        assert_eq!(code(&format!("<Rule><Status>On</Status>{exp}</Rule>")), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Rule><Status>Enabled</Status></Rule>"), S3ErrorCode::InvalidRequest);
        assert_eq!(
            code("<Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("<Rule><Status>Enabled</Status><Expiration><Days>x</Days></Expiration></Rule>"),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code("<Rule><Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration></Rule>"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(
                "<Rule><Status>Enabled</Status><Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
            ),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&format!(
                "<Rule><ID>a</ID><Status>Enabled</Status>{exp}</Rule><Rule><ID>a</ID><Status>Enabled</Status>{exp}</Rule>"
            )),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&format!("<Rule><ID>{}</ID><Status>Enabled</Status>{exp}</Rule>", "x".repeat(256))),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(&format!(
                "<Rule><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>{exp}</Rule>"
            )),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(&format!("<Rule><Filter/><Prefix>a</Prefix><Status>Enabled</Status>{exp}</Rule>")),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            code(
                "<Rule><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
            ),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(
                "<Rule><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"
            ),
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            code(&format!(
                "<Rule><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status>{exp}</Rule>"
            )),
            S3ErrorCode::InvalidArgument
        );
        let many: String =
            (0..1001).map(|i| format!("<Rule><ID>{i}</ID><Status>Enabled</Status>{exp}</Rule>")).collect();
        assert_eq!(code(&many), S3ErrorCode::MalformedXML);
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn fuzz_lifecycle_bodies(doc in arbitrary_document(&[
            "LifecycleConfiguration", "Rule", "ID", "Filter", "And", "Prefix", "Tag", "Key", "Value", "Status",
            "Expiration", "Days", "Date", "ExpiredObjectDeleteMarker", "NoncurrentVersionExpiration",
            "NoncurrentDays", "AbortIncompleteMultipartUpload", "DaysAfterInitiation", "ObjectSizeGreaterThan",
        ])) {
            if let Err(e) = parse(doc.as_bytes()) {
                prop_assert!(e.status().is_client_error() || e.code == S3ErrorCode::NotImplemented, "{:?}", e.code);
            }
        }
    }
}
