//! Real I/O for phone actions: a phone's `Fetch` becomes a TFTP transfer (UDP), an HTTP GET
//! (6970) or an HTTPS GET (6971) with hyper/rustls; a `QueryTvs` becomes one TVS exchange over
//! TLS (rustls, the presented certificate reported to the phone, which applies T-TVS itself).
//!
//! Every address is on 127.0.0.0/8. Host strings of the phones (the IPs the model writes into
//! configs, `10.<cluster+1>.0.<node+10>`) are mapped to the listeners' loopback socket addresses
//! by a fixed table; anything not in the table goes to a closed loopback port (HTTP/TVS: a real
//! refusal) or a loopback UDP socket that never answers (TFTP: real silence).
//!
//! Modelled, not on the wire (named so in reports): TLS 1.0 of legacy phones (rustls has no
//! TLS 1.0/1.1; such phones' TVS handshakes are carried over TLS 1.2), and registration (no
//! SCCP/SIP server: `Register` is answered from the cluster model, as in virtual mode).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use itlsim_net::Port;
use itlsim_net::clients::{ClientError, TvsClient, http_request, https_get};
use itlsim_net::tftp::client::{TftpClientError, TftpOptions, get as tftp_get};
use itlsim_net::tls::ServerCertPolicy;
use itlsim_phone::event::FetchFailure;
use itlsim_phone::model::TlsVersion;
use itlsim_phone::{Action, Blob, Event, Knobs, Transport};
use itlsim_wire::tvs::Message;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

/// Which service an operation used (latency histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Svc {
    /// TFTP (UDP).
    Tftp,
    /// HTTP 6970.
    Http6970,
    /// HTTPS 6971.
    Https6971,
    /// TVS over TLS.
    Tvs,
}

impl Svc {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Svc::Tftp => "tftp",
            Svc::Http6970 => "http6970",
            Svc::Https6971 => "https6971",
            Svc::Tvs => "tvs",
        }
    }
}

/// The result of one operation.
#[derive(Debug)]
pub struct Done {
    /// Phone index.
    pub phone: u32,
    /// What to deliver (`None`: silence, the phone's own deadline applies).
    pub event: Option<Event>,
    /// Service.
    pub svc: Svc,
    /// Wall time of the operation.
    pub wall: Duration,
    /// The operation did not get a normal answer (timeout, refusal, TLS failure).
    pub failed: bool,
}

/// Per-service latencies (µs) and counts. Percentiles are exact (sorted samples), bounded by
/// the number of operations of a run.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: HashMap<Svc, Vec<u32>>,
    failed: HashMap<Svc, u64>,
}

/// One line of the latency table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyRow {
    /// Service.
    pub service: &'static str,
    /// Operations.
    pub count: u64,
    /// Without a normal answer.
    pub failed: u64,
    /// Percentiles in µs.
    pub p50_us: u32,
    /// 90th.
    pub p90_us: u32,
    /// 99th.
    pub p99_us: u32,
    /// Max.
    pub max_us: u32,
}

impl Latencies {
    /// Records one operation.
    pub fn record(&mut self, d: &Done) {
        let us = u32::try_from(d.wall.as_micros()).unwrap_or(u32::MAX);
        self.samples.entry(d.svc).or_default().push(us);
        if d.failed {
            *self.failed.entry(d.svc).or_default() += 1;
        }
    }

    /// Merges another set.
    pub fn merge(&mut self, o: Latencies) {
        for (k, v) in o.samples {
            self.samples.entry(k).or_default().extend(v);
        }
        for (k, v) in o.failed {
            *self.failed.entry(k).or_default() += v;
        }
    }

    /// The table, by service.
    pub fn rows(&self) -> Vec<LatencyRow> {
        let mut keys: Vec<Svc> = self.samples.keys().copied().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let mut v = self.samples.get(&k).cloned().unwrap_or_default();
                v.sort_unstable();
                let pct = |p: f64| -> u32 {
                    if v.is_empty() {
                        return 0;
                    }
                    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
                    v.get(i).copied().unwrap_or(0)
                };
                LatencyRow {
                    service: k.name(),
                    count: v.len() as u64,
                    failed: self.failed.get(&k).copied().unwrap_or(0),
                    p50_us: pct(0.5),
                    p90_us: pct(0.9),
                    p99_us: pct(0.99),
                    max_us: v.last().copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

/// Shared by every operation: the address table, the clients, the time scale.
pub struct Ctx {
    /// (phone-visible host string, port) → loopback socket address.
    pub addrs: HashMap<(String, Port), SocketAddr>,
    /// A loopback UDP socket that reads and drops everything (TFTP silence).
    pub blackhole_udp: SocketAddr,
    /// A loopback TCP listener that accepts and never answers (a blocked HTTP path).
    pub blackhole_tcp: SocketAddr,
    /// A loopback TCP port nobody listens on (refusal).
    pub closed_tcp: SocketAddr,
    /// TVS client (reports the presented certificate; the phone pins it, T-TVS).
    pub tvs: TvsClient,
    /// Phone knobs (retransmit, timeouts), in scenario time.
    pub knobs: Knobs,
    /// Scenario ms per wall ms.
    pub speed: f64,
    /// Bounds concurrent operations.
    pub sem: Arc<Semaphore>,
    /// TVS handshakes of TLS-1.0-only phones carried over TLS 1.2 (modelled).
    pub tls10_modelled: AtomicU64,
    /// Where hosts that are not in `addrs` go (`itlsim phones` against external servers);
    /// `None`: nowhere (refusal / silence).
    pub route: Option<Route>,
    _holders: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for h in &self._holders {
            h.abort();
        }
    }
}

/// Binds the blackholes and the closed port (loopback only).
pub async fn new_ctx(
    addrs: HashMap<(String, Port), SocketAddr>,
    knobs: Knobs,
    speed: f64,
    max_in_flight: usize,
) -> std::io::Result<Ctx> {
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let udp = UdpSocket::bind(lo).await?;
    let blackhole_udp = udp.local_addr()?;
    let tcp = TcpListener::bind(lo).await?;
    let blackhole_tcp = tcp.local_addr()?;
    let closed = std::net::TcpListener::bind(lo)?;
    let closed_tcp = closed.local_addr()?;
    drop(closed);
    let h1 = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while udp.recv_from(&mut buf).await.is_ok() {}
    });
    let h2 = tokio::spawn(async move {
        // Accept and hold (bounded): the peer sees no answer until its own deadline.
        let mut held = std::collections::VecDeque::new();
        while let Ok((s, _)) = tcp.accept().await {
            held.push_back(s);
            if held.len() > 256 {
                held.pop_front();
            }
        }
    });
    let mut tvs = TvsClient::new(ServerCertPolicy::AcceptAny);
    tvs.deadline = scaled(u64::from(knobs.tvs_connect_timeout_s) * 1000, speed) * 3 / 2;
    Ok(Ctx {
        addrs,
        blackhole_udp,
        blackhole_tcp,
        closed_tcp,
        tvs,
        knobs,
        speed,
        sem: Arc::new(Semaphore::new(max_in_flight.max(1))),
        tls10_modelled: AtomicU64::new(0),
        route: None,
        _holders: vec![h1, h2],
    })
}

/// The per-service latency table and the "modelled" lines of a live report (text).
pub fn latency_table(rows: &[LatencyRow], modelled: &[String]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "service", "ops", "failed", "p50 µs", "p90 µs", "p99 µs", "max µs"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "  {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
            r.service, r.count, r.failed, r.p50_us, r.p90_us, r.p99_us, r.max_us
        );
    }
    for m in modelled {
        let _ = writeln!(s, "  modelled: {m}");
    }
    s
}

/// Resolves a phone-visible host and service to a socket address outside the fixed table.
pub type Route = Arc<dyn Fn(&str, Port) -> Option<SocketAddr> + Send + Sync>;

/// Scenario milliseconds → wall duration at `speed`.
pub fn scaled(ms: u64, speed: f64) -> Duration {
    Duration::from_secs_f64(ms as f64 / 1000.0 / speed.max(1e-6))
}

impl Ctx {
    fn addr(&self, host: &str, port: Port) -> Option<SocketAddr> {
        self.addrs
            .get(&(host.to_string(), port))
            .copied()
            .or_else(|| self.route.as_ref().and_then(|r| r(host, port)))
    }

    fn tftp_options(&self) -> TftpOptions {
        let k = &self.knobs;
        let budget = scaled(k.tftp_budget_ms(), self.speed);
        let retx = scaled(u64::from(k.tftp_retx_ms), self.speed).max(Duration::from_millis(25));
        TftpOptions {
            blksize: Some(1428),
            tsize: true,
            // The client retransmits at a fixed interval (net's client); the phone's own
            // doubling budget is enforced by the phone's timer.
            retransmit: retx,
            retries: u32::try_from(budget.as_millis() / retx.as_millis().max(1)).unwrap_or(8) + 1,
            deadline: budget * 3 / 2,
            ..TftpOptions::default()
        }
    }

    fn http_deadline(&self) -> Duration {
        scaled(u64::from(self.knobs.http_timeout_s) * 1000, self.speed) * 3 / 2
    }
}

fn fetch_failed(req: itlsim_phone::RequestId, why: FetchFailure) -> Option<Event> {
    Some(Event::FetchFailed { req, why })
}

/// Executes one phone network action over real sockets. `blocked`: the timeline's outage covers
/// the target now (TFTP/HTTP: dropped, TVS: refused — the same as the virtual driver).
pub async fn execute(ctx: &Ctx, phone: u32, action: Action, blocked: bool) -> Done {
    let _permit = ctx.sem.clone().acquire_owned().await;
    let t0 = Instant::now();
    let (svc, event, failed) = match action {
        Action::Fetch {
            req,
            server,
            transport,
            name,
            ..
        } => match transport {
            Transport::Tftp => {
                let addr = match ctx.addr(&server.0, Port::Tftp) {
                    Some(a) if !blocked => a,
                    _ => ctx.blackhole_udp,
                };
                let ev = match tftp_get(addr, &name, &ctx.tftp_options()).await {
                    Ok(g) => Some(Event::FileReceived {
                        req,
                        file: Blob::new(g.data),
                        server_cert: None,
                    }),
                    // A busy server is silence to the phone (it retries on its own deadline).
                    Err(TftpClientError::Error { message, .. })
                        if message.to_ascii_lowercase().contains("busy") =>
                    {
                        None
                    }
                    // File not found, or a file the server could not build (ERROR 0): the
                    // virtual driver answers both as "not found".
                    Err(TftpClientError::Error { .. }) => Some(Event::FileNotFound { req }),
                    Err(_) => None,
                };
                let failed = ev.is_none();
                (Svc::Tftp, ev, failed)
            }
            Transport::Http6970 | Transport::Https6971 => {
                let (port, svc) = if transport == Transport::Http6970 {
                    (Port::Http, Svc::Http6970)
                } else {
                    (Port::Https6971, Svc::Https6971)
                };
                let addr = match ctx.addr(&server.0, port) {
                    Some(_) if blocked => ctx.blackhole_tcp,
                    Some(a) => a,
                    None => ctx.closed_tcp,
                };
                let path = format!("/{name}");
                let r = if svc == Svc::Http6970 {
                    http_request(addr, hyper::Method::GET, &path, ctx.http_deadline()).await
                } else {
                    https_get(
                        addr,
                        &path,
                        ServerCertPolicy::AcceptAny,
                        None,
                        ctx.http_deadline(),
                    )
                    .await
                };
                let ev = match r {
                    Ok(a) => match a.status.as_u16() {
                        200 => Some(Event::FileReceived {
                            req,
                            file: Blob::new(a.body.to_vec()),
                            server_cert: a.server_cert.map(Blob::new),
                        }),
                        // 404 / 503 (no CTL) are "not found" to the phone; 500 is a file the
                        // model could not build, which the virtual driver also answers as "not found".
                        404 | 503 | 500 => Some(Event::FileNotFound { req }),
                        s => fetch_failed(req, FetchFailure::HttpStatus(s)),
                    },
                    Err(ClientError::Timeout) => None,
                    Err(ClientError::Tls(_)) => fetch_failed(req, FetchFailure::TlsFailed),
                    Err(_) => fetch_failed(req, FetchFailure::ConnectRefused),
                };
                let failed = !matches!(
                    ev,
                    Some(Event::FileReceived { .. } | Event::FileNotFound { .. })
                );
                (svc, ev, failed)
            }
        },
        Action::QueryTvs {
            req,
            host,
            frame,
            tls_max,
            ..
        } => {
            if tls_max == TlsVersion::Tls10 {
                ctx.tls10_modelled.fetch_add(1, Ordering::Relaxed);
            }
            let addr = match ctx.addr(&host.0, Port::Tvs) {
                Some(a) if !blocked => a,
                _ => ctx.closed_tcp,
            };
            let ev = match Message::decode(&frame, 16 * 1024) {
                Err(_) => Event::TvsUnreachable { req },
                Ok(msg) => match ctx.tvs.exchange(addr, std::slice::from_ref(&msg)).await {
                    Ok(x) => match x.responses.into_iter().next() {
                        Some(resp) => Event::TvsAnswer {
                            req,
                            server_cert: Blob::new(x.server_cert),
                            frame: resp.encode(),
                        },
                        None => Event::TvsUnreachable { req },
                    },
                    Err(ClientError::Tls(_)) => Event::TvsTlsFailed { req },
                    Err(_) => Event::TvsUnreachable { req },
                },
            };
            let failed = !matches!(ev, Event::TvsAnswer { .. });
            (Svc::Tvs, Some(ev), failed)
        }
        _ => {
            return Done {
                phone,
                event: None,
                svc: Svc::Tftp,
                wall: Duration::ZERO,
                failed: true,
            };
        }
    };
    Done {
        phone,
        event,
        svc,
        wall: t0.elapsed(),
        failed,
    }
}
