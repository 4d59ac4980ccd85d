#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| itlsim_wire::fuzzing::sgn(data));
