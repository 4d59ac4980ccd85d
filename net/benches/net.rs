//! Loopback benchmark of the listeners, with same-run baselines so the figures are ratios
//! (issue 4, "Performance"):
//!
//! * TVS: full TLS handshakes (no resumption, no tickets) + one Verify answered, at 4/16/256
//!   concurrent clients, against raw rustls handshakes with the same certificate and config (no
//!   TVS) in the same run; plus single-thread RSA-2048 PSS signs/s (aws-lc-rs). The servers run
//!   in their own tokio runtime ("bench-server" threads), the clients in another, and the
//!   servers' CPU time is read per thread from procfs (see [`ThreadCpu`]), so the printed
//!   **verifies per server-CPU-second ÷ signs/s** (goal ≥ 0.75) does not depend on how much CPU
//!   the clients took from the same cores. The TVS error count (goal 0 at 256) is printed apart
//!   from the raw rustls errors.
//! * TFTP: whole transfers of one fixed 10 KB (10 240-byte) file per second, one async client
//!   driving many transfers (1, 32 and 256 concurrent, blksize 512 and 1428), against
//!   `tftpd-hpa` serving the same file on a loopback port in the same run (goal ≥ 4× tftpd-hpa at
//!   256 concurrent, 0 errors), and against a minimal UDP echo ping-pong with the same number of
//!   round trips per "transfer". The file is not a model artefact (an ITL's size depends on the
//!   cluster): [`WithFile`] wraps the model's [`ClusterView`] and serves it under one extra name.
//!   Every transfer's bytes are compared with the file; a mismatch counts as an error.
//!
//! `cargo bench -p itlsim-net --bench net`, or `make bench-net`, which installs tftpd-hpa
//! (`/usr/sbin/in.tftpd`) first. Without it, or without root (tftpd-hpa's `-s` chroots), the
//! baseline columns say so and no ratio is printed. Loopback only, ports chosen by the OS,
//! bounded: a few seconds per row.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use itlsim_net::Limits;
use itlsim_net::clients::TvsClient;
use itlsim_net::serve::{PortMode, ServeConfig, Server, listen_tcp};
use itlsim_net::tftp::{TftpOptions, get};
use itlsim_net::tls::{ClientAuth, ServerCertPolicy, client_config, server_config, server_name};
use itlsim_net::view::{ClusterView, Clusters, FileAnswer, NodeRef, Port, TlsIdentity};
use itlsim_server::{CertPurpose, Cluster, ClusterSpec, KeySource, NodeId, Version};
use itlsim_wire::tvs::{Message, Request, Response};
use tokio::net::{TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

const PUB: NodeRef = NodeRef {
    cluster: 0,
    node: NodeId(0),
};

/// The fixed TFTP benchmark file: its name on both servers, and its size (issue 4: 10 KB).
const FILE_NAME: &str = "Bench10K.bin";
const FILE_SIZE: usize = 10 * 1024;

// ---------------------------------------------------------------- server CPU time

/// CPU time of the threads of one runtime, from procfs (Linux; no libc needed).
///
/// Each thread records its id when it starts (`on_thread_start`: `/proc/thread-self` links to
/// `<pid>/task/<tid>`). [`ThreadCpu::total`] adds up, per thread, the first field of
/// `/proc/self/task/<tid>/schedstat` (nanoseconds on a CPU, kernels with `CONFIG_SCHED_INFO`) or,
/// where that file is missing, `utime + stime` of `/proc/self/task/<tid>/stat` in clock ticks,
/// converted at `getconf CLK_TCK` ticks per second — assumed to be 100 (Linux's `USER_HZ` on
/// every mainstream architecture) when `getconf` cannot be run; a tick is then 10 ms per thread,
/// small against the seconds of CPU a row takes. A thread that stops (an idle blocking-pool
/// thread) adds its final figure to `exited` from `on_thread_stop`, so nothing is lost.
struct ThreadCpu {
    live: Mutex<Vec<u32>>,
    exited: Mutex<Duration>,
    ticks_per_s: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ThreadCpu {
    fn new() -> Self {
        let ticks_per_s = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &u64| *t > 0)
            .unwrap_or(100);
        Self {
            live: Mutex::new(Vec::new()),
            exited: Mutex::new(Duration::ZERO),
            ticks_per_s,
        }
    }

    fn current_tid() -> Option<u32> {
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        link.file_name()?.to_str()?.parse().ok()
    }

    fn thread_started(&self) {
        if let Some(tid) = Self::current_tid() {
            lock(&self.live).push(tid);
        }
    }

    fn thread_stopped(&self) {
        let Some(tid) = Self::current_tid() else {
            return;
        };
        let spent = self.of_current().unwrap_or_default();
        *lock(&self.exited) += spent;
        lock(&self.live).retain(|t| *t != tid);
    }

    /// Where the figures come from (printed once).
    fn source(&self) -> String {
        let tid = lock(&self.live).first().copied();
        match tid {
            Some(t)
                if std::fs::read_to_string(format!("/proc/self/task/{t}/schedstat")).is_ok() =>
            {
                "/proc/self/task/<tid>/schedstat (ns on CPU)".to_string()
            }
            Some(_) => format!(
                "/proc/self/task/<tid>/stat utime+stime at {} ticks/s",
                self.ticks_per_s
            ),
            None => "none: no server thread seen (procfs missing?)".to_string(),
        }
    }

    fn of_thread(&self, tid: u32) -> Option<Duration> {
        self.of_dir(&format!("/proc/self/task/{tid}"))
    }

    /// CPU time of the calling thread.
    fn of_current(&self) -> Option<Duration> {
        self.of_dir("/proc/thread-self")
    }

    fn of_dir(&self, dir: &str) -> Option<Duration> {
        if let Ok(s) = std::fs::read_to_string(format!("{dir}/schedstat")) {
            let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
            return Some(Duration::from_nanos(ns));
        }
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        // Fields after the command name (which may contain spaces, hence the last ')'):
        // state is field 3, utime field 14, stime field 15 (proc(5)).
        let rest = stat.get(stat.rfind(')')?.checked_add(1)?..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_micros(
            ticks.saturating_mul(1_000_000) / self.ticks_per_s,
        ))
    }

    /// CPU time of every thread of the runtime so far.
    fn total(&self) -> Duration {
        let tids = lock(&self.live).clone();
        let live: Duration = tids.iter().filter_map(|t| self.of_thread(*t)).sum();
        live + *lock(&self.exited)
    }
}

// ---------------------------------------------------------------- driver

/// What [`drive`] measured.
struct Run {
    ok: usize,
    errors: usize,
    wall: Duration,
}

impl Run {
    fn per_s(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `total` jobs with `conc` in flight.
async fn drive<F, Fut>(total: usize, conc: usize, job: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let job = Arc::new(job);
    let start = Instant::now();
    let mut set = JoinSet::new();
    let (mut ok, mut errors, mut started) = (0, 0, 0);
    while started < total || !set.is_empty() {
        while started < total && set.len() < conc {
            let j = job.clone();
            set.spawn(async move { j().await });
            started += 1;
        }
        if let Some(r) = set.join_next().await {
            if matches!(r, Ok(true)) {
                ok += 1;
            } else {
                errors += 1;
            }
        }
    }
    Run {
        ok,
        errors,
        wall: start.elapsed(),
    }
}

/// [`drive`], plus the server runtime's CPU time over the run (a short pause after the last job
/// lets the server finish what the client no longer waits for: its side of the close).
async fn drive_measured<F, Fut>(cpu: &ThreadCpu, total: usize, conc: usize, job: F) -> (Run, f64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let before = cpu.total();
    let run = drive(total, conc, job).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let spent = cpu.total().saturating_sub(before).as_secs_f64();
    (run, spent)
}

// ---------------------------------------------------------------- drop counters

/// One counter of `/proc/net/snmp` or `/proc/net/netstat` (pairs of lines: `Prefix: names…`,
/// `Prefix: values…`), for this network namespace; `None` where unreadable.
fn net_counter(file: &str, prefix: &str, name: &str) -> Option<u64> {
    let t = std::fs::read_to_string(file).ok()?;
    let mut lines = t.lines().filter(|l| l.starts_with(prefix));
    let (head, vals) = (lines.next()?, lines.next()?);
    let i = head.split_whitespace().position(|f| f == name)?;
    vals.split_whitespace().nth(i)?.parse().ok()
}

/// UDP datagrams dropped on a full socket receive buffer (`Udp: RcvbufErrors`).
fn udp_drops() -> Option<u64> {
    net_counter("/proc/net/snmp", "Udp:", "RcvbufErrors")
}

/// Connections dropped on a full TCP accept queue (`TcpExt: ListenDrops`).
fn listen_drops() -> Option<u64> {
    net_counter("/proc/net/netstat", "TcpExt:", "ListenDrops")
}

/// Runs `f` and returns its result with how much `counter` grew meanwhile ("?" unknown). The
/// counters are the whole network namespace's: other processes' drops count too.
async fn counting<T>(
    counter: fn() -> Option<u64>,
    f: impl std::future::Future<Output = T>,
) -> (T, String) {
    let before = counter();
    let out = f.await;
    let drops = match (before, counter()) {
        (Some(a), Some(b)) => b.saturating_sub(a).to_string(),
        _ => "?".to_string(),
    };
    (out, drops)
}

// ---------------------------------------------------------------- TVS

/// Single-thread RSA-2048 PSS signs per second: (per CPU-second of the signing thread, per
/// wall-clock second). The first is the ratio's denominator, as its numerator is per server
/// CPU-second too (on a busy machine the wall-clock figure drops and would flatter the ratio).
fn rsa_signs_per_s(cpu: &ThreadCpu, key_pkcs8: &[u8]) -> (f64, f64) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = itlsim_net::tls::provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key_pkcs8.to_vec(),
        )))
        .expect("RSA-2048 key loads");
    let signer = key
        .choose_scheme(&[rustls::SignatureScheme::RSA_PSS_SHA256])
        .expect("PSS");
    // At least 300 signatures and 0.5 s, at most 10 000.
    let start = Instant::now();
    let cpu0 = cpu.of_current();
    let mut n = 0u32;
    while n < 10_000 && (n < 300 || start.elapsed() < Duration::from_millis(500)) {
        let _ = signer.sign(&[n as u8; 64]);
        n += 1;
    }
    let wall = f64::from(n) / start.elapsed().as_secs_f64();
    let per_cpu = match (cpu0, cpu.of_current()) {
        (Some(a), Some(b)) if b > a => f64::from(n) / (b - a).as_secs_f64(),
        _ => wall,
    };
    (per_cpu, wall)
}

/// A raw rustls server on the server runtime: handshake, read once, close.
fn raw_tls_server(server_rt: &Handle, id: &TlsIdentity) -> SocketAddr {
    let cfg = server_config(id, ClientAuth::Optional).expect("config");
    // Registered with the server runtime; the same accept queue as the TVS listener.
    let raw = {
        let _in_server_rt = server_rt.enter();
        listen_tcp(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind")
    };
    let addr = raw.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    server_rt.spawn(async move {
        loop {
            let Ok((s, _)) = raw.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let a = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut t) = a.accept(s).await {
                    use tokio::io::AsyncReadExt;
                    let mut b = [0u8; 16];
                    let _ = t.read(&mut b).await;
                }
            });
        }
    });
    addr
}

async fn tvs(clusters: &Arc<Clusters>, server: &Server, server_rt: &Handle, cpu: &ThreadCpu) {
    let tvs_addr = server.addr(PUB, Port::Tvs).expect("TVS bound");
    let id = clusters.tls_identity(PUB, Port::Tvs).expect("TVS identity");
    let tvs_der = id.certs[0].cert_der.clone();
    let cm = clusters
        .read(0, |c| {
            c.identity(NodeId(0), CertPurpose::CallManager)
                .map(|i| i.cert.der().to_vec())
        })
        .flatten()
        .expect("CallManager");
    // Raw rustls baseline: the same server config, handshake then close.
    let raw_addr = raw_tls_server(server_rt, &id);
    let client = Arc::new(TvsClient::new(ServerCertPolicy::Pin(vec![tvs_der.clone()])));
    let req = Arc::new(Message::verify_request(1, "CP-8845-SEP001122334455", &cm));
    let raw_cfg = client_config(ServerCertPolicy::Pin(vec![tvs_der]));
    let (signs, signs_wall) = rsa_signs_per_s(cpu, &id.certs[0].key_pkcs8);
    println!("TVS: full TLS 1.3 handshake (RSA-2048 TVS certificate) + one Verify per connection");
    println!(
        "RSA-2048 PSS signs/s (one thread, aws-lc-rs): {signs:.0} per CPU-second of the signing thread ({signs_wall:.0} per wall-clock second)"
    );
    let threads = lock(&cpu.live).len();
    println!(
        "server CPU: {threads} threads of the server runtime, read from {}",
        cpu.source()
    );
    println!(
        "{:>5} {:>10} {:>10} {:>8} {:>11} {:>14} {:>9} {:>9} {:>9} {:>13}",
        "conc",
        "TVS vfy/s",
        "raw hs/s",
        "TVS/raw",
        "srv µs/vfy",
        "vfy/CPU-s÷sign",
        "raw÷sign",
        "TVS errs",
        "raw errs",
        "SYN drops t/r"
    );
    let mut at_256 = None;
    for (conc, total) in [(4usize, 400usize), (16, 400), (256, 768)] {
        let (c2, r2) = (client.clone(), req.clone());
        let ((t, t_cpu), t_drops) = counting(
            listen_drops,
            drive_measured(cpu, total, conc, move || {
                let (c, r) = (c2.clone(), r2.clone());
                async move {
                    c.exchange(tvs_addr, std::slice::from_ref(&r))
                        .await
                        .is_ok_and(|x| x.responses.len() == 1)
                }
            }),
        )
        .await;
        let rc = raw_cfg.clone();
        let ((raw, raw_cpu), raw_drops) = counting(
            listen_drops,
            drive_measured(cpu, total, conc, move || {
                let rc = rc.clone();
                async move {
                    let Ok(tcp) = TcpStream::connect(raw_addr).await else {
                        return false;
                    };
                    tokio_rustls::TlsConnector::from(rc)
                        .connect(server_name(raw_addr.ip()), tcp)
                        .await
                        .is_ok()
                }
            }),
        )
        .await;
        let per_cpu = t.ok as f64 / t_cpu;
        let ratio = per_cpu / signs;
        let raw_ratio = raw.ok as f64 / raw_cpu / signs;
        println!(
            "{conc:>5} {:>10.0} {:>10.0} {:>8.2} {:>11.0} {:>14.2} {:>9.2} {:>9} {:>9} {:>13}",
            t.per_s(),
            raw.per_s(),
            t.per_s() / raw.per_s(),
            t_cpu * 1e6 / t.ok as f64,
            ratio,
            raw_ratio,
            format!("{}/{total}", t.errors),
            format!("{}/{total}", raw.errors),
            format!("{t_drops}/{raw_drops}"),
        );
        if conc == 256 {
            at_256 = Some((ratio, t.errors));
        }
    }
    println!(
        "vfy/CPU-s÷sign = TVS verifies per server-CPU-second ÷ single-thread RSA-2048 signs/s (goal ≥ 0.75); \
         raw÷sign = the same for bare rustls handshakes; SYN drops = connections dropped on a full \
         accept queue during the TVS/raw run (/proc/net/netstat ListenDrops, whole network namespace; \
         each costs the client a 1 s SYN retransmit)"
    );
    if let Some((ratio, errors)) = at_256 {
        println!(
            "TVS at 256 concurrent: verifies per server-CPU-second ÷ signs/s = {ratio:.2} (goal ≥ 0.75, {}); TVS errors = {errors} (goal 0, {})",
            verdict(ratio >= 0.75),
            verdict(errors == 0)
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

// ---------------------------------------------------------------- TFTP

/// The model's view, plus one fixed file under one more name (on nodes whose TFTP runs).
struct WithFile {
    inner: Arc<Clusters>,
    name: &'static str,
    bytes: Bytes,
}

impl ClusterView for WithFile {
    fn nodes(&self) -> Vec<NodeRef> {
        self.inner.nodes()
    }
    fn node_name(&self, node: NodeRef) -> String {
        self.inner.node_name(node)
    }
    fn running(&self, node: NodeRef, port: Port) -> bool {
        self.inner.running(node, port)
    }
    fn start_epoch(&self, node: NodeRef, port: Port) -> u64 {
        self.inner.start_epoch(node, port)
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }
    fn serve_file(&self, node: NodeRef, name: &str, client: SocketAddr) -> FileAnswer {
        if name == self.name && self.inner.running(node, Port::Tftp) {
            FileAnswer::Found(self.bytes.clone())
        } else {
            self.inner.serve_file(node, name, client)
        }
    }
    fn tvs_answer(&self, node: NodeRef, request: &Request) -> Option<Response> {
        self.inner.tvs_answer(node, request)
    }
    fn tls_identity(&self, node: NodeRef, port: Port) -> Option<TlsIdentity> {
        self.inner.tls_identity(node, port)
    }
}

/// 10 240 bytes, not all alike (a mismatch at any offset is seen).
fn bench_file() -> Vec<u8> {
    (0..FILE_SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// A UDP echo server on the server runtime.
fn echo_server(server_rt: &Handle) -> SocketAddr {
    let std_s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    std_s.set_nonblocking(true).expect("non-blocking");
    let a = std_s.local_addr().expect("addr");
    server_rt.spawn(async move {
        let s = UdpSocket::from_std(std_s).expect("socket");
        let mut b = vec![0u8; 2048];
        loop {
            if let Ok((n, p)) = s.recv_from(&mut b).await {
                let _ = s.send_to(b.get(..n).unwrap_or_default(), p).await;
            }
        }
    });
    a
}

/// One echo "transfer": `rounds` ping-pongs of `size`-byte datagrams on a fresh socket.
async fn echo_transfer(server: SocketAddr, rounds: usize, size: usize) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    let buf = vec![7u8; size];
    let mut r = vec![0u8; 2048];
    for _ in 0..rounds {
        if s.send_to(&buf, server).await.is_err() {
            return false;
        }
        match tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut r)).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
    true
}

fn opts_for(blk: u16) -> Arc<TftpOptions> {
    Arc::new(TftpOptions {
        blksize: Some(blk),
        ..TftpOptions::default()
    })
}

/// `total` downloads of the bench file from `addr`, `conc` at once, bytes checked.
async fn tftp_run(
    addr: SocketAddr,
    blk: u16,
    total: usize,
    conc: usize,
    want: &Arc<Vec<u8>>,
) -> Run {
    let (o, want) = (opts_for(blk), want.clone());
    drive(total, conc, move || {
        let (o, want) = (o.clone(), want.clone());
        async move {
            get(addr, FILE_NAME, &o)
                .await
                .is_ok_and(|g| g.data == *want)
        }
    })
    .await
}

async fn tftp(server: &Server, server_rt: &Handle) {
    let a = server.addr(PUB, Port::Tftp).expect("TFTP bound");
    let want = Arc::new(bench_file());
    let echo = echo_server(server_rt);
    println!(
        "\nTFTP: {FILE_NAME}, a fixed file of {} bytes, served by itlsim and by tftpd-hpa; one async client",
        want.len()
    );
    // tftpd-hpa (Debian package, `make deps-bench`) serving the same bytes on a loopback port,
    // driven by the same async client in the same run (issue 4's baseline).
    let hpa = match TftpdHpa::start(&want).await {
        Ok(h) => {
            println!(
                "tftpd-hpa baseline: {} -L on {} (same file, same client)",
                h.bin, h.addr
            );
            Some(h)
        }
        Err(why) => {
            println!("tftpd-hpa baseline NOT RUN: {why}");
            None
        }
    };
    println!(
        "{:>5} {:>8} {:>10} {:>12} {:>9} {:>12} {:>11} {:>12} {:>10} {:>16}",
        "conc",
        "blksize",
        "itlsim/s",
        "echo equiv/s",
        "itl/echo",
        "tftpd-hpa/s",
        "itlsim÷hpa",
        "itlsim errs",
        "hpa errs",
        "drops itl/ech/hpa"
    );
    let mut at_256 = Vec::new();
    let mut itl_errors = 0;
    for (conc, blk, total) in [
        (1usize, 512u16, 300usize),
        (32, 512, 1500),
        (256, 512, 3000),
        (1, 1428, 300),
        (32, 1428, 1500),
        (256, 1428, 3000),
    ] {
        let (r, r_drops) = counting(udp_drops, tftp_run(a, blk, total, conc, &want)).await;
        // Same round trips: RRQ/OACK + ACK0/DATA1 + one per further block (the last block is
        // shorter than blksize, possibly empty).
        let rounds = FILE_SIZE / usize::from(blk) + 2;
        let (e, e_drops) = counting(
            udp_drops,
            drive(total, conc, move || {
                echo_transfer(echo, rounds, usize::from(blk) + 4)
            }),
        )
        .await;
        let (h, h_drops) = match &hpa {
            Some(h) => {
                let (run, d) = counting(udp_drops, tftp_run(h.addr, blk, total, conc, &want)).await;
                (Some(run), d)
            }
            None => (None, "-".to_string()),
        };
        itl_errors += r.errors;
        let (hrate, ratio, herrs) = match &h {
            Some(h) => (
                format!("{:.0}", h.per_s()),
                format!("{:.2}", r.per_s() / h.per_s()),
                format!("{}/{total}", h.errors),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{conc:>5} {blk:>8} {:>10.0} {:>12.0} {:>9.2} {hrate:>12} {ratio:>11} {:>12} {herrs:>10} {:>16}",
            r.per_s(),
            e.per_s(),
            r.per_s() / e.per_s(),
            format!("{}/{total}", r.errors),
            format!("{r_drops}/{e_drops}/{h_drops}"),
        );
        if conc == 256
            && let Some(h) = &h
        {
            at_256.push((blk, r.per_s() / h.per_s()));
        }
        if e.errors > 0 {
            println!(
                "      (echo baseline: {} of {total} echo transfers lost a datagram)",
                e.errors
            );
        }
    }
    for (blk, ratio) in &at_256 {
        println!(
            "TFTP at 256 concurrent, blksize {blk}: itlsim ÷ tftpd-hpa = {ratio:.2} (goal ≥ 4, {})",
            verdict(*ratio >= 4.0)
        );
    }
    if at_256.is_empty() {
        println!("TFTP: no tftpd-hpa ratio (baseline not run, see above)");
    }
    println!(
        "drops = UDP datagrams dropped on a full socket receive buffer during each run \
         (/proc/net/snmp RcvbufErrors, whole network namespace); a dropped RRQ, DATA or ACK \
         costs a retransmit timeout (client 0.5 s, servers 1 s)"
    );
    println!(
        "TFTP itlsim errors over all rows: {itl_errors} (goal 0, {})",
        verdict(itl_errors == 0)
    );
}

/// A tftpd-hpa process (`in.tftpd -L`) on a free loopback port, serving one file; killed on drop.
struct TftpdHpa {
    child: std::process::Child,
    bin: &'static str,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl TftpdHpa {
    async fn start(file: &[u8]) -> Result<Self, String> {
        let bin = ["/usr/sbin/in.tftpd", "/usr/bin/in.tftpd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .ok_or(
                "tftpd-hpa is not installed (no /usr/sbin/in.tftpd): `make bench-net` installs it \
                 (or `apt-get install tftpd-hpa`)",
            )?;
        if !is_root() {
            return Err(format!(
                "{bin} -s chroots into the served directory, which needs root: run the bench as root"
            ));
        }
        let dir = std::env::temp_dir().join(format!("itlsim-bench-tftpd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join(FILE_NAME), file).map_err(|e| format!("{FILE_NAME}: {e}"))?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = std::process::Command::new(bin)
            // -L: listen in the foreground (-l would detach, and the process we could kill
            // would not be the listener).
            .args(["-L", "-s"])
            .arg(&dir)
            .args(["-a", &addr.to_string(), "-u", "root"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        let h = Self {
            child,
            bin,
            addr,
            dir,
        };
        // Ready when one transfer of the file succeeds (at most 40 tries, 2 s).
        let probe = TftpOptions {
            retransmit: Duration::from_millis(50),
            retries: 0,
            deadline: Duration::from_secs(1),
            ..TftpOptions::default()
        };
        for _ in 0..40 {
            if get(addr, FILE_NAME, &probe)
                .await
                .is_ok_and(|g| g.data == file)
            {
                return Ok(h);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{bin} started on {addr} but did not serve {FILE_NAME} within 2 s"
        ))
    }
}

impl Drop for TftpdHpa {
    fn drop(&mut self) {
        // in.tftpd -L forks per request; the listener is the process we started, and its
        // children end with their transfers.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let cpu = Arc::new(ThreadCpu::new());
    let (on_start, on_stop) = (cpu.clone(), cpu.clone());
    // The listeners (and the raw rustls and echo baselines) run here; only these threads' CPU
    // time is counted as the server's.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .on_thread_start(move || on_start.thread_started())
        .on_thread_stop(move || on_stop.thread_stopped())
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let spec = ClusterSpec::new(
        "BENCH",
        Version::new(12, 5),
        &["cucm-pub", "cucm-sub1", "cucm-sub2"],
        1_767_225_600,
    );
    let cluster = Cluster::install(spec, KeySource::new(1)).expect("install");
    let clusters = Arc::new(Clusters::new(vec![cluster]));
    let view = Arc::new(WithFile {
        inner: clusters.clone(),
        name: FILE_NAME,
        bytes: Bytes::from(bench_file()),
    });
    let cfg = ServeConfig {
        mode: PortMode::Ephemeral,
        limits: Limits {
            max_connections: 1024,
            ..Limits::default()
        },
        ..ServeConfig::default()
    };
    let server = server_rt.block_on(Server::start(view, cfg)).expect("start");
    let handle = server_rt.handle().clone();
    client_rt.block_on(async {
        tvs(&clusters, &server, &handle, &cpu).await;
        tftp(&server, &handle).await;
    });
    server_rt.block_on(server.shutdown());
}
