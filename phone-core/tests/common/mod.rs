//! Test support: the throw-away test keys of `wire/testdata/keys`, real files built and signed
//! through `wire`, and a small in-memory driver (TFTP/HTTP servers, TVS members, CallManagers).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use itlsim_phone::event::{
    Action, Blob, Event, FileName, Host, Mac, Outcome, SimTime, Transport, UserAction,
};
use itlsim_phone::knobs::Knobs;
use itlsim_phone::model::Model;
use itlsim_phone::status::StatusMsg;
use itlsim_phone::{CryptoMode, Env, Phone, PhoneSetup};
use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PemBundle, SigningKey};
use itlsim_wire::header::Layout;
use itlsim_wire::sgn::{self, SignOptions};
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::TrustListBuilder;
use itlsim_wire::tvs::{Message, Request, Response, Status};

pub const MAC: Mac = Mac([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);

/// A test key: private key + certificate.
pub struct Key {
    pub key: Option<SigningKey>,
    pub cert: CertInfo,
    pub der: Arc<Blob>,
}

fn load(name: &str) -> Key {
    let path = format!(
        "{}/../wire/testdata/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let b = PemBundle::parse(&data).unwrap();
    let der = b.certs.first().unwrap().clone();
    Key {
        key: b.key,
        cert: CertInfo::parse(&der).unwrap(),
        der: Blob::new(der),
    }
}

pub struct Keys {
    pub sast: Key,
    pub sast2: Key,
    pub sast1024: Key,
    pub ccm: Key,
    pub tvs: Key,
    pub capf: Key,
    pub tftp_ec: Key,
    pub app: Key,
    pub device: Key,
    pub unknown: Key,
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        sast: load("sast"),
        sast2: load("sast2"),
        sast1024: load("sast1024"),
        ccm: load("ccm"),
        tvs: load("tvs"),
        capf: load("capf"),
        tftp_ec: load("tftp_ec"),
        app: load("app_server"),
        device: load("device"),
        unknown: load("unknown"),
    })
}

/// Builds and signs a trust list with `signer` over `records`.
pub fn tlv(
    name: &str,
    signer: &Key,
    records: &[(Role, &Key)],
    digest: Digest,
    signer_version: Option<(u8, u8)>,
) -> Arc<Blob> {
    let mut b = TrustListBuilder::new(Layout::Reference, name, 1_800_000_000)
        .digest(digest)
        .signer_version(signer_version);
    for (role, k) in records {
        b = b.cert(*role, &k.cert);
    }
    Blob::new(
        b.sign(signer.key.as_ref().unwrap(), &signer.cert)
            .unwrap()
            .raw()
            .to_vec(),
    )
}

/// The usual ITL of "cluster A": SAST + CCM+TFTP + TVS + CAPF, signed by `signer` (must be among
/// the records as SAST).
pub fn itl_by(signer: &Key, extra_sast: Option<&Key>) -> Arc<Blob> {
    let k = keys();
    let mut recs: Vec<(Role, &Key)> = vec![(Role::SAST, signer)];
    if let Some(e) = extra_sast {
        recs.push((Role::SAST, e));
    }
    recs.extend([
        (Role::CCM_TFTP, &k.ccm),
        (Role::TVS, &k.tvs),
        (Role::CAPF, &k.capf),
    ]);
    tlv("ITLFile.tlv", signer, &recs, Digest::Sha1, Some((1, 0)))
}

/// Cluster A's ITL signed by SAST.
pub fn itl_a() -> Arc<Blob> {
    itl_by(&keys().sast, None)
}

/// Rollback ITL (E5): only SAST + CAPF.
pub fn itl_rollback(signer: &Key) -> Arc<Blob> {
    tlv(
        "ITLFile.tlv",
        signer,
        &[(Role::SAST, signer), (Role::CAPF, &keys().capf)],
        Digest::Sha1,
        Some((1, 0)),
    )
}

/// A CTL with SAST + CCM+TFTP + CAPF.
pub fn ctl_by(signer: &Key) -> Arc<Blob> {
    let k = keys();
    tlv(
        "CTLFile.tlv",
        signer,
        &[
            (Role::SAST, signer),
            (Role::CCM_TFTP, &k.ccm),
            (Role::CAPF, &k.capf),
        ],
        Digest::Sha1,
        Some((1, 0)),
    )
}

pub fn config_xml(tvs_hosts: &[&str], secure: bool, load: &str) -> Vec<u8> {
    let mut s = String::from("<device><devicePool><callManagerGroup><members>");
    s.push_str("<member priority=\"0\"><callManager><processNodeName>cm1</processNodeName></callManager></member>");
    s.push_str("</members></callManagerGroup></devicePool>");
    s.push_str("<TVS><members>");
    for (i, h) in tvs_hosts.iter().enumerate() {
        s.push_str(&format!(
            "<member priority=\"{i}\"><port>2445</port><address>{h}</address></member>"
        ));
    }
    s.push_str("</members></TVS>");
    s.push_str(&format!("<loadInformation>{load}</loadInformation>"));
    s.push_str(&format!(
        "<deviceSecurityMode>{}</deviceSecurityMode><encrConfig>false</encrConfig></device>",
        if secure { 2 } else { 1 }
    ));
    s.into_bytes()
}

/// A signed config.
pub fn sgn_by(signer: &Key, xml: &[u8], digest: Digest) -> Arc<Blob> {
    let opts = SignOptions {
        filename: "SEP001122334455.cnf.xml.sgn",
        digest,
        timestamp: 1_800_000_000,
        layout: Layout::Reference,
    };
    Blob::new(
        sgn::sign(xml, &opts, signer.key.as_ref().unwrap(), &signer.cert)
            .unwrap()
            .encode(),
    )
}

pub fn default_config() -> Vec<u8> {
    config_xml(&["tvs1", "tvs2"], false, "load-2")
}

/// What a TVS member does.
#[derive(Clone)]
pub enum TvsMode {
    /// Answers from `db` (cert → roles), presenting `server_cert` in TLS.
    Db {
        server_cert: Arc<Blob>,
        db: Vec<(Arc<Blob>, Vec<Role>)>,
        ttl: u32,
    },
    /// Connection refused.
    Unreachable,
    /// Never answers (the phone times out).
    Silent,
}

/// The simulated network.
#[derive(Clone)]
pub struct Net {
    /// (server, file) → bytes. A file absent on a server → not found.
    pub files: HashMap<(String, FileName), Arc<Blob>>,
    /// TFTP/HTTP servers that never answer.
    pub down: HashSet<String>,
    /// HTTP answers 503 for everything (CUCM without the file) — default: HTTP serves the same.
    pub http_503: bool,
    /// HTTPS 6971 presents this certificate; `None` → TLS failure.
    pub https_cert: Option<Arc<Blob>>,
    /// TVS members by host.
    pub tvs: HashMap<String, TvsMode>,
    /// Certificate the CallManager presents (secure registration).
    pub cm_cert: Option<Arc<Blob>>,
    /// Per CallManager host (the first of the list asked answers): overrides `cm_cert`.
    pub cm_certs: HashMap<String, Arc<Blob>>,
    /// Every Register's CallManager list, in order.
    pub registers: std::cell::RefCell<Vec<Vec<String>>>,
    /// CallManagers that accept registrations.
    pub cms_up: bool,
}

impl Net {
    /// One TFTP server "tftp1" serving `files`, TVS members tvs1/tvs2 vouching from `db`.
    pub fn new(files: &[(FileName, Arc<Blob>)]) -> Net {
        let mut n = Net {
            files: HashMap::new(),
            down: HashSet::new(),
            http_503: false,
            https_cert: None,
            tvs: HashMap::new(),
            cm_cert: None,
            cm_certs: HashMap::new(),
            registers: Default::default(),
            cms_up: true,
        };
        for (f, b) in files {
            n.files.insert(("tftp1".into(), *f), Arc::clone(b));
        }
        n
    }

    pub fn serve(&mut self, server: &str, file: FileName, b: Arc<Blob>) {
        self.files.insert((server.into(), file), b);
    }

    pub fn remove(&mut self, server: &str, file: FileName) {
        self.files.remove(&(server.to_string(), file));
    }

    /// Both TVS members answer from `db` with the genuine TVS certificate.
    pub fn tvs_db(&mut self, db: Vec<(Arc<Blob>, Vec<Role>)>) {
        for h in ["tvs1", "tvs2"] {
            self.tvs.insert(
                h.into(),
                TvsMode::Db {
                    server_cert: Arc::clone(&keys().tvs.der),
                    db: db.clone(),
                    ttl: 86_400,
                },
            );
        }
    }

    pub fn tvs_all(&mut self, mode: TvsMode) {
        for h in ["tvs1", "tvs2"] {
            self.tvs.insert(h.into(), mode.clone());
        }
    }
}

fn tvs_answer(mode: &TvsMode, frame: &[u8]) -> Option<(Arc<Blob>, Vec<u8>)> {
    let TvsMode::Db {
        server_cert,
        db,
        ttl,
    } = mode
    else {
        return None;
    };
    let msg = Message::decode(frame, 65_535).ok()?;
    let req = msg.request().ok()?;
    let found = db.iter().find(|(der, _)| match &req {
        Request::Verify { certificate, .. } => der.bytes() == certificate.as_slice(),
        Request::Query { serial, .. } => {
            let info = CertInfo::parse(der.bytes()).unwrap();
            serial.as_deref() == Some(info.serial.as_slice())
        }
    });
    let resp = match found {
        Some((der, roles)) => Response {
            status: Status::Valid,
            certificate: Some(der.bytes().to_vec()),
            roles: roles.clone(),
            ttl: Some(*ttl),
        },
        None => Response::invalid(),
    };
    Some((
        Arc::clone(server_cert),
        Message::response_to(&msg, &resp).encode(),
    ))
}

/// A phone on a network, with everything it did recorded.
pub struct Run {
    pub phone: Phone,
    pub now: SimTime,
    pub actions: Vec<Action>,
    pub served: HashMap<u32, Arc<Blob>>,
}

pub fn env(knobs: Knobs) -> Arc<Env> {
    Env::new(knobs, CryptoMode::Memoized)
}

impl Run {
    pub fn new(model: &str, knobs: Knobs) -> Run {
        Run::with_env(model, env(knobs))
    }

    pub fn with_env(model: &str, env: Arc<Env>) -> Run {
        let model = Model::lookup(model).unwrap();
        Run::with_model(model, env)
    }

    pub fn with_model(model: Model, env: Arc<Env>) -> Run {
        let setup = PhoneSetup {
            mac: MAC,
            model,
            tftp: Arc::from(vec![Host::new("tftp1"), Host::new("tftp2")]),
            device_key: None,
            load: Some(Arc::from("load-1")),
        };
        Run {
            phone: Phone::new(env, setup),
            now: SimTime(0),
            actions: Vec::new(),
            served: HashMap::new(),
        }
    }

    /// Delivers `ev` and runs the network until the phone has nothing left to do (or 1 hour).
    pub fn run(&mut self, net: &Net, ev: Event) -> &mut Self {
        self.actions.clear();
        let horizon = self.now.plus_secs(3600);
        let mut queue = VecDeque::from([ev]);
        let mut out = Vec::new();
        let mut guard = 0;
        loop {
            while let Some(ev) = queue.pop_front() {
                guard += 1;
                assert!(guard < 100_000, "runaway");
                self.phone.handle(self.now, ev, &mut out);
                for a in out.drain(..) {
                    self.respond(net, &a, &mut queue);
                    self.actions.push(a);
                }
            }
            match self.phone.poll_timeout() {
                Some(t) if t <= horizon => {
                    self.now = self.now.max(t);
                    queue.push_back(Event::Timer);
                }
                _ => break,
            }
        }
        self
    }

    fn respond(&mut self, net: &Net, a: &Action, q: &mut VecDeque<Event>) {
        match a {
            Action::Fetch {
                req,
                server,
                transport,
                file,
                ..
            } => {
                let req = *req;
                if net.down.contains(&*server.0) {
                    return; // silence: the phone's timer decides
                }
                if *transport == Transport::Http6970 && net.http_503 {
                    q.push_back(Event::FileNotFound { req });
                    return;
                }
                let server_cert = if *transport == Transport::Https6971 {
                    match &net.https_cert {
                        Some(c) => Some(Arc::clone(c)),
                        None => {
                            q.push_back(Event::FetchFailed {
                                req,
                                why: itlsim_phone::event::FetchFailure::TlsFailed,
                            });
                            return;
                        }
                    }
                } else {
                    None
                };
                match net.files.get(&(server.0.to_string(), *file)) {
                    Some(b) => {
                        self.served.insert(req.0, Arc::clone(b));
                        q.push_back(Event::FileReceived {
                            req,
                            file: Arc::clone(b),
                            server_cert,
                        });
                    }
                    None => q.push_back(Event::FileNotFound { req }),
                }
            }
            Action::QueryTvs {
                req, host, frame, ..
            } => {
                let req = *req;
                match net.tvs.get(&*host.0) {
                    None | Some(TvsMode::Unreachable) => q.push_back(Event::TvsUnreachable { req }),
                    Some(TvsMode::Silent) => {}
                    Some(m) => match tvs_answer(m, frame) {
                        Some((server_cert, frame)) => q.push_back(Event::TvsAnswer {
                            req,
                            server_cert,
                            frame,
                        }),
                        None => q.push_back(Event::TvsUnreachable { req }),
                    },
                }
            }
            Action::Register { req, cms, .. } => {
                net.registers
                    .borrow_mut()
                    .push(cms.iter().map(|h| h.0.to_string()).collect());
                let cert = cms
                    .first()
                    .and_then(|h| net.cm_certs.get(&*h.0))
                    .cloned()
                    .or_else(|| net.cm_cert.clone());
                q.push_back(Event::RegisterResult {
                    req: *req,
                    ok: net.cms_up,
                    cm_cert: cert,
                })
            }
            Action::ReportItlHash { .. } | Action::Status(_) | Action::Record(_) => {}
        }
    }

    pub fn power_on(&mut self, net: &Net) -> &mut Self {
        self.run(net, Event::PowerOn)
    }

    pub fn user(&mut self, net: &Net, a: UserAction) -> &mut Self {
        self.run(net, Event::User(a))
    }

    pub fn outcomes(&self) -> Vec<Outcome> {
        self.actions
            .iter()
            .filter_map(|a| {
                if let Action::Record(o) = a {
                    Some(o.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn statuses(&self) -> Vec<StatusMsg> {
        self.actions
            .iter()
            .filter_map(|a| {
                if let Action::Status(s) = a {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn status_texts(&self) -> Vec<String> {
        let fam = self.phone.model().caps.family;
        self.statuses().iter().map(|s| s.text(fam, &MAC)).collect()
    }

    pub fn fetched(&self) -> Vec<(FileName, Transport, String)> {
        self.actions
            .iter()
            .filter_map(|a| {
                if let Action::Fetch {
                    file,
                    transport,
                    server,
                    ..
                } = a
                {
                    Some((*file, *transport, server.to_string()))
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn tvs_queries(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::QueryTvs { .. }))
            .count()
    }

    pub fn registered_with(&self) -> Option<(itlsim_phone::ConfigSource, bool)> {
        self.actions.iter().find_map(|a| {
            if let Action::Register { source, secure, .. } = a {
                Some((*source, *secure))
            } else {
                None
            }
        })
    }

    pub fn trace_rules(&self) -> Vec<&'static str> {
        self.phone.trace().iter().map(|t| t.rule.id()).collect()
    }

    pub fn trace_text(&self) -> String {
        self.phone
            .trace()
            .iter()
            .map(|t| format!("{t}\n"))
            .collect()
    }
}

/// The network of cluster A: ITL (SAST-signed), config signed by CCM, TVS vouching for its store.
pub fn cluster_a() -> Net {
    let k = keys();
    let mut n = Net::new(&[
        (FileName::ItlSep, itl_a()),
        (
            FileName::CfgSgn,
            sgn_by(&k.ccm, &default_config(), Digest::Sha1),
        ),
    ]);
    n.tvs_db(vec![
        (Arc::clone(&k.sast.der), vec![Role::SAST]),
        (Arc::clone(&k.ccm.der), vec![Role::SAST, Role::CCM_TFTP]),
    ]);
    n
}

/// A phone that booted once on cluster A (holds ITL A and the cached config).
pub fn booted(model: &str, knobs: Knobs) -> (Run, Net) {
    let net = cluster_a();
    let mut r = Run::new(model, knobs);
    r.power_on(&net);
    assert!(
        r.phone.registered(),
        "set-up boot failed:\n{}",
        r.trace_text()
    );
    (r, net)
}
