//! Shared helpers for the server tests.
#![allow(dead_code)] // each test binary uses a different subset

use itlsim_server::*;
use itlsim_wire::tags::Role;
use itlsim_wire::tlv::TrustList;

/// 2020-01-01T00:00:00Z.
pub const T0: i64 = 1_577_836_800;
pub const HOUR: i64 = 3600;

pub fn spec(name: &str, version: &str, hosts: &[&str]) -> ClusterSpec {
    ClusterSpec::new(name, Version::parse(version).expect("version"), hosts, T0)
}

pub fn cluster(name: &str, version: &str, hosts: &[&str], seed: u64) -> Cluster {
    Cluster::install(spec(name, version, hosts), KeySource::new(seed)).expect("install")
}

/// A cluster with `phones` registered phones in the default group.
pub fn with_phones(mut c: Cluster, phones: u64) -> Cluster {
    c.add_fleet("8861", 0x0011_2233_0000, phones, CmGroupId(0))
        .expect("fleet");
    c
}

pub fn mac(i: u64) -> Mac {
    Mac::from_u64(0x0011_2233_0000 + i)
}

pub fn itl(c: &Cluster, node: u16) -> TrustList {
    let served = c.tftp_get(NodeId(node), "ITLFile.tlv").expect("ITL served");
    TrustList::decode(&served.bytes).expect("ITL decodes")
}

pub fn ctl(c: &Cluster) -> TrustList {
    let served = c.tftp_get(NodeId(0), "CTLFile.tlv").expect("CTL served");
    TrustList::decode(&served.bytes).expect("CTL decodes")
}

/// DER of the record that signed the list (verifies the signature with it first).
pub fn signer_der(list: &TrustList) -> Vec<u8> {
    let signer = list
        .verify_self()
        .expect("signature verifies with its SAST record");
    signer
        .record
        .certificate()
        .expect("signer has a certificate")
        .to_vec()
}

/// (role code, certificate DER) of every record.
pub fn records(list: &TrustList) -> Vec<(u16, Vec<u8>)> {
    list.records()
        .iter()
        .map(|r| {
            (
                r.role().map(|x| x.0).unwrap_or(u16::MAX),
                r.certificate().unwrap_or_default().to_vec(),
            )
        })
        .collect()
}

pub fn count_role(list: &TrustList, role: Role) -> usize {
    list.with_role(role).count()
}

pub fn has(list: &TrustList, role: Role, cert: &Certificate) -> bool {
    list.with_role(role)
        .any(|r| r.certificate() == Some(cert.der()))
}

pub fn id(c: &Cluster, node: u16, p: CertPurpose) -> Certificate {
    c.identity(NodeId(node), p).expect("identity").cert.clone()
}
