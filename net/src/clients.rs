//! Clients for the listeners: TVS over TLS with a pinned (or reported) server certificate, and
//! HTTP/HTTPS GET reporting the certificate presented. The TFTP client is [`crate::tftp::get`].
//!
//! These are what a live phone driver executes for phone-core's fetch and TVS actions; they
//! report the presented certificate so the phone applies T-TVS / T-HTTPS itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use itlsim_wire::tvs::Message;
use rustls::SignatureScheme;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::tls::{ServerCertPolicy, client_config_with, server_name};

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connect failed (refused: the service is stopped).
    #[error("connect: {0}")]
    Connect(String),
    /// TLS handshake failed (e.g. the presented certificate is not pinned).
    #[error("TLS: {0}")]
    Tls(String),
    /// Deadline reached.
    #[error("timeout")]
    Timeout,
    /// The server closed before answering.
    #[error("closed by the server")]
    Closed,
    /// The answer did not decode.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// The result of one TVS exchange.
#[derive(Debug, Clone)]
pub struct TvsExchange {
    /// One answer per request, in order.
    pub responses: Vec<Message>,
    /// The certificate the server presented (DER).
    pub server_cert: Vec<u8>,
}

/// A TVS client: one rustls config reused for every connection.
#[derive(Clone)]
pub struct TvsClient {
    connector: TlsConnector,
    /// Overall deadline per exchange.
    pub deadline: Duration,
}

impl std::fmt::Debug for TvsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TvsClient")
    }
}

impl TvsClient {
    /// A client with the given server policy (a phone pins its ITL TVS records, §4.3).
    pub fn new(policy: ServerCertPolicy) -> Self {
        Self {
            connector: TlsConnector::from(client_config_with(policy, None)),
            deadline: Duration::from_secs(10),
        }
    }

    /// Connects, sends every request in order, reads one answer each.
    pub async fn exchange(
        &self,
        addr: SocketAddr,
        requests: &[Message],
    ) -> Result<TvsExchange, ClientError> {
        let end = Instant::now() + self.deadline;
        let run = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let mut tls = self
                .connector
                .connect(server_name(addr.ip()), tcp)
                .await
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            let server_cert = presented(tls.get_ref().1.peer_certificates());
            let mut responses = Vec::with_capacity(requests.len());
            for r in requests {
                tls.write_all(&r.encode())
                    .await
                    .map_err(|_| ClientError::Closed)?;
                tls.flush().await.map_err(|_| ClientError::Closed)?;
                match crate::tvs::read_message(&mut tls, 10 + 65_535).await {
                    Ok(Some(m)) => responses.push(m),
                    Ok(None) => return Err(ClientError::Closed),
                    Err(e) => return Err(ClientError::Protocol(e)),
                }
            }
            let _ = tls.shutdown().await;
            Ok(TvsExchange {
                responses,
                server_cert,
            })
        };
        timeout_at(end, run)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}

fn presented(certs: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Vec<u8> {
    certs
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default()
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// Status.
    pub status: StatusCode,
    /// Body.
    pub body: Bytes,
    /// Content-Length header, if any.
    pub content_length: Option<u64>,
    /// Certificate presented (HTTPS only).
    pub server_cert: Option<Vec<u8>>,
}

/// Largest body read (78xx per-file cap, phone-behaviour §2.3).
const MAX_BODY: usize = 2048 * 1024;

async fn request_on<I>(
    io: I,
    method: Method,
    path: &str,
    host: SocketAddr,
) -> Result<(StatusCode, Bytes, Option<u64>), ClientError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let status = resp.status();
    let content_length = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?
        .to_bytes();
    driver.abort();
    Ok((status, body, content_length))
}

/// `GET` (or another method) over plain HTTP (6970).
pub async fn http_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    deadline: Duration,
) -> Result<HttpAnswer, ClientError> {
    let end = Instant::now() + deadline;
    let run = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (status, body, content_length) = request_on(tcp, method, path, addr).await?;
        Ok(HttpAnswer {
            status,
            body,
            content_length,
            server_cert: None,
        })
    };
    timeout_at(end, run)
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// `GET path` over HTTPS (6971/6972), reporting the presented certificate. `schemes` limits the
/// signature schemes offered (e.g. RSA only, to be given the RSA identity).
pub async fn https_get(
    addr: SocketAddr,
    path: &str,
    policy: ServerCertPolicy,
    schemes: Option<Vec<SignatureScheme>>,
    deadline: Duration,
) -> Result<HttpAnswer, ClientError> {
    let connector = TlsConnector::from(client_config_with(policy, schemes));
    let end = Instant::now() + deadline;
    let run = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let tls = connector
            .connect(server_name(addr.ip()), tcp)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let cert = presented(tls.get_ref().1.peer_certificates());
        let (status, body, content_length) = request_on(tls, Method::GET, path, addr).await?;
        Ok(HttpAnswer {
            status,
            body,
            content_length,
            server_cert: Some(cert),
        })
    };
    timeout_at(end, run)
        .await
        .map_err(|_| ClientError::Timeout)?
}

/// Convenience: `Arc` a [`TvsClient`].
pub fn tvs_client(policy: ServerCertPolicy) -> Arc<TvsClient> {
    Arc::new(TvsClient::new(policy))
}
