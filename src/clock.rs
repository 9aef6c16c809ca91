//! Wall-clock timestamps and the three text forms S3 uses for them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// ISO 8601 basic format used by SigV4 (`x-amz-date`): `20130524T000000Z`.
const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");
/// RFC 7231 IMF-fixdate: `Wed, 12 Oct 2009 17:50:00 GMT`.
const HTTP_DATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
/// ISO 8601 to the second, as S3 writes `<ServerTime>`: `2015-06-04T22:26:16Z`.
const ISO_SECONDS: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// A point in time with nanosecond resolution, stored as nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }

    fn to_offset(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `2010-11-10T20:48:33.000Z`, the form of `<Initiated>`, `<CreationDate>`, `<LastModified>`.
    pub fn to_xml(self) -> String {
        let mut out = String::with_capacity(24);
        self.write_xml(&mut out);
        out
    }

    /// [`Timestamp::to_xml`], appended to `out` (listings write thousands of these).
    pub fn write_xml(self, out: &mut String) {
        /// `n` in `width` digits, zero-padded.
        fn digits(out: &mut String, n: u32, width: usize) {
            let mut buf = [b'0'; 4];
            let mut n = n;
            for slot in buf[..width].iter_mut().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
            out.extend(buf[..width].iter().map(|&b| char::from(b)));
        }
        let t = self.to_offset();
        // Every i64 of nanoseconds falls in the years 1677 to 2262: four digits each.
        digits(out, t.year().unsigned_abs(), 4);
        out.push('-');
        digits(out, u32::from(u8::from(t.month())), 2);
        out.push('-');
        digits(out, u32::from(t.day()), 2);
        out.push('T');
        digits(out, u32::from(t.hour()), 2);
        out.push(':');
        digits(out, u32::from(t.minute()), 2);
        out.push(':');
        digits(out, u32::from(t.second()), 2);
        out.push('.');
        digits(out, u32::from(t.millisecond()), 3);
        out.push('Z');
    }

    /// `2015-06-04T22:26:16Z`.
    pub fn to_iso8601_seconds(self) -> String {
        self.to_offset().format(ISO_SECONDS).unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
    }

    /// `20130524T000000Z`, the SigV4 form.
    pub fn to_amz_date(self) -> String {
        self.to_offset().format(AMZ_DATE).unwrap_or_else(|_| String::from("19700101T000000Z"))
    }

    /// RFC 7231 IMF-fixdate: `Wed, 12 Oct 2009 17:50:00 GMT`. Any representable time
    /// formats (before 1970 too), so a client-supplied date can never make this fail.
    pub fn to_http_date(self) -> String {
        self.to_offset().format(HTTP_DATE).unwrap_or_else(|_| String::from("Thu, 01 Jan 1970 00:00:00 GMT"))
    }

    /// Parses the SigV4 `x-amz-date` form. Only years 0001–9999 are dates (`None` otherwise);
    /// times beyond what a `Timestamp` holds (1677–2262) saturate, which for comparisons with
    /// the clock is all that matters.
    pub fn parse_amz_date(s: &str) -> Option<Self> {
        // Exactly `YYYYMMDDTHHMMSSZ`: the format parser alone would also take a signed year.
        let b = s.as_bytes();
        let shape = b.len() == 16
            && b.iter().enumerate().all(|(i, c)| match i {
                8 => *c == b'T',
                15 => *c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape {
            return None;
        }
        let t = PrimitiveDateTime::parse(s, AMZ_DATE).ok()?.assume_utc();
        if !(1..=9999).contains(&t.year()) {
            return None;
        }
        let nanos = t.unix_timestamp_nanos();
        Some(Timestamp(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })))
    }

    /// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime), as in `Date` or `If-Modified-Since`.
    pub fn parse_http_date(s: &str) -> Option<Self> {
        httpdate::parse_http_date(s.trim()).ok().map(Self::from_system_time)
    }

    /// Parses a `Date` as Signature Version 2 clients send it: an HTTP date, or RFC 2822
    /// with a numeric zone (`Tue, 27 Mar 2007 19:36:42 +0000`).
    pub fn parse_sigv2_date(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::parse_http_date(s).or_else(|| {
            let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).ok()?;
            Some(Timestamp(i64::try_from(t.unix_timestamp_nanos()).ok()?))
        })
    }

    /// Parses an RFC 3339 time (`2030-01-01T12:00:00.000Z`), as a POST policy's `expiration`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
        Some(Timestamp(i64::try_from(t.unix_timestamp_nanos()).ok()?))
    }

    /// Whole seconds, truncating: HTTP dates carry no fractions, so comparisons use these.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    pub fn abs_diff(self, other: Timestamp) -> Duration {
        Duration::from_nanos(self.0.abs_diff(other.0))
    }

    /// `self + d`, saturating at the largest representable time.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// `self - d`, saturating at the smallest representable time.
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t = Timestamp::parse_amz_date("20130524T000000Z").expect("valid");
        assert_eq!(t.to_amz_date(), "20130524T000000Z");
        assert_eq!(t.to_xml(), "2013-05-24T00:00:00.000Z");
        assert_eq!(t.to_http_date(), "Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(Timestamp::parse_http_date("Fri, 24 May 2013 00:00:00 GMT"), Some(t));
        assert_eq!(Timestamp(1_500_000_000).to_xml(), "1970-01-01T00:00:01.500Z");
    }

    /// A client-supplied date before 1970 (or near the ends of the range) once panicked the
    /// HTTP date formatter; every representable time must format.
    #[test]
    fn dates_before_the_epoch_and_at_the_extremes_format() {
        let t = Timestamp::parse_amz_date("19691231T000000Z").expect("valid");
        assert_eq!(t.to_http_date(), "Wed, 31 Dec 1969 00:00:00 GMT");
        assert_eq!(t.to_amz_date(), "19691231T000000Z");
        for extreme in [Timestamp(i64::MIN), Timestamp(i64::MAX), Timestamp(-1)] {
            assert!(!extreme.to_http_date().is_empty());
            assert!(!extreme.to_xml().is_empty());
            assert!(!extreme.to_amz_date().is_empty());
        }
        assert_eq!(Timestamp(i64::MAX).plus(Duration::from_secs(1)), Timestamp(i64::MAX));
        assert_eq!(Timestamp(i64::MIN).minus(Duration::from_secs(1)), Timestamp(i64::MIN));
    }

    /// The hand-written XML form agrees with the `time` crate's formatting everywhere.
    #[test]
    fn xml_times_match_the_formatter() {
        let xml = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        let mut n: i64 = 1;
        let mut samples = vec![i64::MIN, i64::MAX, -1, 0, 999_999, 1_000_000, -1_000_001];
        while let Some(next) = n.checked_mul(3) {
            samples.extend([n, -n, n + 123_456_789, -n - 987_654_321]);
            n = next;
        }
        for t in samples.into_iter().map(Timestamp) {
            assert_eq!(t.to_xml(), t.to_offset().format(xml).expect("format"), "{t:?}");
        }
    }

    #[test]
    fn amz_dates_outside_the_representable_range_saturate() {
        assert!(Timestamp::parse_amz_date("00000101T000000Z").is_none(), "there is no year 0");
        assert_eq!(Timestamp::parse_amz_date("00010101T000000Z"), Some(Timestamp(i64::MIN)));
        assert_eq!(Timestamp::parse_amz_date("16000101T000000Z"), Some(Timestamp(i64::MIN)));
        assert_eq!(Timestamp::parse_amz_date("99991231T235959Z"), Some(Timestamp(i64::MAX)));
        assert!(Timestamp::parse_amz_date("17000101T000000Z").is_some_and(|t| t.0 > i64::MIN));
        assert_eq!(Timestamp(1_433_456_776_000_000_000).to_iso8601_seconds(), "2015-06-04T22:26:16Z");
    }

    #[test]
    fn rejects_malformed_dates() {
        assert!(Timestamp::parse_amz_date("2013-05-24T00:00:00Z").is_none());
        assert!(Timestamp::parse_amz_date("20130524T000000").is_none());
        assert!(Timestamp::parse_amz_date("20131324T000000Z").is_none());
        assert!(Timestamp::parse_amz_date("+20130524T000000Z").is_none());
        assert!(Timestamp::parse_amz_date("20130524T00000Z").is_none());
        assert!(Timestamp::parse_http_date("yesterday").is_none());
    }
}
