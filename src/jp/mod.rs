//! Japanese input forms as clerks type them: era dates (和暦), kana, kanji numerals, postal
//! codes. Everything here is pure and total: bad input is an error that says what is wrong.

pub mod era;
pub mod kana;
pub mod time;

use unicode_normalization::UnicodeNormalization;

/// NFKC (full-width digits and letters to ASCII, half-width kana to full-width, ㍻ to 平成),
/// with every kind of white space removed.
pub fn fold(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// The value of a kanji numeral (〇一二…九十百千), or of ASCII digits; None if neither.
pub fn kanji_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    let digit = |c: char| {
        "〇一二三四五六七八九"
            .chars()
            .position(|d| d == c)
            .map(|p| p as u32)
    };
    // Positional form (二〇二六) when there are no unit characters.
    if !s.contains(['十', '百', '千']) {
        return s
            .chars()
            .try_fold(0u32, |acc, c| Some(acc.checked_mul(10)? + digit(c)?));
    }
    let (mut total, mut current) = (0u32, None::<u32>);
    for c in s.chars() {
        let unit = match c {
            '十' => 10,
            '百' => 100,
            '千' => 1000,
            _ => {
                if current.is_some() {
                    return None; // two digits in a row in unit form
                }
                current = Some(digit(c)?);
                continue;
            }
        };
        total += current.take().unwrap_or(1) * unit;
    }
    Some(total + current.unwrap_or(0))
}

/// A postal code in any usual form (〒123-4567, １２３４５６７) as seven ASCII digits.
pub fn postal_code(s: &str) -> Result<String, String> {
    let f = fold(s);
    let digits: String = f
        .trim_start_matches('〒')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if digits.len() == 7 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(format!(
            "{s:?} is not a postal code; write 7 digits such as 100-0001"
        ))
    }
}

/// Seven digits shown as 〒123-4567.
pub fn postal_display(digits: &str) -> String {
    if digits.len() == 7 {
        format!("〒{}-{}", &digits[..3], &digits[3..])
    } else {
        digits.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kanji_numbers() {
        for (s, n) in [
            ("一", 1),
            ("十", 10),
            ("十一", 11),
            ("二十", 20),
            ("三十五", 35),
            ("百二", 102),
            ("千九百八十四", 1984),
            ("二〇二六", 2026),
            ("64", 64),
        ] {
            assert_eq!(kanji_number(s), Some(n), "{s}");
        }
        for s in ["", "一二十", "十十x", "abc"] {
            assert_eq!(kanji_number(s), None, "{s}");
        }
    }

    #[test]
    fn postal_codes() {
        assert_eq!(postal_code("〒100-0001").as_deref(), Ok("1000001"));
        assert_eq!(postal_code("１００－０００１").as_deref(), Ok("1000001"));
        assert_eq!(postal_code("1000001").as_deref(), Ok("1000001"));
        assert!(postal_code("100-001").is_err());
        assert_eq!(postal_display("1000001"), "〒100-0001");
    }
}
