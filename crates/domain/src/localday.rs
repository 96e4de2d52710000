//! Cutting timed work at local midnight, so that each timesheet entry lies on one local day
//! of the person who worked. The import of time-tracking files and the command path use the
//! same cut, so an entry across midnight gets the same parts either way.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places kept in the hours of a part: 0.0001 h is a third of a second.
pub const HOURS_SCALE: u32 = 4;

/// The piece of a timed entry that falls on one local day.
#[derive(Clone, Debug, PartialEq)]
pub struct DayPart {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub hours: Decimal,
}

/// Rounds hours to [`HOURS_SCALE`] places, half away from zero.
pub fn round_hours(hours: Decimal) -> Decimal {
    hours
        .round_dp_with_strategy(HOURS_SCALE, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Returns the first instant of local day `day`. Where clocks move forward at midnight, the
/// day starts at the first local time that exists.
pub fn start_of_day(timezone: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    for minutes in (0..=180).step_by(15) {
        let local = midnight + Duration::minutes(minutes);
        if let Some(instant) = timezone.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    // No zone skips more than three hours; UTC midnight is a safe bound if one ever did.
    Utc.from_utc_datetime(&midnight)
}

/// Cuts `[start, end)` at each local midnight of `timezone`. Each part gets its share of
/// `hours` in proportion to its elapsed time, and the last part takes the remainder, so the
/// parts add up to `hours` exactly. An entry within one local day returns one part.
pub fn split_by_local_day(
    timezone: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    hours: Decimal,
) -> Vec<DayPart> {
    let mut segments = Vec::new();
    let mut cursor = start;
    let mut day = start.with_timezone(&timezone).date_naive();
    loop {
        let next_day = day
            .succ_opt()
            .expect("dates stay far from the calendar's end");
        let boundary = start_of_day(timezone, next_day);
        segments.push((day, cursor, end.min(boundary)));
        if boundary >= end {
            break;
        }
        cursor = boundary;
        day = next_day;
    }
    if segments.len() == 1 {
        let (date, ..) = segments[0];
        return vec![DayPart {
            date,
            start,
            end,
            hours,
        }];
    }

    let total_seconds = Decimal::from((end - start).num_seconds());
    let mut parts = Vec::with_capacity(segments.len());
    let mut assigned = Decimal::ZERO;
    let last = segments.len() - 1;
    for (index, (date, from, to)) in segments.into_iter().enumerate() {
        let part_hours = if index == last {
            hours - assigned
        } else {
            round_hours(hours * Decimal::from((to - from).num_seconds()) / total_seconds)
        };
        assigned += part_hours;
        parts.push(DayPart {
            date,
            start: from,
            end: to,
            hours: part_hours.normalize(),
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_night_across_the_autumn_change_splits_by_local_day() {
        // Brussels goes from UTC+2 to UTC+1 at 03:00 local on 2026-10-25, so the hour from
        // 02:00 to 03:00 happens twice and 22:00 to 02:00 local the next day lasts 5 hours.
        let tz: Tz = "Europe/Brussels".parse().unwrap();
        let parts = split_by_local_day(
            tz,
            utc("2026-10-24T20:00:00Z"),
            utc("2026-10-25T01:00:00Z"),
            Decimal::from(5),
        );
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].date.to_string(), "2026-10-24");
        assert_eq!(parts[0].hours, Decimal::from(2));
        assert_eq!(parts[1].date.to_string(), "2026-10-25");
        assert_eq!(parts[1].hours, Decimal::from(3), "the repeated hour counts");
        assert_eq!(parts[1].start, utc("2026-10-24T22:00:00Z"));
    }

    #[test]
    fn an_entry_ending_at_midnight_stays_whole() {
        let tz: Tz = "Europe/Lisbon".parse().unwrap();
        let parts = split_by_local_day(
            tz,
            utc("2026-12-03T22:00:00Z"),
            utc("2026-12-04T00:00:00Z"),
            Decimal::from(2),
        );
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].date.to_string(), "2026-12-03");
    }
}
