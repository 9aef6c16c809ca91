//! Long-running operations (CompleteMultipartUpload, copies) answer as AWS does: if the work
//! takes more than a moment, the 200 starts at once with the XML declaration, whitespace
//! keeps the connection alive (clients' read timeouts would fire otherwise), and the result
//! or an `<Error>` document follows. The work runs detached, so it finishes even if the
//! client goes away.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::s3::xml::strip_declaration;
use crate::s3::{RequestIds, ResponseBody, S3Error, S3Response, error_document};

/// How long the work may take before the 200 starts.
const EARLY_RESPONSE_AFTER: Duration = Duration::from_secs(2);
/// How often whitespace is sent while it runs.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);

/// What long-running work produces: its XML document, and headers for a prompt answer (an
/// early answer has sent its headers already, so they are lost then, as on AWS).
pub struct Done {
    pub doc: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl From<Bytes> for Done {
    fn from(doc: Bytes) -> Self {
        Done { doc, headers: Vec::new() }
    }
}

/// Runs `work` and answers with its document, early if it is slow.
pub async fn respond<F>(work: F, ids: RequestIds, resource: String) -> Result<S3Response, S3Error>
where
    F: Future<Output = Result<Done, S3Error>> + Send + 'static,
{
    let mut task = tokio::spawn(work);
    tokio::select! {
        joined = &mut task => {
            let done = joined.map_err(S3Error::internal)??;
            let mut resp = S3Response::xml(done.doc);
            for (name, value) in done.headers {
                resp = resp.header(name, value);
            }
            Ok(resp)
        }
        () = tokio::time::sleep(EARLY_RESPONSE_AFTER) => Ok(early_response(task, ids, resource)),
    }
}

/// A 200 whose body is the XML declaration, whitespace while the work runs, then the
/// result or an `<Error>` document.
fn early_response(
    task: tokio::task::JoinHandle<Result<Done, S3Error>>,
    ids: RequestIds,
    resource: String,
) -> S3Response {
    let declaration = Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let rest = futures_util::stream::unfold(Some(task), move |state| {
        let (ids, resource) = (ids.clone(), resource.clone());
        async move {
            let mut task = state?;
            tokio::select! {
                joined = &mut task => {
                    let doc = match joined.map_err(S3Error::internal).and_then(|r| r) {
                        Ok(done) => strip_declaration(&done.doc),
                        Err(e) => {
                            tracing::info!(code = %e.code, error = %e, "failed after the response started");
                            strip_declaration(&error_document(&e, &resource, &ids))
                        }
                    };
                    Some((Ok(doc), None))
                }
                () = tokio::time::sleep(KEEPALIVE_EVERY) => Some((Ok(Bytes::from_static(b" ")), Some(task))),
            }
        }
    });
    let stream = futures_util::stream::once(async move { Ok(declaration) }).chain(rest);
    let mut resp = S3Response::new(http::StatusCode::OK).header("content-type", "application/xml");
    resp.body = ResponseBody::Stream(Box::pin(stream));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::S3ErrorCode;

    fn ids() -> RequestIds {
        RequestIds { request_id: "0123456789ABCDEF".into(), host_id: "host".into() }
    }

    async fn body_of(resp: S3Response) -> String {
        assert_eq!(resp.status, http::StatusCode::OK);
        let ResponseBody::Stream(stream) = resp.body else { panic!("an early response streams") };
        let chunks: Vec<Bytes> = stream.map(|c| c.expect("chunk")).collect().await;
        String::from_utf8(chunks.concat()).expect("utf-8")
    }

    #[tokio::test(start_paused = true)]
    async fn early_response_keeps_alive_then_sends_the_result() {
        let task = tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(12)).await;
            Ok(Done::from(Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><ETag>&quot;abc&quot;</ETag></CopyObjectResult>")))
        });
        let body = body_of(early_response(task, ids(), "/b/k".into())).await;
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n  <CopyObjectResult><ETag>&quot;abc&quot;</ETag></CopyObjectResult>"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn early_response_carries_a_late_error_inside_the_200() {
        let task = tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(6)).await;
            Err(S3Error::new(S3ErrorCode::InvalidPart))
        });
        let body = body_of(early_response(task, ids(), "/b/k".into())).await;
        assert!(
            body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n <Error><Code>InvalidPart</Code>"),
            "{body}"
        );
        assert_eq!(body.matches("<?xml").count(), 1);
        assert!(body.ends_with("<RequestId>0123456789ABCDEF</RequestId><HostId>host</HostId></Error>"), "{body}");
    }
}
