//! Small helpers: log escaping, counters, a rate limiter, accept-error classification.

use std::fmt::Write as _;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Peer bytes for a log line: printable ASCII kept, everything else `\xNN`, at most `max` input
/// bytes (C6: no log injection).
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut s = String::with_capacity(bytes.len().min(max));
    for b in bytes.iter().take(max) {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(*b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// +1.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// At most `per_s` events per second (a fixed one-second window; enough to stop amplification).
#[derive(Debug)]
pub struct RateLimit {
    per_s: u32,
    state: Mutex<(Instant, u32)>,
}

impl RateLimit {
    /// New limiter.
    pub fn new(per_s: u32) -> Self {
        Self {
            per_s,
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// True when one more event is allowed now.
    pub fn allow(&self) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(g.0) >= Duration::from_secs(1) {
            *g = (now, 0);
        }
        if g.1 < self.per_s {
            g.1 += 1;
            true
        } else {
            false
        }
    }
}

/// Accept errors after which the loop must pause instead of spinning (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM: bad-inputs V15 / R7). Other accept errors concern one connection only.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
}

/// Pause after a resource-exhaustion accept error.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_hides_control_bytes_and_truncates() {
        assert_eq!(escape(b"a\nb\x1b[31m", 64), "a\\x0ab\\x1b[31m");
        assert_eq!(escape(b"abcdef", 3), "abc…");
        assert_eq!(escape(&[0xff, b'\\'], 8), "\\xff\\\\");
    }
}
