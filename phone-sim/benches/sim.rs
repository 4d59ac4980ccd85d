//! `make bench-sim`: N phones (default 100,000; `ITLSIM_BENCH_PHONES` to change) through a
//! two-step regeneration with 5 % stragglers on a 2-node 11.5 cluster. Prints wall time, phone
//! events/s, peak RSS per phone, and the ratio of events/s to a bare virtual-clock event loop
//! (the same number of timestamped events pushed and popped through a binary heap) measured in the
//! same run (goal ≥ 0.5); then runs the scenario again with the same seed and confirms that
//! `summary.json` is byte-identical.

use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Instant;

use itlsim_sim::driver::Sim;
use itlsim_sim::report;
use itlsim_sim::scenario;

fn scenario_text(n: u64) -> String {
    let a = n * 6 / 10;
    let b = n - a;
    format!(
        r#"
name: bench-two-step-regen
seed: 3
clusters:
  - name: A
    version: "11.5"
    nodes: [pub, sub1]
fleet:
  - name: fleet
    cluster: A
    models: {{ "8845": {a}, "7942": {b} }}
    mac_start: "0001.0000.0000"
    stragglers: 0.05
    offline_from: 5m
    offline_until: 50m
timeline:
  - at: 10m
    do: regen-cert
    cluster: A
    node: pub
    cert: TVS
  - wait: settled
  - after: 15m
    do: regen-cert
    cluster: A
    node: pub
    cert: CallManager
  - wait: settled
"#
    )
}

/// Raw RSA-2048 PKCS#1 v1.5 SHA-1 signatures/s with the model's signer (a fresh seeded key,
/// the `wire` codec's `SigningKey`) over config-sized messages, for ~1 s.
fn raw_sign_rate() -> f64 {
    use itlsim_server::{KeySource, KeySpec};
    use itlsim_wire::crypto::SigningKey;
    use itlsim_wire::tags::Digest;
    let key = KeySource::new(5).fresh(KeySpec::Rsa(2048)).expect("key");
    let key = SigningKey::from_rsa(key.rsa().expect("RSA").clone()).expect("signing key");
    let msg = vec![0x5au8; 1800];
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed().as_secs_f64() < 1.0 {
        let _ = black_box(key.sign(Digest::Sha1, black_box(&msg)));
        n += 1;
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn bare_loop(events: u64) -> f64 {
    // A virtual clock that only pops and re-pushes timestamped events: the floor of any driver.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct E(std::cmp::Reverse<(u64, u64)>, u32);
    let start = Instant::now();
    let mut q = BinaryHeap::new();
    let live = 10_000u64;
    for i in 0..live {
        q.push(E(std::cmp::Reverse((i, i)), i as u32));
    }
    let mut seq = live;
    for _ in 0..events {
        let E(std::cmp::Reverse((t, _)), p) = q.pop().unwrap_or(E(std::cmp::Reverse((0, 0)), 0));
        seq += 1;
        q.push(E(
            std::cmp::Reverse((t + 20 + u64::from(p % 7), seq)),
            black_box(p),
        ));
    }
    black_box(q.len());
    events as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("ITLSIM_BENCH_PHONES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sc = scenario::parse("bench.yaml", &scenario_text(n)).expect("bench scenario");
    let rss0 = itlsim_sim::live::bench::peak_rss_kib();
    let t = Instant::now();
    let mut sim = Sim::new(&sc).expect("install");
    sim.record_events = false;
    let out = sim.run();
    let wall = t.elapsed().as_secs_f64();
    let rss = itlsim_sim::live::bench::peak_rss_kib();
    let results = report::evaluate(&sc, &out);
    let summary1 =
        serde_json::to_string_pretty(&report::summary_json(&sc, &out, &results)).expect("json");
    let ev = out.events_processed;
    let sim_rate = ev as f64 / wall;
    let bare = bare_loop(ev);
    let resident: usize = out.phones.iter().map(|p| p.phone.resident_bytes()).sum();
    let sign_rate = raw_sign_rate();
    let signing_s = out.files_built as f64 / sign_rate;
    println!(
        "phones {n}, virtual time {}, events {ev}",
        report::hms(out.end_ms)
    );
    println!(
        "wall {wall:.2} s, {sim_rate:.0} phone events/s; bare virtual-clock loop {bare:.0} events/s; ratio {:.3} (goal >= 0.5: {})",
        sim_rate / bare,
        if sim_rate / bare >= 0.5 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "files built and signed {} (raw RSA-2048 PKCS#1 v1.5 SHA-1 sign rate in this run {sign_rate:.0}/s: ~{signing_s:.1} s of the wall time); without that: {:.0} events/s, ratio {:.3}",
        out.files_built,
        ev as f64 / (wall - signing_s).max(1e-3),
        ev as f64 / (wall - signing_s).max(1e-3) / bare
    );
    println!(
        "peak RSS {} MiB ({:.2} KiB per phone incl. cluster model and caches; goal <= 4 KiB); phone-core resident state {:.0} B per phone",
        rss / 1024,
        (rss.saturating_sub(rss0)) as f64 / n as f64,
        resident as f64 / n as f64
    );
    println!(
        "final: {:?}",
        itlsim_sim::driver::Counts::of(out.final_states.iter())
    );
    drop(out);
    let mut sim = Sim::new(&sc).expect("install");
    sim.record_events = false;
    let out2 = sim.run();
    let results2 = report::evaluate(&sc, &out2);
    let summary2 =
        serde_json::to_string_pretty(&report::summary_json(&sc, &out2, &results2)).expect("json");
    println!(
        "second run with the same seed: summary.json {}",
        if summary1 == summary2 {
            "byte-identical"
        } else {
            "DIFFERS"
        }
    );
}
