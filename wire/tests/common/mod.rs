//! Helpers shared by the wire integration tests: the conformance vectors in `testdata/`.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PemBundle, SigningKey};

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Key and certificate of `keys/<name>.pem`.
pub fn key(name: &str) -> (Option<SigningKey>, CertInfo) {
    let b = PemBundle::parse(&read(&format!("keys/{name}.pem"))).expect("pem");
    let cert = CertInfo::parse(b.certs.first().expect("a certificate")).expect("cert");
    (b.key, cert)
}

pub const KEY_NAMES: &[&str] = &[
    "sast",
    "sast2",
    "sast1024",
    "ccm",
    "tvs",
    "capf",
    "tftp_ec",
    "app_server",
    "device",
    "unknown",
];

/// Every `.tlv` vector, by file name.
pub fn tlv_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(testdata().join("tlv"))
        .expect("tlv dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tlv"))
        .collect();
    v.sort();
    v
}

/// Every signed binary vector (tlv, sgn, enc) as (relative path, bytes).
pub fn all_signed_files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = tlv_files()
        .into_iter()
        .map(|n| (format!("tlv/{n}"), read(&format!("tlv/{n}"))))
        .collect();
    for rel in [
        "sgn/sha1/SEP001122334455.cnf.xml.sgn",
        "sgn/sha512/SEP001122334455.cnf.xml.sgn",
        "enc/SEP001122334455.cnf.xml.sgn",
        "enc/SEP001122334455.cnf.xml.enc.sgn",
    ] {
        v.push((rel.to_string(), read(rel)));
    }
    v
}
