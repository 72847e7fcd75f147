//! Times and spans. Stored as whole seconds since the Unix epoch (UTC); shown as RFC 3339.
//! Spans such as `90d`, `12h`, `1w`, `6mo` or `1y 2d` are parsed by jiff's friendly format.

use crate::{Error, Result};
use jiff::{Timestamp, Unit, tz::TimeZone};

/// Seconds since the Unix epoch, UTC.
pub type Time = i64;

/// The current time.
pub fn now() -> Time {
    Timestamp::now().as_second()
}

/// RFC 3339 in UTC, e.g. `2026-11-28T01:51:05Z`.
pub fn rfc3339(t: Time) -> String {
    Timestamp::from_second(t)
        .map(|ts| ts.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The date part only, e.g. `2026-11-28`.
pub fn date(t: Time) -> String {
    rfc3339(t).chars().take(10).collect()
}

/// Parses a span (`90d`, `12h`, `1w`, `1y`) into seconds, counted from `from` in UTC.
pub fn parse_span(s: &str, from: Time) -> Result<i64> {
    let span: jiff::Span = s.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "'{s}' is not a span (examples: 90d, 12h, 1w, 6mo, 1y)"
        ))
    })?;
    let start = Timestamp::from_second(from)
        .map_err(|e| Error::Other(format!("clock out of range: {e}")))?
        .to_zoned_datetime(TimeZone::UTC);
    let secs = span
        .total((Unit::Second, &start))
        .map_err(|_| Error::Usage(format!("span '{s}' is out of range")))?;
    if secs.is_nan() || secs <= 0.0 || secs > 1e11 {
        return Err(Error::Usage(format!(
            "span '{s}' must be positive and under 3000 years"
        )));
    }
    Ok(secs as i64)
}

/// Parses a span for a duration such as a lock timeout (no calendar units needed).
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let secs = parse_span_allow_zero(s)?;
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn parse_span_allow_zero(s: &str) -> Result<f64> {
    let span: jiff::Span = s.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "'{s}' is not a duration (examples: 10s, 500ms, 2m)"
        ))
    })?;
    let secs = span
        .total((Unit::Second, jiff::SpanRelativeTo::days_are_24_hours()))
        .map_err(|_| Error::Usage(format!("duration '{s}' is out of range")))?;
    if !(0.0..=1e9).contains(&secs) {
        return Err(Error::Usage(format!("duration '{s}' is out of range")));
    }
    Ok(secs)
}

/// Parses a point in time: RFC 3339 (`2027-01-31T12:00:00Z`), a date (`2027-01-31`, midnight
/// UTC), or a span from now (`90d`, `+90d`); `-3d` means three days ago.
pub fn parse_when(s: &str, now: Time) -> Result<Time> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_second());
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>() {
        let z = d
            .to_zoned_datetime(TimeZone::UTC)
            .map_err(|e| Error::Usage(format!("bad date '{s}': {e}")))?;
        return Ok(z.timestamp().as_second());
    }
    let bad = || {
        Error::Usage(format!(
            "'{s}' is not a time (examples: 2027-01-31, 2027-01-31T12:00:00Z, 90d, -3d)"
        ))
    };
    if let Some(rest) = t.strip_prefix('-') {
        return Ok(now - parse_span(rest, now).map_err(|_| bad())?);
    }
    let rest = t.strip_prefix('+').unwrap_or(t);
    Ok(now + parse_span(rest, now).map_err(|_| bad())?)
}

/// Shows a span in seconds compactly: `90d`, `12h`, `45m`, `30s`.
pub fn show_span(secs: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    for (n, u) in UNITS {
        if secs % n == 0 && secs >= n {
            return format!("{}{u}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times() {
        let now = 1_800_000_000;
        assert_eq!(parse_span("90d", now).unwrap(), 90 * 86_400);
        assert_eq!(parse_span("1w", now).unwrap(), 7 * 86_400);
        assert_eq!(parse_span("12h", now).unwrap(), 12 * 3_600);
        assert!(parse_span("0d", now).is_err());
        assert!(parse_span("soon", now).is_err());
        assert_eq!(parse_when("2027-01-31", now).unwrap(), 1_801_353_600);
        assert_eq!(
            parse_when("2027-01-31T00:00:00Z", now).unwrap(),
            1_801_353_600
        );
        assert_eq!(parse_when("-1d", now).unwrap(), now - 86_400);
        assert_eq!(parse_when("+1d", now).unwrap(), now + 86_400);
        assert_eq!(show_span(90 * 86_400), "90d");
        assert_eq!(show_span(3_600), "1h");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
    }
}
