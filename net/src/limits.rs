//! Caps and deadlines shared by the listeners (bad-inputs §2.3–2.5 and §4.5–4.6).

use std::time::Duration;

/// Every cap and deadline a listener enforces. All deadlines are absolute: a peer that trickles
/// bytes does not extend them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// TLS handshake deadline (bad-inputs V2, §4.6: 10 s).
    pub handshake: Duration,
    /// Deadline for one TVS request frame, counted from the moment the server starts waiting for
    /// it (so it is also the idle timeout between requests; §4.6: 10 s).
    pub request: Duration,
    /// Deadline for writing one answer (V12: 10 s).
    pub write: Duration,
    /// Whole TCP connection lifetime (TVS and HTTP), however busy.
    pub connection: Duration,
    /// Largest TVS frame, header included (§4.5: 16 KiB default, hard 64 KiB).
    pub tvs_max_frame: usize,
    /// TVS requests answered on one connection before it is closed.
    pub tvs_max_requests: u32,
    /// Concurrent TCP connections per listener (V15).
    pub max_connections: usize,
    /// HTTP header read timeout (H5).
    pub http_header: Duration,
    /// HTTP read buffer cap (H1, hyper `max_buf_size`).
    pub http_max_buf: usize,
    /// Concurrent TFTP transfers per listener (F15).
    pub tftp_max_transfers: usize,
    /// Largest blksize granted (F9: 1428).
    pub tftp_max_blksize: u16,
    /// Largest windowsize granted (F9: 16).
    pub tftp_max_window: u16,
    /// Retransmit interval when the client asks for none (RFC 2349 default used by tftp-hpa: 1 s).
    pub tftp_timeout: Duration,
    /// Client-requested timeouts are clamped to [1 s, this] (F9: 10 s).
    pub tftp_max_timeout: Duration,
    /// Retransmissions without progress before giving up (F13: R = 5, R ≤ 8).
    pub tftp_retries: u32,
    /// Absolute lifetime of one transfer.
    pub tftp_transfer: Duration,
    /// ERROR packets sent to strangers (busy, unknown TID, malformed) per second (§4.8).
    pub tftp_errors_per_s: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(10),
            write: Duration::from_secs(10),
            connection: Duration::from_secs(60),
            tvs_max_frame: 16 * 1024,
            tvs_max_requests: 64,
            max_connections: 512,
            http_header: Duration::from_secs(10),
            http_max_buf: 16 * 1024,
            tftp_max_transfers: 1024,
            tftp_max_blksize: 1428,
            tftp_max_window: 16,
            tftp_timeout: Duration::from_secs(1),
            tftp_max_timeout: Duration::from_secs(10),
            tftp_retries: 5,
            tftp_transfer: Duration::from_secs(120),
            tftp_errors_per_s: 200,
        }
    }
}
