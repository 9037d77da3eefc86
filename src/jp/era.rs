//! Dates as clerks write them: ISO (1960-10-10, 1960/10/10, 19601010, 1960年10月10日) and
//! Japanese era dates (昭和35年10月10日, S35.10.10, 令和元年5月1日, ㍼35年, 全角 digits, kanji
//! numerals). An era date must fall inside its era: 平成31年5月1日 and 昭和64年1月8日 do not
//! exist. Dates are shown back in era form.
//!
//! The boundaries are the official ones: 大正 began on 1912-07-30 and 昭和 on 1926-12-25,
//! the days the emperors died, so those days are the old era's last day too (明治45年7月30日
//! and 大正15年12月25日 are dates, and are the same days as 大正元年7月30日 and 昭和元年12月25日);
//! 平成 began the day after 昭和's last (1989-01-07/08), and 令和 on 2019-05-01 after 平成's
//! last day 2019-04-30. A date on a shared day is shown in the new era.

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
        last: Some((1912, 7, 30)),
    },
    EraSpec {
        era: Era::Taisho,
        name: "大正",
        letter: 'T',
        first: (1912, 7, 30),
        last: Some((1926, 12, 25)),
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
            // No era has lasted 99 years (Shōwa, the longest, had 64); the current one has no
            // last day to check against, so bound its years here (and keep the sum in range).
            if y > 99 {
                return Err(format!(
                    "{input:?} の年が読めません：{}{y}年はありません",
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
                let next = ERAS
                    .iter()
                    .find(|n| ymd(n.first) > ymd(spec.first))
                    .unwrap_or(spec);
                return Err(format!(
                    "{input:?} はありません：{}は{}で終わり、{}は{}に始まりました",
                    spec.name,
                    format_in(spec, last),
                    next.name,
                    format_in(next, ymd(next.first))
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
        Some(era) => format_in(spec_of(era), date),
        None => date.format("%Y-%m-%d").to_string(),
    }
}

/// A date written in one era (the last day of an era that shares it with the next).
fn format_in(spec: &EraSpec, date: NaiveDate) -> String {
    let n = date.year() - spec.first.0 + 1;
    let year = if n == 1 {
        "元".to_string()
    } else {
        n.to_string()
    };
    format!("{}{}年{}月{}日", spec.name, year, date.month(), date.day())
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
            // The days of 1912 and 1926 that belong to both eras.
            ("明治45年7月30日", d(1912, 7, 30)),
            ("M45.7.30", d(1912, 7, 30)),
            ("大正15年12月25日", d(1926, 12, 25)),
            ("T15.12.25", d(1926, 12, 25)),
            ("明治元年10月23日", d(1868, 10, 23)),
            ("平成12年2月29日", d(2000, 2, 29)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refused() {
        for s in [
            "平成31年5月1日",   // already 令和
            "令和元年4月30日",  // still 平成
            "昭和64年1月8日",   // already 平成
            "平成元年1月7日",   // still 昭和
            "大正15年12月26日", // already 昭和 only
            "昭和元年12月24日", // still 大正
            "明治45年7月31日",  // already 大正 only
            "大正元年7月29日",  // still 明治
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
            // Found by the era_date fuzz target: the current era has no last day, and this
            // parsed as the year 46462 (which then did not read back as ISO).
            "r44444.4.3",
            "令和100年1月1日",
            "R4294967295.1.1",
        ] {
            assert!(
                parse(s).is_err(),
                "{s:?} should be refused, got {:?}",
                parse(s)
            );
        }
        // The message names the era's real last day and the next era's first, in their
        // own eras.
        let cases = [
            ("平成31年5月1日", "平成31年4月30日", "令和元年5月1日"),
            ("昭和64年1月8日", "昭和64年1月7日", "平成元年1月8日"),
            ("大正15年12月26日", "大正15年12月25日", "昭和元年12月25日"),
            ("明治45年7月31日", "明治45年7月30日", "大正元年7月30日"),
        ];
        for (s, last, first) in cases {
            let e = parse(s).unwrap_err();
            assert!(e.contains(last) && e.contains(first), "{s}: {e}");
        }
    }

    #[test]
    fn shown_in_era_form() {
        assert_eq!(format_era(d(1960, 10, 10)), "昭和35年10月10日");
        assert_eq!(format_era(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(format_era(d(2019, 4, 30)), "平成31年4月30日");
        assert_eq!(format_era(d(1989, 1, 7)), "昭和64年1月7日");
        assert_eq!(format_era(d(1989, 1, 8)), "平成元年1月8日");
        assert_eq!(format_era(d(1912, 7, 30)), "大正元年7月30日");
        assert_eq!(format_era(d(1912, 7, 29)), "明治45年7月29日");
        assert_eq!(format_era(d(1926, 12, 25)), "昭和元年12月25日");
        assert_eq!(format_era(d(1926, 12, 24)), "大正15年12月24日");
        assert_eq!(format_era(d(2026, 11, 21)), "令和8年11月21日");
        for s in ["S35.10.10", "令和元年5月1日", "H31.4.30"] {
            assert_eq!(
                parse(&format_era(parse(s).unwrap_or(NaiveDate::MIN))),
                parse(s)
            );
        }
    }
}
