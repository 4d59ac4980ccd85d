//! Runs the cargo-fuzz target bodies over their seed corpus (the conformance vectors) on stable,
//! so a regression found by fuzzing and added to `testdata/` stays fixed.

mod common;

use common::*;
use itlsim_wire::fuzzing;

#[test]
fn fuzz_targets_accept_their_seed_corpus() {
    let mut n = 0;
    for (rel, bytes) in all_signed_files() {
        fuzzing::tlv(&bytes);
        fuzzing::sgn(&bytes);
        fuzzing::enc_sgn(&bytes);
        fuzzing::tvs_frame(&bytes);
        n += usize::from(!rel.is_empty());
    }
    for conn in ["conn1", "conn2", "conn3"] {
        for dir in ["request", "response"] {
            let b = read(&format!("tvs/{conn}.{dir}.bin"));
            fuzzing::tvs_frame(&b);
            fuzzing::tlv(&b);
            n += 1;
        }
    }
    assert_eq!(n, 22, "seed corpus size changed: update fuzz/README.md");
}
