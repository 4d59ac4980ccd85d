//! Certificates: CUCM-style identity certificates built with rcgen.
//!
//! * Purposes and key types: seed 000 Table 6 (RSA for tomcat, ipsec, ITLRecovery, CallManager,
//!   CAPF, TVS; EC for tomcat-ECDSA and CallManager-ECDSA).
//! * KeyUsage / ExtendedKeyUsage: seed 000 Table 3 by default; seed 001 lists other CSR extension
//!   sets (Key Encipherment and Key Agreement for CallManager/tomcat) → knob [`KeyUsageProfile`].
//! * Validity: 5 years by default (seed 000 "Validity Period"), ITLRecovery 20 years on fresh
//!   installs and regeneration (seed 004 "Certificate Management Changes for ITLRecovery").
//! * Self-signed CUCM certificates carry `CA:TRUE` (stack.md: rustls-webpki rejects them as end
//!   entities with `CaUsedAsEndEntity`).
//! * CAPF has a unique subject name per generation (seed 002: "CAPF always has a unique Subject
//!   Name header, thus previously used CAPF certificates are retained").
//! * SHA-1 signatures (CUCM 8.x-era certificates) are made by re-signing the SHA-256 TBS with the
//!   OID switched: rcgen cannot sign SHA-1, and both OIDs have the same length.
//!
//! Every certificate is deterministic: the caller passes the key, serial and `not_before`.

use std::fmt;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use rsa::Pkcs1v15Sign;
use rsa::pkcs1::EncodeRsaPublicKey;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::error::ModelError;
use crate::keys::{KeySpec, PrivateKey};

/// Seconds since the Unix epoch on the scenario clock (never the wall clock).
pub type UnixTime = i64;

/// One day in seconds.
pub const DAY: i64 = 86_400;

/// The identity certificate types of a CUCM node (seed 000 "Simplified Certificate Management":
/// "eight identity certificates … CallManager, CallManager-ECDSA, Tomcat, Tomcat-ECDSA, IPsec,
/// CAPF, TVS, ITL Recovery").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertPurpose {
    /// `CallManager` (the "TFTP certificate": signs ITL ≤ 11.x and every `.sgn`).
    CallManager,
    /// `CallManager-ECDSA` (from 11.0, seed 004 "Certificate Manager ECDSA Support").
    CallManagerEcdsa,
    /// `tomcat`.
    Tomcat,
    /// `tomcat-ECDSA`.
    TomcatEcdsa,
    /// `ipsec`.
    Ipsec,
    /// `TVS`.
    Tvs,
    /// `CAPF`.
    Capf,
    /// `ITLRecovery` (from 10.0; signs the ITL from 12.0, §6.1).
    ItlRecovery,
}

impl CertPurpose {
    /// All purposes in a fixed order.
    pub const ALL: [CertPurpose; 8] = [
        CertPurpose::CallManager,
        CertPurpose::CallManagerEcdsa,
        CertPurpose::Tomcat,
        CertPurpose::TomcatEcdsa,
        CertPurpose::Ipsec,
        CertPurpose::Tvs,
        CertPurpose::Capf,
        CertPurpose::ItlRecovery,
    ];

    /// Name as CUCM's CLI spells it (`set cert regen <name>`).
    pub fn name(self) -> &'static str {
        match self {
            CertPurpose::CallManager => "CallManager",
            CertPurpose::CallManagerEcdsa => "CallManager-ECDSA",
            CertPurpose::Tomcat => "tomcat",
            CertPurpose::TomcatEcdsa => "tomcat-ECDSA",
            CertPurpose::Ipsec => "ipsec",
            CertPurpose::Tvs => "TVS",
            CertPurpose::Capf => "CAPF",
            CertPurpose::ItlRecovery => "ITLRecovery",
        }
    }

    /// Parses the CLI name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    /// EC purposes (seed 000 Table 6: key type set to EC automatically).
    pub fn is_ec(self) -> bool {
        matches!(
            self,
            CertPurpose::CallManagerEcdsa | CertPurpose::TomcatEcdsa
        )
    }

    /// Default key of a fresh install: RSA-2048 / EC P-256 [I: the seeds give the choices, not
    /// the installer default; 2048 is the "standard" of §8].
    pub fn default_key(self) -> KeySpec {
        if self.is_ec() {
            KeySpec::EcP256
        } else {
            KeySpec::Rsa(2048)
        }
    }
}

impl fmt::Display for CertPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Signature hash of a certificate (seed 000 Table 6 "Hash Algorithm"; SHA-1 for 8.x-era certs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigHash {
    /// sha1WithRSAEncryption.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Which source's KeyUsage/EKU sets to put in identity certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyUsageProfile {
    /// Seed 000 Table 3 (default; the issue names it).
    #[default]
    Seed000Table3,
    /// Seed 001 "CSR extensions" lists (adds Key Encipherment / Key Agreement / IPsec EKU).
    Seed001Csr,
}

/// Organisation fields of the subject (CUCM asks for them at install).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgInfo {
    /// OU.
    pub ou: String,
    /// O.
    pub o: String,
    /// L.
    pub l: String,
    /// ST.
    pub st: String,
    /// C.
    pub c: String,
}

impl Default for OrgInfo {
    fn default() -> Self {
        Self {
            ou: "itlsim".into(),
            o: "itlsim TEST ONLY".into(),
            l: "Testville".into(),
            st: "TS".into(),
            c: "US".into(),
        }
    }
}

/// A certificate as the model keeps it (no private key). Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    inner: Arc<CertData>,
}

#[derive(PartialEq, Eq)]
struct CertData {
    der: Vec<u8>,
    serial: Vec<u8>,
    common_name: String,
    subject: String,
    issuer: String,
    not_before: UnixTime,
    not_after: UnixTime,
    key: KeySpec,
    sha256: [u8; 32],
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Certificate({} serial {})",
            self.inner.subject,
            hex::encode(&self.inner.serial)
        )
    }
}

impl Certificate {
    fn new(
        der: Vec<u8>,
        serial: Vec<u8>,
        common_name: String,
        subject: String,
        issuer: String,
        validity: (UnixTime, UnixTime),
        key: KeySpec,
    ) -> Self {
        let sha256 = Sha256::digest(&der).into();
        Self {
            inner: Arc::new(CertData {
                der,
                serial,
                common_name,
                subject,
                issuer,
                not_before: validity.0,
                not_after: validity.1,
                key,
                sha256,
            }),
        }
    }

    /// DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }
    /// Serial number (minimal unsigned big-endian).
    pub fn serial(&self) -> &[u8] {
        &self.inner.serial
    }
    /// Subject common name.
    pub fn common_name(&self) -> &str {
        &self.inner.common_name
    }
    /// Subject in CUCM's `CN=…;OU=…;O=…;L=…;ST=…;C=…` form (wire-formats §3.3).
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }
    /// Issuer in the same form.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }
    /// Start of validity.
    pub fn not_before(&self) -> UnixTime {
        self.inner.not_before
    }
    /// End of validity.
    pub fn not_after(&self) -> UnixTime {
        self.inner.not_after
    }
    /// Key type.
    pub fn key_spec(&self) -> KeySpec {
        self.inner.key
    }
    /// SHA-256 of the DER (identity of the certificate in the model).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.inner.sha256
    }
    /// Self-issued (subject == issuer).
    pub fn is_self_issued(&self) -> bool {
        self.inner.subject == self.inner.issuer
    }
    /// Short hex id for reports.
    pub fn short_id(&self) -> String {
        hex::encode(self.inner.sha256.get(..6).unwrap_or_default())
    }
}

/// An identity certificate with its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Purpose.
    pub purpose: CertPurpose,
    /// The certificate.
    pub cert: Certificate,
    /// Its private key.
    pub key: PrivateKey,
    /// Signature hash used.
    pub hash: SigHash,
    /// Multi-server (SAN) certificate shared by the cluster (seed 000 "Simplified Certificate
    /// Management").
    pub multi_server: bool,
    /// Signed by a third-party CA (uploaded) rather than self-signed.
    pub ca_signed: bool,
}

/// What to put in a certificate.
#[derive(Clone, Debug)]
pub struct CertRequest<'a> {
    /// Purpose (decides KeyUsage/EKU).
    pub purpose: Option<CertPurpose>,
    /// Subject CN.
    pub common_name: String,
    /// DNS SANs.
    pub sans: Vec<String>,
    /// Subject organisation fields.
    pub org: &'a OrgInfo,
    /// Signature hash.
    pub hash: SigHash,
    /// Start of validity.
    pub not_before: UnixTime,
    /// Validity in days.
    pub validity_days: u32,
    /// Serial number bytes (made positive and minimal here).
    pub serial: [u8; 16],
    /// KeyUsage profile.
    pub profile: KeyUsageProfile,
    /// CA certificate (`CA:TRUE`).
    pub is_ca: bool,
}

fn minimal_positive_serial(raw: &[u8; 16]) -> Vec<u8> {
    let mut s = raw.to_vec();
    if let Some(first) = s.first_mut() {
        *first &= 0x7f;
        if *first == 0 {
            *first = 0x01;
        }
    }
    s
}

fn usages(
    purpose: Option<CertPurpose>,
    profile: KeyUsageProfile,
) -> (Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>) {
    use ExtendedKeyUsagePurpose as E;
    use KeyUsagePurpose as K;
    let ipsec_end_system = E::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]);
    let Some(purpose) = purpose else {
        return (
            vec![K::KeyCertSign, K::CrlSign, K::DigitalSignature],
            vec![],
        );
    };
    match (profile, purpose) {
        // Seed 000 Table 3.
        (KeyUsageProfile::Seed000Table3, CertPurpose::CallManager | CertPurpose::CallManagerEcdsa)
        | (KeyUsageProfile::Seed000Table3, CertPurpose::Tomcat | CertPurpose::TomcatEcdsa)
        // ITLRecovery is in no table: same as CallManager [I].
        | (_, CertPurpose::ItlRecovery) => {
            (vec![K::DigitalSignature, K::DataEncipherment], vec![E::ServerAuth, E::ClientAuth])
        }
        (_, CertPurpose::Capf) => (vec![K::DigitalSignature, K::KeyCertSign], vec![E::ServerAuth]),
        (KeyUsageProfile::Seed000Table3, CertPurpose::Ipsec) => (
            vec![K::DigitalSignature, K::KeyEncipherment, K::DataEncipherment],
            vec![E::ServerAuth, E::ClientAuth, ipsec_end_system],
        ),
        // TVS: seed 000 Table 3 (seed 001 has no TVS entry).
        (_, CertPurpose::Tvs) => {
            (vec![K::DigitalSignature, K::KeyEncipherment, K::DataEncipherment], vec![E::ServerAuth, E::ClientAuth])
        }
        // Seed 001 CSR extensions.
        (KeyUsageProfile::Seed001Csr, CertPurpose::CallManager | CertPurpose::CallManagerEcdsa) => (
            vec![K::DigitalSignature, K::KeyEncipherment, K::DataEncipherment, K::KeyAgreement],
            vec![E::ServerAuth, E::ClientAuth],
        ),
        (KeyUsageProfile::Seed001Csr, CertPurpose::Tomcat | CertPurpose::TomcatEcdsa | CertPurpose::Ipsec) => (
            vec![K::DigitalSignature, K::KeyEncipherment, K::DataEncipherment, K::KeyAgreement],
            vec![E::ServerAuth, E::ClientAuth, ipsec_end_system],
        ),
    }
}

/// CUCM's `;`-joined DN form, CN first (wire-formats §3.3).
fn cucm_dn(cn: &str, org: &OrgInfo) -> String {
    format!(
        "CN={cn};OU={};O={};L={};ST={};C={}",
        org.ou, org.o, org.l, org.st, org.c
    )
}

fn params_for(req: &CertRequest<'_>) -> Result<CertificateParams, ModelError> {
    let mut params = CertificateParams::new(req.sans.clone()).map_err(rc_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.common_name.as_str());
    dn.push(DnType::OrganizationalUnitName, req.org.ou.as_str());
    dn.push(DnType::OrganizationName, req.org.o.as_str());
    dn.push(DnType::LocalityName, req.org.l.as_str());
    dn.push(DnType::StateOrProvinceName, req.org.st.as_str());
    dn.push(DnType::CountryName, req.org.c.as_str());
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&minimal_positive_serial(
        &req.serial,
    )));
    params.not_before = to_time(req.not_before)?;
    let end = req
        .not_before
        .saturating_add(i64::from(req.validity_days).saturating_mul(DAY));
    params.not_after = to_time(end)?;
    let (ku, eku) = usages(req.purpose, req.profile);
    params.key_usages = ku;
    params.extended_key_usages = eku;
    params.is_ca = if req.is_ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    params.use_authority_key_identifier_extension = false;
    Ok(params)
}

fn to_time(t: UnixTime) -> Result<time::OffsetDateTime, ModelError> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map_err(|e| ModelError::Invalid(format!("time {t}: {e}")))
}

fn rc_err(e: rcgen::Error) -> ModelError {
    ModelError::Crypto(format!("certificate building: {e}"))
}

/// Adapter: our [`PrivateKey`] as an rcgen signer with a chosen hash.
struct RcgenSigner<'a> {
    key: &'a PrivateKey,
    hash: SigHash,
    public: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl<'a> RcgenSigner<'a> {
    fn new(key: &'a PrivateKey, hash: SigHash) -> Result<Self, ModelError> {
        if let Some(rsa) = key.rsa() {
            let public = rsa
                .to_public_key()
                .to_pkcs1_der()
                .map_err(|e| ModelError::Crypto(format!("RSA public key: {e}")))?
                .as_bytes()
                .to_vec();
            let alg = match hash {
                // SHA-1: built as SHA-256, then switched (see `resign_sha1`).
                SigHash::Sha1 | SigHash::Sha256 => &rcgen::PKCS_RSA_SHA256,
                SigHash::Sha384 => &rcgen::PKCS_RSA_SHA384,
                SigHash::Sha512 => &rcgen::PKCS_RSA_SHA512,
            };
            return Ok(Self {
                key,
                hash,
                public,
                alg,
            });
        }
        if let Some(k) = key.p256() {
            let public = k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec();
            return Ok(Self {
                key,
                hash,
                public,
                alg: &rcgen::PKCS_ECDSA_P256_SHA256,
            });
        }
        if let Some(k) = key.p384() {
            let public = k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec();
            return Ok(Self {
                key,
                hash,
                public,
                alg: &rcgen::PKCS_ECDSA_P384_SHA384,
            });
        }
        Err(ModelError::Crypto("unsupported key".into()))
    }
}

impl PublicKeyData for RcgenSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl SigningKey for RcgenSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        if let Some(rsa) = self.key.rsa() {
            let hash = if self.hash == SigHash::Sha1 {
                SigHash::Sha256
            } else {
                self.hash
            };
            return rsa_sign(rsa, hash, msg).map_err(|_| rcgen::Error::RemoteKeyError);
        }
        if let Some(k) = self.key.p256() {
            use p256::ecdsa::signature::Signer;
            let sig: p256::ecdsa::Signature = k.sign(msg);
            return Ok(sig.to_der().as_bytes().to_vec());
        }
        if let Some(k) = self.key.p384() {
            use p384::ecdsa::signature::Signer;
            let sig: p384::ecdsa::Signature = k.sign(msg);
            return Ok(sig.to_der().as_bytes().to_vec());
        }
        Err(rcgen::Error::RemoteKeyError)
    }
}

/// RSA PKCS#1 v1.5 signature with the given hash (deterministic).
pub(crate) fn rsa_sign(
    key: &rsa::RsaPrivateKey,
    hash: SigHash,
    msg: &[u8],
) -> Result<Vec<u8>, ModelError> {
    let res = match hash {
        SigHash::Sha1 => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(msg)),
        SigHash::Sha256 => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg)),
        SigHash::Sha384 => key.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg)),
        SigHash::Sha512 => key.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg)),
    };
    res.map_err(|e| ModelError::Crypto(format!("RSA signing: {e}")))
}

/// Builds a self-signed certificate.
pub fn self_signed(req: &CertRequest<'_>, key: &PrivateKey) -> Result<Certificate, ModelError> {
    check_hash(req.hash, key)?;
    let params = params_for(req)?;
    let signer = RcgenSigner::new(key, req.hash)?;
    let cert = params.self_signed(&signer).map_err(rc_err)?;
    let mut der = cert.der().to_vec();
    if req.hash == SigHash::Sha1 {
        der = resign_sha1(&der, key)?;
    }
    let subject = cucm_dn(&req.common_name, req.org);
    Ok(Certificate::new(
        der,
        minimal_positive_serial(&req.serial),
        req.common_name.clone(),
        subject.clone(),
        subject,
        validity(req),
        key.spec(),
    ))
}

/// A certificate authority the model can sign with (a third-party CA for "upload CA-signed", the
/// look-alike manufacturing CA for eTokens).
#[derive(Clone, Debug)]
pub struct CertAuthority {
    /// The CA certificate.
    pub cert: Certificate,
    /// The CA key.
    pub key: PrivateKey,
}

impl CertAuthority {
    /// Makes a self-signed CA.
    pub fn new(
        common_name: &str,
        org: &OrgInfo,
        key: PrivateKey,
        serial: [u8; 16],
        not_before: UnixTime,
        validity_days: u32,
    ) -> Result<Self, ModelError> {
        let req = CertRequest {
            purpose: None,
            common_name: common_name.to_string(),
            sans: vec![],
            org,
            hash: SigHash::Sha256,
            not_before,
            validity_days,
            serial,
            profile: KeyUsageProfile::default(),
            is_ca: true,
        };
        let cert = self_signed(&req, &key)?;
        Ok(Self { cert, key })
    }

    /// An existing CA certificate and its key.
    pub fn from_existing(cert: Certificate, key: PrivateKey) -> Result<Self, ModelError> {
        Ok(Self { cert, key })
    }

    /// The CA's subject as rcgen parameters (rebuilt from the DER's RDNs, same order and values).
    fn issuer_params(&self) -> Result<CertificateParams, ModelError> {
        let info = itlsim_wire::cert::CertInfo::parse(self.cert.der())
            .map_err(|e| ModelError::Crypto(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        for (k, v) in &info.subject {
            let t = match k.as_str() {
                "CN" => DnType::CommonName,
                "OU" => DnType::OrganizationalUnitName,
                "O" => DnType::OrganizationName,
                "L" => DnType::LocalityName,
                "ST" => DnType::StateOrProvinceName,
                "C" => DnType::CountryName,
                other => {
                    return Err(ModelError::Crypto(format!(
                        "unsupported RDN {other} in CA subject"
                    )));
                }
            };
            dn.push(t, v.as_str());
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params)
    }

    /// Issues a certificate for `req` signed by this CA.
    pub fn issue(
        &self,
        req: &CertRequest<'_>,
        subject_key: &PrivateKey,
    ) -> Result<Certificate, ModelError> {
        let params = params_for(req)?;
        let subject_pub = RcgenSigner::new(subject_key, req.hash)?;
        let ca_signer = RcgenSigner::new(&self.key, SigHash::Sha256)?;
        let issuer = Issuer::new(self.issuer_params()?, &ca_signer);
        let cert = params.signed_by(&subject_pub, &issuer).map_err(rc_err)?;
        Ok(Certificate::new(
            cert.der().to_vec(),
            minimal_positive_serial(&req.serial),
            req.common_name.clone(),
            cucm_dn(&req.common_name, req.org),
            self.cert.subject().to_string(),
            validity(req),
            subject_key.spec(),
        ))
    }
}

/// Builds a model certificate from parts (for foreign DER parsed elsewhere).
pub fn certificate_from_parts(
    der: Vec<u8>,
    serial: Vec<u8>,
    common_name: String,
    subject: String,
    issuer: String,
    validity: (UnixTime, UnixTime),
    key: KeySpec,
) -> Certificate {
    Certificate::new(der, serial, common_name, subject, issuer, validity, key)
}

fn validity(req: &CertRequest<'_>) -> (UnixTime, UnixTime) {
    (
        req.not_before,
        req.not_before
            .saturating_add(i64::from(req.validity_days).saturating_mul(DAY)),
    )
}

fn check_hash(hash: SigHash, key: &PrivateKey) -> Result<(), ModelError> {
    if !key.spec().is_rsa() && hash == SigHash::Sha1 {
        return Err(ModelError::Invalid(
            "SHA-1 with an EC key: seed 000 Table 6 only offers SHA-256 or stronger for EC".into(),
        ));
    }
    Ok(())
}

// ---- minimal DER walking for the SHA-1 re-signature ----

/// Returns (header length, content length) of the DER element at the start of `b`.
fn der_header(b: &[u8]) -> Option<(usize, usize)> {
    let first_len = *b.get(1)?;
    if first_len < 0x80 {
        return Some((2, usize::from(first_len)));
    }
    let n = usize::from(first_len & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(2 + i)?);
    }
    Some((2 + n, len))
}

const SHA256_RSA_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
];
const SHA1_RSA_LAST: u8 = 0x05;

fn switch_first_oid(buf: &mut [u8]) -> Option<()> {
    let pos = buf
        .windows(SHA256_RSA_OID.len())
        .position(|w| w == SHA256_RSA_OID)?;
    let last = buf.get_mut(pos + SHA256_RSA_OID.len() - 1)?;
    *last = SHA1_RSA_LAST;
    Some(())
}

/// Certificate ::= SEQUENCE { tbs, sigAlg, BIT STRING }: switch both algorithm identifiers to
/// sha1WithRSAEncryption and replace the signature (same length for the same key).
fn resign_sha1(der: &[u8], key: &PrivateKey) -> Result<Vec<u8>, ModelError> {
    let bad = || ModelError::Crypto("unexpected certificate DER from rcgen".into());
    let rsa = key.rsa().ok_or_else(bad)?;
    let (oh, olen) = der_header(der).ok_or_else(bad)?;
    if oh + olen != der.len() {
        return Err(bad());
    }
    let body = der.get(oh..).ok_or_else(bad)?;
    let (th, tlen) = der_header(body).ok_or_else(bad)?;
    let tbs_end = th + tlen;
    let mut tbs = body.get(..tbs_end).ok_or_else(bad)?.to_vec();
    switch_first_oid(&mut tbs).ok_or_else(bad)?;
    let rest = body.get(tbs_end..).ok_or_else(bad)?;
    let (ah, alen) = der_header(rest).ok_or_else(bad)?;
    let mut alg = rest.get(..ah + alen).ok_or_else(bad)?.to_vec();
    switch_first_oid(&mut alg).ok_or_else(bad)?;
    let bits = rest.get(ah + alen..).ok_or_else(bad)?;
    let (bh, blen) = der_header(bits).ok_or_else(bad)?;
    let sig = rsa_sign(rsa, SigHash::Sha1, &tbs)?;
    // BIT STRING content = 1 byte unused-bits + signature.
    if blen != sig.len() + 1 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(der.len());
    out.extend_from_slice(der.get(..oh).ok_or_else(bad)?);
    out.extend_from_slice(&tbs);
    out.extend_from_slice(&alg);
    out.extend_from_slice(bits.get(..bh + 1).ok_or_else(bad)?);
    out.extend_from_slice(&sig);
    Ok(out)
}
