//! The kana and address normalisers of the four-field check: no input panics, and any text
//! compares as a match with itself.
#![no_main]
use kofu::registry::normalize;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kofu::jp::kana::to_katakana(s);
    let _ = kofu::jp::kana::check_name(s);
    let _ = kofu::jp::kana::key(s);
    let _ = kofu::jp::fold(s);
    let _ = kofu::jp::postal_code(s);
    let _ = normalize::name_key(s);
    let _ = normalize::address_key(s);
    let same = |v: normalize::Verdict| v != normalize::Verdict::Mismatch;
    assert!(same(normalize::compare_name(s, s)), "name {s:?}");
    assert!(same(normalize::compare_kana(s, s)), "kana {s:?}");
    assert!(same(normalize::compare_address(s, s)), "address {s:?}");
});
