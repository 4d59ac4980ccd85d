//! Errors shared by the file decoders: where decoding failed, and why a signature did not verify.

use std::fmt;

/// A file or message could not be decoded. `offset` is the absolute byte offset in the input
/// where the problem was found (the start of the offending element where there is one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte offset {offset})")]
pub struct DecodeError {
    /// Absolute byte offset in the input.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Self {
        Self { offset, kind }
    }

    /// A short stable code for reports and counters (`truncated`, `length-overrun` …).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// Why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before a field was complete (bad-inputs T1).
    #[error("truncated {what}: need {need} bytes, {have} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// An element's length runs past its enclosing buffer (T2).
    #[error("tag {tag} ({name}) declares {len} bytes but only {left} are left in its {within}", name = crate::tags::header_tag_name(*tag))]
    LengthOverrun {
        /// The element tag.
        tag: u8,
        /// Its declared length.
        len: usize,
        /// Bytes left in the enclosing buffer.
        left: usize,
        /// The enclosing buffer: header, record, container, frame.
        within: &'static str,
    },
    /// HEADER_LENGTH is smaller than the fields before it or larger than the file (T3).
    #[error("HEADER_LENGTH {value} is impossible for a file of {file_len} bytes")]
    BadHeaderLength {
        /// Declared header length.
        value: usize,
        /// File length.
        file_len: usize,
    },
    /// A header element starts before HEADER_LENGTH and ends after it (T3).
    #[error("tag {tag} crosses the end of the header")]
    ElementCrossesHeaderEnd {
        /// The element tag.
        tag: u8,
    },
    /// The file does not start with VERSION then HEADER_LENGTH.
    #[error(
        "the header must start with VERSION (tag 1) then HEADER_LENGTH (tag 2), found tag {found}"
    )]
    HeaderStart {
        /// The tag found instead.
        found: u8,
    },
    /// The header version is not the one this format uses.
    #[error("header version {major}.{minor} is not {expected}")]
    BadVersion {
        /// Major version found.
        major: u8,
        /// Minor version found.
        minor: u8,
        /// What the format expects.
        expected: &'static str,
    },
    /// A tag that must appear once appears twice (T5).
    #[error("duplicate tag {tag} ({name})", name = crate::tags::header_tag_name(*tag))]
    DuplicateTag {
        /// The duplicated tag.
        tag: u8,
    },
    /// A required element is missing.
    #[error("missing tag {tag} ({what})")]
    MissingTag {
        /// The missing tag.
        tag: u8,
        /// Its meaning.
        what: &'static str,
    },
    /// A fixed-size field has the wrong length.
    #[error("tag {tag} ({what}) has length {len}, expected {expected}")]
    BadFieldLength {
        /// The tag.
        tag: u8,
        /// Its meaning.
        what: &'static str,
        /// Length found.
        len: usize,
        /// Length expected.
        expected: usize,
    },
    /// RECORD_LENGTH is below 5, past the end of the file, or a record does not start with it (T4).
    #[error("record #{n}: {problem}", n = index.saturating_add(1))]
    BadRecord {
        /// Zero-based record index.
        index: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Digest code (tag 8 / 26) not one of SHA-1 (1) or SHA-512 (3).
    #[error("unsupported digest code {0} (1 = SHA-1, 3 = SHA-512; 2 = SHA-256 is never emitted)")]
    UnknownDigest(u8),
    /// Signature modulus code (tag 11) not 0..=3.
    #[error("unknown signature modulus code {0}")]
    UnknownModulus(u8),
    /// The modulus code and the signature length disagree (T17).
    #[error("signature is {len} bytes but the modulus code {code} says {expected}")]
    SignatureLengthMismatch {
        /// Modulus code.
        code: u8,
        /// Signature length found.
        len: usize,
        /// Length implied by the code.
        expected: usize,
    },
    /// Too many elements or records (T13).
    #[error("more than {limit} {what}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// Containers nested deeper than the format allows (T13).
    #[error("containers nested deeper than {0}")]
    NestingTooDeep(usize),
    /// The file is bigger than the decoder accepts at all.
    #[error("input of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Limit.
        limit: usize,
    },
    /// A trust list with no records (the reference refuses these; §3.5).
    #[error("trust list has no records")]
    NoRecords,
    /// A `.sgn` whose header covers the whole file (bad-inputs §2.2).
    #[error("signed file has no payload")]
    EmptyPayload,
    /// Bytes left over where the format has none.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A value that is syntactically wrong for its field.
    #[error("bad value in {what}: {detail}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl ErrorKind {
    /// A short stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::LengthOverrun { .. } => "length-overrun",
            Self::BadHeaderLength { .. } => "bad-header-length",
            Self::ElementCrossesHeaderEnd { .. } => "element-crosses-header-end",
            Self::HeaderStart { .. } => "header-start",
            Self::BadVersion { .. } => "bad-version",
            Self::DuplicateTag { .. } => "duplicate-tag",
            Self::MissingTag { .. } => "missing-tag",
            Self::BadFieldLength { .. } => "bad-field-length",
            Self::BadRecord { .. } => "bad-record",
            Self::UnknownDigest(_) => "unknown-digest",
            Self::UnknownModulus(_) => "unknown-modulus",
            Self::SignatureLengthMismatch { .. } => "signature-length-mismatch",
            Self::TooMany { .. } => "too-many",
            Self::NestingTooDeep(_) => "nesting-too-deep",
            Self::TooLarge { .. } => "too-large",
            Self::NoRecords => "no-records",
            Self::EmptyPayload => "empty-payload",
            Self::TrailingBytes(_) => "trailing-bytes",
            Self::BadValue { .. } => "bad-value",
        }
    }
}

/// Why a signature check failed. Kept apart from [`DecodeError`]: the file parsed, it is just not
/// trustworthy (bad-inputs T8, T9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No SAST record whose serial equals the header serial (T8).
    #[error("no SAST record matches the signer serial {serial}")]
    MissingSigner {
        /// Header serial, hex.
        serial: String,
    },
    /// Several SAST records match the signer and they disagree (T6).
    #[error("{count} SAST records match signer serial {serial} with different certificates")]
    AmbiguousSigner {
        /// Header serial, hex.
        serial: String,
        /// How many matched.
        count: usize,
    },
    /// The signer's key is not an RSA key (T18).
    #[error("signer key is {0}, but these files are signed with RSA PKCS#1 v1.5")]
    UnsupportedSignerKey(String),
    /// The signer key is too small or too large to verify with (T16: RSA-512 is refused).
    #[error("signer RSA key of {0} bits is outside 1024..=8192")]
    KeySize(usize),
    /// The signature length does not match the key.
    #[error("signature is {sig_len} bytes but the key is {key_bytes} bytes")]
    SignatureLength {
        /// Signature length.
        sig_len: usize,
        /// Key modulus length.
        key_bytes: usize,
    },
    /// The key material could not be read.
    #[error("bad signer key: {0}")]
    BadKey(String),
    /// The RSA check failed: the signed bytes or the signature were changed, or another key signed.
    #[error("signature does not verify")]
    BadSignature,
}

/// Hex for messages.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A file could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The signing key's size has no modulus code (512, 1024, 2048, 4096 bits only; §2.7).
    #[error(
        "signing key of {0} bits: the format only expresses 512, 1024, 2048 or 4096-bit signatures"
    )]
    KeySize(usize),
    /// A field or the header would exceed the u16 lengths of the format.
    #[error("{0} too large for the format's 16-bit lengths")]
    TooLarge(&'static str),
    /// A certificate could not be used.
    #[error("certificate: {0}")]
    Cert(String),
    /// A key could not be used.
    #[error("key: {0}")]
    Key(String),
}
