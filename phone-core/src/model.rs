//! Phone families and the per-model capability table (spec §8, conflicts K4/K5).
//!
//! Behaviour that differs between models is read from [`Caps`], never from a `match` on the
//! model name elsewhere, so every conflict in §8/§11 stays switchable per scenario.

/// Phone family (spec §8 and the families table at the top of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// CIPC, 7937: no CTL, no ITL.
    None,
    /// 7940/7960: CTL only, no TVS.
    Ctl,
    /// 79x1/79x2/79x5/797x, 69xx, 89xx, 99xx: CTL + ITL, SHA-1 only, RSA ≤ 2048, TLS 1.0 (79xx).
    Leg,
    /// 78xx, 88xx, 7832, 8832: CTL + ITL, SHA-512, ECDSA, HTTP 6970 first, HTTPS 6971.
    Mod,
}

impl Family {
    /// The spec's name (`F-MOD` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::None => "F-NONE",
            Family::Ctl => "F-CTL",
            Family::Leg => "F-LEG",
            Family::Mod => "F-MOD",
        }
    }
}

/// Highest TLS version the phone offers towards TVS/HTTPS (§4.3, §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.0 (79xx) [D S8].
    Tls10,
    /// TLS 1.2 [I].
    Tls12,
}

/// How trust lists are erased from the phone UI (§9, §8 "Per-file erase in the UI").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EraseKind {
    /// No trust lists to erase (F-NONE).
    None,
    /// F-CTL: CTL erase only.
    CtlOnly,
    /// 79xx: Security Configuration → Trust List → CTL/ITL File → Erase, per file [C S26].
    PerFile,
    /// 89xx, 78xx/88xx: reset security settings, which erases both [C S25; D S19].
    SecuritySettings,
}

/// Capability flags of one model (§8, knob `per_model.*` of §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caps {
    /// Family, used only for the status-string table (§4.6) and reports.
    pub family: Family,
    /// Loads a CTL (§8 row "CTL").
    pub has_ctl: bool,
    /// Loads an ITL (§8 row "ITL + TVS").
    pub has_itl: bool,
    /// Can query TVS (§8 row "ITL + TVS"; F-CTL has no TVS, §3.2).
    pub has_tvs: bool,
    /// Requests a signed configuration once a TFTP-role record is held (§8 row 3). F-NONE: no.
    pub signed_config: bool,
    /// Verifies SHA-512 file signatures (§8; K5: 99xx default SHA-1 only).
    pub sha512: bool,
    /// Largest RSA signer key (§8, §3.4, R15).
    pub max_rsa_bits: u16,
    /// Supports ECDSA certificates (CallManager-ECDSA, EC 6971 server) (§8).
    pub ecdsa: bool,
    /// TLS version towards TVS/HTTPS (§4.3).
    pub tls_max: TlsVersion,
    /// Tries HTTP 6970 before TFTP 69 (§2.3).
    pub http6970: bool,
    /// Uses HTTPS 6971 for the configuration when the ITL signer version is ≥ 1.1 (§2.3).
    pub https6971: bool,
    /// Requests `CTLFile.tlv` when `CTLSEP<MAC>.tlv` is missing (§2.4 step 1b, per-family flag).
    pub ctlfile_fallback: bool,
    /// How the UI erases trust lists (§9).
    pub erase: EraseKind,
}

impl Caps {
    /// Default flags of a family (§8 table).
    pub const fn family_default(family: Family) -> Caps {
        match family {
            Family::None => Caps {
                family,
                has_ctl: false,
                has_itl: false,
                has_tvs: false,
                signed_config: false,
                sha512: false,
                max_rsa_bits: 2048,
                ecdsa: false,
                tls_max: TlsVersion::Tls12,
                http6970: false,
                https6971: false,
                ctlfile_fallback: false,
                erase: EraseKind::None,
            },
            Family::Ctl => Caps {
                family,
                has_ctl: true,
                has_itl: false,
                has_tvs: false,
                signed_config: true,
                sha512: false,
                max_rsa_bits: 2048,
                ecdsa: false,
                tls_max: TlsVersion::Tls10,
                http6970: false,
                https6971: false,
                // §2.4 1b: "F-CTL legacy phones ... when CTLSEP is missing".
                ctlfile_fallback: true,
                erase: EraseKind::CtlOnly,
            },
            Family::Leg => Caps {
                family,
                has_ctl: true,
                has_itl: true,
                has_tvs: true,
                signed_config: true,
                sha512: false,
                max_rsa_bits: 2048,
                ecdsa: false,
                tls_max: TlsVersion::Tls10,
                // §2.3: TFTP only on older firmware; HTTP 6970 on recent SIP loads is [I] → off.
                http6970: false,
                https6971: false,
                // §2.4 1b: a 7942 log shows no CTLFile.tlv request [D S29].
                ctlfile_fallback: false,
                erase: EraseKind::PerFile,
            },
            Family::Mod => Caps {
                family,
                has_ctl: true,
                has_itl: true,
                has_tvs: true,
                signed_config: true,
                sha512: true,
                max_rsa_bits: 2048,
                ecdsa: true,
                tls_max: TlsVersion::Tls12,
                http6970: true,
                https6971: true,
                ctlfile_fallback: false,
                erase: EraseKind::SecuritySettings,
            },
        }
    }
}

/// Models the simulator knows, with their family (§8; K4: 7931 = F-LEG, 7937/CIPC = F-NONE).
const MODELS: &[(&str, Family)] = &[
    ("CIPC", Family::None),
    ("7937", Family::None),
    ("7940", Family::Ctl),
    ("7960", Family::Ctl),
    ("7906", Family::Leg),
    ("7911", Family::Leg),
    ("7931", Family::Leg),
    ("7941", Family::Leg),
    ("7942", Family::Leg),
    ("7945", Family::Leg),
    ("7961", Family::Leg),
    ("7962", Family::Leg),
    ("7965", Family::Leg),
    ("7970", Family::Leg),
    ("7971", Family::Leg),
    ("7975", Family::Leg),
    ("6901", Family::Leg),
    ("6911", Family::Leg),
    ("6921", Family::Leg),
    ("6941", Family::Leg),
    ("6945", Family::Leg),
    ("6961", Family::Leg),
    ("8941", Family::Leg),
    ("8945", Family::Leg),
    ("8961", Family::Leg),
    ("9951", Family::Leg),
    ("9971", Family::Leg),
    ("7811", Family::Mod),
    ("7821", Family::Mod),
    ("7841", Family::Mod),
    ("7861", Family::Mod),
    ("7832", Family::Mod),
    ("8811", Family::Mod),
    ("8832", Family::Mod),
    ("8841", Family::Mod),
    ("8845", Family::Mod),
    ("8851", Family::Mod),
    ("8861", Family::Mod),
    ("8865", Family::Mod),
];

/// A phone model: its name and capability flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Model {
    /// Model name as in the device name (`8845`, `7942`, `CIPC`).
    pub name: &'static str,
    /// Capability flags (start from the table; scenarios may override any flag).
    pub caps: Caps,
}

impl Model {
    /// Looks a model up by name (`8845`, `CP-8845`, `7942G` are accepted). Unknown → `None`.
    pub fn lookup(name: &str) -> Option<Model> {
        let n = name.trim();
        let n = n.strip_prefix("CP-").unwrap_or(n);
        let n = n.trim_end_matches(['G', 'g']);
        let n = n.split('-').next().unwrap_or(n);
        MODELS
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(n))
            .map(|(m, f)| Model {
                name: m,
                caps: Caps::family_default(*f),
            })
    }

    /// Every model in the table.
    pub fn all() -> impl Iterator<Item = Model> {
        MODELS.iter().map(|(m, f)| Model {
            name: m,
            caps: Caps::family_default(*f),
        })
    }

    /// The name sent to TVS: `CP-<model>-SEP<MAC>` (§10 "Device name sent to TVS").
    pub fn device_name(&self, mac: &crate::Mac) -> String {
        format!("CP-{}-SEP{mac}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_match_section_8() {
        let fam = |m: &str| Model::lookup(m).map(|m| m.caps.family);
        assert_eq!(fam("8845"), Some(Family::Mod));
        assert_eq!(fam("CP-7942G"), Some(Family::Leg));
        assert_eq!(fam("7931"), Some(Family::Leg)); // K4
        assert_eq!(fam("7937"), Some(Family::None)); // K4
        assert_eq!(fam("7960"), Some(Family::Ctl));
        assert_eq!(fam("nonsense"), None);
        let leg = Caps::family_default(Family::Leg);
        assert!(!leg.sha512 && leg.has_tvs && leg.tls_max == TlsVersion::Tls10);
        let ctl = Caps::family_default(Family::Ctl);
        assert!(!ctl.has_tvs && !ctl.has_itl && ctl.has_ctl);
        assert!(Model::lookup("9971").is_some_and(|m| !m.caps.sha512)); // K5
    }
}
