//! Every artefact parses and verifies with the wire crate; signers and record sets per §1.3/§6.1.
mod common;
use common::*;
use itlsim_server::*;
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::TrustList;
use itlsim_wire::{cert::CertInfo, crypto::SigningKey, enc::EncryptedFile, sgn::SignedFile};

/// §6.1: V8/V10 ITL signed by the serving TFTP node's CallManager, V12/V14 by ITLRecovery.
#[test]
fn itl_signer_per_version_class_s6_1() {
    for (v, by_itlrecovery) in [
        ("9.1", false),
        ("11.5", false),
        ("12.5", true),
        ("14", true),
    ] {
        let c = cluster("A", v, &["pub", "sub1"], 7);
        for node in [0u16, 1] {
            let l = itl(&c, node);
            let signer = signer_der(&l);
            let want = if by_itlrecovery {
                c.itl_recovery().unwrap().cert.der().to_vec()
            } else {
                id(&c, node, CertPurpose::CallManager).der().to_vec()
            };
            assert_eq!(signer, want, "{v} node {node}");
        }
    }
}

/// §1.3 SAST records: V8 = CM; V10 = CM + ITLRecovery; V12 = ITLRecovery + CM (E15); at most 2 (§1.1).
#[test]
fn itl_sast_records_per_version_s1_3_e15() {
    let c8 = cluster("A", "8.6", &["pub"], 1);
    let l = itl(&c8, 0);
    assert_eq!(count_role(&l, Role::SAST), 1);
    assert!(has(&l, Role::SAST, &id(&c8, 0, CertPurpose::CallManager)));
    assert!(c8.itl_recovery().is_none(), "no ITLRecovery before 10.0");
    for v in ["10.5", "12.5"] {
        let c = cluster("A", v, &["pub", "sub1"], 2);
        for node in [0u16, 1] {
            let l = itl(&c, node);
            assert_eq!(count_role(&l, Role::SAST), 2, "{v}");
            assert!(has(&l, Role::SAST, &id(&c, node, CertPurpose::CallManager)));
            assert!(has(&l, Role::SAST, &c.itl_recovery().unwrap().cert));
        }
    }
}

/// §1.3: TFTP record = this node's CallManager only (K12), TVS per TVS node, CAPF when active,
/// CallManager-ECDSA from 11.0; non-secure → TFTP role, never CCM+TFTP.
#[test]
fn itl_record_set_non_secure_s1_3_k12() {
    let c = cluster("A", "11.5", &["pub", "sub1", "sub2"], 3);
    for node in 0..3u16 {
        let l = itl(&c, node);
        let own_cm = id(&c, node, CertPurpose::CallManager);
        assert!(has(&l, Role::TFTP, &own_cm));
        assert!(
            has(&l, Role::TFTP, &id(&c, node, CertPurpose::CallManagerEcdsa)),
            "ECDSA from 11.0"
        );
        for other in (0..3u16).filter(|o| *o != node) {
            let other_cm = id(&c, other, CertPurpose::CallManager);
            assert!(
                !records(&l).iter().any(|(_, d)| d == other_cm.der()),
                "K12: no other node's CM"
            );
        }
        assert_eq!(count_role(&l, Role::TVS), 3);
        for t in 0..3u16 {
            assert!(has(&l, Role::TVS, &id(&c, t, CertPurpose::Tvs)));
        }
        assert_eq!(count_role(&l, Role::CAPF), 1);
        assert!(has(&l, Role::CAPF, &id(&c, 0, CertPurpose::Capf)));
        assert_eq!(count_role(&l, Role::CCM_TFTP), 0);
        assert!(!l.is_empty_itl());
    }
    // 10.5: no ECDSA yet.
    let c = cluster("A", "10.5", &["pub"], 3);
    assert!(
        c.identity(NodeId(0), CertPurpose::CallManagerEcdsa)
            .is_none()
    );
}

/// §1.3: mixed mode puts the CallManager in the CCM+TFTP role.
#[test]
fn itl_uses_ccm_tftp_role_in_mixed_mode_s1_3() {
    let mut c = cluster("A", "12.5", &["pub"], 4);
    c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    let l = itl(&c, 0);
    assert!(has(
        &l,
        Role::CCM_TFTP,
        &id(&c, 0, CertPurpose::CallManager)
    ));
    assert_eq!(count_role(&l, Role::TFTP), 0);
}

/// E5/§5: rollback ITL = signer as SAST + CAPF; applies at once from 10.5 (E9).
#[test]
fn rollback_itl_is_empty_e5_e9() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 5);
    c.apply(
        T0 + HOUR,
        AdminAction::SetParam(ParamChange::RollbackPre80(true)),
    )
    .unwrap();
    for node in [0u16, 1] {
        let l = itl(&c, node);
        assert!(l.is_empty_itl());
        assert_eq!(count_role(&l, Role::SAST), 1);
        assert_eq!(signer_der(&l), c.itl_recovery().unwrap().cert.der());
        assert_eq!(count_role(&l, Role::CAPF), 1);
        assert_eq!(l.records().len(), 2);
    }
    c.apply(
        T0 + 2 * HOUR,
        AdminAction::SetParam(ParamChange::RollbackPre80(false)),
    )
    .unwrap();
    assert!(!itl(&c, 0).is_empty_itl());
}

/// E9: before 10.5 the empty ITL is served only after the TFTP service restarts.
#[test]
fn rollback_before_10_5_needs_tftp_restart_e9() {
    let mut c = cluster("A", "10.0", &["pub"], 6);
    let r = c
        .apply(
            T0 + HOUR,
            AdminAction::SetParam(ParamChange::RollbackPre80(true)),
        )
        .unwrap();
    assert!(r.restart_required(NodeId(0), Service::Tftp));
    assert!(!itl(&c, 0).is_empty_itl());
    c.apply(
        T0 + 2 * HOUR,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Restart,
        },
    )
    .unwrap();
    assert!(itl(&c, 0).is_empty_itl());
}

/// §6.1/E15: tokenless CTL signer V10 = publisher CM (SAST pub CM + ITLRecovery), V12 =
/// ITLRecovery; CCM+TFTP per node; no TVS ever (§1.3).
#[test]
fn tokenless_ctl_signer_and_records_s6_1_e15() {
    for (v, signer_is_itlrec) in [("11.5", false), ("12.5", true)] {
        let mut c = cluster("A", v, &["pub", "sub1"], 8);
        assert!(
            c.tftp_get(NodeId(0), "CTLFile.tlv").is_err(),
            "no CTL in non-secure mode"
        );
        c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: false })
            .unwrap();
        let l = ctl(&c);
        let rec = c.itl_recovery().unwrap().cert.clone();
        let pub_cm = id(&c, 0, CertPurpose::CallManager);
        assert_eq!(
            signer_der(&l),
            if signer_is_itlrec {
                rec.der()
            } else {
                pub_cm.der()
            },
            "{v}"
        );
        assert_eq!(count_role(&l, Role::SAST), 2);
        assert!(has(&l, Role::SAST, &rec) && has(&l, Role::SAST, &pub_cm));
        for n in [0u16, 1] {
            assert!(has(
                &l,
                Role::CCM_TFTP,
                &id(&c, n, CertPurpose::CallManager)
            ));
        }
        assert_eq!(count_role(&l, Role::TVS), 0, "TVS is never in the CTL");
        assert_eq!(count_role(&l, Role::CAPF), 1);
        // CTLSEP<MAC>.tlv carries the same bytes for a known phone.
        let c2 = with_phones(c, 1);
        let a = c2
            .tftp_get(NodeId(1), &format!("CTLSEP{}.tlv", mac(0)))
            .unwrap();
        assert_eq!(
            a.bytes,
            c2.tftp_get(NodeId(1), "CTLFile.tlv").unwrap().bytes
        );
    }
}

/// §6.1: eToken CTL signed by the USB token (SAST), tokens as the SAST records.
#[test]
fn etoken_ctl_is_signed_by_the_token_s6_1() {
    let mut s = spec("A", "11.5", &["pub"]);
    s.etokens = Some(2);
    let mut c = Cluster::install(s, KeySource::new(9)).unwrap();
    c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: true })
        .unwrap();
    let l = ctl(&c);
    assert_eq!(signer_der(&l), c.etokens()[0].cert.der());
    assert_eq!(count_role(&l, Role::SAST), 2);
    // 14SU3 dropped tokens.
    let mut s = spec("B", "14SU3", &["pub"]);
    s.etokens = Some(1);
    let mut c = Cluster::install(s, KeySource::new(9)).unwrap();
    assert!(matches!(
        c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: true }),
        Err(ModelError::Refused(_))
    ));
}

/// S23: after set-cluster non-secure the CTL holds only CAPF (+ its signer as SAST).
#[test]
fn non_secure_ctl_holds_only_capf_s23() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 10);
    c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    c.apply(T0 + 2 * HOUR, AdminAction::CtlSetNonSecure)
        .unwrap();
    let l = ctl(&c);
    let roles: Vec<u16> = records(&l).iter().map(|r| r.0).collect();
    assert_eq!(roles, vec![0, 4]);
    assert!(l.is_empty_itl());
}

/// §6.4: the CTL is not rebuilt automatically after a CallManager change.
#[test]
fn ctl_is_not_rebuilt_automatically_s6_4() {
    let mut c = cluster("A", "12.5", &["pub"], 11);
    c.apply(T0 + HOUR, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    let before = c.tftp_get(NodeId(0), "CTLFile.tlv").unwrap().bytes;
    let r = c
        .apply(
            T0 + 2 * HOUR,
            AdminAction::RegenerateCert {
                node: NodeId(0),
                purpose: CertPurpose::CallManager,
            },
        )
        .unwrap();
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::CtlUpdateRequired { .. }))
    );
    assert_eq!(c.tftp_get(NodeId(0), "CTLFile.tlv").unwrap().bytes, before);
    c.apply(T0 + 3 * HOUR, AdminAction::CtlUpdate).unwrap();
    let l = ctl(&c);
    assert!(has(
        &l,
        Role::CCM_TFTP,
        &id(&c, 0, CertPurpose::CallManager)
    ));
}

/// §1.4: SEP<MAC>.cnf.xml.sgn signed by the serving node's CallManager, digest per parameter,
/// with the <TVS> list of the phone's CallManager group (§4.2).
#[test]
fn signed_config_per_node_and_group_s1_4_s4_2() {
    let mut c = cluster("A", "12.5", &["pub", "sub1", "sub2"], 12);
    let g = c.add_cm_group("G2", vec![NodeId(2), NodeId(1)]).unwrap();
    c.add_fleet("8861", 0x00AA_0000_0000, 1, g).unwrap();
    let m = Mac::from_u64(0x00AA_0000_0000);
    for node in [0u16, 2] {
        let served = c
            .tftp_get(NodeId(node), &format!("SEP{m}.cnf.xml.sgn"))
            .unwrap();
        let f = SignedFile::decode(&served.bytes).unwrap();
        let cm = CertInfo::parse(id(&c, node, CertPurpose::CallManager).der()).unwrap();
        f.verify_with(&cm.public_key)
            .expect("signed by the serving node's CallManager");
        assert_eq!(f.info().digest, Digest::Sha1);
        let xml = String::from_utf8(f.payload().to_vec()).unwrap();
        let tvs = xml
            .split("<TVS>")
            .nth(1)
            .unwrap()
            .split("</TVS>")
            .next()
            .unwrap();
        let p2 = tvs.find("10.0.0.12").unwrap();
        let p1 = tvs.find("10.0.0.11").unwrap();
        assert!(p2 < p1, "priority order of the group");
        assert!(!tvs.contains("10.0.0.10"), "only the group's nodes");
    }
    c.apply(
        T0 + HOUR,
        AdminAction::SetParam(ParamChange::TftpFileSignature(FileDigest::Sha512)),
    )
    .unwrap();
    let served = c
        .tftp_get(NodeId(0), &format!("SEP{m}.cnf.xml.sgn"))
        .unwrap();
    assert_eq!(
        SignedFile::decode(&served.bytes).unwrap().info().digest,
        Digest::Sha512
    );
    assert_eq!(itl(&c, 0).info().digest, Digest::Sha512);
}

/// §1.4: .enc.sgn for phones with TFTP Encrypted Config; decrypts with the phone key.
#[test]
fn encrypted_config_decrypts_with_phone_key_s1_4() {
    let mut c = cluster("A", "12.5", &["pub"], 13);
    let ca = itlsim_server::cluster::test_ca().unwrap();
    let (der, key) = c
        .issue_ca_signed(&ca, NodeId(0), CertPurpose::Tomcat, KeySpec::Rsa(2048))
        .unwrap();
    let m = mac(5);
    c.add_phone(PhoneRecord {
        mac: m,
        model: "8861".into(),
        sbd: true,
        cm_group: CmGroupId(0),
        encrypted_config: true,
        device_cert_der: Some(der),
        registered: true,
        load: "sip88xx.14-1".into(),
    })
    .unwrap();
    let served = c
        .tftp_get(NodeId(0), &format!("SEP{m}.cnf.xml.enc.sgn"))
        .unwrap();
    let f = EncryptedFile::decode(&served.bytes).unwrap();
    let cm = CertInfo::parse(id(&c, 0, CertPurpose::CallManager).der()).unwrap();
    f.verify_with(&cm.public_key).unwrap();
    let phone_key = SigningKey::from_der(&key).unwrap();
    let xml = f.decrypt(&phone_key).unwrap();
    assert!(String::from_utf8(xml).unwrap().contains("<TVS>"));
    // Deterministic.
    assert_eq!(
        c.tftp_get(NodeId(0), &format!("SEP{m}.cnf.xml.enc.sgn"))
            .unwrap()
            .bytes,
        served.bytes
    );
    // Phones without encrypted config get no .enc.sgn.
    let c = with_phones(c, 1);
    assert!(
        c.tftp_get(NodeId(0), &format!("SEP{}.cnf.xml.enc.sgn", mac(0)))
            .is_err()
    );
}

/// Seed 004 "Autoregistration": default config signed; unsigned for phones without SBD.
#[test]
fn default_and_unsigned_configs_seed004() {
    let mut c = cluster("A", "12.5", &["pub"], 14);
    let signed = c.tftp_get(NodeId(0), "XMLDefault.cnf.xml.sgn").unwrap();
    SignedFile::decode(&signed.bytes)
        .unwrap()
        .verify_with(
            &CertInfo::parse(id(&c, 0, CertPurpose::CallManager).der())
                .unwrap()
                .public_key,
        )
        .unwrap();
    let plain = c.tftp_get(NodeId(0), "XMLDefault.cnf.xml").unwrap();
    assert!(plain.bytes.starts_with(b"<?xml"));
    c.add_phone(PhoneRecord {
        mac: mac(9),
        model: "7960".into(),
        sbd: false,
        cm_group: CmGroupId(0),
        encrypted_config: false,
        device_cert_der: None,
        registered: true,
        load: String::new(),
    })
    .unwrap();
    assert!(matches!(
        c.tftp_get(NodeId(0), &format!("SEP{}.cnf.xml.sgn", mac(9))),
        Err(TftpMiss::NotFound(_))
    ));
    assert!(
        c.tftp_get(NodeId(0), &format!("SEP{}.cnf.xml", mac(9)))
            .is_ok()
    );
}

/// wire §3.7: ITLSEP<MAC>.tlv = ITLFile.tlv bytes (signed name is the generic one); unknown
/// devices and unknown names are "file not found"; a stopped TFTP does not answer.
#[test]
fn per_phone_itl_and_misses() {
    let mut c = with_phones(cluster("A", "12.5", &["pub"], 15), 2);
    let a = c
        .tftp_get(NodeId(0), &format!("ITLSEP{}.tlv", mac(1)))
        .unwrap();
    assert_eq!(a.bytes, c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap().bytes);
    assert!(matches!(
        c.tftp_get(NodeId(0), "ITLSEP0000000000FF.tlv"),
        Err(TftpMiss::NotFound(_))
    ));
    assert!(matches!(
        c.tftp_get(NodeId(0), "../../etc/passwd"),
        Err(TftpMiss::NotFound(_))
    ));
    assert!(matches!(
        c.tftp_get(NodeId(7), "ITLFile.tlv"),
        Err(TftpMiss::NotFound(_))
    ));
    c.apply(
        T0 + 1,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Stop,
        },
    )
    .unwrap();
    assert_eq!(
        c.tftp_get(NodeId(0), "ITLFile.tlv"),
        Err(TftpMiss::ServiceDown(NodeId(0)))
    );
}

/// Issue 3: per-phone files are built lazily and cached by content.
#[test]
fn per_phone_configs_are_lazy_and_cached() {
    let c = with_phones(cluster("A", "12.5", &["pub"], 16), 5000);
    assert_eq!(c.cache_stats().built, 0, "nothing signed up front");
    let name = format!("SEP{}.cnf.xml.sgn", mac(42));
    let a = c.tftp_get(NodeId(0), &name).unwrap();
    assert_eq!(c.cache_stats().built, 1);
    let b = c.tftp_get(NodeId(0), &name).unwrap();
    assert_eq!(c.cache_stats().built, 1);
    assert_eq!(c.cache_stats().hits, 1);
    assert!(std::sync::Arc::ptr_eq(&a.bytes, &b.bytes));
}

/// The per-phone file cache is bounded (first in, first out); an evicted file is rebuilt to the
/// same bytes (signing is deterministic), so the bound changes memory, never what is served.
#[test]
fn per_phone_file_cache_is_bounded_and_eviction_is_invisible() {
    let c = with_phones(cluster("A", "12.5", &["pub"], 16), 10);
    c.set_file_cache_bound(3);
    let names: Vec<String> = (0..5)
        .map(|i| format!("SEP{}.cnf.xml.sgn", mac(i)))
        .collect();
    let first: Vec<_> = names
        .iter()
        .map(|n| c.tftp_get(NodeId(0), n).unwrap().bytes.to_vec())
        .collect();
    let s = c.cache_stats();
    assert_eq!((s.built, s.entries), (5, 3), "{s:?}");
    // The newest three are hits; the oldest was evicted and is rebuilt, byte for byte.
    assert_eq!(
        c.tftp_get(NodeId(0), &names[4]).unwrap().bytes.to_vec(),
        first[4]
    );
    assert_eq!(c.cache_stats().hits, 1);
    assert_eq!(
        c.tftp_get(NodeId(0), &names[0]).unwrap().bytes.to_vec(),
        first[0]
    );
    let s = c.cache_stats();
    assert_eq!((s.built, s.entries), (6, 3), "{s:?}");
}

/// Seed 004: the ITL changes only when its content changes; a rebuild gets a new timestamp.
#[test]
fn itl_bytes_change_only_with_content_seed004() {
    let mut c = cluster("A", "11.5", &["pub"], 17);
    let before = c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap();
    let r = c
        .apply(
            T0 + HOUR,
            AdminAction::RegenerateCert {
                node: NodeId(0),
                purpose: CertPurpose::Tomcat,
            },
        )
        .unwrap();
    assert!(
        !r.changes
            .iter()
            .any(|ch| matches!(ch, Change::ItlRebuilt { .. }))
    );
    assert_eq!(c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap(), before);
    let r = c
        .apply(
            T0 + 2 * HOUR,
            AdminAction::RegenerateCert {
                node: NodeId(0),
                purpose: CertPurpose::CallManager,
            },
        )
        .unwrap();
    assert!(r.changes.contains(&Change::ItlRebuilt { node: NodeId(0) }));
    let after = c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap();
    assert_ne!(after.bytes, before.bytes);
    assert_eq!(after.timestamp, Some((T0 + 2 * HOUR) as u32));
}

/// Issue 3: same seed ⇒ byte-identical artefacts; another seed ⇒ other keys.
#[test]
fn seeded_runs_are_byte_identical() {
    let run = |seed: u64| {
        let mut c = with_phones(cluster("A", "12.5", &["pub", "sub1"], seed), 3);
        c.apply(
            T0 + HOUR,
            AdminAction::RegenerateCert {
                node: NodeId(1),
                purpose: CertPurpose::CallManager,
            },
        )
        .unwrap();
        c.apply(
            T0 + 2 * HOUR,
            AdminAction::CtlSetMixedMode { etoken: false },
        )
        .unwrap();
        let mut out = Vec::new();
        for n in [0u16, 1] {
            for f in ["ITLFile.tlv", "CTLFile.tlv", "XMLDefault.cnf.xml.sgn"] {
                out.push(c.tftp_get(NodeId(n), f).unwrap().bytes.to_vec());
            }
            out.push(
                c.tftp_get(NodeId(n), &format!("SEP{}.cnf.xml.sgn", mac(2)))
                    .unwrap()
                    .bytes
                    .to_vec(),
            );
        }
        out
    };
    assert_eq!(run(99), run(99));
    assert_ne!(run(99), run(100));
}

/// Every served trust list of every version and mode verifies; no ITL before 8.0.
#[test]
fn all_versions_serve_verifiable_lists() {
    let c = cluster("A", "7.1", &["pub"], 18);
    assert!(matches!(
        c.tftp_get(NodeId(0), "ITLFile.tlv"),
        Err(TftpMiss::NotFound(_))
    ));
    for v in [
        "8.6", "9.1", "10.0", "10.5", "11.0", "11.5", "12.0", "12.5", "14", "14SU2", "15",
    ] {
        let mut c = cluster("A", v, &["pub", "sub1"], 19);
        for n in [0u16, 1] {
            let l = itl(&c, n);
            l.verify_self().unwrap();
            assert!(!l.over_phone_limit());
            assert!(count_role(&l, Role::SAST) <= 2);
        }
        if Version::parse(v).unwrap().has_tokenless_ctl() {
            c.apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: false })
                .unwrap();
            ctl(&c).verify_self().unwrap();
            TrustList::decode(&c.tftp_get(NodeId(1), "ITLFile.tlv").unwrap().bytes)
                .unwrap()
                .verify_self()
                .unwrap();
        }
    }
}
