//! Lifetimes tied to the holder's birthdays (SPEC §3): certificates run to the holder's 5th
//! birthday after issuance, cards to the 10th (5th for minors). A 29 February birthday falls
//! on 28 February in common years. "After issuance" is strict: issued on a birthday, that
//! birthday does not count.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// Age of the card-holding minor limit (Civil Code: majority at 18 since 2022).
pub const MAJORITY_AGE: u32 = 18;

/// The holder's birthday in `year`, with 29 February moved to 28 February in common years.
pub fn birthday_in(birth: NaiveDate, year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .unwrap_or(birth)
}

/// The `n`th birthday strictly after `issued` (n ≥ 1).
pub fn nth_birthday_after(birth: NaiveDate, issued: NaiveDate, n: u32) -> NaiveDate {
    let this_year = birthday_in(birth, issued.year());
    let first_year = if this_year > issued {
        issued.year()
    } else {
        issued.year() + 1
    };
    birthday_in(birth, first_year + n.saturating_sub(1) as i32)
}

/// Completed years of age on `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    let mut age = on.year() - birth.year();
    if on < birthday_in(birth, on.year()) {
        age -= 1;
    }
    age.max(0) as u32
}

/// The last instant of `day` in Japan (23:59:59 JST = 14:59:59 UTC).
pub fn end_of_day_jst(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_hms_opt(14, 59, 59).unwrap_or_default();
    Utc.from_utc_datetime(&naive)
}

/// The calendar date in Japan of an instant.
pub fn jst_date(t: DateTime<Utc>) -> NaiveDate {
    (t + chrono::Duration::hours(9)).date_naive()
}

/// notAfter of a holder certificate issued at `now`.
pub fn certificate_not_after(birth: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
    end_of_day_jst(nth_birthday_after(birth, jst_date(now), 5))
}

/// Expiry of a card issued at `now`: the 10th birthday after issuance, the 5th for minors.
pub fn card_expiry(birth: NaiveDate, now: DateTime<Utc>) -> NaiveDate {
    let today = jst_date(now);
    let n = if age_on(birth, today) < MAJORITY_AGE {
        5
    } else {
        10
    };
    nth_birthday_after(birth, today, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn fifth_birthday_ordinary() {
        // Issued before this year's birthday: this year's counts as the first.
        assert_eq!(
            nth_birthday_after(d(1980, 6, 15), d(2026, 3, 1), 5),
            d(2030, 6, 15)
        );
        // Issued after it: next year's is the first.
        assert_eq!(
            nth_birthday_after(d(1980, 6, 15), d(2026, 7, 1), 5),
            d(2031, 6, 15)
        );
    }

    #[test]
    fn issued_on_the_birthday_itself() {
        assert_eq!(
            nth_birthday_after(d(1980, 6, 15), d(2026, 6, 15), 5),
            d(2031, 6, 15)
        );
        assert_eq!(
            nth_birthday_after(d(1980, 6, 15), d(2026, 6, 14), 5),
            d(2030, 6, 15)
        );
    }

    #[test]
    fn leap_day_birthdays() {
        // Born 29 Feb: in common years the birthday is 28 Feb.
        assert_eq!(birthday_in(d(2000, 2, 29), 2027), d(2027, 2, 28));
        assert_eq!(birthday_in(d(2000, 2, 29), 2028), d(2028, 2, 29));
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2026, 1, 10), 5),
            d(2030, 2, 28)
        );
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2026, 3, 1), 5),
            d(2031, 2, 28)
        );
        // Issued on 28 Feb of a common year is issuance on the birthday.
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2027, 2, 28), 1),
            d(2028, 2, 29)
        );
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2027, 2, 28), 5),
            d(2032, 2, 29)
        );
        // Issued on 29 Feb of a leap year.
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2028, 2, 29), 5),
            d(2033, 2, 28)
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age_on(d(2011, 11, 22), d(2026, 11, 21)), 14);
        assert_eq!(age_on(d(2011, 11, 21), d(2026, 11, 21)), 15);
        assert_eq!(age_on(d(2008, 2, 29), d(2023, 2, 28)), 15);
        assert_eq!(age_on(d(2008, 2, 29), d(2023, 2, 27)), 14);
    }

    #[test]
    fn not_after_is_end_of_day_in_japan() {
        let now = Utc
            .with_ymd_and_hms(2026, 6, 14, 16, 0, 0)
            .single()
            .unwrap_or_default(); // 15 June 01:00 JST
        let na = certificate_not_after(d(1980, 6, 15), now);
        assert_eq!(
            na,
            Utc.with_ymd_and_hms(2031, 6, 15, 14, 59, 59)
                .single()
                .unwrap_or_default()
        );
    }

    #[test]
    fn card_expiry_minor_and_adult() {
        let now = Utc
            .with_ymd_and_hms(2026, 1, 1, 3, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(card_expiry(d(2010, 5, 5), now), d(2030, 5, 5));
        assert_eq!(card_expiry(d(1970, 5, 5), now), d(2035, 5, 5));
    }
}
