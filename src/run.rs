//! `itlsim run` and `itlsim validate`: scenario files through the virtual-time driver.
//! Exit codes: 0 all expectations passed, 1 an expectation failed, 2 usage/scenario error,
//! 3 runtime error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use itlsim_sim::driver::Sim;
use itlsim_sim::report;
use itlsim_sim::scenario::{self, Scenario};

#[derive(Args)]
pub struct RunArgs {
    /// Scenario file (YAML).
    pub file: PathBuf,
    /// Write the report files here (summary.json, phones.ndjson, events.ndjson, junit.xml, summary.txt).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only the expectation lines and the final counts.
    #[arg(long)]
    pub quiet: bool,
    /// `virtual` (deterministic virtual time) or `live` (real TFTP/HTTP(S)/TVS-over-TLS servers
    /// and phone clients on 127.0.0.1).
    #[arg(long, value_enum, default_value = "virtual")]
    pub mode: Mode,
    /// Live mode: scenario seconds per wall second for real timeouts and while an operation is
    /// late (silent or slower than the hold); answered requests keep the virtual mode's timing.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Virtual,
    Live,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Loads and validates a scenario file; errors are printed `file:line:col: message (hint)`.
pub fn load(path: &PathBuf) -> Result<Scenario, ExitCode> {
    let text = match std::fs::read(path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(e) => {
                eprintln!(
                    "{}:0:0: not UTF-8 at byte {}",
                    path.display(),
                    e.utf8_error().valid_up_to()
                );
                return Err(ExitCode::from(2));
            }
        },
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return Err(ExitCode::from(2));
        }
    };
    scenario::parse(
        &path.display().to_string(),
        text.trim_start_matches('\u{feff}'),
    )
    .map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

pub fn validate(a: ValidateArgs) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for f in &a.files {
        match load(f) {
            Ok(sc) => println!(
                "{}: ok ({} clusters, {} phones, {} steps, {} expectations)",
                f.display(),
                sc.clusters.len(),
                sc.phone_count(),
                sc.steps.len(),
                sc.expectations.len()
            ),
            Err(c) => code = c,
        }
    }
    Ok(code)
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let mut sc = match load(&a.file) {
        Ok(s) => s,
        Err(c) => return Ok(c),
    };
    if let Some(s) = a.seed {
        sc.seed = s;
    }
    let started = Instant::now();
    // A progress line on stderr when it is a terminal (hidden in CI and pipes).
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress: Option<itlsim_sim::driver::Progress> = if tty {
        Some(Box::new(|t, c, note| {
            eprint!(
                "\r  {}  registered {:>7}  trusted {:>7}  locked {:>7}  off {:>7} {note}",
                report::hms(t),
                c.registered,
                c.trusted,
                c.locked,
                c.off
            );
        }))
    } else {
        None
    };
    let mut live_report = None;
    let out = if a.mode == Mode::Live {
        if !(a.speed > 0.0 && a.speed.is_finite()) {
            eprintln!("itlsim: --speed must be a positive number");
            return Ok(ExitCode::from(2));
        }
        let cfg = itlsim_sim::live::LiveConfig {
            speed: a.speed,
            ..Default::default()
        };
        match itlsim_sim::live::run(&sc, &cfg, progress) {
            Ok((out, rep)) => {
                live_report = Some(rep);
                out
            }
            Err(e) => {
                eprintln!("itlsim: {e}");
                return Ok(ExitCode::from(3));
            }
        }
    } else {
        let mut sim = match Sim::new(&sc) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("itlsim: {e}");
                return Ok(ExitCode::from(3));
            }
        };
        sim.progress = progress;
        sim.run()
    };
    if tty {
        eprintln!();
    }

    let wall = started.elapsed();
    let results = report::evaluate(&sc, &out);
    let text = report::summary_text(&sc, &out, &results);
    if a.quiet {
        for l in text
            .lines()
            .filter(|l| l.starts_with("  [") || l.contains(" passed, "))
        {
            println!("{l}");
        }
    } else {
        print!("{text}");
    }
    eprintln!(
        "ran {} phones, {} events, {} of virtual time in {:.2} s wall ({:.0} events/s)",
        out.final_states.len(),
        out.events_processed,
        report::hms(out.end_ms),
        wall.as_secs_f64(),
        out.events_processed as f64 / wall.as_secs_f64().max(1e-9)
    );
    if let Some(rep) = &live_report {
        eprint!("{}", rep.text());
    }
    if let Some(dir) = &a.out {
        if let Err(e) = report::write_all(dir, &sc, &out, &results) {
            eprintln!("itlsim: cannot write reports to {}: {e}", dir.display());
            return Ok(ExitCode::from(3));
        }
        if let Some(rep) = &live_report {
            let json = serde_json::to_string_pretty(rep).unwrap_or_default();
            if let Err(e) = report::write_atomic(dir, "live.json", json.as_bytes()) {
                eprintln!("itlsim: cannot write live.json: {e}");
                return Ok(ExitCode::from(3));
            }
        }
        eprintln!(
            "reports in {}/ (report.html, timeline.svg, summary.txt, summary.json, phones.ndjson, events.ndjson, junit.xml)",
            dir.display()
        );
    }
    Ok(if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The report directory of a run (`itlsim run --out DIR`).
    #[arg(long)]
    pub out: PathBuf,
    /// The phone: SEP<MAC> or the MAC.
    pub device: String,
}

/// The decision chain of one phone, rule by rule, from `phones.ndjson`.
pub fn explain(a: ExplainArgs) -> Result<ExitCode> {
    let path = a.out.join("phones.ndjson");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "{}: {e} (run `itlsim run --out {} …` first)",
                path.display(),
                a.out.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let want = a
        .device
        .trim()
        .to_ascii_uppercase()
        .replace([':', '.', '-'], "");
    let want = if want.starts_with("SEP") {
        want
    } else {
        format!("SEP{want}")
    };
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}:{}: {e}", path.display(), n + 1);
                return Ok(ExitCode::from(2));
            }
        };
        if v["device"].as_str() != Some(want.as_str()) {
            continue;
        }
        let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
        println!(
            "{} — {} ({}), group {}, cluster {}",
            s("device"),
            s("model"),
            s("family"),
            s("group"),
            s("cluster")
        );
        println!(
            "final: {}{}; ITL signer: {}",
            if v["registered"].as_bool() == Some(true) {
                "registered"
            } else {
                "not registered"
            },
            match v["locked"].as_str() {
                Some(code) => format!(
                    ", LOCKED ({code}: {}) at {}",
                    s("locked_reason"),
                    v["locked_at_ms"]
                        .as_u64()
                        .map(itlsim_sim::report::hms)
                        .unwrap_or_default()
                ),
                None => String::new(),
            },
            s("itl_signer")
        );
        println!("\nStatus messages (phone screen, §4.6):");
        for e in v["status_log"].as_array().into_iter().flatten() {
            println!(
                "  {:>8}  {}",
                itlsim_sim::report::hms(e["at_s"].as_u64().unwrap_or(0) * 1000),
                e["msg"].as_str().unwrap_or("")
            );
        }
        println!(
            "\nDecision chain of the last provisioning cycle (rule ids are phone-behaviour.md sections and rules):"
        );
        for t in v["trace"].as_array().into_iter().flatten() {
            println!("  {}", t.as_str().unwrap_or(""));
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{want}: no such phone in {}", path.display());
    Ok(ExitCode::from(2))
}

/// `itlsim schema`: the JSON Schema of scenario files (for editors such as VS Code's YAML plugin).
pub fn schema() -> Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&scenario::json_schema())?
    );
    Ok(ExitCode::SUCCESS)
}
