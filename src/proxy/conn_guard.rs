//! Deadlines on client connections: a request's header block must arrive
//! within `limits.header_timeout`, and an idle keep-alive connection is
//! closed after `limits.idle_timeout`.
//!
//! Why: pingora 0.9 bounds each single read of a request header (60 s), not
//! the whole header, and waits for the next request on a kept-alive HTTP/1.1
//! connection without any bound. A client sending one header byte per
//! second (slowloris), or many clients opening connections and going quiet,
//! would hold a connection and its task forever. pingora has no hook between
//! accepting a connection and reading a request, so the bound lives in the
//! transport: [`GuardedApp`] wraps every accepted stream in a
//! [`DeadlineStream`] that watches the bytes going by.
//!
//! The stream is in one of four phases. *Headers*: reads race the header
//! deadline; the phase ends at the blank line closing the header block.
//! *Busy*: the request is being handled (bodies are not bounded here). The
//! first response bytes (`HTTP/1.x NNN`, not a 1xx) make it *Idle*: the next
//! read starts the next request, bounded by the idle deadline until its first
//! byte arrives (then *Headers* again). A `101 Switching Protocols` response
//! makes it a *Tunnel* (WebSocket), never bounded again.
//!
//! An HTTP/2 connection (only when TLS ALPN chose `h2`; h2c is never
//! offered) is followed differently: its bytes are frames, not HTTP/1 text,
//! so nothing in them is read as a header block or a status line. Only the
//! 24-byte client preface must arrive within `limits.header_timeout`
//! (*H2Preface*); after it (*H2*) pingora's HTTP/2 idle timeout (set to
//! `limits.idle_timeout`, see `server::http2_limits`) closes a connection
//! with no stream in flight, and h2's own limits bound the frames.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The two bounds, from `limits:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnTimeouts {
    /// From the first byte of a request (or the connection's start) to the
    /// end of its header block.
    pub header: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Headers,
    Busy,
    Idle,
    Tunnel,
    /// HTTP/2: the client preface has not fully arrived yet.
    H2Preface,
    /// HTTP/2 after the preface: not bounded here.
    H2,
}

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE_LEN: usize = 24;

/// An accepted client stream with header and idle deadlines.
pub struct DeadlineStream {
    inner: Stream,
    timeouts: ConnTimeouts,
    tracker: PhaseTracker,
    /// Armed in the Headers and Idle phases.
    deadline: Pin<Box<Sleep>>,
}

/// The phase of a connection, followed from the bytes going by.
#[derive(Debug)]
struct PhaseTracker {
    phase: Phase,
    /// The last bytes read in the Headers phase (to find the blank line
    /// even when it is split across reads).
    tail: [u8; 3],
    /// HTTP/2 preface bytes still to come (H2Preface phase).
    preface_left: usize,
}

impl Default for PhaseTracker {
    fn default() -> Self {
        Self {
            phase: Phase::Headers,
            tail: [0; 3],
            preface_left: 0,
        }
    }
}

impl std::fmt::Debug for DeadlineStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineStream")
            .field("inner", &self.inner)
            .field("phase", &self.tracker.phase)
            .finish()
    }
}

impl DeadlineStream {
    /// Wraps a freshly accepted stream: its first request's header block
    /// must be complete within `timeouts.header`. Needs a tokio runtime.
    pub fn new(inner: Stream, timeouts: ConnTimeouts) -> Self {
        Self {
            inner,
            timeouts,
            tracker: PhaseTracker::default(),
            deadline: Box::pin(tokio::time::sleep(timeouts.header)),
        }
    }

    /// Wraps a freshly accepted stream on which TLS ALPN chose `h2`: the
    /// client preface must arrive within `timeouts.header`.
    pub fn new_h2(inner: Stream, timeouts: ConnTimeouts) -> Self {
        let mut stream = Self::new(inner, timeouts);
        stream.tracker.phase = Phase::H2Preface;
        stream.tracker.preface_left = H2_PREFACE_LEN;
        stream
    }

    fn arm(&mut self, phase: Phase, after: Duration) {
        self.tracker.phase = phase;
        self.tracker.tail = [0; 3];
        // The config bounds every timeout; saturate anyway rather than
        // panic on an `Instant` overflow.
        let now = Instant::now();
        let deadline = now
            .checked_add(after)
            .unwrap_or_else(|| now + Duration::from_secs(86400 * 365));
        self.deadline.as_mut().reset(deadline);
    }
}

impl PhaseTracker {
    /// Follows `bytes` read in the Headers phase; true once they end the
    /// header block (an empty line, CRLF or bare LF as httparse accepts).
    ///
    /// Only a line feed can end the block, so this jumps from one to the
    /// next with `memchr` and looks back at most two bytes (into `tail`, the
    /// last three bytes of earlier reads, when the feed starts this read).
    /// A byte-by-byte scan cost ~7 instructions per header byte on every
    /// request; a browser sends a kilobyte or more.
    fn header_block_ends(&mut self, bytes: &[u8]) -> bool {
        let tail = self.tail;
        let byte_before = |at: usize, back: usize| match at.checked_sub(back) {
            Some(index) => bytes.get(index).copied().unwrap_or(0),
            // `back - at` is 1 or 2 here: the last or second-to-last byte seen.
            None => tail.get(3 + at - back).copied().unwrap_or(0),
        };
        let ends = memchr::memchr_iter(b'\n', bytes).any(|at| {
            let (b, c) = (byte_before(at, 2), byte_before(at, 1));
            c == b'\n' || (c == b'\r' && b == b'\n')
        });
        if !ends {
            for &byte in bytes
                .get(bytes.len().saturating_sub(3)..)
                .unwrap_or_default()
            {
                let [_, b, c] = self.tail;
                self.tail = [b, c, byte];
            }
        }
        ends
    }

    /// Watches what the gateway writes: the start of a response ends the
    /// request (or turns the connection into a tunnel).
    fn saw_write(&mut self, bytes: &[u8]) {
        if self.phase != Phase::Busy {
            return;
        }
        let Some(status) = response_status(bytes) else {
            return;
        };
        match status {
            101 => self.phase = Phase::Tunnel,
            100..=199 => {}
            _ => self.phase = Phase::Idle,
        }
    }
}

/// The status of an HTTP/1 response head at the start of `bytes`.
fn response_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| bytes.strip_prefix(b"HTTP/1.0 "))?;
    let digits = rest.get(..3)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_string())
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let filled_before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        match result {
            Poll::Ready(Ok(())) => {
                let new_len = buf.filled().len() - filled_before;
                if new_len == 0 {
                    return Poll::Ready(Ok(()));
                }
                if this.tracker.phase == Phase::H2Preface {
                    this.tracker.preface_left = this.tracker.preface_left.saturating_sub(new_len);
                    if this.tracker.preface_left == 0 {
                        this.tracker.phase = Phase::H2;
                    }
                    return Poll::Ready(Ok(()));
                }
                if this.tracker.phase == Phase::Idle {
                    // The next request's first bytes.
                    let header = this.timeouts.header;
                    this.arm(Phase::Headers, header);
                }
                if this.tracker.phase == Phase::Headers {
                    let filled = buf.filled();
                    let new_bytes = filled.get(filled_before..).unwrap_or_default();
                    if this.tracker.header_block_ends(new_bytes) {
                        this.tracker.phase = Phase::Busy;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.tracker.phase {
                Phase::Headers | Phase::Idle | Phase::H2Preface => {
                    match this.deadline.as_mut().poll(cx) {
                        Poll::Ready(()) if this.tracker.phase == Phase::Idle => {
                            // An idle keep-alive connection: end it like a
                            // client that closed (pingora closes quietly).
                            Poll::Ready(Ok(()))
                        }
                        Poll::Ready(()) => Poll::Ready(Err(timed_out(
                            "request header not complete within limits.header_timeout",
                        ))),
                        Poll::Pending => Poll::Pending,
                    }
                }
                Phase::Busy | Phase::Tunnel | Phase::H2 => Poll::Pending,
            },
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result
            && written > 0
        {
            this.tracker.saw_write(buf);
            if this.tracker.phase == Phase::Idle {
                let idle = this.timeouts.idle;
                this.arm(Phase::Idle, idle);
            }
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, socket_digest: SocketDigest) {
        self.inner.set_socket_digest(socket_digest)
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// A pingora application whose accepted streams get [`DeadlineStream`]s.
pub struct GuardedApp<A> {
    inner: Arc<A>,
    timeouts: ConnTimeouts,
}

impl<A> GuardedApp<A> {
    pub fn new(inner: A, timeouts: ConnTimeouts) -> Self {
        Self {
            inner: Arc::new(inner),
            timeouts,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A stream handed back for reuse is already guarded.
        let stream: Stream = if stream.as_any().is::<DeadlineStream>() {
            stream
        } else if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            Box::new(DeadlineStream::new_h2(stream, self.timeouts))
        } else {
            Box::new(DeadlineStream::new(stream, self.timeouts))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> PhaseTracker {
        PhaseTracker::default()
    }

    #[test]
    fn the_blank_line_ends_the_header_block_even_split() {
        let mut s = stream();
        assert!(!s.header_block_ends(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!s.header_block_ends(b"\r"));
        assert!(s.header_block_ends(b"\n"));
        let mut s = stream();
        assert!(s.header_block_ends(b"GET / HTTP/1.1\nHost: a\n\n"));
        let mut s = stream();
        assert!(!s.header_block_ends(b"GET / HTTP/1.1\r\nX: \r\r\n"));
    }

    /// The definition: the block ends at the first LF preceded by LF or by
    /// CRLF, counting bytes of earlier reads.
    fn ends_bytewise(seen: &[u8]) -> Option<usize> {
        (0..seen.len()).find(|&i| {
            seen[i] == b'\n'
                && ((i >= 1 && seen[i - 1] == b'\n')
                    || (i >= 2 && seen[i - 1] == b'\r' && seen[i - 2] == b'\n'))
        })
    }

    #[test]
    fn every_short_input_split_every_way_agrees_with_the_definition() {
        // All strings of up to 7 bytes over {CR, LF, 'a'}, each cut into
        // two or three reads at every pair of points.
        let alphabet = [b'\r', b'\n', b'a'];
        let mut checked = 0;
        for len in 0..=7u32 {
            for code in 0..3usize.pow(len) {
                let mut input = Vec::new();
                let mut rest = code;
                for _ in 0..len {
                    input.push(alphabet[rest % 3]);
                    rest /= 3;
                }
                let expected = ends_bytewise(&input);
                for cut1 in 0..=input.len() {
                    for cut2 in cut1..=input.len() {
                        let reads = [(0, cut1), (cut1, cut2), (cut2, input.len())];
                        // The read that holds the ending LF.
                        let expected_read = expected
                            .and_then(|end| reads.iter().position(|&(a, b)| a <= end && end < b));
                        let mut s = stream();
                        let found_read = reads
                            .iter()
                            .position(|&(a, b)| s.header_block_ends(&input[a..b]));
                        assert_eq!(found_read, expected_read, "{input:?} cut at {cut1},{cut2}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn responses_end_requests_and_101_makes_a_tunnel() {
        assert_eq!(response_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(response_status(b"HTTP/1.0 101 x"), Some(101));
        assert_eq!(response_status(b"HTTP/2 200"), None);
        assert_eq!(response_status(b"HTTP/1.1 2"), None);
        let mut s = stream();
        s.phase = Phase::Busy;
        s.saw_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(s.phase, Phase::Busy);
        s.saw_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(s.phase, Phase::Idle);
        let mut s = stream();
        s.phase = Phase::Busy;
        s.saw_write(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(s.phase, Phase::Tunnel);
        s.saw_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(s.phase, Phase::Tunnel, "a tunnel stays a tunnel");
    }

    #[test]
    fn http2_bytes_are_never_read_as_http1() {
        // A DATA frame written on its own may start with an HTTP/1 status
        // line (an upstream body quoting one): an h2 connection must not
        // become Idle, which would arm HTTP/1 deadlines on frame bytes.
        for phase in [Phase::H2Preface, Phase::H2] {
            let mut s = stream();
            s.phase = phase;
            s.saw_write(b"HTTP/1.1 200 OK\r\n");
            assert_eq!(s.phase, phase);
        }
    }
}
