//! Offsets and durations written in rule files: `3 days`, `-2 working days`, `90 minutes`,
//! `4h`, `1 week`.

use std::fmt;

use chrono::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    /// Days on which a work calendar schedules work.
    WorkingDays,
}

/// A signed amount of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offset {
    pub amount: i64,
    pub unit: Unit,
}

impl Offset {
    /// The offset as calendar time; `None` for working days, which need a calendar.
    pub fn as_duration(&self) -> Option<Duration> {
        match self.unit {
            Unit::Minutes => Some(Duration::minutes(self.amount)),
            Unit::Hours => Some(Duration::hours(self.amount)),
            Unit::Days => Some(Duration::days(self.amount)),
            Unit::Weeks => Some(Duration::weeks(self.amount)),
            Unit::WorkingDays => None,
        }
    }

    pub fn zero() -> Offset {
        Offset {
            amount: 0,
            unit: Unit::Days,
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
            Unit::WorkingDays => "working days",
        };
        write!(f, "{} {unit}", self.amount)
    }
}

/// Largest amount accepted, so that offsets stay within chrono's range: about 27 years in
/// minutes.
const MAX_AMOUNT: i64 = 14_000_000;

/// Parses `[-+]N unit`, where the unit is one of minute(s)/min/m, hour(s)/h, day(s)/d,
/// week(s)/w, or working day(s)/wd.
pub fn parse_offset(text: &str) -> Result<Offset, String> {
    parse_offset_with_help(
        text,
        "write it like `3 days`, `-2 working days`, `4 hours` or `30 minutes`",
    )
}

/// Parses like [`parse_offset`], with `help` as the advice on the form that follows an error,
/// for callers that accept only some of the offsets.
pub fn parse_offset_with_help(text: &str, help: &str) -> Result<Offset, String> {
    let trimmed = text.trim();
    let (sign, rest) = match trimmed.strip_prefix('-') {
        Some(rest) => (-1, rest.trim_start()),
        None => (1, trimmed.strip_prefix('+').unwrap_or(trimmed).trim_start()),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let unit_text = rest[digits.len()..].trim().to_ascii_lowercase();
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` has no number; {help}"))?;
    if amount > MAX_AMOUNT {
        return Err(format!("`{text}` is too large; use at most {MAX_AMOUNT}"));
    }
    let unit = match unit_text.as_str() {
        "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minutes,
        "h" | "hour" | "hours" => Unit::Hours,
        "d" | "day" | "days" => Unit::Days,
        "w" | "week" | "weeks" => Unit::Weeks,
        "wd" | "working day" | "working days" => Unit::WorkingDays,
        _ => return Err(format!("`{text}` has no known unit; {help}")),
    };
    Ok(Offset {
        amount: sign * amount,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse() {
        let cases = [
            ("3 days", 3, Unit::Days),
            ("-2 working days", -2, Unit::WorkingDays),
            ("+90 minutes", 90, Unit::Minutes),
            ("4h", 4, Unit::Hours),
            ("1 week", 1, Unit::Weeks),
            ("-1wd", -1, Unit::WorkingDays),
        ];
        for (text, amount, unit) in cases {
            assert_eq!(parse_offset(text), Ok(Offset { amount, unit }), "{text}");
        }
    }

    #[test]
    fn bad_offsets_are_explained() {
        assert!(parse_offset("soon").unwrap_err().contains("has no number"));
        assert!(
            parse_offset("3 fortnights")
                .unwrap_err()
                .contains("no known unit")
        );
        assert!(parse_offset("99999999999 days").is_err());
    }
}
