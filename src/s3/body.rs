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

/// One digest a body needs.
enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sum(Checksummer),
}

/// A finished [`Hasher`].
enum HashOut {
    Md5([u8; 16]),
    Sha256([u8; 32]),
    Sum(String),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sum(c) => c.update(data),
        }
    }

    fn finish(self) -> HashOut {
        match self {
            Hasher::Md5(h) => HashOut::Md5(h.finalize().into()),
            Hasher::Sha256(h) => HashOut::Sha256(h.finalize().into()),
            Hasher::Sum(c) => HashOut::Sum(c.finalize()),
        }
    }

    /// Whether hashing is costly enough to deserve a thread of its own (the CRCs are not).
    fn heavy(&self) -> bool {
        !matches!(self, Hasher::Sum(Checksummer::Crc(..)))
    }
}

/// Bodies at least this long (or of unknown length) are hashed beside the stream.
const OFFLOAD_MIN: u64 = 1024 * 1024;
/// Chunks a hashing thread may fall behind by (they are shared, not copied).
const LANE_DEPTH: usize = 4;
/// Bodies hashed on threads at once (each holds up to three blocking threads for as long
/// as it streams); the others hash in place, so that long uploads can never take the
/// blocking pool that blob writes and metadata calls need.
const MAX_OFFLOADED: usize = 16;

static OFFLOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_OFFLOADED`] places, given back when the body is dropped.
struct OffloadSlot;

impl OffloadSlot {
    fn take() -> Option<OffloadSlot> {
        use std::sync::atomic::Ordering;
        OFFLOADED
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_OFFLOADED).then_some(n + 1))
            .ok()
            .map(|_| OffloadSlot)
    }
}

impl Drop for OffloadSlot {
    fn drop(&mut self) {
        OFFLOADED.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Hashers running on a blocking thread, fed chunk by chunk. `order` places each result
/// among the body's digests.
struct Lane {
    tx: tokio_util::sync::PollSender<Bytes>,
    done: tokio::sync::oneshot::Receiver<Vec<HashOut>>,
    order: Vec<usize>,
}

impl Lane {
    fn spawn(order: Vec<usize>, mut hashers: Vec<Hasher>) -> Lane {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(LANE_DEPTH);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                for h in &mut hashers {
                    h.update(&chunk);
                }
            }
            let _ = done_tx.send(hashers.into_iter().map(Hasher::finish).collect());
        });
        Lane { tx: tokio_util::sync::PollSender::new(tx), done, order }
    }
}

type Finishing = Pin<Box<dyn std::future::Future<Output = Option<Vec<HashOut>>> + Send>>;

/// Where a body's digests are computed.
enum Hashing {
    /// On the stream's own task, chunk by chunk: for small bodies, cheaper than threads.
    Here(Vec<Hasher>),
    /// On blocking threads (one per costly digest), in parallel with reading the body and
    /// writing it out; a thread that falls behind holds the stream back.
    Lanes(Vec<Lane>),
    /// The body ended: waiting for the lanes' results.
    Finishing(Finishing),
    /// Finished.
    Done,
}

/// Ends every lane's input (dropping its sender) and waits for its digests, putting them in
/// the body's order.
fn finishing(lanes: Vec<Lane>) -> Finishing {
    let waits: Vec<_> = lanes.into_iter().map(|lane| (lane.done, lane.order)).collect();
    Box::pin(async move {
        let mut outs: Vec<Option<HashOut>> = Vec::new();
        for (done, order) in waits {
            let results = done.await.ok()?;
            for (i, out) in order.into_iter().zip(results) {
                if outs.len() <= i {
                    outs.resize_with(i + 1, || None);
                }
                outs[i] = Some(out);
            }
        }
        outs.into_iter().collect()
    })
}

/// Checks a body against the digests the client declared, failing at the end of the stream
/// with the code S3 uses (`XAmzContentSHA256Mismatch`, `BadDigest`), and measures its MD5
/// (the ETag) and length on the way. Bodies longer than `limit` fail with `EntityTooLarge`
/// as soon as the limit is crossed.
pub struct VerifiedBody {
    inner: BodyStream,
    /// The hashers, in this order: MD5, SHA-256 (when `sha256` is expected), the requested
    /// checksum (when `checksum` is set) and CRC64NVME (when `crc64`).
    hashing: Hashing,
    sha256: Option<[u8; 32]>,
    expected_md5: Option<[u8; 16]>,
    len: u64,
    limit: u64,
    digest: Arc<OnceLock<BodyDigest>>,
    checksum: Option<(ChecksumAlgorithm, Expected, Option<Trailers>)>,
    crc64: bool,
    /// The inner stream ended (the digests may still be coming).
    ended: bool,
    done: bool,
    _slot: Option<OffloadSlot>,
}

impl VerifiedBody {
    pub fn new(inner: BodyStream, payload: PayloadHash, content_md5: Option<[u8; 16]>) -> Self {
        Self::with_limit(inner, payload, content_md5, u64::MAX)
    }

    pub fn with_limit(inner: BodyStream, payload: PayloadHash, content_md5: Option<[u8; 16]>, limit: u64) -> Self {
        let sha256 = match payload {
            PayloadHash::Sha256(expected) => Some(expected),
            _ => None,
        };
        let mut hashers = vec![Hasher::Md5(Md5::new())];
        if sha256.is_some() {
            hashers.push(Hasher::Sha256(Sha256::new()));
        }
        VerifiedBody {
            inner,
            hashing: Hashing::Here(hashers),
            sha256,
            expected_md5: content_md5,
            len: 0,
            limit,
            digest: Arc::new(OnceLock::new()),
            checksum: None,
            crc64: false,
            ended: false,
            done: false,
            _slot: None,
        }
    }

    /// Also computes (and, when the client sent one in a header or trailer, verifies) a
    /// flexible checksum. Call before [`VerifiedBody::offloaded`].
    pub fn with_checksum(mut self, request: &RequestChecksum, trailers: Option<Trailers>) -> Self {
        let a = request.algorithm;
        if let Hashing::Here(hashers) = &mut self.hashing {
            self.checksum = Some((a, request.expected.clone(), trailers));
            self.crc64 = a != ChecksumAlgorithm::Crc64Nvme;
            hashers.push(Hasher::Sum(Checksummer::new(a)));
            if self.crc64 {
                hashers.push(Hasher::Sum(Checksummer::new(ChecksumAlgorithm::Crc64Nvme)));
            }
        }
        self
    }

    /// Hashes on blocking threads beside the stream when the body is expected to be
    /// `expected_len` long (unknown: maybe long) and that pays for the threads. Call last,
    /// from within the runtime.
    pub fn offloaded(mut self, expected_len: Option<u64>) -> Self {
        if expected_len.is_some_and(|n| n < OFFLOAD_MIN) {
            return self;
        }
        let Hashing::Here(hashers) = &mut self.hashing else {
            return self;
        };
        let Some(slot) = OffloadSlot::take() else {
            return self;
        };
        // Costly digests get a thread each; the cheap ones ride with the first (MD5).
        let mut groups: Vec<(Vec<usize>, Vec<Hasher>)> = Vec::new();
        for (i, h) in std::mem::take(hashers).into_iter().enumerate() {
            match groups.first_mut() {
                Some((order, group)) if !h.heavy() => {
                    order.push(i);
                    group.push(h);
                }
                _ => groups.push((vec![i], vec![h])),
            }
        }
        self.hashing = Hashing::Lanes(groups.into_iter().map(|(order, hs)| Lane::spawn(order, hs)).collect());
        self._slot = Some(slot);
        self
    }

    /// Filled in when the body has been read to the end and verified.
    pub fn digest(&self) -> Arc<OnceLock<BodyDigest>> {
        Arc::clone(&self.digest)
    }

    /// Checks the finished digests (in the body's order) and records them.
    fn finish(&mut self, outs: Vec<HashOut>) -> Result<(), S3Error> {
        let mut outs = outs.into_iter();
        let Some(HashOut::Md5(actual)) = outs.next() else {
            return Err(S3Error::internal("the body's MD5 is missing"));
        };
        if let Some(expected) = self.sha256 {
            let Some(HashOut::Sha256(sha)) = outs.next() else {
                return Err(S3Error::internal("the body's SHA-256 is missing"));
            };
            if sha != expected {
                return Err(S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch)
                    .field("ClientComputedContentSHA256", hex::encode(expected))
                    .field("S3ComputedContentSHA256", hex::encode(sha)));
            }
        }
        if let Some(expected) = self.expected_md5
            && actual != expected
        {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            return Err(S3Error::new(S3ErrorCode::BadDigest)
                .field("ExpectedDigest", b64.encode(expected))
                .field("CalculatedDigest", b64.encode(actual)));
        }
        let mut sums = outs.filter_map(|o| match o {
            HashOut::Sum(s) => Some(s),
            _ => None,
        });
        let mut checksums = Vec::new();
        if let Some((a, expected, trailers)) = self.checksum.take() {
            let sum = sums.next().ok_or_else(|| S3Error::internal("the body's checksum is missing"))?;
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
            if self.crc64 {
                let crc = sums.next().ok_or_else(|| S3Error::internal("the body's CRC64NVME is missing"))?;
                checksums.push((ChecksumAlgorithm::Crc64Nvme, crc));
            }
        }
        let _ = self.digest.set(BodyDigest { md5: actual, len: self.len, checksums });
        Ok(())
    }

    /// The digests, once every hasher has seen the whole body.
    fn poll_digests(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<HashOut>>> {
        loop {
            match std::mem::replace(&mut self.hashing, Hashing::Done) {
                Hashing::Here(hashers) => return Poll::Ready(Some(hashers.into_iter().map(Hasher::finish).collect())),
                Hashing::Lanes(lanes) => {
                    // No more chunks: the threads finish what they have and answer.
                    self.hashing = Hashing::Finishing(finishing(lanes));
                }
                Hashing::Finishing(mut f) => {
                    return match f.as_mut().poll(cx) {
                        Poll::Ready(outs) => Poll::Ready(outs),
                        Poll::Pending => {
                            self.hashing = Hashing::Finishing(f);
                            Poll::Pending
                        }
                    };
                }
                Hashing::Done => return Poll::Ready(None),
            }
        }
    }
}

impl Stream for VerifiedBody {
    type Item = Result<Bytes, S3Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if !this.ended {
            // With hashing threads, a chunk is taken only when each of them has room for it.
            if let Hashing::Lanes(lanes) = &mut this.hashing {
                for lane in lanes.iter_mut() {
                    if ready!(lane.tx.poll_reserve(cx)).is_err() {
                        this.done = true;
                        return Poll::Ready(Some(Err(S3Error::internal("a hashing thread stopped"))));
                    }
                }
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    this.len += chunk.len() as u64;
                    if this.len > this.limit {
                        this.done = true;
                        return Poll::Ready(Some(Err(
                            S3Error::new(S3ErrorCode::EntityTooLarge).field("MaxSizeAllowed", this.limit.to_string())
                        )));
                    }
                    match &mut this.hashing {
                        Hashing::Here(hashers) => {
                            for h in hashers {
                                h.update(&chunk);
                            }
                        }
                        Hashing::Lanes(lanes) => {
                            for lane in lanes {
                                // Room was reserved above.
                                let _ = lane.tx.send_item(chunk.clone());
                            }
                        }
                        Hashing::Finishing(_) | Hashing::Done => {}
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.ended = true,
            }
        }
        let outs = ready!(this.poll_digests(cx));
        this.done = true;
        let result = match outs {
            Some(outs) => this.finish(outs),
            None => Err(S3Error::internal("a hashing thread stopped")),
        };
        match result {
            Ok(()) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
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

    /// The same body hashed on the stream's task and on hashing threads gives the same
    /// digests and the same failures.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_threads_agree_with_hashing_in_place() {
        let data: Vec<u8> = (0..3 * OFFLOAD_MIN as usize).map(|i| (i * 7 % 251) as u8).collect();
        let chunks = || -> BodyStream {
            let parts: Vec<Result<Bytes, S3Error>> =
                data.chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            Box::pin(futures_util::stream::iter(parts))
        };
        async fn run(mut body: VerifiedBody) -> Result<BodyDigest, S3Error> {
            let digest = body.digest();
            while let Some(chunk) = body.next().await {
                chunk?;
            }
            Ok(digest.get().cloned().expect("a digest"))
        }
        for algorithm in [ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Crc64Nvme] {
            let request = RequestChecksum { algorithm, expected: Expected::None, explicit: true };
            let make = |payload| VerifiedBody::new(chunks(), payload, None).with_checksum(&request, None);
            let here = run(make(sha(&data))).await.expect("in place");
            let there = run(make(sha(&data)).offloaded(None)).await.expect("on threads");
            assert_eq!(here, there);
            assert_eq!(here.md5, <[u8; 16]>::from(Md5::digest(&data)));
            assert_eq!(here.checksums.len(), if algorithm == ChecksumAlgorithm::Crc64Nvme { 1 } else { 2 });
            let err = run(make(sha(b"other")).offloaded(Some(data.len() as u64))).await.expect_err("mismatch");
            assert_eq!(err.code, S3ErrorCode::XAmzContentSHA256Mismatch);
        }
        let md5 = Some([0u8; 16]);
        let err = run(VerifiedBody::new(chunks(), PayloadHash::Unsigned, md5).offloaded(None)).await.expect_err("md5");
        assert_eq!(err.code, S3ErrorCode::BadDigest);
    }
}
