//! RSA PKCS#1 v1.5 signing and verification, RSA key wrapping, and PEM bundles.
//!
//! Verification uses aws-lc-rs (fast; its `*_FOR_LEGACY_USE_ONLY` algorithms accept SHA-1 and
//! 1024-bit keys as phones do). Signing and key unwrapping use the `rsa` crate: it signs with SHA-1
//! and RSA-1024 keys, which CUCM-era files need and aws-lc-rs refuses (docs/decisions.md).

use std::fmt;

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::signature::{self as lc, UnparsedPublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};

pub use rsa::rand_core;

use crate::error::{BuildError, VerifyError};
use crate::tags::Digest;

/// A public key as found in a certificate or in a record's PUBLIC_KEY field.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA, as a DER `RSAPublicKey` (PKCS#1), which is also the `.tlv` PUBLIC_KEY encoding.
    Rsa {
        /// PKCS#1 DER.
        der: Vec<u8>,
        /// Modulus size in bits.
        bits: usize,
    },
    /// Elliptic curve: uncompressed point `04 || X || Y`.
    Ec {
        /// Curve name (`P-256`, `P-384`, or the OID).
        curve: String,
        /// The point.
        point: Vec<u8>,
    },
    /// Any other algorithm (OID).
    Other(String),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PublicKey {
    /// An RSA key from its PKCS#1 DER.
    pub fn from_rsa_der(der: &[u8]) -> Result<Self, VerifyError> {
        let k =
            RsaPublicKey::from_pkcs1_der(der).map_err(|e| VerifyError::BadKey(e.to_string()))?;
        Ok(PublicKey::Rsa {
            der: der.to_vec(),
            bits: k.size().saturating_mul(8),
        })
    }

    /// `RSA 2048`, `EC P-384` …
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("RSA {bits}"),
            PublicKey::Ec { curve, .. } => format!("EC {curve}"),
            PublicKey::Other(oid) => format!("other ({oid})"),
        }
    }

    /// Key size in bits (EC: field size).
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { bits, .. } => *bits,
            PublicKey::Ec { point, .. } => point.len().saturating_sub(1).saturating_mul(4),
            PublicKey::Other(_) => 0,
        }
    }

    /// Checks an RSA PKCS#1 v1.5 signature over `msg` (which is hashed here).
    pub fn verify(&self, digest: Digest, msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        self.verify_parts(digest, &[msg], sig)
    }

    /// Checks an RSA PKCS#1 v1.5 signature over the concatenation of `parts`, without copying
    /// them together (a signed file is the received bytes minus the signature TLV).
    pub fn verify_parts(
        &self,
        digest: Digest,
        parts: &[&[u8]],
        sig: &[u8],
    ) -> Result<(), VerifyError> {
        let (der, bits) = match self {
            PublicKey::Rsa { der, bits } => (der, *bits),
            other => return Err(VerifyError::UnsupportedSignerKey(other.describe())),
        };
        if !(1024..=8192).contains(&bits) {
            return Err(VerifyError::KeySize(bits));
        }
        let key_bytes = bits.div_ceil(8);
        if sig.len() != key_bytes {
            return Err(VerifyError::SignatureLength {
                sig_len: sig.len(),
                key_bytes,
            });
        }
        let (alg, hash): (&'static lc::RsaParameters, _) = match digest {
            Digest::Sha1 => (
                &lc::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                &lc_digest::SHA1_FOR_LEGACY_USE_ONLY,
            ),
            Digest::Sha512 => (
                &lc::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                &lc_digest::SHA512,
            ),
        };
        let mut ctx = lc_digest::Context::new(hash);
        for p in parts {
            ctx.update(p);
        }
        UnparsedPublicKey::new(alg, der)
            .verify_digest(&ctx.finish(), sig)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// Wraps (encrypts) `data` to this RSA key with PKCS#1 v1.5 padding (`.enc.sgn` key wrap, §5).
    pub fn wrap(
        &self,
        rng: &mut impl rand_core::CryptoRngCore,
        data: &[u8],
    ) -> Result<Vec<u8>, BuildError> {
        let der = match self {
            PublicKey::Rsa { der, .. } => der,
            other => {
                return Err(BuildError::Key(format!(
                    "cannot wrap a key to {}",
                    other.describe()
                )));
            }
        };
        let k = RsaPublicKey::from_pkcs1_der(der).map_err(|e| BuildError::Key(e.to_string()))?;
        k.encrypt(rng, Pkcs1v15Encrypt, data)
            .map_err(|e| BuildError::Key(e.to_string()))
    }
}

/// An RSA private key that signs files.
#[derive(Clone)]
pub struct SigningKey {
    key: RsaPrivateKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public.describe())
    }
}

impl SigningKey {
    /// Wraps an `rsa` private key.
    pub fn from_rsa(key: RsaPrivateKey) -> Result<Self, BuildError> {
        let der = key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| BuildError::Key(e.to_string()))?;
        let public = PublicKey::Rsa {
            der: der.as_bytes().to_vec(),
            bits: key.size().saturating_mul(8),
        };
        Ok(Self { key, public })
    }

    /// From PKCS#8 or PKCS#1 DER.
    pub fn from_der(der: &[u8]) -> Result<Self, BuildError> {
        let key = RsaPrivateKey::from_pkcs8_der(der)
            .or_else(|_| RsaPrivateKey::from_pkcs1_der(der))
            .map_err(|e| {
                BuildError::Key(format!("not an RSA private key (PKCS#8 or PKCS#1): {e}"))
            })?;
        Self::from_rsa(key)
    }

    /// A fresh key (tests and the cluster model; the caller chooses the RNG, so seeded keys work).
    pub fn generate(
        rng: &mut impl rand_core::CryptoRngCore,
        bits: usize,
    ) -> Result<Self, BuildError> {
        let key = RsaPrivateKey::new(rng, bits).map_err(|e| BuildError::Key(e.to_string()))?;
        Self::from_rsa(key)
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The underlying `rsa` key (for certificate builders).
    pub fn rsa(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// Signature length in bytes.
    pub fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// RSA PKCS#1 v1.5 signature of `msg` hashed with `digest` (deterministic).
    pub fn sign(&self, digest: Digest, msg: &[u8]) -> Vec<u8> {
        let hashed = digest.hash(&[msg]);
        self.sign_prehashed(digest, &hashed)
    }

    /// RSA PKCS#1 v1.5 signature of an already computed digest.
    pub fn sign_prehashed(&self, digest: Digest, hashed: &[u8]) -> Vec<u8> {
        let padding = match digest {
            Digest::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
            Digest::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        // Signing cannot fail for a valid key and a digest of the right length; an empty signature
        // would then fail every verification rather than pass one.
        self.key.sign(padding, hashed).unwrap_or_default()
    }

    /// Unwraps a PKCS#1 v1.5-encrypted key (`.enc.sgn`).
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>, VerifyError> {
        self.key
            .decrypt(Pkcs1v15Encrypt, wrapped)
            .map_err(|_| VerifyError::BadKey("key unwrap failed".into()))
    }
}

/// The contents of a PEM file such as the reference `mkcert` output: a private key and certificates.
#[derive(Debug, Default)]
pub struct PemBundle {
    /// The RSA private key, if the file holds one.
    pub key: Option<SigningKey>,
    /// Why a private key in the file could not be used (EC keys, for instance).
    pub key_note: Option<String>,
    /// DER certificates in file order.
    pub certs: Vec<Vec<u8>>,
}

impl PemBundle {
    /// Parses PEM text. DER input (a bare certificate) is accepted too.
    pub fn parse(data: &[u8]) -> Result<Self, BuildError> {
        if data.first() == Some(&0x30) {
            return Ok(Self {
                certs: vec![data.to_vec()],
                ..Self::default()
            });
        }
        let blocks = pem::parse_many(data).map_err(|e| BuildError::Cert(format!("PEM: {e}")))?;
        let mut out = Self::default();
        for b in blocks {
            match b.tag() {
                "CERTIFICATE" => out.certs.push(b.contents().to_vec()),
                "PRIVATE KEY" | "RSA PRIVATE KEY" => match SigningKey::from_der(b.contents()) {
                    Ok(k) => out.key = Some(k),
                    Err(e) => out.key_note = Some(e.to_string()),
                },
                "EC PRIVATE KEY" => {
                    out.key_note = Some("EC private key: files are signed with RSA only".into())
                }
                _ => {}
            }
        }
        if out.certs.is_empty() && out.key.is_none() && out.key_note.is_none() {
            return Err(BuildError::Cert(
                "no CERTIFICATE or PRIVATE KEY block".into(),
            ));
        }
        Ok(out)
    }
}
