//! The registry extract reader (`kofu registry import`): header, CSV lines and every field
//! check, as the import runs them before anything is stored.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let _ = kofu::registry::extract::read_extract(data, today);
});
