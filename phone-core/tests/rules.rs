//! Table-driven tests per rule (spec §2–§5, §8–§10, E-decisions), with real files and real RSA
//! signatures built through `wire` from the throw-away test keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::*;
use itlsim_phone::event::{
    Event, FileName, Host, ListKind, Outcome, ResetKind, Transport, UserAction,
};
use itlsim_phone::knobs::{Knobs, LockedRegistration, TvsRoleCheck};
use itlsim_phone::model::Model;
use itlsim_phone::status::StatusMsg;
use itlsim_phone::{Anchor, ConfigSource, Reason};
use itlsim_wire::tags::{Digest, Role};

fn list_outcome(r: &Run, list: ListKind) -> Option<Outcome> {
    r.outcomes().into_iter().find(|o| match o {
        Outcome::TrustListInstalled { list: l, .. }
        | Outcome::TrustListRejected { list: l, .. }
        | Outcome::TrustListUnchanged { list: l } => *l == list,
        _ => false,
    })
}

fn cfg_outcome(r: &Run) -> Option<Outcome> {
    r.outcomes().into_iter().find(|o| {
        matches!(
            o,
            Outcome::ConfigAccepted { .. } | Outcome::ConfigRejected { .. }
        )
    })
}

// ---------------------------------------------------------------- §3.1 TOFU / E20, per family

#[test]
fn first_boot_tofu_per_family() {
    // (model, ITL expected, config file requested, status)
    let table: &[(&str, bool, FileName, &str)] = &[
        ("8845", true, FileName::CfgSgn, "ITL installed"),
        ("7942", true, FileName::CfgSgn, "ITL installed"),
        ("8945", true, FileName::CfgSgn, "ITL installed"),
        (
            "7960",
            false,
            FileName::CfgPlain,
            "File Not Found <CTLFile.tlv>",
        ),
        ("CIPC", false, FileName::CfgPlain, ""),
    ];
    for (model, itl, cfg, status) in table {
        let mut net = cluster_a();
        net.serve(
            "tftp1",
            FileName::CfgPlain,
            itlsim_phone::Blob::new(default_config()),
        );
        let mut r = Run::new(model, Knobs::default());
        r.power_on(&net);
        assert_eq!(r.phone.itl().is_some(), *itl, "{model}");
        if *itl {
            assert_eq!(
                list_outcome(&r, ListKind::Itl),
                Some(Outcome::TrustListInstalled {
                    list: ListKind::Itl,
                    via: Anchor::Tofu,
                    replaced: false
                })
            );
            assert!(
                r.trace_rules().contains(&"§3.1 TOFU"),
                "{model}: {}",
                r.trace_text()
            );
        }
        assert!(
            r.fetched().iter().any(|(f, _, _)| f == cfg),
            "{model} requested {:?}",
            r.fetched()
        );
        if !status.is_empty() {
            assert!(
                r.status_texts().iter().any(|s| s == status),
                "{model}: {:?}",
                r.status_texts()
            );
        }
        assert!(r.phone.registered(), "{model}: {}", r.trace_text());
        assert_eq!(r.tvs_queries(), 0);
    }
}

#[test]
fn family_request_sequence_section_2_4() {
    // F-NONE asks for no trust list; F-CTL asks CTLSEP then CTLFile (1b) and no ITL; F-LEG no CTLFile.
    let net = cluster_a();
    let names = |m: &str| {
        let mut r = Run::new(m, Knobs::default());
        r.power_on(&net);
        r.fetched()
            .into_iter()
            .map(|(f, _, _)| f)
            .collect::<Vec<_>>()
    };
    let none = names("7937");
    assert!(none.iter().all(|f| !f.is_trust_list()), "{none:?}");
    let ctl = names("7960");
    assert_eq!(&ctl[..2], &[FileName::CtlSep, FileName::CtlFile]);
    assert!(!ctl.contains(&FileName::ItlSep));
    let leg = names("7942");
    assert_eq!(&leg[..2], &[FileName::CtlSep, FileName::ItlSep]);
    assert!(!leg.contains(&FileName::CtlFile));
}

#[test]
fn tofu_still_needs_an_intact_signature() {
    // Issue 5 property at rule level: a tampered first ITL is never installed.
    let mut bytes = itl_a().bytes().to_vec();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x55; // inside the last certificate record
    let mut net = cluster_a();
    net.serve("tftp1", FileName::ItlSep, itlsim_phone::Blob::new(bytes));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.itl().is_none());
    assert!(matches!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListRejected { .. })
    ));
}

// ---------------------------------------------------------------- normal reboot

#[test]
fn normal_reboot_takes_nothing_new_and_asks_no_tvs() {
    let (mut r, net) = booted("8845", Knobs::default());
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListUnchanged {
            list: ListKind::Itl
        })
    );
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigAccepted {
            file: FileName::CfgSgn,
            via: Anchor::Itl(Role::CCM_TFTP.0)
        })
    );
    assert_eq!(r.tvs_queries(), 0);
    // Only the informational "File Not Found <CTLFile.tlv>" of a non-secure cluster (§4.6).
    assert_eq!(r.statuses(), vec![StatusMsg::CtlNotFound]);
    assert!(r.phone.registered() && r.phone.locked().is_none());
}

// ---------------------------------------------------------------- T-ITL §3.3

#[test]
fn t_itl_table() {
    let k = keys();
    struct Case {
        name: &'static str,
        new_itl: Arc<itlsim_phone::Blob>,
        tvs: Option<TvsMode>,
        db: Vec<(Arc<itlsim_phone::Blob>, Vec<Role>)>,
        knobs: Knobs,
        expect: Result<Anchor, Reason>,
        queries: usize,
    }
    let vouch_sast2 = vec![(Arc::clone(&k.sast2.der), vec![Role::SAST])];
    let cases = vec![
        Case {
            name: "new content signed by the SAST the phone holds",
            new_itl: itl_by(&k.sast, Some(&k.sast2)),
            tvs: None,
            db: vec![],
            knobs: Knobs::default(),
            expect: Ok(Anchor::Itl(Role::SAST.0)),
            queries: 0,
        },
        Case {
            name: "unknown signer vouched by TVS with SAST",
            new_itl: itl_by(&k.sast2, None),
            tvs: None,
            db: vouch_sast2.clone(),
            knobs: Knobs::default(),
            expect: Ok(Anchor::Tvs(0)),
            queries: 1,
        },
        Case {
            name: "unknown signer, TVS invalid",
            new_itl: itl_by(&k.sast2, None),
            tvs: None,
            db: vec![],
            knobs: Knobs::default(),
            expect: Err(Reason::TvsInvalid),
            queries: 1,
        },
        Case {
            name: "unknown signer, TVS unreachable (both members tried)",
            new_itl: itl_by(&k.sast2, None),
            tvs: Some(TvsMode::Unreachable),
            db: vec![],
            knobs: Knobs::default(),
            expect: Err(Reason::TvsUnreachable),
            queries: 2,
        },
        Case {
            name: "unknown signer, TVS presents a certificate not in the ITL (T-TVS)",
            new_itl: itl_by(&k.sast2, None),
            tvs: Some(TvsMode::Db {
                server_cert: Arc::clone(&k.unknown.der),
                db: vouch_sast2.clone(),
                ttl: 86_400,
            }),
            db: vec![],
            knobs: Knobs::default(),
            expect: Err(Reason::TvsUnreachable),
            queries: 2,
        },
        Case {
            name: "TVS vouches without SAST, strict",
            new_itl: itl_by(&k.sast2, None),
            tvs: None,
            db: vec![(Arc::clone(&k.sast2.der), vec![Role::TFTP])],
            knobs: Knobs::default(),
            expect: Err(Reason::TvsRoleMissing),
            queries: 1,
        },
        Case {
            name: "TVS vouches without SAST, lenient",
            new_itl: itl_by(&k.sast2, None),
            tvs: None,
            db: vec![(Arc::clone(&k.sast2.der), vec![Role::TFTP])],
            knobs: Knobs {
                tvs_role_check: TvsRoleCheck::Lenient,
                ..Knobs::default()
            },
            expect: Ok(Anchor::Tvs(0)),
            queries: 1,
        },
        Case {
            name: "TVS silent: member timeouts (10 s each) then reject",
            new_itl: itl_by(&k.sast2, None),
            tvs: Some(TvsMode::Silent),
            db: vec![],
            knobs: Knobs::default(),
            expect: Err(Reason::TvsUnreachable),
            queries: 2,
        },
    ];
    for c in cases {
        let (mut r, mut net) = booted("8845", c.knobs.clone());
        net.serve("tftp1", FileName::ItlSep, Arc::clone(&c.new_itl));
        match c.tvs {
            Some(m) => net.tvs_all(m),
            None => net.tvs_db(c.db.clone()),
        }
        let t0 = r.now;
        r.run(&net, Event::Reset(ResetKind::Reset));
        let got = match list_outcome(&r, ListKind::Itl) {
            Some(Outcome::TrustListInstalled { via, .. }) => Ok(via),
            Some(Outcome::TrustListRejected { reason, .. }) => Err(reason),
            other => panic!("{}: {other:?}", c.name),
        };
        assert_eq!(got, c.expect, "{}\n{}", c.name, r.trace_text());
        assert_eq!(r.tvs_queries(), c.queries, "{}", c.name);
        assert!(r.trace_rules().contains(&"T-ITL"), "{}", c.name);
        if c.expect.is_err() {
            // §4.7: old ITL kept, locked, "Trust List update failed", config frozen (E4),
            // registers on the cached config (E6 default).
            assert_eq!(
                r.phone.itl().map(|i| *i.sha256()),
                Some(*itl_a().sha256()),
                "{}",
                c.name
            );
            assert!(r.phone.locked().is_some(), "{}", c.name);
            assert!(
                r.status_texts()
                    .iter()
                    .any(|s| s == "Trust List update failed"),
                "{}",
                c.name
            );
            assert_eq!(
                cfg_outcome(&r),
                Some(Outcome::ConfigRejected {
                    file: FileName::CfgSgn,
                    reason: Reason::CycleFrozen
                }),
                "{}",
                c.name
            );
            assert!(r.trace_rules().contains(&"E4"));
            assert_eq!(
                r.registered_with(),
                Some((ConfigSource::Cached, false)),
                "{}",
                c.name
            );
        } else {
            assert_eq!(
                r.phone.itl().map(|i| *i.sha256()),
                Some(*c.new_itl.sha256())
            );
        }
        if c.name.starts_with("TVS silent") {
            assert!(r.now >= t0.plus_secs(20), "two 10 s member timeouts");
        }
    }
}

#[test]
fn tvs_answer_is_cached_for_its_ttl_and_cleared_by_reboot() {
    // §4.5 cache hit bypasses the query; §10: cache cleared on reboot (Reset), kept on Restart.
    let k = keys();
    let (mut r, mut net) = booted("8845", Knobs::default());
    // Config now signed by a CallManager the ITL does not hold: T-CFG asks TVS.
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        sgn_by(&k.sast2, &default_config(), Digest::Sha1),
    );
    net.tvs_db(vec![(Arc::clone(&k.sast2.der), vec![Role::TFTP])]);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigAccepted {
            file: FileName::CfgSgn,
            via: Anchor::Tvs(0)
        })
    );
    assert_eq!(r.tvs_queries(), 1);
    r.run(&net, Event::Reset(ResetKind::Restart));
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigAccepted {
            file: FileName::CfgSgn,
            via: Anchor::TvsCache
        })
    );
    assert_eq!(r.tvs_queries(), 0);
    // After the TTL the entry is gone.
    r.now = r.now.plus_secs(86_401);
    r.run(&net, Event::Reset(ResetKind::Restart));
    assert_eq!(r.tvs_queries(), 1);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(r.tvs_queries(), 1, "reboot clears the RAM cache");
}

// ---------------------------------------------------------------- E3 / E5 empty ITL

#[test]
fn empty_itl_accepts_any_next_itl_unless_a_real_ctl_anchors() {
    let k = keys();
    // Phone holds a rollback ITL (E5) and no CTL → next ITL from another cluster accepted.
    let mut net = cluster_a();
    net.serve("tftp1", FileName::ItlSep, itl_rollback(&k.sast));
    net.serve(
        "tftp1",
        FileName::CfgPlain,
        itlsim_phone::Blob::new(default_config()),
    );
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.itl().is_some_and(|i| i.list().is_empty_itl()));
    // §5: with the empty ITL the phone asks for the unsigned config.
    assert!(
        r.fetched().iter().any(|(f, _, _)| *f == FileName::CfgPlain),
        "{:?}",
        r.fetched()
    );
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    net.tvs_all(TvsMode::Unreachable);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListInstalled {
            list: ListKind::Itl,
            via: Anchor::TofuAfterRollback,
            replaced: true
        })
    );
    assert!(r.trace_rules().contains(&"E5"));

    // Same, but the phone also holds a real CTL (mixed mode, E3/E9): no shortcut → TVS → the
    // rollback ITL has no TVS record → rejected (§3.6 "no TVS record").
    let mut net = cluster_a();
    net.serve("tftp1", FileName::CtlSep, ctl_by(&k.sast));
    net.serve("tftp1", FileName::ItlSep, itl_rollback(&k.sast));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.ctl().is_some() && r.phone.itl().is_some_and(|i| i.list().is_empty_itl()));
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListRejected {
            list: ListKind::Itl,
            reason: Reason::NoTvs
        })
    );
}

// ---------------------------------------------------------------- T-CTL / E2

#[test]
fn first_ctl_on_a_phone_with_an_itl_e2() {
    let k = keys();
    let cases: &[(&Key, Knobs, Result<Anchor, Reason>)] = &[
        // V12: the CTL is signed by ITLRecovery, SAST in the ITL → accepted.
        (&k.sast, Knobs::default(), Ok(Anchor::Itl(Role::SAST.0))),
        // Unknown signer: TVS (here: does not know it) → rejected, no TOFU.
        (&k.unknown, Knobs::default(), Err(Reason::TvsInvalid)),
        // Knob ctl_tofu_if_itl_present.
        (
            &k.unknown,
            Knobs {
                ctl_tofu_if_itl_present: true,
                ..Knobs::default()
            },
            Ok(Anchor::Knob),
        ),
    ];
    for (signer, knobs, expect) in cases {
        let (mut r, mut net) = booted("8845", knobs.clone());
        net.serve("tftp1", FileName::CtlSep, ctl_by(signer));
        r.run(&net, Event::Reset(ResetKind::Reset));
        let got = match list_outcome(&r, ListKind::Ctl) {
            Some(Outcome::TrustListInstalled { via, .. }) => Ok(via),
            Some(Outcome::TrustListRejected { reason, .. }) => Err(reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(&got, expect, "{}", r.trace_text());
        if expect.is_err() {
            // F-MOD shows "CTL update failed" for a rejected CTL (§4.6).
            assert!(r.status_texts().iter().any(|s| s == "CTL update failed"));
        }
    }
}

#[test]
fn f_ctl_phone_has_no_tvs_r1_ctl() {
    // R1-CTL / E17: 7960 holds a CTL; CallManager regenerated (config signed by a new key), CTL not
    // updated → "File Auth Fail", no TVS query (§3.2 F-CTL has no TVS).
    let k = keys();
    let mut net = Net::new(&[
        (FileName::CtlSep, ctl_by(&k.sast)),
        (
            FileName::CfgSgn,
            sgn_by(&k.ccm, &default_config(), Digest::Sha1),
        ),
    ]);
    let mut r = Run::new("7960", Knobs::default());
    r.power_on(&net);
    assert!(
        matches!(
            cfg_outcome(&r),
            Some(Outcome::ConfigAccepted {
                via: Anchor::Ctl(2),
                ..
            })
        ),
        "{}",
        r.trace_text()
    );
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        sgn_by(&k.unknown, &default_config(), Digest::Sha1),
    );
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigRejected {
            file: FileName::CfgSgn,
            reason: Reason::NoTvs
        })
    );
    assert!(
        r.status_texts().iter().any(|s| s == "File Auth Fail"),
        "{:?}",
        r.status_texts()
    );
    assert_eq!(r.tvs_queries(), 0);
    // F-CTL: a new CTL signed by an unknown token is rejected outright ("CTL update failed").
    net.serve("tftp1", FileName::CtlSep, ctl_by(&k.unknown));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Ctl),
        Some(Outcome::TrustListRejected {
            list: ListKind::Ctl,
            reason: Reason::NoTvs
        })
    );
    assert!(r.status_texts().iter().any(|s| s == "CTL update failed"));
}

// ---------------------------------------------------------------- T-CFG §3.4 + crypto caps §8

#[test]
fn t_cfg_digest_and_key_size_per_family() {
    let k = keys();
    // (model, digest, max_rsa_bits override, expected)
    type Row = (&'static str, Digest, Option<u16>, Result<(), Reason>);
    let table: &[Row] = &[
        ("8845", Digest::Sha512, None, Ok(())),
        ("7942", Digest::Sha512, None, Err(Reason::DigestUnsupported)), // R16
        ("9971", Digest::Sha512, None, Err(Reason::DigestUnsupported)), // K5 default
        ("7942", Digest::Sha1, None, Ok(())),
        ("8845", Digest::Sha1, Some(1024), Err(Reason::KeyTooLarge)), // R15, via the capability flag
    ];
    for (model, digest, bits, expect) in table {
        let mut m = Model::lookup(model).unwrap();
        if let Some(b) = bits {
            m.caps.max_rsa_bits = *b;
        }
        let mut net = cluster_a();
        net.serve(
            "tftp1",
            FileName::CfgSgn,
            sgn_by(&k.ccm, &default_config(), *digest),
        );
        let mut r = Run::with_model(m, env(Knobs::default()));
        r.power_on(&net);
        if *expect == Err(Reason::KeyTooLarge) {
            // The ITL signer (RSA-2048) is over the limit too: the ITL is rejected first (§3.10).
            assert_eq!(
                list_outcome(&r, ListKind::Itl),
                Some(Outcome::TrustListRejected {
                    list: ListKind::Itl,
                    reason: Reason::KeyTooLarge
                })
            );
            assert!(r.phone.itl().is_none() && r.trace_rules().contains(&"§3.4 crypto"));
            continue;
        }
        match (expect, cfg_outcome(&r)) {
            (Ok(()), Some(Outcome::ConfigAccepted { .. })) => {}
            (Err(e), Some(Outcome::ConfigRejected { reason, .. })) => {
                assert_eq!(*e, reason, "{model}");
                assert!(r.trace_rules().contains(&"§3.4 crypto"));
                // §4.7: rejected config → locked, but registers on the cached config (none here).
                assert!(r.phone.locked().is_some());
            }
            (e, got) => panic!(
                "{model} {digest:?}: expected {e:?}, got {got:?}\n{}",
                r.trace_text()
            ),
        }
    }
}

#[test]
fn t_cfg_uses_the_trust_store_just_updated() {
    // §3.4: TS is the one updated in steps 1-2 of the same cycle: new ITL (via TVS) carries the new
    // CallManager, which then signs the config without a second TVS query (R1).
    let k = keys();
    let (mut r, mut net) = booted("8845", Knobs::default());
    let itl = tlv(
        "ITLFile.tlv",
        &k.sast2,
        &[
            (Role::SAST, &k.sast2),
            (Role::CCM_TFTP, &k.unknown),
            (Role::TVS, &k.tvs),
        ],
        Digest::Sha1,
        Some((1, 0)),
    );
    net.serve("tftp1", FileName::ItlSep, itl);
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        sgn_by(&k.unknown, &default_config(), Digest::Sha1),
    );
    net.tvs_db(vec![(Arc::clone(&k.sast2.der), vec![Role::SAST])]);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigAccepted {
            file: FileName::CfgSgn,
            via: Anchor::Itl(Role::CCM_TFTP.0)
        })
    );
    assert_eq!(r.tvs_queries(), 1);
}

// ---------------------------------------------------------------- E10 oversized ITL

#[test]
fn oversized_itl_is_rejected_and_registration_fails() {
    let k = keys();
    let mut recs: Vec<(Role, &Key)> = vec![
        (Role::SAST, &k.sast),
        (Role::CCM_TFTP, &k.ccm),
        (Role::TVS, &k.tvs),
    ];
    for _ in 0..70 {
        recs.push((Role::APP_SERVER, &k.app));
    }
    let big = tlv("ITLFile.tlv", &k.sast, &recs, Digest::Sha1, Some((1, 0)));
    assert!(big.len() > 65_536);
    let (mut r, mut net) = booted("8845", Knobs::default());
    net.serve("tftp1", FileName::ItlSep, big);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListRejected {
            list: ListKind::Itl,
            reason: Reason::ItlTooLarge
        })
    );
    assert!(r.outcomes().contains(&Outcome::RegistrationFailed {
        reason: Reason::ItlTooLarge
    }));
    assert!(r.registered_with().is_none());
    assert!(r.trace_rules().contains(&"E10"));
}

// ---------------------------------------------------------------- E6

#[test]
fn locked_registration_knob_e6() {
    let k = keys();
    let table = [
        (LockedRegistration::CachedCms, Some(ConfigSource::Cached)),
        (
            LockedRegistration::TftpServer,
            Some(ConfigSource::TftpServer),
        ),
        (LockedRegistration::None, None),
    ];
    for (knob, expect) in table {
        let (mut r, mut net) = booted(
            "7942",
            Knobs {
                locked_phone_registration: knob,
                ..Knobs::default()
            },
        );
        net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
        r.run(&net, Event::Reset(ResetKind::Reset));
        assert!(r.phone.locked().is_some());
        assert_eq!(r.registered_with().map(|(s, _)| s), expect, "{knob:?}");
        assert!(r.trace_rules().contains(&"E6"), "{knob:?}");
        assert!(
            r.outcomes()
                .iter()
                .any(|o| matches!(o, Outcome::Locked { .. }))
        );
    }
}

// ---------------------------------------------------------------- §2.2/§2.3/§10 transport

#[test]
fn tftp_failover_and_provisioning_failure() {
    let mut net = cluster_a();
    // Server 2 serves the same files; server 1 is down (no answer).
    for f in [FileName::ItlSep, FileName::CfgSgn] {
        let b = net.files.get(&("tftp1".to_string(), f)).cloned().unwrap();
        net.serve("tftp2", f, b);
    }
    net.down.insert("tftp1".into());
    let mut r = Run::new("7942", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.registered(), "{}", r.trace_text());
    assert!(r.statuses().contains(&StatusMsg::TftpTimeout));
    // 15.5 s TFTP budget on the first server (§10: 500 ms doubling, 4 retries).
    assert!(r.now.0 >= 15_500);
    assert!(r.fetched().iter().any(|(_, _, s)| s == "tftp2"));
    // Both down: provisioning fails, E22 status, retry after the back-off.
    net.down.insert("tftp2".into());
    let mut r = Run::new("7942", Knobs::default());
    r.run(&net, Event::PowerOn);
    assert!(
        r.outcomes()
            .iter()
            .filter(|o| **o == Outcome::ProvisioningFailed)
            .count()
            >= 2,
        "retried"
    );
    assert!(
        r.status_texts()
            .iter()
            .any(|s| s == "Trust List Update Failed")
    );
}

#[test]
fn http_then_tftp_and_https_6971_for_signer_version_1_1() {
    let k = keys();
    // F-MOD: HTTP 6970 first; 503 → TFTP for the same name (§2.3).
    let mut net = cluster_a();
    net.http_503 = true;
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    let f = r.fetched();
    assert_eq!(f[0].1, Transport::Http6970);
    assert_eq!((f[1].0, f[1].1), (f[0].0, Transport::Tftp));
    assert!(r.phone.registered());
    // ITL signer version 1.1 + EC TFTP record → config over HTTPS 6971, unsigned body accepted.
    let itl11 = tlv(
        "ITLFile.tlv",
        &k.sast,
        &[
            (Role::SAST, &k.sast),
            (Role::CCM_TFTP, &k.ccm),
            (Role::TFTP, &k.tftp_ec),
            (Role::TVS, &k.tvs),
        ],
        Digest::Sha1,
        Some((1, 1)),
    );
    let mut net = cluster_a();
    net.serve("tftp1", FileName::ItlSep, itl11);
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        itlsim_phone::Blob::new(default_config()),
    );
    net.https_cert = Some(Arc::clone(&k.tftp_ec.der));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(
        r.fetched()
            .iter()
            .any(|(f, t, _)| *f == FileName::CfgSgn && *t == Transport::Https6971)
    );
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigAccepted {
            file: FileName::CfgSgn,
            via: Anchor::HttpsChannel
        })
    );
    // E13: 6971 presents the old RSA CallManager cert → not EC → falls back to 6970/TFTP, where the
    // plain body is not a valid .sgn → rejected as malformed.
    net.https_cert = Some(Arc::clone(&k.ccm.der));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(r.trace_rules().contains(&"E13"), "{}", r.trace_text());
    assert!(
        r.fetched()
            .iter()
            .any(|(f, t, _)| *f == FileName::CfgSgn && *t == Transport::Http6970)
    );
    assert_eq!(
        cfg_outcome(&r),
        Some(Outcome::ConfigRejected {
            file: FileName::CfgSgn,
            reason: Reason::Malformed
        })
    );
    // 79xx never uses HTTP.
    let mut r = Run::new("7942", Knobs::default());
    r.power_on(&cluster_a());
    assert!(r.fetched().iter().all(|(_, t, _)| *t == Transport::Tftp));
}

// ---------------------------------------------------------------- T-HTTPS / T-CCM

#[test]
fn t_https_services() {
    let k = keys();
    let (mut r, mut net) = booted("8845", Knobs::default());
    net.tvs_db(vec![(Arc::clone(&k.app.der), vec![Role::APP_SERVER])]);
    r.run(
        &net,
        Event::HttpsService {
            id: 1,
            cert: Arc::clone(&k.app.der),
        },
    );
    assert_eq!(
        r.outcomes(),
        vec![Outcome::Service {
            id: 1,
            ok: true,
            via: Ok(Anchor::Tvs(0))
        }]
    );
    // Cached now.
    r.run(
        &net,
        Event::HttpsService {
            id: 2,
            cert: Arc::clone(&k.app.der),
        },
    );
    assert_eq!(
        r.outcomes(),
        vec![Outcome::Service {
            id: 2,
            ok: true,
            via: Ok(Anchor::TvsCache)
        }]
    );
    r.run(
        &net,
        Event::HttpsService {
            id: 3,
            cert: Arc::clone(&k.unknown.der),
        },
    );
    assert_eq!(
        r.outcomes(),
        vec![Outcome::Service {
            id: 3,
            ok: false,
            via: Err(Reason::TvsInvalid)
        }]
    );
    assert!(r.status_texts().iter().any(|s| s == "Host Not Found"));
    // Rollback ITL: no TVS record → every HTTPS request fails (§3.6, §5).
    let mut net2 = cluster_a();
    net2.serve("tftp1", FileName::ItlSep, itl_rollback(&k.sast));
    let mut r2 = Run::new("8845", Knobs::default());
    r2.power_on(&net2);
    r2.run(
        &net2,
        Event::HttpsService {
            id: 4,
            cert: Arc::clone(&k.app.der),
        },
    );
    assert_eq!(
        r2.outcomes(),
        vec![Outcome::Service {
            id: 4,
            ok: false,
            via: Err(Reason::NoTvs)
        }]
    );
}

#[test]
fn t_ccm_secure_registration() {
    let k = keys();
    let xml = config_xml(&["tvs1"], true, "load-2");
    let mut net = Net::new(&[
        (FileName::CtlSep, ctl_by(&k.sast)),
        (FileName::ItlSep, itl_a()),
        (FileName::CfgSgn, sgn_by(&k.ccm, &xml, Digest::Sha1)),
    ]);
    net.cm_cert = Some(Arc::clone(&k.ccm.der));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.registered(), "{}", r.trace_text());
    assert_eq!(r.registered_with(), Some((ConfigSource::New, true)));
    assert!(r.trace_rules().contains(&"T-CCM"));
    // R1-SEC: the CallManager now presents a regenerated cert not in the CTL.
    net.cm_cert = Some(Arc::clone(&k.unknown.der));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(!r.phone.registered());
    assert!(r.outcomes().contains(&Outcome::RegistrationFailed {
        reason: Reason::CmCertUntrusted
    }));
}

/// §2.4 step 7: a secure registration whose TLS fails (T-CCM) goes on with the next
/// CallManager of the list; the phone registers with the first one whose certificate its CTL holds.
#[test]
fn t_ccm_failure_tries_the_next_callmanager() {
    let k = keys();
    let xml = String::from_utf8(config_xml(&["tvs1"], true, "load-2"))
        .unwrap()
        .replace(
            "</members></callManagerGroup>",
            "<member priority=\"1\"><callManager><processNodeName>cm2</processNodeName></callManager></member></members></callManagerGroup>",
        )
        .into_bytes();
    let mut net = Net::new(&[
        (FileName::CtlSep, ctl_by(&k.sast)),
        (FileName::ItlSep, itl_a()),
        (FileName::CfgSgn, sgn_by(&k.ccm, &xml, Digest::Sha1)),
    ]);
    // cm1 was regenerated without a CTL update (R1-SEC); cm2 still presents the CTL's CallManager.
    net.cm_certs
        .insert("cm1".into(), Arc::clone(&k.unknown.der));
    net.cm_certs.insert("cm2".into(), Arc::clone(&k.ccm.der));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    assert!(r.phone.registered(), "{}", r.trace_text());
    assert_eq!(
        *net.registers.borrow(),
        vec![vec!["cm1".to_string(), "cm2".into()], vec!["cm2".into()]]
    );
    assert_eq!(r.trace_rules().iter().filter(|x| **x == "T-CCM").count(), 2);
    // Both regenerated: the list is exhausted, the registration fails once.
    net.cm_certs
        .insert("cm2".into(), Arc::clone(&k.unknown.der));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(!r.phone.registered());
    assert_eq!(
        r.outcomes()
            .iter()
            .filter(|o| matches!(
                o,
                Outcome::RegistrationFailed {
                    reason: Reason::CmCertUntrusted
                }
            ))
            .count(),
        1
    );
}

#[test]
fn secure_profile_without_ctl_tries_four_times() {
    let k = keys();
    let xml = config_xml(&["tvs1"], true, "load-2");
    let net = Net::new(&[
        (FileName::ItlSep, itl_a()),
        (FileName::CfgSgn, sgn_by(&k.ccm, &xml, Digest::Sha1)),
    ]);
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    let ctl_requests = r
        .fetched()
        .iter()
        .filter(|(f, t, _)| *f == FileName::CtlSep && *t == Transport::Tftp)
        .count();
    assert_eq!(ctl_requests, 4);
    assert!(r.outcomes().contains(&Outcome::RegistrationFailed {
        reason: Reason::SecureNoCtl
    }));
}

// ---------------------------------------------------------------- §9 recovery

#[test]
fn recovery_actions_per_family() {
    let k = keys();
    for (model, action, expect_itl_erased) in [
        (
            "7942",
            UserAction::EraseTrustLists {
                ctl: false,
                itl: true,
            },
            true,
        ),
        (
            "7942",
            UserAction::EraseTrustLists {
                ctl: true,
                itl: false,
            },
            false,
        ), // per-file on 79xx
        (
            "8845",
            UserAction::EraseTrustLists {
                ctl: true,
                itl: false,
            },
            true,
        ), // security settings: both
        ("8945", UserAction::FactoryReset, true),
    ] {
        let (mut r, mut net) = booted(model, Knobs::default());
        // The cluster moved on: new ITL signed by an unknown key, TVS cannot help → locked.
        net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
        net.tvs_all(TvsMode::Unreachable);
        r.run(&net, Event::Reset(ResetKind::Reset));
        assert!(r.phone.locked().is_some(), "{model}");
        r.user(&net, action.clone());
        if expect_itl_erased {
            assert_eq!(
                list_outcome(&r, ListKind::Itl),
                Some(Outcome::TrustListInstalled {
                    list: ListKind::Itl,
                    via: Anchor::Tofu,
                    replaced: false
                }),
                "{model} {action:?}\n{}",
                r.trace_text()
            );
        } else {
            assert!(r.phone.locked().is_some(), "{model} {action:?}");
        }
    }
    // F-NONE has nothing to erase.
    let net = cluster_a();
    let mut r = Run::new("CIPC", Knobs::default());
    r.power_on(&net);
    r.user(
        &net,
        UserAction::EraseTrustLists {
            ctl: true,
            itl: true,
        },
    );
    assert_eq!(
        r.outcomes(),
        vec![Outcome::Ignored {
            reason: Reason::Unsupported
        }]
    );
}

#[test]
fn recovery_by_trusted_signer_and_trusted_tftp() {
    let k = keys();
    // Locked by an ITL signed by an unknown key…
    let (mut r, mut net) = booted("8845", Knobs::default());
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    net.tvs_all(TvsMode::Unreachable);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(r.phone.locked().is_some());
    // …`utils itl reset localkey`: a reset ITL signed by a key the phone still trusts (SAST),
    // introducing the new signer; then the normal ITL signed by the new key is accepted.
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.sast, Some(&k.unknown)));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(r.phone.locked().is_none(), "{}", r.trace_text());
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListInstalled {
            list: ListKind::Itl,
            via: Anchor::Itl(0),
            replaced: true
        })
    );
    // Rollback toggled after the lock does not unlock (§4.7.6): its signer is unknown too.
    let (mut r, mut net) = booted("8845", Knobs::default());
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    net.tvs_all(TvsMode::Unreachable);
    r.run(&net, Event::Reset(ResetKind::Reset));
    net.serve("tftp1", FileName::ItlSep, itl_rollback(&k.unknown));
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert!(r.phone.locked().is_some());
    // Pointing the phone at a TFTP server it trusts (alternate TFTP, keep trust list) unlocks.
    let good = itl_a();
    net.serve("tftp9", FileName::ItlSep, good);
    net.serve(
        "tftp9",
        FileName::CfgSgn,
        sgn_by(&k.ccm, &default_config(), Digest::Sha1),
    );
    r.user(
        &net,
        UserAction::SetAltTftp {
            server: Some(Host::new("tftp9")),
            keep_trust_list: true,
        },
    );
    assert!(
        r.phone.locked().is_none() && r.phone.registered(),
        "{}",
        r.trace_text()
    );
}

// ---------------------------------------------------------------- misc §4.6/§10

#[test]
fn firmware_follows_accepted_config_only_and_itl_hash_is_reported() {
    let k = keys();
    let (mut r, mut net) = booted("8845", Knobs::default());
    assert_eq!(r.phone.load().map(|l| l.to_string()), Some("load-2".into()));
    // Locked: the new load never arrives (§4.7.4).
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        sgn_by(
            &k.ccm,
            &config_xml(&["tvs1"], false, "load-3"),
            Digest::Sha1,
        ),
    );
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.unknown, None));
    net.tvs_all(TvsMode::Unreachable);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(r.phone.load().map(|l| l.to_string()), Some("load-2".into()));
    assert!(r.actions.iter().any(|a| matches!(a, itlsim_phone::Action::ReportItlHash { itl_sha256: Some(h) } if *h == *itl_a().sha256())));
}

#[test]
fn stale_and_unknown_responses_are_ignored() {
    let (mut r, net) = booted("8845", Knobs::default());
    let before = r.phone.trace().len();
    for ev in [
        Event::FileNotFound {
            req: itlsim_phone::RequestId(9999),
        },
        Event::TvsUnreachable {
            req: itlsim_phone::RequestId(1),
        },
        Event::Timer,
    ] {
        r.run(&net, ev);
        assert!(r.actions.is_empty());
    }
    assert_eq!(r.phone.trace().len(), before);
}

#[test]
fn check_file_library_function() {
    use itlsim_phone::check::{CheckInput, NewFileKind, TvsReply, Verdict, check_file};
    let k = keys();
    let input = CheckInput {
        model: Model::lookup("8845").unwrap(),
        mac: MAC,
        held_ctl: None,
        held_itl: Some(itl_a()),
        cached_config: Some(default_config()),
        new_file: itl_by(&k.unknown, None),
        kind: NewFileKind::from_name("ITLSEP001122334455.tlv").unwrap(),
        knobs: Knobs::default(),
    };
    let mut no_tvs = |_: &Host, _: u16, _: &[u8]| TvsReply::Unreachable;
    let rep = check_file(&input, &mut no_tvs).unwrap();
    assert_eq!(rep.verdict, Verdict::Rejected(Reason::TvsUnreachable));
    assert_eq!(rep.exit_code(), 1);
    assert!(rep.render().contains("T-ITL"), "{}", rep.render());
    let ok = CheckInput {
        new_file: itl_by(&k.sast, Some(&k.sast2)),
        ..input.clone()
    };
    let rep = check_file(&ok, &mut no_tvs).unwrap();
    assert_eq!(rep.verdict, Verdict::Accepted(Anchor::Itl(0)));
    assert_eq!(rep.exit_code(), 0);
    let cfg = CheckInput {
        new_file: sgn_by(&k.ccm, &default_config(), Digest::Sha512),
        kind: NewFileKind::ConfigSgn,
        model: Model::lookup("7942").unwrap(),
        ..input.clone()
    };
    assert_eq!(
        check_file(&cfg, &mut no_tvs).unwrap().verdict,
        Verdict::Rejected(Reason::DigestUnsupported)
    );
    let mut bad = input.clone();
    bad.held_itl = Some(itlsim_phone::Blob::new(b"not an ITL".to_vec()));
    assert!(check_file(&bad, &mut no_tvs).is_err());
}

#[test]
fn encrypted_config_is_verified_then_decrypted() {
    // §1.4 / §2.4 step 3: the cached config says encrConfig → the phone asks for .enc.sgn, checks
    // T-CFG, then decrypts with its own key; without the key it is rejected.
    use itlsim_wire::enc::{self, EncryptOptions};
    use rand::SeedableRng;
    let k = keys();
    let xml = String::from_utf8(default_config()).unwrap().replace(
        "<encrConfig>false</encrConfig>",
        "<encrConfig>true</encrConfig>",
    );
    let opts = EncryptOptions {
        filename: "SEP001122334455.cnf.xml.enc.sgn",
        digest: Digest::Sha1,
        plaintext_digest: Digest::Sha1,
        timestamp: 1_800_000_000,
        layout: itlsim_wire::header::Layout::Reference,
        aes_key: [7; 16],
        iv: [9; 16],
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let encf = enc::encrypt(
        xml.as_bytes(),
        &k.device.cert,
        &opts,
        k.ccm.key.as_ref().unwrap(),
        &k.ccm.cert,
        &mut rng,
    )
    .unwrap();
    let mut net = cluster_a();
    net.serve(
        "tftp1",
        FileName::CfgSgn,
        sgn_by(&k.ccm, xml.as_bytes(), Digest::Sha1),
    );
    net.serve(
        "tftp1",
        FileName::CfgEncSgn,
        itlsim_phone::Blob::new(encf.encode()),
    );
    for (with_key, expect_ok) in [(true, true), (false, false)] {
        let setup = itlsim_phone::PhoneSetup {
            mac: MAC,
            model: Model::lookup("8845").unwrap(),
            tftp: Arc::from(vec![Host::new("tftp1")]),
            device_key: with_key.then(|| Arc::new(k.device.key.clone().unwrap())),
            load: None,
        };
        let mut r = Run {
            phone: itlsim_phone::Phone::new(env(Knobs::default()), setup),
            now: itlsim_phone::SimTime(0),
            actions: vec![],
            served: Default::default(),
        };
        r.power_on(&net); // first boot: plain .sgn with encrConfig=true gets cached
        r.run(&net, Event::Reset(ResetKind::Reset));
        assert!(
            r.fetched()
                .iter()
                .any(|(f, _, _)| *f == FileName::CfgEncSgn)
        );
        match cfg_outcome(&r) {
            Some(Outcome::ConfigAccepted {
                file: FileName::CfgEncSgn,
                ..
            }) => assert!(expect_ok),
            Some(Outcome::ConfigRejected {
                file: FileName::CfgEncSgn,
                reason: Reason::DecryptFailed,
            }) => assert!(!expect_ok),
            other => panic!("{other:?}\n{}", r.trace_text()),
        }
    }
}

#[test]
fn v12_itl_with_two_sasts_accepts_either_signer() {
    // §1.1 (max 2 SAST), E15: V12 ITL = ITLRecovery + CallManager as SAST; an ITL signed by the
    // second SAST (`utils itl reset localkey` on V12) is accepted without TVS.
    let k = keys();
    let mut net = cluster_a();
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.sast, Some(&k.sast2)));
    let mut r = Run::new("8845", Knobs::default());
    r.power_on(&net);
    net.serve("tftp1", FileName::ItlSep, itl_by(&k.sast2, Some(&k.sast)));
    net.tvs_all(TvsMode::Unreachable);
    r.run(&net, Event::Reset(ResetKind::Reset));
    assert_eq!(
        list_outcome(&r, ListKind::Itl),
        Some(Outcome::TrustListInstalled {
            list: ListKind::Itl,
            via: Anchor::Itl(0),
            replaced: true
        })
    );
    assert_eq!(r.tvs_queries(), 0);
}

#[test]
fn tvs_member_selection_priority_and_round_robin() {
    // §4.2 / K2: priority order with failover; round robin starts one member further per query.
    use itlsim_phone::knobs::TvsSelection;
    let k = keys();
    for (sel, first_hosts) in [
        (TvsSelection::Priority, ["tvs1", "tvs1"]),
        (TvsSelection::RoundRobin, ["tvs1", "tvs2"]),
    ] {
        let (mut r, mut net) = booted(
            "8845",
            Knobs {
                tvs_selection: sel,
                ..Knobs::default()
            },
        );
        net.serve("tftp1", FileName::ItlSep, itl_by(&k.sast2, None));
        net.tvs_db(vec![]); // answers invalid: one query per boot, no failover
        for expect in first_hosts {
            r.run(&net, Event::Reset(ResetKind::Restart));
            let hosts: Vec<String> = r
                .actions
                .iter()
                .filter_map(|a| {
                    if let itlsim_phone::Action::QueryTvs { host, .. } = a {
                        Some(host.to_string())
                    } else {
                        None
                    }
                })
                .collect();
            assert_eq!(hosts, vec![expect.to_string()], "{sel:?}");
        }
    }
}
