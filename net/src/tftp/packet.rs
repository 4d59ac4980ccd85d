//! TFTP packets (RFC 1350 §5, RFC 2347 OACK). Parsing never panics and borrows the datagram.

/// Read request.
pub const RRQ: u16 = 1;
/// Write request.
pub const WRQ: u16 = 2;
/// Data.
pub const DATA: u16 = 3;
/// Acknowledgement.
pub const ACK: u16 = 4;
/// Error.
pub const ERROR: u16 = 5;
/// Option acknowledgement (RFC 2347).
pub const OACK: u16 = 6;

/// ERROR codes (RFC 1350 appendix, RFC 2347).
pub mod code {
    /// Not defined, see message ("server busy").
    pub const UNDEFINED: u16 = 0;
    /// File not found.
    pub const NOT_FOUND: u16 = 1;
    /// Access violation.
    pub const ACCESS: u16 = 2;
    /// Illegal TFTP operation.
    pub const ILLEGAL: u16 = 4;
    /// Unknown transfer ID.
    pub const UNKNOWN_TID: u16 = 5;
    /// Option negotiation refused.
    pub const OPTION: u16 = 8;
}

/// A parsed packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// RRQ or WRQ.
    Request {
        /// Write request?
        write: bool,
        /// File name (raw bytes).
        name: &'a [u8],
        /// Mode.
        mode: &'a [u8],
        /// Options in order (name, value).
        options: Vec<(&'a [u8], &'a [u8])>,
    },
    /// DATA.
    Data {
        /// Block number.
        block: u16,
        /// Payload.
        data: &'a [u8],
    },
    /// ACK.
    Ack {
        /// Block number.
        block: u16,
    },
    /// ERROR.
    Error {
        /// Code.
        code: u16,
        /// Message (NUL stripped when present; may be anything).
        message: &'a [u8],
    },
    /// OACK.
    Oack {
        /// Options.
        options: Vec<(&'a [u8], &'a [u8])>,
    },
}

/// Why a datagram is not a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than an opcode + 2 bytes (F1).
    #[error("datagram too short")]
    Short,
    /// Opcode 0 or ≥ 7 (F1).
    #[error("unknown opcode {0}")]
    Opcode(u16),
    /// Request without NUL terminators, empty name, no mode (F3).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// An option without a value (F9: ERROR 8).
    #[error("odd option list")]
    OddOptions,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    let s = b.get(i..i.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

type Options<'a> = Vec<(&'a [u8], &'a [u8])>;

/// NUL-terminated strings of `rest`; the last byte must be a NUL.
fn strings(rest: &[u8]) -> Result<Vec<&[u8]>, PacketError> {
    let Some(body) = rest.strip_suffix(&[0]) else {
        return Err(PacketError::Malformed("not NUL-terminated"));
    };
    Ok(body.split(|b| *b == 0).collect())
}

fn options_of<'a>(fields: &[&'a [u8]]) -> Result<Options<'a>, PacketError> {
    if fields.len() % 2 != 0 {
        return Err(PacketError::OddOptions);
    }
    Ok(fields
        .chunks_exact(2)
        .filter_map(|c| Some((*c.first()?, *c.get(1)?)))
        .collect())
}

/// Parses one datagram.
pub fn parse(b: &[u8]) -> Result<Packet<'_>, PacketError> {
    let op = u16_at(b, 0).ok_or(PacketError::Short)?;
    let rest = b.get(2..).unwrap_or_default();
    match op {
        RRQ | WRQ => {
            if rest.is_empty() {
                return Err(PacketError::Malformed("empty request"));
            }
            let f = strings(rest)?;
            let name = *f.first().ok_or(PacketError::Malformed("no file name"))?;
            if name.is_empty() {
                return Err(PacketError::Malformed("empty file name"));
            }
            let mode = *f.get(1).ok_or(PacketError::Malformed("no mode"))?;
            if mode.is_empty() {
                return Err(PacketError::Malformed("empty mode"));
            }
            let options = options_of(f.get(2..).unwrap_or_default())?;
            Ok(Packet::Request {
                write: op == WRQ,
                name,
                mode,
                options,
            })
        }
        DATA => Ok(Packet::Data {
            block: u16_at(b, 2).ok_or(PacketError::Short)?,
            data: b.get(4..).unwrap_or_default(),
        }),
        ACK => Ok(Packet::Ack {
            block: u16_at(b, 2).ok_or(PacketError::Short)?,
        }),
        ERROR => {
            let code = u16_at(b, 2).ok_or(PacketError::Short)?;
            let m = b.get(4..).unwrap_or_default();
            Ok(Packet::Error {
                code,
                message: m.strip_suffix(&[0]).unwrap_or(m),
            })
        }
        OACK => {
            if rest.is_empty() {
                return Ok(Packet::Oack {
                    options: Vec::new(),
                });
            }
            let f = strings(rest)?;
            Ok(Packet::Oack {
                options: options_of(&f)?,
            })
        }
        other => Err(PacketError::Opcode(other)),
    }
}

/// DATA packet.
pub fn data(block: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len().saturating_add(4));
    v.extend_from_slice(&DATA.to_be_bytes());
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// ACK packet.
pub fn ack(block: u16) -> [u8; 4] {
    let [a, b] = ACK.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

/// ERROR packet (message truncated to 255 bytes).
pub fn error(code: u16, message: &str) -> Vec<u8> {
    let m = message.as_bytes();
    let m = m.get(..m.len().min(255)).unwrap_or_default();
    let mut v = Vec::with_capacity(m.len().saturating_add(5));
    v.extend_from_slice(&ERROR.to_be_bytes());
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(m);
    v.push(0);
    v
}

fn put_options(v: &mut Vec<u8>, options: &[(&str, String)]) {
    for (k, val) in options {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
}

/// OACK packet.
pub fn oack(options: &[(&str, String)]) -> Vec<u8> {
    let mut v = OACK.to_be_bytes().to_vec();
    put_options(&mut v, options);
    v
}

/// RRQ (or WRQ) packet.
pub fn request(write: bool, name: &str, mode: &str, options: &[(&str, String)]) -> Vec<u8> {
    let mut v = if write { WRQ } else { RRQ }.to_be_bytes().to_vec();
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v.extend_from_slice(mode.as_bytes());
    v.push(0);
    put_options(&mut v, options);
    v
}

/// A strict decimal number: digits only, no sign, no spaces, no leading zero (F9: `+512`,
/// `0512`, `512 `, `-1`, `abc` are invalid), and no overflow.
pub fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || (v.len() > 1 && v.first() == Some(&b'0')) {
        return None;
    }
    let mut n: u64 = 0;
    for b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[&'static [u8]]) -> Options<'static> {
        list.chunks_exact(2)
            .filter_map(|c| Some((*c.first()?, *c.get(1)?)))
            .collect()
    }

    #[test]
    fn parses_rrq_with_options() {
        let p = request(false, "ITLFile.tlv", "octet", &[("blksize", "1428".into())]);
        assert_eq!(
            parse(&p),
            Ok(Packet::Request {
                write: false,
                name: b"ITLFile.tlv",
                mode: b"octet",
                options: pairs(&[b"blksize", b"1428"]),
            })
        );
    }

    #[test]
    fn refuses_malformed_requests() {
        assert_eq!(parse(&[0]), Err(PacketError::Short));
        assert_eq!(parse(&[0, 9, 0, 0]), Err(PacketError::Opcode(9)));
        assert_eq!(parse(&[0, 0, 0, 0]), Err(PacketError::Opcode(0)));
        assert!(matches!(
            parse(b"\x00\x01abc"),
            Err(PacketError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"\x00\x01abc\x00"),
            Err(PacketError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"\x00\x01\x00octet\x00"),
            Err(PacketError::Malformed(_))
        ));
        assert_eq!(
            parse(b"\x00\x01a\x00octet\x00blksize\x00"),
            Err(PacketError::OddOptions)
        );
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(number(b"1428"), Some(1428));
        assert_eq!(number(b"0"), Some(0));
        for bad in [
            &b"+512"[..],
            b"0512",
            b"512 ",
            b"-1",
            b"abc",
            b"",
            b"99999999999999999999",
        ] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn error_packet_is_bounded() {
        let e = error(0, &"x".repeat(1000));
        assert_eq!(e.len(), 4 + 255 + 1);
    }
}
