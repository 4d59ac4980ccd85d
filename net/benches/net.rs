//! Loopback benchmark of the listeners, with same-run baselines so the figures are ratios:
//!
//! * TVS: full TLS handshake + one Verify answered, per second, at 4/16/256 concurrent clients,
//!   against raw rustls handshakes per second (same certificate, same config, no TVS) in the same
//!   run; plus single-thread RSA-2048 signs/s (aws-lc-rs) and verifies/s ÷ signs/s.
//! * TFTP: whole transfers of an ITL from the model per second, one async client driving many
//!   transfers (1 and 32 concurrent, blksize 512 and 1428), against a minimal UDP echo
//!   ping-pong with the same number of round trips per "transfer" in the same run.
//!
//! `cargo bench -p itlsim-net --bench net` (loopback only, bounded: a few seconds per row).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use itlsim_net::Limits;
use itlsim_net::clients::TvsClient;
use itlsim_net::serve::{PortMode, ServeConfig, Server};
use itlsim_net::tftp::{TftpOptions, get};
use itlsim_net::tls::{ClientAuth, ServerCertPolicy, client_config, server_config, server_name};
use itlsim_net::view::{ClusterView, Clusters, NodeRef, Port};
use itlsim_server::{CertPurpose, Cluster, ClusterSpec, KeySource, NodeId, Version};
use itlsim_wire::tvs::Message;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

const PUB: NodeRef = NodeRef {
    cluster: 0,
    node: NodeId(0),
};

/// Runs `total` jobs with `conc` in flight; returns (jobs/s, errors).
async fn drive<F, Fut>(total: usize, conc: usize, job: F) -> (f64, usize)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let job = Arc::new(job);
    let start = Instant::now();
    let mut set = JoinSet::new();
    let mut errors = 0;
    let mut started = 0;
    while started < total || !set.is_empty() {
        while started < total && set.len() < conc {
            let j = job.clone();
            set.spawn(async move { j().await });
            started += 1;
        }
        if let Some(r) = set.join_next().await {
            if !matches!(r, Ok(true)) {
                errors += 1;
            }
        }
    }
    (total as f64 / start.elapsed().as_secs_f64(), errors)
}

fn rsa_signs_per_s(key_pkcs8: &[u8]) -> f64 {
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
    let n = 300;
    let start = Instant::now();
    for i in 0..n {
        let _ = signer.sign(&[i as u8; 64]);
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

async fn tvs(clusters: &Arc<Clusters>, server: &Server) {
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
    let cfg = server_config(&id, ClientAuth::Optional).expect("config");
    let raw = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_addr = raw.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = raw.accept().await else {
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
    let client = Arc::new(TvsClient::new(ServerCertPolicy::Pin(vec![tvs_der.clone()])));
    let req = Arc::new(Message::verify_request(1, "CP-8845-SEP001122334455", &cm));
    let raw_cfg = client_config(ServerCertPolicy::Pin(vec![tvs_der]));
    let signs = rsa_signs_per_s(&id.certs[0].key_pkcs8);
    println!("RSA-2048 PSS signs/s (one thread, aws-lc-rs): {signs:.0}");
    println!(
        "{:>5} {:>14} {:>16} {:>10} {:>14} {:>7}",
        "conc", "TVS verify/s", "raw handshake/s", "TVS/raw", "verify/sign", "errors"
    );
    for (conc, total) in [(4usize, 400usize), (16, 400), (256, 768)] {
        let (c2, r2) = (client.clone(), req.clone());
        let (tvs_rate, errs) = drive(total, conc, move || {
            let (c, r) = (c2.clone(), r2.clone());
            async move {
                c.exchange(tvs_addr, std::slice::from_ref(&r))
                    .await
                    .is_ok_and(|x| x.responses.len() == 1)
            }
        })
        .await;
        let rc = raw_cfg.clone();
        let (raw_rate, raw_errs) = drive(total, conc, move || {
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
        })
        .await;
        println!(
            "{conc:>5} {tvs_rate:>14.0} {raw_rate:>16.0} {:>10.2} {:>14.2} {:>7}",
            tvs_rate / raw_rate,
            tvs_rate / signs,
            errs + raw_errs
        );
    }
}

async fn echo_server() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let a = s.local_addr().expect("addr");
    tokio::spawn(async move {
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

async fn tftp(clusters: &Arc<Clusters>, server: &Server) {
    let a = server.addr(PUB, Port::Tftp).expect("TFTP bound");
    let size = clusters
        .read(0, |c| {
            c.tftp_get(NodeId(0), "ITLFile.tlv").map(|s| s.bytes.len())
        })
        .and_then(Result::ok)
        .unwrap_or(0);
    let echo = echo_server().await;
    // tftpd-hpa (Debian package, `make deps`) serving the same bytes on a loopback port, driven
    // by the same async client in the same run (issue 4's baseline).
    let itl_bytes = clusters
        .read(0, |c| {
            c.tftp_get(NodeId(0), "ITLFile.tlv")
                .map(|s| s.bytes.to_vec())
        })
        .and_then(Result::ok)
        .unwrap_or_default();
    let hpa = TftpdHpa::start(&itl_bytes);
    println!("\nTFTP: ITLFile.tlv of {size} bytes from the model");
    match &hpa {
        Some(h) => println!("tftpd-hpa baseline on {} (same file, same client)", h.addr),
        None => println!("tftpd-hpa not installed (make deps): no baseline column"),
    }
    println!(
        "{:>5} {:>8} {:>14} {:>14} {:>10} {:>14} {:>12} {:>7}",
        "conc",
        "blksize",
        "transfers/s",
        "echo equiv/s",
        "TFTP/echo",
        "tftpd-hpa/s",
        "itlsim/hpa",
        "errors"
    );
    for (conc, blk, total) in [
        (1usize, 512u16, 300usize),
        (32, 512, 1500),
        (256, 512, 3000),
        (1, 1428, 300),
        (32, 1428, 1500),
        (256, 1428, 3000),
    ] {
        let opts = Arc::new(TftpOptions {
            blksize: Some(blk),
            ..TftpOptions::default()
        });
        let (rate, errs) = drive(total, conc, move || {
            let o = opts.clone();
            async move { get(a, "ITLFile.tlv", &o).await.is_ok() }
        })
        .await;
        // Same round trips: RRQ/OACK + ACK0/DATA1 + one per further block.
        let blocks = size / usize::from(blk) + 1;
        let rounds = blocks + 1;
        let (erate, eerrs) = drive(total, conc, move || {
            echo_transfer(echo, rounds, usize::from(blk) + 4)
        })
        .await;
        let (hrate, herrs) = match &hpa {
            Some(h) => {
                let (addr, o) = (h.addr, opts_for(blk));
                drive(total, conc, move || {
                    let o = o.clone();
                    async move { get(addr, "ITLFile.tlv", &o).await.is_ok() }
                })
                .await
            }
            None => (f64::NAN, 0),
        };
        println!(
            "{conc:>5} {blk:>8} {rate:>14.0} {erate:>14.0} {:>10.2} {hrate:>14.0} {:>12.2} {:>7}",
            rate / erate,
            rate / hrate,
            format!("{}/{herrs}", errs + eerrs)
        );
    }
    println!(
        "errors: itlsim/tftpd-hpa transfers that failed (goal: 0 for itlsim; itlsim >= 4x tftpd-hpa at 256)"
    );
}

fn opts_for(blk: u16) -> Arc<TftpOptions> {
    Arc::new(TftpOptions {
        blksize: Some(blk),
        ..TftpOptions::default()
    })
}

/// A tftpd-hpa process (`in.tftpd -l`) on a free loopback port, serving one file; killed on drop.
struct TftpdHpa {
    child: std::process::Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl TftpdHpa {
    fn start(file: &[u8]) -> Option<Self> {
        let bin = ["/usr/sbin/in.tftpd", "/usr/bin/in.tftpd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let dir = std::env::temp_dir().join(format!("itlsim-bench-tftpd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(dir.join("ITLFile.tlv"), file).ok()?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
        // `-s` chroots, which needs root (as on CI); without it the baseline column shows errors.
        let user = "root";
        let child = std::process::Command::new(bin)
            .args(["-l", "-s"])
            .arg(&dir)
            .args(["-a", &addr.to_string(), "-u", user])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(300));
        Some(Self { child, addr, dir })
    }
}

impl Drop for TftpdHpa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // in.tftpd -l forks per request; the listener is the process we started.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let spec = ClusterSpec::new(
            "BENCH",
            Version::new(12, 5),
            &["cucm-pub", "cucm-sub1", "cucm-sub2"],
            1_767_225_600,
        );
        let cluster = Cluster::install(spec, KeySource::new(1)).expect("install");
        let clusters = Arc::new(Clusters::new(vec![cluster]));
        let cfg = ServeConfig {
            mode: PortMode::Ephemeral,
            limits: Limits {
                max_connections: 1024,
                ..Limits::default()
            },
            ..ServeConfig::default()
        };
        let server = Server::start(clusters.clone(), cfg).await.expect("start");
        tvs(&clusters, &server).await;
        tftp(&clusters, &server).await;
        server.shutdown().await;
    });
}
