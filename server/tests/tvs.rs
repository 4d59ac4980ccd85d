//! The TVS decision for every store combination of §4 / E1.
mod common;
use common::*;
use itlsim_server::*;
use itlsim_wire::tags::Role;
use itlsim_wire::tvs::{Request, Status};

fn query(c: &Certificate) -> Request {
    Request::Query {
        device_name: "CP-8861-SEP001122330000".into(),
        subject: c.subject().as_bytes().to_vec(),
        issuer: Some(c.issuer().as_bytes().to_vec()),
        serial: Some(c.serial().to_vec()),
    }
}

fn verify(c: &Certificate) -> Request {
    Request::Verify {
        device_name: "CP-8861-SEP001122330000".into(),
        certificate: c.der().to_vec(),
    }
}

fn roles(c: &Cluster, node: u16, req: &Request) -> Option<Vec<u16>> {
    let d = c.tvs_answer(NodeId(node), req).expect("TVS answers");
    match d.response.status {
        Status::Valid => {
            assert_eq!(d.response.ttl, Some(c.knobs().tvs_ttl_s), "§4.4 TTL");
            Some(d.response.roles.iter().map(|r| r.0).collect())
        }
        Status::Invalid => None,
    }
}

/// E1.1: a TFTP node's CallManager is vouched with the roles it holds in the current ITL
/// (SAST + TFTP non-secure), by Query (file signer, E18) and by Verify; own TVS → TVS; own CAPF
/// → CAPF (also in the ITL); own tomcat → APP-SERVER (E1.2).
#[test]
fn own_certificates_e1_1_e1_2() {
    let c = cluster("A", "11.5", &["pub", "sub1"], 21);
    let cm_sub = id(&c, 1, CertPurpose::CallManager);
    // Answer from the publisher's TVS about the subscriber's CM: in sub's ITL (SAST+TFTP) and in
    // CallManager-trust (TFTP).
    assert_eq!(roles(&c, 0, &query(&cm_sub)), Some(vec![0, 3]));
    assert_eq!(roles(&c, 0, &verify(&cm_sub)), Some(vec![0, 3]));
    let d = c.tvs_answer(NodeId(0), &query(&cm_sub)).unwrap();
    assert_eq!(
        d.response.certificate.as_deref(),
        Some(cm_sub.der()),
        "E18: query returns the certificate"
    );
    assert_eq!(
        roles(&c, 0, &verify(&id(&c, 1, CertPurpose::Tvs))),
        Some(vec![21])
    );
    // CAPF copies itself into CAPF-trust and CallManager-trust (seed 002) → CAPF + TFTP.
    assert_eq!(
        roles(&c, 1, &verify(&id(&c, 0, CertPurpose::Capf))),
        Some(vec![3, 4])
    );
    assert_eq!(
        roles(&c, 1, &verify(&id(&c, 0, CertPurpose::Tomcat))),
        Some(vec![7])
    );
}

/// E1.1 in mixed mode: CM → SAST (CTL/ITL) + CCM+TFTP.
#[test]
fn mixed_mode_roles_e1_1() {
    let mut c = cluster("A", "12.5", &["pub"], 22);
    c.apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: false })
        .unwrap();
    assert_eq!(
        roles(&c, 0, &query(&id(&c, 0, CertPurpose::CallManager))),
        Some(vec![0, 2, 3])
    );
}

/// E1.1: a CTL SAST (eToken) → SAST.
#[test]
fn ctl_etoken_sast_e1_1() {
    let mut s = spec("A", "11.5", &["pub"]);
    s.etokens = Some(2);
    let mut c = Cluster::install(s, KeySource::new(23)).unwrap();
    c.apply(T0 + 1, AdminAction::CtlSetMixedMode { etoken: true })
        .unwrap();
    let tok = c.etokens()[1].cert.clone();
    assert_eq!(roles(&c, 0, &query(&tok)), Some(vec![0]));
}

/// E1.3/K7: the cluster's own ITLRecovery is not vouched (default), even though it signs the V12
/// ITL; knob `tvs_vouches_own_itlrecovery` turns it on.
#[test]
fn own_itlrecovery_not_vouched_by_default_e1_3() {
    let c = cluster("A", "12.5", &["pub"], 24);
    let rec = c.itl_recovery().unwrap().cert.clone();
    assert_eq!(roles(&c, 0, &query(&rec)), None);
    let mut s = spec("A", "12.5", &["pub"]);
    s.knobs.tvs_vouches_own_itlrecovery = true;
    let c = Cluster::install(s, KeySource::new(24)).unwrap();
    assert_eq!(
        roles(&c, 0, &query(&c.itl_recovery().unwrap().cert)),
        Some(vec![0])
    );
}

/// §7.2 M1 / S9 capture: another cluster's CallManager and ITLRecovery after bulk import →
/// Phone-SAST-trust + CallManager-trust → roles {SAST, TFTP}.
#[test]
fn imported_other_cluster_certs_m1_s9() {
    let keys = KeySource::new(25);
    let mut src = Cluster::install(spec("SRC", "11.5", &["srcpub"]), keys.clone()).unwrap();
    let dst = Cluster::install(spec("DST", "12.5", &["dstpub", "dstsub"]), keys).unwrap();
    let dst_cm = id(&dst, 1, CertPurpose::CallManager);
    let dst_rec = dst.itl_recovery().unwrap().cert.clone();
    assert_eq!(
        roles(&src, 0, &query(&dst_cm)),
        None,
        "M2: no import, invalid"
    );
    assert_eq!(roles(&src, 0, &query(&dst_rec)), None);
    // M1-V12: only the CallManager certs imported → the destination ITL signer is unknown.
    let tftp = dst.bulk_export(BulkKind::Tftp);
    src.apply(T0 + 1, AdminAction::BulkImport(tftp.clone()))
        .unwrap();
    assert_eq!(roles(&src, 0, &query(&dst_cm)), Some(vec![0, 3]));
    assert_eq!(
        roles(&src, 0, &query(&dst_rec)),
        None,
        "M1-V12: ITLRecovery not imported → LOCK"
    );
    let all = BulkBundle::consolidate(&[tftp, dst.bulk_export(BulkKind::ItlRecovery)]);
    src.apply(T0 + 2, AdminAction::BulkImport(all)).unwrap();
    assert_eq!(
        roles(&src, 0, &query(&dst_rec)),
        Some(vec![0, 3]),
        "E1.3: another cluster's ITLRecovery is vouched as SAST"
    );
}

/// E1.2: Phone-SAST-trust alone → SAST; CallManager-trust alone → TFTP (S9; knob for E1.2's
/// CCM+TFTP readings); tomcat-trust → APP-SERVER; CAPF-trust → CAPF; unknown → invalid.
#[test]
fn single_store_uploads_e1_2() {
    let ca = itlsim_server::cluster::test_ca().unwrap();
    let (der, _) = {
        let c = cluster("X", "12.5", &["x"], 26);
        c.issue_ca_signed(&ca, NodeId(0), CertPurpose::Tomcat, KeySpec::Rsa(2048))
            .unwrap()
    };
    let foreign = itlsim_server::cluster::certificate_from_der(&der).unwrap();
    let mut per_store = Vec::new();
    for store in [
        TrustStoreKind::PhoneSastTrust,
        TrustStoreKind::CallManagerTrust,
        TrustStoreKind::TomcatTrust,
        TrustStoreKind::TvsTrust,
    ] {
        let mut c = cluster("A", "12.5", &["pub"], 27);
        assert_eq!(roles(&c, 0, &verify(&foreign)), None, "unknown certificate");
        c.apply(
            T0 + 1,
            AdminAction::UploadTrust {
                node: NodeId(0),
                store,
                cert_der: der.clone(),
            },
        )
        .unwrap();
        per_store.push(roles(&c, 0, &verify(&foreign)));
    }
    assert_eq!(
        per_store,
        vec![Some(vec![0]), Some(vec![3]), Some(vec![7]), None]
    );
    // CAPF-trust upload also lands in CallManager-trust (seed 001) → CAPF + TFTP.
    let mut c = cluster("A", "12.5", &["pub"], 28);
    c.apply(
        T0 + 1,
        AdminAction::UploadTrust {
            node: NodeId(0),
            store: TrustStoreKind::CapfTrust,
            cert_der: der.clone(),
        },
    )
    .unwrap();
    assert_eq!(roles(&c, 0, &verify(&foreign)), Some(vec![3, 4]));
    for (knob, want) in [
        (model::CallManagerTrustRoles::CcmTftp, vec![2]),
        (model::CallManagerTrustRoles::CcmAndTftp, vec![1, 3]),
    ] {
        let mut s = spec("A", "12.5", &["pub"]);
        s.knobs.tvs_callmanager_trust_roles = knob;
        let mut c = Cluster::install(s, KeySource::new(29)).unwrap();
        c.apply(
            T0 + 1,
            AdminAction::UploadTrust {
                node: NodeId(0),
                store: TrustStoreKind::CallManagerTrust,
                cert_der: der.clone(),
            },
        )
        .unwrap();
        assert_eq!(roles(&c, 0, &verify(&foreign)), Some(want));
    }
}

/// R3/R11 ingredient: after a CallManager regeneration the old certificate is neither in the ITL
/// nor in CallManager-trust (same-subject replacement, seed 000) → TVS no longer vouches for it;
/// the new one is vouched by E1.1 (R1).
#[test]
fn regenerated_callmanager_old_invalid_new_valid_r1() {
    let mut c = cluster("A", "10.5", &["pub"], 30);
    let old = id(&c, 0, CertPurpose::CallManager);
    c.apply(
        T0 + HOUR,
        AdminAction::RegenerateCert {
            node: NodeId(0),
            purpose: CertPurpose::CallManager,
        },
    )
    .unwrap();
    let new = id(&c, 0, CertPurpose::CallManager);
    assert_eq!(old.subject(), new.subject());
    assert_eq!(roles(&c, 0, &query(&old)), None);
    assert_eq!(roles(&c, 0, &query(&new)), Some(vec![0, 3]));
}

/// E16: with `tvs_store_refresh = on_restart`, imports are seen only after TVS restarts.
#[test]
fn store_refresh_on_restart_e16() {
    let keys = KeySource::new(31);
    let mut s = spec("SRC", "12.5", &["pub"]);
    s.knobs.tvs_store_refresh = TvsStoreRefreshAlias::OnRestart;
    let mut src = Cluster::install(s, keys.clone()).unwrap();
    let dst = Cluster::install(spec("DST", "12.5", &["d"]), keys).unwrap();
    let r = src
        .apply(
            T0 + 1,
            AdminAction::BulkImport(dst.bulk_export(BulkKind::All)),
        )
        .unwrap();
    assert!(r.restart_required(NodeId(0), Service::Tvs));
    let dst_cm = id(&dst, 0, CertPurpose::CallManager);
    assert_eq!(roles(&src, 0, &query(&dst_cm)), None);
    src.apply(
        T0 + 2,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tvs,
            op: ServiceOp::Restart,
        },
    )
    .unwrap();
    assert_eq!(roles(&src, 0, &query(&dst_cm)), Some(vec![0, 3]));
}

use itlsim_server::model::TvsStoreRefresh as TvsStoreRefreshAlias;

/// §4.5: TVS not running → no answer (the phone tries the next member); TTL knob honoured.
#[test]
fn tvs_down_and_ttl_knob() {
    let mut s = spec("A", "12.5", &["pub", "sub1"]);
    s.knobs.tvs_ttl_s = 3600;
    let mut c = Cluster::install(s, KeySource::new(32)).unwrap();
    let cm = id(&c, 0, CertPurpose::CallManager);
    assert_eq!(
        c.tvs_answer(NodeId(1), &query(&cm)).unwrap().response.ttl,
        Some(3600)
    );
    c.apply(
        T0 + 1,
        AdminAction::Service {
            node: NodeId(1),
            service: Service::Tvs,
            op: ServiceOp::Stop,
        },
    )
    .unwrap();
    assert_eq!(
        c.tvs_answer(NodeId(1), &query(&cm)),
        Err(TvsUnavailable::NotRunning(NodeId(1)))
    );
    assert!(matches!(
        c.tvs_answer(NodeId(9), &query(&cm)),
        Err(TvsUnavailable::NoNode(_))
    ));
}

/// E15: during a V12 `utils itl reset localkey` the publisher CallManager signs every node's ITL;
/// subscriber-homed phones get it vouched by TVS through E1.1 (it is SAST in the current ITL).
#[test]
fn localkey_signer_vouched_e15() {
    let mut c = cluster("A", "12.5", &["pub", "sub1"], 33);
    c.apply(T0 + 1, AdminAction::ItlResetLocalkey).unwrap();
    let l = itl(&c, 1);
    let pub_cm = id(&c, 0, CertPurpose::CallManager);
    assert_eq!(signer_der(&l), pub_cm.der());
    assert!(has(&l, Role::SAST, &pub_cm));
    let r = roles(&c, 1, &query(&pub_cm)).unwrap();
    assert!(r.contains(&0));
}

/// Query matching: subject strings compare without case/space/separator differences, and the
/// serial decides between same-subject certificates.
#[test]
fn query_matching_is_tolerant_but_serial_exact() {
    let c = cluster("A", "12.5", &["pub"], 34);
    let cm = id(&c, 0, CertPurpose::CallManager);
    let mut subject = cm.subject().replace(';', ", ").to_uppercase().into_bytes();
    subject.push(0);
    let q = Request::Query {
        device_name: "x".into(),
        subject,
        issuer: None,
        serial: Some(cm.serial().to_vec()),
    };
    assert!(roles(&c, 0, &q).is_some());
    let q = Request::Query {
        device_name: "x".into(),
        subject: cm.subject().as_bytes().to_vec(),
        issuer: None,
        serial: Some(vec![1, 2, 3]),
    };
    assert_eq!(roles(&c, 0, &q), None);
}
