mod common;
use common::*;
use itlsim_server::*;

#[test]
fn v12_itl_parses_and_verifies() {
    let c = cluster("A", "12.5", &["pub", "sub1"], 1);
    let l = itl(&c, 0);
    let s = signer_der(&l);
    assert_eq!(s, c.itl_recovery().unwrap().cert.der());
    println!("{} bytes, {} records", l.raw().len(), l.records().len());
}
