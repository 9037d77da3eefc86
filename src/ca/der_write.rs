//! Hand-written DER for the two encoders that run per entry or per request (CRL entries,
//! OCSP responses): lengths, headers and times, without a formatter or an intermediate value.

use crate::ca::lint::fail;
use crate::error::Result;

/// Append a DER length.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A tag and length.
pub fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(6);
    h.push(tag);
    put_len(&mut h, len);
    h
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian; H. Hinnant's method).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4), without a
/// formatter: a million entries are written per full CRL.
pub fn put_time(out: &mut Vec<u8>, secs: i64) -> Result<()> {
    if secs < 0 {
        return Err(fail("revocation_date_valid", "revocation time before 1970"));
    }
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let two = |out: &mut Vec<u8>, v: i64| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    if y < 2050 {
        out.extend_from_slice(&[0x17, 13]);
    } else {
        out.extend_from_slice(&[0x18, 15]);
        two(out, y / 100);
    }
    two(out, y % 100);
    two(out, i64::from(mo));
    two(out, i64::from(d));
    two(out, sod / 3600);
    two(out, sod / 60 % 60);
    two(out, sod % 60);
    out.push(b'Z');
    Ok(())
}

/// GeneralizedTime (OCSP uses it for every time, RFC 6960 §4.2.2.1).
pub fn put_generalized_time(out: &mut Vec<u8>, secs: i64) -> Result<()> {
    if secs < 0 {
        return Err(fail("time_valid", "time before 1970"));
    }
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    out.extend_from_slice(&[0x18, 15]);
    for v in [
        y / 100,
        y % 100,
        i64::from(mo),
        i64::from(d),
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
    ] {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    }
    out.push(b'Z');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::profile::x509_time;
    use crate::error::Error;
    use chrono::{DateTime, Utc};
    use der::Encode;

    #[test]
    fn times_match_chrono() -> Result<()> {
        for secs in [
            0i64,
            951_782_400,
            1_700_000_000,
            2_524_607_999,
            2_524_608_000,
        ] {
            let mut fast = Vec::new();
            put_time(&mut fast, secs)?;
            let t = DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| Error::Internal("time".into()))?;
            assert_eq!(fast, x509_time(t)?.to_der()?, "{secs}");
        }
        Ok(())
    }

    #[test]
    fn generalized_times_match_der() -> Result<()> {
        for secs in [0i64, 1_700_000_000, 4_102_444_800] {
            let mut fast = Vec::new();
            put_generalized_time(&mut fast, secs)?;
            let dt =
                der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs as u64))?;
            assert_eq!(
                fast,
                der::asn1::GeneralizedTime::from_date_time(dt).to_der()?
            );
        }
        Ok(())
    }

    #[test]
    fn lengths() {
        let mut v = Vec::new();
        put_len(&mut v, 0x7f);
        put_len(&mut v, 0x80);
        put_len(&mut v, 0x1_0000);
        assert_eq!(v, [0x7f, 0x81, 0x80, 0x83, 0x01, 0x00, 0x00]);
    }
}
