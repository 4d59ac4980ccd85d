//! The TVS decision: what a cluster's Trust Verification Service answers (§4, E1).
//!
//! [`decide`] is a pure function of a [`TvsView`] (the trust material one TVS node sees) and a
//! request; [`Cluster::tvs_answer`] builds the view for a node. Rules (E1, binding):
//!
//! 1. A certificate in the cluster's **current** ITL (any TFTP node's) or CTL → the roles it holds
//!    there (TFTP node CallManager → SAST + TFTP/CCM+TFTP; CTL SAST → SAST …).
//! 2. Phone-SAST-trust → SAST; CallManager-trust → TFTP (knob `tvs_callmanager_trust_roles`,
//!    S9 capture); tomcat-trust and own tomcat → APP-SERVER; CAPF-trust and own CAPF → CAPF; own
//!    TVS → TVS.
//! 3. The cluster's own ITLRecovery is not vouched by rule 1 unless `tvs_vouches_own_itlrecovery`
//!    (default false). Another cluster's ITLRecovery imported into Phone-SAST-trust is vouched as
//!    SAST by rule 2.
//!
//! Status is valid when at least one role applies; the TTL is `tvs_ttl_s` (86400, §4.4). Role
//! enforcement (strict/lenient, E1.4) is the phone's business: TVS returns what it knows.

use itlsim_wire::tvs::{Request, Response, Status};

use crate::cluster::{Cluster, RecordRole, TrustListPlan};
use crate::model::{CallManagerTrustRoles, NodeId, ServerKnobs, Service, TvsStoreRefresh};
use crate::pki::{CertPurpose, Certificate};
use crate::trust::{TrustStoreKind, TrustStores};

/// Everything one TVS node decides from.
#[derive(Clone, Debug)]
pub struct TvsView<'a> {
    /// Current ITLs of every TFTP node, and the stored CTL.
    pub lists: Vec<TrustListPlan>,
    /// The trust stores TVS sees (live, or as loaded at its last start: E16).
    pub stores: &'a TrustStores,
    /// Own certificates: (purpose, certificate).
    pub own: Vec<(CertPurpose, Certificate)>,
    /// Knobs.
    pub knobs: &'a ServerKnobs,
}

/// A decision with its reasons (rule ids) for traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TvsDecision {
    /// What goes on the wire.
    pub response: Response,
    /// The certificate the request resolved to.
    pub matched: Option<Certificate>,
    /// Which rules produced the roles, e.g. `E1.1 ITL: SAST`.
    pub reasons: Vec<String>,
}

/// Why no answer at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TvsUnavailable {
    /// TVS service not running on the node (connection refused).
    #[error("TVS not running on {0}")]
    NotRunning(NodeId),
    /// No such node.
    #[error("no such node {0}")]
    NoNode(NodeId),
}

/// Normalised DN for comparisons: case, spaces, quotes, NULs and `,` vs `;` ignored.
pub fn normalise_dn(dn: &[u8]) -> String {
    String::from_utf8_lossy(dn)
        .chars()
        .filter(|c| !matches!(c, '\0' | ' ' | '"'))
        .map(|c| {
            if c == ',' {
                ';'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn minimal(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial.get(start..).unwrap_or_default()
}

impl TvsView<'_> {
    fn candidates(&self) -> Vec<Certificate> {
        let mut out: Vec<Certificate> = Vec::new();
        let mut push = |c: &Certificate| {
            if !out.iter().any(|x| x.der() == c.der()) {
                out.push(c.clone());
            }
        };
        for l in &self.lists {
            for r in &l.records {
                push(&r.cert);
            }
        }
        for (_, e) in self.stores.iter() {
            push(&e.cert);
        }
        for (_, c) in &self.own {
            push(c);
        }
        out
    }

    fn is_own(&self, purpose: CertPurpose, cert: &Certificate) -> bool {
        self.own
            .iter()
            .any(|(p, c)| *p == purpose && c.der() == cert.der())
    }
}

/// The decision for one request (pure).
pub fn decide(view: &TvsView<'_>, request: &Request) -> TvsDecision {
    let candidates = view.candidates();
    let matched: Option<Certificate> = match request {
        Request::Verify { certificate, .. } => candidates
            .iter()
            .find(|c| c.der() == certificate.as_slice())
            .cloned(),
        Request::Query {
            subject,
            issuer,
            serial,
            ..
        } => {
            let want = normalise_dn(subject);
            let mut hits: Vec<&Certificate> = candidates
                .iter()
                .filter(|c| normalise_dn(c.subject().as_bytes()) == want)
                .filter(|c| {
                    serial
                        .as_ref()
                        .is_none_or(|s| minimal(s) == minimal(c.serial()))
                })
                .collect();
            if hits.len() > 1
                && let Some(iss) = issuer
            {
                let wi = normalise_dn(iss);
                hits.retain(|c| normalise_dn(c.issuer().as_bytes()) == wi);
            }
            // Several certificates with this subject and no serial: the newest [I].
            hits.into_iter().max_by_key(|c| c.not_before()).cloned()
        }
    };
    let Some(cert) = matched else {
        return TvsDecision {
            response: Response::invalid(),
            matched: None,
            reasons: vec!["no such certificate".into()],
        };
    };
    let mut roles: Vec<RecordRole> = Vec::new();
    let mut reasons = Vec::new();
    let own_itlrecovery = view.is_own(CertPurpose::ItlRecovery, &cert);
    // Rule 1.
    if own_itlrecovery && !view.knobs.tvs_vouches_own_itlrecovery {
        reasons
            .push("E1.3: own ITLRecovery not vouched (tvs_vouches_own_itlrecovery=false)".into());
    } else {
        for l in &view.lists {
            for r in l.roles_of(&cert) {
                if !roles.contains(&r) {
                    reasons.push(format!("E1.1 {:?}: {r:?}", l.kind));
                    roles.push(r);
                }
            }
        }
    }
    // Rule 2.
    let mut add = |r: RecordRole, why: &str, roles: &mut Vec<RecordRole>| {
        if !roles.contains(&r) {
            roles.push(r);
            reasons.push(format!("E1.2 {why}: {r:?}"));
        }
    };
    let s = view.stores;
    if s.contains(TrustStoreKind::PhoneSastTrust, &cert) {
        add(RecordRole::Sast, "Phone-SAST-trust", &mut roles);
    }
    if s.contains(TrustStoreKind::CallManagerTrust, &cert) {
        match view.knobs.tvs_callmanager_trust_roles {
            CallManagerTrustRoles::Tftp => add(RecordRole::Tftp, "CallManager-trust", &mut roles),
            CallManagerTrustRoles::CcmTftp => {
                add(RecordRole::CcmTftp, "CallManager-trust", &mut roles)
            }
            CallManagerTrustRoles::CcmAndTftp => {
                add(RecordRole::Ccm, "CallManager-trust", &mut roles);
                add(RecordRole::Tftp, "CallManager-trust", &mut roles);
            }
        }
    }
    if s.contains(TrustStoreKind::TomcatTrust, &cert)
        || view.is_own(CertPurpose::Tomcat, &cert)
        || view.is_own(CertPurpose::TomcatEcdsa, &cert)
    {
        add(RecordRole::AppServer, "tomcat-trust/own tomcat", &mut roles);
    }
    if s.contains(TrustStoreKind::CapfTrust, &cert) || view.is_own(CertPurpose::Capf, &cert) {
        add(RecordRole::Capf, "CAPF-trust/own CAPF", &mut roles);
    }
    if view.is_own(CertPurpose::Tvs, &cert) {
        add(RecordRole::Tvs, "own TVS", &mut roles);
    }
    roles.sort();
    let is_query = matches!(request, Request::Query { .. });
    let response = if roles.is_empty() {
        reasons.push("no rule applies: invalid".into());
        Response::invalid()
    } else {
        Response {
            status: Status::Valid,
            certificate: is_query.then(|| cert.der().to_vec()),
            roles: roles.iter().map(|r| r.wire()).collect(),
            ttl: Some(view.knobs.tvs_ttl_s),
        }
    };
    TvsDecision {
        response,
        matched: Some(cert),
        reasons,
    }
}

impl Cluster {
    /// The trust material TVS on `node` decides from.
    pub fn tvs_view(&self, node: NodeId) -> Result<TvsView<'_>, TvsUnavailable> {
        let n = self.node(node).map_err(|_| TvsUnavailable::NoNode(node))?;
        let stores = match self.knobs.tvs_store_refresh {
            TvsStoreRefresh::Immediate => &n.trust,
            TvsStoreRefresh::OnRestart => &n.tvs_loaded,
        };
        let mut lists: Vec<TrustListPlan> = self
            .nodes
            .iter()
            .filter_map(|t| self.itl_plan(t.id))
            .collect();
        if let Some(ctl) = &self.ctl {
            lists.push(ctl.plan.clone());
        }
        let own = self
            .own_identities()
            .into_iter()
            .map(|(_, id)| (id.purpose, id.cert.clone()))
            .collect();
        Ok(TvsView {
            lists,
            stores,
            own,
            knobs: &self.knobs,
        })
    }

    /// What TVS on `node` answers to `request`.
    pub fn tvs_answer(
        &self,
        node: NodeId,
        request: &Request,
    ) -> Result<TvsDecision, TvsUnavailable> {
        let n = self.node(node).map_err(|_| TvsUnavailable::NoNode(node))?;
        if !n.runs(Service::Tvs) {
            return Err(TvsUnavailable::NotRunning(node));
        }
        Ok(decide(&self.tvs_view(node)?, request))
    }
}
