//! The verifiers' serial parser (`POST /api/v1/linkage/serials` and `/query`): lines of the
//! input as a serial list; what it accepts is upper-case hex that parses again unchanged.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let list: Vec<String> = s.lines().map(str::to_string).collect();
    if let Ok(parsed) = kofu::service::linkage::parse_serials(&list) {
        let again = kofu::service::linkage::parse_serials(&parsed).ok();
        assert_eq!(again.as_ref(), Some(&parsed));
    }
    for line in s.lines() {
        let _ = kofu::ca::serial::Serial::from_hex(line);
    }
});
