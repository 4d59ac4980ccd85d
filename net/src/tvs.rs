//! TVS over TLS (TCP 2445): framing only; answers come from [`ClusterView::tvs_answer`].
//!
//! Protocol (wire-formats §6, phone-behaviour §4.4, E18): a 10-byte header read first (so a
//! frame longer than the cap is refused before its body is read, bad-inputs V5), then the body;
//! commands 1 (Verify → 2) and 3 (Query → 4); the session id is echoed. The reference closes
//! after one answer (wire-formats §6.1); issue 4 asks for one or more requests per connection,
//! so the connection stays open for further requests with the same session id (a changed id
//! closes it, V10) until the idle/request deadline, the request cap or EOF.
//!
//! Any bad frame (wrong protocol id or version, other commands, length past the cap, truncated,
//! duplicate or malformed elements: V4–V9) closes that connection with one escaped log line and
//! no answer (the framing cannot be trusted). TLS: E19 (client certificate asked, not required).

use std::net::SocketAddr;
use std::sync::Arc;

use itlsim_wire::tvs::{FrameHeader, HEADER_LEN, Message, Request, TvsError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::limits::Limits;
use crate::util::{ACCEPT_BACKOFF, Counter, escape, is_resource_exhaustion};
use crate::view::{ClusterView, NodeRef};

/// Counters of one TVS listener (bad-inputs C6).
#[derive(Debug, Default)]
pub struct TvsStats {
    /// TCP connections accepted.
    pub accepted: Counter,
    /// Connections dropped at once because the cap was reached (V15).
    pub refused_cap: Counter,
    /// Accept errors (EMFILE …) survived.
    pub accept_errors: Counter,
    /// TLS handshakes that failed or timed out (V1, V2).
    pub handshake_failed: Counter,
    /// Frames refused (V4–V10).
    pub bad_frame: Counter,
    /// Connections closed at a read/write deadline.
    pub timed_out: Counter,
    /// Requests answered.
    pub answered: Counter,
    /// Requests not answered because TVS stopped in the model.
    pub not_running: Counter,
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("{0}")]
    Tvs(#[from] TvsError),
    #[error("frame of {len} bytes exceeds the cap of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed inside a frame ({have} of {need} bytes)")]
    Truncated { have: usize, need: usize },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame: `Ok(None)` on a clean EOF before the first byte.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max_frame: usize,
) -> Result<Option<(Message, Vec<u8>)>, FrameError> {
    let mut head = [0u8; HEADER_LEN];
    let mut have = 0;
    while have < HEADER_LEN {
        let n = r.read(head.get_mut(have..).unwrap_or_default()).await?;
        if n == 0 {
            if have == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                have,
                need: HEADER_LEN,
            });
        }
        have += n;
    }
    let h = FrameHeader::decode(&head)?;
    let len = HEADER_LEN.saturating_add(h.body_len);
    if len > max_frame {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame,
        });
    }
    let mut body = vec![0u8; h.body_len];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated {
                have: HEADER_LEN,
                need: len,
            }
        } else {
            FrameError::Io(e)
        }
    })?;
    let msg = Message::decode_body(h, &body)?;
    let mut raw = head.to_vec();
    raw.extend_from_slice(&body);
    Ok(Some((msg, raw)))
}

/// Reads one frame from a client-side stream (also used by [`crate::clients`]).
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    max_frame: usize,
) -> Result<Option<Message>, String> {
    read_frame(r, max_frame)
        .await
        .map(|o| o.map(|(m, _)| m))
        .map_err(|e| e.to_string())
}

/// Serves TVS for `node` on `listener` until the task is dropped (dropping it closes the port
/// and every connection: a stopped TVS service refuses connections).
pub async fn serve(
    listener: TcpListener,
    node: NodeRef,
    view: Arc<dyn ClusterView>,
    tls: Arc<rustls::ServerConfig>,
    limits: Limits,
    stats: Arc<TvsStats>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    stats.accepted.inc();
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        stats.refused_cap.inc();
                        tracing::debug!(%peer, "TVS connection cap reached: dropped");
                        drop(stream);
                        continue;
                    };
                    let (view, acceptor, limits, stats) =
                        (view.clone(), acceptor.clone(), limits.clone(), stats.clone());
                    conns.spawn(async move {
                        connection(stream, peer, node, view, acceptor, &limits, &stats).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    stats.accept_errors.inc();
                    if is_resource_exhaustion(&e) {
                        tracing::warn!(error = %e, "TVS accept: out of resources, backing off");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    node: NodeRef,
    view: Arc<dyn ClusterView>,
    acceptor: TlsAcceptor,
    limits: &Limits,
    stats: &TvsStats,
) {
    let start = Instant::now();
    let end = start + limits.connection;
    let _ = stream.set_nodelay(true);
    let mut tls = match timeout_at(start + limits.handshake, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            stats.handshake_failed.inc();
            tracing::debug!(%peer, error = %escape(e.to_string().as_bytes(), 200), "TVS TLS handshake failed");
            return;
        }
        Err(_) => {
            stats.handshake_failed.inc();
            tracing::debug!(%peer, "TVS TLS handshake deadline");
            return;
        }
    };
    let mut session: Option<u32> = None;
    for _ in 0..limits.tvs_max_requests {
        let deadline = (Instant::now() + limits.request).min(end);
        let (msg, raw) = match timeout_at(deadline, read_frame(&mut tls, limits.tvs_max_frame))
            .await
        {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => break,
            Ok(Err(FrameError::Io(e))) => {
                tracing::debug!(%peer, error = %e, "TVS read error");
                break;
            }
            Ok(Err(e)) => {
                stats.bad_frame.inc();
                tracing::info!(%peer, node = %node, error = %escape(e.to_string().as_bytes(), 200), "TVS bad frame: connection closed");
                break;
            }
            Err(_) => {
                stats.timed_out.inc();
                tracing::debug!(%peer, "TVS request deadline");
                break;
            }
        };
        if session.is_some_and(|s| s != msg.session_id) {
            stats.bad_frame.inc();
            tracing::info!(%peer, "TVS session id changed on one connection (V10): closed");
            break;
        }
        session = Some(msg.session_id);
        let request = match msg.request() {
            Ok(r) => r,
            Err(e) => {
                stats.bad_frame.inc();
                tracing::info!(%peer, node = %node, error = %escape(e.to_string().as_bytes(), 200),
                    frame = %escape(&raw, 48), "TVS bad request: connection closed");
                break;
            }
        };
        let (kind, device) = match &request {
            Request::Verify { device_name, .. } => ("verify", device_name),
            Request::Query { device_name, .. } => ("query", device_name),
        };
        let Some(answer) = view.tvs_answer(node, &request) else {
            stats.not_running.inc();
            tracing::info!(%peer, node = %node, "TVS not running in the model: closed");
            break;
        };
        tracing::info!(%peer, node = %node, kind, device = %escape(device.as_bytes(), 64),
            status = ?answer.status, roles = ?answer.roles, "TVS answer");
        let out = Message::response_to(&msg, &answer).encode();
        let write = async {
            tls.write_all(&out).await?;
            tls.flush().await
        };
        match timeout_at((Instant::now() + limits.write).min(end), write).await {
            Ok(Ok(())) => stats.answered.inc(),
            _ => {
                stats.timed_out.inc();
                return;
            }
        }
    }
    let _ = timeout_at(
        (Instant::now() + std::time::Duration::from_secs(1)).min(end),
        tls.shutdown(),
    )
    .await;
}
