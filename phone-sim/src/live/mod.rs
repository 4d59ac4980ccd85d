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
//! Time: scenario time runs at `speed` × wall time while any operation is on the wire, so the
//! phones' timers (TFTP budget, TVS and HTTP timeouts) stay meaningful against real transfers;
//! when nothing is on the wire the clock jumps to the next scheduled event (nothing can happen
//! in between, and the run does not idle through hours of scenario time).
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
    /// Scenario time per wall time while operations are on the wire (60 = a minute per second).
    pub speed: f64,
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
    /// Wall time (s) during which scenario time was held because `max_in_flight` operations
    /// were already on the wire (the host, not the scenario, was the bottleneck).
    pub held_s: f64,
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
            "live mode: {:.1} s wall, speed {}, {} operations, peak {} on the wire or queued (bound {}), scenario time held {:.1} s (host saturated)",
            self.wall_s,
            self.speed,
            self.operations,
            self.peak_in_flight,
            self.max_in_flight,
            self.held_s
        );
        let _ = writeln!(
            s,
            "  {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "service", "ops", "failed", "p50 µs", "p90 µs", "p99 µs", "max µs"
        );
        for r in &self.latency {
            let _ = writeln!(
                s,
                "  {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
                r.service, r.count, r.failed, r.p50_us, r.p90_us, r.p99_us, r.max_us
            );
        }
        for m in &self.modelled {
            let _ = writeln!(s, "  modelled: {m}");
        }
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
    fn submit(&mut self, _now: u64, phone: u32, action: Action, blocked: bool) {
        self.ops.borrow_mut().push(Op {
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

/// Scenario clock: runs at `speed` while operations are on the wire, jumps over idle time.
struct Clock {
    base_v: u64,
    base_w: Instant,
    speed: f64,
    /// Held: the host is saturated (operations wait for a slot); scenario time does not run, so
    /// a simulator bottleneck is not mistaken for a network timeout.
    held: bool,
    held_wall: Duration,
}

impl Clock {
    fn now(&self) -> u64 {
        if self.held {
            return self.base_v;
        }
        self.base_v + (self.base_w.elapsed().as_secs_f64() * 1000.0 * self.speed) as u64
    }

    fn hold(&mut self, on: bool) {
        if on == self.held {
            return;
        }
        if on {
            self.base_v = self.now();
            self.held = true;
        } else {
            self.held = false;
            self.held_wall += self.base_w.elapsed();
        }
        self.base_w = Instant::now();
    }

    fn jump(&mut self, v: u64) {
        if v > self.now() {
            self.base_v = v;
            self.base_w = Instant::now();
        }
    }

    fn wall_until(&self, v: u64) -> Duration {
        io::scaled(v.saturating_sub(self.now()), self.speed)
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let mut clock = Clock {
        base_v: 0,
        base_w: Instant::now(),
        speed: cfg.speed.max(1e-3),
        held: false,
        held_wall: Duration::ZERO,
    };
    let mut lat = Latencies::default();
    let mut in_flight = 0usize;
    let mut peak = 0usize;
    let mut operations = 0u64;
    let mut limit_hit = false;
    sim.start();

    let deliver = |sim: &mut Sim<'_>, clock: &Clock, d: Done, lat: &mut Latencies| {
        lat.record(&d);
        if let Some(ev) = d.event {
            let at = clock.now().max(sim.now_ms());
            sim.push(at, Ev::Deliver(d.phone, ev));
        }
    };
    let mut held_wall = Duration::ZERO;

    'run: loop {
        if started.elapsed() > cfg.wall_limit {
            limit_hit = true;
            break;
        }
        // Everything due now.
        let v = clock.now();
        while sim.next_at().is_some_and(|t| t <= v) {
            if !sim.step_one() {
                break 'run;
            }
            if changed.replace(false) {
                // The listeners reflect the change before any phone asks again.
                server.settle().await;
            }
        }
        for op in ops.borrow_mut().drain(..) {
            let ctx = ctx.clone();
            let tx = tx.clone();
            in_flight += 1;
            operations += 1;
            tokio::spawn(async move {
                let d = io::execute(&ctx, op.phone, op.action, op.blocked).await;
                let _ = tx.send(d);
            });
        }
        peak = peak.max(in_flight);
        clock.hold(in_flight >= cfg.max_in_flight);
        if in_flight == 0 {
            match sim.next_at() {
                Some(t) => {
                    clock.jump(t);
                    continue;
                }
                None => break,
            }
        }
        let wait = sim
            .next_at()
            .map(|t| clock.wall_until(t))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            d = rx.recv() => {
                if let Some(d) = d {
                    in_flight -= 1;
                    deliver(&mut sim, &clock, d, &mut lat);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
        while let Ok(d) = rx.try_recv() {
            in_flight -= 1;
            deliver(&mut sim, &clock, d, &mut lat);
        }
    }
    clock.hold(false);
    held_wall += clock.held_wall;
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
        latency: lat.rows(),
        twin_mismatches: mismatches.get(),
        held_s: held_wall.as_secs_f64(),
        wall_limit_hit: limit_hit,
        modelled,
        listeners,
    };
    Ok((out, report))
}
