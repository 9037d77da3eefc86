//! Times as the office reads them: Japan Standard Time (UTC+9, no daylight saving), in the
//! written form 2026年12月1日 23:41, with the ISO 8601 form beside it for a tooltip.

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// JST.
fn jst() -> FixedOffset {
    // Nine hours is a valid offset; the UTC fallback is never taken.
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| Utc.fix())
}

/// An instant (Unix seconds) in JST, written form: `2026年12月1日 23:41`.
pub fn written(ts: i64) -> String {
    match DateTime::from_timestamp(ts, 0) {
        Some(t) => t
            .with_timezone(&jst())
            .format("%Y年%-m月%-d日 %H:%M")
            .to_string(),
        None => String::new(),
    }
}

/// An instant (Unix seconds) in JST, ISO 8601 with the offset: `2026-12-01T23:41:00+09:00`.
pub fn iso(ts: i64) -> String {
    match DateTime::from_timestamp(ts, 0) {
        Some(t) => t.with_timezone(&jst()).to_rfc3339(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn jst_is_nine_hours_ahead() {
        // 2026-12-01 14:41 UTC is 23:41 in Japan; 15:00 UTC is already the next day.
        let t = Utc
            .with_ymd_and_hms(2026, 12, 1, 14, 41, 0)
            .single()
            .map(|t| t.timestamp());
        assert_eq!(t.map(written).as_deref(), Some("2026年12月1日 23:41"));
        assert_eq!(t.map(iso).as_deref(), Some("2026-12-01T23:41:00+09:00"));
        let t = Utc
            .with_ymd_and_hms(2026, 12, 31, 15, 0, 0)
            .single()
            .map(|t| t.timestamp());
        assert_eq!(t.map(written).as_deref(), Some("2027年1月1日 00:00"));
    }
}
