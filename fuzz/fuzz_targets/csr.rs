//! The CSR reader (`kofu ca issue --csr`, `POST /api/v1/certificates`, verifiers' client
//! certificates): any bytes, PEM or DER, are checked or refused, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kofu::ca::csr::check(data);
});
