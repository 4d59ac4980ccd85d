//! Byte-exact codecs for the files and messages of Cisco Unified CM "Security by Default".
//!
//! * [`tlv`]: ITL/CTL trust lists (`ITLFile.tlv`, `CTLFile.tlv`, `ITLSEP<MAC>.tlv`, `CTLSEP<MAC>.tlv`)
//! * [`sgn`]: signed files (`SEP<MAC>.cnf.xml.sgn`, header version 1.0)
//! * [`enc`]: encrypted signed configs (`.enc.sgn`, header version 2.0)
//! * [`tvs`]: Trust Verification Service frames (TCP 2445 inside TLS)
//! * [`header`]: the signed header shared by the three file formats
//! * [`crypto`], [`cert`]: RSA signing/verification and the X.509 facts the formats need
//!
//! What this crate does not do: no I/O, no clock, no global randomness. Callers pass timestamps,
//! keys and (for encryption) the AES key and IV. Every decoder works on untrusted bytes: no panic,
//! bounded allocation, errors that say where decoding failed. Decoded values re-encode to the same
//! bytes, and signatures are checked over the bytes as received.
//!
//! The byte layouts follow `spec/wire-formats.md` of the project; section numbers cited in the code
//! (`§2.4` …) refer to it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod cert;
pub mod crypto;
pub mod enc;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
mod reader;
pub mod sgn;
pub mod tags;
pub mod tlv;
pub mod tvs;

pub use error::{BuildError, DecodeError, ErrorKind, VerifyError};
