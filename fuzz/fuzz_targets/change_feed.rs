//! The registry change-feed reader (`kofu registry changes`): every line's own checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kofu::registry::extract::read_changes(data);
});
