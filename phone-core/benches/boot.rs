//! Benchmark (issue 5): events/s for many phones stepping through a boot with crypto stubbed vs
//! real verification (memoized by (file hash, key hash), and unmemoized), and bytes per phone.
//!
//! `cargo bench -p itlsim-phone --features bench-stub --bench boot [-- PHONES]` (default 100 000).
//! Uses the throw-away keys of `wire/testdata/keys`. No unsafe: memory is measured by the
//! phone's own accounting (`Phone::resident_bytes`) and by the process RSS delta.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use itlsim_phone::event::{
    Action, Blob, Event, FileName, Host, Mac, ResetKind, SimTime, Transport,
};
use itlsim_phone::knobs::Knobs;
use itlsim_phone::model::Model;
use itlsim_phone::{CryptoMode, Env, Phone, PhoneSetup};
use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PemBundle, SigningKey};
use itlsim_wire::header::Layout;
use itlsim_wire::sgn::{self, SignOptions};
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::TrustListBuilder;
use itlsim_wire::tvs::{Message, Response, Status};

struct Key {
    key: SigningKey,
    cert: CertInfo,
    der: Arc<Blob>,
}

fn load(name: &str) -> Option<Key> {
    let path = format!(
        "{}/../wire/testdata/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let b = PemBundle::parse(&std::fs::read(path).ok()?).ok()?;
    let der = b.certs.first()?.clone();
    Some(Key {
        key: b.key?,
        cert: CertInfo::parse(&der).ok()?,
        der: Blob::new(der),
    })
}

fn itl(signer: &Key, recs: &[(Role, &Key)]) -> Option<Arc<Blob>> {
    let mut b = TrustListBuilder::new(Layout::Reference, "ITLFile.tlv", 1_800_000_000);
    for (r, k) in recs {
        b = b.cert(*r, &k.cert);
    }
    Some(Blob::new(
        b.sign(&signer.key, &signer.cert).ok()?.raw().to_vec(),
    ))
}

struct World {
    itl1: Arc<Blob>,
    itl2: Arc<Blob>,
    cfg: Arc<Blob>,
    tvs_cert: Arc<Blob>,
    vouch: Vec<u8>,
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Steps one phone until it has nothing to do; returns the number of events handled.
fn drive(
    phone: &mut Phone,
    w: &World,
    first: Event,
    serve_itl: &Arc<Blob>,
    out: &mut Vec<Action>,
    q: &mut VecDeque<Event>,
) -> u64 {
    q.clear();
    q.push_back(first);
    let mut n = 0;
    while let Some(ev) = q.pop_front() {
        n += 1;
        phone.handle(SimTime(0), ev, out);
        for a in out.drain(..) {
            match a {
                Action::Fetch {
                    req,
                    file,
                    transport,
                    ..
                } => q.push_back(match (file, transport) {
                    (FileName::ItlSep, Transport::Http6970) => Event::FileReceived {
                        req,
                        file: Arc::clone(serve_itl),
                        server_cert: None,
                    },
                    (FileName::CfgSgn, Transport::Http6970) => Event::FileReceived {
                        req,
                        file: Arc::clone(&w.cfg),
                        server_cert: None,
                    },
                    _ => Event::FileNotFound { req },
                }),
                Action::QueryTvs { req, frame, .. } => {
                    let resp = Message::decode(&frame, 65_535).map(|m| {
                        let r = Response {
                            status: Status::Valid,
                            certificate: Some(w.vouch.clone()),
                            roles: vec![Role::SAST],
                            ttl: Some(86_400),
                        };
                        Message::response_to(&m, &r).encode()
                    });
                    match resp {
                        Ok(frame) => q.push_back(Event::TvsAnswer {
                            req,
                            server_cert: Arc::clone(&w.tvs_cert),
                            frame,
                        }),
                        Err(_) => q.push_back(Event::TvsUnreachable { req }),
                    }
                }
                Action::Register { req, .. } => q.push_back(Event::RegisterResult {
                    req,
                    ok: true,
                    cm_cert: None,
                }),
                _ => {}
            }
        }
    }
    n
}

fn run(
    mode: CryptoMode,
    phones: usize,
    w: &World,
    trace: bool,
) -> (f64, f64, u64, usize, usize, u64) {
    let env = Env::new(
        Knobs {
            trace,
            ..Knobs::default()
        },
        mode,
    );
    let model = Model::lookup("8845").unwrap_or(Model {
        name: "8845",
        caps: itlsim_phone::Caps::family_default(itlsim_phone::Family::Mod),
    });
    let tftp: Arc<[Host]> = Arc::from(vec![Host::new("tftp1")]);
    let rss0 = rss_bytes();
    let mut fleet: Vec<Phone> = (0..phones)
        .map(|i| {
            let b = (i as u64).to_be_bytes();
            let setup = PhoneSetup {
                mac: Mac([0, 0x11, b[4], b[5], b[6], b[7]]),
                model,
                tftp: Arc::clone(&tftp),
                device_key: None,
                load: None,
            };
            Phone::new(Arc::clone(&env), setup)
        })
        .collect();
    let mut out = Vec::new();
    let mut q = VecDeque::new();
    // Boot 1: first boot (TOFU ITL, signed config via the ITL).
    let t = Instant::now();
    let mut events = 0;
    for p in &mut fleet {
        events += drive(p, w, Event::PowerOn, &w.itl1, &mut out, &mut q);
    }
    let boot1 = events as f64 / t.elapsed().as_secs_f64();
    // Boot 2: reset into an ITL signed by an unknown signer that TVS vouches for.
    let t = Instant::now();
    let mut events2 = 0;
    for p in &mut fleet {
        events2 += drive(
            p,
            w,
            Event::Reset(ResetKind::Reset),
            &w.itl2,
            &mut out,
            &mut q,
        );
    }
    let boot2 = events2 as f64 / t.elapsed().as_secs_f64();
    let ok = fleet
        .iter()
        .filter(|p| p.registered() && p.itl().is_some_and(|i| i.sha256() == w.itl2.sha256()))
        .count();
    assert_eq!(
        ok, phones,
        "every phone should have taken the TVS-vouched ITL"
    );
    let resident = fleet.iter().map(Phone::resident_bytes).sum::<usize>() / phones.max(1);
    let rss = rss_bytes().saturating_sub(rss0) / phones.max(1);
    let rsa = env
        .stats
        .rsa_checks
        .load(std::sync::atomic::Ordering::Relaxed);
    drop(fleet);
    (boot1, boot2, events + events2, resident, rss, rsa)
}

fn main() {
    let phones: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let (Some(sast), Some(sast2), Some(ccm), Some(tvs), Some(capf)) = (
        load("sast"),
        load("sast2"),
        load("ccm"),
        load("tvs"),
        load("capf"),
    ) else {
        eprintln!("test keys not found under wire/testdata/keys");
        return;
    };
    let xml = b"<device><devicePool><callManagerGroup><members><member priority=\"0\"><callManager><processNodeName>cm1</processNodeName></callManager></member></members></callManagerGroup></devicePool><TVS><members><member priority=\"0\"><port>2445</port><address>tvs1</address></member></members></TVS><loadInformation>l</loadInformation></device>";
    let opts = SignOptions {
        filename: "SEP.cnf.xml.sgn",
        digest: Digest::Sha1,
        timestamp: 1_800_000_000,
        layout: Layout::Reference,
    };
    let (Some(itl1), Some(itl2), Ok(cfg)) = (
        itl(
            &sast,
            &[
                (Role::SAST, &sast),
                (Role::CCM_TFTP, &ccm),
                (Role::TVS, &tvs),
                (Role::CAPF, &capf),
            ],
        ),
        itl(
            &sast2,
            &[
                (Role::SAST, &sast2),
                (Role::CCM_TFTP, &ccm),
                (Role::TVS, &tvs),
                (Role::CAPF, &capf),
            ],
        ),
        sgn::sign(xml, &opts, &ccm.key, &ccm.cert),
    ) else {
        eprintln!("could not build the files");
        return;
    };
    let w = World {
        itl1,
        itl2,
        cfg: Blob::new(cfg.encode()),
        tvs_cert: Arc::clone(&tvs.der),
        vouch: sast2.der.bytes().to_vec(),
    };
    let real_phones = (phones / 10).max(1);
    println!(
        "itlsim-phone boot benchmark: model 8845, boot 1 = first boot (TOFU ITL + signed config), boot 2 = reset into an ITL vouched by TVS"
    );
    println!(
        "{:<28} {:>9} {:>16} {:>16} {:>12} {:>14} {:>12}",
        "crypto",
        "phones",
        "boot1 events/s",
        "boot2 events/s",
        "RSA checks",
        "resident B/ph",
        "RSS B/ph"
    );
    let mut rows = Vec::new();
    for (name, mode, n, trace) in [
        ("stubbed", CryptoMode::Stub, phones, true),
        ("real, memoized", CryptoMode::Memoized, phones, true),
        (
            "real, every check (n/10)",
            CryptoMode::Real,
            real_phones,
            true,
        ),
        (
            "real, memoized, trace off",
            CryptoMode::Memoized,
            phones,
            false,
        ),
    ] {
        let (b1, b2, _ev, resident, rss, rsa) = run(mode, n, &w, trace);
        // RSS is only meaningful for the first fleet: later fleets reuse the freed heap.
        let rss = if rows.is_empty() {
            rss.to_string()
        } else {
            "-".into()
        };
        println!("{name:<28} {n:>9} {b1:>16.0} {b2:>16.0} {rsa:>12} {resident:>14} {rss:>12}");
        rows.push((name, b1, b2));
    }
    if let (Some(stub), Some(memo), Some(real)) = (rows.first(), rows.get(1), rows.get(2)) {
        println!(
            "ratios vs stubbed: memoized boot1 {:.2}x boot2 {:.2}x; unmemoized boot1 {:.2}x boot2 {:.2}x slower",
            stub.1 / memo.1,
            stub.2 / memo.2,
            stub.1 / real.1,
            stub.2 / real.2
        );
    }
}
