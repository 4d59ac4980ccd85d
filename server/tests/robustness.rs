//! No panics on any input; parsing helpers; trust-store and key-source rules.
mod common;
use common::*;
use itlsim_server::trust::{InsertOutcome, TrustEntry, TrustOrigin, TrustStore};
use itlsim_server::*;
use itlsim_wire::tvs::Request;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn file_names_version_and_mac_never_panic(s in ".{0,64}") {
        let _ = FileKind::parse(&s);
        let _ = Version::parse(&s);
        let _ = Mac::parse(&s);
    }

    #[test]
    fn file_kind_round_trips(n in 0u64..(1 << 48), k in 0usize..6) {
        let m = Mac::from_u64(n);
        let kind = [FileKind::ItlSep(m), FileKind::CtlSep(m), FileKind::Config(m), FileKind::ConfigSgn(m), FileKind::ConfigEncSgn(m), FileKind::ItlFile][k];
        prop_assert_eq!(FileKind::parse(&kind.name()), Some(kind));
        prop_assert_eq!(FileKind::parse(&kind.name().to_lowercase()), Some(kind));
    }
}

/// Arbitrary TVS requests and TFTP names against a real cluster: answers, never panics.
#[test]
fn arbitrary_requests_never_panic() {
    let c = with_phones(cluster("A", "12.5", &["pub"], 81), 3);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 0..40),
                ".{0,40}",
            ),
            |(a, b, name)| {
                let v = Request::Verify {
                    device_name: String::new(),
                    certificate: a.clone(),
                };
                let q = Request::Query {
                    device_name: String::new(),
                    subject: a,
                    issuer: Some(b.clone()),
                    serial: Some(b),
                };
                let _ = c.tvs_answer(NodeId(0), &v).unwrap();
                let _ = c.tvs_answer(NodeId(0), &q).unwrap();
                let _ = c.tftp_get(NodeId(0), &name);
                Ok(())
            },
        )
        .unwrap();
    // Foreign garbage DER is refused, not a panic.
    let mut c = c;
    assert!(matches!(
        c.apply(
            T0 + 1,
            AdminAction::UploadTrust {
                node: NodeId(0),
                store: TrustStoreKind::TomcatTrust,
                cert_der: vec![0x30, 0x03, 1, 2, 3]
            }
        ),
        Err(ModelError::Invalid(_))
    ));
    let r = c.apply(
        T0 + 1,
        AdminAction::UploadCaSigned {
            node: NodeId(0),
            purpose: CertPurpose::Tomcat,
            cert_der: vec![],
            key_pkcs8: vec![],
        },
    );
    assert!(r.is_err());
}

#[test]
fn version_parse_and_classes() {
    let p = |s| Version::parse(s).unwrap();
    assert_eq!(p("11.5"), Version::new(11, 5));
    assert_eq!(p("14SU3"), Version::with_su(14, 0, 3));
    assert_eq!(p("12.5.1"), Version::new(12, 5));
    assert_eq!(p("7.1").class(), VersionClass::Pre8);
    assert_eq!(p("9.1").class(), VersionClass::V8);
    assert_eq!(p("11.5").class(), VersionClass::V10);
    assert_eq!(p("12.0").class(), VersionClass::V12);
    assert_eq!(p("15").class(), VersionClass::V14);
    assert!(
        !p("10.0").rollback_applies_automatically() && p("10.5").rollback_applies_automatically()
    );
    assert!(p("14SU2").has_etoken_ctl() && !p("14SU3").has_etoken_ctl());
    assert!(Version::parse("x").is_err());
}

#[test]
fn mac_parse_and_device_name() {
    let m = Mac::parse("SEP00:11:22:aa:bb:cc").unwrap();
    assert_eq!(m.device_name(), "SEP001122AABBCC");
    assert!(Mac::parse("00112233445").is_none());
    assert!(Mac::parse("0011223344GG").is_none());
}

/// Seed 000: one certificate per subject per store; a later start replaces, an earlier one is
/// not uploaded; the identical certificate is a no-op.
#[test]
fn same_subject_rule_seed000() {
    let a = cluster("A", "12.5", &["pub"], 82);
    let mut b = cluster("A", "12.5", &["pub"], 83);
    b.apply(
        T0 + HOUR,
        AdminAction::RegenerateCert {
            node: NodeId(0),
            purpose: CertPurpose::Tomcat,
        },
    )
    .unwrap();
    let old = id(&a, 0, CertPurpose::Tomcat);
    let new = id(&b, 0, CertPurpose::Tomcat);
    assert_eq!(old.subject(), new.subject());
    let e = |c: &Certificate| TrustEntry {
        cert: c.clone(),
        origin: TrustOrigin::Uploaded,
        added_at: 0,
    };
    let mut s = TrustStore::default();
    assert_eq!(s.insert(e(&old)), InsertOutcome::Added);
    assert_eq!(s.insert(e(&old)), InsertOutcome::AlreadyPresent);
    assert_eq!(s.insert(e(&new)), InsertOutcome::Replaced(old.clone()));
    assert_eq!(s.insert(e(&old)), InsertOutcome::Rejected(new.clone()));
    assert_eq!(s.entries().len(), 1);
}

/// Keys: never handed out twice by one source; same seed ⇒ same keys; EC keys deterministic;
/// the pool falls back to seeded generation when empty (1024-bit pool: 24 keys).
#[test]
fn key_source_rules() {
    let a = KeySource::new(5);
    let b = KeySource::new(5);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let k = a.fresh(KeySpec::Rsa(1024)).unwrap();
        assert_eq!(k, b.fresh(KeySpec::Rsa(1024)).unwrap());
        assert!(seen.insert(k.pkcs8_der().to_vec()), "no key twice");
    }
    assert_eq!(a.stats().from_pool, 24);
    assert_eq!(a.stats().generated_rsa, 6);
    assert_eq!(
        a.fresh(KeySpec::EcP384).unwrap(),
        b.fresh(KeySpec::EcP384).unwrap()
    );
    assert_ne!(
        KeySource::new(6).fresh(KeySpec::Rsa(2048)).unwrap(),
        KeySource::new(5).fresh(KeySpec::Rsa(2048)).unwrap()
    );
    assert!(a.fresh(KeySpec::Rsa(1000)).is_err());
}

/// Seed 000 Table 3 KeyUsage/EKU on the identity certificates (checked with x509 parsing by
/// openssl-independent means: the EKU OIDs are in the DER).
#[test]
fn identity_certificates_carry_table3_usages() {
    let c = cluster("A", "12.5", &["pub"], 84);
    let ipsec_eku = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x05];
    let has = |p: CertPurpose, needle: &[u8]| {
        id(&c, 0, p)
            .der()
            .windows(needle.len())
            .any(|w| w == needle)
    };
    assert!(has(CertPurpose::Ipsec, &ipsec_eku));
    assert!(!has(CertPurpose::CallManager, &ipsec_eku));
    let cm = id(&c, 0, CertPurpose::CallManager);
    assert_eq!(
        cm.not_after() - cm.not_before(),
        5 * 365 * 86_400,
        "seed 000: 5 years"
    );
    assert_eq!(
        id(&c, 0, CertPurpose::CallManagerEcdsa).key_spec(),
        KeySpec::EcP256
    );
    assert!(
        id(&c, 0, CertPurpose::Capf)
            .common_name()
            .starts_with("CAPF-")
    );
}
