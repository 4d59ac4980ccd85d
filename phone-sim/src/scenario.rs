//! The scenario file (YAML): clusters, a phone fleet, a timeline of admin, phone and network
//! actions, expectations and knobs. Parsing is strict (unknown keys, wrong types) and validation
//! resolves every reference, so a mistake is reported with `file:line:col` and a hint before
//! anything runs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use itlsim_phone::{Knobs, Model};
use itlsim_server::{
    BulkKind, CertPurpose, FileDigest, ParamChange, PhoneInteraction, Service, ServiceOp, Version,
};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// Scenarios above this many phones are refused before anything is allocated (bad-inputs Y4).
pub const MAX_PHONES: u64 = 10_000_000;
/// Scenario files above this size are refused.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// A located scenario error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// File name as given.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub col: u64,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

type S<T> = Spanned<T>;

// ---- the file as written ----

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileDef {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    seed: u64,
    /// Longest wait for `wait: settled` and after the last step (default 2h).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    settle: Option<S<String>>,
    clusters: Vec<ClusterDef>,
    fleet: Vec<FleetDef>,
    #[serde(default)]
    timeline: Vec<StepDef>,
    #[serde(default)]
    expectations: Vec<ExpectDef>,
    #[serde(default)]
    knobs: KnobsDef,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ClusterDef {
    #[schemars(with = "String")]
    name: S<String>,
    #[schemars(with = "String")]
    version: S<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    security: Option<S<String>>,
    #[schemars(with = "Vec<String>")]
    nodes: Vec<S<String>>,
    /// Nodes without the TFTP service (default: every node runs TFTP).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    no_tftp: Vec<S<String>>,
    #[serde(default)]
    cm_groups: Vec<GroupDef>,
    #[serde(default)]
    params: ParamsDef,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GroupDef {
    #[schemars(with = "String")]
    name: S<String>,
    #[schemars(with = "Vec<String>")]
    nodes: Vec<S<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ParamsDef {
    #[serde(default)]
    rollback_pre_80: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    phone_interaction: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    tftp_signature: Option<S<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FleetDef {
    #[schemars(with = "String")]
    name: S<String>,
    #[schemars(with = "String")]
    cluster: S<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    cm_group: Option<S<String>>,
    /// Model → count.
    #[schemars(with = "BTreeMap<String, u64>")]
    models: S<BTreeMap<String, u64>>,
    /// First MAC (12 hex digits; `:`/`.`/`-` separators allowed).
    #[schemars(with = "String")]
    mac_start: S<String>,
    /// Option-150 TFTP list: node names of `cluster` (default: its TFTP nodes).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    tftp: Vec<S<String>>,
    /// `registered` (boot before the timeline, default), `factory-new` (same, first boot is
    /// trust on first use) or `offline` (powered off until a power-on step).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    state: Option<S<String>>,
    /// Fraction of the group powered off between `offline_from` and `offline_until`.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    stragglers: Option<S<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    offline_from: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    offline_until: Option<S<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct StepDef {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    at: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    after: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    wait: Option<S<String>>,
    #[serde(default)]
    label: Option<String>,
    #[serde(rename = "do", default)]
    #[schemars(with = "Option<String>")]
    action: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    cluster: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    to: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    node: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    cert: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    service: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    group: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    kind: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    value: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    param: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    name: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    version: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    tftp: Vec<S<String>>,
    #[serde(rename = "for", default)]
    #[schemars(with = "Option<String>")]
    duration: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    fraction: Option<S<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    window: Option<S<String>>,
    /// `reset-phones`: phones per batch (the rest follow in later batches).
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    batch: Option<S<u64>>,
    /// `reset-phones` with `batch`: time between the starts of two batches (default: `window`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    interval: Option<S<String>>,
}

/// The optional step fields that are set, with where they are.
fn set_fields(s: &StepDef) -> Vec<(&'static str, Location)> {
    let mut v = Vec::new();
    for (n, f) in [
        ("cluster", &s.cluster),
        ("to", &s.to),
        ("node", &s.node),
        ("cert", &s.cert),
        ("service", &s.service),
        ("group", &s.group),
        ("kind", &s.kind),
        ("value", &s.value),
        ("param", &s.param),
        ("name", &s.name),
        ("version", &s.version),
        ("for", &s.duration),
        ("window", &s.window),
        ("interval", &s.interval),
    ] {
        if let Some(x) = f {
            v.push((n, x.referenced));
        }
    }
    if let Some(x) = s.tftp.first() {
        v.push(("tftp", x.referenced));
    }
    if let Some(x) = &s.fraction {
        v.push(("fraction", x.referenced));
    }
    if let Some(x) = &s.batch {
        v.push(("batch", x.referenced));
    }
    v
}

/// Every timeline action (`do:`) and the fields it takes besides at/after/wait/label/do.
const ACTIONS: &[(&str, &[&str])] = &[
    ("regen-cert", &["cluster", "node", "cert"]),
    ("restart-service", &["cluster", "node", "service"]),
    ("stop-service", &["cluster", "node", "service"]),
    ("start-service", &["cluster", "node", "service"]),
    ("itl-reset-localkey", &["cluster"]),
    ("set-mixed-mode", &["cluster", "kind"]),
    ("set-non-secure", &["cluster"]),
    ("ctl-update", &["cluster"]),
    ("ctl-reset-localkey", &["cluster"]),
    ("set-param", &["cluster", "param", "value"]),
    ("upgrade", &["cluster", "version"]),
    ("switch-version", &["cluster"]),
    (
        "reset-phones",
        &["group", "cluster", "window", "batch", "interval"],
    ),
    ("power-off", &["group", "cluster", "fraction"]),
    ("power-on", &["group", "cluster", "window"]),
    ("erase-itl", &["group", "cluster"]),
    ("factory-reset", &["group", "cluster"]),
    ("move-phones", &["group", "to", "tftp", "window"]),
    ("outage", &["cluster", "node", "service", "for", "group"]),
    ("bulk-migrate", &["cluster", "to", "kind"]),
    ("backup", &["cluster", "name"]),
    ("restore", &["cluster", "name"]),
];

/// The fields an action takes; `None` for an unknown action (a step without `do:` takes none).
fn fields_of(action: &str) -> Option<&'static [&'static str]> {
    if action.is_empty() {
        return Some(&[]);
    }
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, f)| *f)
}

fn action_names() -> Vec<&'static str> {
    ACTIONS.iter().map(|(a, _)| *a).collect()
}

/// Where a step is reported: its `do:`, else its timing key.
fn anchor(s: &StepDef) -> Location {
    s.action
        .as_ref()
        .or(s.at.as_ref())
        .or(s.after.as_ref())
        .or(s.wait.as_ref())
        .map(|a| a.referenced)
        .unwrap_or(Location::UNKNOWN)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExpectDef {
    #[serde(default)]
    name: Option<String>,
    /// `end` (default) or the label of a timeline step (state just before the next step).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    at: Option<S<String>>,
    /// `locked`, `trusted`, `registered`, `unregistered`, `any`.
    #[schemars(with = "String")]
    state: S<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    group: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    family: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    model: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    reason: Option<S<String>>,
    #[serde(default)]
    exactly: Option<u64>,
    #[serde(default)]
    at_least: Option<u64>,
    #[serde(default)]
    at_most: Option<u64>,
    /// Shorthand: every selected phone.
    #[serde(default)]
    all: Option<bool>,
    /// Shorthand: no selected phone (`exactly: 0`).
    #[serde(default)]
    none: Option<bool>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct KnobsDef {
    #[serde(default)]
    tvs_vouches_own_itlrecovery: Option<bool>,
    #[serde(default)]
    v10_localkey_recovers: Option<bool>,
    #[serde(default)]
    tvs_ttl_s: Option<u32>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    tvs_role_check: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    locked_phone_registration: Option<S<String>>,
    #[serde(default)]
    ctl_tofu_if_itl_present: Option<bool>,
    #[serde(default)]
    tvs_cache_persistent: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    reset_window: Option<S<String>>,
    #[serde(default)]
    latency_ms: Option<u64>,
    /// `priority` (default) or `round-robin` (§4.2, K2).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    tvs_selection: Option<S<String>>,
    /// Per TVS member (§10, default 10).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    tvs_connect_timeout_s: Option<S<u32>>,
    /// First TFTP retransmit (§10, default 500, doubling).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    tftp_retx_ms: Option<S<u32>>,
    /// TFTP retransmits per file (§10, default 4).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    tftp_retries: Option<S<u32>>,
    /// Reject expired certificates (§3.9, K14, default false).
    #[serde(default)]
    check_expiry: Option<bool>,
    /// ITL size limit of the phones (E10, default 65536).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    itl_max_bytes: Option<S<u32>>,
    /// Secure-profile CTL download attempts (§2.4, §10, default 4).
    #[serde(default)]
    #[schemars(with = "Option<u8>")]
    secure_ctl_attempts: Option<S<u8>>,
    /// HTTP/HTTPS timeout before the next transport (default 10) [I].
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    http_timeout_s: Option<S<u32>>,
    /// Back-off before a new cycle after every TFTP server failed (K10, default 30) [I].
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    provision_retry_s: Option<S<u32>>,
    /// Keep each phone's decision trace (default true; false saves memory in huge runs).
    #[serde(default)]
    trace: Option<bool>,
}

// ---- the validated scenario ----

/// A cluster, ready for `Cluster::install`.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// Name.
    pub name: String,
    /// Release.
    pub version: Version,
    /// Mixed mode at install (`None`: non-secure; `Some(etoken)`).
    pub mixed: Option<bool>,
    /// Node host names, publisher first.
    pub nodes: Vec<String>,
    /// Per node: runs TFTP.
    pub tftp: Vec<bool>,
    /// CallManager groups: name and node indexes.
    pub groups: Vec<(String, Vec<usize>)>,
    /// Enterprise parameters set at install.
    pub params: Vec<ParamChange>,
}

/// A group of phones.
#[derive(Debug, Clone)]
pub struct FleetPlan {
    /// Group name.
    pub name: String,
    /// Home cluster index.
    pub cluster: usize,
    /// CallManager group index in that cluster.
    pub cm_group: usize,
    /// Models and counts, in file order.
    pub models: Vec<(Model, u64)>,
    /// First MAC as a number.
    pub first_mac: u64,
    /// Option-150 list: node indexes of the home cluster.
    pub tftp: Vec<usize>,
    /// Powered off until a power-on step.
    pub start_offline: bool,
    /// Straggler fraction and window (ms).
    pub stragglers: Option<(f64, u64, u64)>,
}

impl FleetPlan {
    /// Phones in the group.
    pub fn count(&self) -> u64 {
        self.models.iter().map(|(_, n)| n).sum()
    }
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// At this scenario time (ms).
    At(u64),
    /// This long after the previous step.
    After(u64),
    /// When every phone has settled (no cycle in progress), at most `settle` later.
    Settled,
}

/// Which phones a phone step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every phone.
    All,
    /// A fleet group.
    Group(usize),
    /// The phones of a cluster (home cluster).
    Cluster(usize),
}

/// A timeline action.
#[derive(Debug, Clone)]
pub enum Act {
    /// An admin action on a cluster (the server model's verbs).
    Admin {
        /// Cluster index.
        cluster: usize,
        /// The action.
        action: AdminVerb,
    },
    /// Reset (CUCM "Reset") phones, spread over `window_ms`; with `batch`, `(size, interval_ms)`:
    /// in batches of `size` phones (fleet order), batch k starting `k × interval_ms` later, each
    /// spread over `window_ms` (the seeds' "batch reset").
    ResetPhones {
        /// Which.
        target: Target,
        /// Spread.
        window_ms: u64,
        /// Batches.
        batch: Option<(u64, u64)>,
    },
    /// Power phones off (a fraction of them).
    PowerOff {
        /// Which.
        target: Target,
        /// Fraction 0..=1.
        fraction: f64,
    },
    /// Power every powered-off phone of `target` on.
    PowerOn {
        /// Which.
        target: Target,
        /// Spread.
        window_ms: u64,
    },
    /// "Erase" the trust lists from the phone menu (§9), then the phone resets.
    EraseItl {
        /// Which.
        target: Target,
    },
    /// Factory reset (§9).
    FactoryReset {
        /// Which.
        target: Target,
    },
    /// Point a group at another cluster's TFTP servers (DHCP option 150) and reset them.
    MovePhones {
        /// Group.
        group: usize,
        /// New cluster.
        cluster: usize,
        /// Its TFTP nodes.
        tftp: Vec<usize>,
        /// Spread.
        window_ms: u64,
    },
    /// A service of a node is unreachable on the network for a while (the model still runs it).
    Outage {
        /// Cluster.
        cluster: usize,
        /// Node.
        node: usize,
        /// TFTP (incl. HTTP) or TVS.
        service: Service,
        /// How long (ms).
        duration_ms: u64,
        /// Only between this fleet group and the node (a port blocked by a firewall); `None`:
        /// for every phone.
        group: Option<usize>,
    },
    /// Bulk certificate export from `from` and import into `to` (seed 001/003).
    BulkMigrate {
        /// Source cluster.
        from: usize,
        /// Destination cluster.
        to: usize,
        /// What.
        kind: BulkKind,
    },
    /// DRS backup under a name.
    Backup {
        /// Cluster.
        cluster: usize,
        /// Name.
        name: String,
    },
    /// DRS restore of a named backup.
    Restore {
        /// Cluster.
        cluster: usize,
        /// Name.
        name: String,
    },
}

/// Admin verbs that map one to one to the model's actions.
#[derive(Debug, Clone)]
pub enum AdminVerb {
    /// `set cert regen`.
    Regenerate {
        /// Node index.
        node: usize,
        /// Certificate type.
        purpose: CertPurpose,
    },
    /// Service control.
    Service {
        /// Node.
        node: usize,
        /// Service.
        service: Service,
        /// Operation.
        op: ServiceOp,
    },
    /// `utils itl reset localkey`.
    ItlResetLocalkey,
    /// `utils ctl set-cluster mixed-mode`.
    SetMixed {
        /// eTokens instead of tokenless.
        etoken: bool,
    },
    /// `utils ctl set-cluster non-secure-mode`.
    SetNonSecure,
    /// `utils ctl update CTLFile`.
    CtlUpdate,
    /// `utils ctl reset localkey`.
    CtlResetLocalkey,
    /// An enterprise parameter.
    Param(ParamChange),
    /// Upgrade.
    Upgrade(Version),
    /// Switch version.
    SwitchVersion,
}

/// A timeline step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Label (for reports and `at:` of expectations).
    pub label: String,
    /// When.
    pub timing: Timing,
    /// What (`None` for a pure wait).
    pub act: Option<Act>,
    /// Where it is in the file.
    pub line: u64,
}

/// Phone state an expectation counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSel {
    /// Locked (§4.7).
    Locked,
    /// Holds an ITL or CTL and is not locked.
    Trusted,
    /// Registered.
    Registered,
    /// Not registered.
    Unregistered,
    /// Any (counts the selection).
    Any,
}

/// How many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Exactly.
    Exactly(u64),
    /// At least.
    AtLeast(u64),
    /// At most.
    AtMost(u64),
    /// Every selected phone.
    All,
}

/// An expectation.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// Name (JUnit test case).
    pub name: String,
    /// `None` = end; `Some(i)` = after step i (before step i+1 runs).
    pub at_step: Option<usize>,
    /// Or at this scenario time (ms): `at: 30m`.
    pub at_time: Option<u64>,
    /// State.
    pub state: StateSel,
    /// Group filter.
    pub group: Option<usize>,
    /// Family filter (`F-MOD`, `F-LEG`, `F-CTL`, `F-NONE`).
    pub family: Option<String>,
    /// Model filter.
    pub model: Option<String>,
    /// Reason code filter (the phone's lock reason, e.g. `tvs-unreachable`).
    pub reason: Option<String>,
    /// Count.
    pub count: Count,
}

/// Scenario-level knobs.
#[derive(Debug, Clone)]
pub struct SimKnobs {
    /// Phone knobs.
    pub phone: Knobs,
    /// Server knob overrides.
    pub tvs_vouches_own_itlrecovery: Option<bool>,
    /// Server knob override.
    pub v10_localkey_recovers: Option<bool>,
    /// Server knob override.
    pub tvs_ttl_s: Option<u32>,
    /// Default spread of a reset wave (ms).
    pub reset_window_ms: u64,
    /// One-way network latency (ms).
    pub latency_ms: u64,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Source procedure.
    pub source: String,
    /// Seed.
    pub seed: u64,
    /// Longest settle wait (ms).
    pub settle_ms: u64,
    /// Clusters.
    pub clusters: Vec<ClusterPlan>,
    /// Fleet.
    pub fleet: Vec<FleetPlan>,
    /// Timeline.
    pub steps: Vec<Step>,
    /// Expectations.
    pub expectations: Vec<Expectation>,
    /// Knobs.
    pub knobs: SimKnobs,
}

impl Scenario {
    /// Total phones.
    pub fn phone_count(&self) -> u64 {
        self.fleet.iter().map(FleetPlan::count).sum()
    }
}

// ---- parsing and validation ----

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        at: &Location,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: at.line(),
            col: at.column(),
            message: message.into(),
            hint,
        }
    }

    fn pick<'v, T: Copy>(
        &self,
        what: &str,
        s: &S<String>,
        options: &'v [(&'v str, T)],
    ) -> Result<T, ScenarioError> {
        let want = s.value.trim().to_ascii_lowercase().replace('_', "-");
        if let Some((_, v)) = options.iter().find(|(k, _)| *k == want) {
            return Ok(*v);
        }
        let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
        Err(self.err(
            &s.referenced,
            format!("unknown {what} {:?}", s.value),
            Some(suggest(&want, &names)),
        ))
    }

    fn duration(&self, s: &S<String>) -> Result<u64, ScenarioError> {
        let d: Duration = humantime::parse_duration(s.value.trim()).map_err(|e| {
            self.err(
                &s.referenced,
                format!("bad duration {:?}: {e}", s.value),
                Some("e.g. 90s, 10m, 1h30m".into()),
            )
        })?;
        u64::try_from(d.as_millis())
            .ok()
            .filter(|ms| *ms <= 10 * 365 * 86_400_000)
            .ok_or_else(|| {
                self.err(
                    &s.referenced,
                    format!("duration {:?} is too long", s.value),
                    None,
                )
            })
    }
}

/// "did you mean" for a misspelt name.
fn suggest(got: &str, options: &[&str]) -> String {
    let best = options
        .iter()
        .min_by_key(|o| edit_distance(got, o))
        .copied();
    match best {
        Some(b) if edit_distance(got, b) <= 3 => format!(
            "did you mean {b:?}? expected one of: {}",
            options.join(", ")
        ),
        _ => format!("expected one of: {}", options.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn find(names: &[String], s: &S<String>) -> Option<usize> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s.value.trim()))
}

/// The JSON Schema of the scenario file, for editors (`itlsim schema`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FileDef)).unwrap_or_default()
}

/// Parses and validates a scenario. `file` names the source in error messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file };
    let top = ScenarioError {
        file: file.into(),
        line: 0,
        col: 0,
        message: String::new(),
        hint: None,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(ScenarioError {
            message: format!("file of {} bytes exceeds {MAX_FILE_BYTES}", text.len()),
            ..top
        });
    }
    if text.trim().is_empty() {
        return Err(ScenarioError {
            line: 1,
            col: 1,
            message: "no scenario: the file is empty".into(),
            ..top
        });
    }
    let options = serde_saphyr::options! {
        budget: Some(serde_saphyr::Budget::default()),
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    let def: FileDef = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let msg = e.to_string();
        let first = clean_yaml_message(msg.lines().next().unwrap_or_default());
        let hint = if first.contains("unknown field") {
            Some(hint_unknown_field(&first))
        } else {
            hint_for_type(&first)
        };
        ScenarioError {
            file: file.into(),
            line,
            col,
            message: first,
            hint,
        }
    })?;
    validate(&cx, def)
}

/// The YAML library's message without the position it repeats ("line 9 column 23: ") and without
/// advice meant for programmers ("set DuplicateKeyPolicy in Options …").
fn clean_yaml_message(msg: &str) -> String {
    let mut m = msg.trim();
    m = m.strip_prefix("error: ").unwrap_or(m);
    if let Some(rest) = m.strip_prefix("line ")
        && let Some((pos, tail)) = rest.split_once(": ")
        && pos
            .split(" column ")
            .all(|n| n.trim().parse::<u64>().is_ok())
    {
        m = tail;
    }
    let m = m.split(", set DuplicateKeyPolicy").next().unwrap_or(m);
    m.to_string()
}

/// A hint for the common type mistakes.
fn hint_for_type(msg: &str) -> Option<String> {
    let m = msg.to_ascii_lowercase();
    if m.contains("invalid u64") || m.contains("invalid u32") || m.contains("invalid u8") {
        Some("a whole number of 0 or more is expected here, e.g. 120".into())
    } else if m.contains("invalid f64") {
        Some("a number is expected here, e.g. 0.05".into())
    } else if m.contains("invalid boolean") {
        Some("write true or false (yes/no/on/off are YAML 1.1 and refused)".into())
    } else if m.contains("duplicate mapping key") {
        Some("each key may appear once in a mapping; remove or rename one".into())
    } else {
        None
    }
}

fn hint_unknown_field(msg: &str) -> String {
    // serde: "unknown field `phone`, expected one of `a`, `b`"
    let got = msg.split('`').nth(1).unwrap_or_default();
    let expected: Vec<&str> = msg
        .split("expected")
        .nth(1)
        .unwrap_or_default()
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    if expected.is_empty() {
        "check the key name".into()
    } else {
        suggest(got, &expected)
    }
}

fn validate(cx: &Ctx<'_>, def: FileDef) -> Result<Scenario, ScenarioError> {
    let settle_ms = match &def.settle {
        Some(s) => cx.duration(s)?,
        None => 2 * 3_600_000,
    };
    // Clusters.
    let mut clusters = Vec::new();
    let mut cluster_names: Vec<String> = Vec::new();
    for c in &def.clusters {
        if find(&cluster_names, &c.name).is_some() {
            return Err(cx.err(
                &c.name.referenced,
                format!("cluster {:?} defined twice", c.name.value),
                None,
            ));
        }
        let version = Version::parse(&c.version.value)
            .map_err(|e| cx.err(&c.version.referenced, e.to_string(), None))?;
        let mixed = match &c.security {
            None => None,
            Some(s) => cx.pick(
                "security mode",
                s,
                &[
                    ("non-secure", None),
                    ("mixed-tokenless", Some(false)),
                    ("mixed-etoken", Some(true)),
                ],
            )?,
        };
        if c.nodes.is_empty() {
            return Err(cx.err(
                &c.name.referenced,
                format!("cluster {:?} has no nodes", c.name.value),
                Some("list the publisher first: nodes: [pub, sub1]".into()),
            ));
        }
        let nodes: Vec<String> = c.nodes.iter().map(|n| n.value.trim().to_string()).collect();
        for (i, n) in c.nodes.iter().enumerate() {
            if nodes
                .iter()
                .take(i)
                .any(|m| m.eq_ignore_ascii_case(&n.value))
            {
                return Err(cx.err(
                    &n.referenced,
                    format!("node {:?} listed twice", n.value),
                    None,
                ));
            }
        }
        let mut tftp = vec![true; nodes.len()];
        for n in &c.no_tftp {
            let i = find(&nodes, n).ok_or_else(|| {
                cx.err(
                    &n.referenced,
                    format!("no node {:?} in cluster {}", n.value, c.name.value),
                    Some(format!("nodes: {}", nodes.join(", "))),
                )
            })?;
            tftp[i] = false;
        }
        let mut groups = Vec::new();
        for g in &c.cm_groups {
            let mut members = Vec::new();
            for n in &g.nodes {
                members.push(find(&nodes, n).ok_or_else(|| {
                    cx.err(
                        &n.referenced,
                        format!("no node {:?} in cluster {}", n.value, c.name.value),
                        Some(format!("nodes: {}", nodes.join(", "))),
                    )
                })?);
            }
            if members.is_empty() || members.len() > 5 {
                return Err(cx.err(
                    &g.name.referenced,
                    "a CallManager group has 1 to 5 nodes (§4.2)",
                    None,
                ));
            }
            groups.push((g.name.value.clone(), members));
        }
        if groups.is_empty() {
            groups.push(("Default".to_string(), (0..nodes.len().min(3)).collect()));
        }
        let mut params = Vec::new();
        if let Some(b) = c.params.rollback_pre_80 {
            params.push(ParamChange::RollbackPre80(b));
        }
        if let Some(s) = &c.params.phone_interaction {
            params.push(ParamChange::PhoneInteraction(cx.pick(
                "phone interaction",
                s,
                &[
                    ("automatic", PhoneInteraction::Automatic),
                    ("manual", PhoneInteraction::Manual),
                ],
            )?));
        }
        if let Some(s) = &c.params.tftp_signature {
            params.push(ParamChange::TftpFileSignature(cx.pick(
                "TFTP file signature",
                s,
                &[("sha1", FileDigest::Sha1), ("sha512", FileDigest::Sha512)],
            )?));
        }
        cluster_names.push(c.name.value.trim().to_string());
        clusters.push(ClusterPlan {
            name: c.name.value.trim().to_string(),
            version,
            mixed,
            nodes,
            tftp,
            groups,
            params,
        });
    }
    if clusters.is_empty() {
        return Err(ScenarioError {
            file: cx.file.into(),
            line: 1,
            col: 1,
            message: "no clusters".into(),
            hint: Some("add a clusters: section".into()),
        });
    }
    // Fleet.
    let mut fleet: Vec<FleetPlan> = Vec::new();
    let mut group_names: Vec<String> = Vec::new();
    let mut total: u64 = 0;
    let mut mac_ranges: Vec<(u64, u64, String)> = Vec::new();
    for f in &def.fleet {
        if find(&group_names, &f.name).is_some() {
            return Err(cx.err(
                &f.name.referenced,
                format!("fleet group {:?} defined twice", f.name.value),
                None,
            ));
        }
        let ci = find(&cluster_names, &f.cluster).ok_or_else(|| {
            cx.err(
                &f.cluster.referenced,
                format!("no cluster {:?}", f.cluster.value),
                Some(suggest(
                    &f.cluster.value,
                    &cluster_names.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
            )
        })?;
        let cp = &clusters[ci];
        let cm_group = match &f.cm_group {
            None => 0,
            Some(g) => {
                let names: Vec<String> = cp.groups.iter().map(|(n, _)| n.clone()).collect();
                find(&names, g).ok_or_else(|| {
                    cx.err(
                        &g.referenced,
                        format!("no CallManager group {:?} in cluster {}", g.value, cp.name),
                        Some(format!("groups: {}", names.join(", "))),
                    )
                })?
            }
        };
        let mut models = Vec::new();
        for (m, n) in &f.models.value {
            let model = Model::lookup(m).ok_or_else(|| {
                cx.err(
                    &f.models.referenced,
                    format!("unknown phone model {m:?}"),
                    Some(
                        "e.g. 8845, 8861, 7841, 7942, 7962, 7975, 7960, 6961, 8961, 9971, CIPC"
                            .into(),
                    ),
                )
            })?;
            if *n == 0 {
                return Err(cx.err(
                    &f.models.referenced,
                    format!("model {m}: count must be at least 1"),
                    None,
                ));
            }
            models.push((model, *n));
        }
        if models.is_empty() {
            return Err(cx.err(
                &f.models.referenced,
                "no models",
                Some("models: { \"8845\": 100 }".into()),
            ));
        }
        let count: u64 = models.iter().map(|(_, n)| *n).sum();
        total = total.saturating_add(count);
        if total > MAX_PHONES {
            return Err(cx.err(
                &f.models.referenced,
                format!("more than {MAX_PHONES} phones"),
                Some("split the scenario".into()),
            ));
        }
        let mac = itlsim_phone::Mac::parse(&f.mac_start.value).ok_or_else(|| {
            cx.err(
                &f.mac_start.referenced,
                format!("bad MAC {:?}", f.mac_start.value),
                Some("12 hex digits, e.g. \"0011.2233.4455\" (quote it)".into()),
            )
        })?;
        let first_mac = mac.0.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        let last = first_mac
            .checked_add(count - 1)
            .filter(|l| *l <= 0xffff_ffff_ffff)
            .ok_or_else(|| {
                cx.err(
                    &f.mac_start.referenced,
                    "MAC range runs past FFFFFFFFFFFF",
                    None,
                )
            })?;
        if let Some((_, _, other)) = mac_ranges
            .iter()
            .find(|(a, b, _)| first_mac <= *b && *a <= last)
        {
            return Err(cx.err(
                &f.mac_start.referenced,
                format!("MAC range of {} overlaps group {other}", f.name.value),
                Some("move mac_start".into()),
            ));
        }
        mac_ranges.push((first_mac, last, f.name.value.clone()));
        let tftp = if f.tftp.is_empty() {
            (0..cp.nodes.len())
                .filter(|i| cp.tftp[*i])
                .take(2)
                .collect()
        } else {
            let mut v = Vec::new();
            for n in &f.tftp {
                v.push(find(&cp.nodes, n).ok_or_else(|| {
                    cx.err(
                        &n.referenced,
                        format!("no node {:?} in cluster {}", n.value, cp.name),
                        Some(format!("nodes: {}", cp.nodes.join(", "))),
                    )
                })?);
            }
            v
        };
        let start_offline = match &f.state {
            None => false,
            Some(s) => cx.pick(
                "initial state",
                s,
                &[
                    ("registered", false),
                    ("factory-new", false),
                    ("offline", true),
                ],
            )?,
        };
        let stragglers = match &f.stragglers {
            None => None,
            Some(s) if !(0.0..=1.0).contains(&s.value) => {
                return Err(cx.err(
                    &s.referenced,
                    "stragglers is a fraction between 0 and 1",
                    Some("e.g. 0.05 for 5 %".into()),
                ));
            }
            Some(s) => {
                let from = f
                    .offline_from
                    .as_ref()
                    .map(|d| cx.duration(d))
                    .transpose()?
                    .unwrap_or(0);
                let until = f
                    .offline_until
                    .as_ref()
                    .map(|d| cx.duration(d))
                    .transpose()?
                    .ok_or_else(|| {
                        cx.err(
                            &s.referenced,
                            "stragglers needs offline_until",
                            Some("offline_until: 3h".into()),
                        )
                    })?;
                if until <= from {
                    return Err(cx.err(
                        &s.referenced,
                        "offline_until must be after offline_from",
                        None,
                    ));
                }
                Some((s.value, from, until))
            }
        };
        group_names.push(f.name.value.trim().to_string());
        fleet.push(FleetPlan {
            name: f.name.value.trim().to_string(),
            cluster: ci,
            cm_group,
            models,
            first_mac,
            tftp,
            start_offline,
            stragglers,
        });
    }
    if fleet.is_empty() {
        return Err(ScenarioError {
            file: cx.file.into(),
            line: 1,
            col: 1,
            message: "no fleet".into(),
            hint: Some("add a fleet: section with at least one group".into()),
        });
    }
    let knobs = knobs(cx, &def.knobs)?;
    // Timeline.
    let mut steps: Vec<Step> = Vec::new();
    let mut last_at: Option<u64> = None;
    let mut backups: Vec<(usize, String)> = Vec::new();
    for (i, s) in def.timeline.iter().enumerate() {
        let st = step(
            cx,
            i,
            s,
            &clusters,
            &cluster_names,
            &group_names,
            knobs.reset_window_ms,
        )?;
        if s.label.is_some() && steps.iter().any(|p| p.label == st.label) {
            return Err(cx.err(
                &anchor(s),
                format!(
                    "timeline step {}: label {:?} is used twice",
                    i + 1,
                    st.label
                ),
                Some("expectations refer to steps by label: make each one unique".into()),
            ));
        }
        if let Timing::At(t) = st.timing {
            if let (Some(prev), Some(a)) = (last_at, &s.at)
                && t < prev
            {
                return Err(cx.err(
                    &a.referenced,
                    format!(
                        "timeline step {}: at {} comes before an earlier step's at {} (steps run in order)",
                        i + 1,
                        crate::report::hms(t),
                        crate::report::hms(prev)
                    ),
                    Some("reorder the steps, or use after: for relative times".into()),
                ));
            }
            last_at = Some(last_at.map_or(t, |p| p.max(t)));
        }
        match &st.act {
            Some(Act::Backup { cluster, name }) => backups.push((*cluster, name.clone())),
            Some(Act::Restore { cluster, name })
                if !backups.iter().any(|(c, n)| c == cluster && n == name) =>
            {
                let at = s.name.as_ref().map(|n| n.referenced).unwrap_or(anchor(s));
                return Err(cx.err(
                    &at,
                    format!(
                        "timeline step {}: no backup {name:?} of cluster {} is taken before this restore",
                        i + 1,
                        clusters[*cluster].name
                    ),
                    Some(if backups.is_empty() {
                        "add a `do: backup` step with this name earlier in the timeline".into()
                    } else {
                        format!(
                            "backups taken before: {}",
                            backups
                                .iter()
                                .map(|(c, n)| format!("{n} ({})", clusters[*c].name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }),
                ));
            }
            _ => {}
        }
        steps.push(st);
    }
    let labels: Vec<String> = steps.iter().map(|s| s.label.clone()).collect();
    // Expectations.
    let mut expectations = Vec::new();
    for (i, e) in def.expectations.iter().enumerate() {
        expectations.push(expectation(cx, i, e, &labels, &group_names)?);
    }
    Ok(Scenario {
        name: def.name,
        description: def.description,
        source: def.source,
        seed: def.seed,
        settle_ms,
        clusters,
        fleet,
        steps,
        expectations,
        knobs,
    })
}

fn knobs(cx: &Ctx<'_>, k: &KnobsDef) -> Result<SimKnobs, ScenarioError> {
    use itlsim_phone::knobs::{LockedRegistration, TvsRoleCheck, TvsSelection};
    let mut phone = Knobs::default();
    if let Some(s) = &k.tvs_role_check {
        phone.tvs_role_check = cx.pick(
            "tvs_role_check",
            s,
            &[
                ("strict", TvsRoleCheck::Strict),
                ("lenient", TvsRoleCheck::Lenient),
            ],
        )?;
    }
    if let Some(s) = &k.locked_phone_registration {
        phone.locked_phone_registration = cx.pick(
            "locked_phone_registration",
            s,
            &[
                ("cached-cms", LockedRegistration::CachedCms),
                ("tftp-server", LockedRegistration::TftpServer),
                ("none", LockedRegistration::None),
            ],
        )?;
    }
    if let Some(b) = k.ctl_tofu_if_itl_present {
        phone.ctl_tofu_if_itl_present = b;
    }
    if let Some(b) = k.tvs_cache_persistent {
        phone.tvs_cache_persistent = b;
    }
    if let Some(s) = &k.tvs_selection {
        phone.tvs_selection = cx.pick(
            "tvs_selection",
            s,
            &[
                ("priority", TvsSelection::Priority),
                ("round-robin", TvsSelection::RoundRobin),
            ],
        )?;
    }
    let positive = |what: &str, v: &S<u32>| -> Result<u32, ScenarioError> {
        if v.value == 0 {
            return Err(cx.err(&v.referenced, format!("{what} must be at least 1"), None));
        }
        Ok(v.value)
    };
    if let Some(v) = &k.tvs_connect_timeout_s {
        phone.tvs_connect_timeout_s = positive("tvs_connect_timeout_s", v)?;
    }
    if let Some(v) = &k.tftp_retx_ms {
        phone.tftp_retx_ms = positive("tftp_retx_ms", v)?;
    }
    if let Some(v) = &k.tftp_retries {
        if v.value > 16 {
            return Err(cx.err(
                &v.referenced,
                "tftp_retries above 16",
                Some("the documented default is 4 (§10)".into()),
            ));
        }
        phone.tftp_retries = v.value;
    }
    if let Some(b) = k.check_expiry {
        phone.check_expiry = b;
    }
    if let Some(v) = &k.itl_max_bytes {
        phone.itl_max_bytes = positive("itl_max_bytes", v)?;
    }
    if let Some(v) = &k.secure_ctl_attempts {
        if v.value == 0 {
            return Err(cx.err(
                &v.referenced,
                "secure_ctl_attempts must be at least 1",
                None,
            ));
        }
        phone.secure_ctl_attempts = v.value;
    }
    if let Some(v) = &k.http_timeout_s {
        phone.http_timeout_s = positive("http_timeout_s", v)?;
    }
    if let Some(v) = &k.provision_retry_s {
        phone.provision_retry_s = positive("provision_retry_s", v)?;
    }
    if let Some(b) = k.trace {
        phone.trace = b;
    }
    Ok(SimKnobs {
        phone,
        tvs_vouches_own_itlrecovery: k.tvs_vouches_own_itlrecovery,
        v10_localkey_recovers: k.v10_localkey_recovers,
        tvs_ttl_s: k.tvs_ttl_s,
        reset_window_ms: k
            .reset_window
            .as_ref()
            .map(|d| cx.duration(d))
            .transpose()?
            .unwrap_or(120_000),
        latency_ms: k.latency_ms.unwrap_or(20),
    })
}

fn step(
    cx: &Ctx<'_>,
    i: usize,
    s: &StepDef,
    clusters: &[ClusterPlan],
    cluster_names: &[String],
    group_names: &[String],
    default_window: u64,
) -> Result<Step, ScenarioError> {
    let loc = anchor(s);
    let act_name = s
        .action
        .as_ref()
        .map(|a| a.value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // An unknown action is reported below, with a "did you mean".
    if let Some(takes) = fields_of(&act_name)
        && let Some((f, at)) = set_fields(s).into_iter().find(|(f, _)| !takes.contains(f))
    {
        let what = if act_name.is_empty() {
            "a step without do:".to_string()
        } else {
            format!("{act_name:?}")
        };
        return Err(cx.err(
            &at,
            format!("timeline step {}: {f} does not apply to {what}", i + 1),
            Some(if takes.is_empty() {
                "this step takes only at/after/wait and label".into()
            } else {
                format!("{act_name} takes: {}", takes.join(", "))
            }),
        ));
    }
    let set = [s.at.is_some(), s.after.is_some(), s.wait.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        return Err(cx.err(
            &loc,
            format!("timeline step {}: give only one of at, after, wait", i + 1),
            None,
        ));
    }
    let timing = if let Some(a) = &s.at {
        Timing::At(cx.duration(a)?)
    } else if let Some(a) = &s.after {
        Timing::After(cx.duration(a)?)
    } else if let Some(w) = &s.wait {
        cx.pick("wait", w, &[("settled", ())])?;
        Timing::Settled
    } else {
        return Err(cx.err(
            &loc,
            format!("timeline step {}: needs at, after or wait", i + 1),
            Some("at: 10m | after: 5m | wait: settled".into()),
        ));
    };
    let need = |f: &Option<S<String>>, what: &str| -> Result<S<String>, ScenarioError> {
        f.clone().ok_or_else(|| {
            cx.err(
                &loc,
                format!("timeline step {}: missing {what}", i + 1),
                None,
            )
        })
    };
    let cluster_of = |f: &Option<S<String>>| -> Result<usize, ScenarioError> {
        let c = need(f, "cluster")?;
        find(cluster_names, &c).ok_or_else(|| {
            cx.err(
                &c.referenced,
                format!("no cluster {:?}", c.value),
                Some(suggest(
                    &c.value,
                    &cluster_names.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
            )
        })
    };
    let node_of = |ci: usize| -> Result<usize, ScenarioError> {
        let n = need(&s.node, "node")?;
        find(&clusters[ci].nodes, &n).ok_or_else(|| {
            cx.err(
                &n.referenced,
                format!("no node {:?} in cluster {}", n.value, clusters[ci].name),
                Some(format!("nodes: {}", clusters[ci].nodes.join(", "))),
            )
        })
    };
    let group_of = |f: &Option<S<String>>| -> Result<usize, ScenarioError> {
        let g = need(f, "group")?;
        find(group_names, &g).ok_or_else(|| {
            cx.err(
                &g.referenced,
                format!("no fleet group {:?}", g.value),
                Some(suggest(
                    &g.value,
                    &group_names.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
            )
        })
    };
    let target = || -> Result<Target, ScenarioError> {
        if s.group.is_some() {
            Ok(Target::Group(group_of(&s.group)?))
        } else if s.cluster.is_some() {
            Ok(Target::Cluster(cluster_of(&s.cluster)?))
        } else {
            Ok(Target::All)
        }
    };
    let window = || -> Result<u64, ScenarioError> {
        Ok(s.window
            .as_ref()
            .map(|w| cx.duration(w))
            .transpose()?
            .unwrap_or(default_window))
    };
    let service_of = || -> Result<Service, ScenarioError> {
        let sv = need(&s.service, "service")?;
        cx.pick(
            "service",
            &sv,
            &[
                ("callmanager", Service::CallManager),
                ("tftp", Service::Tftp),
                ("tvs", Service::Tvs),
                ("capf", Service::Capf),
                ("tomcat", Service::Tomcat),
            ],
        )
    };
    let act = match &s.action {
        None => None,
        Some(a) => {
            let name = a.value.trim().to_ascii_lowercase();
            let admin = |action: AdminVerb| -> Result<Option<Act>, ScenarioError> {
                Ok(Some(Act::Admin {
                    cluster: cluster_of(&s.cluster)?,
                    action,
                }))
            };
            match name.as_str() {
                "regen-cert" => {
                    let ci = cluster_of(&s.cluster)?;
                    let c = need(&s.cert, "cert")?;
                    let purpose = cx.pick(
                        "certificate type",
                        &c,
                        &[
                            ("callmanager", CertPurpose::CallManager),
                            ("callmanager-ecdsa", CertPurpose::CallManagerEcdsa),
                            ("tomcat", CertPurpose::Tomcat),
                            ("tomcat-ecdsa", CertPurpose::TomcatEcdsa),
                            ("ipsec", CertPurpose::Ipsec),
                            ("tvs", CertPurpose::Tvs),
                            ("capf", CertPurpose::Capf),
                            ("itlrecovery", CertPurpose::ItlRecovery),
                        ],
                    )?;
                    let node = if s.node.is_some() { node_of(ci)? } else { 0 };
                    Some(Act::Admin {
                        cluster: ci,
                        action: AdminVerb::Regenerate { node, purpose },
                    })
                }
                "restart-service" | "stop-service" | "start-service" => {
                    let ci = cluster_of(&s.cluster)?;
                    let op = match name.as_str() {
                        "restart-service" => ServiceOp::Restart,
                        "stop-service" => ServiceOp::Stop,
                        _ => ServiceOp::Start,
                    };
                    Some(Act::Admin {
                        cluster: ci,
                        action: AdminVerb::Service {
                            node: node_of(ci)?,
                            service: service_of()?,
                            op,
                        },
                    })
                }
                "itl-reset-localkey" => admin(AdminVerb::ItlResetLocalkey)?,
                "set-mixed-mode" => admin(AdminVerb::SetMixed {
                    etoken: match &s.kind {
                        None => false,
                        Some(k) => cx.pick(
                            "mixed-mode kind",
                            k,
                            &[("tokenless", false), ("etoken", true)],
                        )?,
                    },
                })?,
                "set-non-secure" => admin(AdminVerb::SetNonSecure)?,
                "ctl-update" => admin(AdminVerb::CtlUpdate)?,
                "ctl-reset-localkey" => admin(AdminVerb::CtlResetLocalkey)?,
                "switch-version" => admin(AdminVerb::SwitchVersion)?,
                "upgrade" => {
                    let v = need(&s.version, "version")?;
                    admin(AdminVerb::Upgrade(
                        Version::parse(&v.value)
                            .map_err(|e| cx.err(&v.referenced, e.to_string(), None))?,
                    ))?
                }
                "set-param" => {
                    let p = need(&s.param, "param")?;
                    let v = need(&s.value, "value")?;
                    let change = match cx.pick(
                        "enterprise parameter",
                        &p,
                        &[
                            ("rollback-pre-80", 0u8),
                            ("phone-interaction", 1),
                            ("tftp-signature", 2),
                        ],
                    )? {
                        0 => ParamChange::RollbackPre80(cx.pick(
                            "boolean",
                            &v,
                            &[("true", true), ("false", false)],
                        )?),
                        1 => ParamChange::PhoneInteraction(cx.pick(
                            "phone interaction",
                            &v,
                            &[
                                ("automatic", PhoneInteraction::Automatic),
                                ("manual", PhoneInteraction::Manual),
                            ],
                        )?),
                        _ => ParamChange::TftpFileSignature(cx.pick(
                            "TFTP file signature",
                            &v,
                            &[("sha1", FileDigest::Sha1), ("sha512", FileDigest::Sha512)],
                        )?),
                    };
                    admin(AdminVerb::Param(change))?
                }
                "reset-phones" => {
                    let window_ms = window()?;
                    let batch = match &s.batch {
                        None => {
                            if let Some(iv) = &s.interval {
                                return Err(cx.err(
                                    &iv.referenced,
                                    "interval needs batch",
                                    Some("batch: 500".into()),
                                ));
                            }
                            None
                        }
                        Some(b) if b.value == 0 => {
                            return Err(cx.err(&b.referenced, "batch must be at least 1", None));
                        }
                        Some(b) => Some((
                            b.value,
                            s.interval
                                .as_ref()
                                .map(|d| cx.duration(d))
                                .transpose()?
                                .unwrap_or(window_ms),
                        )),
                    };
                    Some(Act::ResetPhones {
                        target: target()?,
                        window_ms,
                        batch,
                    })
                }
                "power-off" => {
                    let fraction = s.fraction.as_ref().map(|f| f.value).unwrap_or(1.0);
                    if !(0.0..=1.0).contains(&fraction) {
                        return Err(cx.err(&loc, "fraction must be between 0 and 1", None));
                    }
                    Some(Act::PowerOff {
                        target: target()?,
                        fraction,
                    })
                }
                "power-on" => Some(Act::PowerOn {
                    target: target()?,
                    window_ms: window()?,
                }),
                "erase-itl" => Some(Act::EraseItl { target: target()? }),
                "factory-reset" => Some(Act::FactoryReset { target: target()? }),
                "move-phones" => {
                    let group = group_of(&s.group)?;
                    let to = need(&s.to, "to (the new cluster)")?;
                    let ci = find(cluster_names, &to).ok_or_else(|| {
                        cx.err(&to.referenced, format!("no cluster {:?}", to.value), None)
                    })?;
                    let tftp = if s.tftp.is_empty() {
                        (0..clusters[ci].nodes.len())
                            .filter(|n| clusters[ci].tftp[*n])
                            .take(2)
                            .collect()
                    } else {
                        let mut v = Vec::new();
                        for n in &s.tftp {
                            v.push(find(&clusters[ci].nodes, n).ok_or_else(|| {
                                cx.err(
                                    &n.referenced,
                                    format!(
                                        "no node {:?} in cluster {}",
                                        n.value, clusters[ci].name
                                    ),
                                    None,
                                )
                            })?);
                        }
                        v
                    };
                    Some(Act::MovePhones {
                        group,
                        cluster: ci,
                        tftp,
                        window_ms: window()?,
                    })
                }
                "outage" => {
                    let ci = cluster_of(&s.cluster)?;
                    let node = node_of(ci)?;
                    let service = service_of()?;
                    if !matches!(service, Service::Tftp | Service::Tvs | Service::CallManager) {
                        return Err(cx.err(
                            &loc,
                            "outage applies to tftp, tvs or callmanager",
                            None,
                        ));
                    }
                    let d = need(&s.duration, "for (duration)")?;
                    let group = match &s.group {
                        None => None,
                        Some(_) => Some(group_of(&s.group)?),
                    };
                    Some(Act::Outage {
                        cluster: ci,
                        node,
                        service,
                        duration_ms: cx.duration(&d)?,
                        group,
                    })
                }
                "bulk-migrate" => {
                    let from = cluster_of(&s.cluster)?;
                    let to = need(&s.to, "to (the destination cluster)")?;
                    let to = find(cluster_names, &to).ok_or_else(|| {
                        cx.err(&to.referenced, format!("no cluster {:?}", to.value), None)
                    })?;
                    let kind = match &s.kind {
                        None => BulkKind::Tftp,
                        Some(k) => cx.pick(
                            "bulk kind",
                            k,
                            &[
                                ("tftp", BulkKind::Tftp),
                                ("itlrecovery", BulkKind::ItlRecovery),
                                ("capf", BulkKind::Capf),
                                ("tomcat", BulkKind::Tomcat),
                                ("all", BulkKind::All),
                            ],
                        )?,
                    };
                    Some(Act::BulkMigrate { from, to, kind })
                }
                "backup" | "restore" => {
                    let ci = cluster_of(&s.cluster)?;
                    let n = need(&s.name, "name")?.value;
                    Some(if name == "backup" {
                        Act::Backup {
                            cluster: ci,
                            name: n,
                        }
                    } else {
                        Act::Restore {
                            cluster: ci,
                            name: n,
                        }
                    })
                }
                _ => {
                    return Err(cx.err(
                        &a.referenced,
                        format!("unknown action {:?}", a.value),
                        Some(suggest(&name, &action_names())),
                    ));
                }
            }
        }
    };
    if act.is_none() && !matches!(timing, Timing::Settled) && s.label.is_none() {
        return Err(cx.err(
            &loc,
            format!("timeline step {}: no action (do:)", i + 1),
            Some(format!("do: one of {}", action_names().join(", "))),
        ));
    }
    let label = s.label.clone().unwrap_or_else(|| match &s.action {
        Some(a) => format!("{}. {}", i + 1, a.value),
        None => format!("{}. wait", i + 1),
    });
    Ok(Step {
        label,
        timing,
        act,
        line: loc.line(),
    })
}

fn expectation(
    cx: &Ctx<'_>,
    i: usize,
    e: &ExpectDef,
    labels: &[String],
    groups: &[String],
) -> Result<Expectation, ScenarioError> {
    let loc = e.state.referenced;
    let state = cx.pick(
        "state",
        &e.state,
        &[
            ("locked", StateSel::Locked),
            ("trusted", StateSel::Trusted),
            ("registered", StateSel::Registered),
            ("unregistered", StateSel::Unregistered),
            ("any", StateSel::Any),
        ],
    )?;
    let (at_step, at_time) = match &e.at {
        None => (None, None),
        Some(a) if a.value.eq_ignore_ascii_case("end") => (None, None),
        Some(a) => match labels.iter().position(|l| l == &a.value) {
            Some(i) => (Some(i), None),
            None => match humantime::parse_duration(a.value.trim()) {
                Ok(_) => (None, Some(cx.duration(a)?)),
                Err(_) => {
                    return Err(cx.err(
                        &a.referenced,
                        format!("no timeline step labelled {:?}", a.value),
                        Some(format!(
                            "end, a scenario time (30m, 1h30m) or a label: {}",
                            labels.join(" | ")
                        )),
                    ));
                }
            },
        },
    };
    let group = match &e.group {
        None => None,
        Some(g) => Some(find(groups, g).ok_or_else(|| {
            cx.err(
                &g.referenced,
                format!("no fleet group {:?}", g.value),
                Some(suggest(
                    &g.value,
                    &groups.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
            )
        })?),
    };
    let family = match &e.family {
        None => None,
        Some(f) => Some(
            cx.pick(
                "family",
                f,
                &[
                    ("f-mod", "F-MOD"),
                    ("f-leg", "F-LEG"),
                    ("f-ctl", "F-CTL"),
                    ("f-none", "F-NONE"),
                ],
            )?
            .to_string(),
        ),
    };
    let model = match &e.model {
        None => None,
        Some(m) => Some(
            Model::lookup(&m.value)
                .ok_or_else(|| {
                    cx.err(
                        &m.referenced,
                        format!("unknown phone model {:?}", m.value),
                        None,
                    )
                })?
                .name
                .to_string(),
        ),
    };
    let reason = match &e.reason {
        None => None,
        Some(r) => {
            let codes: Vec<&str> = itlsim_phone::Reason::ALL.iter().map(|r| r.code()).collect();
            if !codes.contains(&r.value.as_str()) {
                return Err(cx.err(
                    &r.referenced,
                    format!("unknown reason {:?}", r.value),
                    Some(suggest(&r.value, &codes)),
                ));
            }
            Some(r.value.clone())
        }
    };
    let counts = [
        e.exactly.map(Count::Exactly),
        e.at_least.map(Count::AtLeast),
        e.at_most.map(Count::AtMost),
        e.all.filter(|b| *b).map(|_| Count::All),
        e.none.filter(|b| *b).map(|_| Count::Exactly(0)),
    ];
    let given: Vec<Count> = counts.into_iter().flatten().collect();
    let count = match given.as_slice() {
        [c] => *c,
        [] => {
            return Err(cx.err(
                &loc,
                format!(
                    "expectation {}: give one of exactly, at_least, at_most, all, none",
                    i + 1
                ),
                None,
            ));
        }
        _ => {
            return Err(cx.err(
                &loc,
                format!(
                    "expectation {}: give only one of exactly, at_least, at_most, all, none",
                    i + 1
                ),
                None,
            ));
        }
    };
    let name = e.name.clone().unwrap_or_else(|| {
        let mut n = format!(
            "{} {:?}",
            match count {
                Count::Exactly(0) => "no phone".to_string(),
                Count::Exactly(k) => format!("exactly {k}"),
                Count::AtLeast(k) => format!("at least {k}"),
                Count::AtMost(k) => format!("at most {k}"),
                Count::All => "all".to_string(),
            },
            state
        );
        if let Some(g) = group {
            n.push_str(&format!(" in {}", groups[g]));
        }
        if let Some(f) = &family {
            n.push_str(&format!(" ({f})"));
        }
        if let Some(r) = &reason {
            n.push_str(&format!(" [{r}]"));
        }
        n
    });
    Ok(Expectation {
        name,
        at_step,
        at_time,
        state,
        group,
        family,
        model,
        reason,
        count,
    })
}
