//! Phone-side simulator knobs (spec §10.1 and the binding decisions E2, E6), with the documented
//! defaults. Cluster-side knobs of §10.1 (`itl_signer_class`, `tvs_vouches_own_itlrecovery`,
//! `reset_window_s`, `straggler_fraction`, `v10_localkey_recovers`, `tvs_store_refresh`,
//! `restore_requires_manual_unlock`) belong to the server model, not to the phone.

/// How strictly a TVS answer's roles are checked (§4.5, K3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TvsRoleCheck {
    /// The answer must carry the role the file needs (default, E1.4).
    #[default]
    Strict,
    /// Any valid answer is enough.
    Lenient,
}

/// Which TVS member a query starts with (§4.2, K2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TvsSelection {
    /// Highest priority first (default).
    #[default]
    Priority,
    /// Start one member further on each query (round robin), then fail over in order.
    RoundRobin,
}

/// Where a locked phone registers (E6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LockedRegistration {
    /// With the CallManager list of its cached configuration (default) [C S32/S15].
    #[default]
    CachedCms,
    /// With the TFTP server it is provisioning from.
    TftpServer,
    /// Not at all (S1/S2/S11: must unlock to register).
    None,
}

/// Phone knobs. One value is usually shared by all phones of a scenario (behind `Arc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Knobs {
    /// `tvs_role_check` (§10.1, default strict).
    pub tvs_role_check: TvsRoleCheck,
    /// `ctl_tofu_if_itl_present` (E2, default false).
    pub ctl_tofu_if_itl_present: bool,
    /// `tvs_selection` (§10.1, default priority).
    pub tvs_selection: TvsSelection,
    /// `tvs_connect_timeout_s` (§10, default 10 s per member).
    pub tvs_connect_timeout_s: u32,
    /// `tftp_retx_ms` (§10, default 500 ms, doubling) [D S12].
    pub tftp_retx_ms: u32,
    /// `tftp_retries` (§10, default 4) [I].
    pub tftp_retries: u32,
    /// `tvs_ttl_s`: TTL used when a valid answer carries none (§4.5, default 86400).
    pub tvs_ttl_s: u32,
    /// `tvs_cache_persistent` (K13, default false: the cache is RAM, cleared on reboot).
    pub tvs_cache_persistent: bool,
    /// `check_expiry` (§3.9, K14, default false).
    pub check_expiry: bool,
    /// Wall-clock UNIX seconds at `SimTime` 0, for `check_expiry` (style.md §2 "scenario epoch").
    pub epoch_unix_s: i64,
    /// `itl_max_bytes` (E10, default 65 536). `itl_max_certs` is a builder warning only (E10).
    pub itl_max_bytes: u32,
    /// `secure_ctl_attempts` (§2.4, §10, default 4) [D S20].
    pub secure_ctl_attempts: u8,
    /// `locked_phone_registration` (E6, default cached_cms).
    pub locked_phone_registration: LockedRegistration,
    /// HTTP/HTTPS request timeout before falling back to the next transport. Not documented;
    /// 10 s like the TVS connect timeout [I].
    pub http_timeout_s: u32,
    /// Back-off before retrying a whole cycle after every TFTP server failed (§2.5
    /// PROVISION_FAILED). Not documented (K10) [I].
    pub provision_retry_s: u32,
    /// TVS answers larger than this are treated as member errors (bad-inputs §4.5: 16 KiB cap).
    pub tvs_max_frame: u32,
    /// Keep the decision trace of the current/last cycle (on by default; off saves memory in
    /// very large runs).
    pub trace: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            tvs_role_check: TvsRoleCheck::Strict,
            ctl_tofu_if_itl_present: false,
            tvs_selection: TvsSelection::Priority,
            tvs_connect_timeout_s: 10,
            tftp_retx_ms: 500,
            tftp_retries: 4,
            tvs_ttl_s: 86_400,
            tvs_cache_persistent: false,
            check_expiry: false,
            epoch_unix_s: 0,
            itl_max_bytes: 65_536,
            secure_ctl_attempts: 4,
            locked_phone_registration: LockedRegistration::CachedCms,
            http_timeout_s: 10,
            provision_retry_s: 30,
            tvs_max_frame: 16 * 1024,
            trace: true,
        }
    }
}

impl Knobs {
    /// Total TFTP wait for one file: the first try and `tftp_retries` retransmits, each wait
    /// doubling from `tftp_retx_ms` (§10: 500 ms, doubling, ~4 tries) = 15.5 s by default.
    pub fn tftp_budget_ms(&self) -> u64 {
        let mut total = 0u64;
        let mut step = u64::from(self.tftp_retx_ms);
        for _ in 0..=self.tftp_retries.min(16) {
            total = total.saturating_add(step);
            step = step.saturating_mul(2);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults() {
        let k = Knobs::default();
        assert_eq!(k.tvs_ttl_s, 86_400);
        assert_eq!(k.tvs_connect_timeout_s, 10);
        assert_eq!(k.itl_max_bytes, 65_536);
        assert_eq!(k.secure_ctl_attempts, 4);
        assert_eq!(k.tftp_budget_ms(), 500 + 1000 + 2000 + 4000 + 8000);
        assert_eq!(k.locked_phone_registration, LockedRegistration::CachedCms);
        assert!(!k.ctl_tofu_if_itl_present && !k.check_expiry && !k.tvs_cache_persistent);
    }
}
