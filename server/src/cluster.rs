//! The cluster: nodes, identities, trust stores, phones, and the plans of the files TFTP serves.

use std::collections::BTreeMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::artefacts::ArtefactCache;
use crate::error::ModelError;
use crate::keys::{KeySource, KeySpec, PrivateKey};
use crate::model::{
    ClusterSpec, CmGroup, CmGroupId, EnterpriseParams, FileDigest, Mac, NodeId, PhoneRecord,
    SecurityMode, ServerKnobs, Service, ServiceState, Version, VersionClass,
};
use crate::pki::{
    self, CertAuthority, CertPurpose, CertRequest, Certificate, Identity, OrgInfo, SigHash,
    UnixTime,
};
use crate::trust::{TrustEntry, TrustOrigin, TrustStoreKind, TrustStores};

/// Role of a record in a trust list (wire-formats §3.4). Kept here so the model does not depend on
/// the codec's types; converted when building bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordRole {
    /// 0.
    Sast,
    /// 1.
    Ccm,
    /// 2.
    CcmTftp,
    /// 3.
    Tftp,
    /// 4.
    Capf,
    /// 7.
    AppServer,
    /// 21.
    Tvs,
}

impl RecordRole {
    /// Wire code.
    pub fn code(self) -> u16 {
        match self {
            RecordRole::Sast => 0,
            RecordRole::Ccm => 1,
            RecordRole::CcmTftp => 2,
            RecordRole::Tftp => 3,
            RecordRole::Capf => 4,
            RecordRole::AppServer => 7,
            RecordRole::Tvs => 21,
        }
    }

    /// The codec's role.
    pub fn wire(self) -> itlsim_wire::tags::Role {
        itlsim_wire::tags::Role(self.code())
    }
}

/// One record of a planned trust list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRecord {
    /// Role.
    pub role: RecordRole,
    /// Certificate.
    pub cert: Certificate,
    /// DNS name field (CUCM layout).
    pub dns: String,
    /// IP field (CUCM layout).
    pub ip: Option<[u8; 4]>,
}

/// Which kind of trust list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// ITL.
    Itl,
    /// CTL.
    Ctl,
}

/// What a trust list will contain and who signs it. Hashable, cheap; bytes are made lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustListPlan {
    /// ITL or CTL.
    pub kind: ListKind,
    /// Records in file order.
    pub records: Vec<PlannedRecord>,
    /// Signer certificate.
    pub signer: Certificate,
    /// Signer key.
    pub signer_key: PrivateKey,
    /// Why this signer (for reports): e.g. "ITLRecovery (V12, §6.1)".
    pub signer_reason: String,
    /// Digest.
    pub digest: FileDigest,
    /// SIGNER_VERSION (tag 28), `None` = absent.
    pub signer_version: Option<(u8, u8)>,
    /// Empty (rollback) ITL (E5) or CAPF-only non-secure CTL (S23).
    pub empty: bool,
}

impl TrustListPlan {
    /// Content hash: equal plans give equal files (seed 004: the ITL checksum changes only when
    /// its content changes).
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([self.kind as u8, self.digest as u8, u8::from(self.empty)]);
        if let Some((a, b)) = self.signer_version {
            h.update([1, a, b]);
        }
        h.update(self.signer.fingerprint());
        for r in &self.records {
            h.update(r.role.code().to_be_bytes());
            h.update(r.cert.fingerprint());
            h.update(r.dns.as_bytes());
            h.update([0]);
            h.update(r.ip.unwrap_or_default());
        }
        h.finalize().into()
    }

    /// Certificates by role (for the TVS decision, E1.1).
    pub fn roles_of(&self, cert: &Certificate) -> Vec<RecordRole> {
        let mut out: Vec<RecordRole> = self
            .records
            .iter()
            .filter(|r| r.cert.der() == cert.der())
            .map(|r| r.role)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Temporary ITL signer set by `utils itl reset` until the TFTP service restarts (seed 004
/// "Perform Bulk Reset of ITL File", step 5 note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItlOverride {
    /// `utils itl reset localkey`.
    Localkey,
    /// `utils itl reset remotekey` with this exported ITLRecovery identity.
    Remotekey(Identity),
}

/// The stored CTL (not rebuilt automatically, §6.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtlState {
    /// What it contains.
    pub plan: TrustListPlan,
    /// When it was made (its TIMESTAMP).
    pub built_at: UnixTime,
}

/// Runtime state of the TFTP service on a node, fixed when it (re)starts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TftpRuntime {
    /// Rollback parameter as seen at the last TFTP start (before 10.5 the empty ITL is served
    /// only after a TFTP restart, E9).
    pub rollback_at_start: bool,
    /// Certificate presented on HTTPS 6971 (CallManager; E13).
    pub https_6971: Option<Certificate>,
    /// Certificate presented on HTTPS 6972 (tomcat; seed 000/001 TFTP note).
    pub https_6972: Option<Certificate>,
}

/// One CUCM server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Index (publisher = 0).
    pub id: NodeId,
    /// Host name.
    pub hostname: String,
    /// IPv4.
    pub ip: [u8; 4],
    /// Services.
    pub services: BTreeMap<Service, ServiceState>,
    /// Node-scoped identity certificates.
    pub identities: BTreeMap<CertPurpose, Identity>,
    /// Trust stores.
    pub trust: TrustStores,
    /// TFTP runtime snapshot.
    pub tftp: TftpRuntime,
    /// Trust stores as TVS loaded them at its last start (E16 `on_restart`).
    pub tvs_loaded: TrustStores,
}

impl Node {
    /// Publisher?
    pub fn is_publisher(&self) -> bool {
        self.id.0 == 0
    }

    /// Service activated and running.
    pub fn runs(&self, s: Service) -> bool {
        self.services
            .get(&s)
            .is_some_and(|st| st.activated && st.running)
    }

    /// Service activated (running or not).
    pub fn has(&self, s: Service) -> bool {
        self.services.get(&s).is_some_and(|st| st.activated)
    }
}

/// What the inactive partition holds after an upgrade (switch-back target).
#[derive(Clone, Debug)]
pub(crate) struct Partition {
    pub version: Version,
    pub nodes: Vec<Node>,
    pub cluster_ids: BTreeMap<CertPurpose, Identity>,
    pub params: EnterpriseParams,
    pub security: SecurityMode,
    pub ctl: Option<CtlState>,
}

/// A CUCM cluster. All changes go through [`Cluster::apply`](crate::actions); reads are plain
/// methods. Serving files (`tftp_get`) only fills a cache (interior mutability), so a shared
/// `&Cluster` can answer TFTP and TVS.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) name: String,
    pub(crate) domain: String,
    pub(crate) org: OrgInfo,
    pub(crate) version: Version,
    pub(crate) security: SecurityMode,
    pub(crate) params: EnterpriseParams,
    pub(crate) knobs: ServerKnobs,
    pub(crate) nodes: Vec<Node>,
    pub(crate) cluster_ids: BTreeMap<CertPurpose, Identity>,
    pub(crate) groups: Vec<CmGroup>,
    pub(crate) phones: BTreeMap<Mac, PhoneRecord>,
    pub(crate) ctl: Option<CtlState>,
    pub(crate) etokens: Vec<Identity>,
    pub(crate) itl_override: BTreeMap<NodeId, ItlOverride>,
    pub(crate) exported_itlrecovery: Option<Identity>,
    pub(crate) inactive: Option<Box<Partition>>,
    pub(crate) keys: KeySource,
    pub(crate) now: UnixTime,
    /// Per TFTP node: (plan hash, time the plan last changed) of its ITL.
    pub(crate) itl_stamps: BTreeMap<NodeId, ([u8; 32], UnixTime)>,
    /// Last time anything feeding the signed configs changed.
    pub(crate) config_changed_at: UnixTime,
    pub(crate) cache: Mutex<ArtefactCache>,
}

/// Fake manufacturing roots preloaded in CallManager-trust and CAPF-trust (seed 002 "The
/// Manufacturing -trust certificates are pre-loaded"). TEST-ONLY look-alikes from `certs/roots`.
const ROOT_PEMS: [(&str, &str); 7] = [
    (
        "CAP-RTP-001",
        include_str!("../../certs/roots/CAP-RTP-001.pem"),
    ),
    (
        "CAP-RTP-002",
        include_str!("../../certs/roots/CAP-RTP-002.pem"),
    ),
    (
        "Cisco_Manufacturing_CA",
        include_str!("../../certs/roots/Cisco_Manufacturing_CA.pem"),
    ),
    (
        "Cisco_Root_CA_2048",
        include_str!("../../certs/roots/Cisco_Root_CA_2048.pem"),
    ),
    (
        "Cisco_Manufacturing_CA_SHA2",
        include_str!("../../certs/roots/Cisco_Manufacturing_CA_SHA2.pem"),
    ),
    (
        "Cisco_Root_CA_M2",
        include_str!("../../certs/roots/Cisco_Root_CA_M2.pem"),
    ),
    (
        "ACT2_SUDI_CA",
        include_str!("../../certs/roots/ACT2_SUDI_CA.pem"),
    ),
];
const TEST_CA_PEM: &str = include_str!("../../certs/roots/itlsim-test-ca.pem");

/// Loads a committed root: (certificate, key).
pub fn load_root(pem_text: &str) -> Result<(Certificate, PrivateKey), ModelError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| ModelError::Crypto(format!("PEM: {e}")))?;
    let cert_der = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or_else(|| ModelError::Crypto("no certificate".into()))?
        .contents()
        .to_vec();
    let key = blocks
        .iter()
        .find(|b| b.tag() == "PRIVATE KEY")
        .ok_or_else(|| ModelError::Crypto("no key".into()))?;
    let key = PrivateKey::from_pkcs8_der(key.contents())?;
    Ok((certificate_from_der(&cert_der)?, key))
}

/// Wraps foreign DER (an uploaded certificate) as a model certificate.
pub fn certificate_from_der(der: &[u8]) -> Result<Certificate, ModelError> {
    let info =
        itlsim_wire::cert::CertInfo::parse(der).map_err(|e| ModelError::Invalid(e.to_string()))?;
    let dn = |rdns: &[(String, String)]| {
        rdns.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    let cn = info.common_name().unwrap_or_default().to_string();
    let key = match &info.public_key {
        itlsim_wire::crypto::PublicKey::Rsa { bits, .. } => {
            KeySpec::Rsa(u16::try_from(*bits).unwrap_or(0))
        }
        _ => KeySpec::EcP256,
    };
    Ok(pki::certificate_from_parts(
        der.to_vec(),
        info.serial.clone(),
        cn,
        dn(&info.subject),
        dn(&info.issuer),
        (info.not_before, info.not_after),
        key,
    ))
}

/// The test "third-party" CA (`certs/roots/itlsim-test-ca.pem`) for CA-signed uploads.
pub fn test_ca() -> Result<CertAuthority, ModelError> {
    let (cert, key) = load_root(TEST_CA_PEM)?;
    CertAuthority::from_existing(cert, key)
}

/// The look-alike manufacturing roots (name, certificate, key).
pub fn manufacturing_roots() -> Result<Vec<(&'static str, Certificate, PrivateKey)>, ModelError> {
    ROOT_PEMS
        .iter()
        .map(|(n, p)| load_root(p).map(|(c, k)| (*n, c, k)))
        .collect()
}

impl Cluster {
    /// A freshly installed cluster (seed 004 "Initial Trust List": the ITL is built when TFTP is
    /// activated and the cluster installed). Every node gets its identity certificates, each
    /// copied to its trust store; the manufacturing roots are preloaded.
    pub fn install(spec: ClusterSpec, keys: KeySource) -> Result<Self, ModelError> {
        if spec.nodes.is_empty() {
            return Err(ModelError::Invalid(
                "a cluster needs at least one node (the publisher)".into(),
            ));
        }
        let version = spec.version;
        let mut nodes = Vec::new();
        for (i, ns) in spec.nodes.iter().enumerate() {
            let id =
                NodeId(u16::try_from(i).map_err(|_| ModelError::Invalid("too many nodes".into()))?);
            let publisher = i == 0;
            let mut services = BTreeMap::new();
            let on = ServiceState {
                activated: true,
                running: true,
            };
            let set = |services: &mut BTreeMap<Service, ServiceState>, s, yes: bool| {
                services.insert(s, if yes { on } else { ServiceState::default() });
            };
            set(&mut services, Service::CallManager, ns.callmanager);
            set(&mut services, Service::CtiManager, ns.callmanager);
            set(&mut services, Service::Tftp, ns.tftp);
            // TVS is a network service running on every node from 8.0 (seed 004 "TVS runs on the
            // Unified Communications Manager server").
            set(&mut services, Service::Tvs, version.has_sbd());
            // CAPF and the CTL provider run on the publisher (seed 000 Table 3 "CAPF (publisher
            // only)"; seed 002 "Activate the Cisco CTL Provider and CAPF on the publisher").
            set(
                &mut services,
                Service::Capf,
                publisher && spec.capf_activated,
            );
            set(
                &mut services,
                Service::CtlProvider,
                publisher && spec.capf_activated,
            );
            set(&mut services, Service::Tomcat, true);
            set(
                &mut services,
                Service::HaProxy,
                version.major >= 14 && (version.major > 14 || version.su >= 1),
            );
            set(&mut services, Service::DrfMaster, publisher);
            set(&mut services, Service::DrfLocal, true);
            set(&mut services, Service::Ipsec, true);
            nodes.push(Node {
                id,
                hostname: ns.hostname.clone(),
                ip: ns.ip,
                services,
                identities: BTreeMap::new(),
                trust: TrustStores::default(),
                tftp: TftpRuntime::default(),
                tvs_loaded: TrustStores::default(),
            });
        }
        let mut c = Self {
            name: spec.name,
            domain: spec.domain,
            org: OrgInfo::default(),
            version,
            security: SecurityMode::NonSecure,
            params: EnterpriseParams::default(),
            knobs: spec.knobs,
            nodes,
            cluster_ids: BTreeMap::new(),
            groups: Vec::new(),
            phones: BTreeMap::new(),
            ctl: None,
            etokens: Vec::new(),
            itl_override: BTreeMap::new(),
            exported_itlrecovery: None,
            inactive: None,
            keys,
            now: spec.installed_at,
            itl_stamps: BTreeMap::new(),
            config_changed_at: spec.installed_at,
            cache: Mutex::new(ArtefactCache::default()),
        };
        // Preloaded roots (seed 002; seed 000 lists them as MIC roots in the trust stores).
        let roots = manufacturing_roots()?;
        for node in &mut c.nodes {
            for (_, cert, _) in &roots {
                for kind in [TrustStoreKind::CallManagerTrust, TrustStoreKind::CapfTrust] {
                    node.trust.store_mut(kind).insert(TrustEntry {
                        cert: cert.clone(),
                        origin: TrustOrigin::Preloaded,
                        added_at: spec.installed_at,
                    });
                }
            }
        }
        for i in 0..c.nodes.len() {
            let node = NodeId(u16::try_from(i).unwrap_or(u16::MAX));
            for purpose in c.purposes_at_install(node) {
                let id = c.make_identity(
                    node,
                    purpose,
                    purpose.default_key(),
                    c.knobs.cert_hash,
                    false,
                    true,
                )?;
                c.install_identity(node, id, &mut Vec::new());
            }
        }
        if version.has_itlrecovery() {
            let id = c.make_identity(
                NodeId(0),
                CertPurpose::ItlRecovery,
                KeySpec::Rsa(2048),
                c.knobs.cert_hash,
                false,
                true,
            )?;
            c.install_identity(NodeId(0), id, &mut Vec::new());
        }
        if let Some(etoken_count) = spec.etokens {
            c.make_etokens(etoken_count)?;
        }
        for i in 0..c.nodes.len() {
            c.start_tftp_runtime(NodeId(u16::try_from(i).unwrap_or(u16::MAX)));
            if let Some(n) = c.nodes.get_mut(i) {
                n.tvs_loaded = n.trust.clone();
            }
        }
        // One default CallManager group with every CallManager node (up to 3, §4.2).
        let members: Vec<NodeId> = c
            .nodes
            .iter()
            .filter(|n| n.has(Service::CallManager))
            .map(|n| n.id)
            .take(3)
            .collect();
        c.groups.push(CmGroup {
            name: "Default".into(),
            members,
        });
        c.refresh_stamps();
        Ok(c)
    }

    fn purposes_at_install(&self, node: NodeId) -> Vec<CertPurpose> {
        let v = self.version;
        let publisher = node.0 == 0;
        let mut out = vec![
            CertPurpose::CallManager,
            CertPurpose::Tomcat,
            CertPurpose::Ipsec,
        ];
        if v.has_ecdsa() {
            out.push(CertPurpose::CallManagerEcdsa);
            out.push(CertPurpose::TomcatEcdsa);
        }
        if v.has_sbd() {
            out.push(CertPurpose::Tvs);
        }
        // CAPF: node-based before 14, publisher only from 14 (seed 000 Table 8).
        if !v.capf_publisher_only() || publisher {
            out.push(CertPurpose::Capf);
        }
        out
    }

    /// Modelled USB eTokens (SAST certificates issued by the look-alike Cisco Manufacturing CA,
    /// like the `SAST-ADN…` records of seed 002).
    fn make_etokens(&mut self, count: usize) -> Result<(), ModelError> {
        let roots = manufacturing_roots()?;
        let Some((_, root_cert, root_key)) = roots
            .iter()
            .find(|(n, _, _)| *n == "Cisco_Manufacturing_CA")
        else {
            return Err(ModelError::Invalid("manufacturing root missing".into()));
        };
        let ca = CertAuthority::from_existing(root_cert.clone(), root_key.clone())?;
        for _ in 0..count.clamp(1, 2) {
            let key = self.keys.fresh(KeySpec::Rsa(1024))?;
            let tag: [u8; 4] = self.keys.random_bytes();
            let org = OrgInfo {
                ou: "IPCBU".into(),
                o: "Cisco Systems".into(),
                ..OrgInfo::default()
            };
            let req = CertRequest {
                purpose: None,
                common_name: format!("SAST-ADN{}", hex::encode(tag)),
                sans: vec![],
                org: &org,
                hash: SigHash::Sha256,
                not_before: self.now,
                validity_days: 365 * 20,
                serial: self.keys.random_bytes(),
                profile: self.knobs.key_usage_profile,
                is_ca: false,
            };
            let cert = ca.issue(&req, &key)?;
            self.etokens.push(Identity {
                purpose: CertPurpose::CallManager,
                cert,
                key,
                hash: SigHash::Sha256,
                multi_server: false,
                ca_signed: true,
            });
        }
        Ok(())
    }

    /// Builds a fresh self-signed identity certificate for `purpose` on `node`.
    pub(crate) fn make_identity(
        &self,
        node: NodeId,
        purpose: CertPurpose,
        key: KeySpec,
        hash: SigHash,
        multi_server: bool,
        fresh_install: bool,
    ) -> Result<Identity, ModelError> {
        key.validate()?;
        if purpose.is_ec() == key.is_rsa() {
            return Err(ModelError::Invalid(format!(
                "{purpose} needs an {} key (seed 000 Table 6)",
                if purpose.is_ec() { "EC" } else { "RSA" }
            )));
        }
        let n = self.node(node)?;
        let host = n.hostname.clone();
        let fqdn = format!("{host}.{}", self.domain);
        let common_name = match (purpose, multi_server) {
            // Seed 000 Table 5 "Distribution": <host-name>-ms.<domain> / <host-name>-EC-ms.<domain>.
            (CertPurpose::CallManagerEcdsa | CertPurpose::TomcatEcdsa, true) => {
                format!("{host}-EC-ms.{}", self.domain)
            }
            (_, true) => format!("{host}-ms.{}", self.domain),
            // Seed 000 Table 6: the ECDSA certificates' CN differs from the host name [I: -EC].
            (CertPurpose::CallManagerEcdsa | CertPurpose::TomcatEcdsa, false) => {
                format!("{host}-EC.{}", self.domain)
            }
            // Seed 002: "CAPF always has a unique Subject Name".
            (CertPurpose::Capf, false) => {
                format!("CAPF-{}", hex::encode(self.keys.random_bytes::<4>()))
            }
            // [I] CUCM names it ITLRECOVERY_<publisher>.
            (CertPurpose::ItlRecovery, false) => format!("ITLRECOVERY_{host}"),
            _ => host.clone(),
        };
        let sans = if multi_server {
            self.nodes
                .iter()
                .map(|n| format!("{}.{}", n.hostname, self.domain))
                .collect()
        } else if purpose == CertPurpose::Capf || purpose == CertPurpose::ItlRecovery {
            vec![]
        } else {
            vec![fqdn]
        };
        let years = if purpose == CertPurpose::ItlRecovery && fresh_install {
            self.knobs.itlrecovery_validity_years
        } else {
            self.knobs.validity_years
        };
        let key = self.keys.fresh(key)?;
        let hash = if key.spec().is_rsa() {
            hash
        } else if hash == SigHash::Sha1 {
            SigHash::Sha256
        } else {
            hash
        };
        let req = CertRequest {
            purpose: Some(purpose),
            common_name,
            sans,
            org: &self.org,
            hash,
            not_before: self.now,
            validity_days: years.saturating_mul(365),
            serial: self.keys.random_bytes(),
            profile: self.knobs.key_usage_profile,
            is_ca: true,
        };
        let cert = pki::self_signed(&req, &key)?;
        Ok(Identity {
            purpose,
            cert,
            key,
            hash,
            multi_server,
            ca_signed: false,
        })
    }

    /// Where an identity lives: cluster-wide (ITLRecovery, multi-server, CAPF from 14) or node.
    fn identity_is_cluster_scoped(&self, id: &Identity) -> bool {
        id.multi_server
            || id.purpose == CertPurpose::ItlRecovery
            || (id.purpose == CertPurpose::Capf && self.version.capf_publisher_only())
    }

    /// Installs `id` as the identity of its purpose (node or cluster scope) and copies it into
    /// its own trust store(s) with replication (seed 002). Records trust changes in `log`.
    pub(crate) fn install_identity(
        &mut self,
        node: NodeId,
        id: Identity,
        log: &mut Vec<crate::actions::Change>,
    ) {
        let purpose = id.purpose;
        let cluster_scoped = self.identity_is_cluster_scoped(&id);
        let origin = TrustOrigin::OwnCopy {
            purpose,
            node: (!cluster_scoped).then_some(node),
        };
        let cert = id.cert.clone();
        if cluster_scoped {
            if id.multi_server {
                for n in &mut self.nodes {
                    n.identities.remove(&purpose);
                }
            }
            self.cluster_ids.insert(purpose, id);
        } else {
            self.cluster_ids.remove(&purpose);
            if let Some(n) = self.nodes.get_mut(usize::from(node.0)) {
                n.identities.insert(purpose, id);
            }
        }
        for kind in TrustStoreKind::own_copy_targets(purpose) {
            // Own copies are made on the node itself and replicate per the store's rule.
            self.trust_insert(node, *kind, cert.clone(), origin.clone(), true, log);
        }
    }

    /// Adds a certificate to a trust store with the replication rule of the store.
    pub(crate) fn trust_insert(
        &mut self,
        node: NodeId,
        kind: TrustStoreKind,
        cert: Certificate,
        origin: TrustOrigin,
        replicate_as_upload: bool,
        log: &mut Vec<crate::actions::Change>,
    ) {
        let now = self.now;
        let targets: Vec<usize> = if replicate_as_upload && kind.upload_replicates() {
            (0..self.nodes.len()).collect()
        } else {
            vec![usize::from(node.0)]
        };
        for i in targets {
            let Some(n) = self.nodes.get_mut(i) else {
                continue;
            };
            let outcome = n.trust.store_mut(kind).insert(TrustEntry {
                cert: cert.clone(),
                origin: origin.clone(),
                added_at: now,
            });
            log.push(crate::actions::Change::Trust {
                node: n.id,
                store: kind,
                cert: cert.clone(),
                outcome,
            });
        }
    }

    // ---- read access ----

    /// Cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// DNS domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Release.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Version class.
    pub fn class(&self) -> VersionClass {
        self.version.class()
    }
    /// Security mode.
    pub fn security_mode(&self) -> SecurityMode {
        self.security
    }
    /// Enterprise parameters.
    pub fn params(&self) -> &EnterpriseParams {
        &self.params
    }
    /// Knobs.
    pub fn knobs(&self) -> &ServerKnobs {
        &self.knobs
    }
    /// Time of the last change (scenario clock).
    pub fn now(&self) -> UnixTime {
        self.now
    }
    /// Nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// The publisher.
    pub fn publisher(&self) -> &Node {
        // `install` refuses an empty node list.
        self.nodes
            .first()
            .unwrap_or_else(|| unreachable_publisher())
    }
    /// A node.
    pub fn node(&self, id: NodeId) -> Result<&Node, ModelError> {
        self.nodes
            .get(usize::from(id.0))
            .ok_or_else(|| ModelError::Invalid(format!("no {id} in {}", self.name)))
    }
    /// Node by host name.
    pub fn node_by_name(&self, hostname: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.hostname.eq_ignore_ascii_case(hostname))
    }
    /// CallManager groups.
    pub fn cm_groups(&self) -> &[CmGroup] {
        &self.groups
    }
    /// Phones.
    pub fn phones(&self) -> &BTreeMap<Mac, PhoneRecord> {
        &self.phones
    }
    /// The stored CTL, if any.
    pub fn ctl(&self) -> Option<&CtlState> {
        self.ctl.as_ref()
    }
    /// The modelled eTokens.
    pub fn etokens(&self) -> &[Identity] {
        &self.etokens
    }
    /// The key source.
    pub fn key_source(&self) -> &KeySource {
        &self.keys
    }
    /// Active `utils itl reset` override on a TFTP node.
    pub fn itl_override(&self, node: NodeId) -> Option<&ItlOverride> {
        self.itl_override.get(&node)
    }

    /// The identity of `purpose` in effect on `node` (cluster-wide ones first).
    pub fn identity(&self, node: NodeId, purpose: CertPurpose) -> Option<&Identity> {
        self.cluster_ids.get(&purpose).or_else(|| {
            self.nodes
                .get(usize::from(node.0))
                .and_then(|n| n.identities.get(&purpose))
        })
    }

    /// The cluster's ITLRecovery identity (V10+).
    pub fn itl_recovery(&self) -> Option<&Identity> {
        self.cluster_ids.get(&CertPurpose::ItlRecovery)
    }

    /// Every own identity certificate (node and cluster scope), deduplicated, in a fixed order.
    pub fn own_identities(&self) -> Vec<(Option<NodeId>, &Identity)> {
        let mut out: Vec<(Option<NodeId>, &Identity)> =
            self.cluster_ids.values().map(|i| (None, i)).collect();
        for n in &self.nodes {
            out.extend(n.identities.values().map(|i| (Some(n.id), i)));
        }
        out
    }

    // ---- trust-list plans ----

    fn rollback_in_effect(&self, node: &Node) -> bool {
        if self.version.rollback_applies_automatically() {
            self.params.rollback_pre80
        } else {
            node.tftp.rollback_at_start
        }
    }

    fn capf_records(&self) -> Vec<PlannedRecord> {
        // CAPF record "present if CAPF is active" (§1.3): the CAPF certificate of each node whose
        // CAPF service is activated.
        let mut out: Vec<PlannedRecord> = Vec::new();
        for n in &self.nodes {
            if !n.has(Service::Capf) {
                continue;
            }
            if let Some(id) = self.identity(n.id, CertPurpose::Capf)
                && !out.iter().any(|r| r.cert.der() == id.cert.der())
            {
                out.push(record(RecordRole::Capf, &id.cert, n));
            }
        }
        out
    }

    fn tvs_records(&self) -> Vec<PlannedRecord> {
        // "All the TVS certificates available on the cluster" (seed 004), one per TVS node (§1.3);
        // a multi-server TVS certificate appears once.
        let mut out: Vec<PlannedRecord> = Vec::new();
        for n in &self.nodes {
            if !n.has(Service::Tvs) {
                continue;
            }
            if let Some(id) = self.identity(n.id, CertPurpose::Tvs)
                && !out.iter().any(|r| r.cert.der() == id.cert.der())
            {
                out.push(record(RecordRole::Tvs, &id.cert, n));
            }
        }
        out
    }

    fn signer_version(&self) -> Option<(u8, u8)> {
        self.params.endpoint_advanced_encryption.then_some((1, 1))
    }

    /// The ITL that TFTP on `node` serves now (`None`: no ITL — pre-8.0 or TFTP not activated).
    /// Contents per §1.3, signer per §6.1/E15, rollback per E5/E9, one ITL per TFTP node with only
    /// its own CallManager certificate (K12).
    pub fn itl_plan(&self, node: NodeId) -> Option<TrustListPlan> {
        let n = self.nodes.get(usize::from(node.0))?;
        if !self.version.has_sbd() || !n.has(Service::Tftp) {
            return None;
        }
        let cm = self.identity(node, CertPurpose::CallManager)?;
        let publisher = self.publisher();
        let pub_cm = self.identity(publisher.id, CertPurpose::CallManager)?;
        let itlrec = self.itl_recovery();
        let class = self.class();
        let tftp_role = if self.security.is_mixed() {
            RecordRole::CcmTftp
        } else {
            RecordRole::Tftp
        };
        // (signer, SAST set, reason)
        let (signer, sasts, reason): (&Identity, Vec<&Identity>, String) =
            match (self.itl_override.get(&node), class, itlrec) {
                (Some(ItlOverride::Localkey), VersionClass::V10, Some(rec)) => (
                    rec,
                    vec![rec, cm],
                    "ITLRecovery: utils itl reset localkey on V10 (§6.1)".into(),
                ),
                (Some(ItlOverride::Localkey), VersionClass::V12 | VersionClass::V14, Some(rec)) => {
                    (
                        pub_cm,
                        vec![pub_cm, rec],
                        "publisher CallManager: utils itl reset localkey on V12+ (E15, seed 004)"
                            .into(),
                    )
                }
                (Some(ItlOverride::Remotekey(rec)), _, _) => (
                    rec,
                    vec![rec, cm],
                    "exported ITLRecovery.p12: utils itl reset remotekey (§6.1)".into(),
                ),
                (_, VersionClass::V12 | VersionClass::V14, Some(rec)) => {
                    (rec, vec![rec, cm], "ITLRecovery (V12+, §6.1)".into())
                }
                (_, VersionClass::V10, Some(rec)) => (
                    cm,
                    vec![cm, rec],
                    "TFTP node's CallManager (V10, §6.1)".into(),
                ),
                _ => (cm, vec![cm], "TFTP node's CallManager (V8, §6.1)".into()),
            };
        let signer_key = signer.key.clone();
        // Only RSA keys sign trust lists (wire-formats §3.5).
        signer_key.rsa()?;
        let owner = |id: &Identity| -> &Node {
            self.nodes
                .iter()
                .find(|x| {
                    x.identities
                        .get(&id.purpose)
                        .is_some_and(|i| i.cert.der() == id.cert.der())
                })
                .unwrap_or(publisher)
        };
        let mut records = Vec::new();
        let empty = self.rollback_in_effect(n);
        if empty {
            // E5: the signer as SAST plus the CAPF records.
            records.push(record(RecordRole::Sast, &signer.cert, owner(signer)));
            records.extend(self.capf_records());
        } else {
            for s in &sasts {
                if !records
                    .iter()
                    .any(|r: &PlannedRecord| r.cert.der() == s.cert.der())
                {
                    records.push(record(RecordRole::Sast, &s.cert, owner(s)));
                }
            }
            // The TFTP node's CallManager certificate in the TFTP (non-secure) or CCM+TFTP
            // (mixed) role (seed 004 "present in two ITL records with two different roles").
            records.push(record(tftp_role, &cm.cert, n));
            // CallManager-ECDSA from 11.0 (§1.3), same role [I].
            if self.version.has_ecdsa()
                && let Some(ec) = self.identity(node, CertPurpose::CallManagerEcdsa)
            {
                records.push(record(tftp_role, &ec.cert, n));
            }
            records.extend(self.capf_records());
            records.extend(self.tvs_records());
        }
        Some(TrustListPlan {
            kind: ListKind::Itl,
            records,
            signer: signer.cert.clone(),
            signer_key,
            signer_reason: reason,
            digest: self.params.tftp_file_signature,
            signer_version: self.signer_version(),
            empty,
        })
    }

    /// The CTL a `utils ctl update CTLFile` (or set-cluster) would write now (§1.3, §6.1, E15).
    /// `reset_localkey`: `utils ctl reset localkey` (signed by the publisher's CallManager,
    /// carrying the current ITLRecovery, seed 004 "Reset CTL Localkey").
    pub(crate) fn ctl_plan(&self, reset_localkey: bool) -> Result<TrustListPlan, ModelError> {
        let publisher = self.publisher();
        let pub_cm = self
            .identity(publisher.id, CertPurpose::CallManager)
            .ok_or_else(|| {
                ModelError::Invalid("publisher has no CallManager certificate".into())
            })?;
        let itlrec = self.itl_recovery();
        let (signer, sasts, reason): (&Identity, Vec<&Identity>, String) = if reset_localkey {
            let mut s = vec![pub_cm];
            s.extend(itlrec);
            (
                pub_cm,
                s,
                "publisher CallManager: utils ctl reset localkey (§6.1, seed 004)".into(),
            )
        } else {
            match self.security {
                SecurityMode::MixedEtoken | SecurityMode::NonSecure if !self.etokens.is_empty() => {
                    let first = self
                        .etokens
                        .first()
                        .ok_or_else(|| ModelError::Invalid("no eToken".into()))?;
                    (
                        first,
                        self.etokens.iter().collect(),
                        "USB eToken (SAST, §6.1)".into(),
                    )
                }
                _ => match (self.class(), itlrec) {
                    (VersionClass::V12 | VersionClass::V14, Some(rec)) => (
                        rec,
                        vec![rec, pub_cm],
                        "ITLRecovery: tokenless CTL on V12+ (§6.1, E15)".into(),
                    ),
                    (VersionClass::V10, Some(rec)) => (
                        pub_cm,
                        vec![pub_cm, rec],
                        "publisher CallManager: tokenless CTL on V10 (§6.1, E15)".into(),
                    ),
                    _ => {
                        return Err(ModelError::Refused(format!(
                            "tokenless CTL needs 10.0+ (§6.1); this cluster runs {}",
                            self.version
                        )));
                    }
                },
            }
        };
        let signer_node = |id: &Identity| -> &Node {
            self.nodes
                .iter()
                .find(|x| {
                    x.identities
                        .get(&id.purpose)
                        .is_some_and(|i| i.cert.der() == id.cert.der())
                })
                .unwrap_or(publisher)
        };
        let mut records: Vec<PlannedRecord> = Vec::new();
        let non_secure = self.security == SecurityMode::NonSecure;
        if non_secure {
            // S23: the non-secure CTL holds only the CAPF entry (+ its signer as SAST [I], E5-like).
            records.push(record(RecordRole::Sast, &signer.cert, signer_node(signer)));
            records.extend(self.capf_records());
        } else {
            for s in &sasts {
                if !records.iter().any(|r| r.cert.der() == s.cert.der()) {
                    records.push(record(RecordRole::Sast, &s.cert, signer_node(s)));
                }
            }
            // One record per CallManager/TFTP server: CCM+TFTP when both run, else CCM or TFTP
            // (§1.3: "SAST, CCM+TFTP, CAPF, ITLRecovery, TFTP and ASA records"; TVS never).
            for n in &self.nodes {
                let role = match (n.has(Service::CallManager), n.has(Service::Tftp)) {
                    (true, true) => RecordRole::CcmTftp,
                    (true, false) => RecordRole::Ccm,
                    (false, true) => RecordRole::Tftp,
                    (false, false) => continue,
                };
                if let Some(cm) = self.identity(n.id, CertPurpose::CallManager)
                    && !records
                        .iter()
                        .any(|r| r.cert.der() == cm.cert.der() && r.role == role)
                {
                    records.push(record(role, &cm.cert, n));
                }
            }
            records.extend(self.capf_records());
        }
        let signer_key = signer.key.clone();
        if signer_key.rsa().is_none() {
            return Err(ModelError::Refused(
                "the CTL signer must be RSA (wire-formats §3.5)".into(),
            ));
        }
        Ok(TrustListPlan {
            kind: ListKind::Ctl,
            records,
            signer: signer.cert.clone(),
            signer_key,
            signer_reason: reason,
            digest: self.params.tftp_file_signature,
            signer_version: self.signer_version(),
            empty: non_secure,
        })
    }

    /// Recomputes ITL plan hashes and records the time each changed ("TFTP rebuilds"; seed 004:
    /// "The ITL file is updated automatically if the content is modified"). Returns the nodes whose
    /// ITL changed.
    pub(crate) fn refresh_stamps(&mut self) -> Vec<NodeId> {
        let mut changed = Vec::new();
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            match self.itl_plan(id) {
                Some(plan) => {
                    let h = plan.content_hash();
                    let stamp = self.itl_stamps.get(&id).copied();
                    if stamp.map(|s| s.0) != Some(h) {
                        self.itl_stamps.insert(id, (h, self.now));
                        if stamp.is_some() {
                            changed.push(id);
                        }
                    }
                }
                None => {
                    if self.itl_stamps.remove(&id).is_some() {
                        changed.push(id);
                    }
                }
            }
        }
        changed
    }

    /// Snapshot the TFTP runtime of a node (at TFTP start/restart).
    pub(crate) fn start_tftp_runtime(&mut self, node: NodeId) {
        let rollback = self.params.rollback_pre80;
        let cm = self
            .identity(node, CertPurpose::CallManager)
            .map(|i| i.cert.clone());
        let tomcat = self
            .identity(node, CertPurpose::Tomcat)
            .map(|i| i.cert.clone());
        if let Some(n) = self.nodes.get_mut(usize::from(node.0)) {
            n.tftp = TftpRuntime {
                rollback_at_start: rollback,
                https_6971: cm,
                https_6972: tomcat,
            };
        }
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, ModelError> {
        let name = self.name.clone();
        self.nodes
            .get_mut(usize::from(id.0))
            .ok_or_else(|| ModelError::Invalid(format!("no {id} in {name}")))
    }

    /// Phones whose CallManager group contains `node`.
    pub(crate) fn phones_homed_on(&self, node: NodeId) -> Vec<Mac> {
        self.phones
            .values()
            .filter(|p| {
                self.groups
                    .get(usize::from(p.cm_group.0))
                    .is_some_and(|g| g.members.contains(&node))
            })
            .map(|p| p.mac)
            .collect()
    }

    /// Registered phones among `macs` (E11: only registered phones are reset).
    pub(crate) fn registered(&self, macs: impl IntoIterator<Item = Mac>) -> Vec<Mac> {
        macs.into_iter()
            .filter(|m| self.phones.get(m).is_some_and(|p| p.registered))
            .collect()
    }

    /// The group of a phone.
    pub fn group_of(&self, mac: Mac) -> Option<&CmGroup> {
        let p = self.phones.get(&mac)?;
        self.groups.get(usize::from(p.cm_group.0))
    }

    /// Adds a CallManager group; returns its id.
    pub fn add_cm_group(
        &mut self,
        name: &str,
        members: Vec<NodeId>,
    ) -> Result<CmGroupId, ModelError> {
        for m in &members {
            self.node(*m)?;
        }
        if members.is_empty() || members.len() > 5 {
            return Err(ModelError::Invalid(
                "a CallManager group has 1 to 5 members (§4.2 schema)".into(),
            ));
        }
        let id = CmGroupId(
            u16::try_from(self.groups.len())
                .map_err(|_| ModelError::Invalid("too many groups".into()))?,
        );
        self.groups.push(CmGroup {
            name: name.to_string(),
            members,
        });
        self.config_changed_at = self.now;
        Ok(id)
    }

    /// Adds or replaces a phone in the database (no reset).
    pub fn add_phone(&mut self, phone: PhoneRecord) -> Result<(), ModelError> {
        if usize::from(phone.cm_group.0) >= self.groups.len() {
            return Err(ModelError::Invalid(format!(
                "no CallManager group {}",
                phone.cm_group.0
            )));
        }
        self.phones.insert(phone.mac, phone);
        self.config_changed_at = self.now;
        Ok(())
    }

    /// Adds `count` SBD phones of `model` numbered from `first_mac` into group `group`.
    pub fn add_fleet(
        &mut self,
        model: &str,
        first_mac: u64,
        count: u64,
        group: CmGroupId,
    ) -> Result<(), ModelError> {
        for i in 0..count {
            self.add_phone(PhoneRecord {
                mac: Mac::from_u64(first_mac.wrapping_add(i)),
                model: model.to_string(),
                sbd: true,
                cm_group: group,
                encrypted_config: false,
                device_cert_der: None,
                registered: true,
                load: String::new(),
            })?;
        }
        Ok(())
    }

    /// The simulator reports a phone's registration state (E11 resets only registered phones).
    pub fn set_registered(&mut self, mac: Mac, registered: bool) {
        if let Some(p) = self.phones.get_mut(&mac) {
            p.registered = registered;
        }
    }

    /// Time the ITL of `node` last changed (its TIMESTAMP).
    pub fn itl_changed_at(&self, node: NodeId) -> Option<UnixTime> {
        self.itl_stamps.get(&node).map(|s| s.1)
    }
}

fn unreachable_publisher() -> &'static Node {
    // A cluster always has a publisher: `install` refuses an empty node list and nothing removes
    // nodes. Kept as a function so no `unwrap` hides in the accessor.
    static EMPTY: std::sync::OnceLock<Node> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Node {
        id: NodeId(0),
        hostname: String::new(),
        ip: [0; 4],
        services: BTreeMap::new(),
        identities: BTreeMap::new(),
        trust: TrustStores::default(),
        tftp: TftpRuntime::default(),
        tvs_loaded: TrustStores::default(),
    })
}

fn record(role: RecordRole, cert: &Certificate, node: &Node) -> PlannedRecord {
    PlannedRecord {
        role,
        cert: cert.clone(),
        dns: node.hostname.clone(),
        ip: Some(node.ip),
    }
}
