//! The date parser (ISO and Japanese era forms): anything it accepts is a real date that
//! reads back the same through both of its written forms.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = kofu::jp::era::parse(s) {
        let iso = d.format("%Y-%m-%d").to_string();
        assert_eq!(kofu::jp::era::parse(&iso), Ok(d), "{s:?} -> {iso}");
        let era = kofu::jp::era::format_era(d);
        if let Ok(back) = kofu::jp::era::parse(&era) {
            assert_eq!(back, d, "{s:?} -> {era}");
        }
    }
});
