//! What goes in (`Event`) and out (`Action`) of a phone, and the small value types they carry.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::status::StatusMsg;
use crate::trust::{Anchor, Reason, RoleSet};

/// Simulated time: milliseconds since the scenario started. The phone never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

impl SimTime {
    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s.saturating_mul(1000))
    }

    /// `self + ms`, saturating.
    pub const fn plus_ms(self, ms: u64) -> Self {
        SimTime(self.0.saturating_add(ms))
    }

    /// `self + s` seconds, saturating.
    pub const fn plus_secs(self, s: u64) -> Self {
        self.plus_ms(s.saturating_mul(1000))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// A phone's MAC address; displays as 12 upper-case hex digits (`SEP<MAC>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses 12 hex digits, optionally with `:`/`-`/`.` separators or a `SEP` prefix.
    pub fn parse(s: &str) -> Option<Mac> {
        let s = s.trim();
        let s = s.strip_prefix("SEP").unwrap_or(s);
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        if hex.len() != 12 {
            return None;
        }
        let mut out = [0u8; 6];
        for (i, b) in out.iter_mut().enumerate() {
            let pair = hex.get(i * 2..i * 2 + 2)?;
            *b = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Mac(out))
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

/// A server address as text (IP or host name), cheap to clone and shared between phones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host(pub Arc<str>);

impl Host {
    /// A host from text.
    pub fn new(s: &str) -> Self {
        Host(Arc::from(s))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes with their SHA-256, computed once when the blob is made. Drivers make one `Arc<Blob>`
/// per distinct file or certificate and hand the same `Arc` to every phone, so phones share
/// both the bytes and the hash (the key of the decode interner and the signature memo).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    bytes: Box<[u8]>,
    sha256: [u8; 32],
}

impl Blob {
    /// Wraps bytes and hashes them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Arc<Blob> {
        let bytes: Box<[u8]> = bytes.into().into_boxed_slice();
        let sha256 = Sha256::digest(&bytes).into();
        Arc::new(Blob { bytes, sha256 })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for zero bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Blob({} bytes, sha256 {})",
            self.bytes.len(),
            hex::encode(&self.sha256[..8])
        )
    }
}

/// Identifies one outstanding request of one phone; responses must echo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RequestId(pub u32);

/// The files a phone asks for (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileName {
    /// `CTLSEP<MAC>.tlv` (step 1).
    CtlSep,
    /// `CTLFile.tlv` (step 1b).
    CtlFile,
    /// `ITLSEP<MAC>.tlv` (step 2).
    ItlSep,
    /// `ITLFile.tlv` (step 2b).
    ItlFile,
    /// `SEP<MAC>.cnf.xml.enc.sgn` (step 3).
    CfgEncSgn,
    /// `SEP<MAC>.cnf.xml.sgn` (step 3).
    CfgSgn,
    /// `SEP<MAC>.cnf.xml` (step 3').
    CfgPlain,
    /// `XMLDefault.cnf.xml.sgn` (step 3, autoregistration fallback).
    DefaultSgn,
    /// `XMLDefault.cnf.xml` (step 3', autoregistration fallback).
    DefaultPlain,
}

impl FileName {
    /// The name on the wire for a phone with `mac`.
    pub fn render(self, mac: &Mac) -> String {
        match self {
            FileName::CtlSep => format!("CTLSEP{mac}.tlv"),
            FileName::CtlFile => "CTLFile.tlv".into(),
            FileName::ItlSep => format!("ITLSEP{mac}.tlv"),
            FileName::ItlFile => "ITLFile.tlv".into(),
            FileName::CfgEncSgn => format!("SEP{mac}.cnf.xml.enc.sgn"),
            FileName::CfgSgn => format!("SEP{mac}.cnf.xml.sgn"),
            FileName::CfgPlain => format!("SEP{mac}.cnf.xml"),
            FileName::DefaultSgn => "XMLDefault.cnf.xml.sgn".into(),
            FileName::DefaultPlain => "XMLDefault.cnf.xml".into(),
        }
    }

    /// A trust list (`.tlv`).
    pub fn is_trust_list(self) -> bool {
        matches!(
            self,
            FileName::CtlSep | FileName::CtlFile | FileName::ItlSep | FileName::ItlFile
        )
    }

    /// A CTL name.
    pub fn is_ctl(self) -> bool {
        matches!(self, FileName::CtlSep | FileName::CtlFile)
    }

    /// A configuration name.
    pub fn is_config(self) -> bool {
        !self.is_trust_list()
    }

    /// Short generic form for traces (`SEP<MAC>.cnf.xml.sgn`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileName::CtlSep => "CTLSEP<MAC>.tlv",
            FileName::CtlFile => "CTLFile.tlv",
            FileName::ItlSep => "ITLSEP<MAC>.tlv",
            FileName::ItlFile => "ITLFile.tlv",
            FileName::CfgEncSgn => "SEP<MAC>.cnf.xml.enc.sgn",
            FileName::CfgSgn => "SEP<MAC>.cnf.xml.sgn",
            FileName::CfgPlain => "SEP<MAC>.cnf.xml",
            FileName::DefaultSgn => "XMLDefault.cnf.xml.sgn",
            FileName::DefaultPlain => "XMLDefault.cnf.xml",
        }
    }
}

/// How a file is fetched (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TFTP, UDP 69.
    Tftp,
    /// HTTP, TCP 6970.
    Http6970,
    /// HTTPS, TCP 6971 (configuration only, ITL signer version ≥ 1.1).
    Https6971,
}

impl Transport {
    /// The port.
    pub fn port(self) -> u16 {
        match self {
            Transport::Tftp => 69,
            Transport::Http6970 => 6970,
            Transport::Https6971 => 6971,
        }
    }
}

/// Why a fetch failed without a "not found" answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchFailure {
    /// TCP refused / ICMP unreachable.
    ConnectRefused,
    /// The transport gave up (TFTP retransmits exhausted, HTTP timeout).
    Timeout,
    /// TLS handshake failed below the certificate check (version, cipher) on 6971.
    TlsFailed,
    /// HTTP status other than 200/404/503.
    HttpStatus(u16),
}

/// Why a reset happened (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// "Reset" from CUCM: a reboot; RAM (TVS cache) is cleared.
    Reset,
    /// "Restart" from CUCM (Apply Config, automatic certificate-change resets): the cycle reruns,
    /// RAM is kept [I].
    Restart,
}

/// A user action on the phone (§9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserAction {
    /// Erase trust lists from the settings menu (per-file on 79xx; both via "reset security
    /// settings" elsewhere, §8/§9). The phone then restarts its cycle.
    EraseTrustLists {
        /// Erase the CTL.
        ctl: bool,
        /// Erase the ITL.
        itl: bool,
    },
    /// Factory reset: trust lists, cached config, LSC, alternate TFTP and status log go; the MIC
    /// stays (§9).
    FactoryReset,
    /// Set (or clear) the alternate TFTP server by hand; `keep_trust_list` is the "Continue"
    /// answer of M8 (§2.2, §7.2 M8).
    SetAltTftp {
        /// The server, or `None` to go back to DHCP.
        server: Option<Host>,
        /// Keep CTL/ITL ("Continue") or erase them.
        keep_trust_list: bool,
    },
}

/// Everything that can happen to a phone.
#[derive(Debug, Clone)]
pub enum Event {
    /// Power on (boot from flash; RAM state is empty).
    PowerOn,
    /// Power off: the cycle and RAM state are dropped; flash state stays.
    PowerOff,
    /// A reset/restart pushed by CUCM (§2.1).
    Reset(ResetKind),
    /// The file of `req` arrived. `server_cert` is the certificate the HTTPS server presented
    /// (6971 only); the phone applies T-HTTPS itself.
    FileReceived {
        /// The request answered.
        req: RequestId,
        /// The bytes.
        file: Arc<Blob>,
        /// HTTPS only: the server's certificate (DER).
        server_cert: Option<Arc<Blob>>,
    },
    /// HTTP 404/503 or TFTP error 1 "File not found".
    FileNotFound {
        /// The request answered.
        req: RequestId,
    },
    /// The fetch failed for another reason.
    FetchFailed {
        /// The request answered.
        req: RequestId,
        /// Why.
        why: FetchFailure,
    },
    /// A TVS member answered. `server_cert` is the certificate it presented in the TLS handshake
    /// (the phone applies T-TVS pinning); `frame` is the TVS response frame.
    TvsAnswer {
        /// The request answered.
        req: RequestId,
        /// TLS server certificate (DER).
        server_cert: Arc<Blob>,
        /// The response frame as received.
        frame: Vec<u8>,
    },
    /// TCP refused, connection closed without an answer, or timed out.
    TvsUnreachable {
        /// The request answered.
        req: RequestId,
    },
    /// TLS failed below the certificate check (e.g. no common TLS version, §4.3).
    TvsTlsFailed {
        /// The request answered.
        req: RequestId,
    },
    /// Result of a registration attempt. For a secure profile, `cm_cert` is the certificate the
    /// CallManager presented (T-CCM is applied by the phone).
    RegisterResult {
        /// The request answered.
        req: RequestId,
        /// The CallManager accepted the registration.
        ok: bool,
        /// TLS certificate presented by the CallManager (secure profiles).
        cm_cert: Option<Arc<Blob>>,
    },
    /// The phone opens an HTTPS phone service (directory, EM …) whose server presented `cert`
    /// (T-HTTPS, §3.6). `id` is the driver's handle, echoed in the outcome.
    HttpsService {
        /// Driver handle.
        id: u32,
        /// The server certificate (DER).
        cert: Arc<Blob>,
    },
    /// The deadline returned by `poll_timeout` has passed.
    Timer,
    /// The user did something on the phone.
    User(UserAction),
}

/// The role a TVS answer must carry / what the phone asks about, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TvsAsk {
    /// Query (command 3) by signer identity (E18).
    Query,
    /// Verify (command 1) with the full certificate (E18).
    Verify,
}

/// Everything a phone asks its driver to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Fetch `name` from `server` over `transport`. TFTP drivers retransmit `tftp_retx_ms`
    /// doubling, `tftp_retries` times (the phone also enforces the total as a deadline).
    Fetch {
        /// Request id to echo.
        req: RequestId,
        /// The server.
        server: Host,
        /// Transport and port.
        transport: Transport,
        /// Which file.
        file: FileName,
        /// The file name on the wire.
        name: String,
    },
    /// Send a TVS request frame to `member` over TLS (no session resumption, §4.3). The phone
    /// checks the presented certificate itself when the answer arrives (T-TVS).
    QueryTvs {
        /// Request id to echo.
        req: RequestId,
        /// TVS host.
        host: Host,
        /// TVS port (2445).
        port: u16,
        /// Query or Verify.
        kind: TvsAsk,
        /// The request frame (session id = `req`).
        frame: Vec<u8>,
        /// Highest TLS version the phone offers (§4.3).
        tls_max: crate::model::TlsVersion,
    },
    /// Register with the CallManagers (in priority order) of the configuration in effect.
    Register {
        /// Request id to echo.
        req: RequestId,
        /// CallManager hosts in priority order.
        cms: Arc<[Host]>,
        /// TLS registration (device security mode authenticated/encrypted).
        secure: bool,
        /// Which configuration produced the list.
        source: ConfigSource,
    },
    /// The ITL hash alarm sent at registration (§10, S18).
    ReportItlHash {
        /// SHA-256 of the installed ITL, or `None` without one.
        itl_sha256: Option<[u8; 32]>,
    },
    /// The phone shows a status message (§4.6).
    Status(StatusMsg),
    /// A typed outcome for reports.
    Record(Outcome),
}

/// Which configuration a registration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Accepted in this cycle.
    New,
    /// The cached configuration (new one rejected or absent, §4.7).
    Cached,
    /// No configuration: registering with the TFTP server (E6 `tftp_server`).
    TftpServer,
}

/// Which trust list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// The CTL.
    Ctl,
    /// The ITL.
    Itl,
}

/// Typed outcomes with reason codes (§4.6–4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A trust list was installed (first time or replaced).
    TrustListInstalled {
        /// Which list.
        list: ListKind,
        /// What authenticated it.
        via: Anchor,
        /// True when it replaced an older list.
        replaced: bool,
    },
    /// The served trust list equals the installed one (no change).
    TrustListUnchanged {
        /// Which list.
        list: ListKind,
    },
    /// A trust list was rejected; the old one is kept.
    TrustListRejected {
        /// Which list.
        list: ListKind,
        /// Why.
        reason: Reason,
    },
    /// Neither name of the list was found (the phone keeps what it has).
    TrustListNotFound {
        /// Which list.
        list: ListKind,
    },
    /// A configuration was accepted and is now the cached one.
    ConfigAccepted {
        /// The file.
        file: FileName,
        /// What authenticated it.
        via: Anchor,
    },
    /// A configuration was rejected; the cached one stays in force.
    ConfigRejected {
        /// The file.
        file: FileName,
        /// Why.
        reason: Reason,
    },
    /// No configuration file was found.
    ConfigNotFound,
    /// The firmware named by the new configuration differs from the running load (§2.4 step 5).
    FirmwareChange {
        /// The new load id.
        load: Arc<str>,
    },
    /// Registration succeeded.
    Registered {
        /// Which configuration.
        source: ConfigSource,
        /// TLS registration.
        secure: bool,
    },
    /// Registration failed or was not attempted.
    RegistrationFailed {
        /// Why.
        reason: Reason,
    },
    /// The cycle ended with the phone locked (§4.7).
    Locked {
        /// The first rejection of the cycle.
        reason: Reason,
    },
    /// Every TFTP server failed; the cycle is retried after a back-off.
    ProvisioningFailed,
    /// An HTTPS service check finished (T-HTTPS).
    Service {
        /// The driver's handle.
        id: u32,
        /// Whether the server was trusted.
        ok: bool,
        /// What authenticated it, or why not.
        via: Result<Anchor, Reason>,
    },
    /// Trust lists were erased (§9).
    Erased {
        /// CTL erased.
        ctl: bool,
        /// ITL erased.
        itl: bool,
    },
    /// A user action the model cannot do did nothing.
    Ignored {
        /// Why.
        reason: Reason,
    },
}

/// Roles returned by TVS, for reports.
pub type Roles = RoleSet;
