//! Signed files (`SEP<MAC>.cnf.xml.sgn`, firmware `.sgn`): header version 1.0, then the original
//! file unchanged (wire-formats §4).

use bytes::Bytes;

use crate::cert::{CertInfo, DnStyle};
use crate::crypto::{PublicKey, SigningKey};
use crate::error::{BuildError, DecodeError, ErrorKind, VerifyError};
use crate::header::{Envelope, HeaderInfo, HeaderSpec, Layout, SignerId, build_signed};
use crate::tags::Digest;

/// Decoder cap on a signed file (configs are a few KB; firmware `.sgn` can be large).
pub const MAX_FILE_SIZE: usize = 64 * 1024 * 1024;

/// A decoded `.sgn` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFile {
    envelope: Envelope,
}

impl SignedFile {
    /// Decodes a `.sgn` file (version 1.x, non-empty payload).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope = Envelope::decode_format(
            Bytes::copy_from_slice(bytes),
            MAX_FILE_SIZE,
            1,
            "1.0 (.sgn)",
        )?;
        let info = envelope.info();
        if envelope.body().is_empty() {
            return Err(DecodeError::new(
                info.header_length,
                ErrorKind::EmptyPayload,
            ));
        }
        Ok(Self { envelope })
    }

    /// Re-encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.envelope.raw().len());
        self.envelope.encode_header(&mut out);
        out.extend_from_slice(self.payload());
        out
    }

    /// The signed header and the bytes as received.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Header facts.
    pub fn info(&self) -> &HeaderInfo {
        self.envelope.info()
    }

    /// The original file (what `stripsgn` returns).
    pub fn payload(&self) -> &[u8] {
        self.envelope.body()
    }

    /// Checks the signature with a key the caller trusts.
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), VerifyError> {
        self.envelope.verify_with(key)
    }
}

/// What to sign and how.
#[derive(Debug, Clone)]
pub struct SignOptions<'a> {
    /// Name bound into the signature (`SEP001122334455.cnf.xml.sgn`).
    pub filename: &'a str,
    /// Digest (SHA-1 or SHA-512: the TFTP File Signature Algorithm parameter).
    pub digest: Digest,
    /// UNIX seconds.
    pub timestamp: u32,
    /// Signer-info order and DN style.
    pub layout: Layout,
}

/// The SIGNER_INFO strings for `cert` in `layout`.
pub fn signer_id(cert: &CertInfo, layout: Layout) -> SignerId {
    let dn = match layout {
        Layout::Reference => DnStyle::Reference,
        Layout::Cucm => DnStyle::Cucm,
    };
    SignerId {
        name: cert.subject_dn(dn),
        issuer: cert.issuer_dn(dn),
        serial: cert.serial.clone(),
    }
}

/// Signs `payload` with `key` (whose certificate is `signer`).
pub fn sign(
    payload: &[u8],
    opts: &SignOptions<'_>,
    key: &SigningKey,
    signer: &CertInfo,
) -> Result<SignedFile, BuildError> {
    let id = signer_id(signer, opts.layout);
    sign_as(payload, opts, key, &id)
}

/// Signs `payload` with prepared signer strings (lets a caller sign many files without
/// re-reading the certificate).
pub fn sign_as(
    payload: &[u8],
    opts: &SignOptions<'_>,
    key: &SigningKey,
    id: &SignerId,
) -> Result<SignedFile, BuildError> {
    if payload.is_empty() {
        return Err(BuildError::TooLarge("empty payload: a .sgn needs a body"));
    }
    let spec = HeaderSpec {
        version: (1, 0),
        signer_version: None,
        layout: opts.layout,
        signer: id,
        digest: opts.digest,
        filename: opts.filename,
        timestamp: opts.timestamp,
        extra: Vec::new(),
    };
    let bytes = build_signed(&spec, payload, key)?;
    SignedFile::decode(&bytes)
        .map_err(|e| BuildError::Cert(format!("built file does not decode: {e}")))
}
