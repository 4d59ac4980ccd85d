//! Network listeners for the CUCM cluster model (issue 4), and the clients that talk to them.
//!
//! * [`tvs`]: TVS over TLS (TCP 2445, wire-formats §6, phone-behaviour §4.3–4.4, E18, E19).
//! * [`tftp`]: a small read-only TFTP server and client, RFC 1350 + 2347/2348/2349 + 7440
//!   windowsize (wire-formats §3.7, phone-behaviour §2.3–2.4, bad-inputs §2.4).
//! * [`http`]: HTTP 6970 and HTTPS 6971/6972 with hyper 1 (phone-behaviour §2.3, E13,
//!   bad-inputs §2.5).
//! * [`serve`]: starts every service of every node of a cluster model, follows the model's
//!   service states (stop closes the port, restart presents the new certificate) — what
//!   `itlsim serve` runs.
//!
//! The listeners only frame bytes: every answer comes from a [`view::ClusterView`] (files, TVS
//! decision, TLS identity), implemented for the `itlsim-server` model by [`view::Clusters`].
//! Nothing here decides trust. Every socket is bound where the caller says (127.0.0.1 by
//! default in [`serve`]); every wait has an absolute deadline ([`limits::Limits`]).
#![forbid(unsafe_code)]

pub mod clients;
pub mod http;
pub mod limits;
pub mod serve;
pub mod tftp;
pub mod tls;
pub mod tvs;
pub mod util;
pub mod view;

pub use limits::Limits;
pub use view::{ClusterView, Clusters, FileAnswer, NodeRef, Port};
