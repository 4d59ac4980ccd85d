//! Running every service of every node: the supervisor behind `itlsim serve`.
//!
//! [`Server::start`] binds each port of each node whose owning service runs in the model
//! (TVS → 2445; TFTP → 69, 6970, 6971, 6972) and then follows the model: after every
//! [`Clusters::apply`] it stops listeners whose service stopped (the port refuses connections,
//! open connections end) and restarts those whose service restarted, reading the certificate
//! the model holds at that moment (a TVS regeneration shows after the TVS restart; 6971/6972
//! per E13 after the TFTP restart). A restarted listener binds the same address as before.
//!
//! Addresses: [`PortMode::Ephemeral`] (port 0, tests), [`PortMode::Unprivileged`] (standard +
//! 10000 + 10 per node: 10069, 12445, 16970–16972, then 10079, 12455 …) or
//! [`PortMode::Standard`] (69/2445/6970–6972, one node per address), with per-port overrides.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::HttpStats;
use crate::limits::Limits;
use crate::tftp::TftpStats;
use crate::tls::{ClientAuth, server_config};
use crate::tvs::TvsStats;
use crate::view::{ClusterView, Clusters, NodeRef, Port};

/// How ports are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMode {
    /// Port 0 everywhere: the OS picks (tests).
    Ephemeral,
    /// [`Port::unprivileged`]: standard + 10000 + 10 × node index.
    Unprivileged,
    /// The CUCM ports (need privileges for 69; one node per address).
    Standard,
}

/// Where to listen.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address every listener binds (127.0.0.1 by default, bad-inputs §4.2).
    pub bind: IpAddr,
    /// Port choice.
    pub mode: PortMode,
    /// Overrides: (`hostname` or `cluster/hostname`, port) → number.
    pub overrides: BTreeMap<(String, Port), u16>,
    /// Caps and deadlines.
    pub limits: Limits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mode: PortMode::Unprivileged,
            overrides: BTreeMap::new(),
            limits: Limits::default(),
        }
    }
}

impl ServeConfig {
    /// Parses one `--port-map` entry `HOST.SERVICE=PORT` (`cucm-pub.tvs=2445`,
    /// `A/cucm-pub.tftp=69`; SERVICE is `tftp`, `tvs`, `http`, `https6971`, `https6972` or the
    /// standard number).
    pub fn add_port_map(&mut self, entry: &str) -> Result<(), ServeError> {
        let bad = || ServeError::Config(format!("--port-map {entry:?}: want HOST.SERVICE=PORT"));
        let (lhs, port) = entry.split_once('=').ok_or_else(bad)?;
        let (host, svc) = lhs.rsplit_once('.').ok_or_else(bad)?;
        let p = Port::parse(svc).ok_or_else(bad)?;
        let n: u16 = port.parse().map_err(|_| bad())?;
        self.overrides.insert((host.to_string(), p), n);
        Ok(())
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration or cluster file.
    #[error("{0}")]
    Config(String),
    /// A port could not be bound.
    #[error("bind {addr} ({what}): {error}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Which listener.
        what: String,
        /// OS error.
        error: std::io::Error,
    },
    /// The model has no certificate for a TLS port.
    #[error("{0}: {1}")]
    Tls(String, crate::tls::TlsSetupError),
}

/// Counters of one listener, kept across restarts.
#[derive(Clone, Debug)]
pub enum Stats {
    /// TVS.
    Tvs(Arc<TvsStats>),
    /// TFTP.
    Tftp(Arc<TftpStats>),
    /// HTTP/HTTPS.
    Http(Arc<HttpStats>),
}

/// Accept queue of the TCP listeners (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 1024;

/// A TCP listener on `addr` with a [`LISTEN_BACKLOG`] accept queue. `TcpListener::bind` uses
/// 128, which a burst of more clients connecting at once (256 phones after a cluster restart;
/// the TVS benchmark at 256 concurrent) overflows: the kernel drops the extra SYNs and those
/// clients wait for a 1 s SYN retransmit.
pub fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted listener rebinds its port at once.
    #[cfg(unix)]
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(LISTEN_BACKLOG)
}

struct Running {
    task: JoinHandle<()>,
    epoch: u64,
}

struct Supervisor {
    view: Arc<dyn ClusterView>,
    limits: Limits,
    addrs: Arc<Mutex<BTreeMap<(NodeRef, Port), SocketAddr>>>,
    stats: BTreeMap<(NodeRef, Port), Stats>,
    running: BTreeMap<(NodeRef, Port), Running>,
}

impl Supervisor {
    fn addr(&self, key: (NodeRef, Port)) -> Option<SocketAddr> {
        self.addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied()
    }

    async fn start(&mut self, node: NodeRef, port: Port) -> Result<(), ServeError> {
        let key = (node, port);
        let Some(addr) = self.addr(key) else {
            return Ok(());
        };
        let name = format!("{} {}", self.view.node_name(node), port.name());
        let bind_err = |error| ServeError::Bind {
            addr,
            what: name.clone(),
            error,
        };
        let epoch = self.view.start_epoch(node, port);
        let view = self.view.clone();
        let limits = self.limits.clone();
        let stats = self.stats.get(&key).cloned();
        let task = match (port, stats) {
            (Port::Tftp, Some(Stats::Tftp(st))) => {
                let sock = UdpSocket::bind(addr).await.map_err(bind_err)?;
                let bound = sock.local_addr().map_err(bind_err)?;
                self.remember(key, bound);
                tokio::spawn(crate::tftp::serve(sock, node, view, limits, st))
            }
            (Port::Tvs, Some(Stats::Tvs(st))) => {
                let id = self.view.tls_identity(node, port).unwrap_or_default();
                let cfg = server_config(&id, ClientAuth::Optional)
                    .map_err(|e| ServeError::Tls(name.clone(), e))?;
                let l = listen_tcp(addr).map_err(bind_err)?;
                self.remember(key, l.local_addr().map_err(bind_err)?);
                tokio::spawn(crate::tvs::serve(l, node, view, cfg, limits, st))
            }
            (_, Some(Stats::Http(st))) => {
                let cfg = if port.is_tls() {
                    let id = self.view.tls_identity(node, port).unwrap_or_default();
                    Some(
                        server_config(&id, ClientAuth::None)
                            .map_err(|e| ServeError::Tls(name.clone(), e))?,
                    )
                } else {
                    None
                };
                let l = listen_tcp(addr).map_err(bind_err)?;
                self.remember(key, l.local_addr().map_err(bind_err)?);
                tokio::spawn(crate::http::serve(l, node, port, view, cfg, limits, st))
            }
            _ => return Ok(()),
        };
        tracing::info!(listener = %name, addr = %self.addr(key).unwrap_or(addr), "listening");
        self.running.insert(key, Running { task, epoch });
        Ok(())
    }

    fn remember(&self, key: (NodeRef, Port), addr: SocketAddr) {
        self.addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, addr);
    }

    async fn stop(&mut self, key: (NodeRef, Port)) {
        if let Some(r) = self.running.remove(&key) {
            r.task.abort();
            let _ = r.task.await;
            tracing::info!(listener = %format!("{} {}", self.view.node_name(key.0), key.1.name()), "stopped");
        }
    }

    /// Brings the listeners in line with the model.
    async fn reconcile(&mut self) -> Result<(), ServeError> {
        let keys: Vec<(NodeRef, Port)> = self.stats.keys().copied().collect();
        for key in keys {
            let (node, port) = key;
            let want = self.view.running(node, port);
            let epoch = self.view.start_epoch(node, port);
            let stale = self.running.get(&key).is_some_and(|r| r.epoch != epoch);
            if self.running.contains_key(&key) && (!want || stale) {
                self.stop(key).await;
            }
            if want && !self.running.contains_key(&key) {
                self.start(node, port).await?;
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) {
        let keys: Vec<_> = self.running.keys().copied().collect();
        for k in keys {
            self.stop(k).await;
        }
    }
}

/// A running set of listeners.
pub struct Server {
    addrs: Arc<Mutex<BTreeMap<(NodeRef, Port), SocketAddr>>>,
    stats: BTreeMap<(NodeRef, Port), Stats>,
    reconciled: watch::Receiver<u64>,
    model: watch::Receiver<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({} listeners)", self.stats.len())
    }
}

fn planned_port(
    config: &ServeConfig,
    view: &dyn ClusterView,
    node: NodeRef,
    port: Port,
    index: usize,
) -> u16 {
    let full = view.node_name(node);
    let host = full.rsplit('/').next().unwrap_or(&full).to_string();
    if let Some(p) = config
        .overrides
        .get(&(full.clone(), port))
        .or_else(|| config.overrides.get(&(host, port)))
    {
        return *p;
    }
    match config.mode {
        PortMode::Ephemeral => 0,
        PortMode::Unprivileged => port.unprivileged(index),
        PortMode::Standard => port.standard(),
    }
}

impl Server {
    /// Binds every listener whose service runs and starts following the model.
    pub async fn start(
        view: Arc<dyn ClusterView>,
        config: ServeConfig,
    ) -> Result<Self, ServeError> {
        let nodes = view.nodes();
        let mut addrs = BTreeMap::new();
        let mut stats = BTreeMap::new();
        // (UDP?, port) → listener: a clash within one protocol is a configuration error.
        let mut taken: BTreeMap<(bool, u16), String> = BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            for port in Port::ALL {
                let n = planned_port(&config, view.as_ref(), *node, port, i);
                let what = format!("{} {}", view.node_name(*node), port.name());
                if n != 0
                    && let Some(other) = taken.insert((port == Port::Tftp, n), what.clone())
                {
                    return Err(ServeError::Config(format!(
                        "{what} and {other} both want port {n} on {}: use --port-map or another mode",
                        config.bind
                    )));
                }
                addrs.insert((*node, port), SocketAddr::new(config.bind, n));
                stats.insert(
                    (*node, port),
                    match port {
                        Port::Tvs => Stats::Tvs(Arc::default()),
                        Port::Tftp => Stats::Tftp(Arc::default()),
                        _ => Stats::Http(Arc::default()),
                    },
                );
            }
        }
        let addrs = Arc::new(Mutex::new(addrs));
        let mut sup = Supervisor {
            view: view.clone(),
            limits: config.limits.clone(),
            addrs: addrs.clone(),
            stats: stats.clone(),
            running: BTreeMap::new(),
        };
        let mut model = view.subscribe();
        let first = *model.borrow_and_update();
        if let Err(e) = sup.reconcile().await {
            sup.shutdown().await;
            return Err(e);
        }
        let (done_tx, reconciled) = watch::channel(first);
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut rx = model.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rx.changed() => {
                        if r.is_err() { break; }
                        let g = *rx.borrow_and_update();
                        if let Err(e) = sup.reconcile().await {
                            tracing::error!(error = %e, "could not restart a listener");
                        }
                        let _ = done_tx.send(g);
                    }
                    _ = &mut stop_rx => break,
                }
            }
            sup.shutdown().await;
        });
        Ok(Self {
            addrs,
            stats,
            reconciled,
            model,
            stop: Some(stop_tx),
            task,
        })
    }

    /// The address of a listener (stable across restarts once bound).
    pub fn addr(&self, node: NodeRef, port: Port) -> Option<SocketAddr> {
        self.addrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(node, port))
            .copied()
    }

    /// Every listener address.
    pub fn addrs(&self) -> BTreeMap<(NodeRef, Port), SocketAddr> {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Counters of a listener.
    pub fn stats(&self, node: NodeRef, port: Port) -> Option<&Stats> {
        self.stats.get(&(node, port))
    }

    /// Waits until the listeners reflect every model change made so far.
    pub async fn settle(&mut self) {
        let want = *self.model.borrow_and_update();
        let _ = self
            .reconciled
            .wait_for(|g| g.wrapping_sub(want) < u64::MAX / 2)
            .await;
    }

    /// Stops every listener.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// What `itlsim serve` prints at start: nodes, listeners, ITL signer, fingerprints.
pub fn summary(clusters: &Clusters, server: &Server) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let addrs = server.addrs();
    for ci in 0..clusters.len() {
        clusters.read(ci, |c| {
            let _ = writeln!(
                s,
                "cluster {} ({}, {:?})",
                c.name(),
                c.version(),
                c.security_mode()
            );
            for n in c.nodes() {
                let node = NodeRef {
                    cluster: ci,
                    node: n.id,
                };
                let _ = writeln!(s, "  node {} ({})", n.hostname, n.id);
                for port in Port::ALL {
                    let state = if n.runs(port.service()) {
                        ""
                    } else {
                        " (service stopped)"
                    };
                    if let Some(a) = addrs.get(&(node, port)) {
                        let _ = writeln!(s, "    {:<10} {}{}", port.name(), a, state);
                    }
                }
                if let Some(plan) = c.itl_plan(n.id) {
                    let _ = writeln!(
                        s,
                        "    ITL signer {} sha256 {} ({})",
                        plan.signer.subject(),
                        hex::encode(plan.signer.fingerprint()),
                        plan.signer_reason
                    );
                }
                for p in [
                    itlsim_server::CertPurpose::Tvs,
                    itlsim_server::CertPurpose::CallManager,
                    itlsim_server::CertPurpose::CallManagerEcdsa,
                    itlsim_server::CertPurpose::Tomcat,
                ] {
                    if let Some(id) = c.identity(n.id, p) {
                        let _ = writeln!(
                            s,
                            "    {:<18} sha256 {}",
                            p.name(),
                            hex::encode(id.cert.fingerprint())
                        );
                    }
                }
            }
        });
    }
    s
}

// ---- cluster file ----

#[derive(Debug, Deserialize)]
struct ClusterFile {
    #[serde(default)]
    seed: u64,
    /// Unix seconds the clusters were installed (certificate validity start); default: now − 1 day.
    #[serde(default)]
    installed_at: Option<i64>,
    clusters: Vec<ClusterDef>,
    #[serde(default)]
    fleet: Vec<FleetDef>,
}

#[derive(Debug, Deserialize)]
struct ClusterDef {
    name: String,
    version: String,
    #[serde(default)]
    security: Option<String>,
    nodes: Vec<String>,
    #[serde(default)]
    no_tftp: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct FleetDef {
    cluster: String,
    models: BTreeMap<String, u64>,
    mac_start: String,
}

/// Largest cluster file read (bad-inputs §2.6 / §4.5).
const MAX_FILE: usize = 1024 * 1024;
/// Phones added per cluster at most (per-phone files are built on demand, this bounds the map).
const MAX_PHONES: u64 = 200_000;

/// Builds the clusters described by the `clusters:` (and optional `fleet:`) section of a YAML
/// file — the same section a scenario uses (phone-sim's parser is not reused: that crate will
/// depend on this one for live mode). Other top-level keys (timeline, expectations …) are
/// ignored. `now` = wall-clock Unix seconds, used when the file has no `installed_at`.
pub fn clusters_from_yaml(text: &str, now: i64) -> Result<Vec<itlsim_server::Cluster>, ServeError> {
    use itlsim_server::{AdminAction, ClusterSpec, CmGroupId, KeySource, Mac, Version};
    if text.len() > MAX_FILE {
        return Err(ServeError::Config(format!(
            "cluster file larger than {MAX_FILE} bytes"
        )));
    }
    let options = serde_saphyr::options! {
        budget: Some(serde_saphyr::Budget::default()),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let def: ClusterFile = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| ServeError::Config(format!("cluster file: {e}")))?;
    if def.clusters.is_empty() {
        return Err(ServeError::Config("cluster file: no clusters".into()));
    }
    let at = def.installed_at.unwrap_or(now - 86_400);
    let mut out = Vec::new();
    for (i, cd) in def.clusters.iter().enumerate() {
        let version = Version::parse(&cd.version)
            .map_err(|e| ServeError::Config(format!("cluster {}: version: {e}", cd.name)))?;
        let hosts: Vec<&str> = cd.nodes.iter().map(String::as_str).collect();
        let mut spec = ClusterSpec::new(&cd.name, version, &hosts, at);
        for h in &cd.no_tftp {
            let n = spec
                .nodes
                .iter_mut()
                .find(|n| &n.hostname == h)
                .ok_or_else(|| {
                    ServeError::Config(format!("cluster {}: no_tftp: no node {h}", cd.name))
                })?;
            n.tftp = false;
        }
        let keys = KeySource::new(def.seed.wrapping_add(i as u64));
        let mut c = itlsim_server::Cluster::install(spec, keys)
            .map_err(|e| ServeError::Config(format!("cluster {}: {e}", cd.name)))?;
        match cd
            .security
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("non-secure") | Some("nonsecure") => {}
            Some("mixed") | Some("mixed-mode") => {
                c.apply(at, AdminAction::CtlSetMixedMode { etoken: false })
                    .map_err(|e| {
                        ServeError::Config(format!("cluster {}: mixed mode: {e}", cd.name))
                    })?;
            }
            Some(other) => {
                return Err(ServeError::Config(format!(
                    "cluster {}: security {other:?}: want non-secure or mixed",
                    cd.name
                )));
            }
        }
        let mut phones = 0u64;
        for f in def.fleet.iter().filter(|f| f.cluster == cd.name) {
            let mac = Mac::parse(&f.mac_start.replace([':', '.', '-'], "")).ok_or_else(|| {
                ServeError::Config(format!("fleet: bad mac_start {:?}", f.mac_start))
            })?;
            let mut first = mac.0.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            for (model, count) in &f.models {
                phones = phones.saturating_add(*count);
                if phones > MAX_PHONES {
                    return Err(ServeError::Config(format!(
                        "fleet: more than {MAX_PHONES} phones"
                    )));
                }
                c.add_fleet(model, first, *count, CmGroupId(0))
                    .map_err(|e| ServeError::Config(format!("fleet: {e}")))?;
                first = first.wrapping_add(*count);
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// `itlsim serve`: builds the clusters, starts every listener, prints the summary, serves until
/// `shutdown` resolves, then stops every listener.
pub async fn run(
    clusters: Vec<itlsim_server::Cluster>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if !config.bind.is_loopback() {
        tracing::warn!(bind = %config.bind,
            "binding a non-loopback address with TEST-ONLY keys: anyone who can reach it can \
             fetch files signed by keys that are public in this repository (bad-inputs §4.1)");
    }
    let clusters = Arc::new(Clusters::new(clusters));
    let server = Server::start(clusters.clone(), config).await?;
    print!("{}", summary(&clusters, &server));
    println!("serving; Ctrl-C to stop");
    shutdown.await;
    server.shutdown().await;
    println!("stopped");
    Ok(())
}

/// Logs to stderr with `RUST_LOG` (default `info`); does nothing if a subscriber is installed.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads the cluster file, then [`run`]s on a new tokio runtime until Ctrl-C (the CLI entry).
pub fn serve_file_blocking(path: &std::path::Path, config: ServeConfig) -> Result<(), ServeError> {
    serve_file_with_imports(path, None, config)
}

/// As [`serve_file_blocking`], loading a real cluster's certificates first ([`import_certs`]).
pub fn serve_file_with_imports(
    path: &std::path::Path,
    imports: Option<&std::path::Path>,
    config: ServeConfig,
) -> Result<(), ServeError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_FILE as u64 {
        return Err(ServeError::Config(format!(
            "{}: larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut clusters = clusters_from_yaml(&text, now)?;
    if let Some(dir) = imports {
        for line in import_certs(&mut clusters, dir, now)? {
            println!("imported {line}");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Config(format!("tokio runtime: {e}")))?;
    rt.block_on(run(clusters, config, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

impl ServeError {
    /// Exit code for the CLI (stack.md: 2 usage/scenario error, 3 runtime/infrastructure).
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_) => 2,
            _ => 3,
        }
    }
}

/// `--import-certs DIR`: loads the certificates of a real cluster into the model, so that the
/// files served are signed with that cluster's keys (reproducing a reported ITL in a lab).
///
/// Layout: `DIR/<cluster>/<node>/<purpose>.pem` (private key in PKCS#8 "PRIVATE KEY" + the
/// certificate; purpose = CallManager, CallManager-ECDSA, tomcat, tomcat-ECDSA, ipsec, TVS, CAPF,
/// ITLRecovery) replaces that identity; `DIR/<cluster>/trust/<store>/*.pem|*.der` (store =
/// CallManager-trust, Phone-SAST-trust, …) uploads trust certificates on the publisher. Each
/// identity's own certificate is first put in its -trust store, as CUCM requires the issuer there
/// before a CA-signed upload (seed 000), then the identity is replaced (which triggers the
/// model's documented restarts and resets). Returns one line per imported file.
pub fn import_certs(
    clusters: &mut [itlsim_server::Cluster],
    dir: &std::path::Path,
    now: i64,
) -> Result<Vec<String>, ServeError> {
    use itlsim_server::{AdminAction, CertPurpose, NodeId, TrustStoreKind};
    let cfg = |m: String| ServeError::Config(m);
    let mut done = Vec::new();
    for c in clusters.iter_mut() {
        let cdir = dir.join(c.name());
        if !cdir.is_dir() {
            continue;
        }
        let nodes: Vec<(NodeId, String)> = c
            .nodes()
            .iter()
            .map(|n| (n.id, n.hostname.clone()))
            .collect();
        for (id, host) in nodes {
            let ndir = cdir.join(&host);
            let Ok(rd) = std::fs::read_dir(&ndir) else {
                continue;
            };
            let mut files: Vec<std::path::PathBuf> =
                rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let stem = f
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_string();
                let purpose = CertPurpose::parse(&stem).ok_or_else(|| {
                    cfg(format!(
                        "{}: unknown certificate type {stem:?}",
                        f.display()
                    ))
                })?;
                let text = std::fs::read(&f).map_err(|e| cfg(format!("{}: {e}", f.display())))?;
                let blocks = pem::parse_many(&text)
                    .map_err(|e| cfg(format!("{}: PEM: {e}", f.display())))?;
                let cert_der = blocks
                    .iter()
                    .find(|b| b.tag() == "CERTIFICATE")
                    .map(|b| b.contents().to_vec());
                let key = blocks
                    .iter()
                    .find(|b| b.tag() == "PRIVATE KEY")
                    .map(|b| b.contents().to_vec());
                let (Some(cert_der), Some(key_pkcs8)) = (cert_der, key) else {
                    return Err(cfg(format!(
                        "{}: needs a CERTIFICATE and a PKCS#8 PRIVATE KEY block (convert with `openssl pkcs8 -topk8 -nocrypt`)",
                        f.display()
                    )));
                };
                let store = match purpose {
                    CertPurpose::Tomcat | CertPurpose::TomcatEcdsa => TrustStoreKind::TomcatTrust,
                    CertPurpose::Ipsec => TrustStoreKind::IpsecTrust,
                    CertPurpose::Tvs => TrustStoreKind::TvsTrust,
                    CertPurpose::Capf => TrustStoreKind::CapfTrust,
                    _ => TrustStoreKind::CallManagerTrust,
                };
                c.apply(
                    now,
                    AdminAction::UploadTrust {
                        node: id,
                        store,
                        cert_der: cert_der.clone(),
                    },
                )
                .map_err(|e| cfg(format!("{}: {e}", f.display())))?;
                c.apply(
                    now,
                    AdminAction::UploadCaSigned {
                        node: id,
                        purpose,
                        cert_der,
                        key_pkcs8,
                    },
                )
                .map_err(|e| cfg(format!("{}: {e}", f.display())))?;
                done.push(format!(
                    "{}/{host}: {} from {}",
                    c.name(),
                    purpose.name(),
                    f.display()
                ));
            }
        }
        let tdir = cdir.join("trust");
        let Ok(rd) = std::fs::read_dir(&tdir) else {
            continue;
        };
        let mut stores: Vec<std::path::PathBuf> =
            rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        stores.sort();
        for sdir in stores {
            let sname = sdir
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let store = TrustStoreKind::ALL
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(&sname))
                .ok_or_else(|| cfg(format!("{}: unknown trust store {sname:?}", sdir.display())))?;
            let Ok(rd) = std::fs::read_dir(&sdir) else {
                continue;
            };
            let mut files: Vec<std::path::PathBuf> =
                rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let bytes = std::fs::read(&f).map_err(|e| cfg(format!("{}: {e}", f.display())))?;
                let der = if bytes.first() == Some(&0x30) {
                    bytes
                } else {
                    pem::parse_many(&bytes)
                        .ok()
                        .and_then(|b| b.into_iter().find(|b| b.tag() == "CERTIFICATE"))
                        .map(|b| b.contents().to_vec())
                        .ok_or_else(|| cfg(format!("{}: no certificate", f.display())))?
                };
                c.apply(
                    now,
                    AdminAction::UploadTrust {
                        node: NodeId(0),
                        store,
                        cert_der: der,
                    },
                )
                .map_err(|e| cfg(format!("{}: {e}", f.display())))?;
                done.push(format!("{}: {} += {}", c.name(), store.name(), f.display()));
            }
        }
    }
    Ok(done)
}
