//! The only module that touches `wire`: decoding served files once per distinct content (interned
//! by SHA-256 behind `Arc`), signature checks through a bounded memo keyed by (file hash, key
//! hash), and the verified types. [`VerifiedList`] has private fields and is built only by
//! [`Env::verify_list_with`] / [`Env::verify_list_self`] after the RSA check passed, so no code
//! path can install a trust list whose signature did not verify.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use itlsim_wire::VerifyError;
use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PublicKey, SigningKey};
use itlsim_wire::enc::EncryptedFile;
use itlsim_wire::sgn::SignedFile;
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::TrustList;
use sha2::{Digest as _, Sha256};

use crate::config::PhoneConfig;
use crate::event::Blob;
use crate::knobs::Knobs;
use crate::trust::{Reason, RoleSet};

/// Who a signer or certificate is: subject, issuer (as text) and minimal serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Subject DN text.
    pub subject: String,
    /// Issuer DN text.
    pub issuer: String,
    /// Minimal unsigned big-endian serial.
    pub serial: Vec<u8>,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" serial {}",
            self.subject,
            hex::encode(&self.serial)
        )
    }
}

/// A verifying key and the SHA-256 of its encoding (the memo key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    key: PublicKey,
    id: [u8; 32],
}

impl KeyRef {
    fn new(key: PublicKey) -> Self {
        let id = match &key {
            PublicKey::Rsa { der, .. } => Sha256::digest(der).into(),
            PublicKey::Ec { point, .. } => Sha256::digest(point).into(),
            PublicKey::Other(oid) => Sha256::digest(oid.as_bytes()).into(),
        };
        KeyRef { key, id }
    }

    /// The key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
}

/// A parsed certificate (TVS answers, TLS server certificates), interned by DER hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    sha256: [u8; 32],
    id: Arc<Identity>,
    key: KeyRef,
    not_before: i64,
    not_after: i64,
}

impl Cert {
    /// SHA-256 of the DER.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Subject, issuer, serial.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.id
    }

    /// An EC key.
    pub fn is_ec(&self) -> bool {
        matches!(self.key.key, PublicKey::Ec { .. })
    }

    /// Inside notBefore..=notAfter at `unix_s`.
    pub fn valid_at(&self, unix_s: i64) -> bool {
        (self.not_before..=self.not_after).contains(&unix_s)
    }

    /// The key.
    pub fn key(&self) -> &KeyRef {
        &self.key
    }

    fn from_info(sha256: [u8; 32], info: &CertInfo) -> Cert {
        Cert {
            sha256,
            id: Arc::new(Identity {
                subject: info.subject_dn(itlsim_wire::cert::DnStyle::Reference),
                issuer: info.issuer_dn(itlsim_wire::cert::DnStyle::Reference),
                serial: info.serial.clone(),
            }),
            key: KeyRef::new(info.public_key.clone()),
            not_before: info.not_before,
            not_after: info.not_after,
        }
    }
}

/// One record of a trust list, reduced to what the rules use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    /// Role.
    pub role: Role,
    /// Subject, issuer, serial as stored in the record.
    pub id: Arc<Identity>,
    key: Option<KeyRef>,
    cert_sha256: Option<[u8; 32]>,
    validity: Option<(i64, i64)>,
}

impl Rec {
    /// Hash of the verifying key, when the record has one.
    pub fn key_id(&self) -> Option<&[u8; 32]> {
        self.key.as_ref().map(|k| &k.id)
    }

    /// SHA-256 of the record's certificate DER.
    pub fn cert_sha256(&self) -> Option<&[u8; 32]> {
        self.cert_sha256.as_ref()
    }

    /// The verifying key.
    pub fn key(&self) -> Option<&KeyRef> {
        self.key.as_ref()
    }

    /// Inside the certificate's validity at `unix_s` (records without a certificate: true).
    pub fn valid_at(&self, unix_s: i64) -> bool {
        self.validity.is_none_or(|(a, b)| (a..=b).contains(&unix_s))
    }
}

/// A decoded `.tlv` (not yet trusted).
#[derive(Debug)]
pub struct DecodedList {
    blob: Arc<Blob>,
    tl: TrustList,
    signer: Arc<Identity>,
    records: Vec<Rec>,
    roles: RoleSet,
}

impl DecodedList {
    fn decode(blob: &Arc<Blob>) -> Result<DecodedList, Reason> {
        let tl = TrustList::decode(blob.bytes()).map_err(|_| Reason::Malformed)?;
        let info = tl.info();
        let signer = Arc::new(Identity {
            subject: info.signer_name_text(),
            issuer: info.issuer_text(),
            serial: info.serial.clone(),
        });
        let mut roles = RoleSet::EMPTY;
        let mut records = Vec::with_capacity(tl.records().len());
        for r in tl.records() {
            let Some(role) = r.role() else { continue };
            roles.insert(role.0);
            let cert = r.certificate().and_then(|der| CertInfo::parse(der).ok());
            let key = r.verifying_key().ok().map(KeyRef::new);
            records.push(Rec {
                role,
                id: Arc::new(Identity {
                    subject: r.subject_text(),
                    issuer: r.issuer_text(),
                    serial: r.serial().unwrap_or_default().to_vec(),
                }),
                key,
                cert_sha256: r.certificate().map(|der| Sha256::digest(der).into()),
                validity: cert.map(|c| (c.not_before, c.not_after)),
            });
        }
        Ok(DecodedList {
            blob: Arc::clone(blob),
            tl,
            signer,
            records,
            roles,
        })
    }

    /// The bytes as received.
    pub fn blob(&self) -> &Arc<Blob> {
        &self.blob
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.blob.len()
    }

    /// Header signer (name, issuer, serial).
    pub fn signer(&self) -> &Arc<Identity> {
        &self.signer
    }

    /// Signature digest.
    pub fn digest(&self) -> Digest {
        self.tl.info().digest
    }

    /// Signer key size implied by the signature length.
    pub fn sig_bits(&self) -> usize {
        self.tl.info().signature.len().saturating_mul(8)
    }

    /// SIGNER_VERSION (tag 28), if present.
    pub fn signer_version(&self) -> Option<(u8, u8)> {
        self.tl.info().signer_version
    }

    /// Records with a known role.
    pub fn records(&self) -> &[Rec] {
        &self.records
    }

    /// Any record holding one of `roles`.
    pub fn has_any_role(&self, roles: RoleSet) -> bool {
        self.roles.intersects(roles)
    }

    /// E5: no TFTP, CCM, CCM+TFTP or TVS record.
    pub fn is_empty_itl(&self) -> bool {
        !self.roles.intersects(RoleSet(
            RoleSet::REAL_ANCHOR.0 & !RoleSet::SAST.0 | RoleSet::TVS.0,
        ))
    }

    /// A record of `roles` holding the certificate with this DER hash.
    pub fn find_cert(&self, sha256: &[u8; 32], roles: RoleSet) -> Option<&Rec> {
        self.records.iter().find(|r| {
            roles.intersects(RoleSet::of(r.role)) && r.cert_sha256.as_ref() == Some(sha256)
        })
    }

    /// The wire-level trust list.
    pub fn wire(&self) -> &TrustList {
        &self.tl
    }
}

/// A trust list whose signature verified (with an anchored key, or — for first use — with its
/// own signer record). Only this module can make one.
#[derive(Debug, Clone)]
pub struct VerifiedList(Arc<DecodedList>);

impl VerifiedList {
    /// The decoded list.
    pub fn list(&self) -> &DecodedList {
        &self.0
    }

    /// SHA-256 of the file.
    pub fn sha256(&self) -> &[u8; 32] {
        self.0.blob.sha256()
    }

    /// Same bytes.
    pub fn same_file(&self, other: &DecodedList) -> bool {
        self.0.blob.sha256() == other.blob.sha256()
    }
}

/// A decoded `.sgn` or `.enc.sgn` (not yet trusted).
#[derive(Debug)]
pub struct DecodedSigned {
    blob: Arc<Blob>,
    file: SignedKind,
    signer: Arc<Identity>,
}

#[derive(Debug)]
enum SignedKind {
    Sgn(SignedFile),
    Enc(EncryptedFile),
}

impl DecodedSigned {
    fn decode(blob: &Arc<Blob>, encrypted: bool) -> Result<DecodedSigned, Reason> {
        let file = if encrypted {
            SignedKind::Enc(EncryptedFile::decode(blob.bytes()).map_err(|_| Reason::Malformed)?)
        } else {
            SignedKind::Sgn(SignedFile::decode(blob.bytes()).map_err(|_| Reason::Malformed)?)
        };
        let info = match &file {
            SignedKind::Sgn(f) => f.info(),
            SignedKind::Enc(f) => f.info(),
        };
        let signer = Arc::new(Identity {
            subject: info.signer_name_text(),
            issuer: info.issuer_text(),
            serial: info.serial.clone(),
        });
        Ok(DecodedSigned {
            blob: Arc::clone(blob),
            file,
            signer,
        })
    }

    fn info(&self) -> &itlsim_wire::header::HeaderInfo {
        match &self.file {
            SignedKind::Sgn(f) => f.info(),
            SignedKind::Enc(f) => f.info(),
        }
    }

    /// Signer.
    pub fn signer(&self) -> &Arc<Identity> {
        &self.signer
    }

    /// Digest.
    pub fn digest(&self) -> Digest {
        self.info().digest
    }

    /// Signer key size implied by the signature length.
    pub fn sig_bits(&self) -> usize {
        self.info().signature.len().saturating_mul(8)
    }

    /// The bytes.
    pub fn blob(&self) -> &Arc<Blob> {
        &self.blob
    }

    /// `.enc.sgn`.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.file, SignedKind::Enc(_))
    }

    fn verify(&self, key: &PublicKey) -> Result<(), VerifyError> {
        match &self.file {
            SignedKind::Sgn(f) => f.verify_with(key),
            SignedKind::Enc(f) => f.verify_with(key),
        }
    }
}

/// The plaintext of a signed configuration whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedPayload(Vec<u8>);

impl VerifiedPayload {
    /// The configuration bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// How signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoMode {
    /// Every check runs RSA.
    Real,
    /// RSA once per (file SHA-256, key SHA-256); the result is memoized (bounded map).
    Memoized,
    /// No RSA at all: every signature "verifies". Benchmarks only (feature `bench-stub`).
    #[cfg(feature = "bench-stub")]
    Stub,
}

/// Counters for benchmarks and reports.
#[derive(Debug, Default)]
pub struct Stats {
    /// RSA verifications actually run.
    pub rsa_checks: AtomicU64,
    /// Memo hits.
    pub memo_hits: AtomicU64,
    /// Files decoded (interner misses).
    pub decodes: AtomicU64,
}

/// A bounded map from content hash to a shared decoded value.
struct Interner<T> {
    map: HashMap<[u8; 32], Arc<T>>,
    cap: usize,
}

impl<T> Interner<T> {
    fn new(cap: usize) -> Self {
        Interner {
            map: HashMap::new(),
            cap,
        }
    }

    fn get_or<E>(
        &mut self,
        key: &[u8; 32],
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some(v) = self.map.get(key) {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new(make()?);
        if self.map.len() >= self.cap {
            // Bounded: drop entries no phone holds any more; if still full, start over.
            self.map.retain(|_, v| Arc::strong_count(v) > 1);
            if self.map.len() >= self.cap {
                self.map.clear();
            }
        }
        self.map.insert(*key, Arc::clone(&v));
        Ok(v)
    }
}

/// (file SHA-256, key SHA-256) → result of the RSA check.
type Memo = HashMap<([u8; 32], [u8; 32]), Result<(), Reason>>;

/// What all phones of a run share: knobs, crypto mode, interned files, the signature memo.
pub struct Env {
    /// Knobs.
    pub knobs: Knobs,
    crypto: CryptoMode,
    lists: Mutex<Interner<DecodedList>>,
    signed: Mutex<Interner<DecodedSigned>>,
    certs: Mutex<Interner<Cert>>,
    configs: Mutex<Interner<PhoneConfig>>,
    memo: Mutex<Memo>,
    memo_cap: usize,
    /// Counters.
    pub stats: Stats,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("knobs", &self.knobs)
            .field("crypto", &self.crypto)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-insert; the maps stay consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn map_verify(e: VerifyError) -> Reason {
    match e {
        VerifyError::BadSignature | VerifyError::SignatureLength { .. } => Reason::BadSignature,
        _ => Reason::SignerKeyUnusable,
    }
}

impl Env {
    /// Shared state for a run. Interners keep at most 4096 distinct files each; the memo
    /// 65 536 (file, key) pairs.
    pub fn new(knobs: Knobs, crypto: CryptoMode) -> Arc<Env> {
        Arc::new(Env {
            knobs,
            crypto,
            lists: Mutex::new(Interner::new(4096)),
            signed: Mutex::new(Interner::new(4096)),
            certs: Mutex::new(Interner::new(4096)),
            configs: Mutex::new(Interner::new(4096)),
            memo: Mutex::new(HashMap::new()),
            memo_cap: 65_536,
            stats: Stats::default(),
        })
    }

    /// The crypto mode.
    pub fn crypto(&self) -> CryptoMode {
        self.crypto
    }

    /// Decodes a `.tlv` (once per distinct content).
    pub fn decode_list(&self, blob: &Arc<Blob>) -> Result<Arc<DecodedList>, Reason> {
        lock(&self.lists).get_or(blob.sha256(), || {
            self.stats.decodes.fetch_add(1, Ordering::Relaxed);
            DecodedList::decode(blob)
        })
    }

    /// Decodes a `.sgn` / `.enc.sgn` (once per distinct content).
    pub fn decode_signed(
        &self,
        blob: &Arc<Blob>,
        encrypted: bool,
    ) -> Result<Arc<DecodedSigned>, Reason> {
        let mut key = *blob.sha256();
        if encrypted {
            key[0] ^= 0x80; // distinct slot: the same bytes decode differently as .enc.sgn
        }
        lock(&self.signed).get_or(&key, || {
            self.stats.decodes.fetch_add(1, Ordering::Relaxed);
            DecodedSigned::decode(blob, encrypted)
        })
    }

    /// Parses a DER certificate (once per distinct content).
    pub fn cert(&self, der: &Arc<Blob>) -> Result<Arc<Cert>, Reason> {
        lock(&self.certs).get_or(der.sha256(), || {
            let info = CertInfo::parse(der.bytes()).map_err(|_| Reason::Malformed)?;
            Ok(Cert::from_info(*der.sha256(), &info))
        })
    }

    /// Parses a DER certificate given as bytes.
    pub fn cert_bytes(&self, der: &[u8]) -> Result<Arc<Cert>, Reason> {
        let sha: [u8; 32] = Sha256::digest(der).into();
        lock(&self.certs).get_or(&sha, || {
            let info = CertInfo::parse(der).map_err(|_| Reason::Malformed)?;
            Ok(Cert::from_info(sha, &info))
        })
    }

    /// Reads the configuration fields of an accepted configuration (interned by content).
    pub fn config(&self, xml: &[u8]) -> Arc<PhoneConfig> {
        let sha: [u8; 32] = Sha256::digest(xml).into();
        match lock(&self.configs)
            .get_or::<std::convert::Infallible>(&sha, || Ok(PhoneConfig::parse(xml)))
        {
            Ok(c) => c,
            Err(never) => match never {},
        }
    }

    fn check(
        &self,
        file: &[u8; 32],
        key: &KeyRef,
        run: impl FnOnce() -> Result<(), VerifyError>,
    ) -> Result<(), Reason> {
        match self.crypto {
            #[cfg(feature = "bench-stub")]
            CryptoMode::Stub => Ok(()),
            CryptoMode::Real => {
                self.stats.rsa_checks.fetch_add(1, Ordering::Relaxed);
                run().map_err(map_verify)
            }
            CryptoMode::Memoized => {
                let k = (*file, key.id);
                if let Some(r) = lock(&self.memo).get(&k) {
                    self.stats.memo_hits.fetch_add(1, Ordering::Relaxed);
                    return *r;
                }
                self.stats.rsa_checks.fetch_add(1, Ordering::Relaxed);
                let r = run().map_err(map_verify);
                let mut m = lock(&self.memo);
                if m.len() >= self.memo_cap {
                    m.clear();
                }
                m.insert(k, r);
                r
            }
        }
    }

    /// Verifies a trust list with an anchored key; on success it becomes a [`VerifiedList`].
    pub fn verify_list_with(
        &self,
        list: &Arc<DecodedList>,
        key: &KeyRef,
    ) -> Result<VerifiedList, Reason> {
        self.check(list.blob.sha256(), key, || list.tl.verify_with(&key.key))?;
        Ok(VerifiedList(Arc::clone(list)))
    }

    /// Verifies a trust list with its own SAST signer record (first use: §3.1, E5, E20 — the
    /// signer is not anchored, but the bytes must be intact).
    pub fn verify_list_self(&self, list: &Arc<DecodedList>) -> Result<VerifiedList, Reason> {
        let rec = crate::trust::find_signer(list, &list.signer, RoleSet::SAST)
            .ok_or(Reason::SignerUnknown)?;
        let key = rec.key.as_ref().ok_or(Reason::SignerKeyUnusable)?;
        self.verify_list_with(list, key)
    }

    /// Verifies a signed configuration with a key; `.enc.sgn` is then decrypted with
    /// `device_key` (§2.4 step 3: T-CFG, then decrypt with the LSC/MIC private key).
    pub fn verify_signed_with(
        &self,
        file: &DecodedSigned,
        key: &KeyRef,
        device_key: Option<&SigningKey>,
    ) -> Result<VerifiedPayload, Reason> {
        self.check(file.blob.sha256(), key, || file.verify(&key.key))?;
        match &file.file {
            SignedKind::Sgn(f) => Ok(VerifiedPayload(f.payload().to_vec())),
            SignedKind::Enc(f) => {
                let k = device_key.ok_or(Reason::DecryptFailed)?;
                f.decrypt(k)
                    .map(VerifiedPayload)
                    .map_err(|_| Reason::DecryptFailed)
            }
        }
    }
}
