//! The live boot benchmark (issue 7): in the same run, on loopback, measures full TLS handshakes/s
//! against the TVS listener (H), TFTP 10 KB transfers/s (T) and signed-file verifies/s (V), then
//! boots N phones through the live sequence against real servers and reports phones/s ÷ L with
//! L = 1 / (2/H + 2/T + 2/V), errors, peak RSS and file descriptors.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes_free::TenKb;
use itlsim_net::clients::TvsClient;
use itlsim_net::serve::{PortMode, ServeConfig, Server};
use itlsim_net::tftp::{TftpOptions, TftpStats};
use itlsim_net::tls::ServerCertPolicy;
use itlsim_net::{ClusterView, Clusters, Limits, NodeRef, Port};
use itlsim_phone::{Blob, CryptoMode, Env, Host, Mac, Phone, PhoneSetup};
use itlsim_server::{CertPurpose, NodeId};
use itlsim_wire::cert::public_key_of;
use itlsim_wire::sgn::SignedFile;

use super::LiveError;
use super::fleet::{self, BootEnd, Registrar};
use super::io::{self, LatencyRow};
use crate::driver::{EPOCH_UNIX_S, Sim, host_of, ip_text};
use crate::scenario;

/// Benchmark figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BootBench {
    /// Full TLS handshakes/s (TVS listener, RSA-2048, no resumption).
    pub h: f64,
    /// TFTP 10 KB transfers/s (blksize 1428).
    pub t: f64,
    /// Signed-file (.sgn) verifies/s, no memo.
    pub v: f64,
    /// L = 1 / (2/H + 2/T + 2/V).
    pub l: f64,
    /// Phones booted.
    pub n: usize,
    /// Boot wall time (s).
    pub boot_s: f64,
    /// Phones/s.
    pub phones_per_s: f64,
    /// phones/s ÷ L.
    pub ratio: f64,
    /// Registered at the end of their cycle.
    pub registered: usize,
    /// Not registered or timed out.
    pub errors: usize,
    /// Operations without a normal answer.
    pub failed_ops: u64,
    /// Most phones booting at once.
    pub peak_booting: usize,
    /// Peak RSS (KiB, VmHWM).
    pub peak_rss_kib: u64,
    /// Most open file descriptors seen during the boot.
    pub peak_fds: usize,
    /// Server-side config pre-build time (s), excluded from the boot.
    pub prebuild_s: f64,
    /// Latencies.
    pub latency: Vec<LatencyRow>,
}

mod bytes_free {
    //! A one-file TFTP view: 10 KB of bytes, for T.
    use std::net::SocketAddr;

    use itlsim_net::view::TlsIdentity;
    use itlsim_net::{ClusterView, FileAnswer, NodeRef, Port};
    use itlsim_server::NodeId;
    use tokio::sync::watch;

    pub struct TenKb(pub bytes::Bytes, pub watch::Sender<u64>);

    impl ClusterView for TenKb {
        fn nodes(&self) -> Vec<NodeRef> {
            vec![NodeRef {
                cluster: 0,
                node: NodeId(0),
            }]
        }
        fn node_name(&self, _: NodeRef) -> String {
            "bench/10kb".into()
        }
        fn running(&self, _: NodeRef, _: Port) -> bool {
            true
        }
        fn start_epoch(&self, _: NodeRef, _: Port) -> u64 {
            0
        }
        fn subscribe(&self) -> watch::Receiver<u64> {
            self.1.subscribe()
        }
        fn serve_file(&self, _: NodeRef, _: &str, _: SocketAddr) -> FileAnswer {
            FileAnswer::Found(self.0.clone())
        }
        fn tvs_answer(
            &self,
            _: NodeRef,
            _: &itlsim_wire::tvs::Request,
        ) -> Option<itlsim_wire::tvs::Response> {
            None
        }
        fn tls_identity(&self, _: NodeRef, _: Port) -> Option<TlsIdentity> {
            None
        }
    }
}

/// Peak resident set size of this process (KiB, `VmHWM`; 0 where /proc is missing).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `count` async operations with `conc` at a time, for at least `min` wall time or `max_n`
/// operations; returns operations/s and failures.
async fn rate<F, Fut>(conc: usize, min: Duration, max_n: u64, f: F) -> (f64, u64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let f = Arc::new(f);
    let done = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (f, done, bad) = (f.clone(), done.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            while t0.elapsed() < min && done.load(Ordering::Relaxed) < max_n {
                if !f().await {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64(),
        bad.load(Ordering::Relaxed),
    )
}

/// Runs the benchmark: `n` phones (model 8845, one CUCM 11.5 node), `concurrency` booting at once.
///
/// The boot is the one of §6.3 R1: every phone holds the ITL and configuration of before a
/// CallManager regeneration; the node now serves an ITL signed by the new CallManager, which no
/// SAST record of the phone's ITL matches, so each phone asks TVS over TLS (pinned to its ITL's
/// TVS record), which vouches; then the configuration signed by the new CallManager is verified
/// against the new ITL. Per phone: one full TLS handshake, the CTL/ITL/config requests over
/// HTTP 6970 and TFTP, two signature checks.
pub fn boot_bench(n: usize, concurrency: usize, threads: usize) -> Result<BootBench, LiveError> {
    let yaml = format!(
        "name: bench-boot\nseed: 7\nclusters:\n  - name: A\n    version: \"11.5\"\n    nodes: [pub]\n\
         fleet:\n  - name: g\n    cluster: A\n    models: {{ \"8845\": {n} }}\n    mac_start: \"0000.0001.0000\"\n"
    );
    let sc =
        scenario::parse("bench-boot.yaml", &yaml).map_err(|e| LiveError::Serve(e.to_string()))?;
    let mut twin = Sim::new(&sc)?;
    let clusters = Arc::new(Clusters::new(twin.take_clusters()));
    drop(twin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| LiveError::Serve(e.to_string()))?;
    rt.block_on(async move {
        let view: Arc<dyn ClusterView> = clusters.clone();
        let mut server = Server::start(
            view,
            ServeConfig {
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                mode: PortMode::Ephemeral,
                ..ServeConfig::default()
            },
        )
        .await
        .map_err(|e| LiveError::Serve(e.to_string()))?;
        server.settle().await;
        let node = NodeRef {
            cluster: 0,
            node: NodeId(0),
        };
        let host = ip_text(host_of(0, 0));
        let mut addrs = HashMap::new();
        for ((nr, port), a) in server.addrs() {
            if nr == node {
                addrs.insert((host.clone(), port), a);
            }
        }
        let tvs_addr = server
            .addr(node, Port::Tvs)
            .ok_or_else(|| LiveError::Serve("no TVS listener".into()))?;
        let conc = 2 * threads.max(1);

        // H: full handshakes (no resumption), TLS 1.3, RSA-2048 TVS certificate.
        let client = Arc::new(TvsClient::new(ServerCertPolicy::AcceptAny));
        let (h, _) = rate(conc, Duration::from_secs(2), 20_000, move || {
            let c = client.clone();
            async move { c.exchange(tvs_addr, &[]).await.is_ok() }
        })
        .await;

        // T: 10 KB TFTP transfers from the same TFTP server code (one-file view).
        let (tx, _) = tokio::sync::watch::channel(0);
        let ten: Arc<dyn ClusterView> = Arc::new(TenKb(bytes::Bytes::from(vec![0x5a; 10_240]), tx));
        let sock = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| LiveError::Serve(e.to_string()))?;
        let taddr: SocketAddr = sock
            .local_addr()
            .map_err(|e| LiveError::Serve(e.to_string()))?;
        let tftp_task = tokio::spawn(itlsim_net::tftp::serve(
            sock,
            node,
            ten,
            Limits::default(),
            Arc::new(TftpStats::default()),
        ));
        let opts = Arc::new(TftpOptions {
            blksize: Some(1428),
            tsize: true,
            ..TftpOptions::default()
        });
        let (t, _) = rate(conc, Duration::from_secs(2), 50_000, move || {
            let o = opts.clone();
            async move {
                itlsim_net::tftp::get(taddr, "ten.bin", &o)
                    .await
                    .is_ok_and(|g| g.data.len() == 10_240)
            }
        })
        .await;
        tftp_task.abort();

        // The phones' state before the change: the ITL they hold and their configuration (its
        // <TVS> list is where they ask). Then the admin regenerates the CallManager certificate.
        let old_itl = clusters
            .read(0, |c| c.tftp_get(NodeId(0), "ITLFile.tlv").ok())
            .flatten()
            .map(|s| Blob::new(s.bytes.to_vec()))
            .ok_or_else(|| LiveError::Serve("no ITL served".into()))?;
        let old_configs: Vec<String> = clusters
            .read(0, |c| {
                c.phones().values().map(|p| c.config_xml(Some(p))).collect()
            })
            .unwrap_or_default();
        clusters
            .apply(
                0,
                EPOCH_UNIX_S + 60,
                itlsim_server::AdminAction::RegenerateCert {
                    node: NodeId(0),
                    purpose: CertPurpose::CallManager,
                },
            )
            .map_err(|e| LiveError::Serve(e.to_string()))?;
        server.settle().await;

        // Pre-build every phone's signed config on the server (CUCM builds them on change;
        // `rsa` SHA-1 signing would otherwise dominate the first boot), and take one for V.
        let pre = Instant::now();
        let macs: Vec<u64> = (0..n as u64).map(|i| 0x0000_0001_0000 + i).collect();
        let mut sample: Option<Vec<u8>> = None;
        for m in &macs {
            let name = format!("SEP{m:012X}.cnf.xml.sgn");
            let b = clusters.read(0, |c| {
                c.tftp_get(NodeId(0), &name).ok().map(|s| s.bytes.to_vec())
            });
            if sample.is_none() {
                sample = b.flatten();
            }
        }
        let prebuild_s = pre.elapsed().as_secs_f64();

        // V: verify that signed config with its signer's key (no memo), on every thread.
        let sample = sample.ok_or_else(|| LiveError::Serve("no signed config served".into()))?;
        let file = SignedFile::decode(&sample).map_err(|e| LiveError::Serve(e.to_string()))?;
        let key = clusters
            .read(0, |c| {
                [CertPurpose::CallManager, CertPurpose::ItlRecovery]
                    .into_iter()
                    .filter_map(|p| c.identity(NodeId(0), p))
                    .filter_map(|id| public_key_of(id.cert.der()).ok())
                    .find(|k| file.verify_with(k).is_ok())
            })
            .flatten()
            .ok_or_else(|| LiveError::Serve("no key verifies the signed config".into()))?;
        let verified = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let vt0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        if file.verify_with(&key).is_ok() {
                            verified.fetch_add(1, Ordering::Relaxed);
                        }
                        if vt0.elapsed() > Duration::from_secs(2) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let v = verified.load(Ordering::Relaxed) as f64 / vt0.elapsed().as_secs_f64();
        let l = 1.0 / (2.0 / h + 2.0 / t + 2.0 / v);

        // Boot N phones in real time (speed 1).
        let knobs = itlsim_phone::Knobs {
            epoch_unix_s: EPOCH_UNIX_S,
            trace: false,
            ..itlsim_phone::Knobs::default()
        };
        let env = Env::new(knobs.clone(), CryptoMode::Real);
        let model = itlsim_phone::Model::lookup("8845")
            .ok_or_else(|| LiveError::Serve("no model 8845".into()))?;
        let tftp: Arc<[Host]> = Arc::from(vec![Host::new(&host)]);
        if old_configs.len() != macs.len() {
            return Err(LiveError::Serve("phone records and MACs differ".into()));
        }
        let mut phones: Vec<Phone> = Vec::with_capacity(n);
        for (m, cfg) in macs.iter().zip(&old_configs) {
            let b = m.to_be_bytes();
            let mut p = Phone::new(
                env.clone(),
                PhoneSetup {
                    mac: Mac([b[2], b[3], b[4], b[5], b[6], b[7]]),
                    model,
                    tftp: tftp.clone(),
                    device_key: None,
                    load: None,
                },
            );
            p.preload(None, Some(&old_itl))
                .map_err(|r| LiveError::Serve(format!("old ITL: {}", r.describe())))?;
            p.preload_config(cfg.as_bytes());
            phones.push(p);
        }
        let ctx = Arc::new(
            io::new_ctx(addrs, knobs, 1.0, 4 * concurrency.max(1))
                .await
                .map_err(|e| LiveError::Serve(e.to_string()))?,
        );
        let regc = clusters.clone();
        let reg_host = host.clone();
        let registrar: Registrar = Arc::new(move |cms: &[Host], secure: bool| {
            let ok = cms.iter().any(|h| *h.0 == *reg_host);
            let cert = if ok && secure {
                regc.read(0, |c| {
                    c.identity(NodeId(0), CertPurpose::CallManager)
                        .map(|id| Blob::new(id.cert.der().to_vec()))
                })
                .flatten()
            } else {
                None
            };
            (ok, cert)
        });
        let peak_fds = Arc::new(AtomicUsize::new(fds()));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (p, s) = (peak_fds.clone(), sampling.clone());
            tokio::spawn(async move {
                while s.load(Ordering::Relaxed) {
                    p.fetch_max(fds(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let res = fleet::boot(ctx, phones, registrar, concurrency, Duration::from_secs(60)).await;
        sampling.store(false, Ordering::Relaxed);
        let _ = sampler.await;
        server.shutdown().await;
        let registered = res
            .ends
            .iter()
            .filter(|e| **e == BootEnd::Registered)
            .count();
        let rows = res.latency.rows();
        let phones_per_s = n as f64 / res.wall.as_secs_f64();
        Ok(BootBench {
            h,
            t,
            v,
            l,
            n,
            boot_s: res.wall.as_secs_f64(),
            phones_per_s,
            ratio: phones_per_s / l,
            registered,
            errors: n - registered,
            failed_ops: rows.iter().map(|r| r.failed).sum(),
            peak_booting: res.peak_booting,
            peak_rss_kib: peak_rss_kib(),
            peak_fds: peak_fds.load(Ordering::Relaxed),
            prebuild_s,
            latency: rows,
        })
    })
}

impl BootBench {
    /// Printable.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "H {:.0} handshakes/s  T {:.0} TFTP 10KB/s  V {:.0} verifies/s  =>  L {:.0} phones/s",
            self.h, self.t, self.v, self.l
        );
        let _ = writeln!(
            s,
            "boot {} phones in {:.2} s = {:.0} phones/s; ratio phones/s / L = {:.2} (goal >= 0.6)",
            self.n, self.boot_s, self.phones_per_s, self.ratio
        );
        let _ = writeln!(
            s,
            "registered {}  errors {}  failed ops {}  peak booting {}  peak RSS {} MiB  peak fds {}  (server config pre-build {:.1} s, excluded)",
            self.registered,
            self.errors,
            self.failed_ops,
            self.peak_booting,
            self.peak_rss_kib / 1024,
            self.peak_fds,
            self.prebuild_s
        );
        let per: Vec<String> = self
            .latency
            .iter()
            .map(|r| format!("{} {:.2}", r.service, r.count as f64 / self.n.max(1) as f64))
            .collect();
        let _ = writeln!(
            s,
            "per phone: {} (L assumes 2 TLS handshakes, 2 TFTP transfers, 2 verifies)",
            per.join(", ")
        );
        for r in &self.latency {
            let _ = writeln!(
                s,
                "  {:<10} ops {:>8} failed {:>5}  p50 {:>6} µs  p90 {:>6} µs  p99 {:>7} µs  max {:>8} µs",
                r.service, r.count, r.failed, r.p50_us, r.p90_us, r.p99_us, r.max_us
            );
        }
        s
    }
}
