//! Malformed input (spec/bad-inputs.md §2.1–2.3): every prefix and every bit flip of every vector,
//! generated round trips, and the catalogue rows that apply to the codecs. Nothing may panic,
//! and nothing altered may verify.

mod common;

use common::*;
use itlsim_wire::ErrorKind;
use itlsim_wire::cert::CertInfo;
use itlsim_wire::enc::EncryptedFile;
use itlsim_wire::header::Layout;
use itlsim_wire::sgn::SignedFile;
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::{Field, Record, TrustList, TrustListBuilder};
use itlsim_wire::tvs::{FrameHeader, Message, TvsError};
use itlsim_wire::{DecodeError, VerifyError};
use proptest::prelude::*;

/// Decodes `bytes` as what `rel` is and reports whether it is intact under the key that signed
/// the original (for trust lists: its own SAST record, as the reference verifier does).
fn verifies(rel: &str, bytes: &[u8]) -> bool {
    let (_, ccm) = key("ccm");
    if rel.starts_with("tlv/") {
        // neg_nosast has no SAST record: check it against the SAST key directly.
        let (_, sast) = key("sast");
        return match TrustList::decode(bytes) {
            Ok(t) if rel.contains("nosast") => t.verify_with(&sast.public_key).is_ok(),
            Ok(t) => t.verify_self().is_ok(),
            Err(_) => false,
        };
    }
    if rel.ends_with(".enc.sgn") {
        return EncryptedFile::decode(bytes).is_ok_and(|f| f.verify_with(&ccm.public_key).is_ok());
    }
    SignedFile::decode(bytes).is_ok_and(|f| f.verify_with(&ccm.public_key).is_ok())
}

#[test]
fn originals_verify_so_the_checks_below_mean_something() {
    for (rel, bytes) in all_signed_files() {
        let expect = !rel.contains("tampered");
        assert_eq!(verifies(&rel, &bytes), expect, "{rel}");
    }
}

#[test]
fn no_proper_prefix_of_any_vector_verifies() {
    // bad-inputs T1: every prefix; never a panic, never trusted.
    for (rel, bytes) in all_signed_files() {
        for k in 0..bytes.len() {
            assert!(
                !verifies(&rel, &bytes[..k]),
                "{rel}: prefix of {k} bytes verified"
            );
        }
    }
}

#[test]
fn no_single_bit_flip_of_any_vector_verifies() {
    // bad-inputs T21: each byte position with one bit flipped (the bit rotates with the
    // position), and all 8 bits of every position for the default ITL and the .sgn.
    for (rel, bytes) in all_signed_files() {
        if rel.contains("tampered") {
            continue;
        }
        let all_bits =
            rel.ends_with("ITLFile_sha1.tlv") || rel == "sgn/sha1/SEP001122334455.cnf.xml.sgn";
        for pos in 0..bytes.len() {
            let bits: Vec<u8> = if all_bits {
                (0..8).collect()
            } else {
                vec![(pos % 8) as u8]
            };
            for bit in bits {
                let mut b = bytes.clone();
                b[pos] ^= 1 << bit;
                assert!(
                    !verifies(&rel, &b),
                    "{rel}: flip of bit {bit} at byte {pos} verified"
                );
            }
        }
    }
}

#[test]
fn tvs_prefixes_and_flips_never_panic() {
    for conn in ["conn1", "conn2", "conn3"] {
        for dir in ["request", "response"] {
            let bytes = read(&format!("tvs/{conn}.{dir}.bin"));
            for k in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..k], 65_535).is_err(),
                    "{conn}.{dir}: prefix {k} decoded"
                );
            }
            for pos in 0..bytes.len() {
                let mut b = bytes.clone();
                b[pos] ^= 1 << (pos % 8);
                if let Ok(m) = Message::decode(&b, 65_535) {
                    assert_eq!(m.encode(), b);
                    let _ = m.request();
                    let _ = m.response();
                }
            }
        }
    }
}

fn sast_signed(records: Vec<Record>, digest: Digest) -> TrustList {
    let (k, c) = key("sast");
    let mut b =
        TrustListBuilder::new(Layout::Reference, "ITLFile.tlv", 1_800_000_000).digest(digest);
    b = b.cert(Role::SAST, &c);
    for r in records {
        b = b.record(r);
    }
    b.sign(&k.unwrap(), &c).unwrap()
}

fn arb_field() -> impl Strategy<Value = Field> {
    // Tags 2..=12 (ROLE needs 2 bytes) plus a few unknown ones, values of any bytes.
    (
        prop_oneof![2u8..=12, 13u8..=255],
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(tag, value)| {
            if tag == 4 {
                Field {
                    tag,
                    value: vec![value.first().copied().unwrap_or(0), 7],
                }
            } else {
                Field { tag, value }
            }
        })
}

fn arb_record() -> impl Strategy<Value = Record> {
    proptest::collection::vec(arb_field(), 0..8).prop_map(|mut fields| {
        // One field per tag per record (duplicates are refused, T5).
        let mut seen = std::collections::BTreeSet::new();
        fields.retain(|f| seen.insert(f.tag));
        Record::from_fields(fields).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity(records in proptest::collection::vec(arb_record(), 0..6), sha512 in any::<bool>()) {
        let digest = if sha512 { Digest::Sha512 } else { Digest::Sha1 };
        let tl = sast_signed(records.clone(), digest);
        let back = TrustList::decode(&tl.encode()).unwrap();
        prop_assert_eq!(&back, &tl);
        prop_assert_eq!(&back.records()[1..], &records[..]);
        prop_assert!(back.verify_self().is_ok());
    }

    #[test]
    fn encode_of_decode_is_identity_for_mutated_vectors(
        which in 0usize..16,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let files = all_signed_files();
        let (rel, mut bytes) = files[which % files.len()].clone();
        for (i, v) in edits {
            let pos = i.index(bytes.len());
            bytes[pos] = v;
        }
        if rel.starts_with("tlv/") {
            if let Ok(t) = TrustList::decode(&bytes) { prop_assert_eq!(t.encode(), bytes); }
        } else if rel.ends_with(".enc.sgn") {
            if let Ok(f) = EncryptedFile::decode(&bytes) { prop_assert_eq!(f.encode(), bytes); }
        } else if let Ok(f) = SignedFile::decode(&bytes) {
            prop_assert_eq!(f.encode(), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = TrustList::decode(&bytes);
        let _ = SignedFile::decode(&bytes);
        let _ = EncryptedFile::decode(&bytes);
        if let Ok(m) = Message::decode(&bytes, 65_535) { let _ = (m.request(), m.response()); }
    }
}

fn kind(e: DecodeError) -> ErrorKind {
    e.kind
}

#[test]
fn t2_length_overrun_in_a_record_is_an_error_not_a_truncation() {
    let mut b = read("tlv/ITLFile_sast_only.tlv");
    // Record starts at 420; its first field (SUBJECT_NAME) header is at 425.
    b[426] = 0x40;
    let e = TrustList::decode(&b).unwrap_err();
    assert_eq!(e.offset, 425);
    assert!(
        matches!(e.kind, ErrorKind::LengthOverrun { tag: 3, .. }),
        "{e}"
    );
}

#[test]
fn t3_header_length_out_of_range() {
    let good = read("tlv/ITLFile_sha1.tlv");
    for v in [0u16, 9, 7000, 0xffff] {
        let mut b = good.clone();
        b[8..10].copy_from_slice(&v.to_be_bytes());
        let e = TrustList::decode(&b).unwrap_err();
        assert_eq!(e.code(), "bad-header-length", "value {v}: {e}");
    }
    // One byte less than the real value: the TIMESTAMP crosses the header end.
    let mut b = good.clone();
    b[8..10].copy_from_slice(&419u16.to_be_bytes());
    assert!(matches!(
        kind(TrustList::decode(&b).unwrap_err()),
        ErrorKind::ElementCrossesHeaderEnd { tag: 15 }
    ));
    // One byte more: the header swallows a byte of the first record, and the records no longer parse.
    let mut b = good;
    b[8..10].copy_from_slice(&421u16.to_be_bytes());
    assert!(TrustList::decode(&b).is_err());
}

#[test]
fn t4_bad_record_lengths() {
    let good = read("tlv/ITLFile_sha1.tlv");
    for v in [0u16, 4, 60000] {
        let mut b = good.clone();
        b[423..425].copy_from_slice(&v.to_be_bytes());
        assert!(
            matches!(
                kind(TrustList::decode(&b).unwrap_err()),
                ErrorKind::BadRecord { index: 0, .. }
            ),
            "value {v}"
        );
    }
    // A record length one short: the last field crosses the record end.
    let mut b = good;
    let len = u16::from_be_bytes([b[423], b[424]]);
    b[423..425].copy_from_slice(&(len - 1).to_be_bytes());
    assert!(TrustList::decode(&b).is_err());
}

#[test]
fn t5_duplicate_header_tags_are_refused() {
    // Build a header by hand with two FILENAME elements and check the decoder names it.
    let good = read("tlv/ITLFile_sast_only.tlv");
    let tl = TrustList::decode(&good).unwrap();
    let mut header = Vec::new();
    tl.envelope().encode_header(&mut header);
    // Replace the TIMESTAMP (tag 15, 7 bytes at 413) by a second FILENAME of the same size.
    let mut b = good.clone();
    b[413..420].copy_from_slice(&[14, 0, 4, b'x', b'y', b'z', 0]);
    let e = TrustList::decode(&b).unwrap_err();
    assert_eq!(e.offset, 413);
    assert!(matches!(e.kind, ErrorKind::DuplicateTag { tag: 14 }), "{e}");
}

#[test]
fn t6_two_sast_records_with_the_signer_serial_but_different_certificates_are_ambiguous() {
    let (_, sast) = key("sast");
    let (_, sast2) = key("sast2");
    // A look-alike: sast2's certificate under sast's serial and issuer strings.
    let mut fake = Record::from_cert(Role::SAST, &sast2, &Default::default());
    let fields: Vec<Field> = fake
        .fields()
        .map(|(tag, value)| match tag {
            6 => Field {
                tag: 6,
                value: sast.serial.clone(),
            },
            5 => Field {
                tag: 5,
                value: itlsim_wire::header::nul_terminated(
                    &sast.issuer_dn(itlsim_wire::cert::DnStyle::Reference),
                ),
            },
            _ => Field {
                tag,
                value: value.to_vec(),
            },
        })
        .collect();
    fake = Record::from_fields(fields).unwrap();
    let tl = sast_signed(vec![fake], Digest::Sha1);
    assert!(matches!(
        tl.verify_self(),
        Err(VerifyError::AmbiguousSigner { count: 2, .. })
    ));
}

#[test]
fn t12_large_itls_parse_and_over_64k_is_flagged() {
    let (_, ccm) = key("ccm");
    let rec = Record::from_cert(Role::CCM_TFTP, &ccm, &Default::default());
    // 45 certificates, about 83 KB: readable, over the phone limit (E10).
    let big = sast_signed(vec![rec.clone(); 44], Digest::Sha1);
    assert!(big.raw().len() > 65_536);
    assert!(big.over_phone_limit());
    assert!(big.verify_self().is_ok());
    // 1,000 records, about 1.8 MB.
    let huge = sast_signed(vec![rec; 999], Digest::Sha512);
    let back = TrustList::decode(huge.raw()).unwrap();
    assert_eq!(back.records().len(), 1000);
    assert!(back.verify_self().is_ok());
}

#[test]
fn t13_padding_floods_and_deep_nesting_hit_caps() {
    // A header of 2,000 padding bytes.
    let mut b = vec![1, 0, 2, 1, 2];
    let hl = 10 + 2000;
    b.extend_from_slice(&[2, 0, 2]);
    b.extend_from_slice(&(hl as u16).to_be_bytes());
    b.extend(std::iter::repeat_n(13u8, 2000));
    assert!(matches!(
        kind(TrustList::decode(&b).unwrap_err()),
        ErrorKind::TooMany { .. }
    ));
    // Containers nested 6 deep, each a different container tag (3 inside 7 inside 9 ...).
    let mut inner: Vec<u8> = vec![];
    for i in 0..6 {
        let tag = [3u8, 7, 9, 16, 17, 21][i % 6];
        let mut e = vec![tag];
        e.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        e.extend_from_slice(&inner);
        inner = e;
    }
    let mut b = vec![1, 0, 2, 1, 2, 2, 0, 2];
    b.extend_from_slice(&((10 + inner.len()) as u16).to_be_bytes());
    b.extend_from_slice(&inner);
    assert!(matches!(
        kind(TrustList::decode(&b).unwrap_err()),
        ErrorKind::NestingTooDeep(4)
    ));
}

#[test]
fn t16_rsa_1024_signers_verify() {
    let tl = TrustList::decode(&read("tlv/ITLFile_sast1024.tlv")).unwrap();
    assert_eq!(tl.info().modulus_code, 1);
    assert_eq!(
        tl.verify_self()
            .unwrap()
            .record
            .verifying_key()
            .unwrap()
            .bits(),
        1024
    );
}

#[test]
fn t17_modulus_code_and_signature_length_must_agree() {
    let mut b = read("tlv/ITLFile_sha1.tlv");
    b[138] = 3; // SIGNATURE_MODULUS at 135: value byte at 138, says 512 bytes
    assert!(matches!(
        kind(TrustList::decode(&b).unwrap_err()),
        ErrorKind::SignatureLengthMismatch {
            code: 3,
            len: 256,
            expected: 512
        }
    ));
}

#[test]
fn t18_an_ec_signer_is_refused_with_a_clear_error() {
    let (_, ec) = key("tftp_ec");
    let tl = TrustList::decode(&read("tlv/ITLFile_v11_ec.tlv")).unwrap();
    match tl.verify_with(&ec.public_key) {
        Err(VerifyError::UnsupportedSignerKey(k)) => assert_eq!(k, "EC P-384"),
        other => panic!("{other:?}"),
    }
    // EC certificates in records are fine.
    let tftp = tl.with_role(Role::TFTP).next().unwrap();
    assert_eq!(tftp.public_key().unwrap().len(), 97);
    assert_eq!(
        CertInfo::parse(tftp.certificate().unwrap())
            .unwrap()
            .public_key,
        ec.public_key
    );
}

#[test]
fn t9e_digest_code_swapped_does_not_verify() {
    // The file says SHA-512 but was signed with SHA-1.
    let mut b = read("tlv/ITLFile_sha1.tlv");
    b[127] = 3; // HASH_ALGORITHM value at 124 + 3
    let t = TrustList::decode(&b).unwrap();
    assert_eq!(t.info().digest, Digest::Sha512);
    assert_eq!(t.verify_self().unwrap_err(), VerifyError::BadSignature);
    // SHA-256 (code 2) is refused like the reference does.
    b[127] = 2;
    assert!(matches!(
        kind(TrustList::decode(&b).unwrap_err()),
        ErrorKind::UnknownDigest(2)
    ));
}

#[test]
fn sgn_edge_cases() {
    let good = read("sgn/sha1/SEP001122334455.cnf.xml.sgn");
    // Header only, no payload (bad-inputs §2.2).
    assert!(matches!(
        kind(SignedFile::decode(&good[..544]).unwrap_err()),
        ErrorKind::EmptyPayload
    ));
    // A trust list is not a .sgn (version 1.2 is accepted as 1.x; the TLV header is the same) but
    // an .enc.sgn is refused by the .sgn decoder and vice versa.
    let enc = read("enc/SEP001122334455.cnf.xml.enc.sgn");
    assert!(matches!(
        kind(SignedFile::decode(&enc).unwrap_err()),
        ErrorKind::BadVersion { major: 2, .. }
    ));
    assert!(matches!(
        kind(EncryptedFile::decode(&good).unwrap_err()),
        ErrorKind::BadVersion { major: 1, .. }
    ));
}

#[test]
fn tvs_frames_v4_to_v9() {
    let good = read("tvs/conn1.request.bin");
    // V4: protocol id, version.
    let mut b = good.clone();
    b[0] = 88;
    assert_eq!(
        Message::decode(&b, 65_535).unwrap_err(),
        TvsError::BadProtocol(88)
    );
    let mut b = good.clone();
    b[1] = 2;
    assert_eq!(
        Message::decode(&b, 65_535).unwrap_err(),
        TvsError::BadVersion(2)
    );
    // A response command where a request is expected.
    let mut b = good.clone();
    b[2] = 2;
    assert_eq!(
        Message::decode(&b, 65_535).unwrap().request().unwrap_err(),
        TvsError::UnexpectedCommand(2)
    );
    // V5: body over the cap is refused from the header alone.
    assert!(matches!(
        Message::decode(&good[..10], 1000),
        Err(TvsError::BodyTooLarge {
            len: 1110,
            max: 1000
        })
    ));
    // V5: length 0 → missing device name.
    let empty = [87, 1, 1, 0, 0, 0, 0, 1, 0, 0];
    assert_eq!(
        Message::decode(&empty, 100).unwrap().request(),
        Err(TvsError::Missing { tag: 1, offset: 10 })
    );
    // V6: trailing bytes after the frame.
    let mut b = good.clone();
    b.push(0);
    assert!(Message::decode(&b, 65_535).is_err());
    // V7: missing 0x01 prefix; control characters.
    let mut b = good.clone();
    b[13] = b'C';
    assert!(matches!(
        Message::decode(&b, 65_535).unwrap().request(),
        Err(TvsError::BadDeviceName { offset: 10, .. })
    ));
    let m = Message::verify_request(1, "CP-7975\nSEP001122334455", b"x");
    match m.request() {
        Err(TvsError::BadDeviceName { offset: 10, detail }) => {
            assert!(
                detail.contains("\\x0a") && !detail.contains('\n'),
                "{detail}"
            )
        }
        other => panic!("{other:?}"),
    }
    // V9: two certificates.
    let mut m = Message::decode(&good, 65_535).unwrap();
    m.elements.push(m.elements[1].clone());
    assert_eq!(
        m.request().unwrap_err(),
        TvsError::Duplicate {
            tag: 2,
            offset: 1120,
            first: 37
        }
    );
}

/// A frame from its header fields and `(tag, value)` elements, built byte by byte (not with
/// `Message::encode`, so the offsets below are checked against an independent layout).
fn frame(command: u8, elements: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, value) in elements {
        body.push(*tag);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut b = vec![87, 1, command, 0, 0, 0, 0, 9];
    b.extend_from_slice(&(body.len() as u16).to_be_bytes());
    b.extend_from_slice(&body);
    b
}

#[test]
fn tvs_element_errors_name_the_byte_offset_tag_and_field() {
    let dev: &[u8] = b"\x01CP-7975-SEP001122334455"; // 24 bytes: element at 10, next at 37
    let cert = read("keys/ccm.crt.der"); // 1,080 bytes
    let req = |elements: &[(u8, &[u8])]| {
        Message::decode(&frame(1, elements), 65_535)
            .unwrap()
            .request()
            .unwrap_err()
    };
    let resp = |elements: &[(u8, &[u8])]| {
        Message::decode(&frame(2, elements), 65_535)
            .unwrap()
            .response()
            .unwrap_err()
    };

    // Duplicate: the second certificate starts after the first (37 + 3 + 1,080); an unknown tag
    // in between shifts it by its 3 + 2 bytes.
    let e = req(&[(1, dev), (2, &cert), (6, b"zz"), (2, &cert)]);
    assert_eq!(
        e,
        TvsError::Duplicate {
            tag: 2,
            offset: 1125,
            first: 37
        }
    );
    assert_eq!(
        e.to_string(),
        "duplicate element tag 2 (certificate) at byte offset 1125, first at 37"
    );
    // A duplicate device name is reported before anything else is read.
    assert_eq!(
        req(&[(1, dev), (1, dev)]),
        TvsError::Duplicate {
            tag: 1,
            offset: 37,
            first: 10
        }
    );

    // Missing: the offset is the end of the frame, where the search ran out.
    let e = req(&[(1, dev), (9, &[0; 4])]);
    assert_eq!(e, TvsError::Missing { tag: 2, offset: 44 });
    assert_eq!(
        e.to_string(),
        "missing element tag 2 (certificate) in the frame ending at byte offset 44"
    );
    assert_eq!(
        resp(&[(8, &[2]), (9, &[0; 4])]),
        TvsError::Missing { tag: 7, offset: 21 }
    );

    // Bad elements: the offset of the element's tag byte.
    let e = req(&[(1, dev), (2, b"")]);
    assert_eq!(
        e,
        TvsError::BadElement {
            tag: 2,
            offset: 37,
            detail: "empty".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "bad element tag 2 (certificate) at byte offset 37: empty"
    );
    let e = resp(&[(7, &[0]), (8, &[2, 7]), (9, &[0, 0, 14])]);
    assert_eq!(
        e,
        TvsError::BadElement {
            tag: 9,
            offset: 19,
            detail: "3 bytes, not 4".into()
        }
    );
    assert!(
        e.to_string().contains("tag 9 (TTL) at byte offset 19"),
        "{e}"
    );
    assert!(matches!(
        resp(&[(8, &[]), (7, &[0, 0])]),
        TvsError::BadElement {
            tag: 7,
            offset: 13,
            ..
        }
    ));

    // Bad device name after an unknown element.
    let e = req(&[(200, b"x"), (1, b"CP-7975"), (2, &cert)]);
    assert!(
        matches!(&e, TvsError::BadDeviceName { offset: 14, detail } if detail.contains("0x01")),
        "{e:?}"
    );
    assert!(e.to_string().contains("tag 1 at byte offset 14"), "{e}");

    // The same offsets when the header is read separately (the server's path).
    let b = frame(1, &[(1, dev), (2, &cert), (2, &cert)]);
    let head = FrameHeader::decode(&b[..10]).unwrap();
    let m = Message::decode_body(head, &b[10..]).unwrap();
    assert_eq!(
        m.request().unwrap_err(),
        TvsError::Duplicate {
            tag: 2,
            offset: 1120,
            first: 37
        }
    );

    // Header errors name their fixed offsets too.
    let mut b = frame(1, &[(1, dev)]);
    b[0] = 71;
    assert!(
        Message::decode(&b, 100)
            .unwrap_err()
            .to_string()
            .contains("at byte offset 0")
    );
}
