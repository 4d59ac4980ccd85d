//! `itlsim phones` (issue 7): N simulated phones booting against servers this process does not
//! run — an `itlsim serve` in another process, or a lab CUCM — over real TFTP, HTTP 6970, HTTPS
//! 6971 and TVS over TLS. Each phone is the unchanged sans-IO core on the wall clock
//! ([`super::fleet`]), factory-new (TOFU, §3.1) unless it is given trust lists to hold.
//!
//! Addressing. The phones' option-150 entry is the `--tftp` host. The other services of a host are
//! at the same offset from their standard port as its TFTP port: 69 → 6970/6971/2445 for a CUCM,
//! 10069 → 16970/16971/12445 for `itlsim serve`'s default mapping. Hosts named in the configs the
//! phones download (the `<TVS>` list, §4.2) are reached at their own address on the standard ports
//! unless a route says otherwise: `NAME=IP[+OFFSET]` (all services of NAME at IP, standard port +
//! OFFSET) or `NAME.SERVICE=IP:PORT` (one service).
//!
//! Modelled, not on the wire (and printed as such): registration (no SCCP/SIP client). A phone
//! whose config lists a CallManager registers; for a secure profile the CallManager certificate the
//! phone checks (T-CCM, §3.8) is the one that CallManager presents on HTTPS 6971 (its CallManager
//! identity, as on SIP-TLS 5061), fetched over a real TLS handshake.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use itlsim_net::Port;
use itlsim_net::clients::https_get;
use itlsim_net::tls::{ServerCertPolicy, rsa_schemes};
use itlsim_phone::{Blob, CryptoMode, Env, Host, Knobs, Mac, Model, Phone, PhoneSetup};

use super::LiveError;
use super::fleet::{self, BootEnd, Registrar};
use super::io::{self, LatencyRow};

/// A route for hosts the phones learn from their configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteSpec {
    /// Every service of `name` at `ip`, on the standard port + `offset`.
    Host {
        /// Phone-visible host (as written in the config).
        name: String,
        /// Where it is.
        ip: IpAddr,
        /// Added to every standard port.
        offset: i32,
    },
    /// One service of `name` at `addr`.
    Service {
        /// Phone-visible host.
        name: String,
        /// Which service.
        port: Port,
        /// Where it is.
        addr: SocketAddr,
    },
}

impl RouteSpec {
    /// Parses `NAME=IP[+OFFSET]` or `NAME.SERVICE=IP:PORT` (SERVICE = tftp, tvs, http,
    /// https6971, https6972).
    pub fn parse(s: &str) -> Result<RouteSpec, String> {
        let (lhs, rhs) = s.split_once('=').ok_or_else(|| {
            format!("route {s:?}: expected NAME=IP[+OFFSET] or NAME.SERVICE=IP:PORT")
        })?;
        if lhs.is_empty() {
            return Err(format!("route {s:?}: empty host name"));
        }
        if let Some((name, svc)) = lhs.rsplit_once('.')
            && let Some(port) = Port::parse(svc)
            && !name.is_empty()
        {
            let addr: SocketAddr = rhs
                .parse()
                .map_err(|_| format!("route {s:?}: {rhs:?} is not IP:PORT"))?;
            return Ok(RouteSpec::Service {
                name: name.to_string(),
                port,
                addr,
            });
        }
        let (ip, offset) = match rhs.split_once('+') {
            Some((ip, off)) => (
                ip,
                off.parse::<i32>()
                    .map_err(|_| format!("route {s:?}: offset {off:?} is not a number"))?,
            ),
            None => (rhs, 0),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("route {s:?}: {ip:?} is not an IP address"))?;
        Ok(RouteSpec::Host {
            name: lhs.to_string(),
            ip,
            offset,
        })
    }
}

/// What `itlsim phones` boots.
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    /// `HOST[:PORT]` of the TFTP server (port 69 if omitted).
    pub tftp: String,
    /// Phones.
    pub count: usize,
    /// Model name (`8845`, `7975`, …; phone-behaviour §8).
    pub model: String,
    /// MAC of the first phone; the others follow.
    pub mac_start: u64,
    /// Routes for hosts named in configs.
    pub routes: Vec<RouteSpec>,
    /// Phones booting at once.
    pub concurrency: usize,
    /// Wall-time limit per phone.
    pub per_phone_limit: Duration,
    /// Phone knobs (timeouts and retries in wall time).
    pub knobs: Knobs,
    /// The ITL every phone holds before it boots (e.g. fetched before a change); `None` with no
    /// CTL either: factory-new.
    pub held_itl: Option<Vec<u8>>,
    /// The CTL every phone holds before it boots.
    pub held_ctl: Option<Vec<u8>>,
}

/// One phone's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhoneResult {
    /// `SEP<MAC>`.
    pub device: String,
    /// Model.
    pub model: &'static str,
    /// How the boot ended: `registered`, `not-registered`, `timed-out`.
    pub end: &'static str,
    /// Lock reason code, if locked (§4.7).
    pub locked: Option<&'static str>,
    /// Lock reason in words.
    pub locked_reason: Option<&'static str>,
    /// Signer of the ITL now held.
    pub itl_signer: Option<String>,
    /// Status messages (§4.6), oldest first.
    pub status: Vec<String>,
    /// Decision trace of the last cycle.
    pub trace: Vec<String>,
}

/// What a fleet run against external servers gives.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExternalReport {
    /// The TFTP server used.
    pub tftp: SocketAddr,
    /// Per phone, in MAC order.
    pub phones: Vec<PhoneResult>,
    /// Wall time of the boot (s).
    pub wall_s: f64,
    /// Most phones booting at once.
    pub peak_booting: usize,
    /// Per-service latency percentiles.
    pub latency: Vec<LatencyRow>,
    /// What is modelled rather than on the wire.
    pub modelled: Vec<String>,
}

impl ExternalReport {
    /// Phones that registered.
    pub fn registered(&self) -> usize {
        self.phones.iter().filter(|p| p.end == "registered").count()
    }

    /// Human text: counts, lock reasons, latency.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let n = self.phones.len();
        let locked = self.phones.iter().filter(|p| p.locked.is_some()).count();
        let _ = writeln!(
            s,
            "{n} phones against TFTP {}: {} registered, {} not registered ({locked} locked), {:.2} s wall, peak {} booting",
            self.tftp,
            self.registered(),
            n - self.registered(),
            self.wall_s,
            self.peak_booting
        );
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        for p in &self.phones {
            let k = match (p.end, p.locked_reason) {
                (_, Some(r)) => format!("locked: {r}"),
                ("registered", None) => "registered".to_string(),
                (e, None) => format!(
                    "{e}: {}",
                    p.status.last().map(String::as_str).unwrap_or("no status")
                ),
            };
            *reasons.entry(k).or_default() += 1;
        }
        for (k, v) in &reasons {
            let _ = writeln!(s, "  {v:>6}  {k}");
        }
        s.push_str(&io::latency_table(&self.latency, &self.modelled));
        s
    }
}

/// Splits `HOST[:PORT]` (port 69 if absent) and resolves it.
fn tftp_target(s: &str) -> Result<(String, SocketAddr), LiveError> {
    let bad = |m: String| LiveError::Serve(m);
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse::<u16>()
                .map_err(|_| bad(format!("--tftp {s:?}: port {p:?} is not a number")))?,
        ),
        _ => (s.to_string(), 69),
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| bad(format!("--tftp {s:?}: {e}")))?
        .next()
        .ok_or_else(|| bad(format!("--tftp {s:?}: no address")))?;
    Ok((host, addr))
}

fn shifted(port: Port, offset: i32) -> Option<u16> {
    u16::try_from(i32::from(port.standard()) + offset).ok()
}

/// The route function: explicit service routes, then host routes, then the host's own address
/// (if it is an IP) on the standard ports.
fn router(tftp_host: &str, tftp: SocketAddr, routes: &[RouteSpec]) -> io::Route {
    let offset = i32::from(tftp.port()) - i32::from(Port::Tftp.standard());
    let mut hosts: HashMap<String, (IpAddr, i32)> = HashMap::new();
    hosts.insert(tftp_host.to_string(), (tftp.ip(), offset));
    let mut services: HashMap<(String, Port), SocketAddr> = HashMap::new();
    for r in routes {
        match r {
            RouteSpec::Host { name, ip, offset } => {
                hosts.insert(name.clone(), (*ip, *offset));
            }
            RouteSpec::Service { name, port, addr } => {
                services.insert((name.clone(), *port), *addr);
            }
        }
    }
    Arc::new(move |host: &str, port: Port| {
        if let Some(a) = services.get(&(host.to_string(), port)) {
            return Some(*a);
        }
        let (ip, off) = match hosts.get(host) {
            Some(h) => *h,
            None => (host.parse::<IpAddr>().ok()?, 0),
        };
        Some(SocketAddr::new(ip, shifted(port, off)?))
    })
}

/// Boots the fleet and reports per phone.
pub fn run(cfg: &ExternalConfig) -> Result<ExternalReport, LiveError> {
    let model = Model::lookup(&cfg.model).ok_or_else(|| {
        LiveError::Serve(format!(
            "unknown phone model {:?} (known: {})",
            cfg.model,
            Model::all().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let (tftp_host, tftp) = tftp_target(&cfg.tftp)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LiveError::Serve(e.to_string()))?;
    let env = Env::new(cfg.knobs.clone(), CryptoMode::Real);
    let option150: Arc<[Host]> = Arc::from(vec![Host::new(&tftp_host)]);
    let held_itl = cfg.held_itl.as_ref().map(|b| Blob::new(b.clone()));
    let held_ctl = cfg.held_ctl.as_ref().map(|b| Blob::new(b.clone()));
    let mut phones = Vec::with_capacity(cfg.count);
    for i in 0..cfg.count as u64 {
        let b = (cfg.mac_start + i).to_be_bytes();
        let mut p = Phone::new(
            env.clone(),
            PhoneSetup {
                mac: Mac([b[2], b[3], b[4], b[5], b[6], b[7]]),
                model,
                tftp: option150.clone(),
                device_key: None,
                load: None,
            },
        );
        p.preload(held_ctl.as_ref(), held_itl.as_ref())
            .map_err(|r| LiveError::Serve(format!("held trust list: {}", r.describe())))?;
        phones.push(p);
    }
    rt.block_on(async {
        let route = router(&tftp_host, tftp, &cfg.routes);
        let mut ctx = io::new_ctx(
            HashMap::new(),
            cfg.knobs.clone(),
            1.0,
            4 * cfg.concurrency.max(1),
        )
        .await
        .map_err(|e| LiveError::Serve(e.to_string()))?;
        // The registrar's CallManager certificates (secure profiles), one TLS handshake per host.
        let cm_route = Arc::clone(&route);
        ctx.route = Some(route);
        let ctx = Arc::new(ctx);
        let cache: Arc<Mutex<HashMap<String, Option<Arc<Blob>>>>> = Arc::default();
        let handle = tokio::runtime::Handle::current();
        let registrar: Registrar = Arc::new(move |cms: &[Host], secure: bool| {
            let Some(cm) = cms.first() else {
                return (false, None);
            };
            if !secure {
                return (true, None);
            }
            let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
            let cert = c.entry(cm.0.to_string()).or_insert_with(|| {
                let addr = cm_route(&cm.0, Port::Https6971)?;
                tokio::task::block_in_place(|| {
                    handle.block_on(https_get(
                        addr,
                        "/",
                        ServerCertPolicy::AcceptAny,
                        Some(rsa_schemes()),
                        Duration::from_secs(5),
                    ))
                })
                .ok()
                .and_then(|a| a.server_cert)
                .map(Blob::new)
            });
            (true, cert.clone())
        });
        let res = fleet::boot(
            ctx,
            phones,
            registrar,
            cfg.concurrency,
            cfg.per_phone_limit,
        )
        .await;
        let phones = res
            .phones
            .iter()
            .zip(&res.ends)
            .map(|(p, e)| {
                let fam = p.model().caps.family;
                PhoneResult {
                    device: format!("SEP{}", p.mac()),
                    model: p.model().name,
                    end: match e {
                        BootEnd::Registered => "registered",
                        BootEnd::NotRegistered => "not-registered",
                        BootEnd::TimedOut => "timed-out",
                    },
                    locked: p.locked().map(|r| r.code()),
                    locked_reason: p.locked().map(|r| r.describe()),
                    itl_signer: p.itl().map(|l| l.list().signer().to_string()),
                    status: p
                        .status_log()
                        .iter()
                        .map(|s| s.msg.text(fam, p.mac()))
                        .collect(),
                    trace: p.trace().iter().map(|t| t.to_string()).collect(),
                }
            })
            .collect();
        Ok(ExternalReport {
            tftp,
            phones,
            wall_s: res.wall.as_secs_f64(),
            peak_booting: res.peak_booting,
            latency: res.latency.rows(),
            modelled: vec![
                "registration: no SCCP/SIP on the wire; a phone whose config lists a CallManager registers (secure profiles: T-CCM against the certificate that CallManager presents on HTTPS 6971)".into(),
                "TLS 1.0 of 79xx phones: carried over TLS 1.2 (rustls has no TLS 1.0)".into(),
            ],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_resolve() {
        let r = [
            RouteSpec::parse("10.1.0.10=127.0.0.1+10000").unwrap(),
            RouteSpec::parse("10.1.0.11.tvs=127.0.0.2:5555").unwrap(),
        ];
        assert_eq!(
            r[0],
            RouteSpec::Host {
                name: "10.1.0.10".into(),
                ip: "127.0.0.1".parse().unwrap(),
                offset: 10_000
            }
        );
        let tftp: SocketAddr = "127.0.0.1:10079".parse().unwrap();
        let f = router("127.0.0.1", tftp, &r);
        let a = |h: &str, p| f(h, p).map(|a| a.to_string());
        // The TFTP host: the other services at the TFTP port's offset (10010).
        assert_eq!(
            a("127.0.0.1", Port::Http).as_deref(),
            Some("127.0.0.1:16980")
        );
        assert_eq!(
            a("127.0.0.1", Port::Tvs).as_deref(),
            Some("127.0.0.1:12455")
        );
        assert_eq!(
            a("10.1.0.10", Port::Tvs).as_deref(),
            Some("127.0.0.1:12445")
        );
        assert_eq!(a("10.1.0.11", Port::Tvs).as_deref(), Some("127.0.0.2:5555"));
        // An IP without a route: itself on the standard port; a name without one: nowhere.
        assert_eq!(a("10.1.0.11", Port::Tftp).as_deref(), Some("10.1.0.11:69"));
        assert_eq!(a("cucm-pub", Port::Tvs), None);
        for bad in [
            "nonsense",
            "=1.2.3.4",
            "h=1.2.3.4+x",
            "h.tvs=1.2.3.4",
            "h=not-an-ip",
        ] {
            assert!(RouteSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tftp_target_defaults_to_port_69() {
        assert_eq!(tftp_target("127.0.0.1").unwrap().1.port(), 69);
        assert_eq!(tftp_target("127.0.0.1:10069").unwrap().1.port(), 10069);
        assert!(tftp_target("127.0.0.1:x").is_err());
    }
}
