//! One phone against given files — the library side of `itlsim phone check` (issue 5): the phone
//! holds `held_ctl` / `held_itl` / a cached config, the TFTP server serves `new_file`, and TVS
//! questions go to a caller-supplied function (a real TLS client, or a refusal). The verdict and
//! the decision chain come from the same core that runs in simulations.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::event::{
    Action, Blob, Event, FetchFailure, FileName, Host, Mac, Outcome, SimTime, Transport,
};
use crate::files::{CryptoMode, Env};
use crate::knobs::Knobs;
use crate::model::Model;
use crate::phone::{Phone, PhoneSetup};
use crate::trace::TraceEntry;
use crate::trust::{Anchor, Reason};

/// What kind of file is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewFileKind {
    /// `CTLFile.tlv` / `CTLSEP<MAC>.tlv`.
    Ctl,
    /// `ITLFile.tlv` / `ITLSEP<MAC>.tlv`.
    Itl,
    /// `SEP<MAC>.cnf.xml.sgn`.
    ConfigSgn,
    /// `SEP<MAC>.cnf.xml.enc.sgn`.
    ConfigEncSgn,
}

impl NewFileKind {
    /// From a file name (`…CTL….tlv`, `…ITL….tlv`, `….enc.sgn`, `….sgn`).
    pub fn from_name(name: &str) -> Option<NewFileKind> {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let up = base.to_ascii_uppercase();
        if up.ends_with(".TLV") {
            if up.contains("CTL") {
                return Some(NewFileKind::Ctl);
            }
            if up.contains("ITL") {
                return Some(NewFileKind::Itl);
            }
            return None;
        }
        if up.ends_with(".ENC.SGN") {
            return Some(NewFileKind::ConfigEncSgn);
        }
        if up.ends_with(".SGN") {
            return Some(NewFileKind::ConfigSgn);
        }
        None
    }

    fn serves(self, f: FileName) -> bool {
        match self {
            NewFileKind::Ctl => f == FileName::CtlSep,
            NewFileKind::Itl => f == FileName::ItlSep,
            NewFileKind::ConfigSgn => f == FileName::CfgSgn,
            NewFileKind::ConfigEncSgn => f == FileName::CfgEncSgn,
        }
    }
}

/// A TVS member's reply as the caller's TVS client saw it.
#[derive(Debug, Clone)]
pub enum TvsReply {
    /// TLS worked; the server presented `server_cert` and answered `frame`.
    Answer {
        /// The certificate presented in the TLS handshake (DER).
        server_cert: Arc<Blob>,
        /// The response frame.
        frame: Vec<u8>,
    },
    /// Refused / timed out / closed.
    Unreachable,
    /// TLS failed below the certificate check.
    TlsFailed,
}

/// Input of [`check_file`].
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// Phone model (capabilities, §8).
    pub model: Model,
    /// MAC (device name for TVS).
    pub mac: Mac,
    /// The CTL the phone holds.
    pub held_ctl: Option<Arc<Blob>>,
    /// The ITL the phone holds.
    pub held_itl: Option<Arc<Blob>>,
    /// The configuration in effect (XML), for the TVS member list (§4.2).
    pub cached_config: Option<Vec<u8>>,
    /// The file the TFTP server now serves.
    pub new_file: Arc<Blob>,
    /// Its kind.
    pub kind: NewFileKind,
    /// Knobs.
    pub knobs: Knobs,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (installed or taken as configuration), with what authenticated it.
    Accepted(Anchor),
    /// Identical to the file the phone holds.
    Unchanged,
    /// Rejected.
    Rejected(Reason),
    /// The phone did not ask for a file of this kind (e.g. unsigned config requested).
    NotRequested,
}

/// Result of [`check_file`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The verdict.
    pub verdict: Verdict,
    /// Every outcome the phone recorded.
    pub outcomes: Vec<Outcome>,
    /// The decision chain.
    pub trace: Vec<TraceEntry>,
}

impl CheckReport {
    /// `itlsim phone check` exit code: 0 accepted/unchanged, 1 rejected or not requested.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Accepted(_) | Verdict::Unchanged => 0,
            Verdict::Rejected(_) | Verdict::NotRequested => 1,
        }
    }

    /// Verdict and decision chain as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = match &self.verdict {
            Verdict::Accepted(a) => writeln!(s, "ACCEPTED via {}", a.describe()),
            Verdict::Unchanged => writeln!(s, "UNCHANGED (same bytes as the file the phone holds)"),
            Verdict::Rejected(r) => writeln!(s, "REJECTED: {} ({})", r.code(), r.describe()),
            Verdict::NotRequested => writeln!(
                s,
                "NOT REQUESTED: the phone did not ask for a file of this kind"
            ),
        };
        for t in &self.trace {
            let _ = writeln!(s, "  {t}");
        }
        s
    }
}

/// Why the check could not run (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

/// Runs one phone core: power on with the held files, serve `new_file`, answer TVS through `tvs`
/// (called with host, port and the request frame), and report what happened to the new file.
pub fn check_file(
    input: &CheckInput,
    tvs: &mut dyn FnMut(&Host, u16, &[u8]) -> TvsReply,
) -> Result<CheckReport, BadInput> {
    let env = Env::new(input.knobs.clone(), CryptoMode::Real);
    let server = Host::new("tftp");
    let setup = PhoneSetup {
        mac: input.mac,
        model: input.model,
        tftp: Arc::from(vec![server]),
        device_key: None,
        load: None,
    };
    let mut phone = Phone::new(env, setup);
    phone
        .preload(input.held_ctl.as_ref(), input.held_itl.as_ref())
        .map_err(|r| {
            BadInput(format!(
                "a held trust list does not verify against its own signer: {r}"
            ))
        })?;
    if let Some(x) = &input.cached_config {
        phone.preload_config(x);
    }
    let mut now = SimTime(0);
    let mut out = Vec::new();
    let mut queue: VecDeque<Event> = VecDeque::from([Event::PowerOn]);
    let mut outcomes = Vec::new();
    let mut steps = 0;
    while let Some(ev) = queue.pop_front() {
        steps += 1;
        if steps > 10_000 {
            break;
        }
        phone.handle(now, ev, &mut out);
        for a in out.drain(..) {
            match a {
                Action::Fetch {
                    req,
                    transport,
                    file,
                    ..
                } => {
                    if transport == Transport::Https6971 {
                        queue.push_back(Event::FetchFailed {
                            req,
                            why: FetchFailure::TlsFailed,
                        });
                    } else if input.kind.serves(file) {
                        queue.push_back(Event::FileReceived {
                            req,
                            file: Arc::clone(&input.new_file),
                            server_cert: None,
                        });
                    } else {
                        queue.push_back(Event::FileNotFound { req });
                    }
                }
                Action::QueryTvs {
                    req,
                    host,
                    port,
                    frame,
                    ..
                } => queue.push_back(match tvs(&host, port, &frame) {
                    TvsReply::Answer { server_cert, frame } => Event::TvsAnswer {
                        req,
                        server_cert,
                        frame,
                    },
                    TvsReply::Unreachable => Event::TvsUnreachable { req },
                    TvsReply::TlsFailed => Event::TvsTlsFailed { req },
                }),
                Action::Record(o) => outcomes.push(o),
                Action::Register { .. } | Action::ReportItlHash { .. } | Action::Status(_) => {}
            }
        }
        if queue.is_empty()
            && let Some(t) = phone.poll_timeout()
            && phone.busy()
        {
            now = now.max(t);
            queue.push_back(Event::Timer);
        }
    }
    let verdict = verdict_for(input.kind, &outcomes);
    Ok(CheckReport {
        verdict,
        outcomes,
        trace: phone.trace().to_vec(),
    })
}

fn verdict_for(kind: NewFileKind, outcomes: &[Outcome]) -> Verdict {
    use crate::event::ListKind;
    let list = match kind {
        NewFileKind::Ctl => Some(ListKind::Ctl),
        NewFileKind::Itl => Some(ListKind::Itl),
        _ => None,
    };
    for o in outcomes {
        match (o, list) {
            (Outcome::TrustListInstalled { list: l, via, .. }, Some(k)) if *l == k => {
                return Verdict::Accepted(*via);
            }
            (Outcome::TrustListUnchanged { list: l }, Some(k)) if *l == k => {
                return Verdict::Unchanged;
            }
            (Outcome::TrustListRejected { list: l, reason }, Some(k)) if *l == k => {
                return Verdict::Rejected(*reason);
            }
            (Outcome::ConfigAccepted { via, .. }, None) => return Verdict::Accepted(*via),
            (Outcome::ConfigRejected { reason, .. }, None) => return Verdict::Rejected(*reason),
            _ => {}
        }
    }
    Verdict::NotRequested
}
