//! Live boot benchmark (issue 7): `cargo bench -p itlsim-sim --bench live_boot -- [N] [CONCURRENCY]`
//! (defaults 10000 and 256). Loopback only; prints H, T, V, L, phones/s ÷ L, errors, peak RSS, fds.

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let conc = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    match itlsim_sim::live::bench::boot_bench(n, conc, 2) {
        Ok(b) => print!("{}", b.text()),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
