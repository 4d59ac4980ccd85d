//! HTTP 6970 and HTTPS 6971/6972 (hyper 1): `GET /<file>` for the TFTP artefacts.
//!
//! * Files from [`ClusterView::serve_file`] (wire-formats §3.7: "CUCM also serves TFTP files over
//!   HTTP on TCP 6970"); a missing CTL on a non-mixed cluster is **503** as CUCM answers it, so
//!   phones fall back to TFTP (phone-behaviour §2.3, S12 log); other misses 404.
//! * GET and HEAD only, others 405 (H7). Names are never percent-decoded or joined to a path:
//!   the same allowlist rule as TFTP, so traversal (`..`, `%2e%2e`, `\`, `//`, NUL) is 400 (H2).
//!   Range is ignored (H4: 200 with the whole body).
//! * A Timer is installed so `header_read_timeout` works (H5, stack.md), the read buffer is
//!   capped (H1), every connection has an absolute lifetime, TLS handshakes a deadline; the
//!   accept loop survives EMFILE; a connection cap drops extra connections.
//! * 6971 presents CallManager(-ECDSA), 6972 tomcat(-ECDSA), as the model's TFTP start left them
//!   (E13: a regenerated certificate shows only after the TFTP service restarts).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;

use crate::limits::Limits;
use crate::tftp::server::traversal;
use crate::util::{ACCEPT_BACKOFF, Counter, escape, is_resource_exhaustion};
use crate::view::{ClusterView, FileAnswer, NodeRef, Port};

/// Counters of one HTTP(S) listener.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// TCP connections accepted.
    pub accepted: Counter,
    /// Dropped at the connection cap.
    pub refused_cap: Counter,
    /// Accept errors survived.
    pub accept_errors: Counter,
    /// TLS handshakes failed or timed out.
    pub handshake_failed: Counter,
    /// Requests answered (any status).
    pub requests: Counter,
    /// 200 answers.
    pub ok: Counter,
    /// Connections that ended with a protocol error or timeout (slow headers …).
    pub conn_errors: Counter,
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// Answers one request (pure apart from the model lookup).
pub fn answer<B>(
    view: &dyn ClusterView,
    node: NodeRef,
    req: &Request<B>,
    peer: SocketAddr,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let Some(name) = path.strip_prefix('/') else {
        return reply(StatusCode::BAD_REQUEST, "bad path\n");
    };
    if name.is_empty() {
        return reply(StatusCode::NOT_FOUND, "not found\n");
    }
    if name.contains('%') || traversal(name.as_bytes()).is_some() {
        return reply(StatusCode::BAD_REQUEST, "bad path\n");
    }
    match view.serve_file(node, name, peer) {
        FileAnswer::Found(bytes) => {
            let len = bytes.len();
            let body = if head { Bytes::new() } else { bytes };
            let mut r = Response::new(Full::new(body));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
            r
        }
        FileAnswer::NotFound => reply(StatusCode::NOT_FOUND, "not found\n"),
        // CUCM: 503 for an absent CTL (phone-behaviour §2.3, S12).
        FileAnswer::CtlAbsent => reply(StatusCode::SERVICE_UNAVAILABLE, "no CTL\n"),
        FileAnswer::ServiceDown => reply(StatusCode::SERVICE_UNAVAILABLE, "TFTP stopped\n"),
        FileAnswer::Failed(e) => {
            tracing::error!(node = %node, name = %escape(name.as_bytes(), 64), error = %e, "HTTP: model failed to build the file");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

/// Serves HTTP (no `tls`) or HTTPS for `node` on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    node: NodeRef,
    port: Port,
    view: Arc<dyn ClusterView>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    stats: Arc<HttpStats>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    stats.accepted.inc();
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        stats.refused_cap.inc();
                        drop(stream);
                        continue;
                    };
                    let (view, acceptor, limits, stats) =
                        (view.clone(), acceptor.clone(), limits.clone(), stats.clone());
                    conns.spawn(async move {
                        connection(stream, peer, node, port, view, acceptor, &limits, &stats).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    stats.accept_errors.inc();
                    if is_resource_exhaustion(&e) {
                        tracing::warn!(error = %e, "HTTP accept: out of resources, backing off");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[allow(clippy::too_many_arguments)] // the listener's context, passed once per connection
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    node: NodeRef,
    port: Port,
    view: Arc<dyn ClusterView>,
    acceptor: Option<TlsAcceptor>,
    limits: &Limits,
    stats: &Arc<HttpStats>,
) {
    let start = Instant::now();
    let end = start + limits.connection;
    match acceptor {
        None => http_conn(stream, peer, node, port, view, limits, stats, end).await,
        Some(a) => match timeout_at(start + limits.handshake, a.accept(stream)).await {
            Ok(Ok(tls)) => http_conn(tls, peer, node, port, view, limits, stats, end).await,
            Ok(Err(e)) => {
                stats.handshake_failed.inc();
                tracing::debug!(%peer, error = %escape(e.to_string().as_bytes(), 200), "HTTPS handshake failed");
            }
            Err(_) => {
                stats.handshake_failed.inc();
                tracing::debug!(%peer, "HTTPS handshake deadline");
            }
        },
    }
}

#[allow(clippy::too_many_arguments)] // see `connection`
async fn http_conn<I>(
    io: I,
    peer: SocketAddr,
    node: NodeRef,
    port: Port,
    view: Arc<dyn ClusterView>,
    limits: &Limits,
    stats: &Arc<HttpStats>,
    end: Instant,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let st = stats.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let r = answer(view.as_ref(), node, &req, peer);
        st.requests.inc();
        if r.status() == StatusCode::OK {
            st.ok.inc();
        }
        tracing::info!(%peer, node = %node, port = port.name(), method = %req.method(),
            path = %escape(req.uri().path().as_bytes(), 96), status = r.status().as_u16(), "HTTP");
        async move { Ok::<_, Infallible>(r) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.http_header)
        .max_buf_size(limits.http_max_buf.max(8192))
        .keep_alive(true);
    let conn = b.serve_connection(TokioIo::new(io), svc);
    match timeout_at(end, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            stats.conn_errors.inc();
            tracing::debug!(%peer, error = %e, "HTTP connection error");
        }
        Err(_) => {
            stats.conn_errors.inc();
            tracing::debug!(%peer, "HTTP connection lifetime reached");
        }
    }
}
