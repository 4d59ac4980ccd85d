//! `make bench`: parse+verify of a 40-record ITL and of a 10 KB `.sgn`, against the raw
//! "hash + RSA-2048 verify over the same bytes" rate measured in the same run. Prints the ratio
//! (goal ≥ 0.8, i.e. parsing overhead ≤ 25 %). Rounds alternate between the two loops so that
//! machine noise hits both; the median round is reported.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};
use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PemBundle, PublicKey};
use itlsim_wire::header::Layout;
use itlsim_wire::sgn::{SignOptions, SignedFile, sign};
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::{TrustList, TrustListBuilder};

const ROUNDS: usize = 7;
const ROUND_TIME: Duration = Duration::from_millis(250);

fn pem(name: &str) -> PemBundle {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/keys")
        .join(format!("{name}.pem"));
    PemBundle::parse(&std::fs::read(p).expect("key file")).expect("pem")
}

/// Calls `f` repeatedly for about `ROUND_TIME`, returns calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < ROUND_TIME {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn compare(name: &str, mut raw: impl FnMut(), mut full: impl FnMut()) -> f64 {
    let (mut r, mut f) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        r.push(rate(&mut raw));
        f.push(rate(&mut full));
    }
    let (r, f) = (median(r), median(f));
    let ratio = f / r;
    println!(
        "{name:<34} raw {r:>9.0}/s   parse+verify {f:>9.0}/s   ratio {ratio:.3}  (goal >= 0.8: {})",
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
    ratio
}

fn main() {
    let sast = pem("sast");
    let sast_key = sast.key.expect("sast key");
    let sast_cert = CertInfo::parse(&sast.certs[0]).expect("sast cert");
    let others: Vec<CertInfo> = [
        "ccm",
        "tvs",
        "capf",
        "app_server",
        "sast2",
        "unknown",
        "device",
    ]
    .iter()
    .map(|n| CertInfo::parse(&pem(n).certs[0]).expect("cert"))
    .collect();

    // A 40-record ITL: the SAST plus 39 certificates (the documents' "39 certs" cluster).
    let mut b = TrustListBuilder::new(Layout::Reference, "ITLFile.tlv", 1_800_000_000)
        .cert(Role::SAST, &sast_cert);
    for i in 0..39 {
        b = b.cert(Role::CCM_TFTP, &others[i % others.len()]);
    }
    let itl = b.sign(&sast_key, &sast_cert).expect("sign itl");
    let itl_bytes = itl.raw().to_vec();
    let itl_signed = itl.envelope().signed_data();
    let itl_sig = itl.info().signature.clone();
    let PublicKey::Rsa { der: sast_der, .. } = sast_cert.public_key.clone() else {
        panic!("RSA")
    };

    // A 10 KB .sgn config signed by the CallManager key.
    let ccm = pem("ccm");
    let ccm_key = ccm.key.expect("ccm key");
    let ccm_cert = CertInfo::parse(&ccm.certs[0]).expect("ccm cert");
    let payload: Vec<u8> = b"<device><x>0123456789abcdef</x></device>\n"
        .iter()
        .copied()
        .cycle()
        .take(10 * 1024)
        .collect();
    let opts = SignOptions {
        filename: "SEP001122334455.cnf.xml.sgn",
        digest: Digest::Sha1,
        timestamp: 1_800_000_000,
        layout: Layout::Reference,
    };
    let sgn = sign(&payload, &opts, &ccm_key, &ccm_cert).expect("sign sgn");
    let sgn_bytes = sgn.envelope().raw().to_vec();
    let sgn_signed = sgn.envelope().signed_data();
    let sgn_sig = sgn.info().signature.clone();
    let PublicKey::Rsa { der: ccm_der, .. } = ccm_cert.public_key.clone() else {
        panic!("RSA")
    };

    println!(
        "itlsim-wire parse+verify benchmark (median of {ROUNDS} alternating rounds of {ROUND_TIME:?})"
    );
    println!(
        "ITL: {} records, {} bytes; .sgn: {} bytes payload, {} bytes file",
        itl.records().len(),
        itl_bytes.len(),
        payload.len(),
        sgn_bytes.len()
    );
    let alg = &RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY;
    let r1 = compare(
        "ITL 40 records (SHA-1, RSA-2048)",
        || {
            UnparsedPublicKey::new(alg, &sast_der)
                .verify(black_box(&itl_signed), &itl_sig)
                .expect("raw verify");
        },
        || {
            let t = TrustList::decode(black_box(&itl_bytes)).expect("decode");
            t.verify_self().expect("verify");
        },
    );
    let shared = bytes::Bytes::from(itl_bytes.clone());
    let r1s = compare(
        "ITL 40 records, shared buffer",
        || {
            UnparsedPublicKey::new(alg, &sast_der)
                .verify(black_box(&itl_signed), &itl_sig)
                .expect("raw verify");
        },
        || {
            let t = TrustList::decode_shared(black_box(shared.clone())).expect("decode");
            t.verify_self().expect("verify");
        },
    );
    let ccm_pub = ccm_cert.public_key.clone();
    let r2 = compare(
        ".sgn 10 KB (SHA-1, RSA-2048)",
        || {
            UnparsedPublicKey::new(alg, &ccm_der)
                .verify(black_box(&sgn_signed), &sgn_sig)
                .expect("raw verify");
        },
        || {
            let f = SignedFile::decode(black_box(&sgn_bytes)).expect("decode");
            f.verify_with(&ccm_pub).expect("verify");
        },
    );
    // Where the ITL time goes (for whoever optimises next).
    let decode = median(
        (0..ROUNDS)
            .map(|_| {
                rate(|| {
                    drop(black_box(
                        TrustList::decode(black_box(&itl_bytes)).expect("decode"),
                    ))
                })
            })
            .collect(),
    );
    let key = median(
        (0..ROUNDS)
            .map(|_| {
                rate(|| {
                    drop(black_box(
                        itl.signer()
                            .expect("signer")
                            .record
                            .verifying_key()
                            .expect("key"),
                    ))
                })
            })
            .collect(),
    );
    println!(
        "breakdown: ITL decode alone {decode:.0}/s ({:.1} us), signer key extraction {key:.0}/s ({:.1} us)",
        1e6 / decode,
        1e6 / key
    );
    println!("summary: itl_ratio={r1:.3} itl_shared_ratio={r1s:.3} sgn_ratio={r2:.3}");
}
