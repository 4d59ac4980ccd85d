//! The signed header shared by `.tlv`, `.sgn` and `.enc.sgn` (wire-formats §2), and the
//! [`Envelope`] that ties a decoded header to the bytes it was decoded from.

use std::ops::Range;

use bytes::Bytes;

use crate::crypto::{PublicKey, SigningKey};
use crate::error::{BuildError, DecodeError, ErrorKind, Hex, VerifyError};
use crate::reader::{Reader, TagSet, put_tlv};
use crate::tags::{self, Digest, header as t};

/// Header elements beyond this count are refused (bad-inputs T13).
pub const MAX_HEADER_ELEMENTS: usize = 1024;
/// Containers nest at most this deep (16 → 17 is the deepest real nesting: depth 2).
pub const MAX_NESTING: usize = 4;

/// One header element, in file order. Unknown tags are kept as [`Element::Field`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Element {
    /// `tag | u16 length | value`.
    Field {
        /// Tag.
        tag: u8,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// A container tag (3, 7, 9, 16, 17, 21) whose value is the list of child elements.
    Container {
        /// Tag.
        tag: u8,
        /// Children in file order.
        children: Vec<Element>,
    },
    /// One `0x0D` padding byte (no length).
    Padding,
}

impl Element {
    pub(crate) fn field(tag: u8, value: impl Into<Vec<u8>>) -> Self {
        Element::Field {
            tag,
            value: value.into(),
        }
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Element::Field { value, .. } => 3usize.saturating_add(value.len()),
            Element::Container { children, .. } => {
                3usize.saturating_add(children.iter().map(Element::encoded_len).sum::<usize>())
            }
            Element::Padding => 1,
        }
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Element::Field { tag, value } => put_tlv(out, *tag, value),
            Element::Container { tag, children } => {
                let len: usize = children.iter().map(Element::encoded_len).sum();
                out.push(*tag);
                out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
                for c in children {
                    c.encode(out);
                }
            }
            Element::Padding => out.push(t::PADDING),
        }
    }
}

/// Where the tag-12 SIGNATURE element sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SigPos {
    offset: usize,
    len: usize,
}

/// The facts of a decoded header, read out of its elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// VERSION (major, minor).
    pub version: (u8, u8),
    /// HEADER_LENGTH: where the body starts.
    pub header_length: usize,
    /// SIGNER_VERSION (tag 28), `.tlv` reference layout only.
    pub signer_version: Option<(u8, u8)>,
    /// Signer subject DN as stored (usually NUL-terminated).
    pub signer_name: Option<Vec<u8>>,
    /// Signer serial (minimal unsigned big-endian).
    pub serial: Vec<u8>,
    /// Signer issuer DN as stored.
    pub issuer: Option<Vec<u8>>,
    /// Digest of the signature.
    pub digest: Digest,
    /// SIGNATURE_ALGORITHM (0 = RSA), when present.
    pub signature_algorithm: Option<u8>,
    /// SIGNATURE_MODULUS code.
    pub modulus_code: u8,
    /// The signature.
    pub signature: Vec<u8>,
    /// FILENAME as stored.
    pub filename: Option<Vec<u8>>,
    /// TIMESTAMP (UNIX seconds).
    pub timestamp: Option<u32>,
    /// Number of padding bytes in the header.
    pub padding: usize,
}

impl HeaderInfo {
    /// The signer name as text (NUL dropped, control characters escaped).
    pub fn signer_name_text(&self) -> String {
        self.signer_name
            .as_deref()
            .map(display_string)
            .unwrap_or_default()
    }

    /// The issuer name as text.
    pub fn issuer_text(&self) -> String {
        self.issuer
            .as_deref()
            .map(display_string)
            .unwrap_or_default()
    }

    /// The file name as text.
    pub fn filename_text(&self) -> String {
        self.filename
            .as_deref()
            .map(display_string)
            .unwrap_or_default()
    }

    /// Serial as lowercase hex.
    pub fn serial_hex(&self) -> String {
        Hex(&self.serial).to_string()
    }
}

/// A decoded signed file: header elements, header facts, and the bytes as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    elements: Vec<Element>,
    info: HeaderInfo,
    raw: Bytes,
    sig: SigPos,
}

impl Envelope {
    /// Decodes the header of `bytes`. The body (`bytes[header_length..]`) is left to the format.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_shared(Bytes::copy_from_slice(bytes))
    }

    /// Decodes without copying `bytes`.
    pub fn decode_shared(raw: Bytes) -> Result<Self, DecodeError> {
        let bytes: &[u8] = &raw;
        let mut r = Reader::new(bytes);
        let (off, tag, value) = r.tlv("file")?;
        if tag != t::VERSION {
            return Err(DecodeError::new(off, ErrorKind::HeaderStart { found: tag }));
        }
        let version = two_bytes(off, tag, "VERSION", value)?;
        let (off, tag, value) = r.tlv("file")?;
        if tag != t::HEADER_LENGTH {
            return Err(DecodeError::new(off, ErrorKind::HeaderStart { found: tag }));
        }
        let hl = two_bytes(off, tag, "HEADER_LENGTH", value)?;
        let header_length = usize::from(u16::from_be_bytes([hl.0, hl.1]));
        if header_length < r.offset() || header_length > bytes.len() {
            return Err(DecodeError::new(
                off,
                ErrorKind::BadHeaderLength {
                    value: header_length,
                    file_len: bytes.len(),
                },
            ));
        }
        let rest = bytes.get(r.offset()..header_length).unwrap_or_default();
        let mut walker = Walker {
            count: 0,
            seen: TagSet::default(),
            found: Found::default(),
        };
        let mut elements = vec![
            Element::field(t::VERSION, [version.0, version.1]),
            Element::field(t::HEADER_LENGTH, [hl.0, hl.1]),
        ];
        walker.seen.insert(t::VERSION);
        walker.seen.insert(t::HEADER_LENGTH);
        let mut body = Reader::with_base(rest, r.offset());
        elements.extend(walker.elements(&mut body, 0)?);
        let found = walker.found;
        let info = found.into_info(version, header_length)?;
        let sig = signature_position(&info, &elements)?;
        Ok(Envelope {
            elements,
            info,
            raw: raw.clone(),
            sig,
        })
    }

    /// Decodes a file of one format: refuses inputs over `max` bytes before any work, and
    /// headers whose major version is not `major`.
    pub(crate) fn decode_format(
        raw: Bytes,
        max: usize,
        major: u8,
        expected: &'static str,
    ) -> Result<Self, DecodeError> {
        if raw.len() > max {
            return Err(DecodeError::new(
                0,
                ErrorKind::TooLarge {
                    len: raw.len(),
                    limit: max,
                },
            ));
        }
        let envelope = Self::decode_shared(raw)?;
        let (maj, min) = envelope.info.version;
        if maj != major {
            return Err(DecodeError::new(
                0,
                ErrorKind::BadVersion {
                    major: maj,
                    minor: min,
                    expected,
                },
            ));
        }
        Ok(envelope)
    }

    /// Header facts.
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }

    /// Header elements in file order.
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// The whole file as received (or as built).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The whole file as a shared buffer.
    pub fn raw_shared(&self) -> &Bytes {
        &self.raw
    }

    /// Everything after the header.
    pub fn body(&self) -> &[u8] {
        self.raw.get(self.info.header_length..).unwrap_or_default()
    }

    /// The two byte ranges the signature covers: the file minus the tag-12 TLV (§2.4).
    pub fn signed_ranges(&self) -> (Range<usize>, Range<usize>) {
        let end = self
            .sig
            .offset
            .saturating_add(3)
            .saturating_add(self.sig.len);
        (0..self.sig.offset, end..self.raw.len())
    }

    /// The signed bytes, as received.
    pub fn signed_data(&self) -> Vec<u8> {
        let (a, b) = self.signed_ranges();
        let mut v = Vec::with_capacity(a.len().saturating_add(b.len()));
        v.extend_from_slice(self.raw.get(a).unwrap_or_default());
        v.extend_from_slice(self.raw.get(b).unwrap_or_default());
        v
    }

    /// Checks the signature over the received bytes with `key`.
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), VerifyError> {
        let (a, b) = self.signed_ranges();
        let parts = [
            self.raw.get(a).unwrap_or_default(),
            self.raw.get(b).unwrap_or_default(),
        ];
        key.verify_parts(self.info.digest, &parts, &self.info.signature)
    }

    /// Re-encodes the header elements (not the body).
    pub fn encode_header(&self, out: &mut Vec<u8>) {
        for e in &self.elements {
            e.encode(out);
        }
    }
}

fn signature_position(info: &HeaderInfo, elements: &[Element]) -> Result<SigPos, DecodeError> {
    // The offset of the signature TLV, found by walking the encoded sizes of the elements.
    fn find(elements: &[Element], mut at: usize) -> Option<usize> {
        for e in elements {
            match e {
                Element::Field { tag, .. } if *tag == t::SIGNATURE => return Some(at),
                Element::Container { children, .. } => {
                    if let Some(o) = find(children, at.saturating_add(3)) {
                        return Some(o);
                    }
                }
                _ => {}
            }
            at = at.saturating_add(e.encoded_len());
        }
        None
    }
    let offset = find(elements, 0).ok_or(DecodeError::new(
        0,
        ErrorKind::MissingTag {
            tag: t::SIGNATURE,
            what: "SIGNATURE",
        },
    ))?;
    Ok(SigPos {
        offset,
        len: info.signature.len(),
    })
}

fn two_bytes(off: usize, tag: u8, what: &'static str, v: &[u8]) -> Result<(u8, u8), DecodeError> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => Err(DecodeError::new(
            off,
            ErrorKind::BadFieldLength {
                tag,
                what,
                len: v.len(),
                expected: 2,
            },
        )),
    }
}

fn one_byte(off: usize, tag: u8, what: &'static str, v: &[u8]) -> Result<u8, DecodeError> {
    match v {
        [a] => Ok(*a),
        _ => Err(DecodeError::new(
            off,
            ErrorKind::BadFieldLength {
                tag,
                what,
                len: v.len(),
                expected: 1,
            },
        )),
    }
}

#[derive(Default)]
struct Found {
    signer_version: Option<(u8, u8)>,
    signer_name: Option<Vec<u8>>,
    serial: Option<Vec<u8>>,
    issuer: Option<Vec<u8>>,
    digest: Option<(usize, u8)>,
    signature_algorithm: Option<u8>,
    modulus: Option<(usize, u8)>,
    signature: Option<(usize, Vec<u8>)>,
    filename: Option<Vec<u8>>,
    timestamp: Option<u32>,
    padding: usize,
}

impl Found {
    fn into_info(self, version: (u8, u8), header_length: usize) -> Result<HeaderInfo, DecodeError> {
        let missing = |tag, what| DecodeError::new(0, ErrorKind::MissingTag { tag, what });
        let serial = self
            .serial
            .ok_or_else(|| missing(t::SERIAL_NUMBER, "SERIAL_NUMBER"))?;
        let (doff, dcode) = self
            .digest
            .ok_or_else(|| missing(t::HASH_ALGORITHM, "HASH_ALGORITHM"))?;
        let digest = Digest::from_code(dcode)
            .ok_or(DecodeError::new(doff, ErrorKind::UnknownDigest(dcode)))?;
        let (moff, mcode) = self
            .modulus
            .ok_or_else(|| missing(t::SIGNATURE_MODULUS, "SIGNATURE_MODULUS"))?;
        let expected = tags::modulus_len(mcode)
            .ok_or(DecodeError::new(moff, ErrorKind::UnknownModulus(mcode)))?;
        let (soff, signature) = self
            .signature
            .ok_or_else(|| missing(t::SIGNATURE, "SIGNATURE"))?;
        if signature.len() != expected {
            return Err(DecodeError::new(
                soff,
                ErrorKind::SignatureLengthMismatch {
                    code: mcode,
                    len: signature.len(),
                    expected,
                },
            ));
        }
        Ok(HeaderInfo {
            version,
            header_length,
            signer_version: self.signer_version,
            signer_name: self.signer_name,
            serial,
            issuer: self.issuer,
            digest,
            signature_algorithm: self.signature_algorithm,
            modulus_code: mcode,
            signature,
            filename: self.filename,
            timestamp: self.timestamp,
            padding: self.padding,
        })
    }
}

struct Walker {
    count: usize,
    seen: TagSet,
    found: Found,
}

impl Walker {
    fn elements(&mut self, r: &mut Reader<'_>, depth: usize) -> Result<Vec<Element>, DecodeError> {
        if depth > MAX_NESTING {
            return Err(DecodeError::new(
                r.offset(),
                ErrorKind::NestingTooDeep(MAX_NESTING),
            ));
        }
        let within = if depth == 0 { "header" } else { "container" };
        let mut out = Vec::new();
        while !r.is_empty() {
            self.count = self.count.saturating_add(1);
            if self.count > MAX_HEADER_ELEMENTS {
                return Err(DecodeError::new(
                    r.offset(),
                    ErrorKind::TooMany {
                        what: "header elements",
                        limit: MAX_HEADER_ELEMENTS,
                    },
                ));
            }
            if r.peek_u8() == Some(t::PADDING) {
                r.u8("padding")?;
                self.found.padding = self.found.padding.saturating_add(1);
                out.push(Element::Padding);
                continue;
            }
            let (off, tag, value) = r.tlv(within).map_err(|e| match e.kind {
                ErrorKind::LengthOverrun { tag, .. } if depth == 0 => {
                    DecodeError::new(e.offset, ErrorKind::ElementCrossesHeaderEnd { tag })
                }
                _ => e,
            })?;
            if !self.seen.insert(tag) {
                return Err(DecodeError::new(off, ErrorKind::DuplicateTag { tag }));
            }
            if t::is_container(tag) {
                let mut sub = Reader::with_base(value, off.saturating_add(3));
                let children = self.elements(&mut sub, depth.saturating_add(1))?;
                out.push(Element::Container { tag, children });
                continue;
            }
            self.note(off, tag, value)?;
            out.push(Element::field(tag, value));
        }
        Ok(out)
    }

    fn note(&mut self, off: usize, tag: u8, v: &[u8]) -> Result<(), DecodeError> {
        let f = &mut self.found;
        match tag {
            t::SIGNER_VERSION => f.signer_version = Some(two_bytes(off, tag, "SIGNER_VERSION", v)?),
            t::SIGNER_NAME => f.signer_name = Some(v.to_vec()),
            t::SERIAL_NUMBER => f.serial = Some(v.to_vec()),
            t::ISSUER_NAME => f.issuer = Some(v.to_vec()),
            t::HASH_ALGORITHM => f.digest = Some((off, one_byte(off, tag, "HASH_ALGORITHM", v)?)),
            t::SIGNATURE_ALGORITHM => {
                let a = one_byte(off, tag, "SIGNATURE_ALGORITHM", v)?;
                if a != 0 {
                    return Err(DecodeError::new(
                        off,
                        ErrorKind::BadValue {
                            what: "SIGNATURE_ALGORITHM",
                            detail: format!("{a} (only 0 = RSA is known)"),
                        },
                    ));
                }
                f.signature_algorithm = Some(a);
            }
            t::SIGNATURE_MODULUS => {
                f.modulus = Some((off, one_byte(off, tag, "SIGNATURE_MODULUS", v)?))
            }
            t::SIGNATURE => f.signature = Some((off, v.to_vec())),
            t::FILENAME => f.filename = Some(v.to_vec()),
            t::TIMESTAMP => {
                let b: [u8; 4] = v.try_into().map_err(|_| {
                    DecodeError::new(
                        off,
                        ErrorKind::BadFieldLength {
                            tag,
                            what: "TIMESTAMP",
                            len: v.len(),
                            expected: 4,
                        },
                    )
                })?;
                f.timestamp = Some(u32::from_be_bytes(b));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Shows a stored string: drops one trailing NUL, escapes control and non-UTF-8 bytes (T10).
pub fn display_string(raw: &[u8]) -> String {
    let s = raw.strip_suffix(&[0]).unwrap_or(raw);
    let mut out = String::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A string field value: the text plus its terminating NUL (§1).
pub fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len().saturating_add(1));
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// Field orders: what the reference tool writes, or what CUCM's `show ctl` lists (§2.2, §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// usecallmanagernz `tlvfile`/`sgnfile`: signer info 4,6,5; records 1,3,5,6,4,7,8,9; tag 28 in `.tlv`.
    #[default]
    Reference,
    /// CUCM: signer info 4,5,6; records 1..10 with DNS name and IP; no tag 28; `;`-joined DNs.
    Cucm,
}

/// Who signs: the strings and serial that go into SIGNER_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerId {
    /// Subject DN text (without NUL).
    pub name: String,
    /// Issuer DN text (without NUL).
    pub issuer: String,
    /// Minimal unsigned big-endian serial.
    pub serial: Vec<u8>,
}

/// Everything the header builder needs besides the key and the body.
#[derive(Debug, Clone)]
pub(crate) struct HeaderSpec<'a> {
    pub version: (u8, u8),
    pub signer_version: Option<(u8, u8)>,
    pub layout: Layout,
    pub signer: &'a SignerId,
    pub digest: Digest,
    pub filename: &'a str,
    pub timestamp: u32,
    /// Elements after TIMESTAMP (`.enc.sgn` encryption fields).
    pub extra: Vec<Element>,
}

/// Assembles and signs a header over `body` (§2.4 builder recipe) and returns the whole file.
pub(crate) fn build_signed(
    spec: &HeaderSpec<'_>,
    body: &[u8],
    key: &SigningKey,
) -> Result<Vec<u8>, BuildError> {
    let sig_len = key.modulus_len();
    let modulus_code =
        tags::modulus_code(sig_len).ok_or(BuildError::KeySize(sig_len.saturating_mul(8)))?;
    let s = spec.signer;
    let name = Element::field(t::SIGNER_NAME, nul_terminated(&s.name));
    let serial = Element::field(t::SERIAL_NUMBER, s.serial.clone());
    let issuer = Element::field(t::ISSUER_NAME, nul_terminated(&s.issuer));
    let signer_children = match spec.layout {
        Layout::Reference => vec![name, issuer, serial],
        Layout::Cucm => vec![name, serial, issuer],
    };
    let mut elements = vec![
        Element::field(t::VERSION, [spec.version.0, spec.version.1]),
        Element::field(t::HEADER_LENGTH, [0, 0]),
    ];
    if let Some((a, b)) = spec.signer_version {
        elements.push(Element::field(t::SIGNER_VERSION, [a, b]));
    }
    elements.push(Element::Container {
        tag: t::SIGNER_INFO,
        children: signer_children,
    });
    elements.push(Element::Container {
        tag: t::SIGNATURE_INFO,
        children: vec![
            Element::field(t::HASH_ALGORITHM, [spec.digest.code()]),
            Element::Container {
                tag: t::SIGNATURE_ALGORITHM_INFO,
                children: vec![
                    Element::field(t::SIGNATURE_ALGORITHM, [0]),
                    Element::field(t::SIGNATURE_MODULUS, [modulus_code]),
                ],
            },
        ],
    });
    let sig_index = elements.len();
    elements.push(Element::field(t::FILENAME, nul_terminated(spec.filename)));
    elements.push(Element::field(t::TIMESTAMP, spec.timestamp.to_be_bytes()));
    elements.extend(spec.extra.iter().cloned());
    for e in &elements {
        if let Element::Field { value, .. } = e
            && value.len() > usize::from(u16::MAX)
        {
            return Err(BuildError::TooLarge("header field"));
        }
    }
    let unpadded = elements
        .iter()
        .map(Element::encoded_len)
        .sum::<usize>()
        .saturating_add(3)
        .saturating_add(sig_len);
    let pad = (4 - unpadded % 4) % 4;
    let header_length = unpadded.saturating_add(pad);
    let hl = u16::try_from(header_length).map_err(|_| BuildError::TooLarge("header"))?;
    if let Some(Element::Field { value, .. }) = elements.get_mut(1) {
        *value = hl.to_be_bytes().to_vec();
    }
    elements.extend(std::iter::repeat_n(Element::Padding, pad));
    // Signed bytes: header without the signature TLV, then the body.
    let mut msg = Vec::with_capacity(header_length.saturating_add(body.len()));
    for e in &elements {
        e.encode(&mut msg);
    }
    msg.extend_from_slice(body);
    let signature = key.sign(spec.digest, &msg);
    elements.insert(sig_index, Element::field(t::SIGNATURE, signature));
    let mut out = Vec::with_capacity(msg.len().saturating_add(3).saturating_add(sig_len));
    for e in &elements {
        e.encode(&mut out);
    }
    out.extend_from_slice(body);
    Ok(out)
}
