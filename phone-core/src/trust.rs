//! Trust rules of spec §3 (T-CTL, T-ITL, T-CFG, T-TVS, T-HTTPS, T-CCM, TOFU) with the binding
//! decisions E2, E3, E5, E10, E14, as pure functions over the phone's trust store. They say
//! *which key* may authenticate a file (or that TVS must be asked); the signature check itself
//! and the construction of verified types live in [`crate::files`].

use std::fmt;

use itlsim_wire::tags::{Digest, Role};

use crate::files::{Cert, DecodedList, Identity, Rec, VerifiedList};
use crate::knobs::Knobs;
use crate::model::Caps;

/// A set of role codes (bit n = role code n; codes ≥ 32 are not representable and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(pub u32);

impl RoleSet {
    /// The empty set.
    pub const EMPTY: RoleSet = RoleSet(0);
    /// SAST: what must sign a `.tlv` (§3.2, §3.3).
    pub const SAST: RoleSet = RoleSet::of(Role::SAST);
    /// TFTP or CCM+TFTP: what must sign a `.sgn` (§3.4).
    pub const CONFIG_SIGNERS: RoleSet =
        RoleSet(RoleSet::of(Role::TFTP).0 | RoleSet::of(Role::CCM_TFTP).0);
    /// SAST or CCM+TFTP: CTL records that authenticate an ITL (§3.3 step 1, §3.10).
    pub const CTL_ITL_SIGNERS: RoleSet =
        RoleSet(RoleSet::of(Role::SAST).0 | RoleSet::of(Role::CCM_TFTP).0);
    /// SAST, CCM, CCM+TFTP or TFTP: a "real anchor" of a CTL (E3).
    pub const REAL_ANCHOR: RoleSet =
        RoleSet(RoleSet::SAST.0 | RoleSet::of(Role::CCM).0 | RoleSet::CONFIG_SIGNERS.0);
    /// CCM or CCM+TFTP: T-CCM (§3.8).
    pub const CCM: RoleSet = RoleSet(RoleSet::of(Role::CCM).0 | RoleSet::of(Role::CCM_TFTP).0);
    /// APP-SERVER: T-HTTPS for phone services (§3.6).
    pub const APP_SERVER: RoleSet = RoleSet::of(Role::APP_SERVER);
    /// TVS (§3.5).
    pub const TVS: RoleSet = RoleSet::of(Role::TVS);

    /// The set holding one role.
    pub const fn of(role: Role) -> RoleSet {
        if role.0 < 32 {
            RoleSet(1u32 << role.0)
        } else {
            RoleSet(0)
        }
    }

    /// Adds a role code.
    pub fn insert(&mut self, code: u16) {
        if code < 32 {
            self.0 |= 1u32 << code;
        }
    }

    /// Any role in common.
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }

    /// No roles.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for code in 0..32u16 {
            if self.0 & (1u32 << code) != 0 {
                if !first {
                    f.write_str("+")?;
                }
                first = false;
                write!(f, "{}", Role(code))?;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// Why something was rejected or did not happen; `code()` is stable for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The file could not be decoded.
    Malformed,
    /// The signer is in no role of the trust store that may sign this file, and TVS was not used.
    SignerUnknown,
    /// The signature does not verify with the anchoring key.
    BadSignature,
    /// The anchoring key cannot verify (not RSA, unusable size, unreadable).
    SignerKeyUnusable,
    /// SHA-512 on a model that verifies SHA-1 only (§3.4, §8, R16).
    DigestUnsupported,
    /// Signer RSA key larger than the model supports (§3.4, §8, R15).
    KeyTooLarge,
    /// ITL above the phone's size limit (§1.3, E10).
    ItlTooLarge,
    /// A trust list was rejected earlier in this cycle (E4).
    CycleFrozen,
    /// TVS cannot be used: no TVS support, no TVS record in the ITL, or no TVS list (§4.1).
    NoTvs,
    /// TVS answered invalid (§4.5).
    TvsInvalid,
    /// TVS answered valid without the needed role (strict, §4.5).
    TvsRoleMissing,
    /// Every TVS member failed (§4.5).
    TvsUnreachable,
    /// A TVS member presented a certificate that is not a TVS record of the ITL (T-TVS).
    TvsPinMismatch,
    /// A TVS member's answer could not be used (bad frame, session id, missing certificate).
    TvsBadAnswer,
    /// A TVS member did not answer in time (§10: 10 s).
    TvsTimeout,
    /// TLS to a TVS member failed (e.g. TLS version, §4.3).
    TvsTlsFailed,
    /// The anchoring certificate is outside its validity (knob `check_expiry`).
    CertExpired,
    /// The file is not on the server.
    NotFound,
    /// The server did not answer in time.
    Timeout,
    /// HTTP error or refused connection: fall back to the next transport.
    HttpFailed,
    /// The HTTPS server certificate is not trusted (T-HTTPS, E13).
    ServerCertUntrusted,
    /// The 6971 server certificate is not EC (§1.4, S8).
    ServerCertNotEc,
    /// The CallManager certificate is not in the CTL (T-CCM, R1-SEC).
    CmCertUntrusted,
    /// No cached configuration to register with (§4.7).
    NoCachedConfig,
    /// E6 = none: a locked phone does not register.
    LockedNoRegistration,
    /// Secure profile without a CTL after the attempts of §2.4.
    SecureNoCtl,
    /// The CallManager refused or did not answer.
    CmRefused,
    /// `.enc.sgn` could not be decrypted (no device key, wrong key).
    DecryptFailed,
    /// Another TVS check is in progress (one at a time) [I].
    Busy,
    /// The model cannot do this (e.g. erase on F-NONE).
    Unsupported,
    /// The served file equals the installed one.
    Unchanged,
    /// A file was requested.
    Requested,
    /// Falling back to the next name/transport/server.
    Fallback,
    /// The server counts as down; next server.
    ServerDown,
    /// No server left.
    NoServerLeft,
    /// The configuration file was not found (autoregistration fallback failed too).
    NoConfig,
    /// Informational: the decision was taken by a knob.
    ByKnob,
}

impl Reason {
    /// Every reason (for validation of scenario files and reports).
    pub const ALL: [Reason; 37] = [
        Reason::Malformed,
        Reason::SignerUnknown,
        Reason::BadSignature,
        Reason::SignerKeyUnusable,
        Reason::DigestUnsupported,
        Reason::KeyTooLarge,
        Reason::ItlTooLarge,
        Reason::CycleFrozen,
        Reason::NoTvs,
        Reason::TvsInvalid,
        Reason::TvsRoleMissing,
        Reason::TvsUnreachable,
        Reason::TvsPinMismatch,
        Reason::TvsBadAnswer,
        Reason::TvsTimeout,
        Reason::TvsTlsFailed,
        Reason::CertExpired,
        Reason::NotFound,
        Reason::Timeout,
        Reason::HttpFailed,
        Reason::ServerCertUntrusted,
        Reason::ServerCertNotEc,
        Reason::CmCertUntrusted,
        Reason::NoCachedConfig,
        Reason::LockedNoRegistration,
        Reason::SecureNoCtl,
        Reason::CmRefused,
        Reason::DecryptFailed,
        Reason::Busy,
        Reason::Unsupported,
        Reason::Unchanged,
        Reason::Requested,
        Reason::Fallback,
        Reason::ServerDown,
        Reason::NoServerLeft,
        Reason::NoConfig,
        Reason::ByKnob,
    ];

    /// Stable short code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::SignerUnknown => "signer-unknown",
            Reason::BadSignature => "bad-signature",
            Reason::SignerKeyUnusable => "signer-key-unusable",
            Reason::DigestUnsupported => "digest-unsupported",
            Reason::KeyTooLarge => "key-too-large",
            Reason::ItlTooLarge => "itl-too-large",
            Reason::CycleFrozen => "cycle-frozen",
            Reason::NoTvs => "no-tvs",
            Reason::TvsInvalid => "tvs-invalid",
            Reason::TvsRoleMissing => "tvs-role-missing",
            Reason::TvsUnreachable => "tvs-unreachable",
            Reason::TvsPinMismatch => "tvs-pin-mismatch",
            Reason::TvsBadAnswer => "tvs-bad-answer",
            Reason::TvsTimeout => "tvs-timeout",
            Reason::TvsTlsFailed => "tvs-tls-failed",
            Reason::CertExpired => "cert-expired",
            Reason::NotFound => "not-found",
            Reason::Timeout => "timeout",
            Reason::HttpFailed => "http-failed",
            Reason::ServerCertUntrusted => "server-cert-untrusted",
            Reason::ServerCertNotEc => "server-cert-not-ec",
            Reason::CmCertUntrusted => "cm-cert-untrusted",
            Reason::NoCachedConfig => "no-cached-config",
            Reason::LockedNoRegistration => "locked-no-registration",
            Reason::SecureNoCtl => "secure-no-ctl",
            Reason::CmRefused => "cm-refused",
            Reason::DecryptFailed => "decrypt-failed",
            Reason::Busy => "busy",
            Reason::Unsupported => "unsupported",
            Reason::Unchanged => "unchanged",
            Reason::Requested => "requested",
            Reason::Fallback => "fallback",
            Reason::ServerDown => "server-down",
            Reason::NoServerLeft => "no-server-left",
            Reason::NoConfig => "no-config",
            Reason::ByKnob => "by-knob",
        }
    }

    /// One line for humans.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Malformed => "file does not decode",
            Reason::SignerUnknown => {
                "signer holds no accepted role in the phone's CTL/ITL and TVS was not asked"
            }
            Reason::BadSignature => "signature does not verify with the anchoring key",
            Reason::SignerKeyUnusable => "anchoring key cannot verify an RSA PKCS#1 signature",
            Reason::DigestUnsupported => "SHA-512 signature on a SHA-1-only model",
            Reason::KeyTooLarge => "signer RSA key larger than the model supports",
            Reason::ItlTooLarge => "ITL larger than the phone limit; registration fails",
            Reason::CycleFrozen => "a trust list was rejected in this cycle",
            Reason::NoTvs => {
                "TVS not usable (model, ITL without TVS record, or config without TVS list)"
            }
            Reason::TvsInvalid => "TVS answered invalid",
            Reason::TvsRoleMissing => "TVS vouched without the needed role",
            Reason::TvsUnreachable => "no TVS member could be used",
            Reason::TvsPinMismatch => {
                "TVS presented a certificate that is not a TVS record of the ITL"
            }
            Reason::TvsBadAnswer => "TVS answer unusable",
            Reason::TvsTimeout => "TVS member timed out",
            Reason::TvsTlsFailed => "TLS to TVS failed",
            Reason::CertExpired => "certificate outside its validity period",
            Reason::NotFound => "file not found",
            Reason::Timeout => "server timed out",
            Reason::HttpFailed => "HTTP error or connection refused",
            Reason::ServerCertUntrusted => "HTTPS server certificate not trusted",
            Reason::ServerCertNotEc => "6971 server certificate is not EC",
            Reason::CmCertUntrusted => "CallManager certificate not in the CTL",
            Reason::NoCachedConfig => "no cached configuration",
            Reason::LockedNoRegistration => "locked phone does not register (E6 = none)",
            Reason::SecureNoCtl => "secure profile but no CTL",
            Reason::CmRefused => "CallManager refused the registration",
            Reason::DecryptFailed => "encrypted configuration could not be decrypted",
            Reason::Busy => "another TVS check is in progress",
            Reason::Unsupported => "not supported by this model",
            Reason::Unchanged => "same bytes as the installed file",
            Reason::Requested => "requested",
            Reason::Fallback => "falling back",
            Reason::ServerDown => "server counts as down",
            Reason::NoServerLeft => "no TFTP server left",
            Reason::NoConfig => "no configuration file",
            Reason::ByKnob => "decided by a knob",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What authenticated something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// Trust on first use (no CTL, no ITL; §3.1, E20). The file verified against its own signer.
    Tofu,
    /// First use after an empty/rollback ITL (§3.1, E3, E5).
    TofuAfterRollback,
    /// A CTL record with this role code.
    Ctl(u16),
    /// An ITL record with this role code.
    Itl(u16),
    /// A cached TVS answer (§4.5).
    TvsCache,
    /// A TVS answer from member #n of the sorted list.
    Tvs(u8),
    /// An authenticated HTTPS 6971 channel (§1.4: unsigned body accepted).
    HttpsChannel,
    /// No verification needed: unsigned config requested because no TFTP role is held (§2.4 3').
    Unsigned,
    /// A knob decided (E2 `ctl_tofu_if_itl_present`).
    Knob,
}

impl Anchor {
    /// For reports.
    pub fn describe(self) -> String {
        match self {
            Anchor::Tofu => "trust on first use".into(),
            Anchor::TofuAfterRollback => "first use after empty ITL".into(),
            Anchor::Ctl(r) => format!("CTL {} record", Role(r)),
            Anchor::Itl(r) => format!("ITL {} record", Role(r)),
            Anchor::TvsCache => "cached TVS answer".into(),
            Anchor::Tvs(m) => format!("TVS member #{m}"),
            Anchor::HttpsChannel => "authenticated HTTPS 6971 channel".into(),
            Anchor::Unsigned => "unsigned (no TFTP role held)".into(),
            Anchor::Knob => "knob".into(),
        }
    }
}

/// The phone's trust store TS = CTL ∪ ITL (§3 notation).
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    /// Installed CTL.
    pub ctl: Option<&'a VerifiedList>,
    /// Installed ITL.
    pub itl: Option<&'a VerifiedList>,
}

/// Which file a rule evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// T-CTL.
    Ctl,
    /// T-ITL.
    Itl,
    /// T-CFG.
    Cfg,
}

/// Where a key to check the file comes from.
#[derive(Debug, Clone)]
pub enum Lookup<'a> {
    /// A record of the store: verify with its key.
    Record {
        /// The record.
        rec: &'a Rec,
        /// For the trace.
        anchor: Anchor,
    },
    /// No anchor needed beyond the file's own signer (TOFU, E20; after rollback, E3/E5; E2 knob).
    SelfSigned(Anchor),
    /// Ask the TVS cache, then TVS (§3.10).
    Tvs,
    /// Reject now.
    Reject(Reason),
}

/// The roles a file's signer needs (§3.10 `need`).
pub fn need(kind: FileKind) -> RoleSet {
    match kind {
        FileKind::Ctl | FileKind::Itl => RoleSet::SAST,
        FileKind::Cfg => RoleSet::CONFIG_SIGNERS,
    }
}

/// §3.4 / §8: digest and key size the model can verify (checked before anything else, §3.10).
pub fn crypto_ok(caps: &Caps, digest: Digest, sig_bits: usize) -> Result<(), Reason> {
    if digest == Digest::Sha512 && !caps.sha512 {
        return Err(Reason::DigestUnsupported);
    }
    if sig_bits > usize::from(caps.max_rsa_bits) {
        return Err(Reason::KeyTooLarge);
    }
    Ok(())
}

/// Finds the record among `list` that names `signer` with one of `roles` (serial match, narrowed
/// by issuer when several distinct keys match — the wire crate's signer rule, §3.5 of wire-formats).
pub fn find_signer<'a>(
    list: &'a DecodedList,
    signer: &Identity,
    roles: RoleSet,
) -> Option<&'a Rec> {
    let mut found: Option<&Rec> = None;
    let mut ambiguous = false;
    for rec in list
        .records()
        .iter()
        .filter(|r| roles.intersects(RoleSet::of(r.role)) && r.id.serial == signer.serial)
    {
        match found {
            None => found = Some(rec),
            Some(f) if f.key_id() == rec.key_id() => {}
            Some(_) => ambiguous = true,
        }
    }
    if ambiguous {
        return list.records().iter().find(|r| {
            roles.intersects(RoleSet::of(r.role))
                && r.id.serial == signer.serial
                && r.id.issuer == signer.issuer
        });
    }
    found
}

fn find_in<'a>(
    list: Option<&'a VerifiedList>,
    signer: &Identity,
    roles: RoleSet,
) -> Option<&'a Rec> {
    list.and_then(|l| find_signer(l.list(), signer, roles))
}

/// Rules T-CTL (§3.2 + E2) and T-ITL (§3.3 + E3, E5, E20) up to the TVS step (§3.10).
pub fn evaluate_trust_list<'a>(
    kind: FileKind,
    file: &DecodedList,
    store: Store<'a>,
    caps: &Caps,
    knobs: &Knobs,
) -> (crate::trace::Rule, Lookup<'a>) {
    use crate::trace::Rule;
    let rule = if kind == FileKind::Ctl {
        Rule::TCtl
    } else {
        Rule::TItl
    };
    // E10 / §1.3: the phone cannot load an ITL over the limit.
    if kind == FileKind::Itl && file.size() > knobs.itl_max_bytes as usize {
        return (Rule::E10, Lookup::Reject(Reason::ItlTooLarge));
    }
    if let Err(r) = crypto_ok(caps, file.digest(), file.sig_bits()) {
        return (Rule::Crypto, Lookup::Reject(r));
    }
    // §3.1 / E20: neither list → trust on first use.
    if store.ctl.is_none() && store.itl.is_none() {
        return (Rule::Tofu, Lookup::SelfSigned(Anchor::Tofu));
    }
    let signer = file.signer();
    match kind {
        FileKind::Ctl => {
            // E2: an ITL but no CTL → verify against SAST(ITL), then TVS; TOFU only by knob.
            if store.ctl.is_none() && knobs.ctl_tofu_if_itl_present {
                return (Rule::E2, Lookup::SelfSigned(Anchor::Knob));
            }
            // §3.10: store = ctl ∪ SAST-records(itl).
            if let Some(rec) = find_in(store.ctl, signer, RoleSet::SAST) {
                return (
                    rule,
                    Lookup::Record {
                        rec,
                        anchor: Anchor::Ctl(rec.role.0),
                    },
                );
            }
            if let Some(rec) = find_in(store.itl, signer, RoleSet::SAST) {
                return (
                    Rule::E2,
                    Lookup::Record {
                        rec,
                        anchor: Anchor::Itl(rec.role.0),
                    },
                );
            }
            (rule, Lookup::Tvs)
        }
        FileKind::Itl => {
            let ctl_real = store
                .ctl
                .is_some_and(|c| c.list().has_any_role(RoleSet::REAL_ANCHOR));
            if ctl_real {
                // E3 / §3.3 step 1: the CTL authenticates the ITL first.
                if let Some(rec) = find_in(store.ctl, signer, RoleSet::CTL_ITL_SIGNERS) {
                    return (
                        Rule::E3,
                        Lookup::Record {
                            rec,
                            anchor: Anchor::Ctl(rec.role.0),
                        },
                    );
                }
            } else if store.itl.is_some_and(|i| i.list().is_empty_itl()) {
                // E3 + E5: empty (rollback) ITL and no CTL with a real anchor → like TOFU.
                return (Rule::E5, Lookup::SelfSigned(Anchor::TofuAfterRollback));
            }
            // §3.3 step 2: SAST of the trust store.
            if let Some(rec) = find_in(store.ctl, signer, RoleSet::SAST) {
                return (
                    rule,
                    Lookup::Record {
                        rec,
                        anchor: Anchor::Ctl(rec.role.0),
                    },
                );
            }
            if let Some(rec) = find_in(store.itl, signer, RoleSet::SAST) {
                return (
                    rule,
                    Lookup::Record {
                        rec,
                        anchor: Anchor::Itl(rec.role.0),
                    },
                );
            }
            (rule, Lookup::Tvs)
        }
        // Configurations go through `evaluate_config`.
        FileKind::Cfg => (rule, Lookup::Reject(Reason::SignerUnknown)),
    }
}

/// Rule T-CFG (§3.4) up to the TVS step: signer ∈ TFTP(TS) ∪ CCM+TFTP(TS), TS just updated.
pub fn evaluate_config<'a>(
    signer: &Identity,
    digest: Digest,
    sig_bits: usize,
    store: Store<'a>,
    caps: &Caps,
) -> (crate::trace::Rule, Lookup<'a>) {
    use crate::trace::Rule;
    if let Err(r) = crypto_ok(caps, digest, sig_bits) {
        return (Rule::Crypto, Lookup::Reject(r));
    }
    if let Some(rec) = find_in(store.ctl, signer, RoleSet::CONFIG_SIGNERS) {
        return (
            Rule::TCfg,
            Lookup::Record {
                rec,
                anchor: Anchor::Ctl(rec.role.0),
            },
        );
    }
    if let Some(rec) = find_in(store.itl, signer, RoleSet::CONFIG_SIGNERS) {
        return (
            Rule::TCfg,
            Lookup::Record {
                rec,
                anchor: Anchor::Itl(rec.role.0),
            },
        );
    }
    (Rule::TCfg, Lookup::Tvs)
}

/// §2.4 step 3/3': the phone asks for a signed config when it holds any TFTP or CCM+TFTP record
/// in CTL ∪ ITL (and the model requests signed configs at all, §8).
pub fn wants_signed_config(store: Store<'_>, caps: &Caps) -> bool {
    caps.signed_config
        && [store.ctl, store.itl]
            .iter()
            .flatten()
            .any(|l| l.list().has_any_role(RoleSet::CONFIG_SIGNERS))
}

/// §4.1: TVS is usable only with TVS support, a TVS record in the ITL and a TVS list.
pub fn tvs_usable(caps: &Caps, store: Store<'_>, members: usize) -> bool {
    caps.has_tvs
        && store
            .itl
            .is_some_and(|i| i.list().has_any_role(RoleSet::TVS))
        && members > 0
}

/// T-TVS (§3.5): the presented certificate must be a TVS-role record of the current ITL (exact).
pub fn tvs_pinned(store: Store<'_>, presented: &[u8; 32]) -> bool {
    store.itl.is_some_and(|i| {
        i.list()
            .records()
            .iter()
            .any(|r| r.role == Role::TVS && r.cert_sha256() == Some(presented))
    })
}

/// T-HTTPS (§3.6 step 1) / §1.4: a record of `roles` in TS holding exactly this certificate.
pub fn https_local(store: Store<'_>, cert: &Cert, roles: RoleSet) -> Option<Anchor> {
    if let Some(r) = store
        .ctl
        .and_then(|c| c.list().find_cert(cert.sha256(), roles))
    {
        return Some(Anchor::Ctl(r.role.0));
    }
    store
        .itl
        .and_then(|i| i.list().find_cert(cert.sha256(), roles))
        .map(|r| Anchor::Itl(r.role.0))
}

/// T-CCM (§3.8, E14): an RSA CallManager certificate must be a CCM/CCM+TFTP record of the CTL;
/// an EC (CallManager-ECDSA) certificate is checked against the ITL.
pub fn ccm_trusted(store: Store<'_>, cert: &Cert) -> Option<Anchor> {
    if cert.is_ec() {
        let roles = RoleSet(RoleSet::CCM.0 | RoleSet::CONFIG_SIGNERS.0);
        return store
            .itl
            .and_then(|i| i.list().find_cert(cert.sha256(), roles))
            .map(|r| Anchor::Itl(r.role.0));
    }
    store
        .ctl
        .and_then(|c| c.list().find_cert(cert.sha256(), RoleSet::CCM))
        .map(|r| Anchor::Ctl(r.role.0))
}
