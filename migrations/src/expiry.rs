//! A dated future's expiry as a markets file writes it: unix seconds, an
//! RFC 3339 date-time (`"2027-03-26T08:00:00Z"`, or a bare TOML date-time
//! `2027-03-26T08:00:00Z`), a bare date (00:00 UTC that day), or, for a
//! chain whose clock is not the wall clock (the demo's), seconds after
//! listing (`expiry_in_seconds`). No time-zone database: a date-time needs
//! its offset (`Z` or `±HH:MM`), whole seconds.
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// `expiry` as written: unix seconds or text (a TOML date-time arrives as
/// its RFC 3339 text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryValue {
    Unix(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for ExpiryValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpiryVisitor;

        impl<'de> Visitor<'de> for ExpiryVisitor {
            type Value = ExpiryValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "unix seconds, or an RFC 3339 date-time such as \"2027-03-26T08:00:00Z\"",
                )
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ExpiryValue, E> {
                Ok(ExpiryValue::Unix(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ExpiryValue, E> {
                i64::try_from(value)
                    .map(ExpiryValue::Unix)
                    .map_err(|_| E::custom(format!("{value} is out of range")))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<ExpiryValue, E> {
                Ok(ExpiryValue::Text(value.to_owned()))
            }

            // A bare TOML date-time is handed over as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ExpiryValue, A::Error> {
                let datetime =
                    toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ExpiryValue::Text(datetime.to_string()))
            }
        }

        deserializer.deserialize_any(ExpiryVisitor)
    }
}

impl ExpiryValue {
    /// Unix seconds.
    pub fn unix(&self) -> Result<i64, String> {
        match self {
            ExpiryValue::Unix(seconds) if *seconds > 0 => Ok(*seconds),
            ExpiryValue::Unix(seconds) => Err(format!("{seconds} is not a unix time after 1970")),
            ExpiryValue::Text(text) => parse_rfc3339(text),
        }
    }
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian; H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count from 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An RFC 3339 date-time (`2027-03-26T08:00:00Z`, `2027-03-26T10:00:00+02:00`,
/// `T` or a space between date and time) or a bare date (00:00 UTC), as unix
/// seconds. Whole seconds only; a date-time without an offset is refused
/// (which zone would it be in?).
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{text:?} is not an RFC 3339 date-time: {why}");
    let number = |digits: &str, what: &str| -> Result<i64, String> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("the {what} is not a number")));
        }
        digits
            .parse()
            .map_err(|_| bad(&format!("the {what} is out of range")))
    };
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(bad("expected YYYY-MM-DD first"));
    }
    let year = number(&text[0..4], "year")?;
    let month = number(&text[5..7], "month")?;
    let day = number(&text[8..10], "day")?;
    if !(1..=12).contains(&month) {
        return Err(bad("the month is not 01 to 12"));
    }
    if !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad("that month has no such day"));
    }
    let date = days_from_civil(year, month, day) * 86_400;
    if bytes.len() == 10 {
        return Ok(date);
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes.len() < 19 {
        return Err(bad("expected THH:MM:SS after the date"));
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return Err(bad("expected THH:MM:SS after the date"));
    }
    let hour = number(&text[11..13], "hour")?;
    let minute = number(&text[14..16], "minute")?;
    let second = number(&text[17..19], "second")?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("the time is out of range (leap seconds are not taken)"));
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a '.' with no fraction after it"));
        }
        if fraction[..digits].bytes().any(|b| b != b'0') {
            return Err(bad("an expiry is in whole seconds"));
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        "" => {
            return Err(bad(
                "no offset: add Z for UTC (or +HH:MM), the zone is not guessed",
            ))
        }
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad("the offset is not Z or ±HH:MM")),
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return Err(bad("the offset is not Z or ±HH:MM"));
            }
            let hours = number(&rest[1..3], "offset's hours")?;
            let minutes = number(&rest[4..6], "offset's minutes")?;
            if hours > 23 || minutes > 59 {
                return Err(bad("the offset is out of range"));
            }
            sign * (hours * 3_600 + minutes * 60)
        }
    };
    Ok(date + hour * 3_600 + minute * 60 + second - offset)
}

/// Unix seconds as RFC 3339 in UTC, e.g. `2027-03-26T08:00:00Z`.
pub fn format_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_read_as_unix_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2027-03-26T08:00:00Z"), Ok(1_806_048_000));
        assert_eq!(parse_rfc3339("2027-03-26t08:00:00z"), Ok(1_806_048_000));
        assert_eq!(parse_rfc3339("2027-03-26 08:00:00Z"), Ok(1_806_048_000));
        assert_eq!(
            parse_rfc3339("2027-03-26T10:00:00+02:00"),
            Ok(1_806_048_000)
        );
        assert_eq!(
            parse_rfc3339("2027-03-26T03:30:00-04:30"),
            Ok(1_806_048_000)
        );
        assert_eq!(parse_rfc3339("2027-03-26T08:00:00.000Z"), Ok(1_806_048_000));
        assert_eq!(parse_rfc3339("2027-03-26"), Ok(1_806_019_200));
        // A leap day, and the last second of a century's year.
        assert_eq!(parse_rfc3339("2028-02-29T00:00:00Z"), Ok(1_835_395_200));
        assert_eq!(parse_rfc3339("2000-12-31T23:59:59Z"), Ok(978_307_199));
        for refused in [
            "2027-03-26T08:00:00",
            "2027-02-29T00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-03-26T24:00:00Z",
            "2027-03-26T08:00:00.5Z",
            "2027-03-26T08:00:00+2:00",
            "2027-03-26T08:00Z",
            "26/03/2027",
            "next friday",
        ] {
            assert!(parse_rfc3339(refused).is_err(), "{refused}");
        }
        assert!(parse_rfc3339("2027-03-26T08:00:00")
            .unwrap_err()
            .contains("no offset"));
    }

    #[test]
    fn formatting_is_the_inverse() {
        for unix in [0, 1_806_048_000, 1_835_395_200, 978_307_199, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(unix)), Ok(unix), "{unix}");
        }
        assert_eq!(format_rfc3339(1_806_048_000), "2027-03-26T08:00:00Z");
    }

    #[test]
    fn a_toml_expiry_is_a_number_a_string_or_a_date_time() {
        #[derive(Deserialize)]
        struct Entry {
            expiry: ExpiryValue,
        }
        let read = |text: &str| {
            toml::from_str::<Entry>(text)
                .map_err(|e| e.to_string())
                .and_then(|e| e.expiry.unix())
        };
        assert_eq!(read("expiry = 1806048000"), Ok(1_806_048_000));
        assert_eq!(read("expiry = \"2027-03-26T08:00:00Z\""), Ok(1_806_048_000));
        assert_eq!(read("expiry = 2027-03-26T08:00:00Z"), Ok(1_806_048_000));
        assert_eq!(
            read("expiry = 2027-03-26T10:00:00+02:00"),
            Ok(1_806_048_000)
        );
        assert_eq!(read("expiry = 2027-03-26"), Ok(1_806_019_200));
        assert!(read("expiry = 2027-03-26T08:00:00")
            .unwrap_err()
            .contains("no offset"));
        assert!(read("expiry = -5").is_err());
        assert!(read("expiry = 1.5").unwrap_err().contains("unix seconds"));
    }
}
