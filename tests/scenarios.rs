//! Every scenario of the library (`scenarios/*.yaml`) runs and its expectations — derived from
//! the specification, not from runs — pass. Bad scenario files are refused with `file:line:col`
//! and a hint (bad-inputs §2.6).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_itlsim"))
}

fn library() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_library_has_at_least_fifteen_scenarios_each_citing_its_source() {
    let files = library();
    assert!(files.len() >= 15, "{} scenarios", files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: needs a header comment citing its source procedure",
            f.display()
        );
        assert!(
            text.contains("\nsource:"),
            "{}: needs a source: field",
            f.display()
        );
        assert!(
            text.contains("\nexpectations:"),
            "{}: needs expectations",
            f.display()
        );
    }
}

#[test]
fn every_library_scenario_meets_its_expectations() {
    let mut failures = Vec::new();
    for f in library() {
        let o = bin()
            .args(["run", "--quiet"])
            .arg(&f)
            .output()
            .expect("run itlsim");
        if o.status.code() != Some(0) {
            failures.push(format!(
                "{} exited {:?}:\n{}{}",
                f.display(),
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn junit_and_reports_are_written_and_the_exit_code_reflects_expectations() {
    let dir = std::env::temp_dir().join(format!("itlsim-scen-{}", std::process::id()));
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regen-callmanager-v14.yaml");
    let o = bin()
        .args(["run", "--quiet", "--out"])
        .arg(&dir)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    for f in [
        "report.html",
        "timeline.svg",
        "summary.json",
        "summary.txt",
        "phones.ndjson",
        "events.ndjson",
        "junit.xml",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"2\" failures=\"0\""), "{junit}");
    // events.ndjson: the timeline steps and the phones' typed outcomes, in time order.
    let events: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t: Vec<u64> = events.iter().map(|e| e["t_ms"].as_u64().unwrap()).collect();
    assert!(
        t.windows(2).all(|w| w[0] <= w[1]),
        "events out of time order"
    );
    assert!(
        events
            .iter()
            .any(|e| e["step"].is_string() && e["notes"].is_array())
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "TrustListInstalled" && e["device"].is_string())
    );
    // The same scenario with an expectation that cannot hold: exit 1, a JUnit failure.
    let text = std::fs::read_to_string(&good).unwrap().replace(
        "    state: locked\n    none: true",
        "    state: locked\n    all: true",
    );
    let bad = dir.join("wrong-expectation.yaml");
    std::fs::write(&bad, text).unwrap();
    let o = bin()
        .args(["run", "--quiet", "--out"])
        .arg(&dir)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("<failure message="),
        "{junit}"
    );
    // explain finds a phone of that run.
    let o = bin()
        .args(["explain", "--out"])
        .arg(&dir)
        .arg("SEP0A0100000000")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Decision chain"));
}

const BASE: &str = "name: t\nclusters:\n  - name: A\n    version: \"11.5\"\n    nodes: [pub, sub]\nfleet:\n  - name: g\n    cluster: A\n    models: { \"8845\": 10 }\n    mac_start: \"000000000100\"\n";

#[test]
fn bad_scenario_files_give_located_errors_with_hints() {
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown key",
            BASE.replace("fleet:", "fleat:"),
            "unknown field `fleat`",
        ),
        (
            "misspelt action",
            format!(
                "{BASE}timeline:\n  - at: 1m\n    do: regen-cret\n    cluster: A\n    cert: TVS\n"
            ),
            "did you mean \"regen-cert\"",
        ),
        (
            "undefined node",
            format!(
                "{BASE}timeline:\n  - at: 1m\n    do: regen-cert\n    cluster: A\n    node: sub9\n    cert: TVS\n"
            ),
            "no node \"sub9\"",
        ),
        (
            "undefined group",
            format!("{BASE}expectations:\n  - group: lobby\n    state: locked\n    none: true\n"),
            "no fleet group \"lobby\"",
        ),
        (
            "negative count",
            BASE.replace("\"8845\": 10", "\"8845\": -5"),
            "invalid u64 (hint: a whole number",
        ),
        (
            "zero count",
            BASE.replace("\"8845\": 10", "\"8845\": 0"),
            "count must be at least 1",
        ),
        (
            "MAC collision",
            format!(
                "{BASE}  - name: h\n    cluster: A\n    models: {{ \"7942\": 5 }}\n    mac_start: \"000000000105\"\n"
            ),
            "overlaps group g",
        ),
        (
            "over 10 million phones",
            BASE.replace("\"8845\": 10", "\"8845\": 10000001"),
            "more than 10000000 phones",
        ),
        (
            "duplicate key",
            BASE.replace("name: t\n", "name: t\nname: u\n"),
            "duplicate",
        ),
        (
            "misspelt reason",
            format!(
                "{BASE}expectations:\n  - state: locked\n    reason: tvs-unreachible\n    none: true\n"
            ),
            "did you mean \"tvs-unreachable\"",
        ),
        (
            "bad duration",
            format!("{BASE}timeline:\n  - at: 5 parsecs\n    do: reset-phones\n"),
            "bad duration",
        ),
        (
            "at and after together",
            format!("{BASE}timeline:\n  - at: 1m\n    after: 2m\n    do: reset-phones\n"),
            "only one of at, after, wait",
        ),
        (
            "field of another action",
            format!("{BASE}timeline:\n  - at: 1m\n    do: reset-phones\n    cert: TVS\n"),
            "cert does not apply to \"reset-phones\"",
        ),
        (
            "duplicate step label",
            format!(
                "{BASE}timeline:\n  - at: 1m\n    label: x\n    do: reset-phones\n  - at: 2m\n    label: x\n    do: reset-phones\n"
            ),
            "label \"x\" is used twice",
        ),
        (
            "steps out of order",
            format!(
                "{BASE}timeline:\n  - at: 10m\n    do: reset-phones\n  - at: 5m\n    do: reset-phones\n"
            ),
            "comes before an earlier step",
        ),
        (
            "restore of a backup never taken",
            format!(
                "{BASE}timeline:\n  - at: 10m\n    do: restore\n    cluster: A\n    name: monday\n"
            ),
            "no backup \"monday\" of cluster A",
        ),
        (
            "interval without batch",
            format!("{BASE}timeline:\n  - at: 1m\n    do: reset-phones\n    interval: 5m\n"),
            "interval needs batch",
        ),
        (
            "zero knob",
            format!("{BASE}knobs:\n  tftp_retx_ms: 0\n"),
            "tftp_retx_ms must be at least 1",
        ),
        (
            "misspelt knob value",
            format!("{BASE}knobs:\n  tvs_selection: round-robbin\n"),
            "did you mean \"round-robin\"",
        ),
        (
            "yaml 1.1 boolean",
            format!("{BASE}knobs:\n  ctl_tofu_if_itl_present: yes\n"),
            "invalid boolean (strict mode expects true/false) (hint: write true or false",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("itlsim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (what, text, needle) in cases {
        let f = dir.join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&f, text).unwrap();
        let o = bin().arg("validate").arg(&f).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        // file:line:col with a real line.
        let prefix = format!("{}:", f.display());
        let loc = err
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{what}: no file prefix in {err}"));
        let mut parts = loc.splitn(3, ':');
        let line: u64 = parts.next().unwrap_or("").parse().unwrap_or(0);
        let col: u64 = parts.next().unwrap_or("").parse().unwrap_or(0);
        assert!(line > 0 && col > 0, "{what}: not located: {err}");
        assert!(err.contains(needle), "{what}: {err}");
    }
    // An empty file.
    let f = dir.join("empty.yaml");
    std::fs::write(&f, "").unwrap();
    let o = bin().arg("validate").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no scenario"));
}

#[test]
fn live_mode_from_the_cli_writes_the_same_reports_plus_latencies() {
    let out = std::env::temp_dir().join(format!("itlsim-live-{}", std::process::id()));
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/first-boot-v14.yaml");
    let o = bin()
        .args([
            "run",
            f.to_str().unwrap(),
            "--mode",
            "live",
            "--speed",
            "120",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "summary.json",
        "phones.ndjson",
        "junit.xml",
        "report.html",
        "live.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("live.json")).unwrap()).unwrap();
    assert_eq!(live["twin_mismatches"], 0);
    let services: Vec<&str> = live["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    // First boot: CTL/ITL/config over HTTP 6970 and TFTP, real sockets.
    assert!(
        services.contains(&"tftp") && services.contains(&"http6970"),
        "{services:?}"
    );
    assert!(
        live["latency"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["count"].as_u64().unwrap() > 0)
    );
    let listeners = live["listeners"].as_array().unwrap();
    assert!(
        listeners
            .iter()
            .all(|l| l.as_str().unwrap().contains("127.0.0.1:"))
    );
}
