//! `aws-chunked` request bodies as a stream adapter: strips the framing, verifies every chunk
//! signature (chained from the request's seed signature) and the trailer signature as bytes
//! flow, and hands over the trailer fields. Nothing is buffered beyond one chunk header.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html>

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use sha2::{Digest, Sha256};

use super::signing;
use super::{SigningContext, StreamingMode};

/// Longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer bytes accepted.
const MAX_TRAILER: usize = 16 * 1024;
/// Whitespace tolerated after the end of the body (clients end with one CRLF).
const MAX_TAIL: usize = 64;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Why an `aws-chunked` body was refused.
#[derive(Debug)]
pub enum ChunkedError {
    /// The framing is not `aws-chunked` (bad size line, missing CRLF, bytes after the end).
    Malformed(&'static str),
    /// A chunk or trailer signature does not verify.
    SignatureMismatch,
    /// The trailer section is not `name:value` lines (or lacks its signature).
    MalformedTrailer(&'static str),
    /// The body ended early, or its decoded length differs from `x-amz-decoded-content-length`.
    Incomplete,
    /// The underlying body failed.
    Inner(Box<dyn std::error::Error + Send + Sync>),
}

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkedError::Malformed(m) => write!(f, "malformed aws-chunked body: {m}"),
            ChunkedError::SignatureMismatch => f.write_str("chunk signature mismatch"),
            ChunkedError::MalformedTrailer(m) => write!(f, "malformed trailer: {m}"),
            ChunkedError::Incomplete => f.write_str("incomplete body"),
            ChunkedError::Inner(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ChunkedError {}

/// Trailer fields (`name` lower-case), available once the body has been read to the end.
pub type Trailers = Arc<OnceLock<Vec<(String, String)>>>;

enum State {
    Header,
    Data { remaining: u64 },
    DataEnd,
    Trailer,
    Done,
}

/// Chunk-signature verification state.
struct Chain {
    ctx: SigningContext,
    previous: String,
    hasher: Sha256,
    pending: Option<String>,
}

impl Chain {
    fn verify_chunk(&mut self, provided: &str) -> bool {
        let data_hash = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_hash}",
            self.ctx.timestamp, self.ctx.scope, self.previous
        );
        let ok = signing::verify(&self.ctx.key, &sts, provided);
        self.previous = provided.to_ascii_lowercase();
        ok
    }

    fn verify_trailer(&self, canonical_trailer: &str, provided: &str) -> bool {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.ctx.timestamp,
            self.ctx.scope,
            self.previous,
            hex::encode(Sha256::digest(canonical_trailer.as_bytes()))
        );
        signing::verify(&self.ctx.key, &sts, provided)
    }
}

/// Decodes an `aws-chunked` body.
pub struct ChunkedDecoder<S> {
    inner: S,
    inner_done: bool,
    buf: BytesMut,
    state: State,
    chain: Option<Chain>,
    trailer_expected: bool,
    trailer_lines: Vec<(String, String)>,
    trailer_signature: Option<String>,
    trailer_bytes: usize,
    decoded: u64,
    decoded_length: u64,
    trailers: Trailers,
    failed: bool,
    /// How far `buf` has been searched for a line end, so that a line arriving a byte at a
    /// time is not rescanned from its start each time.
    scanned: usize,
    /// Whitespace seen after the end.
    tail: usize,
}

impl<S> ChunkedDecoder<S> {
    /// `decoded_length` is `x-amz-decoded-content-length`; signed modes need `signing`.
    pub fn new(inner: S, mode: StreamingMode, signing: Option<SigningContext>, decoded_length: u64) -> Self {
        let chain = match mode {
            StreamingMode::SignedPayload | StreamingMode::SignedPayloadTrailer => signing.map(|ctx| Chain {
                previous: ctx.seed_signature.clone(),
                ctx,
                hasher: Sha256::new(),
                pending: None,
            }),
            StreamingMode::UnsignedPayloadTrailer => None,
        };
        ChunkedDecoder {
            inner,
            inner_done: false,
            buf: BytesMut::new(),
            state: State::Header,
            chain,
            trailer_expected: mode != StreamingMode::SignedPayload,
            trailer_lines: Vec::new(),
            trailer_signature: None,
            trailer_bytes: 0,
            decoded: 0,
            decoded_length,
            trailers: Arc::new(OnceLock::new()),
            failed: false,
            scanned: 0,
            tail: 0,
        }
    }

    pub fn trailers(&self) -> Trailers {
        Arc::clone(&self.trailers)
    }

    fn take_line(&mut self) -> Result<Option<String>, ChunkedError> {
        let from = self.scanned.saturating_sub(1);
        match self.buf[from..].windows(2).position(|w| w == b"\r\n").map(|i| i + from) {
            Some(i) => {
                self.scanned = 0;
                let line = self.buf.split_to(i);
                self.buf.advance(2);
                String::from_utf8(line.to_vec()).map(Some).map_err(|_| ChunkedError::Malformed("line is not UTF-8"))
            }
            None if self.buf.len() > MAX_LINE => Err(ChunkedError::Malformed("line too long")),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    fn parse_header(&mut self, line: &str) -> Result<(), ChunkedError> {
        let mut parts = line.split(';');
        let size = parts.next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| ChunkedError::Malformed("chunk size is not hex"))?;
        let mut signature = None;
        for ext in parts {
            if let Some(sig) = ext.trim().strip_prefix("chunk-signature=") {
                signature = Some(sig.to_owned());
            }
        }
        if let Some(chain) = &mut self.chain {
            let sig = signature.ok_or(ChunkedError::Malformed("missing chunk-signature"))?;
            if size == 0 && !chain.verify_chunk(&sig) {
                return Err(ChunkedError::SignatureMismatch);
            }
            if size > 0 {
                chain.previous_pending(sig);
            }
        }
        // Checked: a size near 2^64 must not wrap past the declared length.
        if self.decoded.checked_add(size).is_none_or(|end| end > self.decoded_length) {
            return Err(ChunkedError::Incomplete);
        }
        // After the final chunk come the trailer lines (if any) and a blank line.
        self.state = match size {
            0 => State::Trailer,
            n => State::Data { remaining: n },
        };
        Ok(())
    }

    /// Validates the trailer section once it is complete.
    fn finish_trailer(&mut self) -> Result<(), ChunkedError> {
        if let Some(chain) = &self.chain
            && self.trailer_expected
        {
            let provided = self
                .trailer_signature
                .as_deref()
                .ok_or(ChunkedError::MalformedTrailer("missing x-amz-trailer-signature"))?;
            let canonical: String = self.trailer_lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            if !chain.verify_trailer(&canonical, provided) {
                return Err(ChunkedError::SignatureMismatch);
            }
        }
        if self.decoded != self.decoded_length {
            return Err(ChunkedError::Incomplete);
        }
        let _ = self.trailers.set(std::mem::take(&mut self.trailer_lines));
        self.state = State::Done;
        Ok(())
    }

    /// Advances the state machine over buffered bytes; returns decoded data when there is some.
    fn step(&mut self) -> Result<Option<Bytes>, ChunkedError> {
        loop {
            match self.state {
                State::Header => match self.take_line()? {
                    Some(line) => self.parse_header(&line)?,
                    None => return Ok(None),
                },
                State::Data { remaining } => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    if let Some(chain) = &mut self.chain {
                        chain.hasher.update(&data);
                    }
                    self.decoded += n as u64;
                    self.state = if remaining == n as u64 {
                        State::DataEnd
                    } else {
                        State::Data { remaining: remaining - n as u64 }
                    };
                    return Ok(Some(data));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(ChunkedError::Malformed("chunk data not followed by CRLF"));
                    }
                    self.buf.advance(2);
                    if let Some(chain) = &mut self.chain {
                        let sig = chain.take_pending();
                        if !chain.verify_chunk(&sig) {
                            return Err(ChunkedError::SignatureMismatch);
                        }
                    }
                    self.state = State::Header;
                }
                State::Trailer => match self.take_line()? {
                    Some(line) if line.is_empty() => {
                        self.finish_trailer()?;
                    }
                    Some(line) => {
                        self.trailer_bytes += line.len();
                        if self.trailer_bytes > MAX_TRAILER {
                            return Err(ChunkedError::MalformedTrailer("trailer too large"));
                        }
                        let (k, v) =
                            line.split_once(':').ok_or(ChunkedError::MalformedTrailer("trailer line without ':'"))?;
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        if k.is_empty() {
                            return Err(ChunkedError::MalformedTrailer("empty trailer name"));
                        }
                        // Without a trailer in the payload mode, nothing may follow the final
                        // chunk: unsigned lines there would pass for a checksum.
                        if !self.trailer_expected {
                            return Err(ChunkedError::MalformedTrailer("trailer in a payload without trailers"));
                        }
                        if k == "x-amz-trailer-signature" {
                            self.trailer_signature = Some(v);
                        } else {
                            self.trailer_lines.push((k, v));
                        }
                    }
                    None => return Ok(None),
                },
                State::Done => {
                    if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                        return Err(ChunkedError::Malformed("bytes after the final chunk"));
                    }
                    self.tail += self.buf.len();
                    if self.tail > MAX_TAIL {
                        return Err(ChunkedError::Malformed("bytes after the final chunk"));
                    }
                    self.buf.clear();
                    return Ok(None);
                }
            }
        }
    }
}

impl Chain {
    /// The signature of the chunk being read is known from its header but verified only
    /// once its data has passed; it waits here meanwhile.
    fn previous_pending(&mut self, sig: String) {
        self.pending = Some(sig);
    }

    fn take_pending(&mut self) -> String {
        self.pending.take().unwrap_or_default()
    }
}

impl<S, E> Stream for ChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, ChunkedError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        loop {
            match this.step() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) if matches!(this.state, State::Done) && this.inner_done => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if this.inner_done {
                // The input ended. A trailer section may end at EOF without its blank line.
                if matches!(this.state, State::Trailer) && this.buf.is_empty() {
                    if let Err(e) = this.finish_trailer() {
                        this.failed = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    continue;
                }
                if matches!(this.state, State::Done) {
                    return Poll::Ready(None);
                }
                this.failed = true;
                return Poll::Ready(Some(Err(ChunkedError::Incomplete)));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(ChunkedError::Inner(e.into()))));
                }
                Poll::Ready(None) => this.inner_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn ctx(seed: &str) -> SigningContext {
        SigningContext {
            key: signing::signing_key(SECRET, "20130524", "us-east-1", "s3"),
            timestamp: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: seed.into(),
        }
    }

    /// Feeds `body` in pieces of `piece` bytes and collects the decoded data and trailers.
    async fn decode(
        body: &[u8],
        piece: usize,
        mode: StreamingMode,
        ctx: Option<SigningContext>,
        len: u64,
    ) -> Result<(Vec<u8>, Vec<(String, String)>), ChunkedError> {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(piece.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut dec = ChunkedDecoder::new(futures_util::stream::iter(pieces), mode, ctx, len);
        let trailers = dec.trailers();
        let mut out = Vec::new();
        while let Some(chunk) = dec.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok((out, trailers.get().cloned().unwrap_or_default()))
    }

    /// The S3 documentation's streaming example: 66560 bytes of 'a' in a 64 KiB and a 1 KiB chunk.
    fn aws_example() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(
            b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
        );
        b.extend(std::iter::repeat_n(b'a', 65536));
        b.extend_from_slice(
            b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
        );
        b.extend(std::iter::repeat_n(b'a', 1024));
        b.extend_from_slice(
            b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        b
    }

    const AWS_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

    #[tokio::test]
    async fn aws_documentation_example_verifies_in_any_split() {
        let body = aws_example();
        assert_eq!(body.len(), 66824, "the documented Content-Length");
        for piece in [1, 7, 100, 65536, body.len()] {
            let (data, _) =
                decode(&body, piece, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 66560).await.expect("verifies");
            assert_eq!(data.len(), 66560);
            assert!(data.iter().all(|&b| b == b'a'));
        }
    }

    /// Without a trailer in the mode, lines after the final chunk would be unsigned values
    /// passing for a checksum.
    #[tokio::test]
    async fn trailers_are_refused_where_the_mode_has_none() {
        let mut body = aws_example();
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        assert!(matches!(
            decode(&body, 4096, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 66560).await,
            Err(ChunkedError::MalformedTrailer(_))
        ));
    }

    #[tokio::test]
    async fn tampering_is_detected() {
        let mut body = aws_example();
        body[100] = b'b';
        assert!(matches!(
            decode(&body, 4096, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 66560).await,
            Err(ChunkedError::SignatureMismatch)
        ));
        let wrong_seed = AWS_SEED.replace('4', "5");
        assert!(matches!(
            decode(&aws_example(), 4096, StreamingMode::SignedPayload, Some(ctx(&wrong_seed)), 66560).await,
            Err(ChunkedError::SignatureMismatch)
        ));
        assert!(matches!(
            decode(&aws_example(), 4096, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 66561).await,
            Err(ChunkedError::Incomplete)
        ));
        let cut = &aws_example()[..60_000];
        assert!(matches!(
            decode(cut, 4096, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 66560).await,
            Err(ChunkedError::Incomplete)
        ));
    }

    /// Builds a signed-trailer body the way the Rust SDK does (verified on the wire).
    fn signed_trailer_body(data: &[u8], chunk: usize, trailer: &[(&str, &str)], seed: &str) -> Vec<u8> {
        let c = ctx(seed);
        let mut prev = seed.to_owned();
        let mut out = Vec::new();
        let sign_chunk = |prev: &str, piece: &[u8]| {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
                c.timestamp,
                c.scope,
                hex::encode(Sha256::digest(piece))
            );
            signing::sign(&c.key, &sts)
        };
        for piece in data.chunks(chunk).chain(std::iter::once(&[][..])) {
            let sig = sign_chunk(&prev, piece);
            out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
            if !piece.is_empty() {
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            prev = sig;
        }
        let canonical: String = trailer.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
            c.timestamp,
            c.scope,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        for (k, v) in trailer {
            out.extend_from_slice(format!("{k}:{v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("x-amz-trailer-signature:{}\r\n\r\n", signing::sign(&c.key, &sts)).as_bytes());
        out
    }

    #[tokio::test]
    async fn signed_trailer_at_every_byte_boundary() {
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let body = signed_trailer_body(&data, 128, &[("x-amz-checksum-crc32", "AAAAAA==")], AWS_SEED);
        for split in 0..body.len() {
            let pieces = vec![body[..split].to_vec(), body[split..].to_vec()];
            let stream =
                futures_util::stream::iter(pieces.into_iter().map(|p| Ok::<_, std::io::Error>(Bytes::from(p))));
            let mut dec = ChunkedDecoder::new(stream, StreamingMode::SignedPayloadTrailer, Some(ctx(AWS_SEED)), 300);
            let trailers = dec.trailers();
            let mut out = Vec::new();
            while let Some(c) = dec.next().await {
                out.extend_from_slice(&c.unwrap_or_else(|e| panic!("split {split}: {e}")));
            }
            assert_eq!(out, data, "split {split}");
            assert_eq!(
                trailers.get().cloned(),
                Some(vec![("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string())])
            );
        }
        let mut forged = body.clone();
        let i = forged.windows(8).position(|w| w == b"AAAAAA==").expect("trailer value");
        forged[i] = b'B';
        assert!(matches!(
            decode(&forged, 50, StreamingMode::SignedPayloadTrailer, Some(ctx(AWS_SEED)), 300).await,
            Err(ChunkedError::SignatureMismatch)
        ));
    }

    #[tokio::test]
    async fn unsigned_trailer_as_boto3_sends_it() {
        let mut body = Vec::new();
        body.extend_from_slice(b"400\r\n");
        body.extend(std::iter::repeat_n(b'z', 1024));
        body.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32:G0l/PA==\r\n\r\n");
        for piece in [1, 3, 1000, body.len()] {
            let (data, trailers) =
                decode(&body, piece, StreamingMode::UnsignedPayloadTrailer, None, 1024).await.expect("decodes");
            assert_eq!(data.len(), 1024);
            assert_eq!(trailers, vec![("x-amz-checksum-crc32".to_string(), "G0l/PA==".to_string())]);
        }
        // No trailer at all, and a missing final blank line, are accepted.
        let (data, trailers) = decode(b"3\r\nabc\r\n0\r\n\r\n", 2, StreamingMode::UnsignedPayloadTrailer, None, 3)
            .await
            .expect("no trailer");
        assert_eq!((data.as_slice(), trailers.len()), (&b"abc"[..], 0));
        decode(
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n",
            2,
            StreamingMode::UnsignedPayloadTrailer,
            None,
            3,
        )
        .await
        .expect("eof ends trailer");
    }

    #[tokio::test]
    #[allow(clippy::type_complexity)]
    async fn malformed_framing() {
        let cases: &[(&[u8], fn(&ChunkedError) -> bool)] = &[
            (b"zz\r\nabc\r\n0\r\n\r\n", |e| matches!(e, ChunkedError::Malformed(_))),
            (b"3\r\nabcXX0\r\n\r\n", |e| matches!(e, ChunkedError::Malformed(_))),
            (b"3\r\nabc\r\n0\r\nno-colon\r\n\r\n", |e| matches!(e, ChunkedError::MalformedTrailer(_))),
            (b"3\r\nabc\r\n0\r\n\r\ngarbage", |e| matches!(e, ChunkedError::Malformed(_))),
            (b"5\r\nabc", |e| matches!(e, ChunkedError::Incomplete)),
            (b"9\r\nabcdefghi\r\n0\r\n\r\n", |e| matches!(e, ChunkedError::Incomplete)),
        ];
        for (body, check) in cases {
            let err = decode(body, 2, StreamingMode::UnsignedPayloadTrailer, None, 3).await.expect_err("malformed");
            assert!(check(&err), "{:?}: {err}", String::from_utf8_lossy(body));
        }
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(matches!(
            decode(&long, 100, StreamingMode::UnsignedPayloadTrailer, None, 3).await,
            Err(ChunkedError::Malformed(_))
        ));
        // Unlimited whitespace after the end would keep an upload open forever.
        let mut padded = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        padded.extend(std::iter::repeat_n(b' ', MAX_TAIL + 1));
        assert!(matches!(
            decode(&padded, 7, StreamingMode::UnsignedPayloadTrailer, None, 3).await,
            Err(ChunkedError::Malformed(_))
        ));
        // Signed framing without signatures.
        assert!(matches!(
            decode(b"3\r\nabc\r\n0\r\n\r\n", 2, StreamingMode::SignedPayload, Some(ctx(AWS_SEED)), 3).await,
            Err(ChunkedError::Malformed(_))
        ));
    }

    mod fuzz {
        use futures_util::FutureExt;
        use proptest::prelude::*;

        use super::*;
        use crate::s3::xml::fuzzing::config;

        /// A body in `mode`: signed chunks (and signed trailer) chained from the example
        /// seed, or plain chunks with an optional unsigned trailer.
        fn encode(data: &[u8], chunk: usize, mode: StreamingMode, trailer: bool) -> Vec<u8> {
            match mode {
                StreamingMode::SignedPayloadTrailer => {
                    signed_trailer_body(data, chunk, &[("x-amz-checksum-crc32", "AAAAAA==")], AWS_SEED)
                }
                StreamingMode::SignedPayload => {
                    let c = ctx(AWS_SEED);
                    let mut prev = AWS_SEED.to_owned();
                    let mut out = Vec::new();
                    for piece in data.chunks(chunk).chain(std::iter::once(&[][..])) {
                        let sts = format!(
                            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
                            c.timestamp,
                            c.scope,
                            hex::encode(Sha256::digest(piece))
                        );
                        let sig = signing::sign(&c.key, &sts);
                        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
                        if !piece.is_empty() {
                            out.extend_from_slice(piece);
                            out.extend_from_slice(b"\r\n");
                        }
                        prev = sig;
                    }
                    out.extend_from_slice(b"\r\n");
                    out
                }
                StreamingMode::UnsignedPayloadTrailer => {
                    let mut out = Vec::new();
                    for piece in data.chunks(chunk) {
                        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n");
                    if trailer {
                        out.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    out
                }
            }
        }

        fn mode() -> impl Strategy<Value = StreamingMode> {
            prop_oneof![
                Just(StreamingMode::SignedPayload),
                Just(StreamingMode::SignedPayloadTrailer),
                Just(StreamingMode::UnsignedPayloadTrailer),
            ]
        }

        /// Feeds `body` cut at `cuts` (fractions of its length) and decodes it at once (the
        /// input is all there, so the decoder never waits).
        fn run(body: &[u8], cuts: &[u16], mode: StreamingMode, len: u64) -> Result<Vec<u8>, ChunkedError> {
            let mut points: Vec<usize> =
                cuts.iter().map(|c| usize::from(*c) * body.len() / usize::from(u16::MAX)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for p in points.into_iter().chain(std::iter::once(body.len())) {
                pieces.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(&body[at..p.max(at)])));
                at = p.max(at);
            }
            let signing = (mode != StreamingMode::UnsignedPayloadTrailer).then(|| ctx(AWS_SEED));
            let mut dec = ChunkedDecoder::new(futures_util::stream::iter(pieces), mode, signing, len);
            let collected = async move {
                let mut out = Vec::new();
                while let Some(c) = dec.next().await {
                    out.extend_from_slice(&c?);
                }
                Ok(out)
            };
            collected.now_or_never().expect("ready input never waits")
        }

        proptest! {
            #![proptest_config(config())]

            /// Any payload, any chunking, any split of the byte stream: the payload back.
            #[test]
            fn fuzz_aws_chunked_round_trip(
                data in proptest::collection::vec(any::<u8>(), 0..2048),
                chunk in 1usize..700,
                cuts in proptest::collection::vec(any::<u16>(), 0..12),
                mode in mode(),
                trailer in any::<bool>(),
            ) {
                let body = encode(&data, chunk, mode, trailer);
                let out = run(&body, &cuts, mode, data.len() as u64);
                prop_assert!(out.as_ref().is_ok_and(|o| *o == data), "{:?}", out.err());
            }

            /// Flipped, dropped, inserted and cut bytes, and wrong declared lengths: an error
            /// or exactly the declared number of bytes, never a panic or more.
            #[test]
            fn fuzz_aws_chunked_mutations(
                data in proptest::collection::vec(any::<u8>(), 0..600),
                chunk in 1usize..300,
                mode in mode(),
                edits in proptest::collection::vec((any::<u16>(), 0u8..4, any::<u8>()), 1..6),
                cuts in proptest::collection::vec(any::<u16>(), 0..6),
                declared_delta in -3i64..3,
            ) {
                let mut body = encode(&data, chunk, mode, true);
                for (at, kind, byte) in edits {
                    if body.is_empty() { break; }
                    let i = usize::from(at) % body.len();
                    match kind {
                        0 => body[i] ^= byte | 1,
                        1 => { body.remove(i); }
                        2 => body.insert(i, byte),
                        _ => body.truncate(i),
                    }
                }
                let declared = (data.len() as i64 + declared_delta).max(0) as u64;
                if let Ok(out) = run(&body, &cuts, mode, declared) {
                    prop_assert_eq!(out.len() as u64, declared);
                }
            }

            /// Chunk-size lines of any text, including sizes near 2^64.
            #[test]
            fn fuzz_aws_chunked_size_lines(line in prop_oneof!["[0-9a-fA-F]{1,20}", "\\PC{0,24}"], declared in any::<u64>()) {
                let body = format!("{line}\r\nabc\r\n0\r\n\r\n");
                let _ = run(body.as_bytes(), &[], StreamingMode::UnsignedPayloadTrailer, declared);
            }
        }
    }
}
