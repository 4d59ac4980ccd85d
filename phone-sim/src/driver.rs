//! The deterministic virtual-time driver: one clock, one event queue, the cluster models and the
//! phones. Phones and servers exchange the bytes their codecs produce (files as served, TVS frames
//! both ways); TLS to TVS is modelled as "the server presents certificate X", which the phone's
//! own pinning rule (T-TVS) checks.
//!
//! Determinism: a seeded ChaCha RNG per concern, a queue ordered by (time, sequence), no
//! iteration over hash maps that affects results. The same file and seed give the same report.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use itlsim_phone::event::{FetchFailure, ResetKind, UserAction};
use itlsim_phone::{
    Action, Blob, CryptoMode, Env, Event, Host, Mac, Outcome, Phone, PhoneSetup, Reason, SimTime,
    Transport,
};
use itlsim_server::{
    ActionReport, AdminAction, BulkBundle, CertPurpose, Cluster, ClusterSpec, CmGroupId, DrsBackup,
    KeySource, NodeId, NodeSpec, Service, TftpMiss,
};
use itlsim_wire::tvs::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::{Act, AdminVerb, Scenario, Target, Timing};

/// Scenario time zero on the wall clock of the model (certificates, file timestamps).
pub const EPOCH_UNIX_S: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// How long after a request (scenario ms) its answer reaches the phone in the modelled network:
/// a TVS answer takes the TLS exchange's round trip (2 × `latency_ms`), every other answer or
/// refusal one `latency_ms` (the virtual driver's `action_model`; live mode delivers real answers
/// with the same delays).
pub fn reply_delay(latency_ms: u64, ev: &Event) -> u64 {
    match ev {
        Event::TvsAnswer { .. } => 2 * latency_ms,
        _ => latency_ms,
    }
}
/// Phones power on over this window at the start (ms).
pub const BOOT_WINDOW_MS: u64 = 120_000;
/// How often the driver checks "settled" while waiting (ms).
const SETTLE_POLL_MS: u64 = 15_000;
/// How often the state series is sampled (ms).
pub const SAMPLE_MS: u64 = 60_000;

/// A progress callback: virtual time (ms), the counts at that time, and a note (live mode: the
/// request rates on the wire; empty in virtual mode).
pub type Progress = Box<dyn FnMut(u64, &Counts, &str)>;

/// What a phone is, at a point in time, for reports.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhoneState {
    /// Powered on.
    pub on: bool,
    /// Registered.
    pub registered: bool,
    /// Holds a CTL or ITL.
    pub trusting: bool,
    /// Locked (§4.7), with the reason.
    pub locked: Option<Reason>,
}

/// Counts by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Phones.
    pub total: u64,
    /// Powered off.
    pub off: u64,
    /// Registered.
    pub registered: u64,
    /// Locked.
    pub locked: u64,
    /// Holding a trust list and not locked.
    pub trusted: u64,
    /// Powered on and not registered.
    pub unregistered: u64,
}

impl Counts {
    /// Counts of a set of states.
    pub fn of<'a>(states: impl Iterator<Item = &'a PhoneState>) -> Self {
        let mut c = Counts::default();
        for s in states {
            c.total += 1;
            c.off += u64::from(!s.on);
            c.registered += u64::from(s.registered);
            c.locked += u64::from(s.locked.is_some());
            c.trusted += u64::from(s.trusting && s.locked.is_none());
            c.unregistered += u64::from(s.on && !s.registered);
        }
        c
    }
}

/// One timeline step as it happened.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Label.
    pub label: String,
    /// When it ran (ms).
    pub at_ms: u64,
    /// What the model said (the action's CLI form, changes, events).
    pub notes: Vec<String>,
    /// Phone states just before the next step (or the end).
    pub after: Vec<PhoneState>,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// A typed phone outcome.
    Phone(Outcome),
    /// Something the server side could not do for this phone.
    Server(String),
}

/// One recorded event.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// When (ms).
    pub at_ms: u64,
    /// Phone index.
    pub phone: u32,
    /// What.
    pub kind: EventKind,
}

/// Everything a run produced; the reports are made from this.
pub struct RunOutput {
    /// Steps in order.
    pub steps: Vec<StepRecord>,
    /// Final phones (with their full state, status log and trace).
    pub phones: Vec<PhoneSlot>,
    /// Final states.
    pub final_states: Vec<PhoneState>,
    /// When each phone first locked (ms), if it did.
    pub locked_at: Vec<Option<u64>>,
    /// Outcomes in order.
    pub events: Vec<EventRecord>,
    /// (time, counts) every [`SAMPLE_MS`].
    pub series: Vec<(u64, Counts)>,
    /// Events processed by the loop.
    pub events_processed: u64,
    /// Virtual end time (ms).
    pub end_ms: u64,
    /// Cluster names (index = cluster id).
    pub cluster_names: Vec<String>,
    /// Files the cluster models built and signed during the run (trust lists and per-phone
    /// configs; benchmarks: signing is what costs).
    pub files_built: u64,
    /// Phone states at the times expectations name (`None`: the run ended before).
    pub snapshots: Vec<(u64, Option<Vec<PhoneState>>)>,
}

/// A phone in the simulation.
pub struct PhoneSlot {
    /// The sans-IO core.
    pub phone: Phone,
    /// Fleet group.
    pub group: u16,
    /// Cluster whose TFTP list it uses now.
    pub cluster: u16,
    powered: bool,
    next_timer: Option<SimTime>,
}

/// Live mode (`live.rs`): the phone network actions and model changes this driver hands to real
/// sockets and real servers instead of answering them from its own model.
pub(crate) trait LiveIo {
    /// Takes a phone's `Fetch` or `QueryTvs`; `blocked` = the timeline's outage covers the
    /// target's service now (the live side makes it a real dropped/refused path).
    fn submit(&mut self, now: u64, phone: u32, action: Action, blocked: bool);
    /// The admin action about to be applied to this driver's cluster `ci` at `at` (UNIX s).
    fn admin(&mut self, ci: usize, at: i64, action: &AdminAction);
    /// Device records added to cluster `ci` (bulk administration of a migration).
    fn add_fleet(&mut self, ci: usize, model: &str, mac: u64);
}

#[derive(Debug)]
pub(crate) enum Ev {
    Deliver(u32, Event),
    Timer(u32),
    Power(u32, bool),
    /// A straggler's scheduled power change: not "work in progress" for `wait: settled` (a
    /// phone away for an hour must not hold the timeline back; that is what makes it a straggler).
    StragglerPower(u32, bool),
    Reset(u32),
    User(u32, UserAction),
    Step(usize),
    SettleCheck(usize, u64),
    OutageEnd(usize, u16, Service, Option<u16>),
    Sample,
    /// Phone states at a time an expectation names (`at: 30m`).
    Snapshot(usize),
}

struct Entry {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on (time, sequence).
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// A scenario that failed at run time (a refused admin action is recorded, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster model refused to install.
    #[error("cluster {0}: {1}")]
    Install(String, String),
}

/// The simulation.
pub struct Sim<'s> {
    sc: &'s Scenario,
    clusters: Vec<Cluster>,
    hosts: HashMap<String, (usize, NodeId)>,
    phones: Vec<PhoneSlot>,
    by_mac: HashMap<u64, u32>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    now: u64,
    rng: ChaCha8Rng,
    out: Vec<Action>,
    blobs: HashMap<usize, (Arc<[u8]>, Arc<Blob>)>,
    certs: HashMap<Vec<u8>, Arc<Blob>>,
    outages: BTreeMap<(usize, u16, Service, Option<u16>), u64>,
    backups: BTreeMap<(usize, String), DrsBackup>,
    steps: Vec<StepRecord>,
    events: Vec<EventRecord>,
    locked_at: Vec<Option<u64>>,
    series: Vec<(u64, Counts)>,
    /// (time, states then) for expectations evaluated at a time; `None` until reached.
    snapshots: Vec<(u64, Option<Vec<PhoneState>>)>,
    processed: u64,
    pending_work: u64,
    step_done: usize,
    done: bool,
    end_not_before: u64,
    /// Keep per-phone outcome events (off for benchmarks).
    pub record_events: bool,
    /// Called at every state sample (each virtual minute) with the time and the counts: the
    /// CLI's progress line.
    pub progress: Option<Progress>,
    /// The note passed to `progress` (live mode sets it).
    pub(crate) progress_note: String,
    /// Live mode: real I/O for fetches and TVS queries (`live.rs`).
    pub(crate) live: Option<Box<dyn LiveIo>>,
}

pub(crate) fn host_of(cluster: usize, node: usize) -> [u8; 4] {
    [
        10,
        u8::try_from(cluster + 1).unwrap_or(255),
        0,
        u8::try_from(node + 10).unwrap_or(255),
    ]
}

pub(crate) fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

impl<'s> Sim<'s> {
    /// Installs the clusters and the fleet; nothing runs yet.
    pub fn new(sc: &'s Scenario) -> Result<Self, RunError> {
        let mut clusters = Vec::new();
        let mut hosts = HashMap::new();
        for (ci, cp) in sc.clusters.iter().enumerate() {
            let mut spec = ClusterSpec::new(&cp.name, cp.version, &[], EPOCH_UNIX_S - 86_400);
            spec.nodes = cp
                .nodes
                .iter()
                .enumerate()
                .map(|(ni, h)| {
                    let mut n = NodeSpec::new(h, host_of(ci, ni));
                    n.tftp = cp.tftp[ni];
                    n
                })
                .collect();
            if let Some(b) = sc.knobs.tvs_vouches_own_itlrecovery {
                spec.knobs.tvs_vouches_own_itlrecovery = b;
            }
            if let Some(b) = sc.knobs.v10_localkey_recovers {
                spec.knobs.v10_localkey_recovers = b;
            }
            if let Some(t) = sc.knobs.tvs_ttl_s {
                spec.knobs.tvs_ttl_s = t;
            }
            let keys = KeySource::new(sc.seed.wrapping_add(ci as u64));
            let mut c = Cluster::install(spec, keys)
                .map_err(|e| RunError::Install(cp.name.clone(), e.to_string()))?;
            for (name, members) in &cp.groups {
                let ids = members
                    .iter()
                    .map(|m| NodeId(u16::try_from(*m).unwrap_or(0)))
                    .collect();
                c.add_cm_group(name, ids)
                    .map_err(|e| RunError::Install(cp.name.clone(), e.to_string()))?;
            }
            for (ni, _) in cp.nodes.iter().enumerate() {
                hosts.insert(
                    ip_text(host_of(ci, ni)),
                    (ci, NodeId(u16::try_from(ni).unwrap_or(0))),
                );
            }
            clusters.push(c);
        }
        let env = Env::new(
            itlsim_phone::Knobs {
                epoch_unix_s: EPOCH_UNIX_S,
                ..sc.knobs.phone.clone()
            },
            CryptoMode::Real,
        );
        let mut phones = Vec::new();
        let mut by_mac = HashMap::new();
        let mut rng = ChaCha8Rng::seed_from_u64(sc.seed ^ 0x05ee_d0ff_1ee7);
        for (gi, f) in sc.fleet.iter().enumerate() {
            let tftp: Arc<[Host]> = f
                .tftp
                .iter()
                .map(|n| Host::new(&ip_text(host_of(f.cluster, *n))))
                .collect();
            let mut mac = f.first_mac;
            for (model, count) in &f.models {
                clusters[f.cluster]
                    .add_fleet(
                        model.name,
                        mac,
                        *count,
                        CmGroupId(u16::try_from(f.cm_group).unwrap_or(0)),
                    )
                    .map_err(|e| {
                        RunError::Install(sc.clusters[f.cluster].name.clone(), e.to_string())
                    })?;
                for _ in 0..*count {
                    let b = mac.to_be_bytes();
                    let m = Mac([b[2], b[3], b[4], b[5], b[6], b[7]]);
                    let setup = PhoneSetup {
                        mac: m,
                        model: *model,
                        tftp: tftp.clone(),
                        device_key: None,
                        load: None,
                    };
                    let idx = u32::try_from(phones.len()).unwrap_or(u32::MAX);
                    by_mac.insert(mac, idx);
                    phones.push(PhoneSlot {
                        phone: Phone::new(env.clone(), setup),
                        group: u16::try_from(gi).unwrap_or(u16::MAX),
                        cluster: u16::try_from(f.cluster).unwrap_or(u16::MAX),
                        powered: false,
                        next_timer: None,
                    });
                    mac += 1;
                }
            }
        }
        let n = phones.len();
        let mut sim = Sim {
            sc,
            clusters,
            hosts,
            phones,
            by_mac,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(sc.seed),
            out: Vec::new(),
            blobs: HashMap::new(),
            certs: HashMap::new(),
            outages: BTreeMap::new(),
            backups: BTreeMap::new(),
            steps: Vec::new(),
            events: Vec::new(),
            locked_at: vec![None; n],
            series: Vec::new(),
            snapshots: Vec::new(),
            processed: 0,
            pending_work: 0,
            step_done: 0,
            done: false,
            end_not_before: 0,
            record_events: true,
            progress: None,
            progress_note: String::new(),
            live: None,
        };
        // Initial security mode and parameters, before any phone boots.
        for (ci, cp) in sc.clusters.iter().enumerate() {
            if let Some(etoken) = cp.mixed {
                sim.admin(ci, AdminAction::CtlSetMixedMode { etoken }, &mut Vec::new());
            }
            for p in &cp.params {
                sim.admin(ci, AdminAction::SetParam(p.clone()), &mut Vec::new());
            }
        }
        // Boot the fleet; schedule stragglers.
        for (gi, f) in sc.fleet.iter().enumerate() {
            for i in 0..n {
                if usize::from(sim.phones[i].group) != gi {
                    continue;
                }
                let idx = u32::try_from(i).unwrap_or(u32::MAX);
                if !f.start_offline {
                    let t = rng.gen_range(0..BOOT_WINDOW_MS);
                    sim.push(t, Ev::Power(idx, true));
                }
                if let Some((frac, from, until)) = f.stragglers
                    && rng.gen_bool(frac)
                {
                    sim.push(from, Ev::StragglerPower(idx, false));
                    sim.push(
                        until + rng.gen_range(0..BOOT_WINDOW_MS),
                        Ev::StragglerPower(idx, true),
                    );
                    sim.end_not_before = sim.end_not_before.max(until + BOOT_WINDOW_MS);
                }
            }
        }
        sim.push(0, Ev::Sample);
        if !sc.steps.is_empty() {
            sim.schedule_step(0, 0);
        }
        Ok(sim)
    }

    pub(crate) fn push(&mut self, at: u64, ev: Ev) {
        if matches!(
            ev,
            Ev::Deliver(..) | Ev::Power(..) | Ev::Reset(_) | Ev::User(..)
        ) {
            self.pending_work += 1;
        }
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn schedule_step(&mut self, i: usize, prev_at: u64) {
        let Some(step) = self.sc.steps.get(i) else {
            return;
        };
        match step.timing {
            Timing::At(t) => self.push(t.max(self.now), Ev::Step(i)),
            Timing::After(d) => self.push(prev_at + d, Ev::Step(i)),
            Timing::Settled => self.push(self.now + SETTLE_POLL_MS, Ev::SettleCheck(i, self.now)),
        }
    }

    fn unix_now(&self) -> i64 {
        EPOCH_UNIX_S + i64::try_from(self.now / 1000).unwrap_or(0)
    }

    /// No phone in a provisioning cycle, and no answer, reset or power change still on its way.
    fn settled(&self) -> bool {
        self.pending_work == 0 && self.phones.iter().all(|p| !p.powered || !p.phone.busy())
    }

    /// States of every phone now.
    pub fn states(&self) -> Vec<PhoneState> {
        self.phones
            .iter()
            .map(|p| PhoneState {
                on: p.powered,
                registered: p.powered && p.phone.registered(),
                trusting: p.phone.itl().is_some() || p.phone.ctl().is_some(),
                locked: p.phone.locked(),
            })
            .collect()
    }

    /// Runs to the end and returns what happened.
    pub fn run(mut self) -> RunOutput {
        self.start();
        while let Some(e) = self.queue.pop() {
            if self.done {
                break;
            }
            self.now = e.at;
            self.processed += 1;
            self.dispatch(e.ev);
        }
        self.finish()
    }

    /// Schedules the end-of-run settle check of a scenario without steps (what `run` does first).
    pub(crate) fn start(&mut self) {
        if self.sc.steps.is_empty() {
            self.push(self.now + SETTLE_POLL_MS, Ev::SettleCheck(0, 0));
        }
        let mut times: Vec<u64> = self
            .sc
            .expectations
            .iter()
            .filter_map(|e| e.at_time)
            .collect();
        times.sort_unstable();
        times.dedup();
        for (k, t) in times.into_iter().enumerate() {
            self.snapshots.push((t, None));
            self.push(t, Ev::Snapshot(k));
        }
    }

    /// Would the next queued event run a timeline step (an admin action changes what the
    /// servers answer)? Live mode lets the operations already on the wire finish first, so they
    /// see the state they were sent in, as the virtual driver answers at the time of sending.
    pub(crate) fn next_is_barrier(&self) -> bool {
        match self.queue.peek() {
            Some(Entry {
                ev: Ev::Step(_), ..
            }) => true,
            Some(Entry {
                at,
                ev: Ev::SettleCheck(_, since),
                ..
            }) => at.saturating_sub(*since) >= self.sc.settle_ms || self.settled(),
            _ => false,
        }
    }

    /// Time of the next queued event.
    pub(crate) fn next_at(&self) -> Option<u64> {
        self.queue.peek().map(|e| e.at)
    }

    /// Runs the next queued event (live mode's loop); false when the run is over.
    pub(crate) fn step_one(&mut self) -> bool {
        if self.done {
            return false;
        }
        let Some(e) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(e.at);
        self.processed += 1;
        self.dispatch(e.ev);
        !self.done
    }

    /// Virtual now (ms).
    pub(crate) fn now_ms(&self) -> u64 {
        self.now
    }

    /// The cluster models (live mode starts its servers from an identical twin).
    pub(crate) fn take_clusters(&mut self) -> Vec<Cluster> {
        std::mem::take(&mut self.clusters)
    }

    /// Ends the run and returns what happened.
    pub(crate) fn finish(self) -> RunOutput {
        let final_states = self.states();
        let files_built = self.clusters.iter().map(|c| c.cache_stats().built).sum();
        RunOutput {
            files_built,
            steps: self.steps,
            final_states,
            locked_at: self.locked_at,
            events: self.events,
            series: self.series,
            snapshots: self.snapshots,
            events_processed: self.processed,
            end_ms: self.now,
            cluster_names: self.sc.clusters.iter().map(|c| c.name.clone()).collect(),
            phones: self.phones,
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        if matches!(
            ev,
            Ev::Deliver(..) | Ev::Power(..) | Ev::Reset(_) | Ev::User(..)
        ) {
            self.pending_work = self.pending_work.saturating_sub(1);
        }
        match ev {
            Ev::Deliver(i, event) => self.phone_event(i, event),
            Ev::Timer(i) => {
                let slot = &self.phones[i as usize];
                if slot.powered && slot.next_timer.is_some_and(|t| t.0 <= self.now) {
                    self.phones[i as usize].next_timer = None;
                    self.phone_event(i, Event::Timer);
                }
            }
            Ev::Power(i, on) | Ev::StragglerPower(i, on) => {
                let slot = &mut self.phones[i as usize];
                if slot.powered != on {
                    slot.powered = on;
                    slot.next_timer = None;
                    self.phone_event_forced(i, if on { Event::PowerOn } else { Event::PowerOff });
                    let mac = mac_u64(self.phones[i as usize].phone.mac());
                    let c = usize::from(self.phones[i as usize].cluster);
                    if !on && let Some(cl) = self.clusters.get_mut(c) {
                        cl.set_registered(server_mac(mac), false);
                    }
                }
            }
            Ev::Reset(i) => self.phone_event(i, Event::Reset(ResetKind::Reset)),
            Ev::User(i, a) => self.phone_event(i, Event::User(a)),
            Ev::Step(i) => self.run_step(i),
            Ev::Snapshot(k) => {
                let states = self.states();
                if let Some(s) = self.snapshots.get_mut(k) {
                    s.1 = Some(states);
                }
            }
            Ev::SettleCheck(i, since) => {
                let waited = self.now.saturating_sub(since);
                // The end of the run also waits for the stragglers to come back (and settle);
                // a `wait: settled` step does not.
                let end = i >= self.sc.steps.len();
                let stragglers_back =
                    !end || self.now >= self.end_not_before.min(since + self.sc.settle_ms);
                let ready = (self.settled() && stragglers_back) || waited >= self.sc.settle_ms;

                if i >= self.sc.steps.len() {
                    // The end of the run.
                    if ready {
                        self.finish_step_record();
                        self.sample();
                        self.done = true;
                    } else {
                        self.push(self.now + SETTLE_POLL_MS, Ev::SettleCheck(i, since));
                    }
                } else if ready {
                    self.run_step(i);
                } else {
                    self.push(self.now + SETTLE_POLL_MS, Ev::SettleCheck(i, since));
                }
            }
            Ev::OutageEnd(c, n, s, g) => {
                if self
                    .outages
                    .get(&(c, n, s, g))
                    .is_some_and(|t| *t <= self.now)
                {
                    self.outages.remove(&(c, n, s, g));
                }
            }
            Ev::Sample => {
                self.sample();
                if !self.done {
                    self.push(self.now + SAMPLE_MS, Ev::Sample);
                }
            }
        }
    }

    fn sample(&mut self) {
        let c = Counts::of(self.states().iter());
        if let Some(p) = self.progress.as_mut() {
            p(self.now, &c, &self.progress_note);
        }

        if self.series.last().is_none_or(|(t, _)| *t != self.now) {
            self.series.push((self.now, c));
        }
    }

    fn finish_step_record(&mut self) {
        let states = self.states();
        if let Some(last) = self.steps.last_mut() {
            last.after = states;
        }
    }

    fn run_step(&mut self, i: usize) {
        self.finish_step_record();
        let step = &self.sc.steps[i];
        let mut notes = Vec::new();
        if let Some(act) = step.act.clone() {
            self.act(&act, &mut notes);
        }
        self.steps.push(StepRecord {
            label: step.label.clone(),
            at_ms: self.now,
            notes,
            after: Vec::new(),
        });
        self.step_done = i + 1;
        if i + 1 < self.sc.steps.len() {
            self.schedule_step(i + 1, self.now);
        } else {
            // After the last step: wait for the fleet to settle, then stop.
            self.push(
                self.now + SETTLE_POLL_MS,
                Ev::SettleCheck(self.sc.steps.len(), self.now),
            );
        }
    }

    fn targets(&self, t: &Target) -> Vec<u32> {
        (0..self.phones.len())
            .filter(|i| match t {
                Target::All => true,
                Target::Group(g) => usize::from(self.phones[*i].group) == *g,
                Target::Cluster(c) => usize::from(self.phones[*i].cluster) == *c,
            })
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect()
    }

    fn spread(&mut self, phones: &[u32], window_ms: u64, make: impl Fn(u32) -> Ev) {
        for &p in phones {
            let d = if window_ms == 0 {
                0
            } else {
                self.rng.gen_range(0..window_ms)
            };
            self.push(self.now + d, make(p));
        }
    }

    fn admin(&mut self, ci: usize, action: AdminAction, notes: &mut Vec<String>) {
        let at = self.unix_now();
        if let Some(io) = self.live.as_mut() {
            io.admin(ci, at, &action);
        }
        match self.clusters[ci].apply(at, action) {
            Ok(report) => {
                // Per-phone files are checked against the hash of their inputs on every request
                // (a stale one is rebuilt) and the model's cache is bounded, so it is kept; the
                // interned trust lists of the old state are dropped.
                self.blobs.clear();
                self.take_report(ci, &report, notes);
            }

            Err(e) => notes.push(format!("[{}] REFUSED: {e}", self.sc.clusters[ci].name)),
        }
    }

    fn take_report(&mut self, ci: usize, r: &ActionReport, notes: &mut Vec<String>) {
        let name = self.sc.clusters[ci].name.clone();
        notes.push(format!("[{name}] {}", r.action));
        for c in &r.changes {
            notes.push(format!("[{name}]   change: {c:?}"));
        }
        for e in &r.events {
            match e {
                itlsim_server::Event::PhoneResets {
                    phones,
                    reason,
                    window_s,
                    ..
                } => {
                    notes.push(format!(
                        "[{name}]   reset of {} registered phones over {window_s} s: {reason}",
                        phones.len()
                    ));
                    let idx: Vec<u32> = phones
                        .iter()
                        .filter_map(|m| self.by_mac.get(&mac_u64_server(m)).copied())
                        .filter(|i| {
                            self.phones[*i as usize].powered
                                && usize::from(self.phones[*i as usize].cluster) == ci
                        })
                        .collect();
                    let window = u64::from(*window_s).saturating_mul(1000).max(1);
                    self.spread(&idx, window, Ev::Reset);
                }
                other => notes.push(format!("[{name}]   {other:?}")),
            }
        }
    }

    fn act(&mut self, act: &Act, notes: &mut Vec<String>) {
        match act {
            Act::Admin { cluster, action } => {
                let a = match action {
                    AdminVerb::Regenerate { node, purpose } => AdminAction::RegenerateCert {
                        node: nid(*node),
                        purpose: *purpose,
                    },
                    AdminVerb::Service { node, service, op } => AdminAction::Service {
                        node: nid(*node),
                        service: *service,
                        op: *op,
                    },
                    AdminVerb::ItlResetLocalkey => AdminAction::ItlResetLocalkey,
                    AdminVerb::SetMixed { etoken } => {
                        AdminAction::CtlSetMixedMode { etoken: *etoken }
                    }
                    AdminVerb::SetNonSecure => AdminAction::CtlSetNonSecure,
                    AdminVerb::CtlUpdate => AdminAction::CtlUpdate,
                    AdminVerb::CtlResetLocalkey => AdminAction::CtlResetLocalkey,

                    AdminVerb::Param(p) => AdminAction::SetParam(p.clone()),
                    AdminVerb::Upgrade(v) => AdminAction::Upgrade(*v),
                    AdminVerb::SwitchVersion => AdminAction::SwitchVersion,
                };
                self.admin(*cluster, a, notes);
            }
            Act::ResetPhones {
                target,
                window_ms,
                batch,
            } => {
                let ps: Vec<u32> = self
                    .targets(target)
                    .into_iter()
                    .filter(|i| self.phones[*i as usize].powered)
                    .collect();
                match batch {
                    None => {
                        notes.push(format!(
                            "reset of {} powered phones over {} s",
                            ps.len(),
                            window_ms / 1000
                        ));
                        self.spread(&ps, *window_ms, Ev::Reset);
                    }
                    Some((size, interval)) => {
                        let size = usize::try_from(*size).unwrap_or(usize::MAX).max(1);
                        let n = ps.len().div_ceil(size);
                        notes.push(format!(
                            "reset of {} powered phones in {n} batches of {size}, every {} s, each over {} s",
                            ps.len(),
                            interval / 1000,
                            window_ms / 1000
                        ));
                        let now = self.now;
                        for (k, chunk) in ps.chunks(size).enumerate() {
                            let start = now + interval.saturating_mul(k as u64);
                            for &p in chunk {
                                let d = if *window_ms == 0 {
                                    0
                                } else {
                                    self.rng.gen_range(0..*window_ms)
                                };
                                self.push(start + d, Ev::Reset(p));
                            }
                        }
                    }
                }
            }
            Act::PowerOff { target, fraction } => {
                let ps: Vec<u32> = self
                    .targets(target)
                    .into_iter()
                    .filter(|i| self.phones[*i as usize].powered)
                    .collect();
                let mut n = 0;
                for p in ps {
                    if *fraction >= 1.0 || self.rng.gen_bool(*fraction) {
                        self.push(self.now, Ev::Power(p, false));
                        n += 1;
                    }
                }
                notes.push(format!("{n} phones powered off"));
            }
            Act::PowerOn { target, window_ms } => {
                let ps: Vec<u32> = self
                    .targets(target)
                    .into_iter()
                    .filter(|i| !self.phones[*i as usize].powered)
                    .collect();
                notes.push(format!(
                    "{} phones powered on over {} s",
                    ps.len(),
                    window_ms / 1000
                ));
                self.spread(&ps, *window_ms, |p| Ev::Power(p, true));
            }
            Act::EraseItl { target } => {
                let ps = self.targets(target);
                notes.push(format!(
                    "{} phones: Settings > Security > Trust List > erase (§9)",
                    ps.len()
                ));
                self.spread(&ps, 60_000, |p| {
                    Ev::User(
                        p,
                        UserAction::EraseTrustLists {
                            ctl: true,
                            itl: true,
                        },
                    )
                });
            }
            Act::FactoryReset { target } => {
                let ps = self.targets(target);
                notes.push(format!("{} phones factory reset (§9)", ps.len()));
                self.spread(&ps, 60_000, |p| Ev::User(p, UserAction::FactoryReset));
            }
            Act::MovePhones {
                group,
                cluster,
                tftp,
                window_ms,
            } => {
                let list: Arc<[Host]> = tftp
                    .iter()
                    .map(|n| Host::new(&ip_text(host_of(*cluster, *n))))
                    .collect();
                let ps = self.targets(&Target::Group(*group));
                // The destination cluster gets the device records (bulk administration), in the
                // first CallManager group, same models.
                let mut added = 0;
                for &p in &ps {
                    let slot = &self.phones[p as usize];
                    let mac = mac_u64(slot.phone.mac());
                    let model = slot.phone.model().name;
                    if self.clusters[*cluster]
                        .add_fleet(model, mac, 1, CmGroupId(0))
                        .is_ok()
                    {
                        added += 1;
                        if let Some(io) = self.live.as_mut() {
                            io.add_fleet(*cluster, model, mac);
                        }
                    }
                }
                for &p in &ps {
                    let slot = &mut self.phones[p as usize];
                    slot.cluster = u16::try_from(*cluster).unwrap_or(u16::MAX);
                    slot.phone.set_dhcp_tftp(list.clone());
                }
                notes.push(format!(
                    "{} phones of {} now get option 150 = {} ({} device records added to {}); reset over {} s",
                    ps.len(),
                    self.sc.fleet[*group].name,
                    list.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", "),
                    added,
                    self.sc.clusters[*cluster].name,
                    window_ms / 1000
                ));
                let on: Vec<u32> = ps
                    .into_iter()
                    .filter(|p| self.phones[*p as usize].powered)
                    .collect();
                self.spread(&on, *window_ms, Ev::Reset);
            }
            Act::Outage {
                cluster,
                node,
                service,
                duration_ms,
                group,
            } => {
                let g = group.map(|g| u16::try_from(g).unwrap_or(u16::MAX));
                let key = (*cluster, u16::try_from(*node).unwrap_or(0), *service, g);
                self.outages.insert(key, self.now + duration_ms);
                self.push(
                    self.now + duration_ms,
                    Ev::OutageEnd(key.0, key.1, key.2, key.3),
                );
                let from = group
                    .map(|g| format!(" from group {}", self.sc.fleet[g].name))
                    .unwrap_or_default();
                notes.push(format!(
                    "[{}] {service:?} on {} unreachable{from} for {} s",
                    self.sc.clusters[*cluster].name,
                    self.sc.clusters[*cluster].nodes[*node],
                    duration_ms / 1000
                ));
            }
            Act::BulkMigrate { from, to, kind } => {
                let export: BulkBundle = self.clusters[*from].bulk_export(*kind);
                notes.push(format!(
                    "[{}] bulk export {kind:?}: {} certificates",
                    self.sc.clusters[*from].name,
                    export.items.len()
                ));
                self.admin(*to, AdminAction::BulkImport(export), notes);
            }
            Act::Backup { cluster, name } => {
                let b = self.clusters[*cluster].drs_backup();
                self.backups.insert((*cluster, name.clone()), b);
                notes.push(format!(
                    "[{}] DRS backup {name:?} taken",
                    self.sc.clusters[*cluster].name
                ));
            }
            Act::Restore { cluster, name } => {
                match self.backups.get(&(*cluster, name.clone())).cloned() {
                    Some(b) => self.admin(*cluster, AdminAction::DrsRestore(b), notes),
                    None => notes.push(format!(
                        "no backup named {name:?} was taken before this step"
                    )),
                }
            }
        }
    }

    /// Is the path from phone `i` to service `s` of node `n` blocked now (an outage for every
    /// phone, or one scoped to the phone's fleet group)?
    fn outage(&self, i: u32, c: usize, n: NodeId, s: Service) -> bool {
        let g = self.phones[i as usize].group;
        [None, Some(g)].into_iter().any(|scope| {
            self.outages
                .get(&(c, n.0, s, scope))
                .is_some_and(|t| *t > self.now)
        })
    }

    /// Trust lists are served to every phone: interned by the server's shared buffer (kept
    /// alive here, so the address cannot be reused). Per-phone configs are not interned.
    fn blob(&mut self, bytes: &Arc<[u8]>, shared: bool) -> Arc<Blob> {
        if !shared {
            return Blob::new(bytes.to_vec());
        }
        let key = Arc::as_ptr(bytes) as *const u8 as usize;
        if let Some((_, b)) = self.blobs.get(&key) {
            return b.clone();
        }
        let b = Blob::new(bytes.to_vec());
        self.blobs.insert(key, (bytes.clone(), b.clone()));
        b
    }

    /// Certificates presented in TLS handshakes are few: interned by content.
    fn cert_blob(&mut self, der: &[u8]) -> Arc<Blob> {
        if let Some(b) = self.certs.get(der) {
            return b.clone();
        }
        let b = Blob::new(der.to_vec());
        self.certs.insert(der.to_vec(), b.clone());
        b
    }

    fn phone_event(&mut self, i: u32, ev: Event) {
        if !self.phones[i as usize].powered {
            return;
        }
        self.phone_event_forced(i, ev);
    }

    fn phone_event_forced(&mut self, i: u32, ev: Event) {
        let now = SimTime(self.now);
        let mut out = std::mem::take(&mut self.out);
        self.phones[i as usize].phone.handle(now, ev, &mut out);
        for a in out.drain(..) {
            self.action(i, a);
        }
        self.out = out;
        let slot = &mut self.phones[i as usize];
        if slot.phone.locked().is_some() && self.locked_at[i as usize].is_none() {
            self.locked_at[i as usize] = Some(self.now);
        }
        if let Some(t) = slot.phone.poll_timeout()
            && slot.next_timer != Some(t)
        {
            slot.next_timer = Some(t);
            self.push(t.0.max(self.now), Ev::Timer(i));
        }
    }

    fn resolve(&self, h: &Host) -> Option<(usize, NodeId)> {
        self.hosts.get(&*h.0).copied()
    }

    fn action(&mut self, i: u32, a: Action) {
        if let Some(mut io) = self.live.take() {
            let rest = self.live_submit(io.as_mut(), i, a);
            self.live = Some(io);
            match rest {
                Some(a) => return self.action_model(i, a),
                None => return,
            }
        }
        self.action_model(i, a)
    }

    /// Live mode: network actions go to the real sockets, with the timeline's outage state.
    fn live_submit(&self, io: &mut dyn LiveIo, i: u32, a: Action) -> Option<Action> {
        let blocked = match &a {
            Action::Fetch { server, .. } => self
                .resolve(server)
                .is_some_and(|(c, n)| self.outage(i, c, n, Service::Tftp)),
            Action::QueryTvs { host, .. } => self
                .resolve(host)
                .is_some_and(|(c, n)| self.outage(i, c, n, Service::Tvs)),
            _ => return Some(a),
        };
        io.submit(self.now, i, a, blocked);
        None
    }

    fn action_model(&mut self, i: u32, a: Action) {
        // Delays below follow [`reply_delay`] (live mode delivers its real answers with it).
        let lat = self.sc.knobs.latency_ms;
        let at = self.now + lat;
        match a {
            Action::Fetch {
                req,
                server,
                transport,
                name,
                ..
            } => {
                let Some((c, n)) = self.resolve(&server) else {
                    if transport != Transport::Tftp {
                        self.push(
                            at,
                            Ev::Deliver(
                                i,
                                Event::FetchFailed {
                                    req,
                                    why: FetchFailure::ConnectRefused,
                                },
                            ),
                        );
                    }
                    return; // TFTP to nowhere: silence; the phone's own deadline applies.
                };
                if self.outage(i, c, n, Service::Tftp) {
                    return; // unreachable host: no answer on any transport
                }
                match self.clusters[c].tftp_get(n, &name) {
                    Ok(served) => {
                        let file = self.blob(&served.bytes, name.ends_with(".tlv"));
                        let server_cert = match transport {
                            Transport::Https6971 => {
                                let der = self.clusters[c].node(n).ok().and_then(|nd| {
                                    nd.tftp.https_6971.as_ref().map(|c| c.der().to_vec())
                                });
                                match der {
                                    Some(d) => Some(self.cert_blob(&d)),
                                    None => {
                                        self.push(
                                            at,
                                            Ev::Deliver(
                                                i,
                                                Event::FetchFailed {
                                                    req,
                                                    why: FetchFailure::ConnectRefused,
                                                },
                                            ),
                                        );
                                        return;
                                    }
                                }
                            }
                            _ => None,
                        };
                        self.push(
                            at,
                            Ev::Deliver(
                                i,
                                Event::FileReceived {
                                    req,
                                    file,
                                    server_cert,
                                },
                            ),
                        );
                    }
                    Err(TftpMiss::NotFound(_)) => {
                        // HTTP: 404 (CUCM answers 503 for a missing CTL; both are "not found" to the phone).
                        self.push(at, Ev::Deliver(i, Event::FileNotFound { req }));
                    }
                    Err(TftpMiss::ServiceDown(_)) => {
                        if transport != Transport::Tftp {
                            self.push(
                                at,
                                Ev::Deliver(
                                    i,
                                    Event::FetchFailed {
                                        req,
                                        why: FetchFailure::ConnectRefused,
                                    },
                                ),
                            );
                        }
                    }
                    Err(TftpMiss::Build(e)) => {
                        if self.record_events {
                            self.events.push(EventRecord {
                                at_ms: self.now,
                                phone: i,
                                kind: EventKind::Server(format!(
                                    "server could not build {name}: {e}"
                                )),
                            });
                        }
                        self.push(at, Ev::Deliver(i, Event::FileNotFound { req }));
                    }
                }
            }
            Action::QueryTvs {
                req, host, frame, ..
            } => {
                let reply = self.resolve(&host).and_then(|(c, n)| {
                    if self.outage(i, c, n, Service::Tvs) {
                        return None;
                    }
                    let msg = Message::decode(&frame, 16 * 1024).ok()?;
                    let request = msg.request().ok()?;
                    let d = self.clusters[c].tvs_answer(n, &request).ok()?;
                    let der = self.clusters[c]
                        .identity(n, CertPurpose::Tvs)?
                        .cert
                        .der()
                        .to_vec();
                    Some((Message::response_to(&msg, &d.response).encode(), der))
                });
                let ev = match reply {
                    Some((frame, der)) => Event::TvsAnswer {
                        req,
                        server_cert: self.cert_blob(&der),
                        frame,
                    },
                    None => Event::TvsUnreachable { req },
                };
                self.push(self.now + reply_delay(lat, &ev), Ev::Deliver(i, ev));
            }
            Action::Register {
                req, cms, secure, ..
            } => {
                let target = cms.iter().find_map(|h| {
                    let (c, n) = self.resolve(h)?;
                    let node = self.clusters[c].node(n).ok()?;
                    (node.runs(Service::CallManager) && !self.outage(i, c, n, Service::CallManager))
                        .then_some((c, n))
                });
                let (ok, cm_cert) = match target {
                    Some((c, n)) => {
                        let der = secure
                            .then(|| {
                                self.clusters[c]
                                    .identity(n, CertPurpose::CallManager)
                                    .map(|id| id.cert.der().to_vec())
                            })
                            .flatten();
                        (true, der.map(|d| self.cert_blob(&d)))
                    }
                    None => (false, None),
                };
                if let Some((c, _)) = target {
                    let mac = mac_u64(self.phones[i as usize].phone.mac());
                    self.clusters[c].set_registered(server_mac(mac), true);
                }
                self.push(
                    at,
                    Ev::Deliver(i, Event::RegisterResult { req, ok, cm_cert }),
                );
            }
            Action::Record(outcome) => {
                if self.record_events {
                    self.events.push(EventRecord {
                        at_ms: self.now,
                        phone: i,
                        kind: EventKind::Phone(outcome),
                    });
                }
            }
            Action::ReportItlHash { .. } | Action::Status(_) => {}
        }
    }
}

fn nid(n: usize) -> NodeId {
    NodeId(u16::try_from(n).unwrap_or(u16::MAX))
}

fn mac_u64(m: &Mac) -> u64 {
    m.0.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
}

fn mac_u64_server(m: &itlsim_server::Mac) -> u64 {
    m.0.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
}

fn server_mac(m: u64) -> itlsim_server::Mac {
    itlsim_server::Mac::from_u64(m)
}
