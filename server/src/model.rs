//! Plain data of a cluster: versions, services, nodes, phones, enterprise parameters, knobs.

use std::fmt;

use crate::error::ModelError;
use crate::pki::{KeyUsageProfile, UnixTime};

/// A CUCM release, e.g. 11.5 or 14.0 SU3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major release (7 … 15).
    pub major: u8,
    /// Minor release (the `5` of 12.5).
    pub minor: u8,
    /// Service update (the `3` of 14SU3); 0 for none.
    pub su: u8,
}

/// Version class (spec table at the top of phone-behaviour.md): decides who signs the ITL (§6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VersionClass {
    /// Before 8.0: no Security by Default, no ITL, no TVS (seed 004 "Refresh Upgrade From 7.x").
    Pre8,
    /// 8.0 – 9.x: ITL signed by the TFTP node's CallManager key, no ITLRecovery.
    V8,
    /// 10.0 – 11.5: ITL signed by CallManager, ITLRecovery exists (2nd SAST).
    V10,
    /// 12.x: ITL and tokenless CTL signed by ITLRecovery.
    V12,
    /// 14+: as V12, plus Phone Interaction on Certificate Update, multi-SAN self-signed, CAPF on
    /// the publisher only, eTokens dropped from 14SU3.
    V14,
}

impl Version {
    /// A release without SU.
    pub const fn new(major: u8, minor: u8) -> Self {
        Self {
            major,
            minor,
            su: 0,
        }
    }

    /// With a service update.
    pub const fn with_su(major: u8, minor: u8, su: u8) -> Self {
        Self { major, minor, su }
    }

    /// Parses `12.5`, `14SU3`, `14.0SU2`, `11.5.1` (third component ignored).
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let bad =
            || ModelError::Invalid(format!("version {s:?}: expected e.g. 11.5, 12.5 or 14SU3"));
        let lower = s.trim().to_ascii_lowercase();
        let (main, su) = match lower.split_once("su") {
            Some((m, su)) => (m.to_string(), su.parse::<u8>().map_err(|_| bad())?),
            None => (lower.clone(), 0),
        };
        let mut parts = main.split('.');
        let major = parts
            .next()
            .and_then(|p| p.parse::<u8>().ok())
            .ok_or_else(bad)?;
        let minor = match parts.next() {
            Some(p) if !p.is_empty() => p.parse::<u8>().map_err(|_| bad())?,
            _ => 0,
        };
        Ok(Self { major, minor, su })
    }

    /// The version class.
    pub fn class(self) -> VersionClass {
        match self.major {
            0..=7 => VersionClass::Pre8,
            8 | 9 => VersionClass::V8,
            10 | 11 => VersionClass::V10,
            12 | 13 => VersionClass::V12,
            _ => VersionClass::V14,
        }
    }

    fn at_least(self, major: u8, minor: u8) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// Security by Default (ITL, TVS, signed configs) exists from 8.0 [seed 004].
    pub fn has_sbd(self) -> bool {
        self.at_least(8, 0)
    }
    /// ITLRecovery exists from 10.0 (§ version table).
    pub fn has_itlrecovery(self) -> bool {
        self.at_least(10, 0)
    }
    /// CallManager-ECDSA from 11.0 (seed 004 "Certificate Manager ECDSA Support").
    pub fn has_ecdsa(self) -> bool {
        self.at_least(11, 0)
    }
    /// The ITL is signed by ITLRecovery from 12.0 (§6.1).
    pub fn itl_signed_by_itlrecovery(self) -> bool {
        self.at_least(12, 0)
    }
    /// Tokenless CTL (`utils ctl set-cluster mixed-mode`) from 10.0 (§6.1).
    pub fn has_tokenless_ctl(self) -> bool {
        self.at_least(10, 0)
    }
    /// USB eToken CTLs up to 14SU2 (§ version table "CTL tokens dropped from 14SU3").
    pub fn has_etoken_ctl(self) -> bool {
        !(self.major >= 15 || (self.major == 14 && self.su >= 3))
    }
    /// Changing the rollback parameter rebuilds the ITL and resets phones by itself from 10.5
    /// (E9, seed 004 "Update ITL File": "Release 10.5 and later automatically resets phones").
    pub fn rollback_applies_automatically(self) -> bool {
        self.at_least(10, 5)
    }
    /// "Phone Interaction on Certificate Update" exists from 14 (§6.5, seed 000 Table 7 note).
    pub fn has_phone_interaction_param(self) -> bool {
        self.major >= 14
    }
    /// Multi-server SAN self-signed certificates (tomcat, CallManager, TVS) from 14 (seed 000
    /// "Simplified Certificate Management", Table 8).
    pub fn has_multi_san_self_signed(self) -> bool {
        self.major >= 14
    }
    /// CAPF certificate generated only on the publisher from 14 (seed 000 Table 8).
    pub fn capf_publisher_only(self) -> bool {
        self.major >= 14
    }
    /// `utils itl reset` exists from 10.0 (§ version table: "bulk ITL reset added in 10.0(1)").
    pub fn has_itl_reset(self) -> bool {
        self.at_least(10, 0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.su > 0 {
            write!(f, "SU{}", self.su)?;
        }
        Ok(())
    }
}

/// Cluster security mode (enterprise parameter "Cluster Security Mode", 0 = non-secure,
/// 1 = mixed; seed 002 "Determine the Mixed-Mode").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityMode {
    /// Non-secure (Security by Default only).
    NonSecure,
    /// Mixed mode with a tokenless CTL (`utils ctl set-cluster mixed-mode`, 10.0+).
    MixedTokenless,
    /// Mixed mode with a CTL signed by USB eTokens (CTL client; up to 14SU2).
    MixedEtoken,
}

impl SecurityMode {
    /// Mixed mode of either kind.
    pub fn is_mixed(self) -> bool {
        !matches!(self, SecurityMode::NonSecure)
    }
}

/// Identifier of a node inside its cluster (index; the publisher is node 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

/// A feature or network service on a node (seed 000 Table 7, seed 002 "After Regeneration").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Cisco CallManager.
    CallManager,
    /// Cisco CTIManager.
    CtiManager,
    /// Cisco Tftp.
    Tftp,
    /// Cisco Trust Verification Service.
    Tvs,
    /// Cisco Certificate Authority Proxy Function (publisher).
    Capf,
    /// Cisco CTL Provider.
    CtlProvider,
    /// Cisco Tomcat.
    Tomcat,
    /// HAProxy (14SU1+, seed 000 Table 7).
    HaProxy,
    /// Cisco DRF Master (publisher).
    DrfMaster,
    /// Cisco DRF Local.
    DrfLocal,
    /// IPsec service.
    Ipsec,
}

impl Service {
    /// All services in a fixed order.
    pub const ALL: [Service; 11] = [
        Service::CallManager,
        Service::CtiManager,
        Service::Tftp,
        Service::Tvs,
        Service::Capf,
        Service::CtlProvider,
        Service::Tomcat,
        Service::HaProxy,
        Service::DrfMaster,
        Service::DrfLocal,
        Service::Ipsec,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Service::CallManager => "Cisco CallManager",
            Service::CtiManager => "Cisco CTIManager",
            Service::Tftp => "Cisco Tftp",
            Service::Tvs => "Cisco Trust Verification Service",
            Service::Capf => "Cisco Certificate Authority Proxy Function",
            Service::CtlProvider => "Cisco CTL Provider",
            Service::Tomcat => "Cisco Tomcat",
            Service::HaProxy => "HAProxy",
            Service::DrfMaster => "Cisco DRF Master",
            Service::DrfLocal => "Cisco DRF Local",
            Service::Ipsec => "IPsec Service",
        }
    }
}

/// State of one service on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServiceState {
    /// Activated in Service Activation.
    pub activated: bool,
    /// Currently running.
    pub running: bool,
}

/// What an administrator does to a service (Control Center / Service Activation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceOp {
    /// Start a stopped, activated service.
    Start,
    /// Stop it.
    Stop,
    /// Restart it.
    Restart,
    /// Activate (and start).
    Activate,
    /// Deactivate (and stop).
    Deactivate,
}

/// A phone's MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses 12 hex digits (separators `:`/`-`/`.` allowed), optionally prefixed by `SEP`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s
            .strip_prefix("SEP")
            .or_else(|| s.strip_prefix("sep"))
            .unwrap_or(s);
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        if digits.len() != 12 || !digits.is_ascii() {
            return None;
        }
        let mut out = [0u8; 6];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(digits.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// From a number (low 48 bits), for generated phone fleets.
    pub fn from_u64(n: u64) -> Self {
        let b = n.to_be_bytes();
        Self([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// `SEP` + 12 upper-case hex digits (the device name, §10 "Device name sent to TVS").
    pub fn device_name(self) -> String {
        format!("SEP{self}")
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

/// A CallManager group: ordered node list; fills the config's CM list and `<TVS>` list
/// (§4.2: "CUCM fills it with the device pool's CallManager group").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmGroup {
    /// Name.
    pub name: String,
    /// Members in priority order (at most 3 used in practice; the schema allows 5, §4.2).
    pub members: Vec<NodeId>,
}

/// Identifier of a CallManager group (index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CmGroupId(pub u16);

/// A phone as the cluster database knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneRecord {
    /// MAC address.
    pub mac: Mac,
    /// Model digits, e.g. `8861` (device name `CP-8861-SEP…`).
    pub model: String,
    /// Supports Security by Default (else it gets unsigned config, seed 004 "Autoregistration").
    pub sbd: bool,
    /// CallManager group (via its device pool).
    pub cm_group: CmGroupId,
    /// "TFTP Encrypted Config" in its security profile (§1.4).
    pub encrypted_config: bool,
    /// Certificate (LSC or MIC) whose key wraps the AES key of `.enc.sgn` (§1.4).
    pub device_cert_der: Option<Vec<u8>>,
    /// Currently registered (only registered phones are reset, E11). Set by the simulator.
    pub registered: bool,
    /// Load ID put in the config.
    pub load: String,
}

/// "Phone Interaction on Certificate Update" (14+, §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PhoneInteraction {
    /// Reset phones automatically (default, seed 000 Table 7 note).
    #[default]
    Automatic,
    /// The administrator resets them.
    Manual,
}

/// "TFTP File Signature Algorithm" (§1.3, default SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FileDigest {
    /// SHA-1 (default).
    #[default]
    Sha1,
    /// SHA-512.
    Sha512,
}

/// Enterprise parameters the model uses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EnterpriseParams {
    /// "Prepare Cluster for Rollback to pre-8.0" (§5).
    pub rollback_pre80: bool,
    /// "Phone Interaction on Certificate Update" (14+).
    pub phone_interaction: PhoneInteraction,
    /// "TFTP File Signature Algorithm".
    pub tftp_file_signature: FileDigest,
    /// "Endpoint Advanced Encryption Algorithms Support" (seed 004: phones download the TFTP
    /// configuration files using advanced TLS ciphers) → ITL signer version 1.1 (§1.1 tag 28) [I].
    pub endpoint_advanced_encryption: bool,
}

/// One enterprise parameter change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamChange {
    /// Prepare Cluster for Rollback to pre-8.0.
    RollbackPre80(bool),
    /// Phone Interaction on Certificate Update.
    PhoneInteraction(PhoneInteraction),
    /// TFTP File Signature Algorithm.
    TftpFileSignature(FileDigest),
    /// Endpoint Advanced Encryption Algorithms Support.
    EndpointAdvancedEncryption(bool),
}

/// When certificates imported into trust stores become visible to TVS (E16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TvsStoreRefresh {
    /// Immediately (default; seed 004 TVS "Addition or removal of trust certificates are
    /// automatically reflected").
    #[default]
    Immediate,
    /// Only after the TVS service restarts (S9's manual method restarts TVS).
    OnRestart,
}

/// Which roles TVS returns for a certificate found in CallManager-trust (E1.2 says "CCM + TFTP";
/// the only capture, §4.4 / S9, shows role 3 = TFTP for such a certificate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CallManagerTrustRoles {
    /// TFTP (3), as in the S9 capture (default).
    #[default]
    Tftp,
    /// CCM+TFTP (2).
    CcmTftp,
    /// Both CCM (1) and TFTP (3).
    CcmAndTftp,
}

/// When the TFTP service starts presenting a new certificate on HTTPS 6971/6972 (E13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TftpHttpsRefresh {
    /// Only after deactivate + reactivate (default: E13, seed 004 note, seed 001 tomcat note).
    #[default]
    Reactivate,
    /// After a restart too (seed 000 "TFTP service should be restarted when a Tomcat
    /// certificate is uploaded").
    Restart,
}

/// Server-side knobs (§10.1 and the places the sources disagree). Every default is the
/// documented one; `docs/decisions.md` lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKnobs {
    /// E1.3 / K7: TVS vouches for the cluster's own ITLRecovery (default false).
    pub tvs_vouches_own_itlrecovery: bool,
    /// §4.4 / §10.1: TTL of TVS answers (86400).
    pub tvs_ttl_s: u32,
    /// E16.
    pub tvs_store_refresh: TvsStoreRefresh,
    /// E1.2 vs the S9 capture.
    pub tvs_callmanager_trust_roles: CallManagerTrustRoles,
    /// E7: `utils itl reset localkey` on V10 recovers (default true; it fails anyway when the
    /// ITLRecovery key is smaller than the CallManager key).
    pub v10_localkey_recovers: bool,
    /// Seed 000 Table 3 vs seed 001 CSR extension lists.
    pub key_usage_profile: KeyUsageProfile,
    /// E13.
    pub tftp_https_refresh: TftpHttpsRefresh,
    /// Validity of self-signed certificates in years (seed 000: 5 by default).
    pub validity_years: u32,
    /// ITLRecovery validity on fresh installs and regeneration (seed 004: 20 years; upgrades keep
    /// the old certificate's 5 years).
    pub itlrecovery_validity_years: u32,
    /// DRS backups include certificates and keys (seed 004: "In Release 10.0, the TFTP certificate
    /// and private key both get backed up"; seed 002 warns of CSCtn50405, older DRF did not).
    /// Default true; set false to model the bug on old releases.
    pub drs_backs_up_certs: bool,
    /// Signature hash of self-signed certificates made by the model (seed 000 Table 6 offers
    /// SHA-256 and stronger; SHA-1 for 8.x-era scenarios). Default SHA-256.
    pub cert_hash: crate::pki::SigHash,
    /// Window over which CUCM spreads an automatic reset wave (§10 "Reset pacing": ~10 minutes).
    pub reset_window_s: u32,
    /// Emit the CUCM field order (`show ctl`, wire-formats §3.6) rather than the reference
    /// tool's (default true: this is a CUCM model).
    pub cucm_layout: bool,
}

impl Default for ServerKnobs {
    fn default() -> Self {
        Self {
            tvs_vouches_own_itlrecovery: false,
            tvs_ttl_s: 86_400,
            tvs_store_refresh: TvsStoreRefresh::Immediate,
            tvs_callmanager_trust_roles: CallManagerTrustRoles::Tftp,
            v10_localkey_recovers: true,
            key_usage_profile: KeyUsageProfile::Seed000Table3,
            tftp_https_refresh: TftpHttpsRefresh::Reactivate,
            validity_years: 5,
            itlrecovery_validity_years: 20,
            drs_backs_up_certs: true,
            cert_hash: crate::pki::SigHash::Sha256,
            reset_window_s: 600,
            cucm_layout: true,
        }
    }
}

/// Description of one node for [`crate::Cluster::install`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Host name (CN of its certificates).
    pub hostname: String,
    /// IPv4 address.
    pub ip: [u8; 4],
    /// Runs CallManager.
    pub callmanager: bool,
    /// Runs TFTP.
    pub tftp: bool,
}

impl NodeSpec {
    /// A node running CallManager and TFTP.
    pub fn new(hostname: &str, ip: [u8; 4]) -> Self {
        Self {
            hostname: hostname.to_string(),
            ip,
            callmanager: true,
            tftp: true,
        }
    }
}

/// Description of a cluster for [`crate::Cluster::install`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name (also used in reports and bulk export file names).
    pub name: String,
    /// DNS domain of the nodes.
    pub domain: String,
    /// Release.
    pub version: Version,
    /// Nodes; the first is the publisher.
    pub nodes: Vec<NodeSpec>,
    /// Install time on the scenario clock (start of the certificates' validity).
    pub installed_at: UnixTime,
    /// Knobs.
    pub knobs: ServerKnobs,
    /// CAPF (and CTL Provider) activated on the publisher.
    pub capf_activated: bool,
    /// Number of modelled USB eTokens (1–2) to create for a CTL-client mixed mode; `None` = none.
    pub etokens: Option<usize>,
}

impl ClusterSpec {
    /// A cluster named `name` in `domain` running `version` with nodes `hosts` (publisher first,
    /// all running CallManager and TFTP), CAPF active, installed at `installed_at`.
    pub fn new(name: &str, version: Version, hosts: &[&str], installed_at: UnixTime) -> Self {
        let nodes = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| NodeSpec::new(h, [10, 0, 0, u8::try_from(i + 10).unwrap_or(255)]))
            .collect();
        Self {
            name: name.to_string(),
            domain: format!("{}.example", name.to_ascii_lowercase()),
            version,
            nodes,
            installed_at,
            knobs: ServerKnobs::default(),
            capf_activated: true,
            etokens: None,
        }
    }
}
