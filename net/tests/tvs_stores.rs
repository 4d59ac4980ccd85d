//! TVS over real TLS for the certificate kinds issue 4 lists: a CallManager certificate, a TVS
//! certificate, a certificate of another cluster imported by bulk import (seeds 001/003), and an
//! unknown certificate — each answered as the model's TVS decision (E1) says.

use std::sync::Arc;

use itlsim_net::clients::TvsClient;
use itlsim_net::serve::{PortMode, ServeConfig, Server};
use itlsim_net::tls::ServerCertPolicy;
use itlsim_net::view::{Clusters, NodeRef, Port};
use itlsim_server::{
    AdminAction, BulkKind, CertPurpose, Cluster, ClusterSpec, KeySource, NodeId, Version,
};
use itlsim_wire::tags::Role;
use itlsim_wire::tvs::{Message, Status};

const NOW: i64 = 1_767_225_600;

fn install(name: &str, seed: u64) -> Cluster {
    let spec = ClusterSpec::new(name, Version::parse("11.5").unwrap(), &["pub", "sub"], NOW);
    Cluster::install(spec, KeySource::new(seed)).unwrap()
}

#[tokio::test]
async fn tvs_answers_callmanager_tvs_imported_and_unknown_certificates() {
    let mut a = install("A", 31);
    let b = install("B", 32);
    let b_cm = b
        .identity(NodeId(0), CertPurpose::CallManager)
        .unwrap()
        .cert
        .der()
        .to_vec();
    // Bulk export of B's TFTP certificates, imported into A (the migration procedure).
    a.apply(
        NOW + 60,
        AdminAction::BulkImport(b.bulk_export(BulkKind::Tftp)),
    )
    .unwrap();
    let a_cm = a
        .identity(NodeId(0), CertPurpose::CallManager)
        .unwrap()
        .cert
        .der()
        .to_vec();
    let a_tvs = a
        .identity(NodeId(0), CertPurpose::Tvs)
        .unwrap()
        .cert
        .der()
        .to_vec();
    let unknown = install("C", 33)
        .identity(NodeId(0), CertPurpose::CallManager)
        .unwrap()
        .cert
        .der()
        .to_vec();
    let clusters = Arc::new(Clusters::new(vec![a]));
    let cfg = ServeConfig {
        mode: PortMode::Ephemeral,
        ..ServeConfig::default()
    };
    let server = Server::start(clusters.clone(), cfg).await.unwrap();
    let addr = server
        .addr(
            NodeRef {
                cluster: 0,
                node: NodeId(0),
            },
            Port::Tvs,
        )
        .unwrap();
    // The phone pins the TVS certificate of its ITL (T-TVS).
    let client = TvsClient::new(ServerCertPolicy::Pin(vec![a_tvs.clone()]));
    let device = "CP-8845-SEP001122334455";
    let reqs: Vec<Message> = [&a_cm, &a_tvs, &b_cm, &unknown]
        .iter()
        .map(|c| Message::verify_request(7, device, c))
        .collect();
    let x = client.exchange(addr, &reqs).await.unwrap();
    assert_eq!(x.server_cert, a_tvs);
    let answers: Vec<_> = x.responses.iter().map(|m| m.response().unwrap()).collect();
    // Every answer is exactly the model's decision.
    for (req, resp) in reqs.iter().zip(&x.responses) {
        let want = clusters
            .read(0, |c| {
                c.tvs_answer(NodeId(0), &req.request().unwrap()).unwrap()
            })
            .unwrap();
        assert_eq!(resp, &Message::response_to(req, &want.response));
    }
    // E1.1: a TFTP node's CallManager → SAST + its TFTP role; E1.2: own TVS → TVS.
    assert_eq!(answers[0].status, Status::Valid);
    assert!(
        answers[0].roles.contains(&Role::SAST),
        "{:?}",
        answers[0].roles
    );
    assert_eq!(answers[1].status, Status::Valid);
    assert!(
        answers[1].roles.contains(&Role::TVS),
        "{:?}",
        answers[1].roles
    );
    // E1.2: the other cluster's CallManager, imported into Phone-SAST-trust / CallManager-trust.
    assert_eq!(answers[2].status, Status::Valid);
    assert!(
        answers[2].roles.contains(&Role::SAST),
        "{:?}",
        answers[2].roles
    );
    // Unknown → invalid, status only.
    assert_eq!(answers[3].status, Status::Invalid);
    assert!(answers[3].roles.is_empty() && answers[3].ttl.is_none());
    server.shutdown().await;
}
