//! A fleet booting in real time (no scenario timeline): each phone's sans-IO core runs in its own
//! task against real servers through [`super::io`], with its timers on the wall clock (speed 1),
//! and a bounded number of phones booting at once. Used by the boot benchmark and by
//! `itlsim phones`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use itlsim_phone::{Action, Blob, Event, Host, Phone, SimTime};
use tokio::sync::{Semaphore, mpsc};

use super::io::{Ctx, Latencies, execute};

/// Answers a registration (modelled: no SCCP/SIP on the wire): `(accepted, CallManager
/// certificate for a secure profile)`.
pub type Registrar = Arc<dyn Fn(&[Host], bool) -> (bool, Option<Arc<Blob>>) + Send + Sync>;

/// How one phone's boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootEnd {
    /// Registered.
    Registered,
    /// The cycle ended without registration (locked, rejected, no server).
    NotRegistered,
    /// Still in its cycle at the per-phone limit.
    TimedOut,
}

/// A booted fleet.
pub struct FleetResult {
    /// The phones (final state), in input order.
    pub phones: Vec<Phone>,
    /// How each boot ended.
    pub ends: Vec<BootEnd>,
    /// Wall time from the first power-on to the last boot end.
    pub wall: Duration,
    /// Per-service latencies.
    pub latency: Latencies,
    /// Most phones booting at once.
    pub peak_booting: usize,
}

async fn boot_one(
    ctx: Arc<Ctx>,
    mut phone: Phone,
    register: Registrar,
    t0: Instant,
    limit: Duration,
) -> (Phone, BootEnd, Latencies) {
    let now = || SimTime(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut queue = VecDeque::from([Event::PowerOn]);
    let mut out = Vec::new();
    let mut lat = Latencies::default();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        while let Some(ev) = queue.pop_front() {
            phone.handle(now(), ev, &mut out);
            for a in out.drain(..) {
                match a {
                    a @ (Action::Fetch { .. } | Action::QueryTvs { .. }) => {
                        let ctx = ctx.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let _ = tx.send(execute(&ctx, 0, a, false).await);
                        });
                    }
                    Action::Register {
                        req, cms, secure, ..
                    } => {
                        let (ok, cm_cert) = register(&cms, secure);
                        queue.push_back(Event::RegisterResult { req, ok, cm_cert });
                    }
                    _ => {}
                }
            }
        }
        if !phone.busy() {
            let end = if phone.registered() {
                BootEnd::Registered
            } else {
                BootEnd::NotRegistered
            };
            return (phone, end, lat);
        }
        let timer = phone.poll_timeout().map(|t| {
            let wall = t0 + Duration::from_millis(t.0);
            tokio::time::Instant::from_std(wall).min(deadline)
        });
        let timer = timer.unwrap_or(deadline);
        tokio::select! {
            d = rx.recv() => {
                if let Some(d) = d {
                    lat.record(&d);
                    if let Some(ev) = d.event {
                        queue.push_back(ev);
                    }
                }
            }
            _ = tokio::time::sleep_until(timer) => {
                if tokio::time::Instant::now() >= deadline {
                    return (phone, BootEnd::TimedOut, lat);
                }
                queue.push_back(Event::Timer);
            }
        }
    }
}

/// Boots `phones` (power on, one provisioning cycle each) with at most `concurrency` booting at
/// once; each phone gets at most `limit` of wall time. `ctx` must run at speed 1.
pub async fn boot(
    ctx: Arc<Ctx>,
    phones: Vec<Phone>,
    register: Registrar,
    concurrency: usize,
    limit: Duration,
) -> FleetResult {
    let n = phones.len();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for p in phones {
        let permit = sem.clone().acquire_owned().await;
        let ctx = ctx.clone();
        let reg = register.clone();
        let active = active.clone();
        let peak = peak.clone();
        use std::sync::atomic::Ordering::Relaxed;
        let a = active.fetch_add(1, Relaxed) + 1;
        peak.fetch_max(a, Relaxed);
        tasks.push(tokio::spawn(async move {
            let r = boot_one(ctx, p, reg, t0, limit).await;
            active.fetch_sub(1, Relaxed);
            drop(permit);
            r
        }));
    }
    let mut out = FleetResult {
        phones: Vec::with_capacity(n),
        ends: Vec::with_capacity(n),
        wall: Duration::ZERO,
        latency: Latencies::default(),
        peak_booting: 0,
    };
    for t in tasks {
        if let Ok((p, e, l)) = t.await {
            out.phones.push(p);
            out.ends.push(e);
            out.latency.merge(l);
        }
    }
    out.wall = t0.elapsed();
    out.peak_booting = peak.load(std::sync::atomic::Ordering::Relaxed);
    out
}
