//! Request bodies: a stream of chunks, verified against `x-amz-content-sha256` and
//! `Content-MD5` as it flows, so nothing needs to be buffered whole.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha256};

use super::checksum::{Checksummer, Expected, RequestChecksum};
use super::error::{S3Error, S3ErrorCode};
use super::types::ChecksumAlgorithm;
use crate::auth::PayloadHash;
use crate::auth::sigv4::chunked::Trailers;

/// A request or response body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, S3Error>> + Send + 'static>>;

pub fn empty_body() -> BodyStream {
    Box::pin(futures_util::stream::empty())
}

/// What a verified body turned out to be, available once it has been read to the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyDigest {
    pub md5: [u8; 16],
    pub len: u64,
    /// Flexible checksums, (algorithm, base64 value): the one the request asked for first,
    /// then CRC64NVME if that was another (multipart objects combine it). Empty unless
    /// [`VerifiedBody::with_checksum`] was used.
    pub checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// Checks a body against the digests the client declared, failing at the end of the stream
/// with the code S3 uses (`XAmzContentSHA256Mismatch`, `BadDigest`), and measures its MD5
/// (the ETag) and length on the way. Bodies longer than `limit` fail with `EntityTooLarge`
/// as soon as the limit is crossed.
pub struct VerifiedBody {
    inner: BodyStream,
    sha256: Option<(Sha256, [u8; 32])>,
    md5: Md5,
    expected_md5: Option<[u8; 16]>,
    len: u64,
    limit: u64,
    digest: Arc<OnceLock<BodyDigest>>,
    checksum: Option<(Checksummer, ChecksumAlgorithm, Expected, Option<Trailers>)>,
    crc64: Option<Checksummer>,
    done: bool,
}

impl VerifiedBody {
    pub fn new(inner: BodyStream, payload: PayloadHash, content_md5: Option<[u8; 16]>) -> Self {
        Self::with_limit(inner, payload, content_md5, u64::MAX)
    }

    pub fn with_limit(inner: BodyStream, payload: PayloadHash, content_md5: Option<[u8; 16]>, limit: u64) -> Self {
        VerifiedBody {
            inner,
            sha256: match payload {
                PayloadHash::Sha256(expected) => Some((Sha256::new(), expected)),
                _ => None,
            },
            md5: Md5::new(),
            expected_md5: content_md5,
            len: 0,
            limit,
            digest: Arc::new(OnceLock::new()),
            checksum: None,
            crc64: None,
            done: false,
        }
    }

    /// Also computes (and, when the client sent one in a header or trailer, verifies) a
    /// flexible checksum.
    pub fn with_checksum(mut self, request: &RequestChecksum, trailers: Option<Trailers>) -> Self {
        let a = request.algorithm;
        self.checksum = Some((Checksummer::new(a), a, request.expected.clone(), trailers));
        if a != ChecksumAlgorithm::Crc64Nvme {
            self.crc64 = Some(Checksummer::new(ChecksumAlgorithm::Crc64Nvme));
        }
        self
    }

    /// Filled in when the body has been read to the end and verified.
    pub fn digest(&self) -> Arc<OnceLock<BodyDigest>> {
        Arc::clone(&self.digest)
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        if let Some((hasher, expected)) = self.sha256.take() {
            let actual: [u8; 32] = hasher.finalize().into();
            if actual != expected {
                return Err(S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch)
                    .field("ClientComputedContentSHA256", hex::encode(expected))
                    .field("S3ComputedContentSHA256", hex::encode(actual)));
            }
        }
        let actual: [u8; 16] = std::mem::take(&mut self.md5).finalize().into();
        if let Some(expected) = self.expected_md5
            && actual != expected
        {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            return Err(S3Error::new(S3ErrorCode::BadDigest)
                .field("ExpectedDigest", b64.encode(expected))
                .field("CalculatedDigest", b64.encode(actual)));
        }
        let mut checksums = Vec::new();
        if let Some((hasher, a, expected, trailers)) = self.checksum.take() {
            let sum = hasher.finalize();
            let sent = match expected {
                Expected::Header(v) => Some(v),
                // A trailer-announcing body may still end without the trailer (the checksum is
                // then only computed), as on AWS.
                Expected::Trailer => trailers.and_then(|t| {
                    t.get().and_then(|t| t.iter().find(|(k, _)| k == a.header_name()).map(|(_, v)| v.clone()))
                }),
                Expected::None => None,
            };
            if let Some(sent) = sent
                && sent != sum
            {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!("The {} you specified did not match the calculated checksum.", a.as_str()),
                ));
            }
            checksums.push((a, sum));
            if let Some(c) = self.crc64.take() {
                checksums.push((ChecksumAlgorithm::Crc64Nvme, c.finalize()));
            }
        }
        let _ = self.digest.set(BodyDigest { md5: actual, len: self.len, checksums });
        Ok(())
    }
}

impl Stream for VerifiedBody {
    type Item = Result<Bytes, S3Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match ready!(self.inner.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                self.len += chunk.len() as u64;
                if self.len > self.limit {
                    self.done = true;
                    return Poll::Ready(Some(Err(
                        S3Error::new(S3ErrorCode::EntityTooLarge).field("MaxSizeAllowed", self.limit.to_string())
                    )));
                }
                if let Some((h, _)) = &mut self.sha256 {
                    h.update(&chunk);
                }
                if let Some((c, ..)) = &mut self.checksum {
                    c.update(&chunk);
                }
                if let Some(c) = &mut self.crc64 {
                    c.update(&chunk);
                }
                self.md5.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                self.done = true;
                match self.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

/// Reads a small body (an XML document) whole, verified, up to `limit` bytes.
pub async fn read_small(
    body: BodyStream,
    payload: PayloadHash,
    content_md5: Option<[u8; 16]>,
    limit: usize,
) -> Result<Bytes, S3Error> {
    read_small_with(body, payload, content_md5, limit, None).await
}

/// As [`read_small`], also verifying a flexible checksum of the body (DeleteObjects).
pub async fn read_small_with(
    body: BodyStream,
    payload: PayloadHash,
    content_md5: Option<[u8; 16]>,
    limit: usize,
    checksum: Option<&RequestChecksum>,
) -> Result<Bytes, S3Error> {
    if let PayloadHash::Streaming(_) = payload {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "aws-chunked request bodies are not supported for this operation",
        ));
    }
    let mut body = VerifiedBody::new(body, payload, content_md5);
    if let Some(c) = checksum {
        body = body.with_checksum(c, None);
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(
                S3Error::new(S3ErrorCode::MaxMessageLengthExceeded).field("MaxMessageLengthBytes", limit.to_string())
            );
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> BodyStream {
        let chunks: Vec<Result<Bytes, S3Error>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    fn sha(data: &[u8]) -> PayloadHash {
        PayloadHash::Sha256(Sha256::digest(data).into())
    }

    #[tokio::test]
    async fn verifies_sha256_and_md5_across_chunks() {
        let md5: [u8; 16] = Md5::digest(b"hello world").into();
        let got = read_small(body(&[b"hello ", b"world"]), sha(b"hello world"), Some(md5), 100).await.expect("ok");
        assert_eq!(&got[..], b"hello world");

        let err = read_small(body(&[b"hello"]), sha(b"hellO"), None, 100).await.expect_err("mismatch");
        assert_eq!(err.code, S3ErrorCode::XAmzContentSHA256Mismatch);

        let err = read_small(body(&[b"hello"]), PayloadHash::Unsigned, Some([0; 16]), 100).await.expect_err("md5");
        assert_eq!(err.code, S3ErrorCode::BadDigest);

        let err = read_small(body(&[b"hello", b"world"]), PayloadHash::Unsigned, None, 7).await.expect_err("limit");
        assert_eq!(err.code, S3ErrorCode::MaxMessageLengthExceeded);
    }
}
