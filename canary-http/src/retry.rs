//! When to try again: `Retry-After` and exponential backoff.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The `Retry-After` of an answer, as a wait from `now` (the clock's time,
/// so a test clock gets the same answer every run). `None` when the header
/// is missing or unreadable; a date in the past means "now".
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

/// A `Retry-After` value: delta-seconds (`120`) or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), as a wait from `now`.
///
/// Only the IMF-fixdate form of an HTTP date is read: it is the only one a
/// server may send, and the obsolete forms carry a two-digit year. Anything
/// else is `None`, and the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // `Sun, …`: the obsolete RFC 850 form spells the weekday out and
    // asctime has no comma.
    if value.as_bytes().get(3) != Some(&b',') {
        return None;
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The backoff before retry number `retry` (1-based): `base · 2^(retry-1)`,
/// at most `max`, with jitter in `[d/2, d]`. `unit` in `[0, 1)` is the
/// random part (`rand::random()`), an argument so tests choose it.
///
/// The jitter keeps many clients that failed together (a fleet, a CI
/// matrix) from retrying together.
pub fn backoff(base: Duration, max: Duration, retry: u32, unit: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
    let full = exp.min(max);
    full.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use reqwest::header::HeaderValue;

    use super::*;

    const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const DATE_SECS: u64 = 784_111_777;

    #[test]
    fn http_dates() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(
            parse_retry_after(DATE, at(DATE_SECS - 30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(DATE, at(DATE_SECS)), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(DATE, at(DATE_SECS + 5)),
            Some(Duration::ZERO),
            "a past date means now"
        );
        let now = at(DATE_SECS);
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), None);
        assert_eq!(parse_retry_after("garbage", now), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::now();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static(DATE));
        assert_eq!(
            retry_after(&h, now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(10);
        assert!(close(
            backoff(base, max, 1, 0.999_999),
            Duration::from_millis(100)
        ));
        assert!(close(backoff(base, max, 1, 0.0), Duration::from_millis(50)));
        assert!(close(
            backoff(base, max, 3, 0.0),
            Duration::from_millis(200)
        ));
        assert!(backoff(base, max, 30, 0.999) <= max);
        assert!(backoff(base, max, u32::MAX, 0.5) <= max);
        assert!(backoff(base, max, 0, 0.5) <= base, "retry 0 is as retry 1");
    }
}
