//! Errors of the cluster model.

use thiserror::Error;

/// Why a model operation failed. Admin actions that CUCM would refuse return
/// [`ModelError::Refused`] with the reason and its source.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The input does not describe a valid object (unknown node, bad key size …).
    #[error("invalid: {0}")]
    Invalid(String),
    /// CUCM refuses this action in this state (the message cites the seed/spec).
    #[error("refused: {0}")]
    Refused(String),
    /// A key or certificate operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// Building a file with the wire crate failed.
    #[error("wire: {0}")]
    Wire(String),
}
