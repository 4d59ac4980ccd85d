//! The X.509 facts the trust-list formats carry: DN strings, minimal serial, public key,
//! signature value, fingerprints. Parsed leniently with x509-parser, as a phone would.

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as XPublicKey;
use x509_parser::x509::X509Name;

use crate::crypto::PublicKey;
use crate::error::BuildError;

/// A parsed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// Subject RDNs in encoding order: (short name or dotted OID, value).
    pub subject: Vec<(String, String)>,
    /// Issuer RDNs in encoding order.
    pub issuer: Vec<(String, String)>,
    /// Serial as a minimal unsigned big-endian integer (§2.5).
    pub serial: Vec<u8>,
    /// Public key.
    pub public_key: PublicKey,
    /// The raw subjectPublicKey bits: PKCS#1 `RSAPublicKey` or EC point (the `.tlv` tag 7 value).
    pub public_key_bits: Vec<u8>,
    /// The certificate's signatureValue (the `.tlv` record tag 8 value).
    pub signature_value: Vec<u8>,
    /// notBefore, UNIX seconds.
    pub not_before: i64,
    /// notAfter, UNIX seconds.
    pub not_after: i64,
    /// Signature algorithm OID of the certificate itself.
    pub signature_algorithm: String,
}

/// How DN strings are joined: `,` by the reference tools, `;` by CUCM (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnStyle {
    /// `CN=a,O=b` in RDN encoding order.
    Reference,
    /// `CN=a;O=b` in RDN encoding order.
    Cucm,
}

impl CertInfo {
    /// Parses one DER certificate; trailing bytes are an error (bad-inputs T14).
    pub fn parse(der: &[u8]) -> Result<Self, BuildError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| BuildError::Cert(format!("not a DER X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(BuildError::Cert(format!(
                "{} trailing bytes after the certificate",
                rest.len()
            )));
        }
        let tbs = &cert.tbs_certificate;
        let spki = tbs.public_key();
        let bits = spki.subject_public_key.data.to_vec();
        let public_key = spki_key(spki);
        Ok(CertInfo {
            der: der.to_vec(),
            subject: rdns(tbs.subject()),
            issuer: rdns(tbs.issuer()),
            serial: minimal_serial(tbs.raw_serial()),
            public_key,
            public_key_bits: bits,
            signature_value: cert.signature_value.data.to_vec(),
            not_before: tbs.validity().not_before.timestamp(),
            not_after: tbs.validity().not_after.timestamp(),
            signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
        })
    }

    /// Subject DN text.
    pub fn subject_dn(&self, style: DnStyle) -> String {
        join_dn(&self.subject, style)
    }

    /// Issuer DN text.
    pub fn issuer_dn(&self, style: DnStyle) -> String {
        join_dn(&self.issuer, style)
    }

    /// The value of the first CN, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .iter()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.as_str())
    }

    /// SHA-1 of the DER (what `show itl` prints).
    pub fn sha1(&self) -> [u8; 20] {
        Sha1::digest(&self.der).into()
    }

    /// SHA-256 of the DER (TVS store key).
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// MD5 of the DER (the `.enc.sgn` stub's `certHash`, §5).
    pub fn md5(&self) -> [u8; 16] {
        Md5::digest(&self.der).into()
    }

    /// True when subject and issuer are the same name (self-signed identity certificates).
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// Only the public key of a DER certificate (cheaper than [`CertInfo::parse`]; used on the
/// verification path).
pub fn public_key_of(der: &[u8]) -> Result<PublicKey, BuildError> {
    if let Some(key) = rsa_key_fast(der) {
        return Ok(key);
    }
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| BuildError::Cert(format!("not a DER X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(BuildError::Cert(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(spki_key(cert.tbs_certificate.public_key()))
}

fn spki_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> PublicKey {
    let bits = spki.subject_public_key.data.to_vec();
    match spki.parsed() {
        Ok(XPublicKey::RSA(rsa)) => PublicKey::Rsa {
            der: bits,
            bits: rsa.key_size(),
        },
        Ok(XPublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| curve_name(&oid.to_id_string()))
                .unwrap_or_else(|| "explicit parameters".into());
            PublicKey::Ec { curve, point: bits }
        }
        _ => PublicKey::Other(spki.algorithm.algorithm.to_id_string()),
    }
}

/// One DER element: (tag, content, rest). Definite lengths up to 4 bytes only.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (lb, rest) = rest.split_at_checked(n)?;
        (
            lb.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b)),
            rest,
        )
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The RSA key of a certificate by walking the DER to the SubjectPublicKeyInfo, without a full
/// X.509 parse (the hot path of every signature check). `None` sends the caller to x509-parser.
fn rsa_key_fast(cert: &[u8]) -> Option<PublicKey> {
    const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, c, b"") = der(cert)? else {
        return None;
    };
    let (0x30, mut tbs, _) = der(c)? else {
        return None;
    };
    if tbs.first() == Some(&0xa0) {
        tbs = der(tbs)?.2; // [0] version
    }
    for _ in 0..5 {
        tbs = der(tbs)?.2; // serial, signature algorithm, issuer, validity, subject
    }
    let (0x30, spki, _) = der(tbs)? else {
        return None;
    };
    let (0x30, alg, rest) = der(spki)? else {
        return None;
    };
    let (0x06, oid, _) = der(alg)? else {
        return None;
    };
    if oid != RSA_OID {
        return None;
    }
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    let (0x30, seq, _) = der(key)? else {
        return None;
    };
    let (0x02, n, _) = der(seq)? else { return None };
    let n = n.strip_prefix(&[0]).unwrap_or(n);
    Some(PublicKey::Rsa {
        der: key.to_vec(),
        bits: n.len().saturating_mul(8),
    })
}

/// Strips DER sign padding: a serial is stored as the minimal unsigned integer (§2.5).
pub fn minimal_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw.get(start..).unwrap_or_default().to_vec()
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256".into(),
        "1.3.132.0.34" => "P-384".into(),
        "1.3.132.0.35" => "P-521".into(),
        other => other.into(),
    }
}

fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    }
    .to_string()
}

fn rdns(name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let key = short_name(&atv.attr_type().to_id_string());
            let value = match atv.as_str() {
                Ok(s) => s.to_string(),
                Err(_) => format!("#{}", hex::encode(atv.attr_value().data)),
            };
            out.push((key, value));
        }
    }
    out
}

/// RFC 4514 value escaping, as the reference's DN strings use.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' | '"' | '+' | ',' | ';' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

fn join_dn(rdns: &[(String, String)], style: DnStyle) -> String {
    let sep = match style {
        DnStyle::Reference => ",",
        DnStyle::Cucm => ";",
    };
    rdns.iter()
        .map(|(k, v)| format!("{k}={}", escape_value(v)))
        .collect::<Vec<_>>()
        .join(sep)
}
