//! The per-phone decision trace: every decision of the current (or last) provisioning cycle with
//! the spec rule that made it, its inputs and its result, so a report can say *why*.

use std::fmt;
use std::sync::Arc;

use crate::event::{FileName, SimTime};
use crate::files::Identity;
use crate::trust::{Anchor, Reason, RoleSet};

/// Rule ids as the spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// §2.1 a provisioning cycle starts.
    Cycle,
    /// §2.2 TFTP server selection / failover.
    TftpSelect,
    /// §2.3 transport fallback (HTTPS → HTTP → TFTP).
    Transport,
    /// §2.4 request sequence (which file is asked for, missing files).
    Request,
    /// §3.1 trust on first use.
    Tofu,
    /// E2: first CTL on a phone holding an ITL.
    E2,
    /// E3: CTL first, empty-ITL shortcut only without a real CTL anchor.
    E3,
    /// E4: a rejected trust list freezes the cycle.
    E4,
    /// E5: empty (rollback) ITL.
    E5,
    /// E6: registration of a locked phone.
    E6,
    /// E10 / §1.3: ITL size limit.
    E10,
    /// E13 / §1.4: HTTPS 6971 server check.
    E13,
    /// §3.2 T-CTL.
    TCtl,
    /// §3.3 T-ITL.
    TItl,
    /// §3.4 T-CFG.
    TCfg,
    /// §3.4/§8 digest or key size beyond the model.
    Crypto,
    /// §3.5 T-TVS (TLS pinning to a TVS record).
    TTvs,
    /// §3.6 T-HTTPS.
    THttps,
    /// §3.8 T-CCM.
    TCcm,
    /// §3.9 certificate validity (knob `check_expiry`).
    Expiry,
    /// §4.1 TVS preconditions.
    TvsWhen,
    /// §4.2 member order / failover.
    TvsOrder,
    /// §4.5 answer handling (status, roles, TTL cache).
    TvsAnswer,
    /// §4.7 locked.
    Locked,
    /// §2.4 step 7 / §2.5 REGISTER.
    Register,
    /// §2.4 secure profile without a CTL (4 attempts).
    SecureNoCtl,
    /// §9 recovery actions.
    Recovery,
    /// §2.4 step 5 firmware.
    Firmware,
}

impl Rule {
    /// The spec id printed in reports.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Cycle => "§2.1",
            Rule::TftpSelect => "§2.2",
            Rule::Transport => "§2.3",
            Rule::Request => "§2.4",
            Rule::Tofu => "§3.1 TOFU",
            Rule::E2 => "E2",
            Rule::E3 => "E3",
            Rule::E4 => "E4",
            Rule::E5 => "E5",
            Rule::E6 => "E6",
            Rule::E10 => "E10",
            Rule::E13 => "E13",
            Rule::TCtl => "T-CTL",
            Rule::TItl => "T-ITL",
            Rule::TCfg => "T-CFG",
            Rule::Crypto => "§3.4 crypto",
            Rule::TTvs => "T-TVS",
            Rule::THttps => "T-HTTPS",
            Rule::TCcm => "T-CCM",
            Rule::Expiry => "§3.9",
            Rule::TvsWhen => "§4.1",
            Rule::TvsOrder => "§4.2",
            Rule::TvsAnswer => "§4.5",
            Rule::Locked => "§4.7",
            Rule::Register => "§2.5 REGISTER",
            Rule::SecureNoCtl => "§2.4 secure-no-TL",
            Rule::Recovery => "§9",
            Rule::Firmware => "§2.4 step 5",
        }
    }
}

/// What a decision concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Accepted, with the anchor.
    Accept(Anchor),
    /// Rejected.
    Reject(Reason),
    /// Asked TVS member `member` (index in the sorted list).
    AskTvs {
        /// Member index.
        member: u8,
    },
    /// A step that neither accepts nor rejects (request made, file missing, fallback …).
    Note(Reason),
}

/// One trace entry (kept small: 32 bytes on 64-bit targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// When.
    pub at: SimTime,
    /// Which spec rule.
    pub rule: Rule,
    /// The file concerned, if any.
    pub file: Option<FileName>,
    /// The result.
    pub verdict: Verdict,
    /// Roles involved (held by the anchor, or returned by TVS).
    pub roles: RoleSet,
    /// The signer or certificate concerned (shared with the interned file).
    pub who: Option<Arc<Identity>>,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {:<14}", self.at, self.rule.id())?;
        if let Some(file) = self.file {
            write!(f, " {}", file.as_str())?;
        }
        match self.verdict {
            Verdict::Accept(a) => write!(f, ": ACCEPT via {}", a.describe())?,
            Verdict::Reject(r) => write!(f, ": REJECT {} ({})", r.code(), r.describe())?,
            Verdict::AskTvs { member } => write!(f, ": ask TVS member #{member}")?,
            Verdict::Note(r) => write!(f, ": {}", r.describe())?,
        }
        if let Some(who) = &self.who {
            write!(f, "; signer/cert {who}")?;
        }
        if !self.roles.is_empty() {
            write!(f, "; roles {}", self.roles)?;
        }
        Ok(())
    }
}
