//! Property (issue 5): no event sequence makes the core panic, and a phone never holds a trust
//! list — nor accepts a signed configuration — whose signature does not verify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use itlsim_phone::event::{
    Action, Blob, Event, FetchFailure, Host, Outcome, RequestId, ResetKind, UserAction,
};
use itlsim_phone::knobs::Knobs;
use itlsim_phone::model::Model;
use itlsim_phone::{Anchor, CryptoMode, Env, Phone, PhoneSetup};
use itlsim_wire::crypto::PublicKey;
use itlsim_wire::sgn::SignedFile;
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::TrustList;
use itlsim_wire::tvs::{Message, Response, Status};
use proptest::prelude::*;

struct Pool {
    files: Vec<Arc<Blob>>,
    certs: Vec<Arc<Blob>>,
    keys: Vec<PublicKey>,
    env: Arc<Env>,
}

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| {
        let k = keys();
        let xml = default_config();
        let mut tampered = itl_by(&k.sast2, None).bytes().to_vec();
        let n = tampered.len() - 7;
        tampered[n] ^= 1;
        let mut tampered_cfg = sgn_by(&k.ccm, &xml, Digest::Sha1).bytes().to_vec();
        let n = tampered_cfg.len() - 3;
        tampered_cfg[n] ^= 1;
        let files = vec![
            itl_a(),
            itl_by(&k.sast2, None),
            itl_by(&k.sast, Some(&k.sast2)),
            itl_by(&k.unknown, None),
            Blob::new(tampered),
            itl_rollback(&k.sast),
            itl_rollback(&k.unknown),
            ctl_by(&k.sast),
            ctl_by(&k.unknown),
            sgn_by(&k.ccm, &xml, Digest::Sha1),
            sgn_by(&k.unknown, &xml, Digest::Sha1),
            sgn_by(&k.ccm, &xml, Digest::Sha512),
            sgn_by(&k.ccm, &config_xml(&["tvs1"], true, "load-9"), Digest::Sha1),
            Blob::new(tampered_cfg),
            Blob::new(xml.clone()),
            Blob::new(itl_a().bytes()[..100].to_vec()),
            Blob::new(vec![1, 0, 2, 0xff, 0xff]),
            Blob::new(Vec::new()),
        ];
        let certs = [
            &k.sast, &k.sast2, &k.ccm, &k.tvs, &k.unknown, &k.app, &k.tftp_ec,
        ]
        .iter()
        .map(|x| Arc::clone(&x.der))
        .chain([Blob::new(b"garbage".to_vec())])
        .collect();
        let keys = [
            &k.sast,
            &k.sast2,
            &k.sast1024,
            &k.ccm,
            &k.tvs,
            &k.capf,
            &k.app,
            &k.device,
            &k.unknown,
        ]
        .iter()
        .map(|x| x.cert.public_key.clone())
        .collect();
        Pool {
            files,
            certs,
            keys,
            env: Env::new(Knobs::default(), CryptoMode::Memoized),
        }
    })
}

fn verifies_with_some_key(check: impl Fn(&PublicKey) -> bool) -> bool {
    pool().keys.iter().any(check)
}

#[derive(Debug, Clone)]
enum Op {
    Power(bool),
    Reset(bool),
    File {
        file: usize,
        cert: Option<usize>,
        stale: bool,
    },
    NotFound {
        stale: bool,
    },
    Failed(u8),
    TvsValid {
        cert: usize,
        roles: u8,
        server: usize,
        garbage: bool,
    },
    TvsInvalid,
    TvsDown(bool),
    Register(bool, Option<usize>),
    Service(usize),
    Timer(u32),
    Erase(bool, bool),
    Factory,
    AltTftp(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(Op::Power),
        any::<bool>().prop_map(Op::Reset),
        (0..18usize, proptest::option::of(0..8usize), any::<bool>())
            .prop_map(|(file, cert, stale)| Op::File { file, cert, stale }),
        any::<bool>().prop_map(|stale| Op::NotFound { stale }),
        any::<u8>().prop_map(Op::Failed),
        (0..8usize, any::<u8>(), 0..8usize, any::<bool>()).prop_map(
            |(cert, roles, server, garbage)| Op::TvsValid {
                cert,
                roles,
                server,
                garbage
            }
        ),
        Just(Op::TvsInvalid),
        any::<bool>().prop_map(Op::TvsDown),
        (any::<bool>(), proptest::option::of(0..8usize)).prop_map(|(a, b)| Op::Register(a, b)),
        (0..8usize).prop_map(Op::Service),
        (0..40_000u32).prop_map(Op::Timer),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Erase(a, b)),
        Just(Op::Factory),
        any::<bool>().prop_map(Op::AltTftp),
    ]
}

fn roles_of(bits: u8) -> Vec<Role> {
    [
        Role::SAST,
        Role::CCM,
        Role::CCM_TFTP,
        Role::TFTP,
        Role::CAPF,
        Role::APP_SERVER,
        Role::TVS,
        Role(99),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| bits & (1 << i) != 0)
    .map(|(_, r)| r)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn no_panic_and_nothing_unverified_is_trusted(model in 0..5usize, ops in proptest::collection::vec(op(), 1..48)) {
        let p = pool();
        let model = Model::lookup(["8845", "7942", "7960", "CIPC", "9971"][model]).unwrap();
        let setup = PhoneSetup { mac: MAC, model, tftp: Arc::from(vec![Host::new("a"), Host::new("b")]), device_key: None, load: None };
        let mut phone = Phone::new(Arc::clone(&p.env), setup);
        let mut now = itlsim_phone::SimTime(0);
        let mut out = Vec::new();
        let (mut last_fetch, mut last_tvs, mut last_reg) = (RequestId(0), RequestId(0), RequestId(0));
        let mut tvs_file: Option<Arc<Blob>> = None;
        phone.handle(now, Event::PowerOn, &mut out);
        for a in out.drain(..) {
            if let Action::Fetch { req, .. } = a {
                last_fetch = req;
            }
        }
        for op in ops {
            let mut received: Option<Arc<Blob>> = None;
            let ev = match op {
                Op::Power(on) => if on { Event::PowerOn } else { Event::PowerOff },
                Op::Reset(hard) => Event::Reset(if hard { ResetKind::Reset } else { ResetKind::Restart }),
                Op::File { file, cert, stale } => {
                    let f = Arc::clone(&p.files[file]);
                    received = Some(Arc::clone(&f));
                    Event::FileReceived { req: if stale { RequestId(77) } else { last_fetch }, file: f, server_cert: cert.map(|c| Arc::clone(&p.certs[c])) }
                }
                Op::NotFound { stale } => Event::FileNotFound { req: if stale { RequestId(78) } else { last_fetch } },
                Op::Failed(w) => Event::FetchFailed { req: last_fetch, why: match w % 4 { 0 => FetchFailure::ConnectRefused, 1 => FetchFailure::Timeout, 2 => FetchFailure::TlsFailed, _ => FetchFailure::HttpStatus(500) } },
                Op::TvsValid { cert, roles, server, garbage } => {
                    let frame = if garbage {
                        vec![0x57, 1, 4, 0, 0, 0, 0, 1, 0, 9, 7]
                    } else {
                        let req = Message::query_request(last_tvs.0, "CP-8845-SEP001122334455", b"x", b"y", b"z");
                        let resp = Response { status: Status::Valid, certificate: Some(p.certs[cert].bytes().to_vec()), roles: roles_of(roles), ttl: Some(u32::from(roles) * 7) };
                        Message::response_to(&req, &resp).encode()
                    };
                    Event::TvsAnswer { req: last_tvs, server_cert: Arc::clone(&p.certs[server]), frame }
                }
                Op::TvsInvalid => {
                    let req = Message::query_request(last_tvs.0, "CP-8845-SEP001122334455", b"x", b"y", b"z");
                    Event::TvsAnswer { req: last_tvs, server_cert: Arc::clone(&keys().tvs.der), frame: Message::response_to(&req, &Response::invalid()).encode() }
                }
                Op::TvsDown(tls) => if tls { Event::TvsTlsFailed { req: last_tvs } } else { Event::TvsUnreachable { req: last_tvs } },
                Op::Register(ok, cert) => Event::RegisterResult { req: last_reg, ok, cm_cert: cert.map(|c| Arc::clone(&p.certs[c])) },
                Op::Service(c) => Event::HttpsService { id: 5, cert: Arc::clone(&p.certs[c]) },
                Op::Timer(ms) => { now = now.plus_ms(u64::from(ms)); Event::Timer }
                Op::Erase(c, i) => Event::User(UserAction::EraseTrustLists { ctl: c, itl: i }),
                Op::Factory => Event::User(UserAction::FactoryReset),
                Op::AltTftp(keep) => Event::User(UserAction::SetAltTftp { server: Some(Host::new("b")), keep_trust_list: keep }),
            };
            let is_tvs_event = matches!(ev, Event::TvsAnswer { .. } | Event::TvsUnreachable { .. } | Event::TvsTlsFailed { .. } | Event::Timer);
            phone.handle(now, ev, &mut out);
            if let Some(t) = phone.poll_timeout() {
                prop_assert!(t.0 < u64::MAX);
            }
            for a in out.drain(..) {
                match a {
                    Action::Fetch { req, .. } => last_fetch = req,
                    Action::QueryTvs { req, .. } => {
                        last_tvs = req;
                        if received.is_some() {
                            tvs_file = received.clone();
                        }
                    }
                    Action::Register { req, .. } => last_reg = req,
                    Action::Record(Outcome::ConfigAccepted { via, .. }) if !matches!(via, Anchor::Unsigned | Anchor::HttpsChannel) => {
                        let blob = if is_tvs_event { tvs_file.clone() } else { received.clone() };
                        let blob = blob.expect("a signed config was accepted without a file in flight");
                        let f = SignedFile::decode(blob.bytes()).expect("accepted config must decode as .sgn");
                        prop_assert!(verifies_with_some_key(|k| f.verify_with(k).is_ok()), "accepted a config whose signature does not verify");
                    }
                    _ => {}
                }
            }
            for held in [phone.itl(), phone.ctl()].into_iter().flatten() {
                let tl = TrustList::decode(held.list().blob().bytes()).expect("held list decodes");
                prop_assert!(verifies_with_some_key(|k| tl.verify_with(k).is_ok()), "holds a trust list whose signature does not verify");
            }
            if std::env::var_os("PROP_STATS").is_some() && (phone.itl().is_some() || phone.ctl().is_some()) {
                eprintln!("holds a list: itl={} ctl={}", phone.itl().is_some(), phone.ctl().is_some());
            }
            prop_assert!(phone.trace().len() <= 256);
            prop_assert!(phone.status_log().len() <= 30);
        }
    }
}
