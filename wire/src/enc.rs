//! Encrypted signed configs (`SEP<MAC>.cnf.xml.enc.sgn`, header version 2.0; wire-formats §5):
//! AES-128-CBC body, AES key wrapped (RSA PKCS#1 v1.5) to the phone's certificate.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};

use bytes::Bytes;

use crate::cert::CertInfo;
use crate::crypto::{PublicKey, SigningKey, rand_core};
use crate::error::{BuildError, DecodeError, ErrorKind, VerifyError};
use crate::header::{Element, Envelope, HeaderInfo, HeaderSpec, Layout, build_signed};
use crate::sgn::signer_id;
use crate::tags::{Digest, header as t};

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;

/// The encryption fields of the header (tags 16–27).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionInfo {
    /// AES IV (tag 19).
    pub iv: [u8; 16],
    /// Number of 0x0D bytes appended to the plaintext (tag 20).
    pub padding_count: u16,
    /// Tag 23: bits of the wrapped key (2048 observed).
    pub key_size: u16,
    /// Tag 24 (1 observed).
    pub key_algorithm: u8,
    /// Tag 25: the AES key encrypted to the phone certificate.
    pub wrapped_key: Vec<u8>,
    /// Tag 26.
    pub plaintext_digest: Digest,
    /// Tag 27.
    pub plaintext_hash: Vec<u8>,
}

/// Why decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The phone key could not unwrap the AES key (wrong phone, or tampered).
    #[error("the phone key does not unwrap the AES key")]
    Unwrap,
    /// The unwrapped key is not 16 bytes.
    #[error("unwrapped key is {0} bytes, not 16")]
    KeyLength(usize),
    /// The ciphertext is not a whole number of AES blocks.
    #[error("ciphertext of {0} bytes is not a multiple of 16")]
    CipherLength(usize),
    /// PADDING_COUNT exceeds the plaintext.
    #[error("padding count {0} exceeds the plaintext")]
    Padding(u16),
    /// Tag 27 does not match the decrypted plaintext.
    #[error("plaintext hash does not match")]
    Hash,
}

/// A decoded `.enc.sgn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFile {
    envelope: Envelope,
    enc: EncryptionInfo,
}

impl EncryptedFile {
    /// Decodes an `.enc.sgn` (version 2.x with all encryption fields).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope = Envelope::decode_format(
            Bytes::copy_from_slice(bytes),
            crate::sgn::MAX_FILE_SIZE,
            2,
            "2.0 (.enc.sgn)",
        )?;
        let info = envelope.info();
        let enc = read_enc(envelope.elements())?;
        if envelope.body().is_empty() {
            return Err(DecodeError::new(
                info.header_length,
                ErrorKind::EmptyPayload,
            ));
        }
        Ok(Self { envelope, enc })
    }

    /// Re-encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.envelope.raw().len());
        self.envelope.encode_header(&mut out);
        out.extend_from_slice(self.envelope.body());
        out
    }

    /// Header and bytes.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Header facts.
    pub fn info(&self) -> &HeaderInfo {
        self.envelope.info()
    }

    /// Encryption fields.
    pub fn encryption(&self) -> &EncryptionInfo {
        &self.enc
    }

    /// Checks the signature (which also covers the ciphertext).
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), VerifyError> {
        self.envelope.verify_with(key)
    }

    /// Decrypts with the phone's private key and checks the plaintext hash.
    pub fn decrypt(&self, phone_key: &SigningKey) -> Result<Vec<u8>, DecryptError> {
        let key = phone_key
            .unwrap(&self.enc.wrapped_key)
            .map_err(|_| DecryptError::Unwrap)?;
        let key: [u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| DecryptError::KeyLength(key.len()))?;
        let ct = self.envelope.body();
        if ct.len() % 16 != 0 {
            return Err(DecryptError::CipherLength(ct.len()));
        }
        let mut buf = ct.to_vec();
        let pt = Dec::new(&key.into(), &self.enc.iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| DecryptError::CipherLength(ct.len()))?;
        let keep = pt
            .len()
            .checked_sub(usize::from(self.enc.padding_count))
            .ok_or(DecryptError::Padding(self.enc.padding_count))?;
        let pt = pt.get(..keep).unwrap_or_default().to_vec();
        if self.enc.plaintext_digest.hash(&[&pt]) != self.enc.plaintext_hash {
            return Err(DecryptError::Hash);
        }
        Ok(pt)
    }
}

fn read_enc(elements: &[Element]) -> Result<EncryptionInfo, DecodeError> {
    fn walk<'a>(es: &'a [Element], out: &mut Vec<(u8, &'a [u8])>) {
        for e in es {
            match e {
                Element::Field { tag, value } => out.push((*tag, value)),
                Element::Container { children, .. } => walk(children, out),
                Element::Padding => {}
            }
        }
    }
    let mut flat = Vec::new();
    walk(elements, &mut flat);
    let get = |tag: u8, what: &'static str| {
        flat.iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
            .ok_or(DecodeError::new(0, ErrorKind::MissingTag { tag, what }))
    };
    let len_err = |tag, what, len, expected| {
        DecodeError::new(
            0,
            ErrorKind::BadFieldLength {
                tag,
                what,
                len,
                expected,
            },
        )
    };
    let iv = get(t::IV, "IV")?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| len_err(t::IV, "IV", iv.len(), 16))?;
    let u16_of = |tag, what| -> Result<u16, DecodeError> {
        let v = get(tag, what)?;
        let b: [u8; 2] = v.try_into().map_err(|_| len_err(tag, what, v.len(), 2))?;
        Ok(u16::from_be_bytes(b))
    };
    let u8_of = |tag, what| -> Result<u8, DecodeError> {
        match get(tag, what)? {
            [b] => Ok(*b),
            v => Err(len_err(tag, what, v.len(), 1)),
        }
    };
    let code = u8_of(t::PLAINTEXT_HASH_ALGORITHM, "PLAINTEXT_HASH_ALGORITHM")?;
    let plaintext_digest =
        Digest::from_code(code).ok_or(DecodeError::new(0, ErrorKind::UnknownDigest(code)))?;
    Ok(EncryptionInfo {
        iv,
        padding_count: u16_of(t::PADDING_COUNT, "PADDING_COUNT")?,
        key_size: u16_of(t::KEY_SIZE, "KEY_SIZE")?,
        key_algorithm: u8_of(t::KEY_ALGORITHM, "KEY_ALGORITHM")?,
        wrapped_key: get(t::WRAPPED_KEY, "WRAPPED_KEY")?.to_vec(),
        plaintext_digest,
        plaintext_hash: get(t::PLAINTEXT_HASH, "PLAINTEXT_HASH")?.to_vec(),
    })
}

/// Inputs of [`encrypt`]. The AES key and IV come from the caller (no hidden randomness); the
/// RNG is only used for the PKCS#1 v1.5 key-wrap padding.
#[derive(Debug, Clone)]
pub struct EncryptOptions<'a> {
    /// Name bound into the signature (`SEP<MAC>.cnf.xml.enc.sgn`).
    pub filename: &'a str,
    /// Signature digest.
    pub digest: Digest,
    /// Plaintext hash digest (tag 26).
    pub plaintext_digest: Digest,
    /// UNIX seconds.
    pub timestamp: u32,
    /// Signer-info order.
    pub layout: Layout,
    /// AES-128 key.
    pub aes_key: [u8; 16],
    /// AES IV.
    pub iv: [u8; 16],
}

/// Encrypts `xml` to `phone_cert` and signs it with `key` (certificate `signer`), the way the
/// reference `enccnf` lays it out (§5).
pub fn encrypt(
    xml: &[u8],
    phone_cert: &CertInfo,
    opts: &EncryptOptions<'_>,
    key: &SigningKey,
    signer: &CertInfo,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<EncryptedFile, BuildError> {
    let pad = 16 - xml.len() % 16;
    let mut buf = Vec::with_capacity(xml.len().saturating_add(pad));
    buf.extend_from_slice(xml);
    buf.extend(std::iter::repeat_n(0x0Du8, pad));
    let len = buf.len();
    let ct = Enc::new(&opts.aes_key.into(), &opts.iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .map_err(|_| BuildError::Key("AES encryption failed".into()))?
        .to_vec();
    let wrapped = phone_cert.public_key.wrap(rng, &opts.aes_key)?;
    let key_size = u16::try_from(wrapped.len().saturating_mul(8))
        .map_err(|_| BuildError::TooLarge("wrapped key"))?;
    let pad16 = u16::try_from(pad).map_err(|_| BuildError::TooLarge("padding"))?;
    let f = |tag: u8, v: &[u8]| Element::field(tag, v.to_vec());
    let extra = vec![
        Element::Container {
            tag: t::ENCRYPTION_INFO,
            children: vec![
                Element::Container {
                    tag: t::ENCRYPTION_IV_INFO,
                    children: vec![
                        f(t::IV_UNKNOWN, &[0]),
                        f(t::IV, &opts.iv),
                        f(t::PADDING_COUNT, &pad16.to_be_bytes()),
                    ],
                },
                Element::Container {
                    tag: t::ENCRYPTION_KEY_INFO,
                    children: vec![
                        f(t::KEY_UNKNOWN, &[0]),
                        f(t::KEY_SIZE, &key_size.to_be_bytes()),
                        f(t::KEY_ALGORITHM, &[1]),
                        f(t::WRAPPED_KEY, &wrapped),
                    ],
                },
            ],
        },
        f(t::PLAINTEXT_HASH_ALGORITHM, &[opts.plaintext_digest.code()]),
        f(t::PLAINTEXT_HASH, &opts.plaintext_digest.hash(&[xml])),
    ];
    let id = signer_id(signer, opts.layout);
    let spec = HeaderSpec {
        version: (2, 0),
        signer_version: None,
        layout: opts.layout,
        signer: &id,
        digest: opts.digest,
        filename: opts.filename,
        timestamp: opts.timestamp,
        extra,
    };
    let bytes = build_signed(&spec, &ct, key)?;
    EncryptedFile::decode(&bytes)
        .map_err(|e| BuildError::Cert(format!("built file does not decode: {e}")))
}
