//! Model of one or more CUCM clusters (issue 3): nodes and services, identity certificates, trust
//! stores with their replication rules, enterprise parameters, the files each TFTP node serves
//! (as bytes, built with `itlsim-wire`), the TVS decision, and every administrative action the
//! seeds describe with its documented side effects.
//!
//! What it does not do: no sockets, no clock, no global randomness. Every action takes the
//! scenario time; keys and serials come from a seeded [`keys::KeySource`]. Same seed and same
//! actions ⇒ byte-identical files.
//!
//! Section numbers (`§4`, `E1` …) refer to `shared/spec/phone-behaviour.md`; "seed 000" … "seed
//! 004" to the admin procedures in `shared/seeds/`.
#![forbid(unsafe_code)]

pub mod actions;
pub mod artefacts;
pub mod cluster;
pub mod error;
pub mod keys;
pub mod model;
pub mod pki;
pub mod trust;
pub mod tvs;

pub use actions::{
    ActionReport, AdminAction, BulkBundle, BulkKind, Change, DrsBackup, Event, ResetScope,
};
pub use artefacts::{FileKind, Served, TftpMiss};
pub use cluster::{Cluster, ItlOverride, ListKind, Node, PlannedRecord, RecordRole, TrustListPlan};
pub use error::ModelError;
pub use keys::{KeySource, KeySpec, PrivateKey};
pub use model::{
    ClusterSpec, CmGroupId, EnterpriseParams, FileDigest, Mac, NodeId, NodeSpec, ParamChange,
    PhoneInteraction, PhoneRecord, SecurityMode, ServerKnobs, Service, ServiceOp, Version,
    VersionClass,
};
pub use pki::{CertPurpose, Certificate, Identity, SigHash};
pub use trust::{TrustStoreKind, TrustStores};
pub use tvs::{TvsDecision, TvsUnavailable};
