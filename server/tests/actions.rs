//! One test per admin action, asserting its documented effect (seed / spec section in the name).
mod common;
use common::*;
use itlsim_server::*;
use itlsim_wire::tags::Role;

fn regen(c: &mut Cluster, at: i64, node: u16, purpose: CertPurpose) -> ActionReport {
    c.apply(
        at,
        AdminAction::RegenerateCert {
            node: NodeId(node),
            purpose,
        },
    )
    .expect("regen")
}

fn trust_has(c: &Cluster, node: u16, store: TrustStoreKind, cert: &Certificate) -> bool {
    c.node(NodeId(node)).unwrap().trust.contains(store, cert)
}

fn waves(r: &ActionReport) -> Vec<(usize, bool)> {
    r.events
        .iter()
        .filter_map(|e| match e {
            Event::PhoneResets {
                phones, automatic, ..
            } => Some((phones.len(), *automatic)),
            _ => None,
        })
        .collect()
}

/// Seed 002: a regenerated CallManager copies itself into CallManager-trust (replicated, seed 001)
/// replacing the old one (same subject, later start: seed 000); restart CallManager, TFTP and
/// CTIManager (seed 002); all registered phones reset when TFTP runs on the node (E11).
#[test]
fn regen_callmanager_seed002_e11() {
    let mut c = with_phones(cluster("A", "11.5", &["pub", "sub1"], 41), 4);
    c.set_registered(mac(3), false);
    let old = id(&c, 1, CertPurpose::CallManager);
    let r = regen(&mut c, T0 + HOUR, 1, CertPurpose::CallManager);
    let new = id(&c, 1, CertPurpose::CallManager);
    assert_ne!(old, new);
    assert_eq!(new.key_spec(), old.key_spec(), "seed 000: same key length");
    for n in [0u16, 1] {
        assert!(trust_has(&c, n, TrustStoreKind::CallManagerTrust, &new));
        assert!(!trust_has(&c, n, TrustStoreKind::CallManagerTrust, &old));
    }
    for s in [Service::CallManager, Service::Tftp, Service::CtiManager] {
        assert!(r.restart_required(NodeId(1), s));
    }
    assert_eq!(waves(&r), vec![(3, true)], "only registered phones");
    assert!(!r.reset_phones().contains(&mac(3)));
    assert!(r.changes.contains(&Change::ItlRebuilt { node: NodeId(1) }));
    assert!(
        !r.changes.contains(&Change::ItlRebuilt { node: NodeId(0) }),
        "K12: other node's ITL unchanged"
    );
    assert_eq!(
        signer_der(&itl(&c, 1)),
        new.der(),
        "§6.1 V10: new CM signs node 1's ITL"
    );
}

/// Seed 000 Table 7 (14SU1+): CallManager → HAProxy; Phone Interaction = manual → no automatic
/// reset, only advice (§6.5).
#[test]
fn regen_callmanager_v14_phone_interaction_manual_s6_5() {
    let mut c = with_phones(cluster("A", "14SU1", &["pub"], 42), 2);
    c.apply(
        T0 + 1,
        AdminAction::SetParam(ParamChange::PhoneInteraction(PhoneInteraction::Manual)),
    )
    .unwrap();
    let r = regen(&mut c, T0 + HOUR, 0, CertPurpose::CallManager);
    assert!(r.restart_required(NodeId(0), Service::HaProxy));
    assert!(!r.restart_required(NodeId(0), Service::CallManager));
    assert!(waves(&r).is_empty());
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::ResetAdvised { .. }))
    );
    // Parameter absent before 14.
    let mut c = cluster("A", "12.5", &["pub"], 42);
    assert!(matches!(
        c.apply(
            T0 + 1,
            AdminAction::SetParam(ParamChange::PhoneInteraction(PhoneInteraction::Manual))
        ),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 000/004: TVS restarts by itself; E11: phones whose CallManager group has the node reset;
/// §1.3: the ITL carries the new TVS certificate.
#[test]
fn regen_tvs_seed004_e11() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 43);
    let g1 = c.add_cm_group("only-pub", vec![NodeId(0)]).unwrap();
    c.add_fleet("8861", 0x10, 3, CmGroupId(0)).unwrap(); // default group: pub + sub1
    c.add_fleet("8861", 0x20, 2, g1).unwrap();
    let r = regen(&mut c, T0 + HOUR, 1, CertPurpose::Tvs);
    assert!(r.restarted(NodeId(1), Service::Tvs));
    assert_eq!(waves(&r), vec![(3, true)]);
    let new = id(&c, 1, CertPurpose::Tvs);
    assert!(has(&itl(&c, 0), Role::TVS, &new));
    assert!(
        r.changes.contains(&Change::ItlRebuilt { node: NodeId(0) }),
        "every node's ITL lists all TVS certs"
    );
}

/// Seed 002: CAPF has a unique subject, so old CAPF certificates stay in CAPF-trust and
/// CallManager-trust; CAPF restarts by itself (seed 000); all phones reset (E11).
#[test]
fn regen_capf_keeps_old_in_trust_seed002() {
    let mut c = with_phones(cluster("A", "12.5", &["pub"], 44), 2);
    let old = id(&c, 0, CertPurpose::Capf);
    let r = regen(&mut c, T0 + HOUR, 0, CertPurpose::Capf);
    let new = id(&c, 0, CertPurpose::Capf);
    assert_ne!(old.subject(), new.subject());
    for s in [TrustStoreKind::CapfTrust, TrustStoreKind::CallManagerTrust] {
        assert!(trust_has(&c, 0, s, &old) && trust_has(&c, 0, s, &new));
    }
    assert!(r.restarted(NodeId(0), Service::Capf));
    assert_eq!(waves(&r), vec![(2, true)]);
    assert!(has(&itl(&c, 0), Role::CAPF, &new));
}

/// Seed 002: tomcat → tomcat-trust, restart Tomcat; E11: no reset; ITL unchanged.
#[test]
fn regen_tomcat_seed002_e11() {
    let mut c = with_phones(cluster("A", "12.5", &["pub", "sub1"], 45), 2);
    let r = regen(&mut c, T0 + HOUR, 1, CertPurpose::Tomcat);
    let new = id(&c, 1, CertPurpose::Tomcat);
    assert!(
        trust_has(&c, 0, TrustStoreKind::TomcatTrust, &new),
        "tomcat-trust replicates (seed 001)"
    );
    assert!(r.restart_required(NodeId(1), Service::Tomcat));
    assert!(waves(&r).is_empty());
    assert!(
        !r.changes
            .iter()
            .any(|c| matches!(c, Change::ItlRebuilt { .. }))
    );
}

/// Seed 002: ipsec → ipsec-trust (node-local), restart DRF Master (publisher) and DRF Local.
#[test]
fn regen_ipsec_seed002() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 46);
    let r = regen(&mut c, T0 + HOUR, 0, CertPurpose::Ipsec);
    let new = id(&c, 0, CertPurpose::Ipsec);
    assert!(trust_has(&c, 0, TrustStoreKind::IpsecTrust, &new));
    assert!(
        !trust_has(&c, 1, TrustStoreKind::IpsecTrust, &new),
        "ipsec-trust is not replicated"
    );
    assert!(r.restart_required(NodeId(0), Service::DrfMaster));
    assert!(r.restart_required(NodeId(0), Service::DrfLocal));
}

/// Seed 004: a regenerated ITLRecovery gets 20 years; V12 ITL signed by it; no reset (E11);
/// refused on a subscriber (seed 000: on the publisher) and before 10.0.
#[test]
fn regen_itlrecovery_seed004_e11() {
    let mut c = with_phones(cluster("A", "12.5", &["pub", "sub1"], 47), 2);
    assert!(matches!(
        c.apply(
            T0 + 1,
            AdminAction::RegenerateCert {
                node: NodeId(1),
                purpose: CertPurpose::ItlRecovery
            }
        ),
        Err(ModelError::Refused(_))
    ));
    let r = regen(&mut c, T0 + HOUR, 0, CertPurpose::ItlRecovery);
    let rec = c.itl_recovery().unwrap().cert.clone();
    assert_eq!(rec.not_after() - rec.not_before(), 20 * 365 * 86_400);
    assert!(waves(&r).is_empty());
    assert_eq!(signer_der(&itl(&c, 1)), rec.der());
    let mut c8 = cluster("A", "9.1", &["pub"], 47);
    assert!(matches!(
        c8.apply(
            T0 + 1,
            AdminAction::RegenerateCert {
                node: NodeId(0),
                purpose: CertPurpose::ItlRecovery
            }
        ),
        Err(ModelError::Refused(_))
    ));
    assert!(matches!(
        c8.apply(
            T0 + 1,
            AdminAction::RegenerateCert {
                node: NodeId(0),
                purpose: CertPurpose::CallManagerEcdsa
            }
        ),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 000 Table 6: generate self-signed with a new key length (4096) and SHA-1; the ITL signs
/// with the larger key (R15). 3072 is offered by CUCM but the trust-list header cannot express a
/// 384-byte signature (§1.1 tag 11: 64/128/256/512): the ITL build fails and is reported.
#[test]
fn generate_self_signed_new_key_length_seed000_r15() {
    let mut c = cluster("A", "11.5", &["pub"], 48);
    c.apply(
        T0 + HOUR,
        AdminAction::GenerateSelfSigned {
            node: NodeId(0),
            purpose: CertPurpose::CallManager,
            key: KeySpec::Rsa(3072),
            hash: SigHash::Sha256,
            multi_server: false,
        },
    )
    .unwrap();
    assert!(matches!(
        c.tftp_get(NodeId(0), "ITLFile.tlv"),
        Err(TftpMiss::Build(_))
    ));
    c.apply(
        T0 + HOUR,
        AdminAction::GenerateSelfSigned {
            node: NodeId(0),
            purpose: CertPurpose::CallManager,
            key: KeySpec::Rsa(4096),
            hash: SigHash::Sha1,
            multi_server: false,
        },
    )
    .unwrap();
    let cm = id(&c, 0, CertPurpose::CallManager);
    assert_eq!(cm.key_spec(), KeySpec::Rsa(4096));
    let info = itlsim_wire::cert::CertInfo::parse(cm.der()).unwrap();
    assert_eq!(
        info.signature_algorithm, "1.2.840.113549.1.1.5",
        "sha1WithRSAEncryption"
    );
    let l = itl(&c, 0);
    assert_eq!(l.info().signature.len(), 512);
    assert!(matches!(
        c.apply(
            T0 + HOUR,
            AdminAction::GenerateSelfSigned {
                node: NodeId(0),
                purpose: CertPurpose::CallManager,
                key: KeySpec::Rsa(1536),
                hash: SigHash::Sha256,
                multi_server: false
            }
        ),
        Err(ModelError::Invalid(_))
    ));
    assert!(matches!(
        c.apply(
            T0 + HOUR,
            AdminAction::GenerateSelfSigned {
                node: NodeId(0),
                purpose: CertPurpose::CallManager,
                key: KeySpec::EcP256,
                hash: SigHash::Sha256,
                multi_server: false
            }
        ),
        Err(ModelError::Invalid(_))
    ));
}

/// Seed 000 "Simplified Certificate Management": 14+ multi-server TVS → one TVS record for the
/// cluster; refused before 14 and on a subscriber.
#[test]
fn multi_server_tvs_v14_seed000_table8() {
    let mut c = cluster("A", "14", &["pub", "sub1", "sub2"], 49);
    assert_eq!(count_role(&itl(&c, 0), Role::TVS), 3);
    assert!(matches!(
        c.apply(
            T0 + 1,
            AdminAction::GenerateSelfSigned {
                node: NodeId(1),
                purpose: CertPurpose::Tvs,
                key: KeySpec::Rsa(2048),
                hash: SigHash::Sha256,
                multi_server: true
            }
        ),
        Err(ModelError::Refused(_))
    ));
    c.apply(
        T0 + HOUR,
        AdminAction::GenerateSelfSigned {
            node: NodeId(0),
            purpose: CertPurpose::Tvs,
            key: KeySpec::Rsa(2048),
            hash: SigHash::Sha256,
            multi_server: true,
        },
    )
    .unwrap();
    for n in 0..3u16 {
        assert_eq!(count_role(&itl(&c, n), Role::TVS), 1);
    }
    let mut c12 = cluster("A", "12.5", &["pub"], 49);
    assert!(matches!(
        c12.apply(
            T0 + 1,
            AdminAction::GenerateSelfSigned {
                node: NodeId(0),
                purpose: CertPurpose::Tvs,
                key: KeySpec::Rsa(2048),
                hash: SigHash::Sha256,
                multi_server: true
            }
        ),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 000 "Reuse Multi-Server Tomcat Certificate for CallManager" (14+, multi-server only):
/// every node's ITL then carries the tomcat multi-SAN certificate as its CallManager.
#[test]
fn reuse_tomcat_for_callmanager_seed000() {
    let mut c = cluster("A", "14", &["pub", "sub1"], 50);
    assert!(matches!(
        c.apply(
            T0 + 1,
            AdminAction::ReuseTomcatForCallManager { ecdsa: false }
        ),
        Err(ModelError::Refused(_))
    ));
    c.apply(
        T0 + HOUR,
        AdminAction::GenerateSelfSigned {
            node: NodeId(0),
            purpose: CertPurpose::Tomcat,
            key: KeySpec::Rsa(2048),
            hash: SigHash::Sha256,
            multi_server: true,
        },
    )
    .unwrap();
    let tomcat = id(&c, 1, CertPurpose::Tomcat);
    assert!(tomcat.common_name().ends_with("-ms.a.example"));
    c.apply(
        T0 + 2 * HOUR,
        AdminAction::ReuseTomcatForCallManager { ecdsa: false },
    )
    .unwrap();
    for n in [0u16, 1] {
        assert_eq!(id(&c, n, CertPurpose::CallManager).der(), tomcat.der());
        assert!(has(&itl(&c, n), Role::TFTP, &tomcat));
    }
}

/// Seed 000 "Install Intermediate Certificates": a CA-signed identity needs its root in the
/// -trust store first; then it replaces the self-signed one and phones reset (seed 000 "After
/// uploading the CallManager or CAPF certificates, phones reset automatically").
#[test]
fn upload_ca_signed_needs_root_first_seed000() {
    let mut c = with_phones(cluster("A", "11.5", &["pub"], 51), 2);
    let ca = itlsim_server::cluster::test_ca().unwrap();
    let (der, key) = c
        .issue_ca_signed(&ca, NodeId(0), CertPurpose::CallManager, KeySpec::Rsa(2048))
        .unwrap();
    let up = AdminAction::UploadCaSigned {
        node: NodeId(0),
        purpose: CertPurpose::CallManager,
        cert_der: der.clone(),
        key_pkcs8: key.clone(),
    };
    assert!(matches!(
        c.apply(T0 + 1, up.clone()),
        Err(ModelError::Refused(_))
    ));
    c.apply(
        T0 + 2,
        AdminAction::UploadTrust {
            node: NodeId(0),
            store: TrustStoreKind::CallManagerTrust,
            cert_der: ca.cert.der().to_vec(),
        },
    )
    .unwrap();
    let r = c.apply(T0 + 3, up).unwrap();
    assert_eq!(id(&c, 0, CertPurpose::CallManager).der(), der.as_slice());
    assert_eq!(waves(&r), vec![(2, true)]);
    assert_eq!(
        signer_der(&itl(&c, 0)),
        der,
        "V10 ITL signed by the CA-signed CallManager"
    );
    // Regenerating overwrites the CA-signed certificate (seed 000 caution).
    regen(&mut c, T0 + 4, 0, CertPurpose::CallManager);
    assert!(
        !c.identity(NodeId(0), CertPurpose::CallManager)
            .unwrap()
            .ca_signed
    );
}

/// Seed 001: uploads to tomcat-, CallManager- and Phone-SAST-trust replicate; CAPF-trust stays on
/// the node (seed 000) but is copied to CallManager-trust (seed 001); same subject with an older
/// start is not uploaded (seed 000); mixed mode asks for a CTL update (seed 000).
#[test]
fn upload_trust_replication_seed000_seed001() {
    let ca = itlsim_server::cluster::test_ca().unwrap();
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 52);
    let ext = cluster("X", "12.5", &["ext"], 152);
    let (der, _) = ext
        .issue_ca_signed(&ca, NodeId(0), CertPurpose::Tomcat, KeySpec::Rsa(2048))
        .unwrap();
    let cert = itlsim_server::cluster::certificate_from_der(&der).unwrap();
    for store in [
        TrustStoreKind::PhoneSastTrust,
        TrustStoreKind::TomcatTrust,
        TrustStoreKind::CallManagerTrust,
    ] {
        let r = c
            .apply(
                T0 + 1,
                AdminAction::UploadTrust {
                    node: NodeId(1),
                    store,
                    cert_der: der.clone(),
                },
            )
            .unwrap();
        assert!(trust_has(&c, 0, store, &cert), "{store} replicates");
        assert!(
            !r.events
                .iter()
                .any(|e| matches!(e, Event::CtlUpdateRequired { .. }))
        );
    }
    c.apply(
        T0 + 2,
        AdminAction::UploadTrust {
            node: NodeId(1),
            store: TrustStoreKind::CapfTrust,
            cert_der: ca.cert.der().to_vec(),
        },
    )
    .unwrap();
    assert!(trust_has(&c, 1, TrustStoreKind::CapfTrust, &ca.cert));
    assert!(
        !trust_has(&c, 0, TrustStoreKind::CapfTrust, &ca.cert),
        "CAPF-trust is not replicated"
    );
    assert!(
        trust_has(&c, 0, TrustStoreKind::CallManagerTrust, &ca.cert),
        "copied to CallManager-trust"
    );
    // Same subject, older validity start: rejected.
    // Same subject as the node's own tomcat copy (CN=pub), same start: not uploaded.
    let mut older = cluster("A", "12.5", &["pub", "sub1"], 53);
    let (old_der, _) = older
        .issue_ca_signed(&ca, NodeId(0), CertPurpose::Tomcat, KeySpec::Rsa(2048))
        .unwrap();
    let r = c
        .apply(
            T0 + 3,
            AdminAction::UploadTrust {
                node: NodeId(0),
                store: TrustStoreKind::TomcatTrust,
                cert_der: old_der,
            },
        )
        .unwrap();
    assert!(r.changes.iter().all(|ch| matches!(
        ch,
        Change::Trust {
            outcome: trust::InsertOutcome::Rejected(_),
            ..
        }
    )));
    older
        .apply(T0 + 10, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    let r = older
        .apply(
            T0 + 11,
            AdminAction::UploadTrust {
                node: NodeId(0),
                store: TrustStoreKind::PhoneSastTrust,
                cert_der: der,
            },
        )
        .unwrap();
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::CtlUpdateRequired { .. }))
    );
}

/// Seed 000 "Delete a Trust Certificate": CAPF/tomcat/CallManager/Phone-SAST-trust deletes apply
/// to all servers; other stores stay local; CSCut58407 warning (seed 002); the Cisco
/// manufacturing roots can be removed (seed 000 list).
#[test]
fn delete_trust_replication_seed000() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 54);
    let r = c
        .apply(
            T0 + 1,
            AdminAction::DeleteTrust {
                node: NodeId(1),
                store: TrustStoreKind::CapfTrust,
                subject: "Cisco_Manufacturing_CA".into(),
            },
        )
        .unwrap();
    assert_eq!(r.changes.len(), 2, "removed on both nodes");
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Warning { text } if text.contains("CSCut58407")))
    );
    let ipsec_pub = id(&c, 0, CertPurpose::Ipsec);
    c.apply(
        T0 + 2,
        AdminAction::DeleteTrust {
            node: NodeId(0),
            store: TrustStoreKind::IpsecTrust,
            subject: ipsec_pub.subject().into(),
        },
    )
    .unwrap();
    assert!(!trust_has(&c, 0, TrustStoreKind::IpsecTrust, &ipsec_pub));
    assert!(matches!(
        c.apply(
            T0 + 3,
            AdminAction::DeleteTrust {
                node: NodeId(0),
                store: TrustStoreKind::TvsTrust,
                subject: "nope".into()
            }
        ),
        Err(ModelError::Invalid(_))
    ));
}

/// Service control: a stopped TFTP serves nothing; deactivating TVS on a node removes its record
/// from the ITL (§1.3); E13: 6971 keeps the old CallManager certificate until TFTP is
/// deactivated and reactivated; TFTP restart ends `utils itl reset` on that node (seed 004).
#[test]
fn service_control_e13_s1_3() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 55);
    c.apply(
        T0 + 1,
        AdminAction::Service {
            node: NodeId(1),
            service: Service::Tvs,
            op: ServiceOp::Deactivate,
        },
    )
    .unwrap();
    assert_eq!(count_role(&itl(&c, 0), Role::TVS), 1);
    let old = id(&c, 0, CertPurpose::CallManager);
    regen(&mut c, T0 + 2, 0, CertPurpose::CallManager);
    c.apply(
        T0 + 3,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Restart,
        },
    )
    .unwrap();
    assert_eq!(
        c.node(NodeId(0)).unwrap().tftp.https_6971.as_ref(),
        Some(&old),
        "E13: restart is not enough"
    );
    c.apply(
        T0 + 4,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Deactivate,
        },
    )
    .unwrap();
    assert!(matches!(
        c.tftp_get(NodeId(0), "ITLFile.tlv"),
        Err(TftpMiss::ServiceDown(_))
    ));
    c.apply(
        T0 + 5,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Activate,
        },
    )
    .unwrap();
    assert_eq!(
        c.node(NodeId(0)).unwrap().tftp.https_6971.as_ref(),
        Some(&id(&c, 0, CertPurpose::CallManager))
    );
    assert!(matches!(
        c.apply(
            T0 + 6,
            AdminAction::Service {
                node: NodeId(1),
                service: Service::Capf,
                op: ServiceOp::Activate
            }
        ),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 004 "Perform Bulk Reset of ITL File" on V12: signed by the publisher CallManager on every
/// TFTP node (E15) until that node's TFTP restarts, which brings ITLRecovery back.
#[test]
fn itl_reset_localkey_v12_seed004_e15() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 56);
    let r = c.apply(T0 + 1, AdminAction::ItlResetLocalkey).unwrap();
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::ResetAdvised { .. }))
    );
    let pub_cm = id(&c, 0, CertPurpose::CallManager);
    let rec = c.itl_recovery().unwrap().cert.clone();
    for n in [0u16, 1] {
        let l = itl(&c, n);
        assert_eq!(signer_der(&l), pub_cm.der());
        assert!(has(&l, Role::SAST, &rec), "carries ITLRecovery (R9 b)");
    }
    c.apply(
        T0 + 2,
        AdminAction::Service {
            node: NodeId(1),
            service: Service::Tftp,
            op: ServiceOp::Restart,
        },
    )
    .unwrap();
    assert_eq!(signer_der(&itl(&c, 1)), rec.der());
    assert_eq!(
        signer_der(&itl(&c, 0)),
        pub_cm.der(),
        "node 0 not restarted yet"
    );
}

/// §6.1 V10: the reset ITL is signed by ITLRecovery; E7: refused when ITLRecovery's key is smaller
/// than the CallManager key, or with the knob off; before 10.0 the command does not exist.
#[test]
fn itl_reset_localkey_v10_e7() {
    let mut c = cluster("A", "11.5", &["pub"], 57);
    c.apply(T0 + 1, AdminAction::ItlResetLocalkey).unwrap();
    assert_eq!(
        signer_der(&itl(&c, 0)),
        c.itl_recovery().unwrap().cert.der()
    );
    let mut c = cluster("A", "11.5", &["pub"], 58);
    c.apply(
        T0 + 1,
        AdminAction::GenerateSelfSigned {
            node: NodeId(0),
            purpose: CertPurpose::ItlRecovery,
            key: KeySpec::Rsa(1024),
            hash: SigHash::Sha256,
            multi_server: false,
        },
    )
    .unwrap();
    assert!(matches!(
        c.apply(T0 + 2, AdminAction::ItlResetLocalkey),
        Err(ModelError::Refused(_))
    ));
    let mut s = spec("A", "11.5", &["pub"]);
    s.knobs.v10_localkey_recovers = false;
    let mut c = Cluster::install(s, KeySource::new(59)).unwrap();
    assert!(matches!(
        c.apply(T0 + 2, AdminAction::ItlResetLocalkey),
        Err(ModelError::Refused(_))
    ));
    let mut c = cluster("A", "9.1", &["pub"], 59);
    assert!(matches!(
        c.apply(T0 + 2, AdminAction::ItlResetLocalkey),
        Err(ModelError::Refused(_))
    ));
}

/// §6.1/§9 `utils itl reset remotekey`: needs `file get tftp ITLRecovery.p12` first, then signs
/// with the exported (possibly older) ITLRecovery key.
#[test]
fn itl_reset_remotekey_needs_export_s9() {
    let mut c = cluster("A", "12.5", &["pub"], 60);
    assert!(matches!(
        c.apply(T0 + 1, AdminAction::ItlResetRemotekey),
        Err(ModelError::Refused(_))
    ));
    c.apply(T0 + 2, AdminAction::ExportItlRecoveryP12).unwrap();
    let exported = c.itl_recovery().unwrap().cert.clone();
    regen(&mut c, T0 + 3, 0, CertPurpose::ItlRecovery);
    c.apply(T0 + 4, AdminAction::ItlResetRemotekey).unwrap();
    assert_eq!(signer_der(&itl(&c, 0)), exported.der());
}

/// `utils ctl set-cluster mixed-mode` (10.0+, tokenless): security mode, CTL written, restarts of
/// TFTP and CallManager advised (seed 002 steps 5–6); refused on 9.x and twice.
#[test]
fn ctl_set_cluster_mixed_mode_s6_1() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 61);
    let r = c
        .apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    assert_eq!(c.security_mode(), SecurityMode::MixedTokenless);
    assert!(
        r.restart_required(NodeId(1), Service::Tftp)
            && r.restart_required(NodeId(1), Service::CallManager)
    );
    assert!(
        r.changes
            .iter()
            .any(|ch| matches!(ch, Change::CtlWritten { .. }))
    );
    assert!(matches!(
        c.apply(T0 + 2, AdminAction::CtlSetMixedMode { etoken: false }),
        Err(ModelError::Refused(_))
    ));
    let mut c9 = cluster("A", "9.1", &["pub"], 61);
    assert!(matches!(
        c9.apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: false }),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 004 "Reset CTL Localkey" / R12: CTL signed by the publisher CallManager carrying the new
/// ITLRecovery; `utils ctl update CTLFile` then re-signs with the new ITLRecovery (V12).
#[test]
fn ctl_reset_localkey_then_update_r12_seed004() {
    let mut c = cluster("A", "12.5", &["pub"], 62);
    assert!(matches!(
        c.apply(T0, AdminAction::CtlResetLocalkey),
        Err(ModelError::Refused(_))
    ));
    c.apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    regen(&mut c, T0 + 2, 0, CertPurpose::ItlRecovery);
    c.apply(T0 + 3, AdminAction::CtlResetLocalkey).unwrap();
    let new_rec = c.itl_recovery().unwrap().cert.clone();
    let l = ctl(&c);
    assert_eq!(signer_der(&l), id(&c, 0, CertPurpose::CallManager).der());
    assert!(has(&l, Role::SAST, &new_rec));
    c.apply(T0 + 4, AdminAction::CtlUpdate).unwrap();
    assert_eq!(signer_der(&ctl(&c)), new_rec.der());
}

/// Seed 000/004 bulk export → consolidate → import: M1 mapping CallManager/ITLRecovery →
/// Phone-SAST-trust + CallManager-trust, CAPF → CallManager-trust, tomcat → tomcat-trust; ECDSA
/// included with TFTP from 11.0 (seed 004).
#[test]
fn bulk_export_consolidate_import_m1() {
    let keys = KeySource::new(63);
    let dst = Cluster::install(spec("DST", "12.5", &["d1", "d2"]), keys.clone()).unwrap();
    let mut src = Cluster::install(spec("SRC", "11.5", &["s1", "s2"]), keys).unwrap();
    let tftp = dst.bulk_export(BulkKind::Tftp);
    assert_eq!(
        tftp.items.len(),
        4,
        "2 TFTP nodes × (CallManager + CallManager-ECDSA)"
    );
    let all = BulkBundle::consolidate(&[tftp.clone(), dst.bulk_export(BulkKind::All), tftp]);
    src.apply(T0 + 1, AdminAction::BulkImport(all)).unwrap();
    let s = |store, cert: &Certificate| trust_has(&src, 1, store, cert);
    let cm = id(&dst, 1, CertPurpose::CallManager);
    let rec = dst.itl_recovery().unwrap().cert.clone();
    let capf = id(&dst, 0, CertPurpose::Capf);
    let tomcat = id(&dst, 0, CertPurpose::Tomcat);
    assert!(s(TrustStoreKind::PhoneSastTrust, &cm) && s(TrustStoreKind::CallManagerTrust, &cm));
    assert!(s(TrustStoreKind::PhoneSastTrust, &rec) && s(TrustStoreKind::CallManagerTrust, &rec));
    assert!(
        s(TrustStoreKind::CallManagerTrust, &capf) && !s(TrustStoreKind::PhoneSastTrust, &capf)
    );
    assert!(s(TrustStoreKind::TomcatTrust, &tomcat));
}

/// Seed 004 "System Back-Up Procedure" / R13: a restore brings back the backed-up keys; the ITL
/// signer returns; a warning when the backup predates a regeneration (seed 000 note, E8); the
/// cluster restarts and phones reset.
#[test]
fn drs_backup_restore_r13_seed004() {
    let mut c = with_phones(cluster("A", "11.5", &["pub"], 64), 2);
    let backup = c.drs_backup();
    let old = id(&c, 0, CertPurpose::CallManager);
    let before = c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap().bytes;
    regen(&mut c, T0 + HOUR, 0, CertPurpose::CallManager);
    let r = c
        .apply(T0 + 2 * HOUR, AdminAction::DrsRestore(backup))
        .unwrap();
    assert_eq!(id(&c, 0, CertPurpose::CallManager), old);
    assert!(trust_has(&c, 0, TrustStoreKind::CallManagerTrust, &old));
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::Warning { text } if text.contains("manual unlock")))
    );
    assert!(r.restarted(NodeId(0), Service::Tftp));
    assert_eq!(waves(&r), vec![(2, true)]);
    let l = itl(&c, 0);
    assert_eq!(signer_der(&l), old.der());
    assert_eq!(
        l.records().len(),
        itlsim_wire::tlv::TrustList::decode(&before)
            .unwrap()
            .records()
            .len()
    );
    // Knob: a DRF without certificates (CSCtn50405) restores trust stores only.
    let mut s = spec("B", "9.1", &["pub"]);
    s.knobs.drs_backs_up_certs = false;
    let mut c = Cluster::install(s, KeySource::new(65)).unwrap();
    let b = c.drs_backup();
    regen(&mut c, T0 + 1, 0, CertPurpose::CallManager);
    let new = id(&c, 0, CertPurpose::CallManager);
    c.apply(T0 + 2, AdminAction::DrsRestore(b)).unwrap();
    assert_eq!(id(&c, 0, CertPurpose::CallManager), new);
}

/// E9 / seed 002: changing the rollback parameter resets all registered phones (both ways).
#[test]
fn set_rollback_param_resets_all_e9() {
    let mut c = with_phones(cluster("A", "12.5", &["pub"], 66), 3);
    let r = c
        .apply(
            T0 + 1,
            AdminAction::SetParam(ParamChange::RollbackPre80(true)),
        )
        .unwrap();
    assert_eq!(waves(&r), vec![(3, true)]);
    let r = c
        .apply(
            T0 + 2,
            AdminAction::SetParam(ParamChange::RollbackPre80(true)),
        )
        .unwrap();
    assert!(r.events.is_empty(), "no change, no event");
    let r = c
        .apply(
            T0 + 3,
            AdminAction::SetParam(ParamChange::RollbackPre80(false)),
        )
        .unwrap();
    assert_eq!(waves(&r), vec![(3, true)]);
    // Mixed mode: documented warning, ITL still blanked (E9).
    c.apply(T0 + 4, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    let r = c
        .apply(
            T0 + 5,
            AdminAction::SetParam(ParamChange::RollbackPre80(true)),
        )
        .unwrap();
    assert!(r.events.iter().any(|e| matches!(e, Event::Warning { .. })));
    assert!(itl(&c, 0).is_empty_itl());
    assert!(!ctl(&c).is_empty_itl(), "the CTL is untouched");
}

/// §1.1 tag 28: Endpoint Advanced Encryption Algorithms Support → signer version 1.1 [I].
#[test]
fn advanced_encryption_sets_signer_version_s1_1() {
    let mut c = cluster("A", "12.5", &["pub"], 67);
    assert_eq!(
        itl(&c, 0).info().signer_version,
        None,
        "CUCM layout: no tag 28"
    );
    c.apply(
        T0 + 1,
        AdminAction::SetParam(ParamChange::EndpointAdvancedEncryption(true)),
    )
    .unwrap();
    assert_eq!(itl(&c, 0).info().signer_version, Some((1, 1)));
}

/// §9 bulk/batch resets: Enterprise Parameters → Reset, device pool, BAT batch; registered only.
#[test]
fn reset_phones_scopes_s9() {
    let mut c = with_phones(cluster("A", "12.5", &["pub", "sub1"], 68), 4);
    let g = c.add_cm_group("G", vec![NodeId(1)]).unwrap();
    c.add_fleet("7841", 0x5000, 2, g).unwrap();
    c.set_registered(mac(0), false);
    let w = |c: &mut Cluster, s| waves(&c.apply(T0 + 1, AdminAction::ResetPhones(s)).unwrap());
    assert_eq!(w(&mut c, ResetScope::All), vec![(5, false)]);
    assert_eq!(w(&mut c, ResetScope::Group(g)), vec![(2, false)]);
    assert_eq!(
        w(&mut c, ResetScope::Phones(vec![mac(0), mac(1)])),
        vec![(1, false)]
    );
}

/// §6.1 / issue 3: upgrade 11.5 → 12.5 moves the ITL signer to ITLRecovery; the cluster restarts;
/// switch-version goes back to the CallManager-signed ITL.
#[test]
fn upgrade_and_switch_back_s6_1() {
    let mut c = with_phones(cluster("A", "11.5", &["pub", "sub1"], 69), 2);
    let cm = id(&c, 1, CertPurpose::CallManager);
    assert_eq!(signer_der(&itl(&c, 1)), cm.der());
    let r = c
        .apply(T0 + HOUR, AdminAction::Upgrade(Version::new(12, 5)))
        .unwrap();
    assert_eq!(c.class(), VersionClass::V12);
    assert_eq!(
        signer_der(&itl(&c, 1)),
        c.itl_recovery().unwrap().cert.der()
    );
    assert_eq!(
        id(&c, 1, CertPurpose::CallManager),
        cm,
        "certificates are kept"
    );
    assert!(r.restarted(NodeId(1), Service::Tftp));
    assert_eq!(waves(&r), vec![(2, true)]);
    c.apply(T0 + 2 * HOUR, AdminAction::SwitchVersion).unwrap();
    assert_eq!(c.version(), Version::new(11, 5));
    assert_eq!(signer_der(&itl(&c, 1)), cm.der());
    assert!(matches!(
        c.apply(T0 + 3 * HOUR, AdminAction::Upgrade(Version::new(10, 5))),
        Err(ModelError::Refused(_))
    ));
}

/// Seed 004 "Refresh Upgrade From 7.x to 8.6": no ITL before 8.0; after the upgrade TFTP serves a
/// V8 ITL (CallManager-signed, no ITLRecovery) and TVS certificates exist; upgrading 9.1 → 10.5
/// creates ITLRecovery (5 years, seed 004), 11.5 → 14 makes CAPF publisher-only (seed 000 Table 8).
#[test]
fn refresh_upgrade_from_pre8_seed004() {
    let mut c = with_phones(cluster("A", "7.1", &["pub", "sub1"], 70), 2);
    assert!(c.tftp_get(NodeId(0), "ITLFile.tlv").is_err());
    assert!(c.identity(NodeId(0), CertPurpose::Tvs).is_none());
    let r = c
        .apply(T0 + HOUR, AdminAction::Upgrade(Version::new(8, 6)))
        .unwrap();
    assert_eq!(waves(&r), vec![(2, true)]);
    let l = itl(&c, 1);
    assert_eq!(signer_der(&l), id(&c, 1, CertPurpose::CallManager).der());
    assert_eq!(count_role(&l, Role::TVS), 2);
    c.apply(T0 + 2 * HOUR, AdminAction::Upgrade(Version::new(10, 5)))
        .unwrap();
    let rec = c.itl_recovery().unwrap().cert.clone();
    assert_eq!(rec.not_after() - rec.not_before(), 5 * 365 * 86_400);
    assert_eq!(count_role(&itl(&c, 0), Role::SAST), 2);
    let mut c = cluster("B", "11.5", &["pub", "sub1"], 71);
    assert!(
        c.node(NodeId(1))
            .unwrap()
            .identities
            .contains_key(&CertPurpose::Capf)
    );
    c.apply(T0 + 1, AdminAction::Upgrade(Version::new(14, 0)))
        .unwrap();
    assert!(
        !c.node(NodeId(1))
            .unwrap()
            .identities
            .contains_key(&CertPurpose::Capf)
    );
    assert!(c.identity(NodeId(1), CertPurpose::Capf).is_some());
}

/// Refused actions change nothing; time never goes backwards.
#[test]
fn refused_actions_change_nothing() {
    let mut c = cluster("A", "12.5", &["pub"], 72);
    let before = c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap();
    assert!(
        c.apply(
            T0 + 5,
            AdminAction::RegenerateCert {
                node: NodeId(9),
                purpose: CertPurpose::CallManager
            }
        )
        .is_err()
    );
    assert_eq!(c.now(), T0);
    assert!(matches!(
        c.apply(T0 - 1, AdminAction::CtlUpdate),
        Err(ModelError::Invalid(_))
    ));
    assert_eq!(c.tftp_get(NodeId(0), "ITLFile.tlv").unwrap(), before);
}
