//! Real sockets on 127.0.0.1 (ports chosen by the OS), the real cluster model, real TLS.
//! Every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use itlsim_net::Limits;
use itlsim_net::clients::{ClientError, TvsClient, http_request, https_get};
use itlsim_net::serve::{PortMode, ServeConfig, Server, Stats};
use itlsim_net::tftp::packet::{self, Packet};
use itlsim_net::tftp::{TftpClientError, TftpOptions, get};
use itlsim_net::tls::ServerCertPolicy;
use itlsim_net::view::{Clusters, NodeRef, Port};
use itlsim_server::model::TftpHttpsRefresh;
use itlsim_server::{
    AdminAction, CertPurpose, Cluster, ClusterSpec, CmGroupId, KeySource, NodeId, Service,
    ServiceOp, Version,
};
use itlsim_wire::tvs::{Message, Status};
use rustls::SignatureScheme;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const NOW: i64 = 1_767_225_600; // 2026-01-01, scenario clock
const MAC: &str = "001122334455";
const PUB: NodeRef = NodeRef {
    cluster: 0,
    node: NodeId(0),
};

fn cluster() -> Cluster {
    let spec = ClusterSpec::new(
        "A",
        Version::parse("12.5").unwrap(),
        &["cucm-pub", "cucm-sub"],
        NOW,
    );
    let mut c = Cluster::install(spec, KeySource::new(7)).unwrap();
    c.add_fleet("8845", 0x0011_2233_4455, 2, CmGroupId(0))
        .unwrap();
    c
}

async fn start_with(limits: Limits) -> (Arc<Clusters>, Server) {
    start_cluster(cluster(), limits).await
}

async fn start_cluster(cluster: Cluster, limits: Limits) -> (Arc<Clusters>, Server) {
    let clusters = Arc::new(Clusters::new(vec![cluster]));
    let cfg = ServeConfig {
        mode: PortMode::Ephemeral,
        limits,
        ..ServeConfig::default()
    };
    let server = Server::start(clusters.clone(), cfg).await.unwrap();
    (clusters, server)
}

async fn start() -> (Arc<Clusters>, Server) {
    start_with(Limits::default()).await
}

fn identity(c: &Clusters, node: NodeId, p: CertPurpose) -> Vec<u8> {
    c.read(0, |c| c.identity(node, p).unwrap().cert.der().to_vec())
        .unwrap()
}

fn file(c: &Clusters, name: &str) -> Vec<u8> {
    c.read(0, |c| c.tftp_get(NodeId(0), name).unwrap().bytes.to_vec())
        .unwrap()
}

fn addr(s: &Server, p: Port) -> SocketAddr {
    s.addr(PUB, p).unwrap()
}

fn device() -> String {
    format!("CP-8845-SEP{MAC}")
}

fn tvs_stats(s: &Server) -> Arc<itlsim_net::tvs::TvsStats> {
    match s.stats(PUB, Port::Tvs) {
        Some(Stats::Tvs(t)) => t.clone(),
        _ => panic!("no TVS stats"),
    }
}

fn tftp_stats(s: &Server) -> Arc<itlsim_net::tftp::TftpStats> {
    match s.stats(PUB, Port::Tftp) {
        Some(Stats::Tftp(t)) => t.clone(),
        _ => panic!("no TFTP stats"),
    }
}

/// Polls `f` every 20 ms for at most 5 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not reached within 5 s: {what}");
}

async fn liveness(c: &Clusters, s: &Server) {
    let client = TvsClient::new(ServerCertPolicy::Pin(vec![identity(
        c,
        NodeId(0),
        CertPurpose::Tvs,
    )]));
    let cm = identity(c, NodeId(0), CertPurpose::CallManager);
    let x = client
        .exchange(
            addr(s, Port::Tvs),
            &[Message::verify_request(9, &device(), &cm)],
        )
        .await
        .expect("valid TVS client served");
    assert_eq!(x.responses[0].response().unwrap().status, Status::Valid);
}

// ---------------------------------------------------------------- TVS

#[tokio::test]
async fn tvs_verify_and_query_answer_from_the_model_over_tls() {
    let (c, s) = start().await;
    let tvs = identity(&c, NodeId(0), CertPurpose::Tvs);
    let cm = identity(&c, NodeId(0), CertPurpose::CallManager);
    let client = TvsClient::new(ServerCertPolicy::Pin(vec![tvs.clone()]));
    let verify = Message::verify_request(0x3e9, &device(), &cm);
    let (subject, issuer, serial) = c
        .read(0, |c| {
            let cert = &c
                .identity(NodeId(0), CertPurpose::CallManager)
                .unwrap()
                .cert;
            (
                cert.subject().to_string(),
                cert.issuer().to_string(),
                cert.serial().to_vec(),
            )
        })
        .unwrap();
    let query = Message::query_request(
        0x3e9,
        &device(),
        subject.as_bytes(),
        issuer.as_bytes(),
        &serial,
    );
    let unknown = itlsim_server::cluster::test_ca().unwrap();
    let unknown_der = unknown.cert.der().to_vec();
    let invalid = Message::verify_request(0x3e9, &device(), &unknown_der);
    // Three requests, one connection, one session id.
    let x = client
        .exchange(
            addr(&s, Port::Tvs),
            &[verify.clone(), query.clone(), invalid.clone()],
        )
        .await
        .unwrap();
    assert_eq!(x.server_cert, tvs, "presents the node's TVS certificate");
    for (req, resp) in [&verify, &query, &invalid].iter().zip(&x.responses) {
        let want = c
            .read(0, |c| {
                c.tvs_answer(NodeId(0), &req.request().unwrap()).unwrap()
            })
            .unwrap();
        assert_eq!(resp.session_id, 0x3e9, "session id echoed");
        assert_eq!(resp, &Message::response_to(req, &want.response));
    }
    let v = x.responses[0].response().unwrap();
    assert_eq!(v.status, Status::Valid);
    assert!(!v.roles.is_empty());
    let q = x.responses[1].response().unwrap();
    assert_eq!(x.responses[1].command.0, 4, "query → command 4 (E18)");
    assert_eq!(q.certificate.as_deref(), Some(cm.as_slice()));
    assert_eq!(x.responses[2].response().unwrap().status, Status::Invalid);
    s.shutdown().await;
}

#[tokio::test]
async fn tvs_client_refuses_a_certificate_it_did_not_pin() {
    let (c, s) = start().await;
    let cm = identity(&c, NodeId(0), CertPurpose::CallManager);
    let client = TvsClient::new(ServerCertPolicy::Pin(vec![cm.clone()]));
    let r = client
        .exchange(
            addr(&s, Port::Tvs),
            &[Message::verify_request(1, &device(), &cm)],
        )
        .await;
    assert!(matches!(r, Err(ClientError::Tls(_))), "{r:?}");
    s.shutdown().await;
}

async fn tls_raw(s: &Server) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = itlsim_net::tls::client_config(ServerCertPolicy::AcceptAny);
    let tcp = TcpStream::connect(addr(s, Port::Tvs)).await.unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(itlsim_net::tls::server_name(addr(s, Port::Tvs).ip()), tcp)
        .await
        .unwrap()
}

/// Sends `bytes` inside TLS and expects the server to close without answering.
async fn closes_without_answer(s: &Server, bytes: &[u8]) {
    let mut t = tls_raw(s).await;
    t.write_all(bytes).await.unwrap();
    t.flush().await.unwrap();
    let mut buf = [0u8; 64];
    let r = timeout(Duration::from_secs(5), t.read(&mut buf)).await;
    match r {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("expected close, got {other:?}"),
    }
}

#[tokio::test]
async fn tvs_bad_frames_close_only_their_connection() {
    let limits = Limits {
        handshake: Duration::from_millis(500),
        request: Duration::from_millis(500),
        ..Limits::default()
    };
    let (c, s) = start_with(limits).await;
    let cm = identity(&c, NodeId(0), CertPurpose::CallManager);
    let stats = tvs_stats(&s);

    // V2: silent TCP connection held open across the whole test (closed at the deadline).
    let mut silent = TcpStream::connect(addr(&s, Port::Tvs)).await.unwrap();
    // V1: garbage instead of TLS.
    let mut g = TcpStream::connect(addr(&s, Port::Tvs)).await.unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = timeout(Duration::from_secs(2), g.read(&mut buf)).await;
    assert!(n.is_ok(), "garbage before TLS closed within the deadline");
    liveness(&c, &s).await;

    // V4: wrong protocol id, wrong version, command 2.
    let good = Message::verify_request(5, &device(), &cm).encode();
    let mut bad = good.clone();
    bad[0] = 88;
    closes_without_answer(&s, &bad).await;
    let mut bad = good.clone();
    bad[1] = 2;
    closes_without_answer(&s, &bad).await;
    let mut bad = good.clone();
    bad[2] = 2;
    closes_without_answer(&s, &bad).await;
    // V5: length past the 16 KiB cap: refused before any body is sent.
    closes_without_answer(&s, &[87, 1, 1, 0, 0, 0, 0, 1, 0xff, 0xff]).await;
    // V5: length 0 (no device name).
    closes_without_answer(&s, &[87, 1, 1, 0, 0, 0, 0, 1, 0, 0]).await;
    // V6: element running past the frame.
    closes_without_answer(&s, &[87, 1, 1, 0, 0, 0, 0, 1, 0, 3, 1, 0, 9]).await;
    // V10: session id changes between two frames.
    let mut t = tls_raw(&s).await;
    t.write_all(&good).await.unwrap();
    let mut other = good.clone();
    other[7] = 6;
    t.write_all(&other).await.unwrap();
    t.flush().await.unwrap();
    let mut all = Vec::new();
    let _ = timeout(Duration::from_secs(5), t.read_to_end(&mut all)).await;
    let first = Message::decode(&all, 65_535).expect("exactly one answer, then close");
    assert_eq!(first.session_id, 5);
    // V11: two requests pipelined in one write, and one split into 1-byte writes.
    let mut t = tls_raw(&s).await;
    let mut two = good.clone();
    two.extend_from_slice(&good);
    t.write_all(&two).await.unwrap();
    t.flush().await.unwrap();
    for b in &good {
        t.write_all(&[*b]).await.unwrap();
        t.flush().await.unwrap();
    }
    let mut got = 0;
    let mut acc = Vec::new();
    while got < 3 {
        let mut b = [0u8; 4096];
        let n = timeout(Duration::from_secs(5), t.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        acc.extend_from_slice(&b[..n]);
        while acc.len() >= 10 {
            let len = 10 + usize::from(u16::from_be_bytes([acc[8], acc[9]]));
            if acc.len() < len {
                break;
            }
            acc.drain(..len);
            got += 1;
        }
    }
    drop(t);
    // The silent connection is closed at the handshake deadline.
    let r = timeout(Duration::from_secs(3), silent.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "silent client closed: {r:?}"
    );
    liveness(&c, &s).await;
    assert!(
        stats.bad_frame.get() >= 7,
        "bad frames counted: {}",
        stats.bad_frame.get()
    );
    assert!(stats.handshake_failed.get() >= 2);
    s.shutdown().await;
}

// ---------------------------------------------------------------- TFTP

#[tokio::test]
async fn tftp_serves_the_model_bytes_with_and_without_options() {
    let (c, s) = start().await;
    let a = addr(&s, Port::Tftp);
    let itl = file(&c, "ITLFile.tlv");
    let plain = get(a, "ITLFile.tlv", &TftpOptions::default())
        .await
        .unwrap();
    assert_eq!(plain.data, itl);
    assert!(!plain.oack);
    let opts = TftpOptions {
        blksize: Some(1428),
        tsize: true,
        windowsize: Some(4),
        timeout_opt: Some(2),
        ..TftpOptions::default()
    };
    let with = get(a, &format!("ITLSEP{MAC}.tlv"), &opts).await.unwrap();
    assert_eq!(
        with.data, itl,
        "ITLSEP<MAC> serves the ITL (wire-formats §3.7)"
    );
    assert_eq!(with.tsize, Some(itl.len() as u64));
    assert_eq!((with.blksize, with.windowsize), (1428, 4));
    // blksize above the cap is clamped (F9).
    let big = TftpOptions {
        blksize: Some(65464),
        ..TftpOptions::default()
    };
    assert_eq!(get(a, "ITLFile.tlv", &big).await.unwrap().blksize, 1428);
    // Per-phone signed config; exact multiple of the block size is covered by blksize 8 over
    // whatever length (the final short block may be empty).
    let sgn = format!("SEP{MAC}.cnf.xml.sgn");
    let cfg = get(a, &sgn, &opts).await.unwrap();
    assert_eq!(cfg.data, file(&c, &sgn));
    let len = itl.len();
    let exact = TftpOptions {
        blksize: Some(u16::try_from(len / 2).unwrap().max(8)),
        ..TftpOptions::default()
    };
    if len % 2 == 0 {
        assert_eq!(get(a, "ITLFile.tlv", &exact).await.unwrap().data, itl);
    }
    let small = TftpOptions {
        blksize: Some(8),
        windowsize: Some(16),
        ..TftpOptions::default()
    };
    assert_eq!(get(a, "ITLFile.tlv", &small).await.unwrap().data, itl);
    s.shutdown().await;
}

fn tftp_err(r: Result<itlsim_net::tftp::TftpGet, TftpClientError>) -> (u16, String) {
    match r {
        Err(TftpClientError::Error { code, message }) => (code, message),
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn tftp_refuses_writes_traversal_and_unknown_names() {
    let (c, s) = start().await;
    let a = addr(&s, Port::Tftp);
    let o = TftpOptions::default();
    for name in [
        "../ITLFile.tlv",
        "/etc/passwd",
        "a/../../x",
        "..\\x",
        "C:\\x",
    ] {
        assert_eq!(tftp_err(get(a, name, &o).await).0, 2, "{name}");
    }
    assert_eq!(tftp_err(get(a, "nope.bin", &o).await).0, 1);
    // Non-secure cluster: no CTL → File not found (phone-behaviour §2.4 step 1).
    assert_eq!(tftp_err(get(a, &format!("CTLSEP{MAC}.tlv"), &o).await).0, 1);
    // WRQ → ERROR 2 (F8).
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(&packet::request(true, "ITLFile.tlv", "octet", &[]), a)
        .await
        .unwrap();
    let mut b = [0u8; 600];
    let (n, _) = timeout(Duration::from_secs(2), u.recv_from(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Error { code: 2, .. })
    ));
    // Malformed: no NUL → ERROR 4; odd options → ERROR 8; garbage opcode → dropped.
    u.send_to(b"\x00\x01ITLFile.tlv", a).await.unwrap();
    let (n, _) = timeout(Duration::from_secs(2), u.recv_from(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Error { code: 4, .. })
    ));
    u.send_to(b"\x00\x01ITLFile.tlv\x00octet\x00blksize\x00", a)
        .await
        .unwrap();
    let (n, _) = timeout(Duration::from_secs(2), u.recv_from(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Error { code: 8, .. })
    ));
    u.send_to(b"\x00\x09xx", a).await.unwrap();
    u.send_to(&packet::ack(1), a).await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), u.recv_from(&mut b))
            .await
            .is_err(),
        "garbage and stray ACKs get no answer (F1, F2)"
    );
    let st = tftp_stats(&s);
    assert_eq!(st.write_refused.get(), 1);
    assert!(st.traversal.get() >= 5);
    // Still serving.
    assert_eq!(
        get(a, "ITLFile.tlv", &o).await.unwrap().data,
        file(&c, "ITLFile.tlv")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn tftp_unknown_tid_duplicate_ack_and_client_error() {
    let (c, s) = start().await;
    let a = addr(&s, Port::Tftp);
    let itl = file(&c, "ITLFile.tlv");
    assert!(itl.len() > 1024, "needs 3+ blocks");
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(&packet::request(false, "ITLFile.tlv", "octet", &[]), a)
        .await
        .unwrap();
    let mut b = [0u8; 2048];
    let (n, tid) = recv(&u, &mut b).await;
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Data { block: 1, .. })
    ));
    // F12: an ACK from another port → ERROR 5 to that port; the transfer goes on.
    stranger.send_to(&packet::ack(1), tid).await.unwrap();
    let (n, _) = recv(&stranger, &mut b).await;
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Error { code: 5, .. })
    ));
    u.send_to(&packet::ack(1), tid).await.unwrap();
    let (n, _) = recv(&u, &mut b).await;
    assert!(matches!(
        packet::parse(&b[..n]),
        Ok(Packet::Data { block: 2, .. })
    ));
    // F11: a duplicate ACK 1 and a future ACK 9 are not answered by a resend.
    u.send_to(&packet::ack(1), tid).await.unwrap();
    u.send_to(&packet::ack(9), tid).await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), u.recv_from(&mut b))
            .await
            .is_err()
    );
    // F10: a client ERROR (long, no NUL, not UTF-8) ends the transfer.
    let mut e = vec![0, 5, 0, 0];
    e.extend(std::iter::repeat_n(0xffu8, 1000));
    u.send_to(&e, tid).await.unwrap();
    let st = tftp_stats(&s);
    eventually("client error counted", || st.client_error.get() == 1).await;
    assert!(st.odd_acks.get() >= 2);
    assert_eq!(st.unknown_tid.get(), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn tftp_gives_up_on_vanished_clients_and_caps_transfers() {
    let limits = Limits {
        tftp_timeout: Duration::from_millis(50),
        tftp_retries: 2,
        tftp_max_transfers: 1,
        ..Limits::default()
    };
    let (c, s) = start_with(limits).await;
    let a = addr(&s, Port::Tftp);
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(&packet::request(false, "ITLFile.tlv", "octet", &[]), a)
        .await
        .unwrap();
    // A second RRQ from the same ip:port does not start a second transfer (F15).
    u.send_to(&packet::request(false, "ITLFile.tlv", "octet", &[]), a)
        .await
        .unwrap();
    // While that client holds the only slot, another is told "server busy".
    tokio::time::sleep(Duration::from_millis(20)).await;
    let other = get(a, "ITLFile.tlv", &TftpOptions::default()).await;
    assert_eq!(tftp_err(other), (0, "server busy".to_string()));
    // The silent client sees DATA 1 three times (first + 2 retries), then nothing.
    let mut b = [0u8; 2048];
    let mut datas = 0;
    while let Ok(Ok((n, _))) = timeout(Duration::from_millis(500), u.recv_from(&mut b)).await {
        if matches!(packet::parse(&b[..n]), Ok(Packet::Data { block: 1, .. })) {
            datas += 1;
        }
    }
    assert_eq!(datas, 3);
    let st = tftp_stats(&s);
    eventually("gave up", || st.gave_up.get() == 1).await;
    assert_eq!(st.started.get(), 1);
    // The slot is free again.
    assert_eq!(
        get(a, "ITLFile.tlv", &TftpOptions::default())
            .await
            .unwrap()
            .data,
        file(&c, "ITLFile.tlv")
    );
    s.shutdown().await;
}

/// Waits (at most 5 s) until the listener has parsed `n` requests: a flood sent in batches then
/// never overflows the listening socket's receive buffer, so the counts below are exact.
async fn requests_reach(st: &itlsim_net::tftp::TftpStats, n: u64) {
    for _ in 0..5000 {
        if st.requests.get() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "the listener parsed {} of {n} RRQs in 5 s",
        st.requests.get()
    );
}

#[tokio::test]
async fn tftp_rrq_flood_from_clients_that_never_ack_leaves_the_server_serving() {
    // 500 source ports × 4 RRQs = 2,000 RRQs, never an ACK (bad-inputs F13, F15). The cap (1,024
    // by default) is above the number of ports, so every port gets a transfer; a repeated RRQ
    // from a port whose transfer is still running does not start a second one; each silent
    // transfer sends DATA 1, retransmits it once (retries 1) and gives up.
    const PORTS: usize = 500;
    const ROUNDS: usize = 4;
    const BATCH: usize = 50;
    let limits = Limits {
        tftp_timeout: Duration::from_millis(300),
        tftp_retries: 1,
        ..Limits::default()
    };
    let (c, s) = start_with(limits).await;
    let a = addr(&s, Port::Tftp);
    let st = tftp_stats(&s);
    let itl = file(&c, "ITLFile.tlv");
    assert!(itl.len() > 512, "DATA 1 is a full block");
    let mut socks = Vec::with_capacity(PORTS);
    for _ in 0..PORTS {
        socks.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    let rrq = packet::request(false, "ITLFile.tlv", "octet", &[]);
    let mut sent = 0u64;
    for _ in 0..ROUNDS {
        for batch in socks.chunks(BATCH) {
            for u in batch {
                u.send_to(&rrq, a).await.unwrap();
                sent += 1;
            }
            requests_reach(&st, sent).await;
        }
    }
    assert_eq!(sent, 2000);
    // With up to 500 silent transfers holding slots and retransmitting, a valid client is served
    // at once.
    let opts = TftpOptions {
        blksize: Some(1428),
        ..TftpOptions::default()
    };
    let got = timeout(Duration::from_secs(3), get(a, "ITLFile.tlv", &opts))
        .await
        .expect("a valid client is served within 3 s of the flood")
        .unwrap();
    assert_eq!(got.data, itl);
    // Every RRQ had exactly one outcome: a transfer, or ignored as a repeat; nobody was told
    // "server busy" (below the cap) and nothing was malformed. (The valid client may have
    // retransmitted its RRQ on a slow machine: hence "at least".)
    assert!(st.requests.get() > sent);
    eventually("every RRQ accounted for", || {
        st.started.get() + st.ignored.get() == st.requests.get()
    })
    .await;
    assert_eq!(st.busy.get(), 0);
    assert_eq!(st.malformed.get(), 0);
    let started = st.started.get();
    assert!(
        started > PORTS as u64,
        "every port got a transfer: {started}"
    );
    // Every silent transfer gives up (slot and socket freed by the give-up deadline, F13).
    eventually("every silent transfer given up", || {
        st.gave_up.get() + st.completed.get() == started
    })
    .await;
    assert_eq!(st.completed.get(), 1, "only the valid client completed");
    // No amplification: each silent transfer sent DATA 1 exactly 1 + retries = 2 times, and
    // nothing else (every send is over, the datagrams wait in the client sockets).
    let mut b = [0u8; 2048];
    let mut datas = 0u64;
    for u in &socks {
        let mut mine = 0u64;
        while let Ok((n, from)) = u.try_recv_from(&mut b) {
            assert_ne!(from, a, "answers come from per-transfer sockets");
            assert!(
                matches!(packet::parse(&b[..n]), Ok(Packet::Data { block: 1, data }) if data == &itl[..512]),
                "only DATA 1 of the ITL"
            );
            mine += 1;
        }
        assert!(
            mine >= 2 && mine % 2 == 0 && mine <= 2 * ROUNDS as u64,
            "DATA 1 twice per transfer: {mine}"
        );
        datas += mine;
    }
    assert_eq!(datas, 2 * (started - 1));
    // The slots are free: a plain client is served too.
    assert_eq!(
        get(a, "ITLFile.tlv", &TftpOptions::default())
            .await
            .unwrap()
            .data,
        itl
    );
    s.shutdown().await;
}

/// A client played by hand: sends `rrq` from a fresh socket, acknowledges the OACK with ACK 0
/// and each DATA block, and returns the OACK options (if one came), the DATA payload sizes and
/// the bytes. Bounded: 10,000 packets, 3 s per wait.
async fn raw_download(
    server: SocketAddr,
    rrq: &[u8],
) -> (Option<Vec<(String, String)>>, Vec<usize>, Vec<u8>) {
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(rrq, server).await.unwrap();
    let mut b = vec![0u8; 65_536];
    let (mut oack, mut sizes, mut data) = (None, Vec::new(), Vec::new());
    let mut tid = None;
    let mut blksize = 512;
    for _ in 0..10_000 {
        let (n, from) = recv(&u, &mut b).await;
        assert_ne!(from, server, "answers come from a new TID");
        assert_eq!(*tid.get_or_insert(from), from, "one TID per transfer");
        match packet::parse(&b[..n]).unwrap() {
            Packet::Oack { options } => {
                assert!(oack.is_none() && sizes.is_empty(), "OACK first, once");
                let options: Vec<(String, String)> = options
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect();
                if let Some((_, v)) = options.iter().find(|(k, _)| k == "blksize") {
                    blksize = v.parse().unwrap();
                }
                oack = Some(options);
                u.send_to(&packet::ack(0), from).await.unwrap();
            }
            Packet::Data { block, data: d } => {
                assert_eq!(usize::from(block), sizes.len() + 1, "blocks in order");
                assert!(d.len() <= blksize, "DATA within the block size");
                sizes.push(d.len());
                data.extend_from_slice(d);
                u.send_to(&packet::ack(block), from).await.unwrap();
                if d.len() < blksize {
                    return (oack, sizes, data);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("transfer did not end within 10,000 packets");
}

#[tokio::test]
async fn tftp_blksize_0_and_65535_are_ignored_and_512_byte_blocks_are_sent() {
    // RFC 2348: blksize is 8..=65464. 0 and 65535 are out of range; the server does what its
    // module doc says (F9): the option is not acknowledged, the transfer goes on with the
    // default 512-byte blocks (RFC 2347: no OACK when no option is acknowledged — DATA 1
    // first), and the other options of the same request are still acknowledged.
    let (c, s) = start().await;
    let a = addr(&s, Port::Tftp);
    let st = tftp_stats(&s);
    let itl = file(&c, "ITLFile.tlv");
    let blocks = itl.len() / 512 + 1;
    let check = |sizes: &[usize], what: &str| {
        assert_eq!(sizes.len(), blocks, "{what}: 512-byte blocks");
        assert!(sizes[..blocks - 1].iter().all(|n| *n == 512), "{what}");
        assert_eq!(sizes[blocks - 1], itl.len() % 512, "{what}");
    };
    for v in ["0", "65535"] {
        let rrq = packet::request(false, "ITLFile.tlv", "octet", &[("blksize", v.into())]);
        let (oack, sizes, data) = raw_download(a, &rrq).await;
        assert_eq!(oack, None, "blksize {v} alone: no OACK, DATA 1 first");
        assert_eq!(data, itl, "blksize {v}");
        check(&sizes, &format!("blksize {v}"));
        let rrq = packet::request(
            false,
            "ITLFile.tlv",
            "octet",
            &[("blksize", v.into()), ("tsize", "0".into())],
        );
        let (oack, sizes, data) = raw_download(a, &rrq).await;
        assert_eq!(
            oack,
            Some(vec![("tsize".to_string(), itl.len().to_string())]),
            "blksize {v} + tsize: OACK with tsize only"
        );
        assert_eq!(data, itl);
        check(&sizes, &format!("blksize {v} + tsize"));
        // The same through the crate's client (which sends the value as asked).
        let g = get(
            a,
            "ITLFile.tlv",
            &TftpOptions {
                blksize: Some(v.parse().unwrap()),
                ..TftpOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((g.oack, g.blksize), (false, 512), "blksize {v}");
        assert_eq!(g.data, itl);
    }
    assert_eq!(
        st.malformed.get(),
        0,
        "an out-of-range value is not an error"
    );
    assert_eq!(st.started.get(), 6);
    eventually("all six completed", || st.completed.get() == 6).await;
    // A valid client is still served, with the block size it asks for.
    let g = get(
        a,
        "ITLFile.tlv",
        &TftpOptions {
            blksize: Some(1428),
            ..TftpOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((g.oack, g.blksize), (true, 1428));
    assert_eq!(g.data, itl);
    s.shutdown().await;
}

// ---------------------------------------------------------------- HTTP / HTTPS

#[tokio::test]
async fn http_6970_serves_files_and_refuses_the_rest() {
    let (c, s) = start().await;
    let a = addr(&s, Port::Http);
    let d = Duration::from_secs(5);
    let r = http_request(a, Method::GET, "/ITLFile.tlv", d)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), file(&c, "ITLFile.tlv").as_slice());
    let r = http_request(a, Method::HEAD, "/ITLFile.tlv", d)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_length, Some(file(&c, "ITLFile.tlv").len() as u64));
    assert!(r.body.is_empty());
    // CUCM answers 503 for the CTL of a non-mixed cluster (phone-behaviour §2.3).
    let r = http_request(a, Method::GET, &format!("/CTLSEP{MAC}.tlv"), d)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        http_request(a, Method::GET, "/nope.xml", d)
            .await
            .unwrap()
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http_request(a, Method::POST, "/ITLFile.tlv", d)
            .await
            .unwrap()
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    for p in [
        "/../../etc/passwd",
        "/%2e%2e%2fetc",
        "/..%5cx",
        "//etc/passwd",
        "/a%00",
    ] {
        assert_eq!(
            http_request(a, Method::GET, p, d).await.unwrap().status,
            StatusCode::BAD_REQUEST,
            "{p}"
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn http_slow_and_oversized_headers_are_cut_off() {
    let limits = Limits {
        http_header: Duration::from_millis(300),
        ..Limits::default()
    };
    let (c, s) = start_with(limits).await;
    let a = addr(&s, Port::Http);
    let mut slow = TcpStream::connect(a).await.unwrap();
    slow.write_all(b"GET /ITLFile.tlv HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "slow headers closed at the header deadline");
    let mut big = TcpStream::connect(a).await.unwrap();
    let mut req = b"GET /ITLFile.tlv HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..2000 {
        req.extend_from_slice(format!("X-{i}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    let _ = big.write_all(&req).await;
    let mut buf = Vec::new();
    let r = timeout(Duration::from_secs(3), big.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "oversized headers refused");
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
    // Still serving.
    let r = http_request(a, Method::GET, "/ITLFile.tlv", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.body.as_ref(), file(&c, "ITLFile.tlv").as_slice());
    s.shutdown().await;
}

#[tokio::test]
async fn https_6971_and_6972_present_the_node_identities() {
    let (c, s) = start().await;
    let d = Duration::from_secs(5);
    let rsa_only = Some(vec![
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ]);
    let name = format!("/SEP{MAC}.cnf.xml.sgn");
    let r = https_get(
        addr(&s, Port::Https6971),
        &name,
        ServerCertPolicy::AcceptAny,
        None,
        d,
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), file(&c, &name[1..]).as_slice());
    assert_eq!(
        r.server_cert.unwrap(),
        identity(&c, NodeId(0), CertPurpose::CallManagerEcdsa),
        "an ECDSA-capable client gets CallManager-ECDSA on 6971"
    );
    let r = https_get(
        addr(&s, Port::Https6971),
        "/ITLFile.tlv",
        ServerCertPolicy::AcceptAny,
        rsa_only.clone(),
        d,
    )
    .await
    .unwrap();
    assert_eq!(
        r.server_cert.unwrap(),
        identity(&c, NodeId(0), CertPurpose::CallManager)
    );
    let r = https_get(
        addr(&s, Port::Https6972),
        "/ITLFile.tlv",
        ServerCertPolicy::AcceptAny,
        rsa_only,
        d,
    )
    .await
    .unwrap();
    assert_eq!(
        r.server_cert.unwrap(),
        identity(&c, NodeId(0), CertPurpose::Tomcat)
    );
    // A pin on the wrong certificate fails the handshake.
    let wrong = ServerCertPolicy::Pin(vec![identity(&c, NodeId(0), CertPurpose::Tvs)]);
    let r = https_get(addr(&s, Port::Https6971), "/ITLFile.tlv", wrong, None, d).await;
    assert!(matches!(r, Err(ClientError::Tls(_))));
    // Plain HTTP on the TLS port: closed, nothing served (H6).
    let r = http_request(addr(&s, Port::Https6971), Method::GET, "/ITLFile.tlv", d).await;
    assert!(r.is_err());
    s.shutdown().await;
}

// ---------------------------------------------------------------- model changes

#[tokio::test]
async fn stopped_services_close_their_ports_and_come_back() {
    let (c, mut s) = start().await;
    let tvs_addr = addr(&s, Port::Tvs);
    let http_addr = addr(&s, Port::Http);
    let tftp_addr = addr(&s, Port::Tftp);
    let svc = |service, op| AdminAction::Service {
        node: NodeId(0),
        service,
        op,
    };
    c.apply(0, NOW + 10, svc(Service::Tvs, ServiceOp::Stop))
        .unwrap();
    c.apply(0, NOW + 10, svc(Service::Tftp, ServiceOp::Stop))
        .unwrap();
    s.settle().await;
    assert!(
        TcpStream::connect(tvs_addr).await.is_err(),
        "TVS port refuses"
    );
    assert!(TcpStream::connect(http_addr).await.is_err(), "6970 refuses");
    let quick = TftpOptions {
        retransmit: Duration::from_millis(100),
        retries: 1,
        ..TftpOptions::default()
    };
    assert!(
        get(tftp_addr, "ITLFile.tlv", &quick).await.is_err(),
        "TFTP silent"
    );
    // The subscriber keeps serving.
    let sub = NodeRef {
        cluster: 0,
        node: NodeId(1),
    };
    let r = get(
        s.addr(sub, Port::Tftp).unwrap(),
        "ITLFile.tlv",
        &TftpOptions::default(),
    )
    .await;
    assert!(r.is_ok());
    c.apply(0, NOW + 20, svc(Service::Tvs, ServiceOp::Start))
        .unwrap();
    c.apply(0, NOW + 20, svc(Service::Tftp, ServiceOp::Start))
        .unwrap();
    s.settle().await;
    assert_eq!(addr(&s, Port::Tvs), tvs_addr, "same port after restart");
    liveness(&c, &s).await;
    assert!(
        get(tftp_addr, "ITLFile.tlv", &TftpOptions::default())
            .await
            .is_ok()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn regenerated_tvs_certificate_is_presented_after_restart() {
    let (c, mut s) = start().await;
    let old = identity(&c, NodeId(0), CertPurpose::Tvs);
    let any = TvsClient::new(ServerCertPolicy::AcceptAny);
    let cm = identity(&c, NodeId(0), CertPurpose::CallManager);
    let req = [Message::verify_request(1, &device(), &cm)];
    c.apply(
        0,
        NOW + 100,
        AdminAction::RegenerateCert {
            node: NodeId(0),
            purpose: CertPurpose::Tvs,
        },
    )
    .unwrap();
    s.settle().await;
    let new = identity(&c, NodeId(0), CertPurpose::Tvs);
    assert_ne!(old, new);
    let before = any.exchange(addr(&s, Port::Tvs), &req).await.unwrap();
    let restarted = c
        .read(0, |c| c.node(NodeId(0)).unwrap().runs(Service::Tvs))
        .unwrap();
    if before.server_cert == old {
        // No automatic restart in the model: restart by hand.
        c.apply(
            0,
            NOW + 200,
            AdminAction::Service {
                node: NodeId(0),
                service: Service::Tvs,
                op: ServiceOp::Restart,
            },
        )
        .unwrap();
        s.settle().await;
    }
    assert!(restarted);
    let after = any.exchange(addr(&s, Port::Tvs), &req).await.unwrap();
    assert_eq!(
        after.server_cert, new,
        "the new TVS certificate after the restart"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn https_6971_keeps_the_old_callmanager_until_tftp_restarts_e13() {
    let (c, mut s) = start().await;
    let old = identity(&c, NodeId(0), CertPurpose::CallManager);
    let rsa_only = Some(vec![SignatureScheme::RSA_PSS_SHA256]);
    let d = Duration::from_secs(5);
    c.apply(
        0,
        NOW + 100,
        AdminAction::RegenerateCert {
            node: NodeId(0),
            purpose: CertPurpose::CallManager,
        },
    )
    .unwrap();
    s.settle().await;
    let new = identity(&c, NodeId(0), CertPurpose::CallManager);
    assert_ne!(old, new);
    let a = addr(&s, Port::Https6971);
    let r = https_get(
        a,
        "/ITLFile.tlv",
        ServerCertPolicy::AcceptAny,
        rsa_only.clone(),
        d,
    )
    .await
    .unwrap();
    let model_cert = c
        .read(0, |c| {
            c.node(NodeId(0))
                .unwrap()
                .tftp
                .https_6971
                .as_ref()
                .unwrap()
                .der()
                .to_vec()
        })
        .unwrap();
    assert!(
        r.server_cert.unwrap() == model_cert,
        "6971 presents what the model says (E13)"
    );
    assert!(
        model_cert == old,
        "E13: still the old CallManager after the regeneration"
    );
    let tftp = |op| AdminAction::Service {
        node: NodeId(0),
        service: Service::Tftp,
        op,
    };
    // A plain restart keeps it (knob `tftp_https_refresh`, default per E13) …
    c.apply(0, NOW + 200, tftp(ServiceOp::Restart)).unwrap();
    s.settle().await;
    let r = https_get(
        a,
        "/ITLFile.tlv",
        ServerCertPolicy::AcceptAny,
        rsa_only.clone(),
        d,
    )
    .await
    .unwrap();
    assert!(
        r.server_cert.unwrap() == old,
        "E13: a TFTP restart keeps the old certificate"
    );
    // … deactivating and reactivating TFTP presents the new one.
    c.apply(0, NOW + 300, tftp(ServiceOp::Deactivate)).unwrap();
    s.settle().await;
    assert!(
        TcpStream::connect(a).await.is_err(),
        "6971 closed while TFTP is deactivated"
    );
    c.apply(0, NOW + 400, tftp(ServiceOp::Activate)).unwrap();
    s.settle().await;
    let r = https_get(a, "/ITLFile.tlv", ServerCertPolicy::AcceptAny, rsa_only, d)
        .await
        .unwrap();
    assert!(
        r.server_cert.unwrap() == new,
        "new CallManager after TFTP deactivate + activate"
    );
    s.shutdown().await;
}

/// The RSA certificate 6972 presents (an RSA-only client: the ECDSA tomcat goes to ECDSA clients).
async fn cert_6972(s: &Server) -> Vec<u8> {
    let rsa_only = Some(vec![
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ]);
    let r = https_get(
        addr(s, Port::Https6972),
        "/ITLFile.tlv",
        ServerCertPolicy::AcceptAny,
        rsa_only,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    r.server_cert.unwrap()
}

/// The tomcat certificate the model says 6972 presents (the TFTP service's snapshot, E13).
fn model_6972(c: &Clusters) -> Vec<u8> {
    c.read(0, |c| {
        c.node(NodeId(0))
            .unwrap()
            .tftp
            .https_6972
            .as_ref()
            .unwrap()
            .der()
            .to_vec()
    })
    .unwrap()
}

/// Regenerates the publisher's tomcat certificate (6972 presented the old one before) and waits for
/// the listeners; returns (old, new) DER.
async fn regenerate_tomcat(c: &Arc<Clusters>, s: &mut Server) -> (Vec<u8>, Vec<u8>) {
    let old = identity(c, NodeId(0), CertPurpose::Tomcat);
    assert_eq!(cert_6972(s).await, old);
    c.apply(
        0,
        NOW + 100,
        AdminAction::RegenerateCert {
            node: NodeId(0),
            purpose: CertPurpose::Tomcat,
        },
    )
    .unwrap();
    s.settle().await;
    let new = identity(c, NodeId(0), CertPurpose::Tomcat);
    assert_ne!(old, new);
    (old, new)
}

#[tokio::test]
async fn regenerated_tomcat_certificate_is_presented_on_6972_after_tftp_reactivation() {
    let (c, mut s) = start().await;
    let a = addr(&s, Port::Https6972);
    let (old, new) = regenerate_tomcat(&c, &mut s).await;
    assert_eq!(
        cert_6972(&s).await,
        old,
        "E13: 6972 keeps the tomcat certificate of the last TFTP start"
    );
    let svc = |service, op| AdminAction::Service {
        node: NodeId(0),
        service,
        op,
    };
    // The restart the regeneration asks for (Cisco Tomcat) does not move 6972: the TFTP service
    // serves it (E13, S5 names Tomcat too).
    c.apply(0, NOW + 200, svc(Service::Tomcat, ServiceOp::Restart))
        .unwrap();
    s.settle().await;
    assert_eq!(cert_6972(&s).await, old, "Cisco Tomcat restart");
    assert_eq!(model_6972(&c), old);
    // A plain TFTP restart keeps it too (default knob `tftp_https_refresh = reactivate`) …
    c.apply(0, NOW + 300, svc(Service::Tftp, ServiceOp::Restart))
        .unwrap();
    s.settle().await;
    assert_eq!(cert_6972(&s).await, old, "TFTP restart, default knob");
    assert_eq!(model_6972(&c), old);
    // … deactivating TFTP closes 6972, reactivating it presents the new tomcat certificate on
    // the same port.
    c.apply(0, NOW + 400, svc(Service::Tftp, ServiceOp::Deactivate))
        .unwrap();
    s.settle().await;
    assert!(
        TcpStream::connect(a).await.is_err(),
        "6972 closed while TFTP is deactivated"
    );
    c.apply(0, NOW + 500, svc(Service::Tftp, ServiceOp::Activate))
        .unwrap();
    s.settle().await;
    assert_eq!(addr(&s, Port::Https6972), a, "same port after the restart");
    assert_eq!(model_6972(&c), new);
    assert_eq!(
        cert_6972(&s).await,
        new,
        "the new tomcat certificate after TFTP deactivate + activate"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn regenerated_tomcat_certificate_is_presented_on_6972_after_a_tftp_restart_with_the_knob() {
    // Knob `tftp_https_refresh = restart` (seed 000: "TFTP service should be restarted when a
    // Tomcat certificate is uploaded"): a plain TFTP restart is enough.
    let mut spec = ClusterSpec::new(
        "A",
        Version::parse("12.5").unwrap(),
        &["cucm-pub", "cucm-sub"],
        NOW,
    );
    spec.knobs.tftp_https_refresh = TftpHttpsRefresh::Restart;
    let cl = Cluster::install(spec, KeySource::new(7)).unwrap();
    let (c, mut s) = start_cluster(cl, Limits::default()).await;
    let (old, new) = regenerate_tomcat(&c, &mut s).await;
    assert_eq!(cert_6972(&s).await, old, "before the restart");
    c.apply(
        0,
        NOW + 200,
        AdminAction::Service {
            node: NodeId(0),
            service: Service::Tftp,
            op: ServiceOp::Restart,
        },
    )
    .unwrap();
    s.settle().await;
    assert_eq!(model_6972(&c), new);
    assert_eq!(
        cert_6972(&s).await,
        new,
        "the new tomcat certificate after the TFTP restart"
    );
    // The TVS port did not move with it (another service).
    liveness(&c, &s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn cluster_file_builds_a_two_node_cluster() {
    let yaml = "seed: 3\ninstalled_at: 1767225600\nclusters:\n  - name: A\n    version: '14SU3'\n    nodes: [cucm-pub, cucm-sub]\n    no_tftp: [cucm-sub]\nfleet:\n  - name: f\n    cluster: A\n    models: {'8845': 2}\n    mac_start: '00:11:22:33:44:55'\ntimeline: []\n";
    let cs = itlsim_net::serve::clusters_from_yaml(yaml, 0).unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].nodes().len(), 2);
    assert!(!cs[0].nodes()[1].runs(Service::Tftp));
    assert!(
        cs[0]
            .tftp_get(NodeId(0), &format!("SEP{MAC}.cnf.xml.sgn"))
            .is_ok()
    );
    assert!(itlsim_net::serve::clusters_from_yaml("clusters: []", 0).is_err());
    assert!(
        itlsim_net::serve::clusters_from_yaml("clusters: [{name: A, version: x, nodes: [a]}]", 0)
            .is_err()
    );
}

async fn recv(s: &UdpSocket, b: &mut [u8]) -> (usize, SocketAddr) {
    timeout(Duration::from_secs(3), s.recv_from(b))
        .await
        .unwrap()
        .unwrap()
}
