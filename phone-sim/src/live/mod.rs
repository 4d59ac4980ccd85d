//! Live mode (issue 7): the scenario's clusters run as real servers on loopback (`itlsim-net`:
//! TVS over rustls, TFTP, HTTP 6970, HTTPS 6971/6972) and every phone's unchanged sans-IO core
//! fetches its files and asks TVS over real sockets ([`io`]).
//!
//! The timeline, the phones and the reports are those of the virtual-time driver ([`Sim`]): the
//! driver hands its phones' `Fetch`/`QueryTvs` actions to this module instead of answering them
//! from its model, and mirrors each admin action to the served twin of its model (the same
//! install from the same seed, so both hold the same keys, certificates and files); the
//! listeners follow the model (a stopped service closes its port, a restarted one presents its
//! new certificate). Timeline outages become real: a blocked TFTP/HTTP path goes to a socket that
//! drops everything, a blocked TVS to a closed port.
//!
//! Time: the scenario clock is event-driven, as in virtual mode, with real operations as the
//! oracle. An operation sent at scenario time t holds the clock at t + the modelled network delay
//! (`latency_ms`, the virtual mode's rule) for up to `hold` of wall time; an answer that arrives
//! within it is delivered at that time. What the phone gets is what the wire gave: the real bytes,
//! the certificate really presented, a real refusal. An operation still unanswered after `hold`
//! is late: scenario time then runs at `speed` × wall (a late answer is delivered when it comes,
//! real silence ends at the operation's wall deadline, the phone's timeout ÷ `speed`, and the
//! phone's own timer fires in scenario time). Host load within `hold` therefore changes how long a
//! run takes, not when a phone boots relative to the timeline's admin steps (and a step waits
//! for the operations sent before it, which must see the servers as they were when sent) (measured: with a
//! clock mapped to wall time throughout, 40 of 2,000 phones of the demo scenario ended differently
//! on a loaded 2-core host, each one a boot pushed past a regeneration by latency × speed; with
//! this clock, 0).
//!
//! Registration stays modelled (no SCCP/SIP server), as in virtual mode.

pub mod bench;
pub mod external;
pub mod fleet;
pub mod io;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use itlsim_net::serve::{PortMode, ServeConfig, Server};
use itlsim_net::{ClusterView, Clusters, NodeRef};
use itlsim_phone::Action;
use itlsim_server::{AdminAction, CmGroupId, NodeId};
use tokio::sync::mpsc;

use crate::driver::{Ev, LiveIo, RunError, RunOutput, Sim, host_of, ip_text};
use crate::scenario::Scenario;
use io::{Done, Latencies, LatencyRow};

/// How a live run goes.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Scenario time per wall time for slow and silent operations (60 = a minute per second):
    /// their deadlines (the phone's timeouts ÷ `speed`) and the clock while one is late.
    pub speed: f64,
    /// How long (wall) the clock waits at an operation's modelled answer time for its real
    /// answer before counting it late and letting scenario time run at `speed`; at least this,
    /// and 4 × the p99 latency of the last 512 answers when the host is slower (at most 1 s).
    pub hold: Duration,
    /// Operations on the wire at once (bounds boot concurrency: a phone has one at a time).
    pub max_in_flight: usize,
    /// The run stops (reported) after this much wall time.
    pub wall_limit: Duration,
    /// Worker threads of the runtime.
    pub threads: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            speed: 60.0,
            hold: Duration::from_millis(50),
            max_in_flight: 64,
            wall_limit: Duration::from_secs(1800),
            threads: 2,
        }
    }
}

/// What live mode adds to the reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    /// Wall time of the run (s).
    pub wall_s: f64,
    /// Speed factor used.
    pub speed: f64,
    /// Concurrency bound.
    pub max_in_flight: usize,
    /// Most operations on the wire at once.
    pub peak_in_flight: usize,
    /// Operations executed.
    pub operations: u64,
    /// Per-service latency percentiles.
    pub latency: Vec<LatencyRow>,
    /// Admin actions the served twin answered differently from the driver's model (must be 0).
    pub twin_mismatches: u64,
    /// Wall time (s) the scenario clock waited for real answers (the rest is the driver).
    pub waiting_s: f64,
    /// Operations answered (or given up) after `hold`: scenario time ran at `speed` for them.
    pub late_ops: u64,
    /// The largest effective hold of the run (ms).
    pub max_hold_ms: u64,
    /// The run hit the wall-clock limit.
    pub wall_limit_hit: bool,
    /// What is modelled rather than on the wire.
    pub modelled: Vec<String>,
    /// Listener addresses (`cluster/host service = addr`).
    pub listeners: Vec<String>,
}

impl LiveReport {
    /// Text for the summary.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "live mode: {:.1} s wall ({:.1} s waiting for real answers), {} operations ({} late: silent or slower than the hold of up to {} ms, timed at speed {}), peak {} on the wire or queued (bound {})",
            self.wall_s,
            self.waiting_s,
            self.operations,
            self.late_ops,
            self.max_hold_ms,
            self.speed,
            self.peak_in_flight,
            self.max_in_flight
        );
        s.push_str(&io::latency_table(&self.latency, &self.modelled));
        if self.twin_mismatches > 0 {
            let _ = writeln!(
                s,
                "  WARNING: {} admin actions differ between the driver's model and the served one",
                self.twin_mismatches
            );
        }
        if self.wall_limit_hit {
            let _ = writeln!(s, "  WARNING: stopped at the wall-clock limit");
        }
        s
    }
}

/// Why a live run could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Installing the clusters failed.
    #[error(transparent)]
    Install(#[from] RunError),
    /// Starting the listeners or the runtime failed.
    #[error("live servers: {0}")]
    Serve(String),
}

struct Op {
    at: u64,
    phone: u32,
    action: Action,
    blocked: bool,
}

/// The driver side of live mode (lives on the driver's thread).
struct Hook {
    ops: Rc<RefCell<Vec<Op>>>,
    clusters: Arc<Clusters>,
    changed: Rc<Cell<bool>>,
    mismatches: Rc<Cell<u64>>,
}

impl LiveIo for Hook {
    fn submit(&mut self, now: u64, phone: u32, action: Action, blocked: bool) {
        self.ops.borrow_mut().push(Op {
            at: now,
            phone,
            action,
            blocked,
        });
    }

    fn admin(&mut self, ci: usize, at: i64, action: &AdminAction) {
        // The driver applies the same action to its own model right after; a refusal there is
        // recorded by the driver, so only count it here.
        if self.clusters.apply(ci, at, action.clone()).is_err() {
            self.mismatches.set(self.mismatches.get() + 1);
        }
        self.changed.set(true);
    }

    fn add_fleet(&mut self, ci: usize, model: &str, mac: u64) {
        let ok = self
            .clusters
            .modify(ci, |c| c.add_fleet(model, mac, 1, CmGroupId(0)).is_ok());
        if ok != Some(true) {
            self.mismatches.set(self.mismatches.get() + 1);
        }
        self.changed.set(true);
    }
}

/// Runs `sc` in live mode. `progress` is called at every state sample as in virtual mode.
pub fn run(
    sc: &Scenario,
    cfg: &LiveConfig,
    progress: Option<crate::driver::Progress>,
) -> Result<(RunOutput, LiveReport), LiveError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| LiveError::Serve(e.to_string()))?;
    let mut sim = Sim::new(sc)?;
    sim.progress = progress;
    // The served twin: the same install from the same seed (keys, certificates, files).
    let mut twin = Sim::new(sc)?;
    let clusters = Arc::new(Clusters::new(twin.take_clusters()));
    drop(twin);
    rt.block_on(drive(sc, cfg, sim, clusters))
}

async fn drive(
    sc: &Scenario,
    cfg: &LiveConfig,
    mut sim: Sim<'_>,
    clusters: Arc<Clusters>,
) -> Result<(RunOutput, LiveReport), LiveError> {
    let started = Instant::now();
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
    // Phone host strings (the IPs in the model's configs) → loopback listener addresses.
    let mut addrs = HashMap::new();
    let mut listeners = Vec::new();
    for ((node, port), addr) in server.addrs() {
        let NodeRef {
            cluster,
            node: NodeId(n),
        } = node;
        let host = ip_text(host_of(cluster, usize::from(n)));
        listeners.push(format!(
            "{} ({host}) {} = {addr}",
            clusters.node_name(node),
            port.name()
        ));
        addrs.insert((host, port), addr);
    }
    let ctx = Arc::new(
        io::new_ctx(addrs, sc.knobs.phone.clone(), cfg.speed, cfg.max_in_flight)
            .await
            .map_err(|e| LiveError::Serve(e.to_string()))?,
    );

    let ops = Rc::new(RefCell::new(Vec::new()));
    let changed = Rc::new(Cell::new(false));
    let mismatches = Rc::new(Cell::new(0));
    sim.live = Some(Box::new(Hook {
        ops: ops.clone(),
        clusters: clusters.clone(),
        changed: changed.clone(),
        mismatches: mismatches.clone(),
    }));
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Done)>();
    let lat = sc.knobs.latency_ms;
    let speed = cfg.speed.max(1e-3);
    // Operations on the wire: id → (scenario time of the modelled answer, wall time sent).
    let mut pending: HashMap<u64, (u64, Instant)> = HashMap::new();
    let mut next_id = 0u64;
    let mut lat_rec = Latencies::default();
    let mut peak = 0usize;
    let mut operations = 0u64;
    let mut limit_hit = false;
    let mut waiting = Duration::ZERO;
    let mut late_ops = 0u64;
    // Recent answer latencies → the effective hold (host load raises it).
    let mut recent: std::collections::VecDeque<Duration> = std::collections::VecDeque::new();
    let mut hold = cfg.hold;
    let mut max_hold = cfg.hold;
    let mut answered = 0u64;
    // The scenario clock while some operation is late (runs at `speed`), and its wall reference.
    let mut v_now = 0u64;
    let mut w_last = Instant::now();
    // Request rates for the progress line, per service, over the last second of wall time.
    let mut rate_since = Instant::now();
    let mut rate_counts: std::collections::BTreeMap<&'static str, u64> = Default::default();
    sim.start();

    'run: loop {
        if started.elapsed() > cfg.wall_limit {
            limit_hit = true;
            break;
        }
        for op in ops.borrow_mut().drain(..) {
            let ctx = ctx.clone();
            let tx = tx.clone();
            let id = next_id;
            next_id += 1;
            pending.insert(id, (op.at + lat, Instant::now()));
            operations += 1;
            tokio::spawn(async move {
                let d = io::execute(&ctx, op.phone, op.action, op.blocked).await;
                let _ = tx.send((id, d));
            });
        }
        peak = peak.max(pending.len());
        let now_w = Instant::now();
        let fresh_cap = pending
            .values()
            .filter(|(_, w)| now_w.duration_since(*w) < hold)
            .map(|(d, _)| *d)
            .min();
        let any_late = pending
            .values()
            .any(|(_, w)| now_w.duration_since(*w) >= hold);
        if any_late {
            v_now += (now_w.duration_since(w_last).as_secs_f64() * 1000.0 * speed) as u64;
        }
        w_last = now_w;
        v_now = v_now.max(sim.now_ms());
        // Events strictly before the earliest awaited answer run now; while an operation is
        // late, only those the clock (at `speed`) has reached.
        let mut limit = fresh_cap.unwrap_or(u64::MAX);
        if any_late {
            limit = limit.min(v_now.saturating_add(1));
        }
        if let Some(t) = sim.next_at()
            && t < limit
            && (pending.is_empty() || !sim.next_is_barrier())
        {
            if !sim.step_one() {
                break 'run;
            }
            v_now = v_now.max(sim.now_ms());
            if changed.replace(false) {
                // The listeners reflect the change before any phone asks again.
                server.settle().await;
            }
            continue;
        }
        if pending.is_empty() {
            break;
        }
        // Wait for an answer (a timeline step waits for every operation sent before it), for
        // the oldest fresh operation to become late, or (clock running) for the next event's
        // wall time.
        let mut wait = pending
            .values()
            .filter_map(|(_, w)| hold.checked_sub(now_w.duration_since(*w)))
            .min()
            .unwrap_or(Duration::from_millis(20));
        if any_late && let Some(t) = sim.next_at() {
            wait = wait.min(io::scaled(t.saturating_sub(v_now), speed));
        }
        let wait = wait.clamp(Duration::from_micros(200), Duration::from_millis(20));
        let w = Instant::now();
        let first = tokio::select! {
            d = rx.recv() => d,
            _ = tokio::time::sleep(wait) => None,
        };
        waiting += w.elapsed();
        let mut batch: Vec<(u64, Done)> = first.into_iter().collect();
        while let Ok(d) = rx.try_recv() {
            batch.push(d);
        }
        let dt = rate_since.elapsed();
        if dt >= Duration::from_secs(1) {
            let secs = dt.as_secs_f64();
            sim.progress_note = rate_counts
                .iter()
                .map(|(k, v)| format!("{k} {:.0}/s", *v as f64 / secs))
                .collect::<Vec<_>>()
                .join("  ");
            rate_counts.clear();
            rate_since = Instant::now();
        }
        for (id, d) in batch {
            let Some((due, sent)) = pending.remove(&id) else {
                continue;
            };
            lat_rec.record(&d);
            *rate_counts.entry(d.svc.name()).or_default() += 1;
            let late = sent.elapsed() >= hold;
            late_ops += u64::from(late);
            if d.event.is_some() && !d.failed {
                recent.push_back(d.wall);
                if recent.len() > 512 {
                    recent.pop_front();
                }
                answered += 1;
                if answered % 64 == 0 {
                    let mut v: Vec<Duration> = recent.iter().copied().collect();
                    v.sort_unstable();
                    let p99 = v[(v.len() * 99 / 100).min(v.len() - 1)];
                    hold = (p99 * 4).clamp(cfg.hold, Duration::from_secs(1).max(cfg.hold));
                    max_hold = max_hold.max(hold);
                }
            }
            if let Some(ev) = d.event {
                // The virtual mode's delay for this answer, counted from the send; a late one
                // arrives when it arrives.
                let at = due - lat + crate::driver::reply_delay(lat, &ev);
                let at = if late { at.max(v_now) } else { at };
                sim.push(at.max(sim.now_ms()), Ev::Deliver(d.phone, ev));
            }
        }
    }
    sim.live = None;
    let out = sim.finish();
    server.shutdown().await;
    let tls10 = ctx.tls10_modelled.load(Ordering::Relaxed);
    let mut modelled = vec![
        "registration: answered from the cluster model (no SCCP/SIP on the wire), as in virtual mode"
            .to_string(),
    ];
    if tls10 > 0 {
        modelled.push(format!(
            "{tls10} TVS handshakes of TLS-1.0-only phones (79xx) carried over TLS 1.2: rustls has no TLS 1.0"
        ));
    }
    let report = LiveReport {
        wall_s: started.elapsed().as_secs_f64(),
        speed: cfg.speed,
        max_in_flight: cfg.max_in_flight,
        peak_in_flight: peak,
        operations,
        latency: lat_rec.rows(),
        twin_mismatches: mismatches.get(),
        waiting_s: waiting.as_secs_f64(),
        late_ops,
        max_hold_ms: u64::try_from(max_hold.as_millis()).unwrap_or(u64::MAX),
        wall_limit_hit: limit_hit,
        modelled,
        listeners,
    };
    Ok((out, report))
}
