//! The phone: persistent state (§1.5), the provisioning cycle (§2), the trust rules (§3) applied
//! through [`crate::trust`], TVS (§4), outcomes and "locked" (§4.6–4.7), recovery (§9).

use std::sync::Arc;

use itlsim_wire::crypto::SigningKey;
use itlsim_wire::tvs::{Command, Message, Status};

use crate::config::{PhoneConfig, TvsMember};
use crate::event::{
    Action, Blob, ConfigSource, Event, FetchFailure, FileName, Host, ListKind, Mac, Outcome,
    RequestId, ResetKind, SimTime, Transport, TvsAsk, UserAction,
};
use crate::files::{Cert, DecodedList, DecodedSigned, Env, Identity, VerifiedList};
use crate::knobs::{LockedRegistration, TvsRoleCheck, TvsSelection};
use crate::model::{EraseKind, Family, Model};
use crate::status::{StatusLog, StatusMsg};
use crate::trace::{Rule, TraceEntry, Verdict};
use crate::trust::{self, Anchor, FileKind, Lookup, Reason, RoleSet, Store};

/// What a phone is built from.
#[derive(Debug, Clone)]
pub struct PhoneSetup {
    /// MAC address (`SEP<MAC>`).
    pub mac: Mac,
    /// Model and capability flags (§8).
    pub model: Model,
    /// TFTP servers from DHCP, in order (option 150 list, else option 66; §2.2).
    pub tftp: Arc<[Host]>,
    /// The phone's private key (MIC/LSC) for `.enc.sgn` (§1.4); `None` = cannot decrypt.
    pub device_key: Option<Arc<SigningKey>>,
    /// Firmware load running at power on.
    pub load: Option<Arc<str>>,
}

/// One cached TVS answer (§1.5 `tvs_cache`, §4.5).
#[derive(Debug, Clone)]
struct TvsCacheEntry {
    cert: Arc<Cert>,
    roles: RoleSet,
    expires: SimTime,
}

/// Most TVS cache entries kept (bounded; a phone rarely needs more than a handful).
const TVS_CACHE_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ctl(FileName),
    Itl(FileName),
    Cfg(FileName),
    Registering(RequestId),
    WaitRetry,
}

#[derive(Debug, Clone)]
struct Fetch {
    req: RequestId,
    file: FileName,
    transports: [Option<Transport>; 3],
    ti: usize,
    deadline: SimTime,
}

impl Fetch {
    fn transport(&self) -> Option<Transport> {
        self.transports.get(self.ti).copied().flatten()
    }
}

#[derive(Debug)]
struct Cycle {
    servers: Arc<[Host]>,
    si: usize,
    step: Step,
    fetch: Option<Fetch>,
    /// E4: the first trust-list rejection of this cycle.
    trust_rejected: Option<Reason>,
    cfg_rejected: Option<Reason>,
    cfg_accepted: bool,
    first_ctl: bool,
    itl_too_large: bool,
    ctl_attempts: u8,
    retry_at: SimTime,
    /// The registration in flight is a TLS one (T-CCM applies).
    reg_secure: bool,
    /// Which configuration the registration in flight uses.
    reg_source: ConfigSource,
    /// The CallManagers the registration in flight was sent to, in order (a secure one that
    /// fails T-CCM goes on with the rest, §2.4 step 7).
    reg_cms: Option<Arc<[Host]>>,
}

#[derive(Debug)]
enum Purpose {
    List {
        kind: FileKind,
        file: FileName,
        list: Arc<DecodedList>,
    },
    Cfg {
        file: FileName,
        signed: Arc<DecodedSigned>,
    },
    Https6971 {
        file: FileName,
        body: Arc<Blob>,
        der: Arc<Blob>,
    },
    Service {
        id: u32,
        der: Arc<Blob>,
    },
}

#[derive(Debug)]
struct TvsPending {
    purpose: Purpose,
    members: Arc<[TvsMember]>,
    start: usize,
    tried: usize,
    req: RequestId,
    deadline: SimTime,
    need: RoleSet,
    /// Query: the signer; Verify: the certificate identity (for traces).
    who: Arc<Identity>,
}

impl TvsPending {
    fn member_index(&self) -> usize {
        let n = self.members.len().max(1);
        (self.start + self.tried) % n
    }
}

/// One simulated phone. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct Phone {
    env: Arc<Env>,
    mac: Mac,
    model: Model,
    dhcp_tftp: Arc<[Host]>,
    device_key: Option<Arc<SigningKey>>,
    powered: bool,
    // flash (§1.5)
    ctl: Option<VerifiedList>,
    itl: Option<VerifiedList>,
    cached_config: Option<Arc<PhoneConfig>>,
    load: Option<Arc<str>>,
    alt_tftp: Option<Host>,
    status: StatusLog,
    // RAM
    registered: bool,
    locked: Option<Reason>,
    tvs_cache: Vec<TvsCacheEntry>,
    tvs_rr: u8,
    next_req: u32,
    cycle: Option<Box<Cycle>>,
    tvs: Option<Box<TvsPending>>,
    trace: Vec<TraceEntry>,
}

impl Phone {
    /// A phone, powered off, with empty flash.
    pub fn new(env: Arc<Env>, setup: PhoneSetup) -> Phone {
        Phone {
            env,
            mac: setup.mac,
            model: setup.model,
            dhcp_tftp: setup.tftp,
            device_key: setup.device_key,
            powered: false,
            ctl: None,
            itl: None,
            cached_config: None,
            load: setup.load,
            alt_tftp: None,
            status: StatusLog::default(),
            registered: false,
            locked: None,
            tvs_cache: Vec::new(),
            tvs_rr: 0,
            next_req: 0,
            cycle: None,
            tvs: None,
            trace: Vec::new(),
        }
    }

    /// Puts trust lists on the phone's flash as if installed earlier (for `phone check` and test
    /// set-ups). They must verify against their own signer record, like any first install.
    pub fn preload(
        &mut self,
        ctl: Option<&Arc<Blob>>,
        itl: Option<&Arc<Blob>>,
    ) -> Result<(), Reason> {
        if let Some(b) = ctl {
            let l = self.env.decode_list(b)?;
            self.ctl = Some(self.env.verify_list_self(&l)?);
        }
        if let Some(b) = itl {
            let l = self.env.decode_list(b)?;
            self.itl = Some(self.env.verify_list_self(&l)?);
        }
        Ok(())
    }

    /// Puts a configuration on flash as the cached (last accepted) one.
    pub fn preload_config(&mut self, xml: &[u8]) {
        self.cached_config = Some(self.env.config(xml));
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// MAC.
    pub fn mac(&self) -> &Mac {
        &self.mac
    }

    /// Installed CTL.
    pub fn ctl(&self) -> Option<&VerifiedList> {
        self.ctl.as_ref()
    }

    /// Installed ITL.
    pub fn itl(&self) -> Option<&VerifiedList> {
        self.itl.as_ref()
    }

    /// The cached configuration (config in effect).
    pub fn config(&self) -> Option<&Arc<PhoneConfig>> {
        self.cached_config.as_ref()
    }

    /// Registered with a CallManager.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// §4.7: locked, with the first rejection of the last completed cycle.
    pub fn locked(&self) -> Option<Reason> {
        self.locked
    }

    /// The status log (§10).
    pub fn status_log(&self) -> &StatusLog {
        &self.status
    }

    /// The decision trace of the current or last cycle.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Running firmware load.
    pub fn load(&self) -> Option<&Arc<str>> {
        self.load.as_ref()
    }

    /// True while a provisioning cycle runs.
    pub fn busy(&self) -> bool {
        self.cycle
            .as_ref()
            .is_some_and(|c| c.step != Step::WaitRetry)
    }

    /// Bytes this phone owns (struct + its own heap allocations; files shared by `Arc` are not
    /// counted — they are interned once per content).
    pub fn resident_bytes(&self) -> usize {
        std::mem::size_of::<Phone>()
            + self.status.heap_bytes()
            + self.tvs_cache.capacity() * std::mem::size_of::<TvsCacheEntry>()
            + self.trace.capacity() * std::mem::size_of::<TraceEntry>()
            + self
                .cycle
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Cycle>())
            + self
                .tvs
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<TvsPending>())
    }

    /// The next deadline, if any: deliver [`Event::Timer`] then.
    pub fn poll_timeout(&self) -> Option<SimTime> {
        let mut t: Option<SimTime> = None;
        let mut take = |d: SimTime| {
            if d.0 != u64::MAX {
                t = Some(t.map_or(d, |x| x.min(d)));
            }
        };
        if let Some(c) = &self.cycle {
            if let Some(f) = &c.fetch {
                take(f.deadline);
            }
            if c.step == Step::WaitRetry {
                take(c.retry_at);
            }
        }
        if let Some(p) = &self.tvs {
            take(p.deadline);
        }
        t
    }

    /// Feeds one event; actions are appended to `out` (not cleared).
    pub fn handle(&mut self, now: SimTime, event: Event, out: &mut Vec<Action>) {
        if !self.powered && !matches!(event, Event::PowerOn) {
            return;
        }
        match event {
            Event::PowerOn => {
                self.powered = true;
                self.reboot_ram();
                self.start_cycle(now, out);
            }
            Event::PowerOff => {
                self.powered = false;
                self.reboot_ram();
            }
            Event::Reset(kind) => {
                if kind == ResetKind::Reset {
                    self.reboot_ram();
                } else {
                    self.tvs = None;
                    self.registered = false;
                }
                self.start_cycle(now, out);
            }
            Event::FileReceived {
                req,
                file,
                server_cert,
            } => self.on_file(now, req, file, server_cert, out),
            Event::FileNotFound { req } => self.on_fetch_error(now, req, None, out),
            Event::FetchFailed { req, why } => self.on_fetch_error(now, req, Some(why), out),
            Event::TvsAnswer {
                req,
                server_cert,
                frame,
            } => self.on_tvs_answer(now, req, &server_cert, &frame, out),
            Event::TvsUnreachable { req } => {
                self.on_tvs_member_error(now, req, Reason::TvsUnreachable, out)
            }
            Event::TvsTlsFailed { req } => {
                self.on_tvs_member_error(now, req, Reason::TvsTlsFailed, out)
            }
            Event::RegisterResult { req, ok, cm_cert } => {
                self.on_register_result(now, req, ok, cm_cert, out)
            }
            Event::HttpsService { id, cert } => self.on_service(now, id, cert, out),
            Event::Timer => self.on_timer(now, out),
            Event::User(a) => self.on_user(now, a, out),
        }
    }

    // ------------------------------------------------------------------ helpers

    fn store(&self) -> Store<'_> {
        Store {
            ctl: self.ctl.as_ref(),
            itl: self.itl.as_ref(),
        }
    }

    fn next_req(&mut self) -> RequestId {
        self.next_req = self.next_req.wrapping_add(1);
        RequestId(self.next_req)
    }

    fn reboot_ram(&mut self) {
        self.cycle = None;
        self.tvs = None;
        self.registered = false;
        if !self.env.knobs.tvs_cache_persistent {
            self.tvs_cache = Vec::new();
        }
    }

    fn note(
        &mut self,
        now: SimTime,
        rule: Rule,
        file: Option<FileName>,
        verdict: Verdict,
        roles: RoleSet,
        who: Option<&Arc<Identity>>,
    ) {
        if !self.env.knobs.trace {
            return;
        }
        if self.trace.len() >= 256 {
            return; // bounded even under pathological event streams
        }
        self.trace.push(TraceEntry {
            at: now,
            rule,
            file,
            verdict,
            roles,
            who: who.cloned(),
        });
    }

    fn status(&mut self, now: SimTime, msg: StatusMsg, out: &mut Vec<Action>) {
        self.status.push(now, msg);
        out.push(Action::Status(msg));
    }

    fn unix_now(&self, now: SimTime) -> i64 {
        self.env
            .knobs
            .epoch_unix_s
            .saturating_add(i64::try_from(now.0 / 1000).unwrap_or(i64::MAX))
    }

    /// TFTP servers in effect (§2.2): the alternate TFTP set by hand overrides DHCP.
    fn tftp_servers(&self) -> Arc<[Host]> {
        match &self.alt_tftp {
            Some(h) => Arc::from(vec![h.clone()]),
            None => Arc::clone(&self.dhcp_tftp),
        }
    }

    // ------------------------------------------------------------------ cycle

    fn start_cycle(&mut self, now: SimTime, out: &mut Vec<Action>) {
        self.trace.clear();
        self.tvs = None;
        let servers = self.tftp_servers();
        self.note(
            now,
            Rule::Cycle,
            None,
            Verdict::Note(Reason::Requested),
            RoleSet::EMPTY,
            None,
        );
        self.cycle = Some(Box::new(Cycle {
            servers,
            si: 0,
            step: Step::WaitRetry,
            fetch: None,
            trust_rejected: None,
            cfg_rejected: None,
            cfg_accepted: false,
            first_ctl: false,
            itl_too_large: false,
            ctl_attempts: 0,
            retry_at: now,
            reg_secure: false,
            reg_source: ConfigSource::Cached,
            reg_cms: None,
        }));
        self.begin_on_server(now, out);
    }

    /// (Re)starts the sequence at GET_CTL on the current server (§2.5 SELECT_TFTP).
    fn begin_on_server(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(c) = self.cycle.as_mut() else { return };
        c.trust_rejected = None;
        c.cfg_rejected = None;
        c.cfg_accepted = false;
        c.itl_too_large = false;
        c.first_ctl = false;
        if c.si >= c.servers.len() {
            self.provision_failed(now, out);
            return;
        }
        let caps = self.model.caps;
        let first = if caps.has_ctl {
            Step::Ctl(FileName::CtlSep)
        } else if caps.has_itl {
            Step::Itl(FileName::ItlSep)
        } else {
            Step::Cfg(self.choose_cfg())
        };
        self.go(now, first, out);
    }

    fn provision_failed(&mut self, now: SimTime, out: &mut Vec<Action>) {
        self.note(
            now,
            Rule::TftpSelect,
            None,
            Verdict::Note(Reason::NoServerLeft),
            RoleSet::EMPTY,
            None,
        );
        // E22: network failure / TFTP down shows "Trust List Update Failed" too.
        if self.model.caps.has_ctl || self.model.caps.has_itl {
            self.status(now, StatusMsg::TrustListUpdateFailed, out);
        }
        out.push(Action::Record(Outcome::ProvisioningFailed));
        let retry = now.plus_secs(u64::from(self.env.knobs.provision_retry_s));
        if let Some(c) = self.cycle.as_mut() {
            c.step = Step::WaitRetry;
            c.fetch = None;
            c.retry_at = retry;
        }
    }

    /// §2.4 step 3/3': which configuration name to ask for.
    fn choose_cfg(&self) -> FileName {
        if trust::wants_signed_config(self.store(), &self.model.caps) {
            if self.cached_config.as_ref().is_some_and(|c| c.encrypted) {
                FileName::CfgEncSgn
            } else {
                FileName::CfgSgn
            }
        } else {
            FileName::CfgPlain
        }
    }

    fn transports_for(&self, file: FileName) -> [Option<Transport>; 3] {
        let caps = &self.model.caps;
        // §2.3: HTTPS 6971 for the configuration only, when the ITL signer version is ≥ 1.1.
        let https = file.is_config()
            && caps.https6971
            && self
                .itl
                .as_ref()
                .and_then(|i| i.list().signer_version())
                .is_some_and(|v| v >= (1, 1));
        let mut t = [None; 3];
        let mut i = 0;
        for (on, tr) in [
            (https, Transport::Https6971),
            (caps.http6970, Transport::Http6970),
            (true, Transport::Tftp),
        ] {
            if on && let Some(slot) = t.get_mut(i) {
                *slot = Some(tr);
                i += 1;
            }
        }
        t
    }

    fn go(&mut self, now: SimTime, step: Step, out: &mut Vec<Action>) {
        let file = match step {
            Step::Ctl(f) | Step::Itl(f) | Step::Cfg(f) => f,
            Step::Registering(_) | Step::WaitRetry => {
                if let Some(c) = self.cycle.as_mut() {
                    c.step = step;
                }
                return;
            }
        };
        let transports = self.transports_for(file);
        if let Some(c) = self.cycle.as_mut() {
            c.step = step;
            c.fetch = Some(Fetch {
                req: RequestId(0),
                file,
                transports,
                ti: 0,
                deadline: now,
            });
        }
        self.send_fetch(now, out);
    }

    fn send_fetch(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let req = self.next_req();
        let mac = self.mac;
        let tftp_ms = self.env.knobs.tftp_budget_ms();
        let http_ms = u64::from(self.env.knobs.http_timeout_s).saturating_mul(1000);
        let Some(c) = self.cycle.as_mut() else { return };
        let Some(server) = c.servers.get(c.si).cloned() else {
            return;
        };
        let Some(f) = c.fetch.as_mut() else { return };
        let Some(transport) = f.transport() else {
            return;
        };
        f.req = req;
        f.deadline = now.plus_ms(if transport == Transport::Tftp {
            tftp_ms
        } else {
            http_ms
        });
        let file = f.file;
        out.push(Action::Fetch {
            req,
            server,
            transport,
            file,
            name: file.render(&mac),
        });
    }

    /// The transport of the fetch in progress, if any.
    fn current_transport(&self) -> Option<Transport> {
        self.cycle
            .as_ref()
            .and_then(|c| c.fetch.as_ref())
            .and_then(Fetch::transport)
    }

    fn current_fetch(&self, req: RequestId) -> Option<FileName> {
        let c = self.cycle.as_ref()?;
        let f = c.fetch.as_ref()?;
        (f.req == req && self.tvs.is_none()).then_some(f.file)
    }

    fn on_fetch_error(
        &mut self,
        now: SimTime,
        req: RequestId,
        why: Option<FetchFailure>,
        out: &mut Vec<Action>,
    ) {
        let Some(file) = self.current_fetch(req) else {
            return;
        };
        let transport = self.current_transport();
        match (transport, why) {
            // §2.3 / §10: HTTP error or refusal → next transport at once, same name.
            (Some(Transport::Http6970 | Transport::Https6971), _) => {
                self.next_transport(now, file, Reason::HttpFailed, out)
            }
            // TFTP: "File not found".
            (Some(Transport::Tftp), None) => self.file_missing(now, file, out),
            // TFTP refused/timed out: the server counts as down (§2.5) [I].
            (Some(Transport::Tftp), Some(_)) => self.server_down(now, out),
            (None, _) => {}
        }
    }

    fn next_transport(&mut self, now: SimTime, file: FileName, why: Reason, out: &mut Vec<Action>) {
        self.note(
            now,
            Rule::Transport,
            Some(file),
            Verdict::Note(why),
            RoleSet::EMPTY,
            None,
        );
        let more = match self.cycle.as_mut().and_then(|c| c.fetch.as_mut()) {
            Some(f) => {
                f.ti += 1;
                f.transport().is_some()
            }
            None => false,
        };
        if more {
            self.send_fetch(now, out);
        } else {
            self.file_missing(now, file, out);
        }
    }

    fn server_down(&mut self, now: SimTime, out: &mut Vec<Action>) {
        self.note(
            now,
            Rule::TftpSelect,
            None,
            Verdict::Note(Reason::ServerDown),
            RoleSet::EMPTY,
            None,
        );
        self.status(now, StatusMsg::TftpTimeout, out);
        if let Some(c) = self.cycle.as_mut() {
            c.si += 1;
            c.fetch = None;
        }
        self.begin_on_server(now, out);
    }

    fn on_timer(&mut self, now: SimTime, out: &mut Vec<Action>) {
        if let Some(p) = &self.tvs
            && now >= p.deadline
        {
            let req = p.req;
            self.on_tvs_member_error(now, req, Reason::TvsTimeout, out);
        }
        let Some(c) = self.cycle.as_ref() else { return };
        if c.step == Step::WaitRetry {
            if now >= c.retry_at {
                self.start_cycle(now, out);
            }
            return;
        }
        if self.tvs.is_some() {
            return;
        }
        if let Some(f) = &c.fetch
            && now >= f.deadline
        {
            let file = f.file;
            match f.transport() {
                Some(Transport::Tftp) => self.server_down(now, out),
                Some(_) => self.next_transport(now, file, Reason::Timeout, out),
                None => {}
            }
        }
    }

    /// §2.4 "If absent" column.
    fn file_missing(&mut self, now: SimTime, file: FileName, out: &mut Vec<Action>) {
        self.note(
            now,
            Rule::Request,
            Some(file),
            Verdict::Note(Reason::NotFound),
            RoleSet::EMPTY,
            None,
        );
        let caps = self.model.caps;
        match file {
            FileName::CtlSep if caps.ctlfile_fallback => {
                self.go(now, Step::Ctl(FileName::CtlFile), out)
            }
            FileName::CtlSep | FileName::CtlFile => {
                // Keep any CTL; informational status when the phone has none (§2.4 step 1, §4.6).
                if self.ctl.is_none() {
                    self.status(now, StatusMsg::CtlNotFound, out);
                }
                out.push(Action::Record(Outcome::TrustListNotFound {
                    list: ListKind::Ctl,
                }));
                self.after_ctl(now, out);
            }
            FileName::ItlSep => self.go(now, Step::Itl(FileName::ItlFile), out),
            FileName::ItlFile => {
                // K11: keep the existing ITL. No list at all → "No Trust List installed" (§2.4 2b).
                if self.itl.is_none() && self.ctl.is_none() {
                    self.status(now, StatusMsg::NoTrustList, out);
                }
                out.push(Action::Record(Outcome::TrustListNotFound {
                    list: ListKind::Itl,
                }));
                self.after_itl(now, out);
            }
            // §2.4 step 3: .enc.sgn missing → .sgn [I]; SEP file missing → XMLDefault (autoreg).
            FileName::CfgEncSgn => self.go(now, Step::Cfg(FileName::CfgSgn), out),
            FileName::CfgSgn => self.go(now, Step::Cfg(FileName::DefaultSgn), out),
            FileName::CfgPlain => self.go(now, Step::Cfg(FileName::DefaultPlain), out),
            FileName::DefaultSgn | FileName::DefaultPlain => {
                self.status(now, StatusMsg::ConfigNotFound, out);
                out.push(Action::Record(Outcome::ConfigNotFound));
                self.register_step(now, out);
            }
        }
    }

    fn after_ctl(&mut self, now: SimTime, out: &mut Vec<Action>) {
        if self.model.caps.has_itl {
            self.go(now, Step::Itl(FileName::ItlSep), out);
        } else {
            self.after_itl(now, out);
        }
    }

    fn after_itl(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let f = self.choose_cfg();
        self.note(
            now,
            Rule::Request,
            Some(f),
            Verdict::Note(Reason::Requested),
            RoleSet::EMPTY,
            None,
        );
        self.go(now, Step::Cfg(f), out);
    }

    // ------------------------------------------------------------------ files

    fn on_file(
        &mut self,
        now: SimTime,
        req: RequestId,
        blob: Arc<Blob>,
        server_cert: Option<Arc<Blob>>,
        out: &mut Vec<Action>,
    ) {
        let Some(file) = self.current_fetch(req) else {
            return;
        };
        let transport = self.current_transport();
        if let Some(c) = self.cycle.as_mut()
            && let Some(f) = c.fetch.as_mut()
        {
            f.deadline = SimTime(u64::MAX); // answered; no transport timeout while we decide
        }
        if file.is_trust_list() {
            self.on_trust_list(now, file, &blob, out);
        } else if transport == Some(Transport::Https6971) {
            self.on_https_config(now, file, blob, server_cert, out);
        } else {
            self.on_config(now, file, &blob, out);
        }
    }

    fn on_trust_list(
        &mut self,
        now: SimTime,
        file: FileName,
        blob: &Arc<Blob>,
        out: &mut Vec<Action>,
    ) {
        let kind = if file.is_ctl() {
            FileKind::Ctl
        } else {
            FileKind::Itl
        };
        let rule = if kind == FileKind::Ctl {
            Rule::TCtl
        } else {
            Rule::TItl
        };
        let list = match self.env.decode_list(blob) {
            Ok(l) => l,
            Err(r) => return self.finish_list(now, kind, file, None, Err(r), rule, out),
        };
        let held = if kind == FileKind::Ctl {
            self.ctl.as_ref()
        } else {
            self.itl.as_ref()
        };
        if held.is_some_and(|h| h.same_file(&list)) {
            // Same bytes as installed: nothing to verify or install [I] (§4.6: status only on change).
            let who = Arc::clone(list.signer());
            self.note(
                now,
                rule,
                Some(file),
                Verdict::Note(Reason::Unchanged),
                RoleSet::EMPTY,
                Some(&who),
            );
            let lk = if kind == FileKind::Ctl {
                ListKind::Ctl
            } else {
                ListKind::Itl
            };
            out.push(Action::Record(Outcome::TrustListUnchanged { list: lk }));
            return self.after_list(now, kind, out);
        }
        let (rule, lookup) = trust::evaluate_trust_list(
            kind,
            &list,
            self.store(),
            &self.model.caps,
            &self.env.knobs,
        );
        let result = match lookup {
            Lookup::Reject(r) => Err(r),
            Lookup::SelfSigned(anchor) => self.env.verify_list_self(&list).map(|v| (v, anchor)),
            Lookup::Record { rec, anchor } => {
                if self.env.knobs.check_expiry && !rec.valid_at(self.unix_now(now)) {
                    Err(Reason::CertExpired)
                } else {
                    match rec.key() {
                        Some(k) => self.env.verify_list_with(&list, k).map(|v| (v, anchor)),
                        None => Err(Reason::SignerKeyUnusable),
                    }
                }
            }
            Lookup::Tvs => {
                // F-CTL (no TVS) and phones without TVS: reject at once (§3.2 step 3, §4.1).
                let signer = Arc::clone(list.signer());
                if let Some(hit) = self.tvs_cache_hit(now, &signer, trust::need(kind)) {
                    self.note(
                        now,
                        Rule::TvsAnswer,
                        Some(file),
                        Verdict::Accept(Anchor::TvsCache),
                        hit.1,
                        Some(&signer),
                    );
                    self.env
                        .verify_list_with(&list, hit.0.key())
                        .map(|v| (v, Anchor::TvsCache))
                } else {
                    let purpose = Purpose::List {
                        kind,
                        file,
                        list: Arc::clone(&list),
                    };
                    return self.start_tvs(now, purpose, signer, trust::need(kind), out);
                }
            }
        };
        self.finish_list(now, kind, file, Some(&list), result, rule, out);
    }

    #[allow(clippy::too_many_arguments)] // one call site per outcome path; a struct would not help
    fn finish_list(
        &mut self,
        now: SimTime,
        kind: FileKind,
        file: FileName,
        list: Option<&Arc<DecodedList>>,
        result: Result<(VerifiedList, Anchor), Reason>,
        rule: Rule,
        out: &mut Vec<Action>,
    ) {
        let lk = if kind == FileKind::Ctl {
            ListKind::Ctl
        } else {
            ListKind::Itl
        };
        let who = list.map(|l| Arc::clone(l.signer()));
        match result {
            Ok((verified, anchor)) => {
                let roles = list
                    .and_then(|l| {
                        trust::find_signer(l, l.signer(), RoleSet(u32::MAX))
                            .map(|r| RoleSet::of(r.role))
                    })
                    .unwrap_or_default();
                self.note(
                    now,
                    rule,
                    Some(file),
                    Verdict::Accept(anchor),
                    roles,
                    who.as_ref(),
                );
                // §3.3: replacement is total.
                let replaced = match kind {
                    FileKind::Ctl => self.ctl.replace(verified).is_some(),
                    _ => self.itl.replace(verified).is_some(),
                };
                let first_ctl = self.cycle.as_ref().is_some_and(|c| c.first_ctl);
                let msg = match (kind, replaced) {
                    (_, true) => StatusMsg::TrustListUpdated,
                    (FileKind::Ctl, false) => StatusMsg::CtlInstalled,
                    (_, false) if first_ctl => StatusMsg::CtlAndItlInstalled,
                    (_, false) => StatusMsg::ItlInstalled,
                };
                if kind == FileKind::Ctl
                    && !replaced
                    && let Some(c) = self.cycle.as_mut()
                {
                    c.first_ctl = true;
                }
                self.status(now, msg, out);
                out.push(Action::Record(Outcome::TrustListInstalled {
                    list: lk,
                    via: anchor,
                    replaced,
                }));
            }
            Err(reason) => {
                self.note(
                    now,
                    rule,
                    Some(file),
                    Verdict::Reject(reason),
                    RoleSet::EMPTY,
                    who.as_ref(),
                );
                if let Some(c) = self.cycle.as_mut() {
                    c.trust_rejected.get_or_insert(reason);
                    if reason == Reason::ItlTooLarge {
                        c.itl_too_large = true;
                    }
                }
                // §4.6/E22: a CTL reject shows "CTL update failed" where the family has it.
                let msg = if kind == FileKind::Ctl {
                    StatusMsg::CtlUpdateFailed
                } else {
                    StatusMsg::TrustListUpdateFailed
                };
                self.status(now, msg, out);
                out.push(Action::Record(Outcome::TrustListRejected {
                    list: lk,
                    reason,
                }));
            }
        }
        self.after_list(now, kind, out);
    }

    fn after_list(&mut self, now: SimTime, kind: FileKind, out: &mut Vec<Action>) {
        if kind == FileKind::Ctl {
            self.after_ctl(now, out)
        } else {
            self.after_itl(now, out)
        }
    }

    fn frozen(&self) -> Option<Reason> {
        self.cycle.as_ref().and_then(|c| c.trust_rejected)
    }

    fn on_config(&mut self, now: SimTime, file: FileName, blob: &Arc<Blob>, out: &mut Vec<Action>) {
        // E4: a rejected trust list freezes the cycle: configs rejected without evaluation.
        if self.frozen().is_some() {
            self.note(
                now,
                Rule::E4,
                Some(file),
                Verdict::Reject(Reason::CycleFrozen),
                RoleSet::EMPTY,
                None,
            );
            return self.finish_config(now, file, Err(Reason::CycleFrozen), None, out);
        }
        match file {
            FileName::CfgPlain | FileName::DefaultPlain => {
                // §2.4 3': requested unsigned because no TFTP role is held; nothing to verify.
                let cfg = self.env.config(blob.bytes());
                self.finish_config(now, file, Ok((cfg, Anchor::Unsigned)), None, out);
            }
            _ => {
                let signed = match self.env.decode_signed(blob, file == FileName::CfgEncSgn) {
                    Ok(s) => s,
                    Err(r) => return self.finish_config(now, file, Err(r), None, out),
                };
                self.evaluate_signed(now, file, signed, out);
            }
        }
    }

    fn evaluate_signed(
        &mut self,
        now: SimTime,
        file: FileName,
        signed: Arc<DecodedSigned>,
        out: &mut Vec<Action>,
    ) {
        let who = Arc::clone(signed.signer());
        let (rule, lookup) = trust::evaluate_config(
            &who,
            signed.digest(),
            signed.sig_bits(),
            self.store(),
            &self.model.caps,
        );
        let key_dev = self.device_key.clone();
        let result = match lookup {
            Lookup::Reject(r) => Err(r),
            Lookup::SelfSigned(_) => Err(Reason::SignerUnknown),
            Lookup::Record { rec, anchor } => {
                if self.env.knobs.check_expiry && !rec.valid_at(self.unix_now(now)) {
                    Err(Reason::CertExpired)
                } else {
                    match rec.key() {
                        Some(k) => self
                            .env
                            .verify_signed_with(&signed, k, key_dev.as_deref())
                            .map(|p| (p, anchor)),
                        None => Err(Reason::SignerKeyUnusable),
                    }
                }
            }
            Lookup::Tvs => {
                if let Some(hit) = self.tvs_cache_hit(now, &who, RoleSet::CONFIG_SIGNERS) {
                    self.note(
                        now,
                        Rule::TvsAnswer,
                        Some(file),
                        Verdict::Accept(Anchor::TvsCache),
                        hit.1,
                        Some(&who),
                    );
                    self.env
                        .verify_signed_with(&signed, hit.0.key(), key_dev.as_deref())
                        .map(|p| (p, Anchor::TvsCache))
                } else {
                    let purpose = Purpose::Cfg {
                        file,
                        signed: Arc::clone(&signed),
                    };
                    return self.start_tvs(now, purpose, who, RoleSet::CONFIG_SIGNERS, out);
                }
            }
        };
        let result = result.map(|(p, a)| (self.env.config(p.bytes()), a));
        match &result {
            Ok((_, a)) => self.note(
                now,
                rule,
                Some(file),
                Verdict::Accept(*a),
                RoleSet::EMPTY,
                Some(&who),
            ),
            Err(r) => self.note(
                now,
                rule,
                Some(file),
                Verdict::Reject(*r),
                RoleSet::EMPTY,
                Some(&who),
            ),
        }
        self.finish_config(now, file, result, Some(&who), out);
    }

    fn finish_config(
        &mut self,
        now: SimTime,
        file: FileName,
        result: Result<(Arc<PhoneConfig>, Anchor), Reason>,
        _who: Option<&Arc<Identity>>,
        out: &mut Vec<Action>,
    ) {
        match result {
            Ok((cfg, via)) => {
                if let Some(c) = self.cycle.as_mut() {
                    c.cfg_accepted = true;
                }
                // §2.4 step 5: firmware follows an accepted config only (§4.7.4).
                if let Some(load) = cfg.load.clone()
                    && self.load.as_deref() != Some(&*load)
                {
                    self.note(
                        now,
                        Rule::Firmware,
                        Some(file),
                        Verdict::Note(Reason::Requested),
                        RoleSet::EMPTY,
                        None,
                    );
                    self.load = Some(Arc::clone(&load));
                    out.push(Action::Record(Outcome::FirmwareChange { load }));
                }
                self.cached_config = Some(cfg);
                out.push(Action::Record(Outcome::ConfigAccepted { file, via }));
            }
            Err(reason) => {
                if let Some(c) = self.cycle.as_mut() {
                    c.cfg_rejected.get_or_insert(reason);
                }
                // §2.4 step 3: reject → auth-fail status per family; keep the cached config.
                self.status(now, StatusMsg::ConfigAuthFail(file), out);
                out.push(Action::Record(Outcome::ConfigRejected { file, reason }));
            }
        }
        self.register_step(now, out);
    }

    /// §1.4 / §2.3: configuration over HTTPS 6971. The server certificate must be EC and a TFTP
    /// record of TS, or vouched for by TVS; otherwise fall back to 6970/TFTP (E13).
    fn on_https_config(
        &mut self,
        now: SimTime,
        file: FileName,
        body: Arc<Blob>,
        server_cert: Option<Arc<Blob>>,
        out: &mut Vec<Action>,
    ) {
        let Some(der) = server_cert else {
            return self.next_transport(now, file, Reason::ServerCertUntrusted, out);
        };
        let cert = match self.env.cert(&der) {
            Ok(c) => c,
            Err(_) => return self.next_transport(now, file, Reason::ServerCertUntrusted, out),
        };
        let who = Arc::clone(cert.identity());
        if !cert.is_ec() || !self.model.caps.ecdsa {
            self.note(
                now,
                Rule::E13,
                Some(file),
                Verdict::Reject(Reason::ServerCertNotEc),
                RoleSet::EMPTY,
                Some(&who),
            );
            return self.next_transport(now, file, Reason::ServerCertNotEc, out);
        }
        if let Some(anchor) = trust::https_local(self.store(), &cert, RoleSet::CONFIG_SIGNERS) {
            self.note(
                now,
                Rule::THttps,
                Some(file),
                Verdict::Accept(anchor),
                RoleSet::EMPTY,
                Some(&who),
            );
            return self.https_body(now, file, &body, out);
        }
        if let Some((_, roles)) = self.tvs_cache_cert(now, &cert, RoleSet::CONFIG_SIGNERS) {
            self.note(
                now,
                Rule::THttps,
                Some(file),
                Verdict::Accept(Anchor::TvsCache),
                roles,
                Some(&who),
            );
            return self.https_body(now, file, &body, out);
        }
        let purpose = Purpose::Https6971 { file, body, der };
        self.start_tvs(now, purpose, who, RoleSet::CONFIG_SIGNERS, out);
    }

    fn https_body(
        &mut self,
        now: SimTime,
        file: FileName,
        body: &Arc<Blob>,
        out: &mut Vec<Action>,
    ) {
        if self.frozen().is_some() {
            self.note(
                now,
                Rule::E4,
                Some(file),
                Verdict::Reject(Reason::CycleFrozen),
                RoleSet::EMPTY,
                None,
            );
            return self.finish_config(now, file, Err(Reason::CycleFrozen), None, out);
        }
        // A signed body is still checked with T-CFG; an unsigned one is accepted over the
        // authenticated channel (§1.4, S8).
        match self.env.decode_signed(body, file == FileName::CfgEncSgn) {
            Ok(signed) => self.evaluate_signed(now, file, signed, out),
            Err(_) => {
                let cfg = self.env.config(body.bytes());
                self.note(
                    now,
                    Rule::THttps,
                    Some(file),
                    Verdict::Accept(Anchor::HttpsChannel),
                    RoleSet::EMPTY,
                    None,
                );
                self.finish_config(now, file, Ok((cfg, Anchor::HttpsChannel)), None, out);
            }
        }
    }

    // ------------------------------------------------------------------ register

    fn register_step(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(c) = self.cycle.as_ref() else { return };
        let (trust_rej, cfg_rej, accepted, too_large, attempts) = (
            c.trust_rejected,
            c.cfg_rejected,
            c.cfg_accepted,
            c.itl_too_large,
            c.ctl_attempts,
        );
        let server = c.servers.get(c.si).cloned();
        let locked = trust_rej.or(cfg_rej);
        self.locked = locked;
        if let Some(reason) = locked {
            self.note(
                now,
                Rule::Locked,
                None,
                Verdict::Reject(reason),
                RoleSet::EMPTY,
                None,
            );
            out.push(Action::Record(Outcome::Locked { reason }));
        }
        // §1.3 / E10: an oversized ITL cannot be loaded and registration fails.
        if too_large {
            return self.registration_failed(now, Rule::E10, Reason::ItlTooLarge, out);
        }
        // §2.4: a secure profile without a CTL tries the file 4 times, then gives up.
        let secure = self.cached_config.as_ref().is_some_and(|c| c.secure());
        if secure && self.ctl.is_none() && self.model.caps.has_ctl {
            if attempts.saturating_add(1) < self.env.knobs.secure_ctl_attempts {
                self.note(
                    now,
                    Rule::SecureNoCtl,
                    None,
                    Verdict::Note(Reason::SecureNoCtl),
                    RoleSet::EMPTY,
                    None,
                );
                if let Some(c) = self.cycle.as_mut() {
                    c.ctl_attempts = attempts.saturating_add(1);
                }
                return self.go(now, Step::Ctl(FileName::CtlSep), out);
            }
            return self.registration_failed(now, Rule::SecureNoCtl, Reason::SecureNoCtl, out);
        }
        let (cms, source, secure) = if locked.is_some() {
            match self.env.knobs.locked_phone_registration {
                LockedRegistration::CachedCms => match &self.cached_config {
                    Some(cfg) => (Arc::clone(&cfg.cms), ConfigSource::Cached, cfg.secure()),
                    None => {
                        return self.registration_failed(
                            now,
                            Rule::E6,
                            Reason::NoCachedConfig,
                            out,
                        );
                    }
                },
                LockedRegistration::TftpServer => match server {
                    Some(s) => (Arc::from(vec![s]), ConfigSource::TftpServer, false),
                    None => {
                        return self.registration_failed(
                            now,
                            Rule::E6,
                            Reason::NoCachedConfig,
                            out,
                        );
                    }
                },
                LockedRegistration::None => {
                    return self.registration_failed(
                        now,
                        Rule::E6,
                        Reason::LockedNoRegistration,
                        out,
                    );
                }
            }
        } else {
            match &self.cached_config {
                Some(cfg) => (
                    Arc::clone(&cfg.cms),
                    if accepted {
                        ConfigSource::New
                    } else {
                        ConfigSource::Cached
                    },
                    cfg.secure(),
                ),
                None => {
                    return self.registration_failed(now, Rule::Register, Reason::NoConfig, out);
                }
            }
        };
        if cms.is_empty() {
            return self.registration_failed(now, Rule::Register, Reason::NoCachedConfig, out);
        }
        let req = self.next_req();
        let rule = if locked.is_some() {
            Rule::E6
        } else {
            Rule::Register
        };
        self.note(
            now,
            rule,
            None,
            Verdict::Note(Reason::Requested),
            RoleSet::EMPTY,
            None,
        );
        self.send_register(req, cms, secure, source, out);
    }

    /// Asks the driver to register with `cms` (in order) and waits for the answer.
    fn send_register(
        &mut self,
        req: RequestId,
        cms: Arc<[Host]>,
        secure: bool,
        source: ConfigSource,
        out: &mut Vec<Action>,
    ) {
        if let Some(c) = self.cycle.as_mut() {
            c.step = Step::Registering(req);
            c.fetch = None;
            c.reg_secure = secure;
            c.reg_source = source;
            c.reg_cms = Some(Arc::clone(&cms));
        }
        out.push(Action::Register {
            req,
            cms,
            secure,
            source,
        });
    }

    fn registration_failed(
        &mut self,
        now: SimTime,
        rule: Rule,
        reason: Reason,
        out: &mut Vec<Action>,
    ) {
        self.note(
            now,
            rule,
            None,
            Verdict::Reject(reason),
            RoleSet::EMPTY,
            None,
        );
        self.registered = false;
        self.status(now, StatusMsg::RegistrationFailed, out);
        out.push(Action::Record(Outcome::RegistrationFailed { reason }));
        self.end_cycle();
    }

    fn end_cycle(&mut self) {
        self.cycle = None;
        self.trace.shrink_to_fit();
    }

    fn on_register_result(
        &mut self,
        now: SimTime,
        req: RequestId,
        ok: bool,
        cm_cert: Option<Arc<Blob>>,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.cycle.as_ref() else { return };
        if c.step != Step::Registering(req) {
            return;
        }
        let (secure, source) = (c.reg_secure, c.reg_source);
        if !ok {
            return self.registration_failed(now, Rule::Register, Reason::CmRefused, out);
        }
        if secure {
            // T-CCM (§3.8, E14).
            let cert = cm_cert.and_then(|d| self.env.cert(&d).ok());
            let anchor = cert
                .as_ref()
                .and_then(|c| trust::ccm_trusted(self.store(), c));
            let who = cert.as_ref().map(|c| Arc::clone(c.identity()));
            match anchor {
                Some(a) => self.note(
                    now,
                    Rule::TCcm,
                    None,
                    Verdict::Accept(a),
                    RoleSet::EMPTY,
                    who.as_ref(),
                ),
                None => {
                    self.note(
                        now,
                        Rule::TCcm,
                        None,
                        Verdict::Reject(Reason::CmCertUntrusted),
                        RoleSet::EMPTY,
                        who.as_ref(),
                    );
                    // §2.4 step 7: a TLS failure → try the next CallManager of the list. The
                    // answer does not say which member answered (the first reachable one), so
                    // the rest of the list after the first member is tried; each retry drops one
                    // more, so at most one attempt per member.
                    let rest: Option<Arc<[Host]>> = self
                        .cycle
                        .as_ref()
                        .and_then(|c| c.reg_cms.as_ref())
                        .and_then(|l| l.get(1..))
                        .filter(|rest| !rest.is_empty())
                        .map(Arc::from);
                    if let Some(cms) = rest {
                        let req = self.next_req();
                        return self.send_register(req, cms, secure, source, out);
                    }
                    return self.registration_failed(now, Rule::TCcm, Reason::CmCertUntrusted, out);
                }
            }
        }
        self.registered = true;
        self.note(
            now,
            Rule::Register,
            None,
            Verdict::Note(Reason::Requested),
            RoleSet::EMPTY,
            None,
        );
        out.push(Action::Record(Outcome::Registered { source, secure }));
        // §10 / S18: the ITL hash alarm at registration.
        out.push(Action::ReportItlHash {
            itl_sha256: self.itl.as_ref().map(|i| *i.sha256()),
        });
        self.end_cycle();
    }

    // ------------------------------------------------------------------ TVS

    fn tvs_cache_hit(
        &mut self,
        now: SimTime,
        signer: &Identity,
        need: RoleSet,
    ) -> Option<(Arc<Cert>, RoleSet)> {
        self.tvs_cache.retain(|e| e.expires > now);
        let strict = self.env.knobs.tvs_role_check == TvsRoleCheck::Strict;
        self.tvs_cache
            .iter()
            .find(|e| {
                e.cert.identity().serial == signer.serial && (!strict || e.roles.intersects(need))
            })
            .map(|e| (Arc::clone(&e.cert), e.roles))
    }

    fn tvs_cache_cert(
        &mut self,
        now: SimTime,
        cert: &Cert,
        need: RoleSet,
    ) -> Option<(Arc<Cert>, RoleSet)> {
        self.tvs_cache.retain(|e| e.expires > now);
        let strict = self.env.knobs.tvs_role_check == TvsRoleCheck::Strict;
        self.tvs_cache
            .iter()
            .find(|e| e.cert.sha256() == cert.sha256() && (!strict || e.roles.intersects(need)))
            .map(|e| (Arc::clone(&e.cert), e.roles))
    }

    fn tvs_cache_put(&mut self, cert: Arc<Cert>, roles: RoleSet, expires: SimTime) {
        self.tvs_cache.retain(|e| e.cert.sha256() != cert.sha256());
        if self.tvs_cache.len() >= TVS_CACHE_MAX {
            // Drop the entry closest to expiry.
            if let Some(i) = self
                .tvs_cache
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.expires)
                .map(|(i, _)| i)
            {
                self.tvs_cache.swap_remove(i);
            }
        }
        self.tvs_cache.push(TvsCacheEntry {
            cert,
            roles,
            expires,
        });
    }

    fn purpose_file(p: &Purpose) -> Option<FileName> {
        match p {
            Purpose::List { file, .. }
            | Purpose::Cfg { file, .. }
            | Purpose::Https6971 { file, .. } => Some(*file),
            Purpose::Service { .. } => None,
        }
    }

    /// §4.1–4.2: start a TVS check for `purpose`.
    fn start_tvs(
        &mut self,
        now: SimTime,
        purpose: Purpose,
        who: Arc<Identity>,
        need: RoleSet,
        out: &mut Vec<Action>,
    ) {
        let members: Arc<[TvsMember]> = self
            .cached_config
            .as_ref()
            .map(|c| Arc::clone(&c.tvs))
            .unwrap_or_else(|| Arc::from(vec![]));
        let file = Self::purpose_file(&purpose);
        if !trust::tvs_usable(&self.model.caps, self.store(), members.len()) {
            self.note(
                now,
                Rule::TvsWhen,
                file,
                Verdict::Reject(Reason::NoTvs),
                RoleSet::EMPTY,
                Some(&who),
            );
            return self.tvs_done(now, purpose, Err(Reason::NoTvs), &who, out);
        }
        if self.tvs.is_some() {
            return self.tvs_done(now, purpose, Err(Reason::Busy), &who, out);
        }
        let n = members.len();
        let start = match self.env.knobs.tvs_selection {
            TvsSelection::Priority => 0,
            TvsSelection::RoundRobin => {
                let s = usize::from(self.tvs_rr) % n;
                self.tvs_rr = self.tvs_rr.wrapping_add(1);
                s
            }
        };
        self.tvs = Some(Box::new(TvsPending {
            purpose,
            members,
            start,
            tried: 0,
            req: RequestId(0),
            deadline: now,
            need,
            who,
        }));
        self.tvs_send(now, out);
    }

    fn tvs_send(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let req = self.next_req();
        let device = self.model.device_name(&self.mac);
        let timeout = u64::from(self.env.knobs.tvs_connect_timeout_s).saturating_mul(1000);
        let tls_max = self.model.caps.tls_max;
        let Some(p) = self.tvs.as_mut() else { return };
        let idx = p.member_index();
        let Some(member) = p.members.get(idx).cloned() else {
            return;
        };
        p.req = req;
        p.deadline = now.plus_ms(timeout);
        let (kind, frame) = match &p.purpose {
            Purpose::List { .. } | Purpose::Cfg { .. } => {
                // E18: Query (command 3) by signer subject, issuer, serial.
                let w = &p.who;
                (
                    TvsAsk::Query,
                    Message::query_request(
                        req.0,
                        &device,
                        w.subject.as_bytes(),
                        w.issuer.as_bytes(),
                        &w.serial,
                    )
                    .encode(),
                )
            }
            Purpose::Https6971 { der, .. } | Purpose::Service { der, .. } => {
                // E18: Verify (command 1) with the full certificate.
                (
                    TvsAsk::Verify,
                    Message::verify_request(req.0, &device, der.bytes()).encode(),
                )
            }
        };
        let file = Self::purpose_file(&p.purpose);
        let who = Arc::clone(&p.who);
        let m = u8::try_from(idx).unwrap_or(u8::MAX);
        self.note(
            now,
            Rule::TvsOrder,
            file,
            Verdict::AskTvs { member: m },
            RoleSet::EMPTY,
            Some(&who),
        );
        out.push(Action::QueryTvs {
            req,
            host: member.host,
            port: member.port,
            kind,
            frame,
            tls_max,
        });
    }

    /// §4.5: transport/TLS errors move on to the next member; all failed → reject.
    fn on_tvs_member_error(
        &mut self,
        now: SimTime,
        req: RequestId,
        why: Reason,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.tvs.as_mut() else { return };
        if p.req != req {
            return;
        }
        p.tried += 1;
        let more = p.tried < p.members.len();
        let file = Self::purpose_file(&p.purpose);
        let who = Arc::clone(&p.who);
        self.note(
            now,
            Rule::TvsOrder,
            file,
            Verdict::Note(why),
            RoleSet::EMPTY,
            Some(&who),
        );
        if more {
            self.tvs_send(now, out);
        } else if let Some(p) = self.tvs.take() {
            self.tvs_done(now, p.purpose, Err(Reason::TvsUnreachable), &who, out);
        }
    }

    fn on_tvs_answer(
        &mut self,
        now: SimTime,
        req: RequestId,
        server_cert: &Arc<Blob>,
        frame: &[u8],
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.tvs.as_ref() else { return };
        if p.req != req {
            return;
        }
        // T-TVS (§3.5): exact pinning to a TVS record of the current ITL.
        if !trust::tvs_pinned(self.store(), server_cert.sha256()) {
            let file = Self::purpose_file(&p.purpose);
            let presented = self
                .env
                .cert(server_cert)
                .ok()
                .map(|c| Arc::clone(c.identity()));
            self.note(
                now,
                Rule::TTvs,
                file,
                Verdict::Reject(Reason::TvsPinMismatch),
                RoleSet::EMPTY,
                presented.as_ref(),
            );
            return self.on_tvs_member_error(now, req, Reason::TvsPinMismatch, out);
        }
        let max = self.env.knobs.tvs_max_frame as usize;
        let msg = match Message::decode(frame, max) {
            Ok(m)
                if m.session_id == req.0
                    && matches!(
                        m.command,
                        Command::QUERY_RESPONSE | Command::VERIFY_RESPONSE
                    ) =>
            {
                m
            }
            _ => return self.on_tvs_member_error(now, req, Reason::TvsBadAnswer, out),
        };
        let Ok(resp) = msg.response() else {
            return self.on_tvs_member_error(now, req, Reason::TvsBadAnswer, out);
        };
        let Some(p) = self.tvs.take() else { return };
        let member = u8::try_from(p.member_index()).unwrap_or(u8::MAX);
        let file = Self::purpose_file(&p.purpose);
        if resp.status == Status::Invalid {
            // §4.5: invalid → reject; [I] an explicit Invalid stops the search (§3.10).
            self.note(
                now,
                Rule::TvsAnswer,
                file,
                Verdict::Reject(Reason::TvsInvalid),
                RoleSet::EMPTY,
                Some(&p.who),
            );
            return self.tvs_done(now, p.purpose, Err(Reason::TvsInvalid), &p.who, out);
        }
        let cert = match (&p.purpose, resp.certificate.as_deref()) {
            (Purpose::Https6971 { der, .. } | Purpose::Service { der, .. }, _) => {
                self.env.cert(der)
            }
            (_, Some(der)) => self.env.cert_bytes(der),
            (_, None) => Err(Reason::TvsBadAnswer),
        };
        let cert = match cert {
            Ok(c) => c,
            Err(_) => {
                // Put it back and try the next member: this answer is unusable.
                self.tvs = Some(p);
                return self.on_tvs_member_error(now, req, Reason::TvsBadAnswer, out);
            }
        };
        let mut roles = RoleSet::EMPTY;
        for r in &resp.roles {
            roles.insert(r.0);
        }
        let ttl = u64::from(resp.ttl.unwrap_or(self.env.knobs.tvs_ttl_s));
        self.tvs_cache_put(Arc::clone(&cert), roles, now.plus_secs(ttl));
        if self.env.knobs.tvs_role_check == TvsRoleCheck::Strict && !roles.intersects(p.need) {
            self.note(
                now,
                Rule::TvsAnswer,
                file,
                Verdict::Reject(Reason::TvsRoleMissing),
                roles,
                Some(&p.who),
            );
            return self.tvs_done(now, p.purpose, Err(Reason::TvsRoleMissing), &p.who, out);
        }
        self.note(
            now,
            Rule::TvsAnswer,
            file,
            Verdict::Accept(Anchor::Tvs(member)),
            roles,
            Some(&p.who),
        );
        if self.env.knobs.check_expiry && !cert.valid_at(self.unix_now(now)) {
            self.note(
                now,
                Rule::Expiry,
                file,
                Verdict::Reject(Reason::CertExpired),
                roles,
                Some(&p.who),
            );
            return self.tvs_done(now, p.purpose, Err(Reason::CertExpired), &p.who, out);
        }
        self.tvs_done(now, p.purpose, Ok((cert, Anchor::Tvs(member))), &p.who, out);
    }

    /// Continues whatever waited for TVS.
    fn tvs_done(
        &mut self,
        now: SimTime,
        purpose: Purpose,
        result: Result<(Arc<Cert>, Anchor), Reason>,
        who: &Arc<Identity>,
        out: &mut Vec<Action>,
    ) {
        match purpose {
            Purpose::List { kind, file, list } => {
                let rule = if kind == FileKind::Ctl {
                    Rule::TCtl
                } else {
                    Rule::TItl
                };
                let r = result.and_then(|(cert, a)| {
                    self.env.verify_list_with(&list, cert.key()).map(|v| (v, a))
                });
                self.finish_list(now, kind, file, Some(&list), r, rule, out);
            }
            Purpose::Cfg { file, signed } => {
                let key_dev = self.device_key.clone();
                let r = result.and_then(|(cert, a)| {
                    self.env
                        .verify_signed_with(&signed, cert.key(), key_dev.as_deref())
                        .map(|p| (self.env.config(p.bytes()), a))
                });
                match &r {
                    Ok((_, a)) => self.note(
                        now,
                        Rule::TCfg,
                        Some(file),
                        Verdict::Accept(*a),
                        RoleSet::EMPTY,
                        Some(who),
                    ),
                    Err(e) => self.note(
                        now,
                        Rule::TCfg,
                        Some(file),
                        Verdict::Reject(*e),
                        RoleSet::EMPTY,
                        Some(who),
                    ),
                }
                self.finish_config(now, file, r, Some(who), out);
            }
            Purpose::Https6971 { file, body, .. } => match result {
                Ok(_) => self.https_body(now, file, &body, out),
                Err(r) => {
                    self.note(
                        now,
                        Rule::THttps,
                        Some(file),
                        Verdict::Reject(r),
                        RoleSet::EMPTY,
                        Some(who),
                    );
                    self.next_transport(now, file, Reason::ServerCertUntrusted, out);
                }
            },
            Purpose::Service { id, .. } => {
                let via = result.map(|(_, a)| a);
                self.service_done(now, id, via, who, out);
            }
        }
    }

    // ------------------------------------------------------------------ services, user

    /// T-HTTPS (§3.6) for a phone service.
    fn on_service(&mut self, now: SimTime, id: u32, der: Arc<Blob>, out: &mut Vec<Action>) {
        // Services run on a registered phone (§2.5 REGISTERED); one TVS check at a time [I].
        if self.busy() || self.tvs.is_some() {
            let who = Arc::new(Identity {
                subject: String::new(),
                issuer: String::new(),
                serial: Vec::new(),
            });
            return self.service_done(now, id, Err(Reason::Busy), &who, out);
        }
        let cert = match self.env.cert(&der) {
            Ok(c) => c,
            Err(r) => {
                let who = Arc::new(Identity {
                    subject: String::new(),
                    issuer: String::new(),
                    serial: Vec::new(),
                });
                return self.service_done(now, id, Err(r), &who, out);
            }
        };
        let who = Arc::clone(cert.identity());
        if let Some(a) = trust::https_local(self.store(), &cert, RoleSet::APP_SERVER) {
            return self.service_done(now, id, Ok(a), &who, out);
        }
        if self
            .tvs_cache_cert(now, &cert, RoleSet::APP_SERVER)
            .is_some()
        {
            return self.service_done(now, id, Ok(Anchor::TvsCache), &who, out);
        }
        self.start_tvs(
            now,
            Purpose::Service { id, der },
            who,
            RoleSet::APP_SERVER,
            out,
        );
    }

    fn service_done(
        &mut self,
        now: SimTime,
        id: u32,
        via: Result<Anchor, Reason>,
        who: &Arc<Identity>,
        out: &mut Vec<Action>,
    ) {
        match via {
            Ok(a) => self.note(
                now,
                Rule::THttps,
                None,
                Verdict::Accept(a),
                RoleSet::EMPTY,
                Some(who),
            ),
            Err(r) => {
                self.note(
                    now,
                    Rule::THttps,
                    None,
                    Verdict::Reject(r),
                    RoleSet::EMPTY,
                    Some(who),
                );
                self.status(now, StatusMsg::HostNotFound, out);
            }
        }
        out.push(Action::Record(Outcome::Service {
            id,
            ok: via.is_ok(),
            via,
        }));
    }

    /// §9 recovery actions on the phone.
    fn on_user(&mut self, now: SimTime, action: UserAction, out: &mut Vec<Action>) {
        match action {
            UserAction::EraseTrustLists { ctl, itl } => {
                let (ctl, itl) = match self.model.caps.erase {
                    EraseKind::None => {
                        self.note(
                            now,
                            Rule::Recovery,
                            None,
                            Verdict::Note(Reason::Unsupported),
                            RoleSet::EMPTY,
                            None,
                        );
                        out.push(Action::Record(Outcome::Ignored {
                            reason: Reason::Unsupported,
                        }));
                        return;
                    }
                    EraseKind::CtlOnly => (ctl, false),
                    EraseKind::PerFile => (ctl, itl),
                    // 89xx / 78xx / 88xx: "reset security settings" erases both (§8, §9).
                    EraseKind::SecuritySettings => (true, true),
                };
                if ctl {
                    self.ctl = None;
                }
                if itl {
                    self.itl = None;
                }
                if self.model.caps.family != Family::Ctl {
                    self.status(now, StatusMsg::Erasing, out);
                }
                self.note(
                    now,
                    Rule::Recovery,
                    None,
                    Verdict::Note(Reason::Requested),
                    RoleSet::EMPTY,
                    None,
                );
                out.push(Action::Record(Outcome::Erased { ctl, itl }));
                // The phone restarts after erasing [I].
                self.reboot_ram();
                self.start_cycle(now, out);
            }
            UserAction::FactoryReset => {
                self.ctl = None;
                self.itl = None;
                self.cached_config = None;
                self.alt_tftp = None;
                self.status.clear();
                self.tvs_cache = Vec::new();
                out.push(Action::Record(Outcome::Erased {
                    ctl: true,
                    itl: true,
                }));
                self.reboot_ram();
                self.start_cycle(now, out);
            }
            UserAction::SetAltTftp {
                server,
                keep_trust_list,
            } => {
                self.alt_tftp = server;
                if !keep_trust_list {
                    self.ctl = None;
                    self.itl = None;
                    out.push(Action::Record(Outcome::Erased {
                        ctl: true,
                        itl: true,
                    }));
                }
                self.reboot_ram();
                self.start_cycle(now, out);
            }
        }
    }

    /// Changes the DHCP TFTP list (option 150 change); takes effect at the next cycle (§2.1).
    pub fn set_dhcp_tftp(&mut self, servers: Arc<[Host]>) {
        self.dhcp_tftp = servers;
    }
}
