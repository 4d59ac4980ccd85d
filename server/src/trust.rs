//! Trust stores ("-trust" certificate units) and their rules.
//!
//! * Which stores exist: seed 000 "Server Certificate Types" (tomcat-trust, ipsec-trust,
//!   CAPF-trust, Userlicensing-trust, TVS-trust, Phone-SAST-trust, Phone-CTL-trust) plus
//!   CallManager-trust, phone-vpn-trust and phone-trust (seed 002 "Prerequisites").
//! * Replication: "The system automatically replicates tomcat-trust, CallManager-trust and
//!   Phone-SAST-trust certificates to each node in the cluster" (seed 001). "If you import a
//!   certificate into the CAPF-trust, it is enabled only on that particular node and is not
//!   replicated" (seed 000). Deleting from CAPF-trust, tomcat-trust, CallManager-trust or
//!   Phone-SAST-trust deletes "across all servers in the cluster" (seed 000). Other stores are
//!   node-local [I: no source says they replicate].
//! * One certificate per subject per store; a newer upload with the same subject and another
//!   serial replaces the old one only if its validity starts later, otherwise it is not uploaded
//!   (seed 000 "Certificate Overview", the SHA-1/SHA-256 example).

use std::fmt;

use crate::model::NodeId;
use crate::pki::{CertPurpose, Certificate, UnixTime};

/// A trust store ("certificate unit").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrustStoreKind {
    /// CallManager-trust.
    CallManagerTrust,
    /// tomcat-trust.
    TomcatTrust,
    /// CAPF-trust.
    CapfTrust,
    /// ipsec-trust.
    IpsecTrust,
    /// TVS-trust.
    TvsTrust,
    /// Phone-SAST-trust.
    PhoneSastTrust,
    /// Phone-CTL-trust.
    PhoneCtlTrust,
    /// Phone-VPN-trust.
    PhoneVpnTrust,
    /// Phone-trust.
    PhoneTrust,
    /// Userlicensing-trust.
    UserlicensingTrust,
}

impl TrustStoreKind {
    /// All stores in a fixed order.
    pub const ALL: [TrustStoreKind; 10] = [
        TrustStoreKind::CallManagerTrust,
        TrustStoreKind::TomcatTrust,
        TrustStoreKind::CapfTrust,
        TrustStoreKind::IpsecTrust,
        TrustStoreKind::TvsTrust,
        TrustStoreKind::PhoneSastTrust,
        TrustStoreKind::PhoneCtlTrust,
        TrustStoreKind::PhoneVpnTrust,
        TrustStoreKind::PhoneTrust,
        TrustStoreKind::UserlicensingTrust,
    ];

    /// CUCM's name.
    pub fn name(self) -> &'static str {
        match self {
            TrustStoreKind::CallManagerTrust => "CallManager-trust",
            TrustStoreKind::TomcatTrust => "tomcat-trust",
            TrustStoreKind::CapfTrust => "CAPF-trust",
            TrustStoreKind::IpsecTrust => "ipsec-trust",
            TrustStoreKind::TvsTrust => "TVS-trust",
            TrustStoreKind::PhoneSastTrust => "Phone-SAST-trust",
            TrustStoreKind::PhoneCtlTrust => "Phone-CTL-trust",
            TrustStoreKind::PhoneVpnTrust => "Phone-VPN-trust",
            TrustStoreKind::PhoneTrust => "Phone-trust",
            TrustStoreKind::UserlicensingTrust => "Userlicensing-trust",
        }
    }

    /// Parses CUCM's name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }

    /// Uploads replicate to every node (seed 001).
    pub fn upload_replicates(self) -> bool {
        matches!(
            self,
            TrustStoreKind::TomcatTrust
                | TrustStoreKind::CallManagerTrust
                | TrustStoreKind::PhoneSastTrust
        )
    }

    /// Deletions apply to every node (seed 000 "Delete a Trust Certificate").
    pub fn delete_replicates(self) -> bool {
        self.upload_replicates() || self == TrustStoreKind::CapfTrust
    }

    /// The store a regenerated identity certificate copies itself into (seed 002 "Regenerate
    /// Certificates via the CLI"; seed 004: CallManager and CallManager-ECDSA share
    /// CallManager-trust). CAPF also goes to CallManager-trust (seed 002). TVS → TVS-trust and
    /// tomcat-ECDSA → tomcat-trust by analogy [I]. ITLRecovery copies itself nowhere [I: no
    /// source; copying it to CallManager-trust would make TVS vouch for it, against E1.3].
    pub fn own_copy_targets(purpose: CertPurpose) -> &'static [TrustStoreKind] {
        match purpose {
            CertPurpose::CallManager | CertPurpose::CallManagerEcdsa => {
                &[TrustStoreKind::CallManagerTrust]
            }
            CertPurpose::Tomcat | CertPurpose::TomcatEcdsa => &[TrustStoreKind::TomcatTrust],
            CertPurpose::Ipsec => &[TrustStoreKind::IpsecTrust],
            CertPurpose::Tvs => &[TrustStoreKind::TvsTrust],
            CertPurpose::Capf => &[TrustStoreKind::CapfTrust, TrustStoreKind::CallManagerTrust],
            CertPurpose::ItlRecovery => &[],
        }
    }
}

impl fmt::Display for TrustStoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a trust entry came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustOrigin {
    /// Preloaded at install (the manufacturing roots, seed 002).
    Preloaded,
    /// Copy of this cluster's own identity certificate.
    OwnCopy {
        /// Purpose of the identity.
        purpose: CertPurpose,
        /// Node it belongs to (None for cluster-wide certificates).
        node: Option<NodeId>,
    },
    /// Uploaded by the administrator.
    Uploaded,
    /// Bulk certificate import from another cluster.
    BulkImport {
        /// Source cluster name.
        cluster: String,
        /// Purpose of the certificate on its home cluster.
        purpose: CertPurpose,
    },
}

/// One certificate in a trust store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustEntry {
    /// The certificate.
    pub cert: Certificate,
    /// Where it came from.
    pub origin: TrustOrigin,
    /// When it was added (scenario clock).
    pub added_at: UnixTime,
}

/// Result of adding a certificate to a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// New subject: added.
    Added,
    /// Same subject, newer validity start: the old certificate was replaced.
    Replaced(Certificate),
    /// The identical certificate is already there.
    AlreadyPresent,
    /// Same subject, older or equal validity start: not uploaded (seed 000).
    Rejected(Certificate),
}

/// One trust store on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStore {
    entries: Vec<TrustEntry>,
}

impl TrustStore {
    /// Entries in insertion order.
    pub fn entries(&self) -> &[TrustEntry] {
        &self.entries
    }

    /// Whether the store holds exactly this certificate.
    pub fn contains(&self, cert: &Certificate) -> bool {
        self.entries.iter().any(|e| e.cert.der() == cert.der())
    }

    /// The entry with this subject, if any.
    pub fn by_subject(&self, subject: &str) -> Option<&TrustEntry> {
        self.entries.iter().find(|e| e.cert.subject() == subject)
    }

    /// Adds `entry` under the same-subject rule of seed 000.
    pub fn insert(&mut self, entry: TrustEntry) -> InsertOutcome {
        let Some(pos) = self
            .entries
            .iter()
            .position(|e| e.cert.subject() == entry.cert.subject())
        else {
            self.entries.push(entry);
            return InsertOutcome::Added;
        };
        let Some(existing) = self.entries.get_mut(pos) else {
            return InsertOutcome::AlreadyPresent;
        };
        if existing.cert.der() == entry.cert.der() {
            return InsertOutcome::AlreadyPresent;
        }
        if existing.cert.serial() != entry.cert.serial()
            && entry.cert.not_before() > existing.cert.not_before()
        {
            let old = std::mem::replace(existing, entry);
            return InsertOutcome::Replaced(old.cert);
        }
        InsertOutcome::Rejected(existing.cert.clone())
    }

    /// Removes entries whose subject (and serial, when given) match. Returns what was removed.
    pub fn remove(&mut self, subject: &str, serial: Option<&[u8]>) -> Vec<Certificate> {
        let mut removed = Vec::new();
        self.entries.retain(|e| {
            let hit = e.cert.subject() == subject && serial.is_none_or(|s| e.cert.serial() == s);
            if hit {
                removed.push(e.cert.clone());
            }
            !hit
        });
        removed
    }
}

/// All trust stores of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStores {
    stores: std::collections::BTreeMap<TrustStoreKind, TrustStore>,
}

impl TrustStores {
    /// The store of this kind (empty if never used).
    pub fn store(&self, kind: TrustStoreKind) -> &TrustStore {
        static EMPTY: TrustStore = TrustStore {
            entries: Vec::new(),
        };
        self.stores.get(&kind).unwrap_or(&EMPTY)
    }

    /// Mutable store of this kind.
    pub fn store_mut(&mut self, kind: TrustStoreKind) -> &mut TrustStore {
        self.stores.entry(kind).or_default()
    }

    /// Whether `cert` is in the store of this kind.
    pub fn contains(&self, kind: TrustStoreKind, cert: &Certificate) -> bool {
        self.store(kind).contains(cert)
    }

    /// Every (kind, entry) in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (TrustStoreKind, &TrustEntry)> {
        self.stores
            .iter()
            .flat_map(|(k, s)| s.entries.iter().map(move |e| (*k, e)))
    }
}
