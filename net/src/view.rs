//! What the listeners ask the cluster model, as one trait ([`ClusterView`]), and its
//! implementation for `itlsim-server` clusters ([`Clusters`]).
//!
//! The listeners never touch the model directly: a file request becomes
//! [`ClusterView::serve_file`], a TVS request [`ClusterView::tvs_answer`], a TLS listener start
//! [`ClusterView::tls_identity`]. [`Clusters`] holds each model behind a `RwLock`; admin actions
//! go through [`Clusters::apply`], which bumps a generation the supervisor in [`crate::serve`]
//! watches, so a stopped service closes its port and a restarted one comes back with the
//! certificate the model holds at restart time.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use itlsim_server::tvs::TvsUnavailable;
use itlsim_server::{
    ActionReport, AdminAction, CertPurpose, Cluster, FileKind, ModelError, NodeId, PrivateKey,
    Service, TftpMiss,
};
use itlsim_wire::tvs::{Request, Response};
use tokio::sync::watch;

/// One node of one of the clusters being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRef {
    /// Index of the cluster in [`Clusters`].
    pub cluster: usize,
    /// Node inside it.
    pub node: NodeId,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}/{}", self.cluster, self.node)
    }
}

/// A listening port of a CUCM node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Port {
    /// TVS, TCP 2445, TLS (wire-formats §6.1).
    Tvs,
    /// TFTP, UDP 69 (wire-formats §3.7).
    Tftp,
    /// HTTP 6970, the TFTP files (wire-formats §3.7, phone-behaviour §2.3).
    Http,
    /// HTTPS 6971, CallManager / CallManager-ECDSA identity (phone-behaviour §2.3, E13).
    Https6971,
    /// HTTPS 6972, tomcat identity (issue 4; seed 000/001 TFTP note).
    Https6972,
}

impl Port {
    /// Every port, in a fixed order.
    pub const ALL: [Port; 5] = [
        Port::Tftp,
        Port::Tvs,
        Port::Http,
        Port::Https6971,
        Port::Https6972,
    ];

    /// The standard CUCM port number.
    pub fn standard(self) -> u16 {
        match self {
            Port::Tvs => 2445,
            Port::Tftp => 69,
            Port::Http => 6970,
            Port::Https6971 => 6971,
            Port::Https6972 => 6972,
        }
    }

    /// The unprivileged default: standard + 10000 (69 → 10069, 2445 → 12445, 6970 → 16970 …;
    /// bad-inputs §4.2 suggests 10069/12445/16971), plus 10 per node across all clusters.
    pub fn unprivileged(self, global_node_index: usize) -> u16 {
        let off = u16::try_from(global_node_index.saturating_mul(10)).unwrap_or(u16::MAX);
        self.standard().saturating_add(10_000).saturating_add(off)
    }

    /// The model service that owns this port. HTTP 6970/6971/6972 are served by the TFTP service
    /// (issue 4: "a node whose TFTP service is stopped stops answering TFTP/HTTP").
    pub fn service(self) -> Service {
        match self {
            Port::Tvs => Service::Tvs,
            _ => Service::Tftp,
        }
    }

    /// Short name (`tvs`, `tftp`, `http`, `https6971`, `https6972`), used by `--port-map`.
    pub fn name(self) -> &'static str {
        match self {
            Port::Tvs => "tvs",
            Port::Tftp => "tftp",
            Port::Http => "http",
            Port::Https6971 => "https6971",
            Port::Https6972 => "https6972",
        }
    }

    /// Parses [`Port::name`] (also accepts the standard number).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s) || p.standard().to_string() == s)
    }

    /// Is this a TLS port?
    pub fn is_tls(self) -> bool {
        matches!(self, Port::Tvs | Port::Https6971 | Port::Https6972)
    }
}

/// The answer to a file request (TFTP, HTTP, HTTPS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAnswer {
    /// The bytes.
    Found(Bytes),
    /// TFTP "File not found", HTTP 404.
    NotFound,
    /// No CTL on a non-mixed cluster: HTTP 503 (phone-behaviour §2.3/§2.4 step 1, S12 log),
    /// TFTP "File not found".
    CtlAbsent,
    /// The TFTP service is not running (a race with a stop: the port is closing).
    ServiceDown,
    /// The model could not build the file (a model bug, logged): TFTP ERROR 0, HTTP 500.
    Failed(String),
}

/// A certificate with its private key, as a TLS listener presents it.
#[derive(Clone, Debug)]
pub struct TlsCert {
    /// DER certificate (self-signed CUCM identity; no chain).
    pub cert_der: Vec<u8>,
    /// PKCS#8 DER private key (RSA, P-256 or P-384).
    pub key_pkcs8: Vec<u8>,
    /// True for EC keys.
    pub ec: bool,
}

/// What a TLS listener presents: candidates in preference order; the handshake picks the first
/// whose key type the client can verify (an ECDSA-capable client gets the EC identity on 6971,
/// others the RSA one).
#[derive(Clone, Debug, Default)]
pub struct TlsIdentity {
    /// Candidates.
    pub certs: Vec<TlsCert>,
}

/// The questions listeners ask. Implemented for the `itlsim-server` model by [`Clusters`].
pub trait ClusterView: Send + Sync + 'static {
    /// Every node served.
    fn nodes(&self) -> Vec<NodeRef>;
    /// A display name (`cluster/hostname`).
    fn node_name(&self, node: NodeRef) -> String;
    /// Is the service owning `port` running on `node`?
    fn running(&self, node: NodeRef, port: Port) -> bool;
    /// Changes each time the service owning `port` restarts on `node`.
    fn start_epoch(&self, node: NodeRef, port: Port) -> u64;
    /// A receiver that changes after every model change.
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// A file request for `name` from `client` (TFTP or HTTP 6970/6971/6972).
    fn serve_file(&self, node: NodeRef, name: &str, client: SocketAddr) -> FileAnswer;
    /// The TVS answer, or `None` when TVS does not run on `node` (close the connection).
    fn tvs_answer(&self, node: NodeRef, request: &Request) -> Option<Response>;
    /// What a TLS listener of `node` presents from now on (read when the listener starts).
    fn tls_identity(&self, node: NodeRef, port: Port) -> Option<TlsIdentity>;
}

struct Slot {
    model: RwLock<Cluster>,
    /// Every private key ever seen in the model, by certificate SHA-256: the 6971/6972 snapshot
    /// of the model (E13) keeps only the certificate, so after a regeneration its key is found
    /// here.
    keys: Mutex<BTreeMap<[u8; 32], PrivateKey>>,
    /// Restart counters per (node, service).
    epochs: Mutex<BTreeMap<(NodeId, Service), u64>>,
}

/// The clusters being served, each behind a lock, changed only through [`Clusters::apply`].
pub struct Clusters {
    slots: Vec<Slot>,
    changed: watch::Sender<u64>,
}

impl fmt::Debug for Clusters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clusters({})", self.slots.len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Clusters {
    /// Wraps installed clusters.
    pub fn new(clusters: Vec<Cluster>) -> Self {
        let slots = clusters
            .into_iter()
            .map(|c| {
                let s = Slot {
                    model: RwLock::new(c),
                    keys: Mutex::new(BTreeMap::new()),
                    epochs: Mutex::new(BTreeMap::new()),
                };
                s.remember_keys();
                s
            })
            .collect();
        Self {
            slots,
            changed: watch::Sender::new(0),
        }
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No clusters?
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reads cluster `index`.
    pub fn read<R>(&self, index: usize, f: impl FnOnce(&Cluster) -> R) -> Option<R> {
        let slot = self.slots.get(index)?;
        let g = slot.model.read().unwrap_or_else(|p| p.into_inner());
        Some(f(&g))
    }

    /// Applies an admin action at scenario time `now` to cluster `index`, then tells the
    /// listeners (stopped services close, restarted ones come back with new certificates).
    pub fn apply(
        &self,
        index: usize,
        now: i64,
        action: AdminAction,
    ) -> Result<ActionReport, ModelError> {
        let slot = self
            .slots
            .get(index)
            .ok_or_else(|| ModelError::Invalid(format!("no cluster {index}")))?;
        let report = {
            let mut g = slot.model.write().unwrap_or_else(|p| p.into_inner());
            let report = g.apply(now, action)?;
            let mut epochs = lock(&slot.epochs);
            for n in g.nodes() {
                for s in [Service::Tvs, Service::Tftp] {
                    if report.restarted(n.id, s) {
                        *epochs.entry((n.id, s)).or_insert(0) += 1;
                    }
                }
            }
            report
        };
        slot.remember_keys();
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
        Ok(report)
    }

    /// Changes cluster `index` outside an admin action (device records added by bulk
    /// administration, registration state), then tells the listeners. Service restarts are not
    /// tracked here: use [`Clusters::apply`] for those.
    pub fn modify<R>(&self, index: usize, f: impl FnOnce(&mut Cluster) -> R) -> Option<R> {
        let slot = self.slots.get(index)?;
        let r = {
            let mut g = slot.model.write().unwrap_or_else(|p| p.into_inner());
            f(&mut g)
        };
        slot.remember_keys();
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
        Some(r)
    }

    fn with<R>(&self, node: NodeRef, f: impl FnOnce(&Slot, &Cluster) -> R) -> Option<R> {
        let slot = self.slots.get(node.cluster)?;
        let g = slot.model.read().unwrap_or_else(|p| p.into_inner());
        Some(f(slot, &g))
    }
}

impl Slot {
    fn remember_keys(&self) {
        let g = self.model.read().unwrap_or_else(|p| p.into_inner());
        let mut keys = lock(&self.keys);
        for (_, id) in g.own_identities() {
            keys.entry(id.cert.fingerprint())
                .or_insert_with(|| id.key.clone());
        }
    }

    fn cert_with_key(&self, cert: &itlsim_server::Certificate) -> Option<TlsCert> {
        let key = lock(&self.keys).get(&cert.fingerprint()).cloned()?;
        Some(TlsCert {
            cert_der: cert.der().to_vec(),
            key_pkcs8: key.pkcs8_der().to_vec(),
            ec: !key.spec().is_rsa(),
        })
    }
}

fn is_ctl(name: &str) -> bool {
    matches!(
        FileKind::parse(name),
        Some(FileKind::CtlFile | FileKind::CtlSep(_))
    )
}

impl ClusterView for Clusters {
    fn nodes(&self) -> Vec<NodeRef> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            let g = s.model.read().unwrap_or_else(|p| p.into_inner());
            out.extend(g.nodes().iter().map(|n| NodeRef {
                cluster: i,
                node: n.id,
            }));
        }
        out
    }

    fn node_name(&self, node: NodeRef) -> String {
        self.with(node, |_, c| match c.node(node.node) {
            Ok(n) => format!("{}/{}", c.name(), n.hostname),
            Err(_) => format!("{}/{}", c.name(), node.node),
        })
        .unwrap_or_else(|| node.to_string())
    }

    fn running(&self, node: NodeRef, port: Port) -> bool {
        self.with(node, |_, c| {
            c.node(node.node).is_ok_and(|n| n.runs(port.service()))
        })
        .unwrap_or(false)
    }

    fn start_epoch(&self, node: NodeRef, port: Port) -> u64 {
        self.slots
            .get(node.cluster)
            .map(|s| {
                lock(&s.epochs)
                    .get(&(node.node, port.service()))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn serve_file(&self, node: NodeRef, name: &str, _client: SocketAddr) -> FileAnswer {
        self.with(node, |_, c| match c.tftp_get(node.node, name) {
            Ok(served) => FileAnswer::Found(Bytes::from_owner(served.bytes)),
            Err(TftpMiss::ServiceDown(_)) => FileAnswer::ServiceDown,
            // No CTL in non-secure mode: CUCM answers 503 on HTTP (S12), "File not found" on
            // TFTP (phone-behaviour §2.4 step 1).
            Err(TftpMiss::NotFound(_)) if is_ctl(name) && c.ctl().is_none() => {
                FileAnswer::CtlAbsent
            }
            Err(TftpMiss::NotFound(_)) => FileAnswer::NotFound,
            Err(TftpMiss::Build(e)) => FileAnswer::Failed(e),
        })
        .unwrap_or(FileAnswer::NotFound)
    }

    fn tvs_answer(&self, node: NodeRef, request: &Request) -> Option<Response> {
        self.with(node, |_, c| match c.tvs_answer(node.node, request) {
            Ok(d) => {
                tracing::debug!(node = %node, reasons = ?d.reasons, "TVS decision");
                Some(d.response)
            }
            Err(TvsUnavailable::NotRunning(_) | TvsUnavailable::NoNode(_)) => None,
        })
        .flatten()
    }

    fn tls_identity(&self, node: NodeRef, port: Port) -> Option<TlsIdentity> {
        self.with(node, |slot, c| {
            let n = c.node(node.node).ok()?;
            let current = |p: CertPurpose| {
                c.identity(node.node, p).map(|id| TlsCert {
                    cert_der: id.cert.der().to_vec(),
                    key_pkcs8: id.key.pkcs8_der().to_vec(),
                    ec: !id.key.spec().is_rsa(),
                })
            };
            let certs: Vec<TlsCert> = match port {
                // The TVS certificate, RSA (wire-formats §6.1, UCM-DOC).
                Port::Tvs => current(CertPurpose::Tvs).into_iter().collect(),
                // E13: 6971 presents the CallManager certificate of the last TFTP start (the
                // model's snapshot); the ECDSA one is taken when this listener starts, i.e. at the
                // same TFTP (re)start.
                Port::Https6971 => current(CertPurpose::CallManagerEcdsa)
                    .into_iter()
                    .chain(
                        n.tftp
                            .https_6971
                            .as_ref()
                            .and_then(|c| slot.cert_with_key(c)),
                    )
                    .collect(),
                Port::Https6972 => current(CertPurpose::TomcatEcdsa)
                    .into_iter()
                    .chain(
                        n.tftp
                            .https_6972
                            .as_ref()
                            .and_then(|c| slot.cert_with_key(c)),
                    )
                    .collect(),
                Port::Tftp | Port::Http => return None,
            };
            (!certs.is_empty()).then_some(TlsIdentity { certs })
        })
        .flatten()
    }
}
