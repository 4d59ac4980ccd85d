//! Bodies of the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`), here so that the seed corpus also
//! runs as an ordinary test on stable (`wire/tests/fuzz_seeds.rs`). Each one decodes untrusted
//! bytes and checks the round-trip property `encode(decode(b)) == b`; a violation panics, which
//! is what a fuzzer reports.

use crate::enc::EncryptedFile;
use crate::sgn::SignedFile;
use crate::tlv::TrustList;
use crate::tvs::Message;

/// `.tlv` trust lists.
pub fn tlv(data: &[u8]) {
    if let Ok(t) = TrustList::decode(data) {
        assert_eq!(t.encode(), data, "trust list re-encodes differently");
        let _ = t.signer();
        let _ = t.is_empty_itl();
        for r in t.records() {
            let _ = r.verifying_key();
        }
    }
}

/// `.sgn` signed files.
pub fn sgn(data: &[u8]) {
    if let Ok(f) = SignedFile::decode(data) {
        assert_eq!(f.encode(), data, ".sgn re-encodes differently");
    }
}

/// `.enc.sgn` encrypted files.
pub fn enc_sgn(data: &[u8]) {
    if let Ok(f) = EncryptedFile::decode(data) {
        assert_eq!(f.encode(), data, ".enc.sgn re-encodes differently");
    }
}

/// TVS frames, both directions.
pub fn tvs_frame(data: &[u8]) {
    if let Ok(m) = Message::decode(data, 65_535) {
        assert_eq!(m.encode(), data, "TVS frame re-encodes differently");
        let _ = m.request();
        let _ = m.response();
    }
}
