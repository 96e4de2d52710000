//! From a parsed row to timesheet entries: local times to UTC, one entry per local day, hours,
//! and the stable key that makes a second import of the same row change nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use steward_domain::localday;

use crate::parse::{self, Row};
use crate::report::{Overlap, RejectedRow, RowWarning};

/// Decimal places kept in `hours`: 0.0001 h is a third of a second.
pub const HOURS_SCALE: u32 = localday::HOURS_SCALE;

/// A Duration that differs from end minus start by at least this much gets a warning.
const DURATION_MISMATCH_SECONDS: i64 = 60;

/// A row placed in time, with its entries.
#[derive(Clone, Debug)]
pub struct Entry {
    pub row: Row,
    /// The owner of the entry: the lower-case e-mail address, else the lower-case name.
    pub person_key: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The row's hours, rounded to [`HOURS_SCALE`] places.
    pub hours: Decimal,
    /// The content key of the row; see [`content_key`].
    pub key: String,
    /// One part per local day, in order.
    pub parts: Vec<Part>,
}

/// The piece of an entry that falls on one local day.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub hours: Decimal,
    /// The external id of the timesheet: the row's key, plus `/<day>` when the row is split.
    pub external_id: String,
}

/// Returns the person key of a row.
pub fn person_key(row: &Row) -> String {
    if row.email.is_empty() {
        row.user.to_lowercase()
    } else {
        row.email.to_lowercase()
    }
}

/// Derives a stable id for a row from its content, since Toggl's detailed export carries no
/// entry id. Local times are written in one canonical form, so the key does not depend on
/// the 12- or 24-hour clock or on the time zone chosen for the import.
///
/// NOTE: an entry edited in Toggl after an import (a new description, project or time) gets a
/// new key, so importing the new export adds it beside the old one.
pub fn content_key(row: &Row) -> String {
    let canonical = [
        "toggl-detailed-v1",
        row.user.as_str(),
        &row.email.to_lowercase(),
        &row.start.format("%Y-%m-%dT%H:%M:%S").to_string(),
        &row.end.format("%Y-%m-%dT%H:%M:%S").to_string(),
        row.description.as_str(),
        row.project.as_str(),
    ]
    .join("\u{1f}");
    let digest = Sha256::digest(canonical.as_bytes());
    hex::encode(&digest[..16])
}

fn rejection(row: &Row, column: &str, value: String, reason: String) -> RejectedRow {
    RejectedRow {
        line: row.line,
        column: Some(column.to_string()),
        value,
        reason,
    }
}

/// Returns the instants a local time can stand for: two in the hour repeated when clocks go back,
/// none in the hour skipped when they go forward.
fn candidates(timezone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    timezone
        .from_local_datetime(&local)
        .earliest()
        .into_iter()
        .chain(timezone.from_local_datetime(&local).latest())
        .map(|d| d.with_timezone(&Utc))
        .fold(Vec::new(), |mut all, instant| {
            if !all.contains(&instant) {
                all.push(instant);
            }
            all
        })
}

/// Rounds hours to [`HOURS_SCALE`] places, half away from zero.
fn round_hours(hours: Decimal) -> Decimal {
    localday::round_hours(hours)
}

/// Places a row in time and splits it at local midnight.
pub fn build_entry(
    row: Row,
    timezone: Tz,
    warnings: &mut Vec<RowWarning>,
) -> Result<Entry, RejectedRow> {
    let starts = candidates(timezone, row.start);
    if starts.is_empty() {
        return Err(rejection(
            &row,
            parse::START_TIME,
            row.start.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!(
                "this local time does not exist in {timezone} because the clocks moved forward; \
                 check the time zone of the import"
            ),
        ));
    }
    let ends = candidates(timezone, row.end);
    if ends.is_empty() {
        return Err(rejection(
            &row,
            parse::END_TIME,
            row.end.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!(
                "this local time does not exist in {timezone} because the clocks moved forward; \
                 check the time zone of the import"
            ),
        ));
    }

    // Where a local time is ambiguous, the pair whose length best matches Duration wins.
    let duration_seconds = row.duration_hours * Decimal::from(3600);
    let mut best: Option<(Decimal, DateTime<Utc>, DateTime<Utc>)> = None;
    for start in &starts {
        for end in ends.iter().filter(|end| *end >= start) {
            let elapsed = Decimal::from((*end - *start).num_seconds());
            let distance = (elapsed - duration_seconds).abs();
            if best.as_ref().is_none_or(|(d, _, _)| distance < *d) {
                best = Some((distance, *start, *end));
            }
        }
    }
    let Some((distance, start, end)) = best else {
        return Err(rejection(
            &row,
            parse::END_TIME,
            row.end.format("%Y-%m-%d %H:%M:%S").to_string(),
            format!("the entry ends before it starts in {timezone}"),
        ));
    };
    if distance >= Decimal::from(DURATION_MISMATCH_SECONDS) {
        warnings.push(RowWarning {
            line: row.line,
            column: parse::DURATION.into(),
            value: row
                .duration_hours
                .round_dp(HOURS_SCALE)
                .normalize()
                .to_string(),
            message: format!(
                "Duration gives {} h but the entry runs {} h from start to end; the hours \
                 follow Duration",
                round_hours(row.duration_hours),
                round_hours(Decimal::from((end - start).num_seconds()) / Decimal::from(3600))
            ),
        });
    }

    let key = content_key(&row);
    let hours = round_hours(row.duration_hours);
    let parts = split_by_day(timezone, start, end, hours, &key);
    Ok(Entry {
        person_key: person_key(&row),
        start,
        end,
        hours,
        key,
        parts,
        row,
    })
}

/// Cuts `[start, end)` at each local midnight with the same cut as the command path, and
/// gives each part its external id.
fn split_by_day(
    timezone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    hours: Decimal,
    key: &str,
) -> Vec<Part> {
    let parts = localday::split_by_local_day(timezone, start, end, hours);
    let split = parts.len() > 1;
    parts
        .into_iter()
        .map(|part| Part {
            external_id: if split {
                format!("{key}/{}", part.date)
            } else {
                key.to_string()
            },
            date: part.date,
            start: part.start,
            end: part.end,
            hours: part.hours,
        })
        .collect()
}

/// Finds every pair of entries of one person whose times overlap.
pub fn find_overlaps(entries: &[Entry]) -> Vec<Overlap> {
    let mut by_person: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in entries {
        by_person.entry(&entry.person_key).or_default().push(entry);
    }
    let mut overlaps = Vec::new();
    for (person, mut list) in by_person {
        list.sort_by_key(|e| (e.start, e.end, e.row.line));
        for (index, first) in list.iter().enumerate() {
            for second in &list[index + 1..] {
                if second.start >= first.end {
                    break;
                }
                overlaps.push(Overlap {
                    person: person.to_string(),
                    first_line: first.row.line,
                    second_line: second.row.line,
                    seconds: (first.end.min(second.end) - second.start).num_seconds(),
                });
            }
        }
    }
    overlaps.sort_by_key(|o| (o.first_line, o.second_line));
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn row(start: &str, end: &str, duration_hours: Decimal) -> Row {
        Row {
            line: 2,
            user: "Harry".into(),
            email: "Harry@Tuttle.com".into(),
            client: "Sam Lowry".into(),
            project: "orga".into(),
            task: String::new(),
            description: "Night shift".into(),
            billable: false,
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
            duration_hours,
            tags: vec![],
        }
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn midnight_splits_into_local_days() {
        let entry = build_entry(
            row("2022-01-19T22:00:00", "2022-01-20T01:30:00", dec!(3.5)),
            chrono_tz::Europe::Berlin,
            &mut vec![],
        )
        .unwrap();
        let summary: Vec<(NaiveDate, Decimal)> =
            entry.parts.iter().map(|p| (p.date, p.hours)).collect();
        assert_eq!(
            summary,
            vec![
                (date("2022-01-19"), dec!(2)),
                (date("2022-01-20"), dec!(1.5))
            ]
        );
        assert_eq!(
            entry.parts[0].start.to_rfc3339(),
            "2022-01-19T21:00:00+00:00"
        );
        assert_eq!(entry.parts[0].end, entry.parts[1].start);
        assert_eq!(
            entry.parts[1].external_id,
            format!("{}/2022-01-20", entry.key)
        );
    }

    #[test]
    fn split_hours_add_up_exactly() {
        let entry = build_entry(
            row(
                "2022-01-19T23:40:00",
                "2022-01-20T00:00:20",
                dec!(1220) / dec!(3600),
            ),
            chrono_tz::UTC,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(entry.hours, dec!(0.3389));
        let total: Decimal = entry.parts.iter().map(|p| p.hours).sum();
        assert_eq!(total, entry.hours);
        assert_eq!(entry.parts[0].hours, dec!(0.3333));
        assert_eq!(entry.parts[1].hours, dec!(0.0056));
    }

    #[test]
    fn entry_ending_at_midnight_is_not_split() {
        let entry = build_entry(
            row("2022-01-19T23:00:00", "2022-01-20T00:00:00", dec!(1)),
            chrono_tz::UTC,
            &mut vec![],
        )
        .unwrap();
        assert_eq!(entry.parts.len(), 1);
        assert_eq!(entry.parts[0].external_id, entry.key);
    }

    #[test]
    fn clocks_going_back_use_the_duration() {
        // 02:30 happens twice in Berlin on 2022-10-30; the one-hour Duration picks the pair.
        let entry = build_entry(
            row(
                "2022-10-30T02:10:00",
                "2022-10-30T02:30:00",
                dec!(80) / dec!(60),
            ),
            chrono_tz::Europe::Berlin,
            &mut vec![],
        )
        .unwrap();
        assert_eq!((entry.end - entry.start).num_minutes(), 80);
    }

    #[test]
    fn skipped_local_time_is_rejected() {
        let error = build_entry(
            row("2022-03-27T02:30:00", "2022-03-27T04:00:00", dec!(1)),
            chrono_tz::Europe::Berlin,
            &mut vec![],
        )
        .unwrap_err();
        assert_eq!(error.column.as_deref(), Some("Start time"));
        assert!(error.reason.contains("does not exist"), "{}", error.reason);
    }

    #[test]
    fn duration_mismatch_warns() {
        let mut warnings = vec![];
        let entry = build_entry(
            row("2022-01-19T10:00:00", "2022-01-19T11:00:00", dec!(1.5)),
            chrono_tz::UTC,
            &mut warnings,
        )
        .unwrap();
        assert_eq!(entry.hours, dec!(1.5));
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].column, "Duration");
    }

    #[test]
    fn key_ignores_clock_format_and_email_case() {
        let mut other = row("2022-01-19T10:00:00", "2022-01-19T11:00:00", dec!(1));
        let first = content_key(&other);
        other.email = "harry@tuttle.com".into();
        assert_eq!(content_key(&other), first);
        other.description = "Something else".into();
        assert_ne!(content_key(&other), first);
    }
}
