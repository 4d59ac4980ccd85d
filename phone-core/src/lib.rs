//! Sans-IO simulated Cisco IP phone (issue 5): boots, downloads, verifies, asks TVS and locks as
//! `shared/spec/phone-behaviour.md` documents. Section and rule ids in comments and in the
//! decision trace (§2.4, T-ITL, E4 …) refer to that spec.
//!
//! What it does not do: no I/O, no clock, no global randomness. A driver owns sockets or a
//! virtual network and the clock.
//!
//! # Driving contract
//!
//! 1. `phone.handle(now, event, &mut out)` — `now` is the driver's [`SimTime`].
//! 2. Execute every [`Action`] in `out`, in order. Answers carry the action's [`RequestId`];
//!    answers with an unknown or stale id are ignored.
//! 3. Re-read [`Phone::poll_timeout`] and deliver [`Event::Timer`] at that time (or later).
//!
//! Trust can only be reached through a signature check: [`files::VerifiedList`] has no public
//! constructor and is made only after RSA verification passed (first use verifies the file
//! against its own signer record).
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod check;
pub mod config;
pub mod event;
pub mod files;
pub mod knobs;
pub mod model;
pub mod phone;
pub mod status;
pub mod trace;
pub mod trust;

pub use check::{CheckInput, CheckReport, NewFileKind, TvsReply, check_file};
pub use config::PhoneConfig;
pub use event::{
    Action, Blob, ConfigSource, Event, FileName, Host, ListKind, Mac, Outcome, RequestId, SimTime,
    Transport,
};
pub use files::{CryptoMode, Env};
pub use knobs::Knobs;
pub use model::{Caps, Family, Model};
pub use phone::{Phone, PhoneSetup};
pub use trust::{Anchor, Reason, RoleSet};

#[cfg(test)]
mod tests {
    #[test]
    fn phones_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Phone>();
        send_sync::<crate::Env>();
    }
}
