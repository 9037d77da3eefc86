//! Dates as clerks write them: ISO (1960-10-10, 1960/10/10, 19601010, 1960年10月10日) and
//! Japanese era dates (昭和35年10月10日, S35.10.10, 令和元年5月1日, ㍼35年, 全角 digits, kanji
//! numerals). An era date must fall inside its era: 平成31年5月1日 and 昭和64年1月8日 do not
//! exist. Dates are shown back in era form.

use crate::jp::{fold, kanji_number};
use chrono::{Datelike, NaiveDate};

/// The modern eras, newest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 明治 (from 1868-10-23 in the Gregorian calendar)
    Meiji,
    /// 大正
    Taisho,
    /// 昭和
    Showa,
    /// 平成
    Heisei,
    /// 令和
    Reiwa,
}

struct EraSpec {
    era: Era,
    name: &'static str,
    letter: char,
    first: (i32, u32, u32),
    last: Option<(i32, u32, u32)>,
}

const ERAS: [EraSpec; 5] = [
    EraSpec {
        era: Era::Meiji,
        name: "明治",
        letter: 'M',
        first: (1868, 10, 23),
        last: Some((1912, 7, 29)),
    },
    EraSpec {
        era: Era::Taisho,
        name: "大正",
        letter: 'T',
        first: (1912, 7, 30),
        last: Some((1926, 12, 24)),
    },
    EraSpec {
        era: Era::Showa,
        name: "昭和",
        letter: 'S',
        first: (1926, 12, 25),
        last: Some((1989, 1, 7)),
    },
    EraSpec {
        era: Era::Heisei,
        name: "平成",
        letter: 'H',
        first: (1989, 1, 8),
        last: Some((2019, 4, 30)),
    },
    EraSpec {
        era: Era::Reiwa,
        name: "令和",
        letter: 'R',
        first: (2019, 5, 1),
        last: None,
    },
];

fn ymd((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn spec_of(era: Era) -> &'static EraSpec {
    ERAS.iter().find(|s| s.era == era).unwrap_or(&ERAS[4])
}

/// Parse a date in any accepted form. The error says what is wrong, in Japanese.
pub fn parse(input: &str) -> Result<NaiveDate, String> {
    let s = fold(input);
    if s.is_empty() {
        return Err("日付が空です".into());
    }
    // Era prefix: kanji name or Latin letter.
    let mut era = None;
    let mut rest = s.as_str();
    for spec in &ERAS {
        if let Some(r) = rest.strip_prefix(spec.name) {
            era = Some(spec);
            rest = r;
            break;
        }
        let mut chars = rest.chars();
        if chars.next().map(|c| c.to_ascii_uppercase()) == Some(spec.letter) {
            era = Some(spec);
            rest = chars.as_str();
            break;
        }
    }
    let (y, m, d) = split_ymd(rest).ok_or_else(|| {
        format!("{input:?} は日付として読めません（例：昭和35年10月10日、S35.10.10、1960-10-10）")
    })?;
    match era {
        None => {
            if !(1000..=9999).contains(&y) {
                return Err(format!(
                    "{input:?} の年が読めません（西暦は4桁、和暦は元号を付けてください）"
                ));
            }
            NaiveDate::from_ymd_opt(y as i32, m, d)
                .ok_or_else(|| format!("{input:?} という日付はありません"))
        }
        Some(spec) => {
            if y == 0 {
                return Err(format!(
                    "{input:?}：{}0年はありません（1年目は元年）",
                    spec.name
                ));
            }
            let year = spec.first.0 + y as i32 - 1;
            let date = NaiveDate::from_ymd_opt(year, m, d)
                .ok_or_else(|| format!("{input:?} という日付はありません"))?;
            let first = ymd(spec.first);
            if date < first {
                return Err(format!(
                    "{input:?} はありません：{}は{}に始まります",
                    spec.name,
                    format_era(first)
                ));
            }
            if let Some(last) = spec.last.map(ymd)
                && date > last
            {
                return Err(format!(
                    "{input:?} はありません：{}は{}で終わり、翌日は{}です",
                    spec.name,
                    format_era(last),
                    format_era(last.succ_opt().unwrap_or(last))
                ));
            }
            Ok(date)
        }
    }
}

/// Split "35年10月10日", "35.10.10", "1960-10-10", "19601010", "元年5月1日" into numbers
/// (year 元 = 1).
fn split_ymd(s: &str) -> Option<(u32, u32, u32)> {
    if s.len() == 8 && s.chars().all(|c| c.is_ascii_digit()) {
        return Some((
            s[..4].parse().ok()?,
            s[4..6].parse().ok()?,
            s[6..].parse().ok()?,
        ));
    }
    let s = s.strip_suffix('日').unwrap_or(s);
    let parts: Vec<&str> = s.split(['年', '月', '.', '/', '-']).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let year = if parts[0] == "元" {
        1
    } else {
        kanji_number(parts[0])?
    };
    Some((year, kanji_number(parts[1])?, kanji_number(parts[2])?))
}

/// The era of a date (None before Meiji).
pub fn era_of(date: NaiveDate) -> Option<Era> {
    ERAS.iter()
        .rev()
        .find(|s| date >= ymd(s.first))
        .map(|s| s.era)
}

/// A date in era form: 昭和35年10月10日, 令和元年5月1日; ISO before Meiji.
pub fn format_era(date: NaiveDate) -> String {
    match era_of(date) {
        Some(era) => {
            let spec = spec_of(era);
            let n = date.year() - spec.first.0 + 1;
            let year = if n == 1 {
                "元".to_string()
            } else {
                n.to_string()
            };
            format!("{}{}年{}月{}日", spec.name, year, date.month(), date.day())
        }
        None => date.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("昭和35年10月10日", d(1960, 10, 10)),
            ("S35.10.10", d(1960, 10, 10)),
            ("s35/10/10", d(1960, 10, 10)),
            ("Ｓ３５．１０．１０", d(1960, 10, 10)),
            ("昭和３５年１０月１０日", d(1960, 10, 10)),
            ("㍼35年10月10日", d(1960, 10, 10)),
            ("昭和三十五年十月十日", d(1960, 10, 10)),
            (" 昭和 35年 10月 10日 ", d(1960, 10, 10)),
            ("1960-10-10", d(1960, 10, 10)),
            ("1960/10/10", d(1960, 10, 10)),
            ("19601010", d(1960, 10, 10)),
            ("1960年10月10日", d(1960, 10, 10)),
            ("２０２６－０１－０２", d(2026, 1, 2)),
            ("平成31年4月30日", d(2019, 4, 30)),
            ("令和元年5月1日", d(2019, 5, 1)),
            ("R1.5.1", d(2019, 5, 1)),
            ("令和1年5月1日", d(2019, 5, 1)),
            ("昭和64年1月7日", d(1989, 1, 7)),
            ("平成元年1月8日", d(1989, 1, 8)),
            ("H1.1.8", d(1989, 1, 8)),
            ("大正15年12月24日", d(1926, 12, 24)),
            ("昭和元年12月25日", d(1926, 12, 25)),
            ("明治45年7月29日", d(1912, 7, 29)),
            ("大正元年7月30日", d(1912, 7, 30)),
            ("平成12年2月29日", d(2000, 2, 29)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refused() {
        for s in [
            "平成31年5月1日",  // already 令和
            "令和元年4月30日", // still 平成
            "昭和64年1月8日",  // already 平成
            "平成元年1月7日",  // still 昭和
            "大正15年12月25日",
            "昭和0年1月1日",
            "平成11年2月29日", // 1999 is not a leap year
            "2023-02-29",
            "1960-13-01",
            "1960-04-31",
            "S35",
            "35.10.10", // no era, two-digit year
            "",
            "きのう",
            "X35.10.10",
        ] {
            assert!(
                parse(s).is_err(),
                "{s:?} should be refused, got {:?}",
                parse(s)
            );
        }
        assert!(
            parse("平成31年5月1日")
                .unwrap_err()
                .contains("令和元年5月1日")
        );
    }

    #[test]
    fn shown_in_era_form() {
        assert_eq!(format_era(d(1960, 10, 10)), "昭和35年10月10日");
        assert_eq!(format_era(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(format_era(d(2019, 4, 30)), "平成31年4月30日");
        assert_eq!(format_era(d(1989, 1, 7)), "昭和64年1月7日");
        assert_eq!(format_era(d(1989, 1, 8)), "平成元年1月8日");
        assert_eq!(format_era(d(2026, 11, 21)), "令和8年11月21日");
        for s in ["S35.10.10", "令和元年5月1日", "H31.4.30"] {
            assert_eq!(
                parse(&format_era(parse(s).unwrap_or(NaiveDate::MIN))),
                parse(s)
            );
        }
    }
}
