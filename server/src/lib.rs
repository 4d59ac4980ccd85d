//! Model of one or more CUCM clusters (issue 3).
#![forbid(unsafe_code)]

pub mod error;
pub mod keys;
pub mod pki;

pub use error::ModelError;
