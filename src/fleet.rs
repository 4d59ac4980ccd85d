//! `itlsim phones` (a fleet against external servers) and `itlsim bench boot` (the live boot
//! benchmark). The work is in `itlsim_sim::live`; this only maps arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use itlsim_sim::live::external::{self, ExternalConfig, RouteSpec};

#[derive(Args)]
pub struct PhonesArgs {
    /// TFTP server (option 150) as HOST[:PORT]; port 69 if omitted. HTTP 6970, HTTPS 6971 and TVS
    /// of that host are at the same offset from their standard ports (10069 → 16970, 16971, 12445:
    /// the `itlsim serve` default).
    #[arg(long, value_name = "HOST[:PORT]")]
    tftp: String,
    /// Phones to boot.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Phone model (8845, 7975, 7960, …).
    #[arg(long, default_value = "8845")]
    model: String,
    /// MAC of the first phone (12 hex digits); the others follow.
    #[arg(long, default_value = "001122334455")]
    mac_start: String,
    /// Where a host named in the configs (the <TVS> list) is: NAME=IP[+OFFSET] (all services at
    /// IP, standard port + OFFSET) or NAME.SERVICE=IP:PORT (SERVICE = tvs|tftp|http|https6971).
    /// Without one, an IP in the config is used as it is, on the standard ports.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// The ITL every phone holds before it boots (default: factory-new, trust on first use).
    #[arg(long)]
    itl: Option<PathBuf>,
    /// The CTL every phone holds before it boots.
    #[arg(long)]
    ctl: Option<PathBuf>,
    /// Phones booting at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Wall-time limit per phone (s).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// One JSON object per phone (NDJSON) instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn phones(a: PhonesArgs) -> Result<ExitCode> {
    let mac = itlsim_phone::event::Mac::parse(&a.mac_start)
        .ok_or_else(|| anyhow!("--mac-start {:?}: 12 hex digits", a.mac_start))?;
    let mac_start = mac.0.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    if a.count == 0 || a.count > 1_000_000 {
        return Err(anyhow!("--count {}: between 1 and 1000000", a.count));
    }
    let routes = a
        .routes
        .iter()
        .map(|r| RouteSpec::parse(r).map_err(|e| anyhow!(e)))
        .collect::<Result<Vec<_>>>()?;
    let read = |p: &Option<PathBuf>| -> Result<Option<Vec<u8>>> {
        p.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
            .transpose()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let cfg = ExternalConfig {
        tftp: a.tftp,
        count: a.count,
        model: a.model,
        mac_start,
        routes,
        concurrency: a.concurrency.max(1),
        per_phone_limit: Duration::from_secs(a.timeout.max(1)),
        // Real servers run on the wall clock: certificate validity is judged against it.
        knobs: itlsim_phone::Knobs {
            epoch_unix_s: now,
            ..itlsim_phone::Knobs::default()
        },
        held_itl: read(&a.itl)?,
        held_ctl: read(&a.ctl)?,
    };
    let report = match external::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("itlsim phones: {e}");
            return Ok(ExitCode::from(crate::files::EXIT_BAD_INPUT));
        }
    };
    if a.json {
        for p in &report.phones {
            println!("{}", serde_json::to_string(p)?);
        }
    } else {
        print!("{}", report.text());
    }
    Ok(if report.registered() == report.phones.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Live boot: TLS handshakes/s (H), TFTP 10 KB/s (T), verifies/s (V), L = 1/(2/H+2/T+2/V),
    /// then N phones through the live sequence on loopback: phones/s ÷ L (goal ≥ 0.6), errors,
    /// peak RSS and file descriptors. Use a release build (`cargo run --release`).
    Boot {
        /// Phones.
        #[arg(long, default_value_t = 10_000)]
        phones: usize,
        /// Phones booting at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Runtime worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn bench(c: BenchCmd) -> Result<ExitCode> {
    let BenchCmd::Boot {
        phones,
        concurrency,
        threads,
        json,
    } = c;
    if cfg!(debug_assertions) {
        eprintln!("itlsim bench: a debug build; figures are only meaningful from a release build");
    }
    let b = itlsim_sim::live::bench::boot_bench(phones.clamp(1, 1_000_000), concurrency, threads)
        .map_err(|e| anyhow!("bench boot: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&b)?);
    } else {
        print!("{}", b.text());
    }
    Ok(if b.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
