//! Status messages: reason → displayed string per family (§4.6, E22) and the 30-entry status
//! log (§1.5, §10 "Status message log").

use std::collections::VecDeque;

use crate::event::{FileName, Mac, SimTime};
use crate::model::Family;

/// A status message the phone displays. Rendered per family by [`StatusMsg::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusMsg {
    /// First CTL and ITL installed in one cycle.
    CtlAndItlInstalled,
    /// First CTL installed (F-CTL "CTL Installed").
    CtlInstalled,
    /// First ITL installed.
    ItlInstalled,
    /// A CTL/ITL replaced.
    TrustListUpdated,
    /// A new CTL/ITL rejected, or network/TFTP failure (E22).
    TrustListUpdateFailed,
    /// A CTL rejected (F-MOD shows this separately).
    CtlUpdateFailed,
    /// No CTL on a non-secure cluster (informational).
    CtlNotFound,
    /// Neither list installed.
    NoTrustList,
    /// A signed configuration rejected.
    ConfigAuthFail(FileName),
    /// The configuration file is missing.
    ConfigNotFound,
    /// Erasing trust lists.
    Erasing,
    /// A TFTP server timed out (§10).
    TftpTimeout,
    /// An HTTPS service could not be authenticated.
    HostNotFound,
    /// Registration failed.
    RegistrationFailed,
}

impl StatusMsg {
    /// The text this family shows (§4.6 table; [C]/[I] strings marked there).
    pub fn text(self, family: Family, mac: &Mac) -> String {
        use Family as F;
        let s: &str = match (self, family) {
            (StatusMsg::CtlAndItlInstalled, F::Mod) => "CTL and ITL installed",
            (StatusMsg::CtlAndItlInstalled, _) => "Trust List Updated",
            (StatusMsg::CtlInstalled, F::Ctl) => "CTL Installed",
            (StatusMsg::CtlInstalled, F::Mod) => "CTL installed",
            (StatusMsg::CtlInstalled, _) => "Trust List Updated",
            (StatusMsg::ItlInstalled, _) => "ITL installed",
            (StatusMsg::TrustListUpdated, F::Mod) => "Trust List updated",
            (StatusMsg::TrustListUpdated, _) => "Trust List Updated",
            (StatusMsg::TrustListUpdateFailed, F::Mod) => "Trust List update failed",
            (StatusMsg::TrustListUpdateFailed, F::Ctl) => "CTL update failed",
            (StatusMsg::TrustListUpdateFailed, _) => "Trust List Update Failed",
            (StatusMsg::CtlUpdateFailed, F::Mod | F::Ctl) => "CTL update failed",
            (StatusMsg::CtlUpdateFailed, _) => "Trust List Update Failed",
            (StatusMsg::CtlNotFound, _) => "File Not Found <CTLFile.tlv>",
            (StatusMsg::NoTrustList, _) => "No Trust List installed",
            (StatusMsg::ConfigAuthFail(file), F::Leg) => {
                return format!(
                    "invalid file {}, authenticated fail. Reason:14",
                    file.render(mac)
                );
            }
            (StatusMsg::ConfigAuthFail(_), F::Ctl) => "File Auth Fail",
            (StatusMsg::ConfigAuthFail(_), _) => "Trust List update failed",
            (StatusMsg::ConfigNotFound, _) => "File not found <Cfg File>",
            (StatusMsg::Erasing, _) => "Erasing CTL and ITL files",
            (StatusMsg::TftpTimeout, _) => "TFTP Timeout",
            (StatusMsg::HostNotFound, _) => "Host Not Found",
            (StatusMsg::RegistrationFailed, _) => "Registration failed",
        };
        s.to_string()
    }
}

/// One entry of the status log: 8-byte time in seconds (phones show seconds) + message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEntry {
    /// Seconds since the scenario start (u32: 136 years).
    pub at_s: u32,
    /// The message.
    pub msg: StatusMsg,
}

/// The last [`StatusLog::CAPACITY`] status messages (§1.5: 30 on the 8800).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusLog {
    entries: VecDeque<StatusEntry>,
}

impl StatusLog {
    /// Entries kept.
    pub const CAPACITY: usize = 30;

    /// Appends, dropping the oldest beyond 30.
    pub fn push(&mut self, now: SimTime, msg: StatusMsg) {
        if self.entries.len() >= Self::CAPACITY {
            self.entries.pop_front();
        }
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(8);
        }
        let at_s = u32::try_from(now.0 / 1000).unwrap_or(u32::MAX);
        self.entries.push_back(StatusEntry { at_s, msg });
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &StatusEntry> {
        self.entries.iter()
    }

    /// The newest message.
    pub fn last(&self) -> Option<&StatusEntry> {
        self.entries.back()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Clears (factory reset).
    pub fn clear(&mut self) {
        self.entries = VecDeque::new();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<StatusEntry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_per_family_and_ring_of_30() {
        let mac = Mac([0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(
            StatusMsg::ConfigAuthFail(FileName::CfgSgn).text(Family::Ctl, &mac),
            "File Auth Fail"
        );
        assert_eq!(
            StatusMsg::ConfigAuthFail(FileName::CfgSgn).text(Family::Leg, &mac),
            "invalid file SEP001122334455.cnf.xml.sgn, authenticated fail. Reason:14"
        );
        assert_eq!(
            StatusMsg::TrustListUpdateFailed.text(Family::Leg, &mac),
            "Trust List Update Failed"
        );
        assert_eq!(
            StatusMsg::TrustListUpdateFailed.text(Family::Mod, &mac),
            "Trust List update failed"
        );
        let mut log = StatusLog::default();
        for i in 0..45 {
            log.push(SimTime::from_secs(i), StatusMsg::TftpTimeout);
        }
        assert_eq!(log.len(), 30);
        assert_eq!(log.iter().next().map(|e| e.at_s), Some(15));
    }
}
