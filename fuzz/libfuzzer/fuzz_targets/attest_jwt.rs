#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| writ_fuzz::targets::attest_jwt::run(data));
