//! Tag numbers, role codes and digest codes (wire-formats §2.1, §3.3, §3.4, §2.6, §2.7).

use std::fmt;

/// Header tags (§2.1). Tags 16–27 appear in `.enc.sgn` only (§5).
pub mod header {
    /// VERSION: major, minor.
    pub const VERSION: u8 = 1;
    /// HEADER_LENGTH: u16, whole header including signature and padding.
    pub const HEADER_LENGTH: u8 = 2;
    /// SIGNER_INFO container (4, 5, 6).
    pub const SIGNER_INFO: u8 = 3;
    /// Signer subject DN, NUL-terminated.
    pub const SIGNER_NAME: u8 = 4;
    /// Signer serial, minimal unsigned big-endian.
    pub const SERIAL_NUMBER: u8 = 5;
    /// Signer issuer DN, NUL-terminated.
    pub const ISSUER_NAME: u8 = 6;
    /// SIGNATURE_INFO container (8, 9).
    pub const SIGNATURE_INFO: u8 = 7;
    /// Digest code, u8.
    pub const HASH_ALGORITHM: u8 = 8;
    /// SIGNATURE_ALGORITHM_INFO container (10, 11).
    pub const SIGNATURE_ALGORITHM_INFO: u8 = 9;
    /// Signature algorithm, u8, 0 = RSA PKCS#1 v1.5.
    pub const SIGNATURE_ALGORITHM: u8 = 10;
    /// Signature modulus code, u8.
    pub const SIGNATURE_MODULUS: u8 = 11;
    /// The RSA signature.
    pub const SIGNATURE: u8 = 12;
    /// One padding byte with no length.
    pub const PADDING: u8 = 13;
    /// File name the signature is bound to, NUL-terminated.
    pub const FILENAME: u8 = 14;
    /// u32 UNIX seconds.
    pub const TIMESTAMP: u8 = 15;
    /// ENCRYPTION_INFO container (17, 21).
    pub const ENCRYPTION_INFO: u8 = 16;
    /// ENCRYPTION_IV_INFO container (18, 19, 20).
    pub const ENCRYPTION_IV_INFO: u8 = 17;
    /// Unknown u8 (0 observed).
    pub const IV_UNKNOWN: u8 = 18;
    /// 16-byte AES IV.
    pub const IV: u8 = 19;
    /// u16 count of 0x0D pad bytes appended to the plaintext.
    pub const PADDING_COUNT: u8 = 20;
    /// ENCRYPTION_KEY_INFO container (22, 23, 24, 25).
    pub const ENCRYPTION_KEY_INFO: u8 = 21;
    /// Unknown u8 (0 observed).
    pub const KEY_UNKNOWN: u8 = 22;
    /// u16, bits of the wrapped key (2048 observed).
    pub const KEY_SIZE: u8 = 23;
    /// u8, 1 observed.
    pub const KEY_ALGORITHM: u8 = 24;
    /// RSA PKCS#1 v1.5 encryption of the AES key.
    pub const WRAPPED_KEY: u8 = 25;
    /// Digest code of the plaintext hash.
    pub const PLAINTEXT_HASH_ALGORITHM: u8 = 26;
    /// Digest of the plaintext before padding.
    pub const PLAINTEXT_HASH: u8 = 27;
    /// SIGNER_VERSION: major, minor (`.tlv` only, reference layout).
    pub const SIGNER_VERSION: u8 = 28;

    /// True for the tags whose value is a list of child elements.
    pub fn is_container(tag: u8) -> bool {
        matches!(
            tag,
            SIGNER_INFO
                | SIGNATURE_INFO
                | SIGNATURE_ALGORITHM_INFO
                | ENCRYPTION_INFO
                | ENCRYPTION_IV_INFO
                | ENCRYPTION_KEY_INFO
        )
    }
}

/// Record tags of a `.tlv` trust list (§3.3).
pub mod record {
    /// u16 total record length including its own 5 bytes.
    pub const RECORD_LENGTH: u8 = 1;
    /// Host name or IP text, NUL-terminated, may be empty.
    pub const DNS_NAME: u8 = 2;
    /// Subject DN, NUL-terminated.
    pub const SUBJECT_NAME: u8 = 3;
    /// u16 role code.
    pub const ROLE: u8 = 4;
    /// Issuer DN, NUL-terminated.
    pub const ISSUER_NAME: u8 = 5;
    /// Certificate serial, minimal unsigned big-endian.
    pub const SERIAL_NUMBER: u8 = 6;
    /// RSAPublicKey DER or uncompressed EC point.
    pub const PUBLIC_KEY: u8 = 7;
    /// The certificate's own signatureValue.
    pub const SIGNATURE: u8 = 8;
    /// The DER certificate.
    pub const CERTIFICATE: u8 = 9;
    /// 4-byte IPv4 address.
    pub const IP_ADDRESS: u8 = 10;
    /// Certificate hash (algorithm unknown).
    pub const CERTIFICATE_HASH: u8 = 11;
    /// Hash algorithm of tag 11.
    pub const HASH_ALGORITHM: u8 = 12;
}

/// Human name of a header tag, for errors and dumps.
pub fn header_tag_name(tag: u8) -> &'static str {
    use header::*;
    match tag {
        VERSION => "VERSION",
        HEADER_LENGTH => "HEADER_LENGTH",
        SIGNER_INFO => "SIGNER_INFO",
        SIGNER_NAME => "SIGNER_NAME",
        SERIAL_NUMBER => "SERIAL_NUMBER",
        ISSUER_NAME => "ISSUER_NAME",
        SIGNATURE_INFO => "SIGNATURE_INFO",
        HASH_ALGORITHM => "HASH_ALGORITHM",
        SIGNATURE_ALGORITHM_INFO => "SIGNATURE_ALGORITHM_INFO",
        SIGNATURE_ALGORITHM => "SIGNATURE_ALGORITHM",
        SIGNATURE_MODULUS => "SIGNATURE_MODULUS",
        SIGNATURE => "SIGNATURE",
        PADDING => "PADDING",
        FILENAME => "FILENAME",
        TIMESTAMP => "TIMESTAMP",
        ENCRYPTION_INFO => "ENCRYPTION_INFO",
        ENCRYPTION_IV_INFO => "ENCRYPTION_IV_INFO",
        IV_UNKNOWN => "IV_UNKNOWN",
        IV => "IV",
        PADDING_COUNT => "PADDING_COUNT",
        ENCRYPTION_KEY_INFO => "ENCRYPTION_KEY_INFO",
        KEY_UNKNOWN => "KEY_UNKNOWN",
        KEY_SIZE => "KEY_SIZE",
        KEY_ALGORITHM => "KEY_ALGORITHM",
        WRAPPED_KEY => "WRAPPED_KEY",
        PLAINTEXT_HASH_ALGORITHM => "PLAINTEXT_HASH_ALGORITHM",
        PLAINTEXT_HASH => "PLAINTEXT_HASH",
        SIGNER_VERSION => "SIGNER_VERSION",
        _ => "unknown",
    }
}

/// Human name of a record tag.
pub fn record_tag_name(tag: u8) -> &'static str {
    use record::*;
    match tag {
        RECORD_LENGTH => "RECORD_LENGTH",
        DNS_NAME => "DNS_NAME",
        SUBJECT_NAME => "SUBJECT_NAME",
        ROLE => "ROLE",
        ISSUER_NAME => "ISSUER_NAME",
        SERIAL_NUMBER => "SERIAL_NUMBER",
        PUBLIC_KEY => "PUBLIC_KEY",
        SIGNATURE => "SIGNATURE",
        CERTIFICATE => "CERTIFICATE",
        IP_ADDRESS => "IP_ADDRESS",
        CERTIFICATE_HASH => "CERTIFICATE_HASH",
        HASH_ALGORITHM => "HASH_ALGORITHM",
        _ => "unknown",
    }
}

/// A trust-list role (§3.4): u16 in `.tlv` records, u8 in TVS answers. Unknown codes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(pub u16);

impl Role {
    /// System Administrator Security Token: signs `.tlv` files.
    pub const SAST: Role = Role(0);
    /// CallManager (SIP/SCCP TLS).
    pub const CCM: Role = Role(1);
    /// CallManager that also signs config files.
    pub const CCM_TFTP: Role = Role(2);
    /// TFTP: signs `.sgn` files.
    pub const TFTP: Role = Role(3);
    /// CAPF (port 3804).
    pub const CAPF: Role = Role(4);
    /// SRST (2020 constants only).
    pub const SRST: Role = Role(5);
    /// HTTPS phone services.
    pub const APP_SERVER: Role = Role(7);
    /// Trust Verification Service.
    pub const TVS: Role = Role(21);

    /// The name CUCM and the reference print.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SAST => "SAST",
            Self::CCM => "CCM",
            Self::CCM_TFTP => "CCM+TFTP",
            Self::TFTP => "TFTP",
            Self::CAPF => "CAPF",
            Self::SRST => "SRST",
            Self::APP_SERVER => "APP-SERVER",
            Self::TVS => "TVS",
            _ => return None,
        })
    }

    /// Parses `SAST`, `CCM+TFTP`, `APP-SERVER` … (case-insensitive) or a decimal code.
    pub fn parse(s: &str) -> Option<Role> {
        let u = s.trim().to_ascii_uppercase();
        let known = [
            Self::SAST,
            Self::CCM,
            Self::CCM_TFTP,
            Self::TFTP,
            Self::CAPF,
            Self::SRST,
            Self::APP_SERVER,
            Self::TVS,
        ];
        for r in known {
            if r.name() == Some(u.as_str()) {
                return Some(r);
            }
        }
        match u.as_str() {
            "CCM_TFTP" | "CCMTFTP" => Some(Self::CCM_TFTP),
            "APP_SERVER" | "HTTPS" => Some(Self::APP_SERVER),
            _ => u.parse::<u16>().ok().map(Role),
        }
    }

    /// True for roles whose certificate may sign config files (TFTP, CCM+TFTP).
    pub fn signs_configs(self) -> bool {
        matches!(self, Self::TFTP | Self::CCM_TFTP)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "UNKNOWN({})", self.0),
        }
    }
}

/// Digest used for the file signature (tag 8) and the `.enc.sgn` plaintext hash (tag 26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// Code 1.
    Sha1,
    /// Code 3 (the corrected value; §2.6).
    Sha512,
}

impl Digest {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Sha1 => 1,
            Self::Sha512 => 3,
        }
    }

    /// From a wire code; 2 (SHA-256) is unverified and refused like the reference does.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Sha1),
            3 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha512 => 64,
        }
    }

    /// Always false; present for clippy's `len_without_is_empty`.
    pub fn is_empty(self) -> bool {
        false
    }

    /// Hashes `parts` concatenated.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha1::Digest as _;
        match self {
            Self::Sha1 => {
                let mut h = sha1::Sha1::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
            Self::Sha512 => {
                let mut h = sha2::Sha512::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA1",
            Self::Sha512 => "SHA512",
        })
    }
}

/// Signature modulus code (tag 11) → signature length in bytes.
pub fn modulus_len(code: u8) -> Option<usize> {
    match code {
        0 => Some(64),
        1 => Some(128),
        2 => Some(256),
        3 => Some(512),
        _ => None,
    }
}

/// Signature length in bytes → modulus code (tag 11).
pub fn modulus_code(sig_len: usize) -> Option<u8> {
    match sig_len {
        64 => Some(0),
        128 => Some(1),
        256 => Some(2),
        512 => Some(3),
        _ => None,
    }
}
