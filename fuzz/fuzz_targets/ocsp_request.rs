//! The OCSP request parser (`POST /ocsp/{ca}` bodies and the base64 of GET requests).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kofu::ca::ocsp::parse_request(data);
});
