//! Conformance with the reference-made vectors (`testdata/`, see its README): every file decodes,
//! re-encodes byte for byte, verifies (or fails exactly as documented), and files rebuilt from the
//! same keys, timestamp and records equal the reference bytes.

mod common;

use common::*;
use itlsim_wire::cert::CertInfo;
use itlsim_wire::enc::{EncryptOptions, EncryptedFile, encrypt};
use itlsim_wire::header::Layout;
use itlsim_wire::sgn::{SignOptions, SignedFile, sign};
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::{Record, RecordStyle, TrustList, TrustListBuilder};
use itlsim_wire::tvs::{Command, Message, Request, Response, Status};
use itlsim_wire::{DecodeError, VerifyError};
use sha1::Digest as _;

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_tlv_vector_decodes_and_reencodes_byte_for_byte() {
    let files = tlv_files();
    assert_eq!(
        files.len(),
        12,
        "expected the 12 .tlv vectors, got {files:?}"
    );
    for name in files {
        let bytes = read(&format!("tlv/{name}"));
        let tl = TrustList::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tl.encode(), bytes, "{name}: re-encoding differs");
        let stem = name.trim_end_matches(".tlv");
        let m = json(&format!("tlv/{stem}.manifest.json"));
        assert_eq!(
            tl.info().header_length as u64,
            m["header_length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            tl.info().padding as u64,
            m["padding_bytes"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            tl.records().len(),
            m["records"].as_array().unwrap().len(),
            "{name}"
        );
        let signed = tl.envelope().signed_data();
        assert_eq!(
            signed.len() as u64,
            m["signed_data"]["len"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex_of(&sha1::Sha1::digest(&signed)),
            m["signed_data"]["sha1"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            tl.envelope().signed_ranges().0.end as u64,
            m["signature"]["tlv_off"].as_u64().unwrap(),
            "{name}"
        );
        for (rec, mrec) in tl.records().iter().zip(m["records"].as_array().unwrap()) {
            assert_eq!(
                rec.encoded_len() as u64,
                mrec["record_length"].as_u64().unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn positive_tlv_vectors_verify_with_their_sast_record() {
    for name in tlv_files().into_iter().filter(|n| !n.starts_with("neg_")) {
        let tl = TrustList::decode(&read(&format!("tlv/{name}"))).unwrap();
        let signer = tl.verify_self().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signer.record.role(), Some(Role::SAST), "{name}");
        assert_eq!(
            signer.record.serial(),
            Some(tl.info().serial.as_slice()),
            "{name}"
        );
    }
}

#[test]
fn tampered_itl_fails_with_bad_signature() {
    let bytes = read("tlv/neg_ITLFile_tampered.tlv");
    let tl = TrustList::decode(&bytes).unwrap();
    assert_eq!(tl.verify_self().unwrap_err(), VerifyError::BadSignature);
    // The only difference from the good file is byte 1980 ("cucm" -> "Xucm").
    let good = read("tlv/ITLFile_sha1.tlv");
    let diff: Vec<usize> = (0..good.len()).filter(|i| good[*i] != bytes[*i]).collect();
    assert_eq!(diff, vec![1980]);
}

#[test]
fn itl_without_sast_record_fails_with_missing_signer() {
    let tl = TrustList::decode(&read("tlv/neg_ITLFile_nosast.tlv")).unwrap();
    match tl.verify_self() {
        Err(VerifyError::MissingSigner { serial }) => {
            assert_eq!(serial, "b22d4af8c3a9b8707c8920cf5a89612a")
        }
        other => panic!("expected MissingSigner, got {other:?}"),
    }
    // It is signed correctly though: the SAST key verifies it once supplied from outside.
    let (_, sast) = key("sast");
    tl.verify_with(&sast.public_key).unwrap();
}

#[test]
fn documented_header_facts_of_itlfile_sha1() {
    let tl = TrustList::decode(&read("tlv/ITLFile_sha1.tlv")).unwrap();
    let i = tl.info();
    assert_eq!(i.version, (1, 2));
    assert_eq!(i.header_length, 420);
    assert_eq!(i.signer_version, Some((1, 0)));
    assert_eq!(
        i.signer_name_text(),
        "CN=SAST,O=Example Test Cluster,OU=SAST"
    );
    assert_eq!(i.serial_hex(), "b22d4af8c3a9b8707c8920cf5a89612a");
    assert_eq!(i.digest, Digest::Sha1);
    assert_eq!(i.modulus_code, 2);
    assert_eq!(i.filename_text(), "ITLFile.tlv");
    assert_eq!(i.timestamp, Some(0x6b02_9534));
    let roles: Vec<Role> = tl.records().iter().map(|r| r.role().unwrap()).collect();
    assert_eq!(
        roles,
        vec![Role::SAST, Role::CCM_TFTP, Role::TVS, Role::CAPF]
    );
    assert!(!tl.is_empty_itl());
    assert!(!tl.over_phone_limit());
}

#[test]
fn sast_only_and_blanked_itls_are_empty_itls() {
    for name in ["ITLFile_sast_only.tlv", "ITLFile_blanked.tlv"] {
        let tl = TrustList::decode(&read(&format!("tlv/{name}"))).unwrap();
        // The blanked one keeps CCM+TFTP/TVS role records, but without certificates or keys.
        let blank = tl.records().iter().filter(|r| r.is_blank()).count();
        assert!(tl.is_empty_itl(), "{name}");
        assert_eq!(
            blank,
            if name == "ITLFile_sast_only.tlv" {
                0
            } else {
                2
            },
            "{name}"
        );
    }
}

/// The key file whose certificate has this serial.
fn key_for_serial(serial: &[u8]) -> (itlsim_wire::crypto::SigningKey, CertInfo) {
    for n in KEY_NAMES {
        let (k, c) = key(n);
        if c.serial == serial {
            return (k.expect("private key"), c);
        }
    }
    panic!("no key with serial {}", hex_of(serial));
}

#[test]
fn rebuilding_reference_tlv_vectors_gives_identical_bytes() {
    // Reference-tool files: records rebuilt from the certificates alone.
    let reference = [
        "ITLFile_sha1.tlv",
        "ITLFile_sha512.tlv",
        "ITLFile_sast_only.tlv",
        "ITLFile_v11_ec.tlv",
        "ITLFile_sast1024.tlv",
        "ITLFile_sast2_pad2.tlv",
        "ITLSEP001122334455.tlv",
        "CTLFile.tlv",
        "neg_ITLFile_nosast.tlv",
    ];
    for name in reference {
        let bytes = read(&format!("tlv/{name}"));
        let tl = TrustList::decode(&bytes).unwrap();
        let i = tl.info();
        let mut b =
            TrustListBuilder::new(Layout::Reference, &i.filename_text(), i.timestamp.unwrap())
                .digest(i.digest)
                .signer_version(i.signer_version);
        for rec in tl.records() {
            let cert = CertInfo::parse(rec.certificate().unwrap()).unwrap();
            let rebuilt = Record::from_cert(rec.role().unwrap(), &cert, &RecordStyle::default());
            assert_eq!(
                &rebuilt,
                rec,
                "{name}: record for {} differs",
                rec.subject_text()
            );
            b = b.cert(rec.role().unwrap(), &cert);
        }
        let (k, c) = key_for_serial(&i.serial);
        let built = b.sign(&k, &c).unwrap();
        assert_eq!(built.raw(), &bytes[..], "{name}: rebuilt file differs");
    }
}

#[test]
fn rebuilding_cucm_layout_vectors_gives_identical_bytes() {
    for name in ["CTLFile_cucmstyle.tlv", "ITLFile_blanked.tlv"] {
        let bytes = read(&format!("tlv/{name}"));
        let tl = TrustList::decode(&bytes).unwrap();
        let i = tl.info();
        assert_eq!(
            i.signer_version, None,
            "{name}: CUCM headers carry no tag 28"
        );
        let mut b = TrustListBuilder::new(Layout::Cucm, &i.filename_text(), i.timestamp.unwrap())
            .digest(i.digest);
        for rec in tl.records() {
            if let Some(der) = rec.certificate() {
                // Records with certificates are reproducible from the certificate plus DNS/IP.
                let cert = CertInfo::parse(der).unwrap();
                let style = RecordStyle {
                    layout: Layout::Cucm,
                    omit_signature: rec.field(8).is_none(),
                    dns_name: rec.dns_name().map(itlsim_wire::header::display_string),
                    ip: rec.ip_address().map(|ip| ip.try_into().unwrap()),
                };
                assert_eq!(
                    &Record::from_cert(rec.role().unwrap(), &cert, &style),
                    rec,
                    "{name}"
                );
            }
            b = b.record(rec.clone());
        }
        let (k, c) = key_for_serial(&i.serial);
        assert_eq!(b.sign(&k, &c).unwrap().raw(), &bytes[..], "{name}");
    }
}

#[test]
fn sgn_vectors_decode_verify_and_rebuild_for_sha1_and_sha512() {
    let src = read("src/SEP001122334455.cnf.xml");
    let (ccm_key, ccm) = key("ccm");
    let ccm_key = ccm_key.unwrap();
    for (dir, digest) in [("sha1", Digest::Sha1), ("sha512", Digest::Sha512)] {
        let bytes = read(&format!("sgn/{dir}/SEP001122334455.cnf.xml.sgn"));
        let f = SignedFile::decode(&bytes).unwrap();
        assert_eq!(f.encode(), bytes);
        assert_eq!(f.info().version, (1, 0));
        assert_eq!(f.info().header_length, 544);
        assert_eq!(f.info().padding, 1);
        assert_eq!(f.info().digest, digest);
        assert_eq!(f.payload(), &src[..]);
        f.verify_with(&ccm.public_key).unwrap();
        // Another key does not verify it.
        let (_, other) = key("unknown");
        assert_eq!(
            f.verify_with(&other.public_key).unwrap_err(),
            VerifyError::BadSignature
        );
        let opts = SignOptions {
            filename: "SEP001122334455.cnf.xml.sgn",
            digest,
            timestamp: f.info().timestamp.unwrap(),
            layout: Layout::Reference,
        };
        let built = sign(&src, &opts, &ccm_key, &ccm).unwrap();
        assert_eq!(
            built.envelope().raw(),
            &bytes[..],
            "{dir}: rebuilt .sgn differs"
        );
    }
}

#[test]
fn enc_sgn_vector_decodes_verifies_and_decrypts_to_the_source() {
    let bytes = read("enc/SEP001122334455.cnf.xml.enc.sgn");
    let f = EncryptedFile::decode(&bytes).unwrap();
    assert_eq!(f.encode(), bytes);
    assert_eq!(f.info().version, (2, 0));
    assert_eq!(f.info().header_length, 884);
    let e = f.encryption();
    assert_eq!(e.padding_count, 2);
    assert_eq!(e.key_size, 2048);
    assert_eq!(
        hex_of(&e.plaintext_hash),
        "9ac9d36bb095732cf8ad7278bf6eee699c741455"
    );
    let (_, ccm) = key("ccm");
    f.verify_with(&ccm.public_key).unwrap();
    let (device_key, device) = key("device");
    let device_key = device_key.unwrap();
    let pt = f.decrypt(&device_key).unwrap();
    assert_eq!(pt, read("src/SEP001122334455.cnf.xml"));
    // Another phone's key cannot decrypt it.
    let (unknown_key, _) = key("unknown");
    assert!(f.decrypt(&unknown_key.unwrap()).is_err());
    // The stub .sgn written beside it verifies and names the phone certificate's MD5.
    let stub = SignedFile::decode(&read("enc/SEP001122334455.cnf.xml.sgn")).unwrap();
    stub.verify_with(&ccm.public_key).unwrap();
    let md5 = hex_of(&device.md5());
    assert_eq!(md5, "77e76139a0f85e77e9b3a97a1146e329");
    assert!(String::from_utf8_lossy(stub.payload()).contains(&md5));
}

#[test]
fn our_encryption_with_the_vectors_key_and_iv_gives_the_same_ciphertext() {
    let vector = EncryptedFile::decode(&read("enc/SEP001122334455.cnf.xml.enc.sgn")).unwrap();
    let (device_key, device) = key("device");
    let aes_key: [u8; 16] = device_key
        .unwrap()
        .unwrap(&vector.encryption().wrapped_key)
        .unwrap()
        .try_into()
        .unwrap();
    let (ccm_key, ccm) = key("ccm");
    let opts = EncryptOptions {
        filename: "SEP001122334455.cnf.xml.enc.sgn",
        digest: Digest::Sha1,
        plaintext_digest: Digest::Sha1,
        timestamp: vector.info().timestamp.unwrap(),
        layout: Layout::Reference,
        aes_key,
        iv: vector.encryption().iv,
    };
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(7);
    let ours = encrypt(
        &read("src/SEP001122334455.cnf.xml"),
        &device,
        &opts,
        &ccm_key.unwrap(),
        &ccm,
        &mut rng,
    )
    .unwrap();
    // The wrapped key differs (PKCS#1 v1.5 encryption padding is random); everything else matches.
    assert_eq!(ours.envelope().body(), vector.envelope().body());
    assert_eq!(ours.info().header_length, vector.info().header_length);
    assert_eq!(
        ours.encryption().plaintext_hash,
        vector.encryption().plaintext_hash
    );
    ours.verify_with(&ccm.public_key).unwrap();
}

#[test]
fn tvs_captures_decode_to_documented_fields_and_reencode() {
    let ccm_der = read("keys/ccm.crt.der");
    let sast_der = read("keys/sast.crt.der");
    let unknown_der = read("keys/unknown.crt.der");
    #[allow(clippy::type_complexity)] // one row per captured connection, six columns
    let cases: [(&str, &str, &[u8], Status, Vec<Role>, Option<u32>); 3] = [
        (
            "conn1",
            "CP-7975-SEP001122334455",
            &ccm_der,
            Status::Valid,
            vec![Role::CCM_TFTP, Role::APP_SERVER],
            Some(3600),
        ),
        (
            "conn2",
            "CP-8845-SEPAABBCCDDEEFF",
            &sast_der,
            Status::Valid,
            vec![Role::SAST],
            Some(86400),
        ),
        (
            "conn3",
            "CP-7975-SEP001122334455",
            &unknown_der,
            Status::Invalid,
            vec![],
            None,
        ),
    ];
    for (conn, device, cert, status, roles, ttl) in cases {
        let req_bytes = read(&format!("tvs/{conn}.request.bin"));
        let req = Message::decode(&req_bytes, 65_535).unwrap();
        assert_eq!(req.encode(), req_bytes, "{conn}");
        assert_eq!(
            (req.command, req.session_id, req.reserved),
            (Command::VERIFY_REQUEST, 1, 0)
        );
        assert_eq!(
            req.request().unwrap(),
            Request::Verify {
                device_name: device.into(),
                certificate: cert.to_vec()
            }
        );
        assert_eq!(
            Message::verify_request(1, device, cert).encode(),
            req_bytes,
            "{conn}: built request differs"
        );
        let resp_bytes = read(&format!("tvs/{conn}.response.bin"));
        let resp = Message::decode(&resp_bytes, 65_535).unwrap();
        assert_eq!(resp.encode(), resp_bytes, "{conn}");
        assert_eq!(resp.command, Command::VERIFY_RESPONSE);
        let r = resp.response().unwrap();
        assert_eq!(
            (r.status, r.roles.clone(), r.ttl, r.certificate.clone()),
            (status, roles, ttl, None),
            "{conn}"
        );
        assert_eq!(
            Message::response_to(&req, &r).encode(),
            resp_bytes,
            "{conn}: built response differs"
        );
    }
}

#[test]
fn tvs_query_exchange_round_trips_with_certificate_in_the_answer() {
    let (_, ccm) = key("ccm");
    let q = Message::query_request(
        0x3e9,
        "CP-8861-SEPB000B4BA0AEE",
        b"CN=ucm;O=x",
        b"CN=ucm;O=x",
        &ccm.serial,
    );
    let bytes = q.encode();
    assert_eq!(&bytes[..4], &[0x57, 1, 3, 0]);
    let back = Message::decode(&bytes, 16 * 1024).unwrap();
    match back.request().unwrap() {
        Request::Query {
            device_name,
            subject,
            issuer,
            serial,
        } => {
            assert_eq!(device_name, "CP-8861-SEPB000B4BA0AEE");
            assert_eq!(subject, b"CN=ucm;O=x");
            assert_eq!(issuer.as_deref(), Some(&b"CN=ucm;O=x"[..]));
            assert_eq!(serial, Some(ccm.serial.clone()));
        }
        other => panic!("{other:?}"),
    }
    let answer = Response {
        status: Status::Valid,
        certificate: Some(ccm.der.clone()),
        roles: vec![Role::SAST, Role::TFTP],
        ttl: Some(86400),
    };
    let resp = Message::response_to(&back, &answer);
    assert_eq!(resp.command, Command::QUERY_RESPONSE);
    assert_eq!(resp.session_id, 0x3e9);
    let tags: Vec<u8> = resp.elements.iter().map(|e| e.tag).collect();
    assert_eq!(tags, vec![7, 2, 8, 9], "CUCM's order in TAC 213407");
    assert_eq!(
        Message::decode(&resp.encode(), 16 * 1024)
            .unwrap()
            .response()
            .unwrap(),
        answer
    );
}

#[test]
fn pem_bundles_load_every_test_key() {
    for n in KEY_NAMES {
        let (k, c) = key(n);
        let der = read(&format!("keys/{n}.crt.der"));
        assert_eq!(c.der, der, "{n}");
        match *n {
            "tftp_ec" => assert!(k.is_none()),
            _ => assert_eq!(
                k.unwrap().public_key(),
                &c.public_key,
                "{n}: key and certificate disagree"
            ),
        }
    }
    // The SAST serial has its top bit set: 17 DER bytes, 16 stored (§2.5).
    let (_, sast) = key("sast");
    assert_eq!(hex_of(&sast.serial), "b22d4af8c3a9b8707c8920cf5a89612a");
    let (_, app) = key("app_server");
    assert_eq!(app.serial, vec![1, 2]);
}

#[test]
fn decode_errors_name_the_offset_and_tag() {
    let mut bytes = read("tlv/ITLFile_sha1.tlv");
    // Make the SIGNER_NAME (tag 4 at offset 18) claim 0x0400 bytes: it crosses its container.
    bytes[19] = 0x04;
    bytes[20] = 0x00;
    let e: DecodeError = TrustList::decode(&bytes).unwrap_err();
    assert_eq!(e.offset, 18);
    assert_eq!(e.code(), "length-overrun");
    assert!(e.to_string().contains("SIGNER_NAME"), "{e}");
}

#[test]
fn fast_key_extraction_agrees_with_the_full_certificate_parse() {
    for n in KEY_NAMES {
        let (_, c) = key(n);
        assert_eq!(
            itlsim_wire::cert::public_key_of(&c.der).unwrap(),
            c.public_key,
            "{n}"
        );
    }
}
