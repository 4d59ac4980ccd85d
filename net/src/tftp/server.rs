//! Read-only TFTP server on the cluster model (bad-inputs §2.4, §4.3).
//!
//! * The listening socket only parses requests: DATA/ACK/ERROR/OACK sent to it are ignored (F2),
//!   garbage is dropped (F1), malformed requests get ERROR 4 and odd option lists ERROR 8 (F3,
//!   F9), write requests ERROR 2 (F8) — every such ERROR rate-limited (§4.8, no amplification).
//! * A valid RRQ gets its own socket (new TID) and task; the file comes from
//!   [`ClusterView::serve_file`] (per requesting phone where the name says so: `ITLSEP<MAC>.tlv`,
//!   `SEP<MAC>.cnf.xml.sgn`, wire-formats §3.7). Unknown names get ERROR 1 "File not found"
//!   (also a missing CTL, phone-behaviour §2.4 step 1).
//! * Traversal (`..`, absolute paths, backslashes, drive letters, control characters) gets
//!   ERROR 2 before the model is asked (F5); there is no file system behind the names at all.
//! * At most `tftp_max_transfers` at once, beyond that ERROR 0 "server busy" (F15); a
//!   retransmitted RRQ from the same `ip:port` does not start a second transfer.
//! * Options (F9): blksize 8..=65464 granted up to 1428, windowsize 1..=65535 up to 16,
//!   timeout 1..=10 s acknowledged as asked (larger: not acknowledged, the default applies),
//!   tsize answered with the real size; invalid values are not acknowledged; duplicates: first
//!   wins; names case-insensitive; unknown options ignored (RFC 2347).
//! * A client ERROR ends the transfer at once (F10); duplicate, old and future ACKs are ignored,
//!   never answered by a resend (F11, Sorcerer's Apprentice); a packet from another TID gets
//!   ERROR 5 and the transfer continues (F12); without progress the window is resent up to
//!   `tftp_retries` times, then the transfer gives up (F13); block numbers roll over (F14).
//! * `netascii` mode is translated (LF → CR LF, CR → CR NUL) on the whole in-memory file, so
//!   block boundaries cannot split a pair (F7); other modes get ERROR 4.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::packet::{self, Packet, PacketError, code};
use crate::limits::Limits;
use crate::util::{Counter, RateLimit, escape};
use crate::view::{ClusterView, FileAnswer, NodeRef};

/// Counters of one TFTP listener.
#[derive(Debug, Default)]
pub struct TftpStats {
    /// Read requests seen.
    pub requests: Counter,
    /// Transfers started (file found).
    pub started: Counter,
    /// Transfers whose last block was acknowledged.
    pub completed: Counter,
    /// Refused with "server busy" (F15).
    pub busy: Counter,
    /// Write requests refused (F8).
    pub write_refused: Counter,
    /// Traversal names refused (F5).
    pub traversal: Counter,
    /// File not found.
    pub not_found: Counter,
    /// Malformed datagrams (F1, F3, F4, F9).
    pub malformed: Counter,
    /// Non-request packets on the listening port (F2), duplicate RRQs (F15).
    pub ignored: Counter,
    /// Transfers ended by a client ERROR (F10).
    pub client_error: Counter,
    /// Transfers given up (F13).
    pub gave_up: Counter,
    /// Packets from unknown TIDs (F12).
    pub unknown_tid: Counter,
    /// Duplicate, old or future ACKs (F11).
    pub odd_acks: Counter,
}

/// Largest RRQ accepted (RFC 2347: a request packet is at most 512 bytes; F4).
const MAX_REQUEST: usize = 512;
/// Largest file name (F4).
const MAX_NAME: usize = 255;

struct Shared {
    node: NodeRef,
    view: Arc<dyn ClusterView>,
    limits: Limits,
    stats: Arc<TftpStats>,
    errors: RateLimit,
    active: Mutex<HashSet<SocketAddr>>,
}

/// Removes a peer from the active set when its transfer ends, whatever the path.
struct Slot {
    shared: Arc<Shared>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.peer);
    }
}

/// Why a name is refused before the model sees it (F5). `None` = acceptable.
pub fn traversal(name: &[u8]) -> Option<&'static str> {
    let Ok(s) = std::str::from_utf8(name) else {
        return Some("not UTF-8");
    };
    if s.len() > MAX_NAME {
        return Some("name too long");
    }
    if s.chars().any(|c| c.is_control()) {
        return Some("control character");
    }
    if s.starts_with('/') || s.starts_with('\\') {
        return Some("absolute path");
    }
    if s.contains('\\') {
        return Some("backslash");
    }
    if s.as_bytes().get(1) == Some(&b':') {
        return Some("drive letter");
    }
    if s.split('/')
        .any(|seg| seg == ".." || seg == "." || seg.is_empty())
    {
        return Some("dot or empty path segment");
    }
    if s.ends_with(' ') || s.ends_with('.') {
        return Some("trailing dot or space");
    }
    None
}

/// The options granted for one transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Block size.
    pub blksize: usize,
    /// Window size.
    pub window: u16,
    /// Retransmit interval.
    pub timeout: Duration,
    /// Options to acknowledge, in request order (empty: no OACK, start with DATA 1).
    pub oack: Vec<(&'static str, String)>,
}

/// Negotiates RFC 2347/2348/2349/7440 options for a file of `size` bytes (F9).
pub fn negotiate(options: &[(&[u8], &[u8])], size: usize, limits: &Limits) -> Negotiated {
    let mut n = Negotiated {
        blksize: 512,
        window: 1,
        timeout: limits.tftp_timeout,
        oack: Vec::new(),
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for (k, v) in options {
        let Ok(k) = std::str::from_utf8(k) else {
            continue;
        };
        let key: &'static str = match k.to_ascii_lowercase().as_str() {
            "blksize" => "blksize",
            "tsize" => "tsize",
            "timeout" => "timeout",
            "windowsize" => "windowsize",
            _ => continue, // unknown: ignored (RFC 2347)
        };
        if seen.contains(&key) {
            continue; // duplicate: first wins
        }
        seen.push(key);
        let Some(val) = packet::number(v) else {
            continue; // invalid: not acknowledged
        };
        match key {
            "blksize" if (8..=65464).contains(&val) => {
                let g = val.min(u64::from(limits.tftp_max_blksize)).max(8);
                n.blksize = usize::try_from(g).unwrap_or(512);
                n.oack.push((key, g.to_string()));
            }
            "windowsize" if (1..=65535).contains(&val) => {
                let g = val.min(u64::from(limits.tftp_max_window)).max(1);
                n.window = u16::try_from(g).unwrap_or(1);
                n.oack.push((key, g.to_string()));
            }
            "timeout" if val >= 1 && val <= limits.tftp_max_timeout.as_secs().min(255) => {
                n.timeout = Duration::from_secs(val);
                n.oack.push((key, val.to_string()));
            }
            "tsize" => n.oack.push((key, size.to_string())),
            _ => {}
        }
    }
    n
}

/// netascii (RFC 764): LF → CR LF, CR → CR NUL.
pub fn to_netascii(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len().saturating_add(b.len() / 16));
    for &c in b {
        match c {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(c),
        }
    }
    out
}

/// Serves TFTP for `node` on `socket` until the task is dropped (dropping it ends every transfer
/// and closes the port).
pub async fn serve(
    socket: UdpSocket,
    node: NodeRef,
    view: Arc<dyn ClusterView>,
    limits: Limits,
    stats: Arc<TftpStats>,
) {
    let local_ip = socket.local_addr().map(|a| a.ip()).ok();
    let shared = Arc::new(Shared {
        node,
        view,
        errors: RateLimit::new(limits.tftp_errors_per_s),
        limits,
        stats,
        active: Mutex::new(HashSet::new()),
    });
    // Sized for the largest datagram, not for a negotiated block size (F4).
    let mut buf = vec![0u8; 65_536];
    let mut transfers = JoinSet::new();
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((len, peer)) = r else { continue };
                let dgram = buf.get(..len).unwrap_or_default();
                if let Some(job) = handle_request(&socket, &shared, dgram, peer).await {
                    let shared = shared.clone();
                    let bind = local_ip.unwrap_or(peer.ip());
                    transfers.spawn(async move {
                        let _slot = Slot { shared: shared.clone(), peer };
                        transfer(&shared, bind, peer, job).await;
                    });
                }
            }
            Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
        }
    }
}

/// An accepted read request.
struct Job {
    name: String,
    netascii: bool,
    options: Vec<(Vec<u8>, Vec<u8>)>,
}

async fn send_error(socket: &UdpSocket, shared: &Shared, peer: SocketAddr, code: u16, msg: &str) {
    if shared.errors.allow() {
        let _ = socket.send_to(&packet::error(code, msg), peer).await;
    }
}

async fn handle_request(
    socket: &UdpSocket,
    shared: &Shared,
    dgram: &[u8],
    peer: SocketAddr,
) -> Option<Job> {
    let stats = &shared.stats;
    let p = match packet::parse(dgram) {
        Ok(p) => p,
        Err(PacketError::Short | PacketError::Opcode(_)) => {
            stats.malformed.inc();
            return None; // F1: drop, never amplify
        }
        Err(PacketError::OddOptions) => {
            stats.malformed.inc();
            send_error(socket, shared, peer, code::OPTION, "malformed option list").await;
            return None;
        }
        Err(e @ PacketError::Malformed(_)) => {
            stats.malformed.inc();
            tracing::debug!(%peer, error = %e, "TFTP malformed request");
            send_error(socket, shared, peer, code::ILLEGAL, "malformed request").await;
            return None;
        }
    };
    let Packet::Request {
        write,
        name,
        mode,
        options,
    } = p
    else {
        stats.ignored.inc();
        return None; // F2
    };
    if write {
        stats.write_refused.inc();
        tracing::info!(%peer, name = %escape(name, 64), "TFTP write request refused (read-only)");
        send_error(socket, shared, peer, code::ACCESS, "read-only server").await;
        return None;
    }
    stats.requests.inc();
    if dgram.len() > MAX_REQUEST {
        stats.malformed.inc();
        send_error(socket, shared, peer, code::ILLEGAL, "request too long").await;
        return None;
    }
    if let Some(why) = traversal(name) {
        stats.traversal.inc();
        tracing::info!(%peer, name = %escape(name, 64), why, "TFTP name refused");
        send_error(socket, shared, peer, code::ACCESS, "access violation").await;
        return None;
    }
    let netascii = if mode.eq_ignore_ascii_case(b"octet") {
        false
    } else if mode.eq_ignore_ascii_case(b"netascii") {
        true
    } else {
        stats.malformed.inc();
        send_error(socket, shared, peer, code::ILLEGAL, "unsupported mode").await;
        return None;
    };
    let busy = {
        let mut active = shared.active.lock().unwrap_or_else(|p| p.into_inner());
        if active.contains(&peer) {
            stats.ignored.inc(); // F15: a retransmitted RRQ does not start a second transfer
            return None;
        }
        let busy = active.len() >= shared.limits.tftp_max_transfers;
        if !busy {
            active.insert(peer);
        }
        busy
    };
    if busy {
        stats.busy.inc();
        send_error(socket, shared, peer, code::UNDEFINED, "server busy").await;
        return None;
    }
    Some(Job {
        name: String::from_utf8_lossy(name).into_owned(),
        netascii,
        options: options
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
    })
}

enum Wait {
    /// The client acknowledged up to this absolute block.
    Acked(u64),
    /// Retransmit interval elapsed.
    Timeout,
    /// End the transfer (client ERROR, socket error, deadline).
    End,
}

async fn transfer(shared: &Shared, bind: std::net::IpAddr, peer: SocketAddr, job: Job) {
    let stats = &shared.stats;
    let limits = &shared.limits;
    let Ok(sock) = UdpSocket::bind(SocketAddr::new(bind, 0)).await else {
        return;
    };
    let file: Bytes = match shared.view.serve_file(shared.node, &job.name, peer) {
        FileAnswer::Found(b) => b,
        FileAnswer::NotFound | FileAnswer::CtlAbsent => {
            stats.not_found.inc();
            tracing::info!(%peer, node = %shared.node, name = %escape(job.name.as_bytes(), 64), "TFTP file not found");
            let _ = sock
                .send_to(&packet::error(code::NOT_FOUND, "File not found"), peer)
                .await;
            return;
        }
        FileAnswer::ServiceDown => return,
        FileAnswer::Failed(e) => {
            tracing::error!(node = %shared.node, name = %escape(job.name.as_bytes(), 64), error = %e, "TFTP: model failed to build the file");
            let _ = sock
                .send_to(&packet::error(code::UNDEFINED, "internal error"), peer)
                .await;
            return;
        }
    };
    let file = if job.netascii {
        Bytes::from(to_netascii(&file))
    } else {
        file
    };
    let opts: Vec<(&[u8], &[u8])> = job
        .options
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let neg = negotiate(&opts, file.len(), limits);
    stats.started.inc();
    tracing::info!(%peer, node = %shared.node, name = %escape(job.name.as_bytes(), 64),
        size = file.len(), blksize = neg.blksize, window = neg.window, "TFTP transfer");
    let end = Instant::now() + limits.tftp_transfer;
    let mut buf = vec![0u8; 2048];
    let blk = neg.blksize;
    let total: u64 = (file.len() / blk) as u64 + 1;
    let mut acked: u64 = 0;
    let mut retries = 0u32;

    if !neg.oack.is_empty() {
        let oack = packet::oack(&neg.oack);
        loop {
            if sock.send_to(&oack, peer).await.is_err() {
                return;
            }
            match wait_ack(&sock, shared, peer, &mut buf, 0, 0, neg.timeout, end).await {
                Wait::Acked(_) => break,
                Wait::End => return,
                Wait::Timeout => {
                    retries += 1;
                    if retries > limits.tftp_retries {
                        stats.gave_up.inc();
                        tracing::info!(%peer, "TFTP gave up waiting for the OACK acknowledgement");
                        return;
                    }
                }
            }
        }
        retries = 0;
    }
    while acked < total {
        let last = (acked + u64::from(neg.window)).min(total);
        for b in acked + 1..=last {
            let from = usize::try_from(b - 1)
                .unwrap_or(usize::MAX)
                .saturating_mul(blk);
            let to = from.saturating_add(blk).min(file.len());
            let chunk = file.get(from..to).unwrap_or_default();
            // Block numbers roll over to 0 after 65535 (F14).
            let pkt = packet::data((b & 0xffff) as u16, chunk);
            if sock.send_to(&pkt, peer).await.is_err() {
                return;
            }
        }
        match wait_ack(&sock, shared, peer, &mut buf, acked, last, neg.timeout, end).await {
            Wait::Acked(n) => {
                acked = n;
                retries = 0;
            }
            Wait::End => return,
            Wait::Timeout => {
                retries += 1;
                if retries > limits.tftp_retries {
                    stats.gave_up.inc();
                    tracing::info!(%peer, acked, total, "TFTP client vanished: gave up");
                    return;
                }
            }
        }
    }
    stats.completed.inc();
}

/// Waits for an ACK that moves past `acked` (up to `last`), ignoring everything else.
#[allow(clippy::too_many_arguments)] // one call site per phase; a struct would only rename them
async fn wait_ack(
    sock: &UdpSocket,
    shared: &Shared,
    peer: SocketAddr,
    buf: &mut [u8],
    acked: u64,
    last: u64,
    interval: Duration,
    end: Instant,
) -> Wait {
    let stats = &shared.stats;
    let deadline = (Instant::now() + interval).min(end);
    loop {
        let r = match timeout_at(deadline, sock.recv_from(buf)).await {
            Err(_) if Instant::now() >= end => {
                stats.gave_up.inc();
                return Wait::End;
            }
            Err(_) => return Wait::Timeout,
            Ok(Err(_)) => return Wait::End, // a socket error ends only this transfer (F13)
            Ok(Ok(r)) => r,
        };
        let (len, from) = r;
        let dgram = buf.get(..len).unwrap_or_default();
        if from != peer {
            stats.unknown_tid.inc();
            if shared.errors.allow() {
                let _ = sock
                    .send_to(
                        &packet::error(code::UNKNOWN_TID, "unknown transfer ID"),
                        from,
                    )
                    .await;
            }
            continue;
        }
        match packet::parse(dgram) {
            Ok(Packet::Ack { block }) => {
                if last == 0 {
                    if block == 0 {
                        return Wait::Acked(0); // OACK acknowledged
                    }
                    stats.odd_acks.inc();
                    continue;
                }
                let off = u64::from(block.wrapping_sub((acked & 0xffff) as u16));
                if off >= 1 && off <= last - acked {
                    return Wait::Acked(acked + off);
                }
                stats.odd_acks.inc(); // duplicate, old or future: never resend on it (F11)
            }
            Ok(Packet::Error { code, message }) => {
                stats.client_error.inc();
                tracing::info!(%peer, code, message = %escape(message, 128), "TFTP client ERROR: transfer ended");
                return Wait::End;
            }
            _ => stats.ignored.inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal_names() {
        for bad in [
            &b"../x"[..],
            b"..\\x",
            b"/etc/passwd",
            b"//etc/passwd",
            b"a/../../x",
            b"C:\\x",
            b"\\\\srv\\share",
            b"ITLFile.tlv.",
            b"ITLFile.tlv ",
            b"a\nb",
            b"\xff",
        ] {
            assert!(traversal(bad).is_some(), "{bad:?}");
        }
        for ok in [
            &b"ITLFile.tlv"[..],
            b"SEP001122334455.cnf.xml.sgn",
            b"%2e%2e/x",
            b"Desktops/320x196x4/List.xml",
        ] {
            assert_eq!(traversal(ok), None, "{ok:?}");
        }
    }

    #[test]
    fn negotiates_and_clamps_options() {
        let l = Limits::default();
        let n = negotiate(
            &[
                (b"BLKSIZE", b"65464"),
                (b"blksize", b"512"),
                (b"tsize", b"123"),
                (b"windowsize", b"65535"),
                (b"timeout", b"256"),
                (b"utimeout", b"1"),
            ],
            10_000,
            &l,
        );
        assert_eq!(n.blksize, 1428);
        assert_eq!(n.window, 16);
        assert_eq!(n.timeout, l.tftp_timeout);
        assert_eq!(
            n.oack,
            vec![
                ("blksize", "1428".to_string()),
                ("tsize", "10000".to_string()),
                ("windowsize", "16".to_string())
            ]
        );
        for bad in [
            &b"0"[..],
            b"7",
            b"65465",
            b"99999999999",
            b"-1",
            b"+512",
            b"0512",
            b"512 ",
            b"abc",
        ] {
            let n = negotiate(&[(b"blksize", bad)], 1, &l);
            assert!(n.oack.is_empty(), "{bad:?}");
            assert_eq!(n.blksize, 512);
        }
        let n = negotiate(&[(b"timeout", b"0"), (b"windowsize", b"0")], 1, &l);
        assert!(n.oack.is_empty());
    }

    #[test]
    fn netascii_translation() {
        assert_eq!(to_netascii(b"a\nb\rc"), b"a\r\nb\r\0c");
    }
}
