//! Reports from a run: expectation results, the human summary, and the machine files
//! (`summary.json`, `phones.ndjson`, `events.ndjson`, `junit.xml`), written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::driver::{Counts, EventKind, PhoneState, RunOutput};
use crate::scenario::{Count, Expectation, Scenario, StateSel};

/// One expectation's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpectResult {
    /// Name.
    pub name: String,
    /// When it was checked.
    pub at: String,
    /// Passed.
    pub passed: bool,
    /// Phones matching the state among the selection.
    pub actual: u64,
    /// Phones selected.
    pub selected: u64,
    /// What was wanted.
    pub wanted: String,
}

fn matches_state(s: &PhoneState, sel: StateSel) -> bool {
    match sel {
        StateSel::Locked => s.locked.is_some(),
        StateSel::Trusted => s.trusting && s.locked.is_none(),
        StateSel::Registered => s.registered,
        StateSel::Unregistered => !s.registered,
        StateSel::Any => true,
    }
}

/// Evaluates every expectation.
pub fn evaluate(sc: &Scenario, run: &RunOutput) -> Vec<ExpectResult> {
    sc.expectations
        .iter()
        .map(|e| evaluate_one(run, e))
        .collect()
}

fn evaluate_one(run: &RunOutput, e: &Expectation) -> ExpectResult {
    let snapshot = e
        .at_time
        .and_then(|t| run.snapshots.iter().find(|(at, _)| *at == t));
    let (states, at) = match (e.at_step, snapshot) {
        (_, Some((t, Some(states)))) => (states, format!("at {}", hms(*t))),
        (_, Some((t, None))) => (
            &run.final_states,
            format!("end (the run ended before {})", hms(*t)),
        ),
        (None, None) => (&run.final_states, "end".to_string()),
        (Some(i), None) => match run.steps.get(i) {
            Some(s) => (&s.after, format!("after step {:?}", s.label)),
            None => (&run.final_states, "end (step never ran)".to_string()),
        },
    };
    let mut selected = 0u64;
    let mut actual = 0u64;
    for (i, s) in states.iter().enumerate() {
        let p = &run.phones[i];
        if e.group.is_some_and(|g| usize::from(p.group) != g) {
            continue;
        }
        let model = p.phone.model();
        if e.family
            .as_deref()
            .is_some_and(|f| f != model.caps.family.as_str())
        {
            continue;
        }
        if e.model.as_deref().is_some_and(|m| m != model.name) {
            continue;
        }
        selected += 1;
        if !matches_state(s, e.state) {
            continue;
        }
        if let Some(r) = &e.reason
            && s.locked.map(|x| x.code()) != Some(r.as_str())
        {
            continue;
        }
        actual += 1;
    }
    let (passed, wanted) = match e.count {
        Count::Exactly(n) => (actual == n, format!("exactly {n}")),
        Count::AtLeast(n) => (actual >= n, format!("at least {n}")),
        Count::AtMost(n) => (actual <= n, format!("at most {n}")),
        Count::All => (actual == selected, format!("all {selected}")),
    };
    ExpectResult {
        name: e.name.clone(),
        at,
        passed,
        actual,
        selected,
        wanted,
    }
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / d as f64)
    }
}

/// (group, "family model") → (counts, lock reason → phones).
type Breakdown = BTreeMap<(String, String), (Counts, BTreeMap<String, u64>)>;

/// Group × family breakdown of the final states, with lock reasons.
fn breakdown(sc: &Scenario, run: &RunOutput) -> Breakdown {
    type Acc = BTreeMap<(String, String), (Vec<PhoneState>, BTreeMap<String, u64>)>;
    let mut m: Acc = BTreeMap::new();
    for (i, s) in run.final_states.iter().enumerate() {
        let p = &run.phones[i];
        let key = (
            sc.fleet[usize::from(p.group)].name.clone(),
            format!(
                "{} {}",
                p.phone.model().caps.family.as_str(),
                p.phone.model().name
            ),
        );
        let e = m.entry(key).or_default();
        e.0.push(*s);
        if let Some(r) = s.locked {
            *e.1.entry(r.code().to_string()).or_default() += 1;
        }
    }
    m.into_iter()
        .map(|(k, (v, r))| (k, (Counts::of(v.iter()), r)))
        .collect()
}

/// The human summary.
pub fn summary_text(sc: &Scenario, run: &RunOutput, results: &[ExpectResult]) -> String {
    let mut s = String::new();
    let total = run.final_states.len() as u64;
    let _ = writeln!(
        s,
        "Scenario: {} ({} phones, seed {})",
        sc.name, total, sc.seed
    );
    if !sc.source.is_empty() {
        let _ = writeln!(s, "Source:   {}", sc.source);
    }
    let _ = writeln!(
        s,
        "\nTimeline (virtual time; phone counts just before the next step):"
    );
    let _ = writeln!(
        s,
        "  {:>8}  {:<44} {:>9} {:>8} {:>8} {:>8}",
        "at", "step", "registered", "trusted", "locked", "off"
    );
    for st in &run.steps {
        let c = Counts::of(st.after.iter());
        let _ = writeln!(
            s,
            "  {:>8}  {:<44} {:>9} {:>8} {:>8} {:>8}",
            hms(st.at_ms),
            truncate(&st.label, 44),
            c.registered,
            c.trusted,
            c.locked,
            c.off
        );
        for n in &st.notes {
            let _ = writeln!(s, "            {}", truncate(n, 110));
        }
    }
    let f = Counts::of(run.final_states.iter());
    let _ = writeln!(
        s,
        "  {:>8}  {:<44} {:>9} {:>8} {:>8} {:>8}",
        hms(run.end_ms),
        "end",
        f.registered,
        f.trusted,
        f.locked,
        f.off
    );
    let _ = writeln!(s, "\nFinal state by group and model:");
    let _ = writeln!(
        s,
        "  {:<16} {:<14} {:>6} {:>10} {:>8} {:>8}  lock reasons",
        "group", "model", "phones", "registered", "locked", "locked%"
    );
    for ((g, m), (c, reasons)) in breakdown(sc, run) {
        let r: Vec<String> = reasons.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "  {:<16} {:<14} {:>6} {:>10} {:>8} {:>8}  {}",
            truncate(&g, 16),
            m,
            c.total,
            c.registered,
            c.locked,
            pct(c.locked, c.total),
            r.join(" ")
        );
    }
    if !results.is_empty() {
        let _ = writeln!(s, "\nExpectations:");
        for r in results {
            let _ = writeln!(
                s,
                "  [{}] {} — {} (got {} of {} selected, at {})",
                if r.passed { "PASS" } else { "FAIL" },
                r.name,
                r.wanted,
                r.actual,
                r.selected,
                r.at
            );
        }
        let failed = results.iter().filter(|r| !r.passed).count();
        let _ = writeln!(s, "{} passed, {} failed", results.len() - failed, failed);
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

/// `h:mm:ss`.
pub fn hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `summary.json`: deterministic (no wall-clock figures), so two runs can be compared byte for byte.
pub fn summary_json(sc: &Scenario, run: &RunOutput, results: &[ExpectResult]) -> Value {
    json!({
        "scenario": sc.name,
        "source": sc.source,
        "seed": sc.seed,
        "phones": run.final_states.len(),
        "end_ms": run.end_ms,
        "events_processed": run.events_processed,
        "final": Counts::of(run.final_states.iter()),
        "steps": run.steps.iter().map(|st| json!({"label": st.label, "at_ms": st.at_ms, "notes": st.notes, "after": Counts::of(st.after.iter())})).collect::<Vec<_>>(),
        "breakdown": breakdown(sc, run).into_iter().map(|((g, m), (c, r))| json!({"group": g, "model": m, "counts": c, "lock_reasons": r})).collect::<Vec<_>>(),
        "expectations": results,
        "series": run.series.iter().map(|(t, c)| json!({"t_ms": t, "counts": c})).collect::<Vec<_>>(),
    })
}

/// One line per phone.
pub fn phones_ndjson(sc: &Scenario, run: &RunOutput) -> String {
    let mut out = String::new();
    for (i, (p, s)) in run.phones.iter().zip(&run.final_states).enumerate() {
        let ph = &p.phone;
        let fam = ph.model().caps.family;
        let v = json!({
            "device": format!("SEP{}", ph.mac()),
            "model": ph.model().name,
            "family": fam.as_str(),
            "group": sc.fleet[usize::from(p.group)].name,
            "cluster": run.cluster_names.get(usize::from(p.cluster)),
            "on": s.on,
            "registered": s.registered,
            "trusting": s.trusting,
            "locked": s.locked.map(|r| r.code()),
            "locked_reason": s.locked.map(|r| r.describe()),
            "locked_at_ms": run.locked_at[i],
            "itl_signer": ph.itl().map(|l| l.list().signer().to_string()),
            "ctl_signer": ph.ctl().map(|l| l.list().signer().to_string()),
            "status_log": ph.status_log().iter().map(|e| json!({"at_s": e.at_s, "msg": e.msg.text(fam, ph.mac())})).collect::<Vec<_>>(),
            "trace": ph.trace().iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        });
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// One line per recorded event, in time order: the timeline steps (`step`, with what the model
/// said) and the phones' typed outcomes (`kind` = the outcome's name, `outcome` = its fields).
pub fn events_ndjson(run: &RunOutput) -> String {
    let mut out = String::new();
    let mut steps = run.steps.iter().peekable();
    let push_step = |out: &mut String, s: &crate::driver::StepRecord| {
        let v = json!({"t_ms": s.at_ms, "step": s.label, "notes": s.notes});
        out.push_str(&v.to_string());
        out.push('\n');
    };
    for e in &run.events {
        while let Some(s) = steps.next_if(|s| s.at_ms <= e.at_ms) {
            push_step(&mut out, s);
        }
        let device = format!("SEP{}", run.phones[e.phone as usize].phone.mac());
        let v = match &e.kind {
            EventKind::Phone(o) => {
                let text = format!("{o:?}");
                let kind: String = text.chars().take_while(|c| c.is_alphanumeric()).collect();
                json!({"t_ms": e.at_ms, "device": device, "kind": kind, "outcome": text})
            }
            EventKind::Server(t) => json!({"t_ms": e.at_ms, "device": device, "server": t}),
        };
        out.push_str(&v.to_string());
        out.push('\n');
    }
    for s in steps {
        push_step(&mut out, s);
    }
    out
}

/// XML 1.0 text: escape markup and replace the control characters XML forbids (bad-inputs §2.7).
pub fn xml_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars().take(4096) {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o
}

/// `junit.xml`: the scenario is the suite, one test case per expectation.
pub fn junit(sc: &Scenario, results: &[ExpectResult]) -> String {
    let failed = results.iter().filter(|r| !r.passed).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
        results.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
        xml_text(&sc.name),
        results.len()
    );
    for r in results {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_text(&sc.name),
            xml_text(&r.name)
        );
        if r.passed {
            x.push_str("/>\n");
        } else {
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\">wanted {} ({}), got {} of {} selected</failure>\n    </testcase>",
                xml_text(&format!("wanted {}, got {}", r.wanted, r.actual)),
                xml_text(&r.wanted),
                xml_text(&r.at),
                r.actual,
                r.selected
            );
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes `bytes` to `dir/name` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes every report file into `dir`.
pub fn write_all(
    dir: &Path,
    sc: &Scenario,
    run: &RunOutput,
    results: &[ExpectResult],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let summary = serde_json::to_string_pretty(&summary_json(sc, run, results)).unwrap_or_default();
    write_atomic(dir, "summary.json", summary.as_bytes())?;
    write_atomic(dir, "phones.ndjson", phones_ndjson(sc, run).as_bytes())?;
    write_atomic(dir, "events.ndjson", events_ndjson(run).as_bytes())?;
    write_atomic(dir, "junit.xml", junit(sc, results).as_bytes())?;
    let text = summary_text(sc, run, results);
    write_atomic(dir, "summary.txt", text.as_bytes())?;
    write_atomic(
        dir,
        "timeline.svg",
        crate::html::timeline_svg(run).as_bytes(),
    )?;
    write_atomic(
        dir,
        "report.html",
        crate::html::report_html(sc, run, results, &text).as_bytes(),
    )?;
    Ok(())
}
