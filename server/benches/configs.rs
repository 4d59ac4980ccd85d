//! Benchmark: building + signing per-phone configs (issue 3).
//!
//! `cargo bench -p itlsim-server --bench configs [-- <phones>]` (default 100 000).
//! Reports configs/s, the raw RSA PKCS#1 v1.5 SHA-1 sign rate of the same key measured in the
//! same run, their ratio (goal ≥ 0.8), memory per cached config, and key generation costs.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary

use std::hint::black_box;
use std::time::Instant;

use itlsim_server::*;
use itlsim_wire::crypto::SigningKey;
use itlsim_wire::tags::Digest;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let phones: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!("itlsim-server config benchmark: {phones} phones, 1 thread");

    // Key generation costs (why keys come from a pool).
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(1);
    let t = Instant::now();
    for _ in 0..3 {
        black_box(rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap());
    }
    let rsa_gen = t.elapsed().as_secs_f64() / 3.0;
    let t = Instant::now();
    for _ in 0..3 {
        black_box(aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap());
    }
    let lc_gen = t.elapsed().as_secs_f64() / 3.0;
    let keys = KeySource::new(7);
    let t = Instant::now();
    for _ in 0..40 {
        black_box(keys.fresh(KeySpec::Rsa(2048)).unwrap());
    }
    let pool = t.elapsed().as_secs_f64() / 40.0;
    println!(
        "RSA-2048 key: rsa seeded {:.1} ms, aws-lc-rs {:.1} ms, pool draw {:.3} ms",
        rsa_gen * 1e3,
        lc_gen * 1e3,
        pool * 1e3
    );

    let t = Instant::now();
    let spec = ClusterSpec::new(
        "BENCH",
        Version::new(12, 5),
        &["pub", "sub1"],
        1_577_836_800,
    );
    let mut c = Cluster::install(spec, KeySource::new(11)).unwrap();
    c.add_fleet("8861", 0x0011_2233_0000, phones, CmGroupId(0))
        .unwrap();
    println!(
        "install + {phones} phone records: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Raw sign rate of the same key with the same digest over a config-sized message.
    let cm = c.identity(NodeId(0), CertPurpose::CallManager).unwrap();
    let key = SigningKey::from_rsa(cm.key.rsa().unwrap().clone()).unwrap();
    let msg = c.config_xml(c.phones().values().next());
    let n_raw = 2000u32;
    let t = Instant::now();
    for i in 0..n_raw {
        let mut m = msg.clone().into_bytes();
        m.push(i as u8);
        black_box(key.sign(Digest::Sha1, &m));
    }
    let raw_rate = f64::from(n_raw) / t.elapsed().as_secs_f64();

    let rss0 = rss_bytes();
    let macs: Vec<Mac> = c.phones().keys().copied().collect();
    let t = Instant::now();
    let mut total = 0usize;
    for m in &macs {
        let s = c
            .tftp_get(NodeId(0), &format!("SEP{m}.cnf.xml.sgn"))
            .unwrap();
        total += s.bytes.len();
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = phones as f64 / secs;
    let rss1 = rss_bytes();
    let stats = c.cache_stats();
    // Second pass over the files still cached (the cache keeps the newest MAX_CACHED_FILES).
    let cached = &macs[macs
        .len()
        .saturating_sub(itlsim_server::artefacts::MAX_CACHED_FILES)..];
    let hits0 = c.cache_stats().hits;
    let t = Instant::now();
    for m in cached {
        black_box(
            c.tftp_get(NodeId(0), &format!("SEP{m}.cnf.xml.sgn"))
                .unwrap(),
        );
    }
    let hit_rate = cached.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(
        c.cache_stats().hits - hits0,
        cached.len() as u64,
        "second pass must be all hits"
    );

    println!("raw RSA-2048 PKCS#1 v1.5 SHA-1 sign rate: {raw_rate:.0} signatures/s");
    println!(
        "build+sign per-phone configs: {rate:.0} configs/s ({secs:.1} s for {phones}); ratio to raw sign rate {:.2}",
        rate / raw_rate
    );
    println!(
        "cached re-serve: {hit_rate:.0} configs/s ({} cached)",
        cached.len()
    );
    println!(
        "cache: {} entries, {} bytes of files = {:.0} B/config (file), mean file {:.0} B",
        stats.entries,
        stats.bytes,
        stats.bytes as f64 / stats.entries.max(1) as f64,
        total as f64 / phones as f64
    );
    if let (Some(a), Some(b)) = (rss0, rss1) {
        println!(
            "RSS growth while caching: {:.0} B/cached config (file + map entry + allocator), bounded at {} entries",
            (b.saturating_sub(a)) as f64 / stats.entries.max(1) as f64,
            itlsim_server::artefacts::MAX_CACHED_FILES
        );
    }
}
