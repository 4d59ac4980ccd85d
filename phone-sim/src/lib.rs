//! Scenarios: a YAML timeline of admin, phone and network actions runs a fleet of simulated
//! phones against the cluster model under a deterministic virtual clock, and reports which phones
//! lock, when and why.
//!
//! The driver boundary (`driver::Transport`) is where live mode plugs in real sockets; the
//! scenario, the phones, the cluster model and the reports are shared.
#![forbid(unsafe_code)]

pub mod driver;
pub mod html;
pub mod live;
pub mod report;
pub mod scenario;
