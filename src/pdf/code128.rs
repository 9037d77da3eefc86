//! Code 128 (code set B) bar patterns: what the post office's and the counter's scanners
//! read from a label. Each symbol is six alternating bar/space widths in modules (the stop
//! symbol seven), starting with a bar.

use crate::error::{Error, Result};

/// Widths of symbols 0–106 (103–105 are the start symbols, 106 the stop symbol).
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];
const START_B: usize = 104;
const STOP: usize = 106;

/// The bars of `text` (printable ASCII) as (offset, width) in modules from the left edge,
/// quiet zones not included; and the total width in modules.
pub fn bars(text: &str) -> Result<(Vec<(u32, u32)>, u32)> {
    if text.is_empty() || !text.bytes().all(|b| (32..=126).contains(&b)) {
        return Err(Error::bad(
            "barcode",
            "Code 128 B encodes printable ASCII only",
        ));
    }
    let values: Vec<usize> = text.bytes().map(|b| usize::from(b - 32)).collect();
    let check = (START_B
        + values
            .iter()
            .enumerate()
            .map(|(i, v)| (i + 1) * v)
            .sum::<usize>())
        % 103;
    let mut symbols = vec![START_B];
    symbols.extend(values);
    symbols.push(check);
    symbols.push(STOP);
    let mut out = Vec::new();
    let mut x = 0u32;
    for s in symbols {
        for (i, w) in PATTERNS[s].bytes().enumerate() {
            let w = u32::from(w - b'0');
            if i % 2 == 0 {
                out.push((x, w));
            }
            x += w;
        }
    }
    Ok((out, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_is_eleven_modules_and_the_stop_thirteen() {
        for (i, p) in PATTERNS.iter().enumerate() {
            let sum: u32 = p.bytes().map(|b| u32::from(b - b'0')).sum();
            assert_eq!(sum, if i == STOP { 13 } else { 11 }, "symbol {i}");
        }
        let unique: std::collections::BTreeSet<&str> = PATTERNS.iter().copied().collect();
        assert_eq!(unique.len(), PATTERNS.len());
    }

    #[test]
    fn width_follows_the_length() {
        // start + 13 digits + check = 15 symbols of 11 modules, and the stop of 13.
        let (_, width) = bars("1234567890128").unwrap();
        assert_eq!(width, 15 * 11 + 13);
        assert!(bars("").is_err());
        assert!(bars("番号").is_err());
    }
}
