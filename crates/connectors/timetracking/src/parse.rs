//! Reading the rows of a Toggl Track detailed export: the header, and the dates, clock times,
//! durations and flags in each row.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

use crate::report::RejectedRow;

/// A column the import reads: its name in the export and other names accepted for it.
struct ColumnSpec {
    name: &'static str,
    aliases: &'static [&'static str],
}

const fn column(name: &'static str, aliases: &'static [&'static str]) -> ColumnSpec {
    ColumnSpec { name, aliases }
}

/// Columns every Toggl Track detailed export has, in the order of [`Columns::required`].
///
/// NOTE: the aliases (`Member`, `E-mail`, `Stop date`, `Stop time`) are names other Toggl
/// exports may use; no real export with them has been checked.
const REQUIRED: [ColumnSpec; 11] = [
    column("User", &["Member"]),
    column("Email", &["E-mail"]),
    column("Client", &[]),
    column("Project", &[]),
    column("Description", &[]),
    column("Billable", &[]),
    column("Start date", &[]),
    column("Start time", &[]),
    column("End date", &["Stop date"]),
    column("End time", &["Stop time"]),
    column("Duration", &[]),
];

pub const USER: &str = "User";
pub const EMAIL: &str = "Email";
pub const CLIENT: &str = "Client";
pub const PROJECT: &str = "Project";
pub const DESCRIPTION: &str = "Description";
pub const BILLABLE: &str = "Billable";
pub const START_DATE: &str = "Start date";
pub const START_TIME: &str = "Start time";
pub const END_DATE: &str = "End date";
pub const END_TIME: &str = "End time";
pub const DURATION: &str = "Duration";

/// Positions of the columns the import reads.
#[derive(Clone, Debug)]
pub struct Columns {
    /// Positions of the [`REQUIRED`] columns, in that order.
    required: [usize; 11],
    task: Option<usize>,
    tags: Option<usize>,
}

fn normalize_header(name: &str) -> String {
    name.trim_start_matches('\u{feff}').trim().to_lowercase()
}

impl Columns {
    /// Finds the columns in a header row, or returns the names of the missing ones.
    pub fn locate(header: &csv::StringRecord) -> Result<Columns, Vec<String>> {
        let names: Vec<String> = header.iter().map(normalize_header).collect();
        let position = |candidates: &[&str]| {
            candidates.iter().find_map(|candidate| {
                let wanted = candidate.to_lowercase();
                names.iter().position(|n| *n == wanted)
            })
        };
        let mut required = [0; 11];
        let mut missing = Vec::new();
        for (slot, spec) in required.iter_mut().zip(REQUIRED.iter()) {
            let mut candidates = vec![spec.name];
            candidates.extend_from_slice(spec.aliases);
            match position(&candidates) {
                Some(index) => *slot = index,
                None => missing.push(spec.name.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(Columns {
            required,
            task: position(&["Task"]),
            tags: position(&["Tags"]),
        })
    }

    fn index(&self, name: &str) -> usize {
        let slot = REQUIRED
            .iter()
            .position(|spec| spec.name == name)
            .expect("only required columns are looked up by name");
        self.required[slot]
    }

    /// Returns the number of fields a row needs to hold every required column.
    pub fn width(&self) -> usize {
        self.required.iter().copied().max().unwrap_or(0) + 1
    }
}

/// One valid row of the export, with its values parsed.
#[derive(Clone, Debug)]
pub struct Row {
    /// The line the row starts on, counting the header as line 1.
    pub line: u64,
    pub user: String,
    pub email: String,
    pub client: String,
    pub project: String,
    pub task: String,
    pub description: String,
    pub billable: bool,
    /// Local start and end, in the time zone of the export.
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    /// The Duration column in hours, unrounded.
    pub duration_hours: Decimal,
    pub tags: Vec<String>,
}

/// Parses one CSV record into a row, or explains why the row is rejected.
pub fn parse_row(
    record: &csv::StringRecord,
    line: u64,
    columns: &Columns,
) -> Result<Row, RejectedRow> {
    if record.len() < columns.width() {
        return Err(RejectedRow {
            line,
            column: None,
            value: record.iter().collect::<Vec<_>>().join(","),
            reason: format!(
                "the row has {} fields but the header has at least {}; check for a missing \
                 separator or an unclosed quote",
                record.len(),
                columns.width()
            ),
        });
    }
    let get = |name: &str| record.get(columns.index(name)).unwrap_or("").trim();
    let optional = |index: Option<usize>| {
        index
            .and_then(|i| record.get(i))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let reject = |column: &str, reason: String| RejectedRow {
        line,
        column: Some(column.to_string()),
        value: get(column).to_string(),
        reason,
    };

    let user = get(USER).to_string();
    let email = get(EMAIL).to_string();
    if user.is_empty() && email.is_empty() {
        return Err(reject(
            USER,
            "the row names no person; fill in User or Email".into(),
        ));
    }
    let billable = parse_billable(get(BILLABLE)).map_err(|reason| reject(BILLABLE, reason))?;
    let start_date = parse_date(get(START_DATE)).map_err(|reason| reject(START_DATE, reason))?;
    let start_time = parse_time(get(START_TIME)).map_err(|reason| reject(START_TIME, reason))?;
    let end_date = parse_date(get(END_DATE)).map_err(|reason| reject(END_DATE, reason))?;
    let end_time = parse_time(get(END_TIME)).map_err(|reason| reject(END_TIME, reason))?;
    let duration_hours =
        parse_duration(get(DURATION)).map_err(|reason| reject(DURATION, reason))?;

    let start = start_date.and_time(start_time);
    let end = end_date.and_time(end_time);
    if end < start {
        return Err(RejectedRow {
            line,
            column: Some(END_TIME.to_string()),
            value: format!("{} {}", get(END_DATE), get(END_TIME)),
            reason: format!(
                "the entry ends before it starts ({} {}); correct the start or the end in \
                 Toggl and export again",
                get(START_DATE),
                get(START_TIME)
            ),
        });
    }

    let tags = optional(columns.tags)
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Row {
        line,
        user,
        email,
        client: get(CLIENT).to_string(),
        project: get(PROJECT).to_string(),
        task: optional(columns.task),
        // Descriptions keep their inner line breaks; only the ends are trimmed.
        description: record
            .get(columns.index(DESCRIPTION))
            .unwrap_or("")
            .trim()
            .to_string(),
        billable,
        start,
        end,
        duration_hours,
        tags,
    })
}

/// Parses the Billable column: `Yes` or `No` as Toggl writes it, `true` or `false`, or empty
/// for not billable.
pub fn parse_billable(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" | "" => Ok(false),
        _ => Err(format!("`{value}` is not Yes or No")),
    }
}

/// Parses a date written `YYYY-MM-DD`, the form of the dates in Toggl Track detailed exports.
pub fn parse_date(value: &str) -> Result<NaiveDate, String> {
    if value.is_empty() {
        return Err("the date is missing".into());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("`{value}` is not a date; expected YYYY-MM-DD such as 2022-01-06"))
}

/// Splits a trailing `AM` or `PM` from a clock reading; returns whether it was PM.
fn split_meridiem(value: &str) -> (&str, Option<bool>) {
    let upper = value.to_ascii_uppercase();
    for (suffix, pm) in [("AM", false), ("PM", true)] {
        if upper.ends_with(suffix) {
            return (value[..value.len() - 2].trim_end(), Some(pm));
        }
    }
    (value, None)
}

/// Parses `H:MM` or `H:MM:SS` into hours, minutes and seconds; hours may have any number of
/// digits. Minutes and seconds must be below 60.
fn parse_clock_parts(value: &str) -> Option<(u64, u64, u64)> {
    let parts: Vec<&str> = value.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let number = |text: &str| text.parse::<u64>().ok();
    let hours = number(parts[0])?;
    let minutes = number(parts[1])?;
    let seconds = parts.get(2).map_or(Some(0), |s| number(s))?;
    if parts[1].len() != 2 || parts.get(2).is_some_and(|s| s.len() != 2) {
        return None;
    }
    (minutes < 60 && seconds < 60).then_some((hours, minutes, seconds))
}

/// Converts an hour on the 12-hour clock to the 24-hour clock: 12 AM is 0, 12 PM is 12.
fn hour_from_meridiem(hour: u64, pm: bool) -> Option<u64> {
    match hour {
        1..=11 => Some(if pm { hour + 12 } else { hour }),
        12 => Some(if pm { 12 } else { 0 }),
        _ => None,
    }
}

/// Parses a time of day on the 12-hour clock (`01:00:00 PM`) or the 24-hour clock
/// (`13:00:00`), with or without seconds.
pub fn parse_time(value: &str) -> Result<NaiveTime, String> {
    if value.is_empty() {
        return Err("the time is missing".into());
    }
    let invalid = || format!("`{value}` is not a time of day; expected 01:30:00 PM or 13:30:00");
    let (clock, meridiem) = split_meridiem(value);
    let (hours, minutes, seconds) = parse_clock_parts(clock).ok_or_else(invalid)?;
    let hours = match meridiem {
        Some(pm) => hour_from_meridiem(hours, pm).ok_or_else(invalid)?,
        None if hours < 24 => hours,
        None => return Err(invalid()),
    };
    NaiveTime::from_hms_opt(hours as u32, minutes as u32, seconds as u32).ok_or_else(invalid)
}

/// Parses the Duration column into hours.
///
/// Toggl writes durations in the user's time format. With the 12-hour format a duration looks
/// like a clock reading: `12:20:00 AM` is twenty minutes and `01:05:00 AM` one hour five.
/// Otherwise it is `HH:MM:SS` (hours may exceed 24), or decimal hours such as `1.25` when the
/// user chose decimal durations.
pub fn parse_duration(value: &str) -> Result<Decimal, String> {
    if value.is_empty() {
        return Err("the duration is missing".into());
    }
    let invalid = || {
        format!(
            "`{value}` is not a duration; expected HH:MM:SS such as 01:05:00, a 12-hour reading \
             such as 12:20:00 AM, or decimal hours such as 1.25"
        )
    };
    if !value.contains(':') {
        let hours: Decimal = value.replace(',', ".").parse().map_err(|_| invalid())?;
        if hours.is_sign_negative() {
            return Err(format!("`{value}` is a negative duration"));
        }
        return Ok(hours);
    }
    let (clock, meridiem) = split_meridiem(value);
    let (hours, minutes, seconds) = parse_clock_parts(clock).ok_or_else(invalid)?;
    let hours = match meridiem {
        Some(pm) => hour_from_meridiem(hours, pm).ok_or_else(invalid)?,
        None => hours,
    };
    let total_seconds = hours
        .checked_mul(3600)
        .and_then(|s| s.checked_add(minutes * 60 + seconds))
        .ok_or_else(invalid)?;
    Ok(Decimal::from(total_seconds) / Decimal::from(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn seconds(hours: Decimal) -> Decimal {
        (hours * Decimal::from(3600)).round()
    }

    #[test]
    fn twelve_hour_durations() {
        let cases = [
            ("12:20:00 AM", 20 * 60),
            ("01:05:00 AM", 3900),
            ("02:45:00 AM", 2 * 3600 + 45 * 60),
            ("12:00:00 AM", 0),
            ("12:30:00 PM", 12 * 3600 + 30 * 60),
            ("01:00:00 PM", 13 * 3600),
            ("12:15:00 am", 15 * 60),
        ];
        for (text, expected) in cases {
            let hours = parse_duration(text).unwrap();
            assert_eq!(seconds(hours), Decimal::from(expected), "{text}");
        }
    }

    #[test]
    fn clock_and_decimal_durations() {
        assert_eq!(seconds(parse_duration("00:20:00").unwrap()), dec!(1200));
        assert_eq!(seconds(parse_duration("27:30:15").unwrap()), dec!(99015));
        assert_eq!(seconds(parse_duration("1:05").unwrap()), dec!(3900));
        assert_eq!(parse_duration("1.25").unwrap(), dec!(1.25));
        assert_eq!(parse_duration("0,5").unwrap(), dec!(0.5));
    }

    #[test]
    fn invalid_durations() {
        for text in [
            "",
            "abc",
            "1:60:00",
            "01:05:00 XM",
            "13:00:00 PM",
            "-1",
            "-01:00:00",
            "1::00",
            "1:5:00",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn times_on_both_clocks() {
        let time = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        assert_eq!(parse_time("10:30:34 AM").unwrap(), time(10, 30, 34));
        assert_eq!(parse_time("12:30:34 PM").unwrap(), time(12, 30, 34));
        assert_eq!(parse_time("12:05:00 AM").unwrap(), time(0, 5, 0));
        assert_eq!(parse_time("06:15:49 PM").unwrap(), time(18, 15, 49));
        assert_eq!(parse_time("18:15:49").unwrap(), time(18, 15, 49));
        assert_eq!(parse_time("9:05").unwrap(), time(9, 5, 0));
        for text in ["24:00:00", "13:00:00 PM", "00:00:00 AM", "noon", ""] {
            assert!(parse_time(text).is_err(), "{text}");
        }
    }

    #[test]
    fn dates_and_flags() {
        assert_eq!(
            parse_date("2022-01-06").unwrap(),
            NaiveDate::from_ymd_opt(2022, 1, 6).unwrap()
        );
        assert!(parse_date("2022-02-30").is_err());
        assert!(parse_date("06/01/2022").is_err());
        assert!(parse_billable("Yes").unwrap());
        assert!(!parse_billable("No").unwrap());
        assert!(!parse_billable("").unwrap());
        assert!(parse_billable("maybe").is_err());
    }

    #[test]
    fn header_aliases_and_missing_columns() {
        let header = csv::StringRecord::from(vec![
            "\u{feff}Member",
            "Email",
            "Client",
            "Project",
            "Task",
            "Description",
            "Billable",
            "Start date",
            "Start time",
            "Stop date",
            "Stop time",
            "Duration",
            "Tags",
        ]);
        let columns = Columns::locate(&header).unwrap();
        assert_eq!(columns.index(USER), 0);
        assert_eq!(columns.index(END_TIME), 10);
        assert_eq!(columns.task, Some(4));

        let partial = csv::StringRecord::from(vec!["User", "Email", "Project", "Duration"]);
        let missing = Columns::locate(&partial).unwrap_err();
        assert_eq!(
            missing,
            vec![
                "Client",
                "Description",
                "Billable",
                "Start date",
                "Start time",
                "End date",
                "End time"
            ]
        );
    }
}
