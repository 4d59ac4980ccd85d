//! Administrative actions (the seeds' CLI and GUI verbs) and what each one changes and triggers.
//!
//! [`Cluster::apply`] takes the scenario time and an [`AdminAction`] and returns an
//! [`ActionReport`]: the state changes ([`Change`]) and the events a timeline shows ([`Event`]:
//! service restarts, restarts the administrator must do, phone reset waves). Refused actions
//! change nothing and return [`ModelError::Refused`] with the source.

use std::collections::BTreeMap;

use crate::cluster::{Cluster, CtlState, ItlOverride, Partition, certificate_from_der};
use crate::error::ModelError;
use crate::keys::{KeySpec, PrivateKey};
use crate::model::{
    CmGroupId, Mac, NodeId, ParamChange, PhoneInteraction, SecurityMode, Service, ServiceOp,
    ServiceState, TftpHttpsRefresh, TvsStoreRefresh, Version,
};
use crate::pki::{
    CertAuthority, CertPurpose, CertRequest, Certificate, Identity, SigHash, UnixTime,
};
use crate::trust::{InsertOutcome, TrustOrigin, TrustStoreKind, TrustStores};

/// Which phones an administrator reset reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetScope {
    /// Enterprise Parameters → Reset (all devices).
    All,
    /// Devices of one CallManager group (device-pool reset).
    Group(CmGroupId),
    /// A batch (BAT "Reset Phones").
    Phones(Vec<Mac>),
}

/// What Bulk Certificate Management exports (seed 000/004 "Bulk Certificate Export").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkKind {
    /// "TFTP": the CallManager certificates of the TFTP nodes (+ ECDSA from 11.0, seed 004).
    Tftp,
    /// The ITLRecovery certificate (seed 000: the option added for EMCC).
    ItlRecovery,
    /// CAPF.
    Capf,
    /// tomcat.
    Tomcat,
    /// All of the above.
    All,
}

/// One exported certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkItem {
    /// Home cluster.
    pub cluster: String,
    /// Purpose there.
    pub purpose: CertPurpose,
    /// The certificate.
    pub cert: Certificate,
}

/// The consolidated PKCS#12 on the SFTP server (modelled as a list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkBundle {
    /// Items.
    pub items: Vec<BulkItem>,
}

impl BulkBundle {
    /// "Consolidate" (seed 000 step 3): the union of several exports.
    pub fn consolidate(bundles: &[BulkBundle]) -> BulkBundle {
        let mut items: Vec<BulkItem> = Vec::new();
        for b in bundles {
            for i in &b.items {
                if !items.iter().any(|x| x.cert.der() == i.cert.der()) {
                    items.push(i.clone());
                }
            }
        }
        BulkBundle { items }
    }
}

/// A DRS backup (seed 004 "System Back-Up Procedure": certificates and keys are backed up).
#[derive(Clone, Debug)]
pub struct DrsBackup {
    /// Cluster name.
    pub cluster: String,
    /// When it was taken.
    pub taken_at: UnixTime,
    /// Release.
    pub version: Version,
    nodes: Vec<(String, BTreeMap<CertPurpose, Identity>, TrustStores)>,
    cluster_ids: BTreeMap<CertPurpose, Identity>,
    ctl: Option<CtlState>,
    security: SecurityMode,
}

/// An administrative action.
#[derive(Clone, Debug)]
pub enum AdminAction {
    /// `set cert regen <type>` / GUI Regenerate: same key type and length (seed 000).
    RegenerateCert {
        /// Node (the publisher for ITLRecovery and V14 CAPF).
        node: NodeId,
        /// Type.
        purpose: CertPurpose,
    },
    /// Generate Self-Signed Certificate with new parameters (seed 000 Table 6).
    GenerateSelfSigned {
        /// Node.
        node: NodeId,
        /// Type.
        purpose: CertPurpose,
        /// Key type and length.
        key: KeySpec,
        /// Hash.
        hash: SigHash,
        /// Multi-server SAN (14+).
        multi_server: bool,
    },
    /// Upload a CA-signed identity certificate (whose CSR key CUCM holds: `key_pkcs8`).
    UploadCaSigned {
        /// Node.
        node: NodeId,
        /// Type.
        purpose: CertPurpose,
        /// Certificate DER.
        cert_der: Vec<u8>,
        /// The CSR's private key (PKCS#8 DER).
        key_pkcs8: Vec<u8>,
    },
    /// Upload Certificate/Certificate Chain into a -trust store.
    UploadTrust {
        /// Node.
        node: NodeId,
        /// Store.
        store: TrustStoreKind,
        /// Certificate DER.
        cert_der: Vec<u8>,
    },
    /// Delete a trust certificate (`set cert delete <unit> <name>`).
    DeleteTrust {
        /// Node.
        node: NodeId,
        /// Store.
        store: TrustStoreKind,
        /// Subject (model form `CN=…;OU=…`) or common name.
        subject: String,
    },
    /// Control Center / Service Activation.
    Service {
        /// Node.
        node: NodeId,
        /// Service.
        service: Service,
        /// Operation.
        op: ServiceOp,
    },
    /// `utils itl reset localkey` (publisher, 10.0+).
    ItlResetLocalkey,
    /// `utils itl reset remotekey` (needs an exported ITLRecovery.p12).
    ItlResetRemotekey,
    /// `file get tftp ITLRecovery.p12` (seed 004 tip).
    ExportItlRecoveryP12,
    /// `utils ctl set-cluster mixed-mode` (tokenless) or the CTL client with eTokens.
    CtlSetMixedMode {
        /// Use the modelled USB eTokens (CTL client) instead of tokenless.
        etoken: bool,
    },
    /// `utils ctl set-cluster non-secure-mode`.
    CtlSetNonSecure,
    /// `utils ctl update CTLFile` (or the CTL client's "CTL Update").
    CtlUpdate,
    /// `utils ctl reset localkey`.
    CtlResetLocalkey,
    /// Bulk certificate import of a consolidated bundle.
    BulkImport(BulkBundle),
    /// DRS restore.
    DrsRestore(DrsBackup),
    /// Set an enterprise parameter.
    SetParam(ParamChange),
    /// Reset devices.
    ResetPhones(ResetScope),
    /// Reuse the multi-server tomcat (or tomcat-ECDSA) certificate for CallManager (-ECDSA), 14+.
    ReuseTomcatForCallManager {
        /// tomcat-ECDSA → CallManager-ECDSA instead of tomcat → CallManager.
        ecdsa: bool,
    },
    /// Upgrade (refresh or L2) to a later release; the old one stays on the inactive partition.
    Upgrade(Version),
    /// Switch to the inactive partition (revert, or switch back after a revert).
    SwitchVersion,
}

impl AdminAction {
    /// The CLI/GUI form for timelines.
    pub fn describe(&self, c: &Cluster) -> String {
        let host = |n: &NodeId| {
            c.node(*n)
                .map(|x| x.hostname.clone())
                .unwrap_or_else(|_| n.to_string())
        };
        match self {
            AdminAction::RegenerateCert { node, purpose } => {
                format!("{}: set cert regen {purpose}", host(node))
            }
            AdminAction::GenerateSelfSigned {
                node,
                purpose,
                key,
                hash,
                multi_server,
            } => format!(
                "{}: generate self-signed {purpose} {key} {hash:?}{}",
                host(node),
                if *multi_server { " multi-server" } else { "" }
            ),
            AdminAction::UploadCaSigned { node, purpose, .. } => {
                format!("{}: upload CA-signed {purpose}", host(node))
            }
            AdminAction::UploadTrust { node, store, .. } => {
                format!("{}: upload certificate to {store}", host(node))
            }
            AdminAction::DeleteTrust {
                node,
                store,
                subject,
            } => format!("{}: delete {subject} from {store}", host(node)),
            AdminAction::Service { node, service, op } => {
                format!("{}: {op:?} {}", host(node), service.name())
            }
            AdminAction::ItlResetLocalkey => "utils itl reset localkey".into(),
            AdminAction::ItlResetRemotekey => "utils itl reset remotekey".into(),
            AdminAction::ExportItlRecoveryP12 => "file get tftp ITLRecovery.p12".into(),
            AdminAction::CtlSetMixedMode { etoken: false } => {
                "utils ctl set-cluster mixed-mode".into()
            }
            AdminAction::CtlSetMixedMode { etoken: true } => {
                "CTL client: set mixed mode (eTokens)".into()
            }
            AdminAction::CtlSetNonSecure => "utils ctl set-cluster non-secure-mode".into(),
            AdminAction::CtlUpdate => "utils ctl update CTLFile".into(),
            AdminAction::CtlResetLocalkey => "utils ctl reset localkey".into(),
            AdminAction::BulkImport(b) => {
                format!("bulk certificate import ({} certificates)", b.items.len())
            }
            AdminAction::DrsRestore(b) => {
                format!("DRS restore of the backup taken at {}", b.taken_at)
            }
            AdminAction::SetParam(p) => format!("enterprise parameter {p:?}"),
            AdminAction::ResetPhones(s) => format!("reset phones {s:?}"),
            AdminAction::ReuseTomcatForCallManager { ecdsa } => {
                format!(
                    "reuse {} for {}",
                    if *ecdsa { "tomcat-ECDSA" } else { "tomcat" },
                    if *ecdsa {
                        "CallManager-ECDSA"
                    } else {
                        "CallManager"
                    }
                )
            }
            AdminAction::Upgrade(v) => format!("upgrade {} -> {v}", c.version),
            AdminAction::SwitchVersion => "utils system switch-version".into(),
        }
    }
}

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An identity certificate was replaced.
    Identity {
        /// Node (None: cluster-wide).
        node: Option<NodeId>,
        /// Purpose.
        purpose: CertPurpose,
        /// Previous certificate.
        old: Option<Certificate>,
        /// New certificate.
        new: Certificate,
    },
    /// A trust store insert (with its outcome).
    Trust {
        /// Node.
        node: NodeId,
        /// Store.
        store: TrustStoreKind,
        /// Certificate.
        cert: Certificate,
        /// Outcome.
        outcome: InsertOutcome,
    },
    /// A trust certificate was deleted.
    TrustRemoved {
        /// Node.
        node: NodeId,
        /// Store.
        store: TrustStoreKind,
        /// Certificate.
        cert: Certificate,
    },
    /// The ITL a TFTP node serves changed (new bytes, new TIMESTAMP).
    ItlRebuilt {
        /// TFTP node.
        node: NodeId,
    },
    /// A new CTL was written.
    CtlWritten {
        /// Its signer.
        signer: Certificate,
        /// Why that signer.
        reason: String,
    },
    /// Service state.
    Service {
        /// Node.
        node: NodeId,
        /// Service.
        service: Service,
        /// New state.
        state: ServiceState,
    },
    /// Enterprise parameter.
    Param(ParamChange),
    /// Security mode.
    SecurityMode {
        /// Before.
        from: SecurityMode,
        /// After.
        to: SecurityMode,
    },
    /// `utils itl reset` override set (true) or cleared by a TFTP restart (false).
    ItlOverride {
        /// TFTP node.
        node: NodeId,
        /// Active now.
        active: bool,
    },
    /// Release.
    Version {
        /// Before.
        from: Version,
        /// After.
        to: Version,
    },
    /// ITLRecovery.p12 exported.
    ItlRecoveryExported,
}

/// Something a timeline shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The system restarted a service by itself.
    ServiceRestarted {
        /// Node.
        node: NodeId,
        /// Service.
        service: Service,
        /// Source.
        source: &'static str,
    },
    /// The documents say the administrator must restart this service now.
    RestartRequired {
        /// Node.
        node: NodeId,
        /// Service.
        service: Service,
        /// Source.
        source: &'static str,
    },
    /// Phones reset (automatically by CUCM, or by the administrator's reset).
    PhoneResets {
        /// Registered phones reached, in MAC order.
        phones: Vec<Mac>,
        /// Why.
        reason: String,
        /// Done by CUCM itself (vs. an administrator reset).
        automatic: bool,
        /// Spread over this many seconds (§10 reset pacing).
        window_s: u32,
    },
    /// The administrator should reset phones (manual Phone Interaction, `utils itl reset` …).
    ResetAdvised {
        /// Why.
        reason: String,
    },
    /// The CTL must be updated (`utils ctl update CTLFile` / CTL client), §6.4.
    CtlUpdateRequired {
        /// Why.
        reason: String,
    },
    /// A documented warning applies (e.g. CSCut58407, manual unlock after restore).
    Warning {
        /// Text with source.
        text: String,
    },
}

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionReport {
    /// CLI/GUI form.
    pub action: String,
    /// Scenario time.
    pub at: UnixTime,
    /// State changes.
    pub changes: Vec<Change>,
    /// Events.
    pub events: Vec<Event>,
}

impl ActionReport {
    /// All phones reset by events of this report (deduplicated, in MAC order).
    pub fn reset_phones(&self) -> Vec<Mac> {
        let mut out: Vec<Mac> = self
            .events
            .iter()
            .flat_map(|e| match e {
                Event::PhoneResets { phones, .. } => phones.clone(),
                _ => vec![],
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether a given event kind occurred for a service on a node.
    pub fn restarted(&self, node: NodeId, service: Service) -> bool {
        self.events.iter().any(|e| matches!(e, Event::ServiceRestarted { node: n, service: s, .. } if *n == node && *s == service))
    }

    /// Whether the report asks for a restart of this service on this node.
    pub fn restart_required(&self, node: NodeId, service: Service) -> bool {
        self.events.iter().any(|e| matches!(e, Event::RestartRequired { node: n, service: s, .. } if *n == node && *s == service))
    }
}

struct Ctx {
    changes: Vec<Change>,
    events: Vec<Event>,
}

fn refused(msg: impl Into<String>) -> ModelError {
    ModelError::Refused(msg.into())
}

impl Cluster {
    /// Applies an administrative action at scenario time `now` (must not go backwards).
    pub fn apply(
        &mut self,
        now: UnixTime,
        action: AdminAction,
    ) -> Result<ActionReport, ModelError> {
        if now < self.now {
            return Err(ModelError::Invalid(format!(
                "time goes backwards: {now} < {}",
                self.now
            )));
        }
        let described = action.describe(self);
        // Work on a copy so a refused action changes nothing.
        let saved_now = self.now;
        self.now = now;
        let mut ctx = Ctx {
            changes: Vec::new(),
            events: Vec::new(),
        };
        let result = self.dispatch(action, &mut ctx);
        if let Err(e) = result {
            self.now = saved_now;
            return Err(e);
        }
        for node in self.refresh_stamps() {
            // E10: "39 certificates" is the documents' rough count, a builder warning only (the
            // phone-side limit is 65,536 bytes).
            if let Some(plan) = self.itl_plan(node)
                && plan.records.len() > 39
            {
                ctx.events.push(Event::Warning {
                    text: format!(
                        "E10/seed 004: the ITL of {node} holds {} certificates (> 39): it may exceed 64 KB",
                        plan.records.len()
                    ),
                });
            }
            ctx.changes.push(Change::ItlRebuilt { node });
        }
        Ok(ActionReport {
            action: described,
            at: now,
            changes: ctx.changes,
            events: ctx.events,
        })
    }

    fn dispatch(&mut self, action: AdminAction, ctx: &mut Ctx) -> Result<(), ModelError> {
        match action {
            AdminAction::RegenerateCert { node, purpose } => {
                let current = self.current_identity(node, purpose)?;
                let key = current.key.spec();
                let hash = if current.hash == SigHash::Sha1 && !key.is_rsa() {
                    SigHash::Sha256
                } else {
                    current.hash
                };
                let multi = current.multi_server;
                self.check_regen(node, purpose, multi)?;
                // Seed 004: a regenerated ITLRecovery gets 20 years.
                let id = self.make_identity(
                    node,
                    purpose,
                    key,
                    hash,
                    multi,
                    purpose == CertPurpose::ItlRecovery,
                )?;
                self.replace_identity(
                    node,
                    id,
                    ctx,
                    "seed 000 Table 7 / seed 002 'After Regeneration'",
                )
            }
            AdminAction::GenerateSelfSigned {
                node,
                purpose,
                key,
                hash,
                multi_server,
            } => {
                self.check_regen(node, purpose, multi_server)?;
                let id = self.make_identity(
                    node,
                    purpose,
                    key,
                    hash,
                    multi_server,
                    purpose == CertPurpose::ItlRecovery,
                )?;
                self.replace_identity(node, id, ctx, "seed 000 'Generate Self-Signed Certificate'")
            }
            AdminAction::UploadCaSigned {
                node,
                purpose,
                cert_der,
                key_pkcs8,
            } => {
                self.check_regen(node, purpose, false)?;
                let cert = certificate_from_der(&cert_der)?;
                let key = PrivateKey::from_pkcs8_der(&key_pkcs8)?;
                // Seed 000 "Install Intermediate Certificates": the root goes in first.
                let trust_kind = match purpose {
                    CertPurpose::CallManager
                    | CertPurpose::CallManagerEcdsa
                    | CertPurpose::ItlRecovery => TrustStoreKind::CallManagerTrust,
                    CertPurpose::Tomcat | CertPurpose::TomcatEcdsa => TrustStoreKind::TomcatTrust,
                    CertPurpose::Ipsec => TrustStoreKind::IpsecTrust,
                    CertPurpose::Tvs => TrustStoreKind::TvsTrust,
                    CertPurpose::Capf => TrustStoreKind::CapfTrust,
                };
                let n = self.node(node)?;
                if !n
                    .trust
                    .store(trust_kind)
                    .entries()
                    .iter()
                    .any(|e| e.cert.subject() == cert.issuer())
                {
                    return Err(refused(format!(
                        "the issuer {} is not in {trust_kind}: upload the CA root first (seed 000 'Install Intermediate Certificates')",
                        cert.issuer()
                    )));
                }
                let id = Identity {
                    purpose,
                    cert,
                    key,
                    hash: SigHash::Sha256,
                    multi_server: false,
                    ca_signed: true,
                };
                self.replace_identity_inner(
                    node,
                    id,
                    ctx,
                    false,
                    "seed 000 'After uploading the CallManager or CAPF certificates, phones reset'",
                )
            }
            AdminAction::UploadTrust {
                node,
                store,
                cert_der,
            } => self.upload_trust(node, store, &cert_der, ctx),
            AdminAction::DeleteTrust {
                node,
                store,
                subject,
            } => self.delete_trust(node, store, &subject, ctx),
            AdminAction::Service { node, service, op } => self.service_op(node, service, op, ctx),
            AdminAction::ItlResetLocalkey => self.itl_reset(false, ctx),
            AdminAction::ItlResetRemotekey => self.itl_reset(true, ctx),
            AdminAction::ExportItlRecoveryP12 => {
                let rec = self
                    .itl_recovery()
                    .cloned()
                    .ok_or_else(|| refused("no ITLRecovery before 10.0"))?;
                self.exported_itlrecovery = Some(rec);
                ctx.changes.push(Change::ItlRecoveryExported);
                Ok(())
            }
            AdminAction::CtlSetMixedMode { etoken } => self.ctl_set_mixed(etoken, ctx),
            AdminAction::CtlSetNonSecure => {
                if !self.security.is_mixed() {
                    return Err(refused("the cluster is already non-secure"));
                }
                let from = self.security;
                self.security = SecurityMode::NonSecure;
                ctx.changes.push(Change::SecurityMode {
                    from,
                    to: self.security,
                });
                self.write_ctl(false, ctx)?;
                self.after_ctl_write(ctx);
                Ok(())
            }
            AdminAction::CtlUpdate => {
                if !self.security.is_mixed() {
                    return Err(refused("utils ctl update CTLFile needs mixed mode"));
                }
                self.write_ctl(false, ctx)?;
                self.after_ctl_write(ctx);
                Ok(())
            }
            AdminAction::CtlResetLocalkey => {
                if self.security != SecurityMode::MixedTokenless {
                    return Err(refused(
                        "utils ctl reset localkey needs a tokenless mixed-mode cluster (seed 004)",
                    ));
                }
                self.write_ctl(true, ctx)?;
                ctx.events.push(Event::ResetAdvised {
                    reason: "seed 004 'Reset CTL Localkey' step 4: Enterprise Parameters → Reset"
                        .into(),
                });
                Ok(())
            }
            AdminAction::BulkImport(bundle) => self.bulk_import(&bundle, ctx),
            AdminAction::DrsRestore(backup) => self.drs_restore(backup, ctx),
            AdminAction::SetParam(p) => self.set_param(p, ctx),
            AdminAction::ResetPhones(scope) => {
                let phones: Vec<Mac> = match &scope {
                    ResetScope::All => self.phones.keys().copied().collect(),
                    ResetScope::Group(g) => self
                        .phones
                        .values()
                        .filter(|p| p.cm_group == *g)
                        .map(|p| p.mac)
                        .collect(),
                    ResetScope::Phones(v) => v.clone(),
                };
                let phones = self.registered(phones);
                ctx.events.push(Event::PhoneResets {
                    phones,
                    reason: format!("administrator reset {scope:?} (§9 bulk/batch resets)"),
                    automatic: false,
                    window_s: self.knobs.reset_window_s,
                });
                Ok(())
            }
            AdminAction::ReuseTomcatForCallManager { ecdsa } => {
                if !self.version.has_multi_san_self_signed() {
                    return Err(refused(
                        "reuse of the tomcat certificate exists from 14 (seed 000 'Simplified Certificate Management')",
                    ));
                }
                let (from, to) = if ecdsa {
                    (CertPurpose::TomcatEcdsa, CertPurpose::CallManagerEcdsa)
                } else {
                    (CertPurpose::Tomcat, CertPurpose::CallManager)
                };
                let pub_id = self.publisher().id;
                let tomcat = self
                    .identity(pub_id, from)
                    .cloned()
                    .ok_or_else(|| refused("no tomcat certificate"))?;
                if !tomcat.multi_server {
                    return Err(refused(
                        "the tomcat certificate must be a multi-server SAN certificate (seed 000 'Reuse Multi-Server Tomcat Certificate')",
                    ));
                }
                let id = Identity {
                    purpose: to,
                    ..tomcat
                };
                self.replace_identity(
                    pub_id,
                    id,
                    ctx,
                    "seed 000 'Reuse Multi-Server Tomcat Certificate for CallManager'",
                )
            }
            AdminAction::Upgrade(to) => self.upgrade(to, ctx),
            AdminAction::SwitchVersion => self.switch_version(ctx),
        }
    }

    fn current_identity(&self, node: NodeId, purpose: CertPurpose) -> Result<Identity, ModelError> {
        self.node(node)?;
        self.identity(node, purpose).cloned().ok_or_else(|| {
            refused(format!(
                "{purpose} does not exist on {node} in {}",
                self.version
            ))
        })
    }

    fn check_regen(
        &self,
        node: NodeId,
        purpose: CertPurpose,
        multi_server: bool,
    ) -> Result<(), ModelError> {
        let n = self.node(node)?;
        let v = self.version;
        match purpose {
            CertPurpose::ItlRecovery if !v.has_itlrecovery() => {
                return Err(refused("ITLRecovery exists from 10.0"));
            }
            CertPurpose::CallManagerEcdsa | CertPurpose::TomcatEcdsa if !v.has_ecdsa() => {
                return Err(refused("ECDSA certificates exist from 11.0 (seed 004)"));
            }
            CertPurpose::Tvs if !v.has_sbd() => return Err(refused("TVS exists from 8.0")),
            // Seed 000: "Navigate to the publisher in each cluster to regenerate the ITLRecovery".
            CertPurpose::ItlRecovery if !n.is_publisher() => {
                return Err(refused(
                    "ITLRecovery is regenerated on the publisher (seed 000)",
                ));
            }
            CertPurpose::Capf if v.capf_publisher_only() && !n.is_publisher() => {
                return Err(refused(
                    "from 14 CAPF certificates are generated only on the publisher (seed 000 Table 8)",
                ));
            }
            _ => {}
        }
        if multi_server {
            let allowed = matches!(
                purpose,
                CertPurpose::Tomcat
                    | CertPurpose::TomcatEcdsa
                    | CertPurpose::CallManager
                    | CertPurpose::CallManagerEcdsa
                    | CertPurpose::Tvs
            );
            if !allowed || !v.has_multi_san_self_signed() {
                return Err(refused(format!(
                    "multi-server SAN self-signed {purpose} is not supported in {v} (seed 000 Table 8)"
                )));
            }
            if !n.is_publisher() {
                return Err(refused(
                    "multi-server certificates are made on the publisher (seed 000 note on multiserver SAN)",
                ));
            }
        }
        Ok(())
    }

    fn replace_identity(
        &mut self,
        node: NodeId,
        id: Identity,
        ctx: &mut Ctx,
        source: &'static str,
    ) -> Result<(), ModelError> {
        self.replace_identity_inner(node, id, ctx, true, source)
    }

    /// Installs a new identity and emits the documented side effects.
    fn replace_identity_inner(
        &mut self,
        node: NodeId,
        id: Identity,
        ctx: &mut Ctx,
        copy_to_trust: bool,
        source: &'static str,
    ) -> Result<(), ModelError> {
        let purpose = id.purpose;
        let multi = id.multi_server;
        let old = self.identity(node, purpose).map(|i| i.cert.clone());
        let new = id.cert.clone();
        let cluster_scoped = multi
            || purpose == CertPurpose::ItlRecovery
            || (purpose == CertPurpose::Capf && self.version.capf_publisher_only());
        if copy_to_trust {
            self.install_identity(node, id, &mut ctx.changes);
        } else {
            // CA-signed upload: the identity is replaced; the CA root is what the trust store holds.
            if cluster_scoped {
                self.cluster_ids.insert(purpose, id);
            } else {
                self.cluster_ids.remove(&purpose);
                self.node_mut(node)?.identities.insert(purpose, id);
            }
        }
        ctx.changes.push(Change::Identity {
            node: (!cluster_scoped).then_some(node),
            purpose,
            old,
            new,
        });
        self.config_changed_at = self.now;
        let affected: Vec<NodeId> = if cluster_scoped {
            self.nodes.iter().map(|n| n.id).collect()
        } else {
            vec![node]
        };
        let v = self.version;
        // Services (seed 000 Table 7 for 14+, seed 002 "After Regeneration" before).
        for n in &affected {
            let n = *n;
            match purpose {
                CertPurpose::CallManager => {
                    if v.major >= 14 && (v.su >= 1 || v.major > 14) {
                        ctx.events.push(Event::RestartRequired {
                            node: n,
                            service: Service::HaProxy,
                            source: "seed 000 Table 7 (14SU1+)",
                        });
                    } else if v.major >= 14 {
                        for s in [Service::CallManager, Service::CtiManager, Service::HaProxy] {
                            ctx.events.push(Event::RestartRequired {
                                node: n,
                                service: s,
                                source: "seed 000 Table 7 (14)",
                            });
                        }
                    } else {
                        for s in [Service::CallManager, Service::Tftp, Service::CtiManager] {
                            ctx.events.push(Event::RestartRequired {
                                node: n,
                                service: s,
                                source: "seed 002 'After Regeneration'",
                            });
                        }
                    }
                }
                CertPurpose::CallManagerEcdsa => {
                    ctx.events.push(Event::RestartRequired {
                        node: n,
                        service: Service::CallManager,
                        source: "seed 000 Table 7 / seed 001 Table 1",
                    });
                    if v.major >= 14 && (v.su >= 1 || v.major > 14) {
                        ctx.events.push(Event::RestartRequired {
                            node: n,
                            service: Service::HaProxy,
                            source: "seed 000 Table 7 (14SU1+)",
                        });
                    }
                }
                CertPurpose::Tomcat | CertPurpose::TomcatEcdsa => {
                    ctx.events.push(Event::RestartRequired {
                        node: n,
                        service: Service::Tomcat,
                        source: "seed 000 Table 7 / seed 002",
                    });
                }
                CertPurpose::Ipsec => {
                    ctx.events.push(Event::RestartRequired {
                        node: n,
                        service: Service::Ipsec,
                        source: "seed 000 Table 7",
                    });
                    ctx.events.push(Event::RestartRequired {
                        node: n,
                        service: Service::DrfLocal,
                        source: "seed 002 'After Regeneration'",
                    });
                    if self.node(n).is_ok_and(|x| x.is_publisher()) {
                        ctx.events.push(Event::RestartRequired {
                            node: n,
                            service: Service::DrfMaster,
                            source: "seed 002 'After Regeneration'",
                        });
                    }
                }
                CertPurpose::Capf => {
                    // "CAPF service is automatically restarted when CAPF certificate is regenerated".
                    if self.node(n).is_ok_and(|x| x.runs(Service::Capf)) {
                        ctx.events.push(Event::ServiceRestarted {
                            node: n,
                            service: Service::Capf,
                            source: "seed 000/004 'Regenerate CAPF Certificate'",
                        });
                    }
                }
                CertPurpose::Tvs => {
                    // "TVS service is automatically restarted when TVS certificate is regenerated".
                    if self.node(n).is_ok_and(|x| x.runs(Service::Tvs)) {
                        ctx.events.push(Event::ServiceRestarted {
                            node: n,
                            service: Service::Tvs,
                            source: "seed 000/004 'Regenerate TVS Certificate'",
                        });
                        self.node_mut(n)?.tvs_loaded = self.node(n)?.trust.clone();
                    }
                }
                CertPurpose::ItlRecovery => {}
            }
        }
        if self.security.is_mixed()
            && matches!(
                purpose,
                CertPurpose::CallManager
                    | CertPurpose::Capf
                    | CertPurpose::ItlRecovery
                    | CertPurpose::Tvs
            )
        {
            ctx.events.push(Event::CtlUpdateRequired {
                reason: format!("{purpose} changed in mixed mode (seed 000 'Regenerate a Certificate' step 5, §6.4)"),
            });
        }
        if purpose == CertPurpose::ItlRecovery {
            ctx.events.push(Event::Warning {
                text: "seed 004: if you use a tokenless CTL and regenerate CallManager, make sure the CTL has the updated CallManager certificate; the ITLRecovery procedure resets phones in manual batches (E11)".into(),
            });
        }
        if matches!(
            purpose,
            CertPurpose::CallManager | CertPurpose::CallManagerEcdsa | CertPurpose::Tomcat
        ) {
            ctx.events.push(Event::Warning {
                text: "E13: HTTPS 6971/6972 keep presenting the old certificate until the TFTP service is deactivated and reactivated (seed 004, seed 001)".into(),
            });
        }
        // E11 automatic resets.
        let wave: Vec<Mac> = match purpose {
            CertPurpose::CallManager => {
                if affected
                    .iter()
                    .any(|n| self.node(*n).is_ok_and(|x| x.has(Service::Tftp)))
                {
                    self.phones.keys().copied().collect()
                } else {
                    vec![]
                }
            }
            CertPurpose::Tvs => {
                let mut v: Vec<Mac> = affected
                    .iter()
                    .flat_map(|n| self.phones_homed_on(*n))
                    .collect();
                v.sort();
                v.dedup();
                v
            }
            CertPurpose::Capf => {
                if affected
                    .iter()
                    .any(|n| self.node(*n).is_ok_and(|x| x.has(Service::Capf)))
                {
                    self.phones.keys().copied().collect()
                } else {
                    vec![]
                }
            }
            _ => vec![],
        };
        if !wave.is_empty() {
            let reason = format!("{purpose} changed: automatic reset (E11, §6.5; {source})");
            if self.version.has_phone_interaction_param()
                && self.params.phone_interaction == PhoneInteraction::Manual
            {
                ctx.events.push(Event::ResetAdvised {
                    reason: format!("{reason}; Phone Interaction on Certificate Update = manual"),
                });
            } else {
                let phones = self.registered(wave);
                ctx.events.push(Event::PhoneResets {
                    phones,
                    reason,
                    automatic: true,
                    window_s: self.knobs.reset_window_s,
                });
            }
        }
        Ok(())
    }

    fn upload_trust(
        &mut self,
        node: NodeId,
        store: TrustStoreKind,
        der: &[u8],
        ctx: &mut Ctx,
    ) -> Result<(), ModelError> {
        self.node(node)?;
        let cert = certificate_from_der(der)?;
        self.trust_insert(
            node,
            store,
            cert.clone(),
            TrustOrigin::Uploaded,
            true,
            &mut ctx.changes,
        );
        // Seed 001: "When you upload a CAPF certificate authority root certificate, it is copied
        // to the CallManager-trust store".
        if store == TrustStoreKind::CapfTrust {
            self.trust_insert(
                node,
                TrustStoreKind::CallManagerTrust,
                cert,
                TrustOrigin::Uploaded,
                true,
                &mut ctx.changes,
            );
        }
        let service = match store {
            TrustStoreKind::CallManagerTrust => Some(Service::CallManager),
            TrustStoreKind::TomcatTrust => Some(Service::Tomcat),
            TrustStoreKind::CapfTrust => Some(Service::Capf),
            TrustStoreKind::IpsecTrust => Some(Service::Ipsec),
            TrustStoreKind::TvsTrust => Some(Service::Tvs),
            _ => None,
        };
        if let Some(service) = service {
            // Seed 001 "Upload Certificate": "Restart the affected service after uploading".
            ctx.events.push(Event::RestartRequired {
                node,
                service,
                source: "seed 001 'Upload Certificate or Certificate Chain'",
            });
        }
        if self.knobs.tvs_store_refresh == TvsStoreRefresh::OnRestart {
            ctx.events.push(Event::RestartRequired {
                node,
                service: Service::Tvs,
                source: "E16 tvs_store_refresh=on_restart",
            });
        }
        if self.security.is_mixed() {
            ctx.events.push(Event::CtlUpdateRequired {
                reason: "seed 000 'Update the CTL File': in mixed mode update the CTL whenever you upload a new certificate".into(),
            });
        }
        Ok(())
    }

    fn delete_trust(
        &mut self,
        node: NodeId,
        store: TrustStoreKind,
        subject: &str,
        ctx: &mut Ctx,
    ) -> Result<(), ModelError> {
        self.node(node)?;
        let targets: Vec<usize> = if store.delete_replicates() {
            (0..self.nodes.len()).collect()
        } else {
            vec![usize::from(node.0)]
        };
        let mut any = false;
        for i in targets {
            let Some(n) = self.nodes.get_mut(i) else {
                continue;
            };
            let st = n.trust.store_mut(store);
            let full = st
                .entries()
                .iter()
                .find(|e| e.cert.subject() == subject || e.cert.common_name() == subject)
                .map(|e| e.cert.subject().to_string());
            let Some(full) = full else { continue };
            for cert in st.remove(&full, None) {
                any = true;
                ctx.changes.push(Change::TrustRemoved {
                    node: n.id,
                    store,
                    cert,
                });
            }
        }
        if !any {
            return Err(ModelError::Invalid(format!("{subject} is not in {store}")));
        }
        if matches!(
            store,
            TrustStoreKind::CapfTrust | TrustStoreKind::CallManagerTrust | TrustStoreKind::TvsTrust
        ) {
            ctx.events.push(Event::Warning {
                text: "seed 002: CSCut58407 - devices cannot restart when CAPF/CallManager/TVS-trust certificates are removed".into(),
            });
        }
        Ok(())
    }

    fn service_op(
        &mut self,
        node: NodeId,
        service: Service,
        op: ServiceOp,
        ctx: &mut Ctx,
    ) -> Result<(), ModelError> {
        let before = *self
            .node(node)?
            .services
            .get(&service)
            .unwrap_or(&ServiceState::default());
        let after = match op {
            ServiceOp::Start | ServiceOp::Restart => {
                if !before.activated {
                    return Err(refused(format!(
                        "{} is not activated on {node}",
                        service.name()
                    )));
                }
                ServiceState {
                    activated: true,
                    running: true,
                }
            }
            ServiceOp::Stop => ServiceState {
                activated: before.activated,
                running: false,
            },
            ServiceOp::Activate => ServiceState {
                activated: true,
                running: true,
            },
            ServiceOp::Deactivate => ServiceState {
                activated: false,
                running: false,
            },
        };
        if service == Service::Capf && after.activated && !self.node(node)?.is_publisher() {
            return Err(refused("CAPF runs on the publisher (seed 000 Table 3)"));
        }
        self.node_mut(node)?.services.insert(service, after);
        ctx.changes.push(Change::Service {
            node,
            service,
            state: after,
        });
        let starting = after.running && (op == ServiceOp::Restart || !before.running);
        if starting {
            ctx.events.push(Event::ServiceRestarted {
                node,
                service,
                source: "administrator",
            });
        }
        match service {
            Service::Tftp if starting => {
                // Seed 004: restarting TFTP re-signs the ITL with the normal signer.
                if self.itl_override.remove(&node).is_some() {
                    ctx.changes.push(Change::ItlOverride {
                        node,
                        active: false,
                    });
                }
                let refresh_https = op == ServiceOp::Activate
                    || (self.knobs.tftp_https_refresh == TftpHttpsRefresh::Restart)
                    || !before.activated;
                let keep = self.node(node)?.tftp.clone();
                self.start_tftp_runtime(node);
                if !refresh_https {
                    let n = self.node_mut(node)?;
                    n.tftp.https_6971 = keep.https_6971;
                    n.tftp.https_6972 = keep.https_6972;
                }
            }
            Service::Tvs if starting => {
                let t = self.node(node)?.trust.clone();
                self.node_mut(node)?.tvs_loaded = t;
            }
            Service::Capf | Service::Tvs | Service::Tftp if before.activated != after.activated => {
                // The ITL content depends on which nodes run TFTP/TVS/CAPF (§1.3).
                self.config_changed_at = self.now;
            }
            _ => {}
        }
        Ok(())
    }

    fn itl_reset(&mut self, remote: bool, ctx: &mut Ctx) -> Result<(), ModelError> {
        if !self.version.has_itl_reset() {
            return Err(refused(
                "utils itl reset exists from 10.0(1) (spec version table)",
            ));
        }
        let rec = self
            .itl_recovery()
            .cloned()
            .ok_or_else(|| refused("no ITLRecovery certificate"))?;
        let over = if remote {
            let exported = self.exported_itlrecovery.clone().ok_or_else(|| {
                refused("remotekey needs ITLRecovery.p12 exported beforehand (§9, seed 004 tip)")
            })?;
            ItlOverride::Remotekey(exported)
        } else {
            if self.class() == crate::model::VersionClass::V10 {
                let pub_cm = self.identity(self.publisher().id, CertPurpose::CallManager);
                let smaller = pub_cm.is_some_and(|cm| rec.key.spec().bits() < cm.key.spec().bits());
                if !self.knobs.v10_localkey_recovers || smaller {
                    return Err(refused(
                        "E7: utils itl reset localkey fails on this V10 cluster (ITLRecovery key smaller than the CallManager key, or knob v10_localkey_recovers=false; S11)",
                    ));
                }
            }
            ItlOverride::Localkey
        };
        let tftp_nodes: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.has(Service::Tftp))
            .map(|n| n.id)
            .collect();
        for n in tftp_nodes {
            self.itl_override.insert(n, over.clone());
            ctx.changes.push(Change::ItlOverride {
                node: n,
                active: true,
            });
        }
        ctx.events.push(Event::ResetAdvised {
            reason: "seed 004 'Perform Bulk Reset of ITL File' step 4: Enterprise Parameters → Reset; then restart TFTP and reset again".into(),
        });
        Ok(())
    }

    fn ctl_set_mixed(&mut self, etoken: bool, ctx: &mut Ctx) -> Result<(), ModelError> {
        if self.security.is_mixed() {
            return Err(refused("the cluster is already in mixed mode"));
        }
        if etoken {
            if !self.version.has_etoken_ctl() {
                return Err(refused(
                    "CTL tokens are not supported from 14SU3 (spec version table)",
                ));
            }
            if self.etokens.is_empty() {
                return Err(refused(
                    "no eTokens: install the cluster with ClusterSpec::etokens",
                ));
            }
        } else if !self.version.has_tokenless_ctl() {
            return Err(refused(
                "utils ctl set-cluster mixed-mode needs 10.0+ (§6.1)",
            ));
        }
        let from = self.security;
        self.security = if etoken {
            SecurityMode::MixedEtoken
        } else {
            SecurityMode::MixedTokenless
        };
        ctx.changes.push(Change::SecurityMode {
            from,
            to: self.security,
        });
        self.write_ctl(false, ctx)?;
        self.after_ctl_write(ctx);
        Ok(())
    }

    fn write_ctl(&mut self, reset_localkey: bool, ctx: &mut Ctx) -> Result<(), ModelError> {
        let plan = self.ctl_plan(reset_localkey)?;
        ctx.changes.push(Change::CtlWritten {
            signer: plan.signer.clone(),
            reason: plan.signer_reason.clone(),
        });
        self.ctl = Some(CtlState {
            plan,
            built_at: self.now,
        });
        self.config_changed_at = self.now;
        Ok(())
    }

    fn after_ctl_write(&mut self, ctx: &mut Ctx) {
        // Seed 002 CTL update steps 5–6 and seed 000: restart TFTP and CallManager on all nodes;
        // seed 004: the CTL "gets uploaded to the TFTP server and sent to phones automatically".
        for n in &self.nodes {
            if n.has(Service::Tftp) {
                ctx.events.push(Event::RestartRequired {
                    node: n.id,
                    service: Service::Tftp,
                    source: "seed 002 CTL update step 5",
                });
            }
            if n.has(Service::CallManager) {
                ctx.events.push(Event::RestartRequired {
                    node: n.id,
                    service: Service::CallManager,
                    source: "seed 002 CTL update step 6",
                });
            }
        }
        ctx.events.push(Event::ResetAdvised {
            reason: "seed 002 CTL update step 8: reset phones in groups (79xx need it; 78xx/88xx soft-reset on CallManager restart)".into(),
        });
    }

    /// Bulk Certificate Management export (read-only).
    pub fn bulk_export(&self, kind: BulkKind) -> BulkBundle {
        let mut items: Vec<BulkItem> = Vec::new();
        let mut push = |purpose: CertPurpose, cert: &Certificate| {
            if !items.iter().any(|i| i.cert.der() == cert.der()) {
                items.push(BulkItem {
                    cluster: self.name.clone(),
                    purpose,
                    cert: cert.clone(),
                });
            }
        };
        let tftp = matches!(kind, BulkKind::Tftp | BulkKind::All);
        for n in &self.nodes {
            if tftp && n.has(Service::Tftp) {
                for p in [CertPurpose::CallManager, CertPurpose::CallManagerEcdsa] {
                    if let Some(id) = self.identity(n.id, p) {
                        push(p, &id.cert);
                    }
                }
            }
            if matches!(kind, BulkKind::Capf | BulkKind::All)
                && let Some(id) = self.identity(n.id, CertPurpose::Capf)
            {
                push(CertPurpose::Capf, &id.cert);
            }
            if matches!(kind, BulkKind::Tomcat | BulkKind::All) {
                for p in [CertPurpose::Tomcat, CertPurpose::TomcatEcdsa] {
                    if let Some(id) = self.identity(n.id, p) {
                        push(p, &id.cert);
                    }
                }
            }
        }
        if matches!(kind, BulkKind::ItlRecovery | BulkKind::All)
            && let Some(rec) = self.itl_recovery()
        {
            push(CertPurpose::ItlRecovery, &rec.cert);
        }
        BulkBundle { items }
    }

    fn bulk_import(&mut self, bundle: &BulkBundle, ctx: &mut Ctx) -> Result<(), ModelError> {
        let pub_id = self.publisher().id;
        for item in &bundle.items {
            // §7.2 M1 import mapping (S10).
            let stores: &[TrustStoreKind] = match item.purpose {
                CertPurpose::CallManager
                | CertPurpose::CallManagerEcdsa
                | CertPurpose::ItlRecovery => &[
                    TrustStoreKind::PhoneSastTrust,
                    TrustStoreKind::CallManagerTrust,
                ],
                CertPurpose::Capf => &[TrustStoreKind::CallManagerTrust],
                CertPurpose::Tomcat | CertPurpose::TomcatEcdsa => &[TrustStoreKind::TomcatTrust],
                CertPurpose::Ipsec | CertPurpose::Tvs => &[],
            };
            for s in stores {
                let origin = TrustOrigin::BulkImport {
                    cluster: item.cluster.clone(),
                    purpose: item.purpose,
                };
                self.trust_insert(
                    pub_id,
                    *s,
                    item.cert.clone(),
                    origin,
                    true,
                    &mut ctx.changes,
                );
            }
        }
        if self.knobs.tvs_store_refresh == TvsStoreRefresh::OnRestart {
            for n in &self.nodes {
                ctx.events.push(Event::RestartRequired {
                    node: n.id,
                    service: Service::Tvs,
                    source: "E16 tvs_store_refresh=on_restart (S9)",
                });
            }
        }
        Ok(())
    }

    /// Takes a DRS backup (read-only).
    pub fn drs_backup(&self) -> DrsBackup {
        let with_certs = self.knobs.drs_backs_up_certs;
        DrsBackup {
            cluster: self.name.clone(),
            taken_at: self.now,
            version: self.version,
            nodes: self
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.hostname.clone(),
                        if with_certs {
                            n.identities.clone()
                        } else {
                            BTreeMap::new()
                        },
                        n.trust.clone(),
                    )
                })
                .collect(),
            cluster_ids: if with_certs {
                self.cluster_ids.clone()
            } else {
                BTreeMap::new()
            },
            ctl: self.ctl.clone(),
            security: self.security,
        }
    }

    fn drs_restore(&mut self, b: DrsBackup, ctx: &mut Ctx) -> Result<(), ModelError> {
        if b.cluster != self.name || b.version != self.version {
            return Err(refused(
                "a DRS backup restores onto the same cluster and release",
            ));
        }
        let mut changed_identity = false;
        for (host, ids, trust) in b.nodes {
            let Some(i) = self.nodes.iter().position(|n| n.hostname == host) else {
                return Err(refused(format!("backup node {host} is not in the cluster")));
            };
            let node_id = self.nodes.get(i).map(|n| n.id).unwrap_or(NodeId(0));
            for (p, id) in ids {
                let old = self
                    .nodes
                    .get(i)
                    .and_then(|n| n.identities.get(&p))
                    .map(|x| x.cert.clone());
                if old.as_ref().is_some_and(|o| o.der() != id.cert.der()) {
                    changed_identity = true;
                    ctx.changes.push(Change::Identity {
                        node: Some(node_id),
                        purpose: p,
                        old,
                        new: id.cert.clone(),
                    });
                }
                if let Some(n) = self.nodes.get_mut(i) {
                    n.identities.insert(p, id);
                }
            }
            if let Some(n) = self.nodes.get_mut(i) {
                n.trust = trust;
            }
        }
        for (p, id) in b.cluster_ids {
            let old = self.cluster_ids.get(&p).map(|x| x.cert.clone());
            if old.as_ref().is_some_and(|o| o.der() != id.cert.der()) {
                changed_identity = true;
                ctx.changes.push(Change::Identity {
                    node: None,
                    purpose: p,
                    old,
                    new: id.cert.clone(),
                });
            }
            self.cluster_ids.insert(p, id);
        }
        self.ctl = b.ctl;
        self.security = b.security;
        self.config_changed_at = self.now;
        self.reboot(ctx, "DRS restore: the cluster restarts");
        if changed_identity {
            ctx.events.push(Event::Warning {
                text: "seed 000/004: the backup predates a certificate regeneration; phones that took the newer ITL may need a manual unlock (E8, knob restore_requires_manual_unlock on the phone side)".into(),
            });
        }
        Ok(())
    }

    /// Every service restarts, the TFTP/TVS runtimes reload and registered phones reset.
    fn reboot(&mut self, ctx: &mut Ctx, why: &str) {
        self.itl_override.clear();
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            self.start_tftp_runtime(id);
            if let Some(n) = self.nodes.get_mut(usize::from(id.0)) {
                n.tvs_loaded = n.trust.clone();
                for (s, st) in &n.services {
                    if st.activated {
                        ctx.events.push(Event::ServiceRestarted {
                            node: id,
                            service: *s,
                            source: "cluster restart",
                        });
                    }
                }
            }
        }
        let phones = self.registered(self.phones.keys().copied().collect::<Vec<_>>());
        ctx.events.push(Event::PhoneResets {
            phones,
            reason: why.to_string(),
            automatic: true,
            window_s: self.knobs.reset_window_s,
        });
    }

    fn set_param(&mut self, p: ParamChange, ctx: &mut Ctx) -> Result<(), ModelError> {
        match &p {
            ParamChange::RollbackPre80(v) => {
                if self.params.rollback_pre80 == *v {
                    return Ok(());
                }
                self.params.rollback_pre80 = *v;
                if !self.version.rollback_applies_automatically() {
                    // E9: before 10.5 the admin restarts TFTP (and TVS, seed 004) for the new ITL.
                    for n in &self.nodes {
                        if n.has(Service::Tftp) {
                            ctx.events.push(Event::RestartRequired {
                                node: n.id,
                                service: Service::Tftp,
                                source: "E9, seed 002/004",
                            });
                        }
                        if n.has(Service::Tvs) {
                            ctx.events.push(Event::RestartRequired {
                                node: n.id,
                                service: Service::Tvs,
                                source: "seed 004 'Update ITL File' step 2",
                            });
                        }
                    }
                }
                if self.security.is_mixed() {
                    ctx.events.push(Event::Warning {
                        text: "seed 002 / E9: in mixed mode the parameter blanks the ITL but the CTL keeps authenticating: no migration path".into(),
                    });
                }
                // E9: any change resets all phones (seed 002 "A change to this parameter causes
                // ALL PHONES TO RESET"; seed 004 from 10.5).
                let phones = self.registered(self.phones.keys().copied().collect::<Vec<_>>());
                ctx.events.push(Event::PhoneResets {
                    phones,
                    reason: "Prepare Cluster for Rollback to pre-8.0 changed (E9)".into(),
                    automatic: true,
                    window_s: self.knobs.reset_window_s,
                });
            }
            ParamChange::PhoneInteraction(v) => {
                if !self.version.has_phone_interaction_param() {
                    return Err(refused(
                        "Phone Interaction on Certificate Update exists from 14 (§6.5)",
                    ));
                }
                self.params.phone_interaction = *v;
            }
            ParamChange::TftpFileSignature(d) => {
                self.params.tftp_file_signature = *d;
                self.config_changed_at = self.now;
            }
            ParamChange::EndpointAdvancedEncryption(v) => {
                self.params.endpoint_advanced_encryption = *v;
            }
        }
        ctx.changes.push(Change::Param(p));
        Ok(())
    }

    fn upgrade(&mut self, to: Version, ctx: &mut Ctx) -> Result<(), ModelError> {
        let from = self.version;
        if to <= from {
            return Err(refused(format!("upgrade goes forward: {from} -> {to}")));
        }
        self.inactive = Some(Box::new(self.partition()));
        self.version = to;
        ctx.changes.push(Change::Version { from, to });
        // Certificates that appear with the new release.
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        for id in &ids {
            let mut new_purposes = Vec::new();
            if to.has_sbd() && !from.has_sbd() {
                new_purposes.push(CertPurpose::Tvs);
                self.node_mut(*id)?.services.insert(
                    Service::Tvs,
                    ServiceState {
                        activated: true,
                        running: true,
                    },
                );
            }
            if to.has_ecdsa() && !from.has_ecdsa() {
                // Seed 004: "When you update or install, the self-signed [ECDSA] certificate is generated".
                new_purposes.extend([CertPurpose::CallManagerEcdsa, CertPurpose::TomcatEcdsa]);
            }
            for p in new_purposes {
                let cid = self.make_identity(
                    *id,
                    p,
                    p.default_key(),
                    self.knobs.cert_hash,
                    false,
                    false,
                )?;
                ctx.changes.push(Change::Identity {
                    node: Some(*id),
                    purpose: p,
                    old: None,
                    new: cid.cert.clone(),
                });
                self.install_identity(*id, cid, &mut ctx.changes);
            }
        }
        if to.has_itlrecovery() && !from.has_itlrecovery() {
            // Created at upgrade: knob validity (seed 004 keeps 5 years for upgraded ITLRecovery).
            let rec = self.make_identity(
                NodeId(0),
                CertPurpose::ItlRecovery,
                KeySpec::Rsa(2048),
                self.knobs.cert_hash,
                false,
                false,
            )?;
            ctx.changes.push(Change::Identity {
                node: None,
                purpose: CertPurpose::ItlRecovery,
                old: None,
                new: rec.cert.clone(),
            });
            self.install_identity(NodeId(0), rec, &mut ctx.changes);
        }
        if to.capf_publisher_only() && !from.capf_publisher_only() {
            // Seed 000 Table 8: CAPF becomes a single publisher certificate from 14.
            let pub_capf = self
                .nodes
                .first_mut()
                .and_then(|n| n.identities.remove(&CertPurpose::Capf));
            for n in self.nodes.iter_mut().skip(1) {
                n.identities.remove(&CertPurpose::Capf);
            }
            if let Some(c) = pub_capf {
                self.cluster_ids.insert(CertPurpose::Capf, c);
            }
        }
        if !from.has_sbd() && to.has_sbd() && self.security.is_mixed() {
            // Seed 004 "Refresh Upgrade From 7.x" step 2 (7.1(2)/7.1(3) in mixed mode).
            ctx.events.push(Event::CtlUpdateRequired {
                reason: "seed 004 refresh upgrade from 7.1(x) in mixed mode: run the CTL client"
                    .into(),
            });
        }
        self.config_changed_at = self.now;
        self.reboot(
            ctx,
            "upgrade: the cluster restarts (seed 004: wait ten minutes for the phones to restart)",
        );
        Ok(())
    }

    fn partition(&self) -> Partition {
        Partition {
            version: self.version,
            nodes: self.nodes.clone(),
            cluster_ids: self.cluster_ids.clone(),
            params: self.params.clone(),
            security: self.security,
            ctl: self.ctl.clone(),
        }
    }

    fn switch_version(&mut self, ctx: &mut Ctx) -> Result<(), ModelError> {
        let Some(other) = self.inactive.take() else {
            return Err(refused("no inactive partition to switch to"));
        };
        let current = self.partition();
        let from = self.version;
        self.version = other.version;
        self.nodes = other.nodes;
        self.cluster_ids = other.cluster_ids;
        self.params = other.params;
        self.security = other.security;
        self.ctl = other.ctl;
        self.inactive = Some(Box::new(current));
        ctx.changes.push(Change::Version {
            from,
            to: self.version,
        });
        self.config_changed_at = self.now;
        self.reboot(ctx, "switch version: the cluster restarts");
        Ok(())
    }

    /// A CA-signed identity for `purpose` on `node`, issued by `ca` (models "Generate CSR" + the
    /// CA's work). Returns (certificate DER, CSR key PKCS#8) for [`AdminAction::UploadCaSigned`].
    pub fn issue_ca_signed(
        &self,
        ca: &CertAuthority,
        node: NodeId,
        purpose: CertPurpose,
        key: KeySpec,
    ) -> Result<(Vec<u8>, Vec<u8>), ModelError> {
        let n = self.node(node)?;
        let key = self.keys.fresh(key)?;
        let req = CertRequest {
            purpose: Some(purpose),
            common_name: n.hostname.clone(),
            sans: vec![format!("{}.{}", n.hostname, self.domain)],
            org: &self.org,
            hash: SigHash::Sha256,
            not_before: self.now,
            validity_days: 365 * self.knobs.validity_years,
            serial: self.keys.random_bytes(),
            profile: self.knobs.key_usage_profile,
            is_ca: false,
        };
        let cert = ca.issue(&req, &key)?;
        Ok((cert.der().to_vec(), key.pkcs8_der().to_vec()))
    }
}
