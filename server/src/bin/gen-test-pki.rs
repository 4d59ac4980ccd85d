//! Regenerates the committed TEST-ONLY PKI under `certs/` (run by `make certs`).
//!
//! Usage: `cargo run -p itlsim-server --bin gen-test-pki -- <certs-dir>`
//!
//! Deterministic: the same program writes the same bytes (seeded RSA generation), so a rerun
//! shows no diff unless the program changed.

#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use itlsim_server::keys::PrivateKey;
use itlsim_server::pki::{CertAuthority, OrgInfo};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rsa::pkcs8::EncodePrivateKey;

/// Pool sizes per RSA modulus size.
const POOL: [(usize, usize); 4] = [(1024, 24), (2048, 64), (3072, 6), (4096, 3)];

/// Fake look-alikes of the preloaded manufacturing roots (seed 000 "MIC root certificates";
/// seed 002 "Manufacturing -trust certificates are pre-loaded"). TEST ONLY, not Cisco's.
pub const ROOTS: [&str; 7] = [
    "CAP-RTP-001",
    "CAP-RTP-002",
    "Cisco_Manufacturing_CA",
    "Cisco_Root_CA_2048",
    "Cisco_Manufacturing_CA_SHA2",
    "Cisco_Root_CA_M2",
    "ACT2_SUDI_CA",
];

/// 2010-01-01T00:00:00Z: start of validity of the test roots.
const ROOT_NOT_BEFORE: i64 = 1_262_304_000;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "certs".into()));
    std::fs::create_dir_all(dir.join("keys"))?;
    std::fs::create_dir_all(dir.join("roots"))?;
    let mut rng = ChaCha20Rng::seed_from_u64(0x1715_2026);
    for (bits, count) in POOL {
        let mut text = String::new();
        for i in 0..count {
            let key = rsa::RsaPrivateKey::new(&mut rng, bits)?;
            let der = key.to_pkcs8_der()?;
            writeln!(text, "# TEST ONLY key rsa-{bits} #{i}")?;
            text.push_str(&pem::encode(&pem::Pem::new(
                "PRIVATE KEY",
                der.as_bytes().to_vec(),
            )));
        }
        write(&dir.join("keys").join(format!("rsa-{bits}.pem")), &text)?;
        eprintln!("rsa-{bits}: {count} keys");
    }
    let org = OrgInfo {
        ou: "itlsim".into(),
        o: "itlsim TEST ONLY look-alike".into(),
        l: "Nowhere".into(),
        st: "NA".into(),
        c: "US".into(),
    };
    let mut all = String::new();
    for name in ROOTS.iter().copied().chain(["itlsim-test-ca"]) {
        let key = PrivateKey::from_rsa(rsa::RsaPrivateKey::new(&mut rng, 2048)?)?;
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        let ca = CertAuthority::new(name, &org, key.clone(), serial, ROOT_NOT_BEFORE, 365 * 30)?;
        let mut text = format!("# TEST ONLY look-alike of {name}\n");
        text.push_str(&pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            ca.cert.der().to_vec(),
        )));
        text.push_str(&pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            key.pkcs8_der().to_vec(),
        )));
        write(&dir.join("roots").join(format!("{name}.pem")), &text)?;
        all.push_str(&text);
    }
    eprintln!("roots written");
    Ok(())
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
