//! Times and spans. Stored as whole seconds since the Unix epoch (UTC); shown as RFC 3339.
//! Spans such as `90d`, `12h`, `30min`, `1w`, `6mo` or `1y 2d` are parsed by jiff's friendly
//! format, except a bare `m`, which people read as minutes or months: it is refused.

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

/// Seconds in a day: the shortest rotation period or time to expiry given without a warning.
pub const DAY: i64 = 86_400;

/// Refuses a bare `m` unit (`6m`, `1h30m`): minutes to some, months to others.
fn refuse_bare_m(s: &str) -> Result<()> {
    let t = s.trim();
    // ISO 8601 (`P6M`, `PT6M`) says which it means.
    if t.starts_with(['P', 'p']) {
        return Ok(());
    }
    let bare_m = t
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|unit| unit.eq_ignore_ascii_case("m"));
    if bare_m {
        let n: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n = if n.is_empty() { "6".to_owned() } else { n };
        return Err(Error::Usage(format!(
            "'{s}': 'm' could mean minutes or months; write {n}min for minutes or {n}mo for months"
        )));
    }
    Ok(())
}

/// Parses a span (`90d`, `12h`, `30min`, `1w`, `6mo`, `1y`, long forms such as `3 months`)
/// into seconds, counted from `from` in UTC.
pub fn parse_span(s: &str, from: Time) -> Result<i64> {
    refuse_bare_m(s)?;
    let span: jiff::Span = s.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "'{s}' is not a span (examples: 90d, 12h, 30min, 1w, 6mo, 1y)"
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
    refuse_bare_m(s)?;
    let span: jiff::Span = s.trim().parse().map_err(|_| {
        Error::Usage(format!(
            "'{s}' is not a duration (examples: 10s, 500ms, 2min)"
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
    refuse_bare_m(t.trim_start_matches(['-', '+']))?;
    if let Some(rest) = t.strip_prefix('-') {
        return Ok(now - parse_span(rest, now).map_err(|_| bad())?);
    }
    let rest = t.strip_prefix('+').unwrap_or(t);
    Ok(now + parse_span(rest, now).map_err(|_| bad())?)
}

/// Shows a span in seconds compactly, as [`parse_span`] reads it back: `90d`, `12h`, `45min`,
/// `30s`. For people, [`human_span`] reads better.
pub fn show_span(secs: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    for (n, u) in UNITS {
        if secs % n == 0 && secs >= n {
            return format!("{}{u}", secs / n);
        }
    }
    format!("{secs}s")
}

/// Shows a span to a person, rounded down to its two largest units, seconds only under a
/// minute: `59 min`, `1 h 5 min`, `13 d 4 h`, `40 s` (never `3599s`).
pub fn human_span(secs: i64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    let s = secs.unsigned_abs();
    let Some(first) = UNITS.iter().position(|(n, _)| s >= *n) else {
        return "0 s".into();
    };
    let (n, u) = UNITS[first];
    let mut out = format!("{} {u}", s / n);
    if let Some((m, v)) = UNITS.get(first + 1)
        && *m > 1
        && (s % n) / m > 0
    {
        out.push_str(&format!(" {} {v}", (s % n) / m));
    }
    out
}

/// A warning when a rotation period is under a day (`6min` where `6mo` was meant).
pub fn short_rotation_warning(secs: i64) -> Option<String> {
    (secs < DAY).then(|| {
        format!(
            "a rotation period of {} is under a day{}",
            human_span(secs),
            months_hint(secs)
        )
    })
}

/// A warning when an expiry set now is less than a day away.
pub fn short_expiry_warning(at: Time, now: Time) -> Option<String> {
    let left = at - now;
    (left > 0 && left < DAY).then(|| {
        format!(
            "the expiry is only {} away{}",
            human_span(left),
            months_hint(left)
        )
    })
}

/// For a span of whole minutes under an hour (`6min`), the months it may have been meant as;
/// nothing for any other span (`2h` means hours).
fn months_hint(secs: i64) -> String {
    if secs % 60 == 0 && (60..3_600).contains(&secs) {
        let n = secs / 60;
        format!("; if you meant {n} months, write {n}mo")
    } else {
        String::new()
    }
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

    #[test]
    fn units_say_what_they_mean() {
        let now = 1_800_000_000;
        for (s, secs) in [
            ("30min", 1_800),
            ("30 minutes", 1_800),
            ("2h", 7_200),
            ("2 hours", 7_200),
            ("3d", 3 * DAY),
            ("3 days", 3 * DAY),
            ("2w", 14 * DAY),
            ("2 weeks", 14 * DAY),
            ("1y", 365 * DAY),
            ("1 year", 365 * DAY),
            ("PT6M", 360),
        ] {
            assert_eq!(parse_span(s, now).unwrap(), secs, "{s}");
        }
        // 2027-01-15 + 1 month is 31 days on.
        let jan = parse_when("2027-01-15", now).unwrap();
        assert_eq!(parse_span("1mo", jan).unwrap(), 31 * DAY);
        assert_eq!(parse_span("1 month", jan).unwrap(), 31 * DAY);
        for bad in ["6m", "1h30m", "6 M", "2m 3s"] {
            let e = parse_span(bad, now).unwrap_err().to_string();
            assert!(
                e.contains("minutes or months") && e.contains("min") && e.contains("mo"),
                "{bad}: {e}"
            );
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(
            parse_span("6m", now)
                .unwrap_err()
                .to_string()
                .contains("6min")
        );
        assert_eq!(parse_duration("15min").unwrap().as_secs(), 900);
    }

    #[test]
    fn spans_are_shown_in_words_people_read() {
        assert_eq!(human_span(3_599), "59 min");
        assert_eq!(human_span(90), "1 min");
        assert_eq!(human_span(3_540), "59 min");
        assert_eq!(human_span(3_900), "1 h 5 min");
        assert_eq!(human_span(13 * DAY + 4 * 3_600 + 7), "13 d 4 h");
        assert_eq!(human_span(40), "40 s");
        assert_eq!(human_span(0), "0 s");
        assert_eq!(show_span(45 * 60), "45min");
        assert_eq!(parse_span(&show_span(45 * 60), 0).unwrap(), 45 * 60);
        assert!(short_rotation_warning(360).unwrap().contains("6 min"));
        assert!(
            short_rotation_warning(360)
                .unwrap()
                .ends_with("if you meant 6 months, write 6mo")
        );
        // Hours are hours: no word of months.
        for secs in [2 * 3_600, 3_600, 90 * 60, 45] {
            let w = short_rotation_warning(secs).unwrap();
            assert!(!w.contains("month"), "{w}");
            let w = short_expiry_warning(1_000 + secs, 1_000).unwrap();
            assert!(!w.contains("month"), "{w}");
        }
        assert!(short_rotation_warning(DAY).is_none());
        assert!(
            short_expiry_warning(1_000 + 3_540, 1_000)
                .unwrap()
                .contains("59 min")
        );
        assert!(short_expiry_warning(1_000 - 5, 1_000).is_none());
        assert!(short_expiry_warning(1_000 + DAY, 1_000).is_none());
    }
}
