#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| corsair_fuzz::targets::request_headers(data));
