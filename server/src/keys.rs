//! Private keys and where fresh ones come from.
//!
//! Regenerating a certificate needs a fresh key (seed 000 "Regenerate a Certificate"). Measured on
//! this project's 2-core machine (opt-level 3): `rsa` RSA-2048 key generation 230 ms/key (seeded,
//! deterministic), RSA-3072 850 ms, RSA-1024 24 ms; aws-lc-rs RSA-2048 110 ms but not seedable.
//! A scenario regenerates dozens of certificates, so RSA keys come from a **committed pool** of
//! test keys (`certs/keys/rsa-<bits>.pem`, made by `make certs` with a seeded generator), drawn
//! without replacement in a seed-dependent order. When a pool runs dry the source falls back to
//! seeded `rsa` generation (slow but still deterministic). EC keys are derived from the seeded
//! generator directly (P-256/P-384 scalar, instant). Same seed ⇒ same keys ⇒ same bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};

use crate::error::ModelError;

/// Key type and size of an identity certificate (seed 000 Table 6: RSA 1024/2048/3072/4096 for
/// tomcat, ipsec, ITLRecovery, CallManager, CAPF, TVS; EC for the -ECDSA purposes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeySpec {
    /// RSA with this modulus size in bits.
    Rsa(u16),
    /// EC P-256 (seed 000 Table 6 "key length 256").
    EcP256,
    /// EC P-384 (seed 000 Table 6 "key length 384").
    EcP384,
}

impl KeySpec {
    /// RSA sizes CUCM offers (seed 000 Table 6).
    pub const RSA_SIZES: [u16; 4] = [1024, 2048, 3072, 4096];

    /// Whether this is an RSA key.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa(_))
    }

    /// Key size in bits (RSA modulus or curve size).
    pub fn bits(self) -> u16 {
        match self {
            KeySpec::Rsa(b) => b,
            KeySpec::EcP256 => 256,
            KeySpec::EcP384 => 384,
        }
    }

    /// Checks the key size is one CUCM offers.
    pub fn validate(self) -> Result<(), ModelError> {
        match self {
            KeySpec::Rsa(b) if Self::RSA_SIZES.contains(&b) => Ok(()),
            KeySpec::Rsa(b) => Err(ModelError::Invalid(format!(
                "RSA key length {b} is not offered (seed 000 Table 6: 1024/2048/3072/4096)"
            ))),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa(b) => write!(f, "RSA-{b}"),
            KeySpec::EcP256 => f.write_str("EC P-256"),
            KeySpec::EcP384 => f.write_str("EC P-384"),
        }
    }
}

/// A private key. Cheap to clone.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<KeyInner>,
}

enum KeyInner {
    Rsa {
        key: RsaPrivateKey,
        pkcs8: Vec<u8>,
    },
    P256 {
        key: p256::ecdsa::SigningKey,
        pkcs8: Vec<u8>,
    },
    P384 {
        key: p384::ecdsa::SigningKey,
        pkcs8: Vec<u8>,
    },
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.spec())
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.pkcs8_der() == other.pkcs8_der()
    }
}
impl Eq for PrivateKey {}

impl PrivateKey {
    /// Wraps an RSA key.
    pub fn from_rsa(key: RsaPrivateKey) -> Result<Self, ModelError> {
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| ModelError::Crypto(format!("PKCS#8 encoding: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(Self {
            inner: Arc::new(KeyInner::Rsa { key, pkcs8 }),
        })
    }

    /// Parses a PKCS#8 DER private key (RSA, P-256 or P-384).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ModelError> {
        if let Ok(key) = RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(Self {
                inner: Arc::new(KeyInner::Rsa {
                    key,
                    pkcs8: der.to_vec(),
                }),
            });
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(Self {
                inner: Arc::new(KeyInner::P256 {
                    key,
                    pkcs8: der.to_vec(),
                }),
            });
        }
        if let Ok(key) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(Self {
                inner: Arc::new(KeyInner::P384 {
                    key,
                    pkcs8: der.to_vec(),
                }),
            });
        }
        Err(ModelError::Crypto(
            "not an RSA, P-256 or P-384 PKCS#8 key".into(),
        ))
    }

    fn from_p256(key: p256::ecdsa::SigningKey) -> Result<Self, ModelError> {
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| ModelError::Crypto(format!("PKCS#8 encoding: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(Self {
            inner: Arc::new(KeyInner::P256 { key, pkcs8 }),
        })
    }

    fn from_p384(key: p384::ecdsa::SigningKey) -> Result<Self, ModelError> {
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| ModelError::Crypto(format!("PKCS#8 encoding: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(Self {
            inner: Arc::new(KeyInner::P384 { key, pkcs8 }),
        })
    }

    /// The key's type and size.
    pub fn spec(&self) -> KeySpec {
        match &*self.inner {
            KeyInner::Rsa { key, .. } => KeySpec::Rsa(
                u16::try_from(rsa::traits::PublicKeyParts::size(key) * 8).unwrap_or(u16::MAX),
            ),
            KeyInner::P256 { .. } => KeySpec::EcP256,
            KeyInner::P384 { .. } => KeySpec::EcP384,
        }
    }

    /// PKCS#8 DER encoding.
    pub fn pkcs8_der(&self) -> &[u8] {
        match &*self.inner {
            KeyInner::Rsa { pkcs8, .. }
            | KeyInner::P256 { pkcs8, .. }
            | KeyInner::P384 { pkcs8, .. } => pkcs8,
        }
    }

    /// The RSA key, if this is one (only RSA keys sign ITL/CTL/.sgn files, wire-formats §3.5).
    pub fn rsa(&self) -> Option<&RsaPrivateKey> {
        match &*self.inner {
            KeyInner::Rsa { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn p256(&self) -> Option<&p256::ecdsa::SigningKey> {
        match &*self.inner {
            KeyInner::P256 { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn p384(&self) -> Option<&p384::ecdsa::SigningKey> {
        match &*self.inner {
            KeyInner::P384 { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The committed pool (TEST ONLY keys, see `certs/README.md`).
const POOL_RSA_1024: &str = include_str!("../../certs/keys/rsa-1024.pem");
const POOL_RSA_2048: &str = include_str!("../../certs/keys/rsa-2048.pem");
const POOL_RSA_3072: &str = include_str!("../../certs/keys/rsa-3072.pem");
const POOL_RSA_4096: &str = include_str!("../../certs/keys/rsa-4096.pem");

fn pool_text(bits: u16) -> &'static str {
    match bits {
        1024 => POOL_RSA_1024,
        2048 => POOL_RSA_2048,
        3072 => POOL_RSA_3072,
        4096 => POOL_RSA_4096,
        _ => "",
    }
}

/// Statistics of a key source (for reports and the benchmark).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Keys taken from the committed pool.
    pub from_pool: u32,
    /// RSA keys generated because the pool ran dry.
    pub generated_rsa: u32,
    /// EC keys derived from the seed.
    pub derived_ec: u32,
}

struct SourceInner {
    rng: ChaCha20Rng,
    /// Remaining pool entries per size, in draw order (already shuffled by the seed).
    pools: BTreeMap<u16, Vec<Vec<u8>>>,
    stats: KeyStats,
}

/// Deterministic source of fresh private keys, shared by every cluster of one scenario so that no
/// two certificates ever share a key. Cheap to clone (a handle).
#[derive(Clone)]
pub struct KeySource {
    inner: Arc<Mutex<SourceInner>>,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySource({:?})", self.lock().stats)
    }
}

impl KeySource {
    /// A source seeded with `seed`, drawing RSA keys from the committed pool first.
    pub fn new(seed: u64) -> Self {
        Self::with_pool(seed, true)
    }

    /// A source that never uses the pool (every RSA key generated from the seed; slow).
    pub fn without_pool(seed: u64) -> Self {
        Self::with_pool(seed, false)
    }

    fn with_pool(seed: u64, use_pool: bool) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut pools = BTreeMap::new();
        for bits in KeySpec::RSA_SIZES {
            let mut ders: Vec<Vec<u8>> = if use_pool {
                pem::parse_many(pool_text(bits))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| p.tag() == "PRIVATE KEY")
                    .map(|p| p.into_contents())
                    .collect()
            } else {
                Vec::new()
            };
            ders.shuffle(&mut rng);
            // Draw from the end: reverse so the first shuffled entry is drawn first.
            ders.reverse();
            pools.insert(bits, ders);
        }
        Self {
            inner: Arc::new(Mutex::new(SourceInner {
                rng,
                pools,
                stats: KeyStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SourceInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A fresh key of this type, never handed out before by this source.
    pub fn fresh(&self, spec: KeySpec) -> Result<PrivateKey, ModelError> {
        spec.validate()?;
        let mut inner = self.lock();
        match spec {
            KeySpec::Rsa(bits) => {
                let next = inner.pools.get_mut(&bits).and_then(Vec::pop);
                if let Some(der) = next {
                    inner.stats.from_pool += 1;
                    return PrivateKey::from_pkcs8_der(&der);
                }
                inner.stats.generated_rsa += 1;
                let key = RsaPrivateKey::new(&mut inner.rng, usize::from(bits))
                    .map_err(|e| ModelError::Crypto(format!("RSA key generation: {e}")))?;
                PrivateKey::from_rsa(key)
            }
            KeySpec::EcP256 => {
                inner.stats.derived_ec += 1;
                loop {
                    let mut scalar = [0u8; 32];
                    inner.rng.fill_bytes(&mut scalar);
                    if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&scalar) {
                        return PrivateKey::from_p256(key);
                    }
                }
            }
            KeySpec::EcP384 => {
                inner.stats.derived_ec += 1;
                loop {
                    let mut scalar = [0u8; 48];
                    inner.rng.fill_bytes(&mut scalar);
                    if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&scalar) {
                        return PrivateKey::from_p384(key);
                    }
                }
            }
        }
    }

    /// Random bytes from the seeded generator (certificate serials, CAPF name suffixes, AES keys).
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.lock().rng.fill_bytes(&mut out);
        out
    }

    /// Counters of where keys came from.
    pub fn stats(&self) -> KeyStats {
        self.lock().stats
    }

    /// How many pool keys of this RSA size are left.
    pub fn pool_left(&self, bits: u16) -> usize {
        self.lock().pools.get(&bits).map_or(0, Vec::len)
    }
}
