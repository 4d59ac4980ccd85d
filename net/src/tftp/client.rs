//! A small TFTP client (RRQ only), for tests, benchmarks and the live phone driver.
//!
//! Sends the RRQ with the requested options, takes the first reply's source port as the server
//! TID (RFC 1350 §4), acknowledges an OACK with ACK 0, acknowledges every `windowsize` blocks
//! (RFC 7440: on a gap, the last in-order block), retransmits its last packet on silence, and
//! stops at the first block shorter than blksize. Packets from other TIDs get ERROR 5.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::packet::{self, Packet, code};

/// What to ask for.
#[derive(Clone, Debug)]
pub struct TftpOptions {
    /// `blksize` option (None: not sent, 512).
    pub blksize: Option<u16>,
    /// Send `tsize 0` and report the server's answer.
    pub tsize: bool,
    /// `windowsize` option.
    pub windowsize: Option<u16>,
    /// `timeout` option (seconds), sent as asked.
    pub timeout_opt: Option<u8>,
    /// Mode (`octet`).
    pub mode: String,
    /// Retransmit interval.
    pub retransmit: Duration,
    /// Retransmissions without progress before giving up.
    pub retries: u32,
    /// Absolute deadline for the whole transfer.
    pub deadline: Duration,
    /// Largest file accepted (78xx: 2048 KB, phone-behaviour §2.3).
    pub max_size: usize,
}

impl Default for TftpOptions {
    fn default() -> Self {
        Self {
            blksize: None,
            tsize: false,
            windowsize: None,
            timeout_opt: None,
            mode: "octet".into(),
            retransmit: Duration::from_millis(500),
            retries: 5,
            deadline: Duration::from_secs(30),
            max_size: 2048 * 1024,
        }
    }
}

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TftpGet {
    /// The bytes.
    pub data: Vec<u8>,
    /// tsize from the OACK.
    pub tsize: Option<u64>,
    /// Block size used.
    pub blksize: usize,
    /// Window size used.
    pub windowsize: u16,
    /// Whether the server sent an OACK.
    pub oack: bool,
}

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TftpClientError {
    /// The server sent ERROR.
    #[error("TFTP ERROR {code}: {message}")]
    Error {
        /// Code (1 = file not found, 2 = access violation, 0 + "server busy" …).
        code: u16,
        /// Message (lossy UTF-8).
        message: String,
    },
    /// No answer within the retries or the deadline.
    #[error("TFTP timeout")]
    Timeout,
    /// Socket error.
    #[error("TFTP i/o: {0}")]
    Io(String),
    /// The server broke the protocol.
    #[error("TFTP protocol: {0}")]
    Protocol(String),
    /// The file exceeds `max_size`.
    #[error("file larger than {0} bytes")]
    TooLarge(usize),
}

fn io(e: std::io::Error) -> TftpClientError {
    TftpClientError::Io(e.to_string())
}

/// Downloads `name` from `server`.
pub async fn get(
    server: SocketAddr,
    name: &str,
    opts: &TftpOptions,
) -> Result<TftpGet, TftpClientError> {
    let bind_ip: IpAddr = match server.ip() {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let sock = UdpSocket::bind(SocketAddr::new(bind_ip, 0))
        .await
        .map_err(io)?;
    let mut o: Vec<(&str, String)> = Vec::new();
    if let Some(b) = opts.blksize {
        o.push(("blksize", b.to_string()));
    }
    if opts.tsize {
        o.push(("tsize", "0".into()));
    }
    if let Some(t) = opts.timeout_opt {
        o.push(("timeout", t.to_string()));
    }
    if let Some(w) = opts.windowsize {
        o.push(("windowsize", w.to_string()));
    }
    let rrq = packet::request(false, name, &opts.mode, &o);
    let end = Instant::now() + opts.deadline;
    let mut out = TftpGet {
        data: Vec::new(),
        tsize: None,
        blksize: 512,
        windowsize: 1,
        oack: false,
    };
    let mut buf = vec![0u8; 65_536];
    let mut last_sent: Vec<u8> = rrq.clone();
    let mut dest = server;
    let mut tid: Option<SocketAddr> = None;
    let mut expect: u16 = 1; // next DATA block
    let mut in_window: u16 = 0;
    let mut retries = 0u32;
    sock.send_to(&rrq, server).await.map_err(io)?;
    loop {
        let deadline = (Instant::now() + opts.retransmit).min(end);
        let (len, from) = match timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Err(_) => {
                if Instant::now() >= end {
                    return Err(TftpClientError::Timeout);
                }
                retries += 1;
                if retries > opts.retries {
                    return Err(TftpClientError::Timeout);
                }
                sock.send_to(&last_sent, dest).await.map_err(io)?;
                continue;
            }
            Ok(r) => r.map_err(io)?,
        };
        match tid {
            None if from.ip() == server.ip() => {
                tid = Some(from);
                dest = from;
            }
            Some(t) if t == from => {}
            _ => {
                let _ = sock
                    .send_to(
                        &packet::error(code::UNKNOWN_TID, "unknown transfer ID"),
                        from,
                    )
                    .await;
                continue;
            }
        }
        let dgram = buf.get(..len).unwrap_or_default();
        match packet::parse(dgram) {
            Ok(Packet::Error { code, message }) => {
                return Err(TftpClientError::Error {
                    code,
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            Ok(Packet::Oack { options }) if expect == 1 && out.data.is_empty() && !out.oack => {
                out.oack = true;
                for (k, v) in options {
                    let v = packet::number(v);
                    match k.to_ascii_lowercase().as_slice() {
                        b"blksize" => {
                            out.blksize = v
                                .and_then(|v| usize::try_from(v).ok())
                                .filter(|v| (8..=65464).contains(v))
                                .ok_or_else(|| TftpClientError::Protocol("bad blksize".into()))?
                        }
                        b"tsize" => out.tsize = v,
                        b"windowsize" => {
                            out.windowsize = v
                                .and_then(|v| u16::try_from(v).ok())
                                .filter(|v| *v >= 1)
                                .ok_or_else(|| TftpClientError::Protocol("bad windowsize".into()))?
                        }
                        _ => {}
                    }
                }
                if out.tsize.is_some_and(|t| t > opts.max_size as u64) {
                    let _ = sock
                        .send_to(&packet::error(code::OPTION, "file too large"), dest)
                        .await;
                    return Err(TftpClientError::TooLarge(opts.max_size));
                }
                last_sent = packet::ack(0).to_vec();
                sock.send_to(&last_sent, dest).await.map_err(io)?;
                retries = 0;
            }
            Ok(Packet::Data { block, data }) => {
                if block != expect {
                    // Gap or duplicate: acknowledge the last in-order block (RFC 7440 §4).
                    last_sent = packet::ack(expect.wrapping_sub(1)).to_vec();
                    sock.send_to(&last_sent, dest).await.map_err(io)?;
                    in_window = 0;
                    continue;
                }
                if data.len() > out.blksize {
                    return Err(TftpClientError::Protocol("DATA longer than blksize".into()));
                }
                if out.data.len().saturating_add(data.len()) > opts.max_size {
                    let _ = sock
                        .send_to(&packet::error(code::UNDEFINED, "file too large"), dest)
                        .await;
                    return Err(TftpClientError::TooLarge(opts.max_size));
                }
                out.data.extend_from_slice(data);
                retries = 0;
                let done = data.len() < out.blksize;
                in_window += 1;
                if done || in_window >= out.windowsize {
                    last_sent = packet::ack(block).to_vec();
                    sock.send_to(&last_sent, dest).await.map_err(io)?;
                    in_window = 0;
                }
                expect = expect.wrapping_add(1);
                if done {
                    return Ok(out);
                }
            }
            _ => {} // ignore anything else
        }
    }
}
