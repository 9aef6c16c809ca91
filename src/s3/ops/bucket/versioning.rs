//! PutBucketVersioning and GetBucketVersioning:
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketVersioning.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html>

use http::StatusCode;
use serde::Deserialize;

use crate::s3::ops::read_document;
use crate::s3::xml::{ElementLimits, XmlWriter, from_xml};
use crate::s3::{Ctx, S3Error, S3ErrorCode, S3Request, S3Response};
use crate::storage::Versioning;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct VersioningConfiguration {
    status: Option<String>,
    mfa_delete: Option<String>,
}

/// The state a configuration asks for: `Enabled` or `Suspended` (a bucket never goes back
/// to unversioned); MFA delete cannot be enabled here, as it needs a root account's device.
fn parse(doc: &[u8]) -> Result<Option<Versioning>, S3Error> {
    let c: VersioningConfiguration = from_xml(doc, ElementLimits::SMALL)?;
    match c.mfa_delete.as_deref().map(str::trim) {
        None | Some("Disabled") => {}
        Some("Enabled") => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "MFA delete cannot be enabled: this server has no MFA devices (the x-amz-mfa header is required)",
            ));
        }
        Some(_) => return Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
    match c.status.as_deref().map(str::trim) {
        None => Ok(None),
        Some("Enabled") => Ok(Some(Versioning::Enabled)),
        Some("Suspended") => Ok(Some(Versioning::Suspended)),
        Some(_) => Err(S3Error::new(S3ErrorCode::MalformedXML)),
    }
}

pub async fn put(cx: &Ctx<'_>, req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let doc = read_document(cx, req, 64 * 1024).await?;
    if let Some(state) = parse(&doc)? {
        cx.s3.meta.set_versioning(&bucket.name, state).await?;
    }
    Ok(S3Response::new(StatusCode::OK))
}

pub async fn get(cx: &Ctx<'_>, _req: S3Request) -> Result<S3Response, S3Error> {
    let bucket = cx.bucket()?;
    let mut w = XmlWriter::new("VersioningConfiguration");
    match bucket.versioning {
        Versioning::Unversioned => {}
        Versioning::Enabled => {
            w.elem("Status", "Enabled");
        }
        Versioning::Suspended => {
            w.elem("Status", "Suspended");
        }
    }
    Ok(S3Response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_as_sdks_send_them() {
        let doc = |body: &str| {
            format!(
                "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{body}</VersioningConfiguration>"
            )
        };
        assert_eq!(parse(doc("<Status>Enabled</Status>").as_bytes()).expect("ok"), Some(Versioning::Enabled));
        assert_eq!(
            parse(doc("<MfaDelete>Disabled</MfaDelete><Status>Suspended</Status>").as_bytes()).expect("ok"),
            Some(Versioning::Suspended)
        );
        assert_eq!(parse(doc("").as_bytes()).expect("ok"), None);
        let code = |body: &str| parse(doc(body).as_bytes()).expect_err(body).code;
        assert_eq!(code("<Status>Disabled</Status>"), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Status>enabled</Status>"), S3ErrorCode::MalformedXML);
        assert_eq!(code("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"), S3ErrorCode::InvalidRequest);
        assert_eq!(parse(b"not xml").expect_err("xml").code, S3ErrorCode::MalformedXML);
    }
}
