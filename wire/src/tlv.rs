//! ITL and CTL trust lists: `ITLFile.tlv`, `CTLFile.tlv`, `ITLSEP<MAC>.tlv`, `CTLSEP<MAC>.tlv`
//! (wire-formats §3). A file is a signed header (version 1.2) followed by records until the end.

use bytes::Bytes;

use crate::cert::{CertInfo, DnStyle};
use crate::crypto::{PublicKey, SigningKey};
use crate::error::{BuildError, DecodeError, ErrorKind, Hex, VerifyError};
use crate::header::{
    self, Element, Envelope, HeaderSpec, Layout, SignerId, display_string, nul_terminated,
};
use crate::reader::{Reader, TagSet, put_tlv};
use crate::tags::{Digest, Role, record as r};

/// A phone refuses trust lists larger than this (phone-behaviour E10: 65,536 bytes).
pub const PHONE_SIZE_LIMIT: usize = 65_536;
/// Decoder cap on the number of records (a 1 MB stress ITL has about 1,000; bad-inputs T12).
pub const MAX_RECORDS: usize = 16_384;
/// Decoder cap on the input size.
pub const MAX_FILE_SIZE: usize = 16 * 1024 * 1024;
/// Record fields beyond this count are refused.
pub const MAX_RECORD_FIELDS: usize = 64;

/// One record field, in file order. Unknown tags are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Record tag (§3.3).
    pub tag: u8,
    /// Value bytes.
    pub value: Vec<u8>,
}

/// Where one field's value sits inside [`Record::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FieldPos {
    tag: u8,
    start: u32,
    len: u16,
}

/// One certificate record of a trust list, held as its exact encoded bytes (RECORD_LENGTH
/// included; a slice of the received file when decoded, so decoding copies nothing) plus the
/// position of each field. Two records are equal when their bytes are.
#[derive(Debug, Clone)]
pub struct Record {
    bytes: Bytes,
    fields: Vec<FieldPos>,
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Record {}

impl Default for Record {
    /// A record with no fields: just RECORD_LENGTH = 5.
    fn default() -> Self {
        Self {
            bytes: Bytes::from_static(&[r::RECORD_LENGTH, 0, 2, 0, 5]),
            fields: Vec::new(),
        }
    }
}

impl std::hash::Hash for Record {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

/// How [`Record::from_cert`] lays a record out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordStyle {
    /// Field order and DN style.
    pub layout: Layout,
    /// Leave out tag 8 (CUCM eToken-style records).
    pub omit_signature: bool,
    /// DNS name (CUCM layout; empty string allowed).
    pub dns_name: Option<String>,
    /// IPv4 address (CUCM layout).
    pub ip: Option<[u8; 4]>,
}

impl Record {
    /// A record from its fields (RECORD_LENGTH excluded, values of at most 65,535 bytes).
    pub fn from_fields(fields: Vec<Field>) -> Result<Self, BuildError> {
        let total = fields.iter().fold(5usize, |n, f| {
            n.saturating_add(3).saturating_add(f.value.len())
        });
        let len = u16::try_from(total).map_err(|_| BuildError::TooLarge("record"))?;
        let mut out = Vec::with_capacity(total);
        put_tlv(&mut out, r::RECORD_LENGTH, &len.to_be_bytes());
        let mut pos = Vec::with_capacity(fields.len());
        for f in &fields {
            let flen =
                u16::try_from(f.value.len()).map_err(|_| BuildError::TooLarge("record field"))?;
            let start = u32::try_from(out.len().saturating_add(3))
                .map_err(|_| BuildError::TooLarge("record"))?;
            put_tlv(&mut out, f.tag, &f.value);
            pos.push(FieldPos {
                tag: f.tag,
                start,
                len: flen,
            });
        }
        Ok(Self {
            bytes: Bytes::from(out),
            fields: pos,
        })
    }

    /// A record for `cert` with `role`, laid out as the reference tool or CUCM does.
    pub fn from_cert(role: Role, cert: &CertInfo, style: &RecordStyle) -> Self {
        let dn = match style.layout {
            Layout::Reference => DnStyle::Reference,
            Layout::Cucm => DnStyle::Cucm,
        };
        let f = |tag, value: Vec<u8>| Field { tag, value };
        let subject = f(r::SUBJECT_NAME, nul_terminated(&cert.subject_dn(dn)));
        let issuer = f(r::ISSUER_NAME, nul_terminated(&cert.issuer_dn(dn)));
        let serial = f(r::SERIAL_NUMBER, cert.serial.clone());
        let role = f(r::ROLE, role.0.to_be_bytes().to_vec());
        let key = f(r::PUBLIC_KEY, cert.public_key_bits.clone());
        let sig = (!style.omit_signature).then(|| f(r::SIGNATURE, cert.signature_value.clone()));
        let der = f(r::CERTIFICATE, cert.der.clone());
        let mut fields = Vec::with_capacity(10);
        match style.layout {
            Layout::Reference => {
                fields.extend([subject, issuer, serial, role, key]);
                fields.extend(sig);
                fields.push(der);
            }
            Layout::Cucm => {
                fields.push(f(
                    r::DNS_NAME,
                    nul_terminated(style.dns_name.as_deref().unwrap_or("")),
                ));
                fields.extend([subject, role, issuer, serial, key]);
                fields.extend(sig);
                fields.push(der);
                fields.push(f(r::IP_ADDRESS, style.ip.unwrap_or([0; 4]).to_vec()));
            }
        }
        // Certificate parts are bounded by the DER certificate, itself at most 64 KB when it came
        // from a decoded file; an oversized one yields a record of only what fits.
        Self::from_fields(fields).unwrap_or_default()
    }

    /// Fields in file order (without RECORD_LENGTH): (tag, value).
    pub fn fields(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.fields.iter().map(|p| (p.tag, self.value(p)))
    }

    fn value(&self, p: &FieldPos) -> &[u8] {
        let start = p.start as usize;
        self.bytes
            .get(start..start.saturating_add(usize::from(p.len)))
            .unwrap_or_default()
    }

    /// The exact encoded bytes of the record.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The value of the first field with `tag`.
    pub fn field(&self, tag: u8) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.tag == tag)
            .map(|p| self.value(p))
    }

    /// Role (tag 4), when present and 2 bytes long.
    pub fn role(&self) -> Option<Role> {
        match self.field(r::ROLE)? {
            [a, b] => Some(Role(u16::from_be_bytes([*a, *b]))),
            _ => None,
        }
    }

    /// Subject DN as stored (tag 3).
    pub fn subject(&self) -> Option<&[u8]> {
        self.field(r::SUBJECT_NAME)
    }

    /// Issuer DN as stored (tag 5).
    pub fn issuer(&self) -> Option<&[u8]> {
        self.field(r::ISSUER_NAME)
    }

    /// Serial (tag 6).
    pub fn serial(&self) -> Option<&[u8]> {
        self.field(r::SERIAL_NUMBER)
    }

    /// DNS name (tag 2).
    pub fn dns_name(&self) -> Option<&[u8]> {
        self.field(r::DNS_NAME)
    }

    /// IP address (tag 10).
    pub fn ip_address(&self) -> Option<&[u8]> {
        self.field(r::IP_ADDRESS)
    }

    /// Public key (tag 7).
    pub fn public_key(&self) -> Option<&[u8]> {
        self.field(r::PUBLIC_KEY)
    }

    /// Certificate DER (tag 9).
    pub fn certificate(&self) -> Option<&[u8]> {
        self.field(r::CERTIFICATE)
    }

    /// Subject text.
    pub fn subject_text(&self) -> String {
        self.subject().map(display_string).unwrap_or_default()
    }

    /// Issuer text.
    pub fn issuer_text(&self) -> String {
        self.issuer().map(display_string).unwrap_or_default()
    }

    /// Serial as hex.
    pub fn serial_hex(&self) -> String {
        Hex(self.serial().unwrap_or_default()).to_string()
    }

    /// The parsed certificate, when the record carries one.
    pub fn cert(&self) -> Option<Result<CertInfo, BuildError>> {
        self.certificate().map(CertInfo::parse)
    }

    /// The key that verifies files this record signs: the certificate's key, else tag 7 (RSA).
    pub fn verifying_key(&self) -> Result<PublicKey, VerifyError> {
        if let Some(der) = self.certificate() {
            return crate::cert::public_key_of(der).map_err(|e| VerifyError::BadKey(e.to_string()));
        }
        match self.public_key() {
            Some(k) => PublicKey::from_rsa_der(k),
            None => Err(VerifyError::BadKey(
                "record has neither CERTIFICATE nor PUBLIC_KEY".into(),
            )),
        }
    }

    /// True when the record has no certificate (CUCM's blanked records of a non-secure CTL).
    pub fn is_blank(&self) -> bool {
        self.certificate().is_none() && self.public_key().is_none()
    }

    /// Encoded size including RECORD_LENGTH.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the record.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }

    fn decode(rd: &mut Reader<'_>, raw: &Bytes, index: usize) -> Result<Self, DecodeError> {
        let start = rd.offset();
        let bad = |problem| DecodeError::new(start, ErrorKind::BadRecord { index, problem });
        let (_, tag, value) = rd
            .tlv("record list")
            .map_err(|_| bad("truncated RECORD_LENGTH"))?;
        if tag != r::RECORD_LENGTH {
            return Err(bad("does not start with RECORD_LENGTH (tag 1)"));
        }
        let len = match value {
            [a, b] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => return Err(bad("RECORD_LENGTH is not 2 bytes")),
        };
        if len < 5 {
            return Err(bad("RECORD_LENGTH below 5"));
        }
        let body_len = len.saturating_sub(5);
        if body_len > rd.left() {
            return Err(bad("RECORD_LENGTH runs past the end of the file"));
        }
        let body = rd.take(body_len, "record")?;
        let mut fr = Reader::with_base(body, start.saturating_add(5));
        let mut fields = Vec::new();
        let mut seen = TagSet::default();
        while !fr.is_empty() {
            let (off, tag, value) = fr.tlv("record")?;
            if fields.len() >= MAX_RECORD_FIELDS {
                return Err(DecodeError::new(
                    off,
                    ErrorKind::TooMany {
                        what: "record fields",
                        limit: MAX_RECORD_FIELDS,
                    },
                ));
            }
            if !seen.insert(tag) || tag == r::RECORD_LENGTH {
                return Err(DecodeError::new(off, ErrorKind::DuplicateTag { tag }));
            }
            if tag == r::ROLE && value.len() != 2 {
                return Err(DecodeError::new(
                    off,
                    ErrorKind::BadFieldLength {
                        tag,
                        what: "ROLE",
                        len: value.len(),
                        expected: 2,
                    },
                ));
            }
            // Positions relative to the record start; values stay in the shared file buffer.
            let rel = off.saturating_add(3).saturating_sub(start);
            fields.push(FieldPos {
                tag,
                start: u32::try_from(rel).unwrap_or(u32::MAX),
                len: u16::try_from(value.len()).unwrap_or(u16::MAX),
            });
        }
        let end = start.saturating_add(len);
        let bytes = match raw.get(start..end) {
            Some(_) => raw.slice(start..end),
            None => return Err(bad("RECORD_LENGTH runs past the end of the file")),
        };
        Ok(Self { bytes, fields })
    }
}

/// An ITL or CTL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    envelope: Envelope,
    records: Vec<Record>,
}

/// Which signer record authenticated a file, and with which key.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    /// Index of the SAST record in [`TrustList::records`].
    pub index: usize,
    /// The record.
    pub record: &'a Record,
}

impl TrustList {
    /// Decodes a trust list. Signatures are not checked here: see [`TrustList::verify_self`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_shared(Bytes::copy_from_slice(bytes))
    }

    /// Decodes without copying: records point into `bytes` (files shared between many phones).
    pub fn decode_shared(bytes: Bytes) -> Result<Self, DecodeError> {
        let envelope = Envelope::decode_format(bytes, MAX_FILE_SIZE, 1, "1.x (trust list)")?;
        let info = envelope.info();
        let mut rd = Reader::with_base(envelope.body(), info.header_length);
        let mut records = Vec::new();
        while !rd.is_empty() {
            if records.len() >= MAX_RECORDS {
                return Err(DecodeError::new(
                    rd.offset(),
                    ErrorKind::TooMany {
                        what: "records",
                        limit: MAX_RECORDS,
                    },
                ));
            }
            let index = records.len();
            records.push(Record::decode(&mut rd, envelope.raw_shared(), index)?);
        }
        if records.is_empty() {
            return Err(DecodeError::new(info.header_length, ErrorKind::NoRecords));
        }
        Ok(Self { envelope, records })
    }

    /// Re-encodes from the decoded elements and records.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.envelope.raw().len());
        self.envelope.encode_header(&mut out);
        for rec in &self.records {
            rec.encode(&mut out);
        }
        out
    }

    /// The signed header and the bytes as received.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The header facts.
    pub fn info(&self) -> &header::HeaderInfo {
        self.envelope.info()
    }

    /// Records in file order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The bytes as received.
    pub fn raw(&self) -> &[u8] {
        self.envelope.raw()
    }

    /// Records holding `role`.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.role() == Some(role))
    }

    /// The SAST record that names the signer: role SAST and serial equal to the header serial
    /// (§3.5). Several matches with different certificates are narrowed by issuer, else refused
    /// as ambiguous (bad-inputs T6).
    pub fn signer(&self) -> Result<Signer<'_>, VerifyError> {
        let info = self.info();
        let matches: Vec<(usize, &Record)> = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.role() == Some(Role::SAST) && r.serial() == Some(info.serial.as_slice())
            })
            .collect();
        let serial = Hex(&info.serial).to_string();
        let all_same = |m: &[(usize, &Record)]| {
            m.iter().all(|(_, r)| {
                m.first().is_some_and(|(_, f)| {
                    f.certificate() == r.certificate() && f.public_key() == r.public_key()
                })
            })
        };
        match matches.as_slice() {
            [] => Err(VerifyError::MissingSigner { serial }),
            [(index, record)] => Ok(Signer {
                index: *index,
                record,
            }),
            many if all_same(many) => many
                .first()
                .map(|(index, record)| Signer {
                    index: *index,
                    record,
                })
                .ok_or(VerifyError::MissingSigner { serial }),
            many => {
                let narrowed: Vec<_> = many
                    .iter()
                    .filter(|(_, r)| r.issuer() == info.issuer.as_deref())
                    .copied()
                    .collect();
                match narrowed.as_slice() {
                    [(index, record)] => Ok(Signer {
                        index: *index,
                        record,
                    }),
                    _ => Err(VerifyError::AmbiguousSigner {
                        serial,
                        count: many.len(),
                    }),
                }
            }
        }
    }

    /// Verifies the file with its own SAST record, as the reference `tlvfile` does. This only
    /// shows the file is intact; whether the signer is *trusted* is the phone's decision.
    pub fn verify_self(&self) -> Result<Signer<'_>, VerifyError> {
        let signer = self.signer()?;
        let key = signer.record.verifying_key()?;
        self.envelope.verify_with(&key)?;
        Ok(signer)
    }

    /// Verifies the signature with a key the caller trusts.
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), VerifyError> {
        self.envelope.verify_with(key)
    }

    /// More than a phone accepts (E10).
    pub fn over_phone_limit(&self) -> bool {
        self.raw().len() > PHONE_SIZE_LIMIT
    }

    /// An "empty" rollback ITL: no usable record of role TFTP, CCM, CCM+TFTP or TVS (E5). Blanked
    /// records (role but no certificate or key, as in CUCM's non-secure CTL) count as empty
    /// sections: a phone cannot trust anything through them.
    pub fn is_empty_itl(&self) -> bool {
        !self.records.iter().any(|r| {
            !r.is_blank()
                && matches!(
                    r.role(),
                    Some(Role::TFTP | Role::CCM | Role::CCM_TFTP | Role::TVS)
                )
        })
    }
}

/// Builds and signs a trust list.
#[derive(Debug, Clone)]
pub struct TrustListBuilder {
    layout: Layout,
    digest: Digest,
    signer_version: Option<(u8, u8)>,
    filename: String,
    timestamp: u32,
    records: Vec<Record>,
}

impl TrustListBuilder {
    /// A builder for `filename` (the signed name, e.g. `ITLFile.tlv` even for `ITLSEP<MAC>.tlv`).
    /// Reference layout carries SIGNER_VERSION 1.0; CUCM layout none.
    pub fn new(layout: Layout, filename: &str, timestamp: u32) -> Self {
        let signer_version = match layout {
            Layout::Reference => Some((1, 0)),
            Layout::Cucm => None,
        };
        Self {
            layout,
            digest: Digest::Sha1,
            signer_version,
            filename: filename.into(),
            timestamp,
            records: Vec::new(),
        }
    }

    /// Digest (default SHA-1).
    pub fn digest(mut self, digest: Digest) -> Self {
        self.digest = digest;
        self
    }

    /// SIGNER_VERSION (tag 28); `None` leaves it out.
    pub fn signer_version(mut self, v: Option<(u8, u8)>) -> Self {
        self.signer_version = v;
        self
    }

    /// Appends a record.
    pub fn record(mut self, record: Record) -> Self {
        self.records.push(record);
        self
    }

    /// Appends a record for `cert` with `role` in this builder's layout.
    pub fn cert(self, role: Role, cert: &CertInfo) -> Self {
        let style = RecordStyle {
            layout: self.layout,
            ..RecordStyle::default()
        };
        self.record(Record::from_cert(role, cert, &style))
    }

    /// Signs with `key`, whose certificate is `signer` (its DN strings and serial go into the
    /// header). The caller includes the signer's SAST record among the records.
    pub fn sign(self, key: &SigningKey, signer: &CertInfo) -> Result<TrustList, BuildError> {
        if self.records.is_empty() {
            return Err(BuildError::Cert(
                "a trust list needs at least one record".into(),
            ));
        }
        let dn = match self.layout {
            Layout::Reference => DnStyle::Reference,
            Layout::Cucm => DnStyle::Cucm,
        };
        let id = SignerId {
            name: signer.subject_dn(dn),
            issuer: signer.issuer_dn(dn),
            serial: signer.serial.clone(),
        };
        let mut body = Vec::new();
        for rec in &self.records {
            rec.encode(&mut body);
        }
        let spec = HeaderSpec {
            version: (1, 2),
            signer_version: self.signer_version,
            layout: self.layout,
            signer: &id,
            digest: self.digest,
            filename: &self.filename,
            timestamp: self.timestamp,
            extra: Vec::<Element>::new(),
        };
        let bytes = header::build_signed(&spec, &body, key)?;
        TrustList::decode(&bytes)
            .map_err(|e| BuildError::Cert(format!("built file does not decode: {e}")))
    }
}
