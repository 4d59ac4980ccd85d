//! `itlsim`: reproduce Cisco CUCM ITL/CTL trust-list lockouts before they happen.
//! This file only parses arguments and dispatches; the work is in the library crates.

mod files;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Itl(c) => files::itl(c),
        Command::Sgn(c) => files::sgn(c),
        Command::Tvs(c) => files::tvs(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("itlsim: {e:#}");
            ExitCode::from(files::EXIT_BAD_INPUT)
        }
    }
}
