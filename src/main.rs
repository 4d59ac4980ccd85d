//! `itlsim`: reproduce Cisco CUCM ITL/CTL trust-list lockouts before they happen.
//! This file only parses arguments and dispatches; the work is in the library crates.

mod files;
mod fleet;
mod phone;
mod run;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "itlsim",
    version,
    about = "Cisco CUCM Security-by-Default simulator: trust lists, signed configs, TVS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ITL/CTL trust lists (.tlv): show, build.
    #[command(subcommand)]
    Itl(files::ItlCmd),
    /// Signed (.sgn) and encrypted (.enc.sgn) files: show, verify, sign, encrypt, decrypt.
    #[command(subcommand)]
    Sgn(files::SgnCmd),
    /// TVS frames: decode a captured request or response.
    #[command(subcommand)]
    Tvs(files::TvsCmd),
    /// Run a scenario (YAML) and report which phones lock, when and why.
    Run(run::RunArgs),
    /// Check scenario files without running them.
    Validate(run::ValidateArgs),
    /// The decision chain of one phone from a run's reports.
    Explain(run::ExplainArgs),
    /// Print the JSON Schema of scenario files (for editors).
    Schema,
    /// Serve a cluster file on the network: TVS, TFTP, HTTP 6970, HTTPS 6971/6972 per node.
    Serve(serve::ServeArgs),
    /// One simulated phone against real files.
    #[command(subcommand)]
    Phone(PhoneCmd),
    /// Boot a fleet of simulated phones against external servers (`itlsim serve`, a lab CUCM)
    /// over real TFTP/HTTP(S)/TVS; per-phone outcomes (exit 0 all registered, 1 not, 2 bad input).
    Phones(fleet::PhonesArgs),
    /// Benchmarks that print ratios measured in the same run.
    #[command(subcommand)]
    Bench(fleet::BenchCmd),
}

#[derive(Subcommand)]
enum PhoneCmd {
    /// Would this phone accept this file? Verdict and decision chain (exit 0 accepted, 1 rejected, 2 bad input).
    Check(phone::CheckArgs),
}

/// `itlsim … | head` closes the pipe early; Rust then panics in `println!`. Leave quietly with the
/// shell's SIGPIPE status instead of a backtrace.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();

    let result = match cli.command {
        Command::Itl(c) => files::itl(c),
        Command::Sgn(c) => files::sgn(c),
        Command::Tvs(c) => files::tvs(c),
        Command::Phone(PhoneCmd::Check(a)) => phone::check(a),
        Command::Run(a) => run::run(a),
        Command::Validate(a) => run::validate(a),
        Command::Explain(a) => run::explain(a),
        Command::Schema => run::schema(),
        Command::Phones(a) => fleet::phones(a),
        Command::Bench(c) => fleet::bench(c),

        Command::Serve(a) => serve::serve(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("itlsim: {e:#}");
            ExitCode::from(files::EXIT_BAD_INPUT)
        }
    }
}
