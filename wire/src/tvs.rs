//! Trust Verification Service frames (TCP 2445 inside TLS; wire-formats §6, phone-behaviour §4.4
//! and E18). A 10-byte header then `u8 tag | u16 length | value` elements.

use crate::error::{DecodeError, ErrorKind};
use crate::reader::{Reader, put_tlv};
use crate::tags::Role;

/// Protocol id, byte 0 (`W`).
pub const PROTOCOL_ID: u8 = 87;
/// Version, byte 1.
pub const VERSION: u8 = 1;
/// Header size.
pub const HEADER_LEN: usize = 10;
/// Default TVS answer lifetime (CUCM: 24 h).
pub const DEFAULT_TTL: u32 = 86_400;
/// Longest device name accepted (the real ones are 23 bytes).
pub const MAX_DEVICE_NAME: usize = 64;

/// Element tags.
pub mod tag {
    /// `0x01` + device name, no NUL.
    pub const DEVICE_NAME: u8 = 1;
    /// DER certificate (verify request, query response).
    pub const CERTIFICATE: u8 = 2;
    /// Signer subject DN, NUL-terminated (query request).
    pub const SUBJECT: u8 = 3;
    /// Signer issuer DN, NUL-terminated (query request; tag number inferred, E18).
    pub const ISSUER: u8 = 4;
    /// Signer serial (query request; tag number inferred, E18).
    pub const SERIAL: u8 = 5;
    /// u8 status: 0 valid, 1 invalid.
    pub const STATUS: u8 = 7;
    /// One u8 per role.
    pub const ROLES: u8 = 8;
    /// u32 seconds.
    pub const TTL: u8 = 9;

    /// The field a tag carries, for messages (`"unknown"` for tags this crate does not read).
    pub fn name(tag: u8) -> &'static str {
        match tag {
            DEVICE_NAME => "device name",
            CERTIFICATE => "certificate",
            SUBJECT => "subject",
            ISSUER => "issuer",
            SERIAL => "serial",
            STATUS => "status",
            ROLES => "roles",
            TTL => "TTL",
            _ => "unknown",
        }
    }
}

/// Command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command(pub u8);

impl Command {
    /// Verify a certificate.
    pub const VERIFY_REQUEST: Command = Command(1);
    /// Answer to 1.
    pub const VERIFY_RESPONSE: Command = Command(2);
    /// Look up a signer by subject/issuer/serial.
    pub const QUERY_REQUEST: Command = Command(3);
    /// Answer to 3, carries the certificate.
    pub const QUERY_RESPONSE: Command = Command(4);

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "VERIFY_REQUEST",
            2 => "VERIFY_RESPONSE",
            3 => "QUERY_REQUEST",
            4 => "QUERY_RESPONSE",
            _ => "UNKNOWN",
        }
    }
}

/// Why a TVS frame was refused. Every variant says where: the header fields have fixed offsets
/// (0 protocol id, 1 version, 2 command, 8 body length), the others carry the absolute byte
/// offset in the frame and, for element problems, the tag. Offsets of a [`Message`] refer to its
/// encoding, which for a decoded message are the bytes as received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TvsError {
    /// Byte 0 is not 87 (bad-inputs V4).
    #[error("protocol id {0} is not 87 (at byte offset 0)")]
    BadProtocol(u8),
    /// Byte 1 is not 1 (V4).
    #[error("version {0} is not 1 (at byte offset 1)")]
    BadVersion(u8),
    /// Byte 2 is not a command this side accepts (V4).
    #[error("unexpected command {0} (at byte offset 2)")]
    UnexpectedCommand(u8),
    /// The body length exceeds the configured cap (V5); refused before reading the body.
    #[error("body of {len} bytes exceeds the {max}-byte cap (length at byte offset 8)")]
    BodyTooLarge {
        /// Declared length.
        len: usize,
        /// Cap.
        max: usize,
    },
    /// Element framing failed (V5, V6).
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The same element twice (V9).
    #[error(
        "duplicate element tag {tag} ({name}) at byte offset {offset}, first at {first}",
        name = tag::name(*tag)
    )]
    Duplicate {
        /// Tag.
        tag: u8,
        /// Absolute offset of the second occurrence (its tag byte).
        offset: usize,
        /// Absolute offset of the first occurrence.
        first: usize,
    },
    /// A required element is missing.
    #[error(
        "missing element tag {tag} ({name}) in the frame ending at byte offset {offset}",
        name = tag::name(*tag)
    )]
    Missing {
        /// Tag.
        tag: u8,
        /// Absolute offset of the end of the frame (the element was looked for up to there).
        offset: usize,
    },
    /// An element of the wrong size or content.
    #[error(
        "bad element tag {tag} ({name}) at byte offset {offset}: {detail}",
        name = tag::name(*tag)
    )]
    BadElement {
        /// Tag.
        tag: u8,
        /// Absolute offset of the element (its tag byte).
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// Device name (tag 1) malformed (V7). The text is escaped.
    #[error("bad device name (element tag 1 at byte offset {offset}): {detail}")]
    BadDeviceName {
        /// Absolute offset of the element (its tag byte).
        offset: usize,
        /// What is wrong.
        detail: String,
    },
}

/// The 10-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Command.
    pub command: Command,
    /// Byte 3: 0 from phones, 0xf7 seen from CUCM; ignored on receive.
    pub reserved: u8,
    /// Chosen by the client, echoed by the server.
    pub session_id: u32,
    /// Bytes after the header.
    pub body_len: usize,
}

impl FrameHeader {
    /// Decodes and checks the protocol id and version (a reader learns the body length from this
    /// before reading the body, so an oversized frame is refused early).
    pub fn decode(b: &[u8]) -> Result<Self, TvsError> {
        let mut r = Reader::new(b);
        let proto = r.u8("protocol id")?;
        if proto != PROTOCOL_ID {
            return Err(TvsError::BadProtocol(proto));
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(TvsError::BadVersion(version));
        }
        let command = Command(r.u8("command")?);
        let reserved = r.u8("reserved")?;
        let session_id = r.u32("session id")?;
        let body_len = usize::from(r.u16("body length")?);
        Ok(Self {
            command,
            reserved,
            session_id,
            body_len,
        })
    }

    /// Encodes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[PROTOCOL_ID, VERSION, self.command.0, self.reserved]);
        out.extend_from_slice(&self.session_id.to_be_bytes());
        out.extend_from_slice(
            &u16::try_from(self.body_len)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
    }
}

/// One element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// Tag.
    pub tag: u8,
    /// Value.
    pub value: Vec<u8>,
}

/// A whole frame: header and elements in order (unknown tags kept, so frames re-encode exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Command.
    pub command: Command,
    /// Byte 3.
    pub reserved: u8,
    /// Session id.
    pub session_id: u32,
    /// Elements in order.
    pub elements: Vec<Element>,
}

/// A phone's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Command 1: is this certificate trusted, with which roles?
    Verify {
        /// `CP-8845-SEP001122334455`.
        device_name: String,
        /// DER.
        certificate: Vec<u8>,
    },
    /// Command 3: which certificate is this signer (subject, issuer, serial)?
    Query {
        /// Device name.
        device_name: String,
        /// Subject DN as sent (NUL dropped).
        subject: Vec<u8>,
        /// Issuer DN as sent, when present.
        issuer: Option<Vec<u8>>,
        /// Serial, when present.
        serial: Option<Vec<u8>>,
    },
}

/// Status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: trusted.
    Valid,
    /// 1 (or anything else): not trusted.
    Invalid,
}

/// A TVS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status.
    pub status: Status,
    /// The certificate (query responses).
    pub certificate: Option<Vec<u8>>,
    /// Roles the certificate holds.
    pub roles: Vec<Role>,
    /// How long the phone may cache the answer.
    pub ttl: Option<u32>,
}

impl Response {
    /// An "invalid" answer (status only).
    pub fn invalid() -> Self {
        Self {
            status: Status::Invalid,
            certificate: None,
            roles: Vec::new(),
            ttl: None,
        }
    }
}

impl Message {
    /// Decodes exactly one frame; trailing bytes are an error. `max_body` caps the body length.
    pub fn decode(bytes: &[u8], max_body: usize) -> Result<Self, TvsError> {
        let head = FrameHeader::decode(bytes)?;
        if head.body_len > max_body {
            return Err(TvsError::BodyTooLarge {
                len: head.body_len,
                max: max_body,
            });
        }
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        if body.len() < head.body_len {
            return Err(DecodeError::new(
                HEADER_LEN,
                ErrorKind::Truncated {
                    what: "TVS body",
                    need: head.body_len,
                    have: body.len(),
                },
            )
            .into());
        }
        if body.len() > head.body_len {
            return Err(DecodeError::new(
                HEADER_LEN.saturating_add(head.body_len),
                ErrorKind::TrailingBytes(body.len().saturating_sub(head.body_len)),
            )
            .into());
        }
        Self::decode_body(head, body)
    }

    /// Decodes the elements of a frame whose header was read separately.
    pub fn decode_body(head: FrameHeader, body: &[u8]) -> Result<Self, TvsError> {
        let mut r = Reader::with_base(body, HEADER_LEN);
        let mut elements = Vec::new();
        while !r.is_empty() {
            let (_, tag, value) = r.tlv("frame")?;
            elements.push(Element {
                tag,
                value: value.to_vec(),
            });
        }
        Ok(Self {
            command: head.command,
            reserved: head.reserved,
            session_id: head.session_id,
            elements,
        })
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for e in &self.elements {
            put_tlv(&mut body, e.tag, &e.value);
        }
        let head = FrameHeader {
            command: self.command,
            reserved: self.reserved,
            session_id: self.session_id,
            body_len: body.len(),
        };
        let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(body.len()));
        head.encode(&mut out);
        out.extend_from_slice(&body);
        out
    }

    /// The elements with the absolute offset of each in the encoded frame (its tag byte).
    fn located(&self) -> impl Iterator<Item = (usize, &Element)> {
        self.elements.iter().scan(HEADER_LEN, |off, e| {
            let at = *off;
            *off = off.saturating_add(3).saturating_add(e.value.len());
            Some((at, e))
        })
    }

    /// Absolute offset of the end of the encoded frame.
    fn end_offset(&self) -> usize {
        self.elements.iter().fold(HEADER_LEN, |off, e| {
            off.saturating_add(3).saturating_add(e.value.len())
        })
    }

    /// The only element with `tag` (offset and value), `None` when absent.
    fn single(&self, tag: u8) -> Result<Option<(usize, &[u8])>, TvsError> {
        let mut it = self.located().filter(|(_, e)| e.tag == tag);
        let first = it.next();
        if let (Some((first, _)), Some((offset, _))) = (first, it.next()) {
            return Err(TvsError::Duplicate { tag, offset, first });
        }
        Ok(first.map(|(off, e)| (off, e.value.as_slice())))
    }

    /// The only element with `tag`; absent is an error.
    fn required(&self, tag: u8) -> Result<(usize, &[u8]), TvsError> {
        self.single(tag)?.ok_or(TvsError::Missing {
            tag,
            offset: self.end_offset(),
        })
    }

    /// A verify request (command 1): elements 1, 2 in the reference order.
    pub fn verify_request(session_id: u32, device_name: &str, certificate: &[u8]) -> Self {
        Self {
            command: Command::VERIFY_REQUEST,
            reserved: 0,
            session_id,
            elements: vec![
                device_element(device_name),
                Element {
                    tag: tag::CERTIFICATE,
                    value: certificate.to_vec(),
                },
            ],
        }
    }

    /// A query request (command 3): device name, subject, issuer, serial (E18).
    pub fn query_request(
        session_id: u32,
        device_name: &str,
        subject: &[u8],
        issuer: &[u8],
        serial: &[u8],
    ) -> Self {
        let nul = |s: &[u8]| {
            let mut v = s.to_vec();
            if v.last() != Some(&0) {
                v.push(0);
            }
            v
        };
        Self {
            command: Command::QUERY_REQUEST,
            reserved: 0,
            session_id,
            elements: vec![
                device_element(device_name),
                Element {
                    tag: tag::SUBJECT,
                    value: nul(subject),
                },
                Element {
                    tag: tag::ISSUER,
                    value: nul(issuer),
                },
                Element {
                    tag: tag::SERIAL,
                    value: serial.to_vec(),
                },
            ],
        }
    }

    /// An answer to `request`: command 2 for a verify (elements 7, 8, 9; invalid: 7 only), command
    /// 4 for a query (7, 2, 8, 9 as CUCM sends them).
    pub fn response_to(request: &Message, resp: &Response) -> Self {
        let command = if request.command == Command::QUERY_REQUEST {
            Command::QUERY_RESPONSE
        } else {
            Command::VERIFY_RESPONSE
        };
        let mut elements = vec![Element {
            tag: tag::STATUS,
            value: vec![match resp.status {
                Status::Valid => 0,
                Status::Invalid => 1,
            }],
        }];
        if resp.status == Status::Valid {
            if let Some(c) = &resp.certificate {
                elements.push(Element {
                    tag: tag::CERTIFICATE,
                    value: c.clone(),
                });
            }
            elements.push(Element {
                tag: tag::ROLES,
                value: resp
                    .roles
                    .iter()
                    .map(|r| u8::try_from(r.0).unwrap_or(u8::MAX))
                    .collect(),
            });
            elements.push(Element {
                tag: tag::TTL,
                value: resp.ttl.unwrap_or(DEFAULT_TTL).to_be_bytes().to_vec(),
            });
        }
        Self {
            command,
            reserved: 0,
            session_id: request.session_id,
            elements,
        }
    }

    /// Reads a request (server side). Duplicates are refused (V9); unknown tags are ignored.
    pub fn request(&self) -> Result<Request, TvsError> {
        let (off, name) = self.required(tag::DEVICE_NAME)?;
        let device_name = parse_device_name(off, name)?;
        match self.command {
            Command::VERIFY_REQUEST => {
                let (offset, cert) = self.required(tag::CERTIFICATE)?;
                if cert.is_empty() {
                    return Err(TvsError::BadElement {
                        tag: tag::CERTIFICATE,
                        offset,
                        detail: "empty".into(),
                    });
                }
                Ok(Request::Verify {
                    device_name,
                    certificate: cert.to_vec(),
                })
            }
            Command::QUERY_REQUEST => {
                let (_, subject) = self.required(tag::SUBJECT)?;
                let strip = |v: &[u8]| v.strip_suffix(&[0]).unwrap_or(v).to_vec();
                Ok(Request::Query {
                    device_name,
                    subject: strip(subject),
                    issuer: self.single(tag::ISSUER)?.map(|(_, v)| strip(v)),
                    serial: self.single(tag::SERIAL)?.map(|(_, v)| v.to_vec()),
                })
            }
            other => Err(TvsError::UnexpectedCommand(other.0)),
        }
    }

    /// Reads a response (phone side).
    pub fn response(&self) -> Result<Response, TvsError> {
        if !matches!(
            self.command,
            Command::VERIFY_RESPONSE | Command::QUERY_RESPONSE
        ) {
            return Err(TvsError::UnexpectedCommand(self.command.0));
        }
        let status = match self.required(tag::STATUS)? {
            (_, [0]) => Status::Valid,
            (_, [_]) => Status::Invalid,
            (offset, v) => {
                return Err(TvsError::BadElement {
                    tag: tag::STATUS,
                    offset,
                    detail: format!("{} bytes, not 1", v.len()),
                });
            }
        };
        let ttl = match self.single(tag::TTL)? {
            None => None,
            Some((offset, v)) => Some(u32::from_be_bytes(v.try_into().map_err(|_| {
                TvsError::BadElement {
                    tag: tag::TTL,
                    offset,
                    detail: format!("{} bytes, not 4", v.len()),
                }
            })?)),
        };
        Ok(Response {
            status,
            certificate: self.single(tag::CERTIFICATE)?.map(|(_, v)| v.to_vec()),
            roles: self
                .single(tag::ROLES)?
                .map(|(_, v)| v)
                .unwrap_or_default()
                .iter()
                .map(|b| Role(u16::from(*b)))
                .collect(),
            ttl,
        })
    }
}

fn device_element(name: &str) -> Element {
    let mut value = Vec::with_capacity(name.len().saturating_add(1));
    value.push(1);
    value.extend_from_slice(name.as_bytes());
    Element {
        tag: tag::DEVICE_NAME,
        value,
    }
}

/// Checks the device name element found at `offset`.
fn parse_device_name(offset: usize, v: &[u8]) -> Result<String, TvsError> {
    let escaped = || crate::header::display_string(v);
    let bad = |detail: String| TvsError::BadDeviceName { offset, detail };
    let rest = match v {
        [1, rest @ ..] => rest,
        _ => return Err(bad(format!("missing 0x01 prefix: \"{}\"", escaped()))),
    };
    if rest.is_empty() || rest.len() > MAX_DEVICE_NAME {
        return Err(bad(format!(
            "length {} not in 1..={MAX_DEVICE_NAME}",
            rest.len()
        )));
    }
    let s = std::str::from_utf8(rest).map_err(|_| bad(format!("not UTF-8: \"{}\"", escaped())))?;
    if s.chars().any(|c| c.is_control()) {
        return Err(bad(format!("control characters: \"{}\"", escaped())));
    }
    Ok(s.to_string())
}

/// True for the canonical `CP-<4 digits>-SEP<12 upper-case hex>` form the reference accepts
/// (§6.4); the server is more tolerant and only logs other names.
pub fn is_canonical_device_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 23
        && name.starts_with("CP-")
        && b.get(3..7)
            .is_some_and(|m| m.iter().all(u8::is_ascii_digit))
        && b.get(7..11) == Some(b"-SEP")
        && b.get(11..).is_some_and(|m| {
            m.iter()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
        })
}
