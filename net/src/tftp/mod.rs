//! TFTP: packet codec, a read-only server on the cluster model, and a client.
//!
//! Own implementation on tokio UDP instead of async-tftp (docs/decisions.md): the gaps stack.md
//! lists (no transfer cap, client ERROR ignored, 0.0.0.0 default bind, path checks only in its
//! directory handler) are each a few lines here, and a byte-level codec lets tests send every
//! malformed packet of bad-inputs §2.4.
//!
//! RFC 1350 (base), RFC 2347 (option extension, OACK), RFC 2348 (blksize), RFC 2349 (timeout,
//! tsize), RFC 7440 (windowsize).

pub mod client;
pub mod packet;
pub mod server;

pub use client::{TftpClientError, TftpGet, TftpOptions, get};
pub use server::{TftpStats, serve};
