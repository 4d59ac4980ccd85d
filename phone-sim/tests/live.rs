//! Agreement (issue 7): every library scenario that fits runs in the virtual-time driver and in
//! live mode (real TFTP/HTTP(S)/TVS-over-TLS servers on loopback, real sockets), scaled down, and
//! every phone must end in the same state with the same reason: powered, registered, locked
//! (and why), and the same installed CTL and ITL (by SHA-256).
//!
//! `ITLSIM_LIVE_PHONES` (default 200) caps the phones per scenario; `ITLSIM_LIVE_ONLY=name`
//! runs one scenario; `ITLSIM_LIVE_SPEED` (default 40) is the live speed factor.

use std::path::PathBuf;
use std::time::Duration;

use itlsim_sim::driver::{RunOutput, Sim};
use itlsim_sim::live::{self, LiveConfig};
use itlsim_sim::scenario::{self, Scenario};

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Scales every fleet group so the whole fleet has at most `cap` phones (each model at least 1).
fn scale(sc: &mut Scenario, cap: u64) {
    let total = sc.phone_count();
    if total <= cap {
        return;
    }
    let f = cap as f64 / total as f64;
    for g in &mut sc.fleet {
        for (_, n) in &mut g.models {
            *n = ((*n as f64 * f).round() as u64).max(1);
        }
    }
}

type Final = (
    bool,
    bool,
    Option<String>,
    Option<[u8; 32]>,
    Option<[u8; 32]>,
);

fn finals(out: &RunOutput) -> Vec<(String, Final)> {
    out.phones
        .iter()
        .zip(&out.final_states)
        .map(|(p, s)| {
            (
                p.phone.mac().to_string(),
                (
                    s.on,
                    s.registered,
                    s.locked.map(|r| format!("{r:?}")),
                    p.phone.ctl().map(|l| *l.sha256()),
                    p.phone.itl().map(|l| *l.sha256()),
                ),
            )
        })
        .collect()
}

fn short(f: &Final) -> String {
    let h = |x: &Option<[u8; 32]>| x.map(|h| hex(&h[..4])).unwrap_or_else(|| "-".into());
    format!(
        "on={} reg={} locked={} ctl={} itl={}",
        f.0,
        f.1,
        f.2.as_deref().unwrap_or("-"),
        h(&f.3),
        h(&f.4)
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn live_agrees_with_virtual_on_the_library() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let only = std::env::var("ITLSIM_LIVE_ONLY").ok();
    let cap = env_num("ITLSIM_LIVE_PHONES", 200.0) as u64;
    let cfg = LiveConfig {
        speed: env_num("ITLSIM_LIVE_SPEED", 40.0),
        hold: Duration::from_millis(50),
        max_in_flight: 128,
        wall_limit: Duration::from_secs(300),
        threads: 2,
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        let name = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read scenario");
        let mut sc = scenario::parse(&f.display().to_string(), &text).expect("valid scenario");
        scale(&mut sc, cap);
        let v = Sim::new(&sc).expect("install").run();
        let (l, rep) = live::run(&sc, &cfg, None).expect("live run");
        ran += 1;
        let (a, b) = (finals(&v), finals(&l));
        let diffs: Vec<String> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| {
                format!(
                    "    {}: virtual {} | live {}",
                    x.0,
                    short(&x.1),
                    short(&y.1)
                )
            })
            .collect();
        eprintln!(
            "{name}: {} phones, {} differ; live {:.1} s wall, {} ops, twin mismatches {}",
            a.len(),
            diffs.len(),
            rep.wall_s,
            rep.operations,
            rep.twin_mismatches
        );
        if !diffs.is_empty() || rep.twin_mismatches > 0 || rep.wall_limit_hit {
            eprint!("{}", rep.text());
            for d in diffs.iter().take(10) {
                eprintln!("{d}");
            }
            failures.push(format!("{name}: {} phones differ", diffs.len()));
        }
    }
    assert!(ran > 0, "no scenario ran");
    assert!(
        failures.is_empty(),
        "live and virtual disagree: {failures:#?}"
    );
}
