//! When time triggers are due and when schedules occur. Pure functions: the scheduler in the
//! engine passes in the record, its calendar and the clock's instants.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use steward_domain::calendar::Calendar;
use steward_domain::schema::FieldType;
use steward_domain::{Kind, Record};

use crate::duration::{Offset, Unit};

/// Where a time trigger finds the work calendar for working-day offsets.
#[derive(Clone, Debug, PartialEq)]
pub enum CalendarSource {
    /// A work calendar by name.
    Named(String),
    /// A reference field of the record, or a path of them such as `employee.calendar`.
    Path(Vec<String>),
}

/// A delay before or after a date or datetime field of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeTrigger {
    pub kind: Kind,
    pub field: String,
    pub offset: Offset,
    /// The local time of day for date fields.
    pub at: NaiveTime,
    pub timezone: Tz,
    pub calendar: Option<CalendarSource>,
}

impl TimeTrigger {
    pub fn describe(&self) -> String {
        let direction = if self.offset.amount < 0 {
            "before"
        } else {
            "after"
        };
        let amount = Offset {
            amount: self.offset.amount.abs(),
            ..self.offset
        };
        format!("{amount} {direction} {}.{}", self.kind, self.field)
    }

    /// The instant the trigger is due for `record`, or `None` when the field is not set.
    /// `calendar` is needed for working-day offsets.
    pub fn due_at(
        &self,
        record: &Record,
        calendar: Option<&Calendar>,
    ) -> Result<Option<DateTime<Utc>>, String> {
        let Some(def) = self.kind.schema().field(&self.field) else {
            return Err(format!("{} has no field `{}`", self.kind, self.field));
        };
        let base = match def.ty {
            FieldType::Date => match record.date(&self.field) {
                Some(date) => Base::Local(date, self.at),
                None => return Ok(None),
            },
            FieldType::DateTime => match record.datetime(&self.field) {
                Some(instant) => Base::Instant(instant),
                None => return Ok(None),
            },
            _ => return Err(format!("`{}` is not a date or datetime field", self.field)),
        };
        if let Some(duration) = self.offset.as_duration() {
            let instant = match base {
                Base::Instant(instant) => instant,
                Base::Local(date, at) => local_instant(self.timezone, date.and_time(at)),
            };
            return Ok(Some(instant + duration));
        }
        debug_assert_eq!(self.offset.unit, Unit::WorkingDays);
        let Some(calendar) = calendar else {
            return Err("a working-day offset needs a work calendar, and none was found".into());
        };
        let (date, time) = match base {
            Base::Local(date, at) => (date, at),
            Base::Instant(instant) => {
                let local = instant.with_timezone(&self.timezone).naive_local();
                (local.date(), local.time())
            }
        };
        let Some(moved) = calendar.add_working_days(date, self.offset.amount) else {
            return Err(format!(
                "work calendar {} has no working day",
                calendar.name
            ));
        };
        Ok(Some(local_instant(self.timezone, moved.and_time(time))))
    }
}

enum Base {
    Local(NaiveDate, NaiveTime),
    Instant(DateTime<Utc>),
}

/// The instant of a local time. In a repeated hour the first pass counts; a local time that
/// does not exist (clocks jumped over it) moves to the first minute after the jump, as
/// fixed-time schedules do.
pub fn local_instant(timezone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match timezone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Find the first existing minute after the gap; gaps are at most a few hours.
            for minutes in 1..=(24 * 60) {
                let later = local + chrono::Duration::minutes(minutes);
                if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) =
                    timezone.from_local_datetime(&later)
                {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// What a schedule does with occurrences that passed while nothing ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Record them as missed and run none.
    Skip,
    /// Run the latest one and record the others as missed.
    Once,
    /// Run all of them, oldest first, up to `limit`; the older ones beyond it are missed.
    All { limit: usize },
}

/// What a schedule does when an occurrence comes while the previous run is still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Record the new occurrence as skipped.
    Skip,
    /// Keep one occurrence waiting and run it when the previous run ends.
    Buffer,
    /// Run it at the same time.
    Allow,
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub cron: Cron,
    pub pattern: String,
    pub timezone: Tz,
    pub catch_up: CatchUp,
    pub overlap: Overlap,
}

/// Occurrences returned by one call at most, so a schedule that passed long ago cannot make
/// the scheduler loop for long.
pub const MAX_OCCURRENCES: usize = 10_000;

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
            && self.timezone == other.timezone
            && self.catch_up == other.catch_up
            && self.overlap == other.overlap
    }
}

impl Schedule {
    pub fn describe(&self) -> String {
        format!("schedule `{}` in {}", self.pattern, self.timezone)
    }

    /// Occurrences after `after` (exclusive) up to `until` (inclusive), oldest first. Each
    /// is computed in the schedule's zone, so a daily 08:00 stays at 08:00 local time across
    /// daylight-saving changes.
    pub fn occurrences(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let start = after.with_timezone(&self.timezone);
        for next in self.cron.iter_after(start) {
            let instant = next.with_timezone(&Utc);
            if instant > until || out.len() >= MAX_OCCURRENCES {
                break;
            }
            out.push(instant);
        }
        out
    }

    /// The first occurrence after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Splits the occurrences found after downtime into those to run and those missed, under the
/// catch-up policy. `due` is oldest first.
pub fn catch_up(
    policy: CatchUp,
    due: &[DateTime<Utc>],
) -> (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) {
    match policy {
        CatchUp::Skip => (Vec::new(), due.to_vec()),
        CatchUp::Once => match due.split_last() {
            Some((last, missed)) => (vec![*last], missed.to_vec()),
            None => (Vec::new(), Vec::new()),
        },
        CatchUp::All { limit } => {
            let cut = due.len().saturating_sub(limit);
            (due[cut..].to_vec(), due[..cut].to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn schedule(pattern: &str, zone: &str) -> Schedule {
        Schedule {
            cron: Cron::from_str(pattern).unwrap(),
            pattern: pattern.into(),
            timezone: zone.parse().unwrap(),
            catch_up: CatchUp::Once,
            overlap: Overlap::Skip,
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn local(instants: &[DateTime<Utc>], zone: &str) -> Vec<String> {
        let tz: Tz = zone.parse().unwrap();
        instants
            .iter()
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
            .collect()
    }

    #[test]
    fn daily_brussels_job_stays_at_eight_local() {
        let daily = schedule("0 8 * * *", "Europe/Brussels");
        let spring = daily.occurrences(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"));
        assert_eq!(
            local(&spring, "Europe/Brussels"),
            vec![
                "2026-03-28 08:00 CET",
                "2026-03-29 08:00 CEST",
                "2026-03-30 08:00 CEST",
                "2026-03-31 08:00 CEST",
            ]
        );
        assert_eq!(spring[0], utc("2026-03-28T07:00:00Z"));
        assert_eq!(spring[1], utc("2026-03-29T06:00:00Z"));
        let autumn = daily.occurrences(utc("2026-10-23T12:00:00Z"), utc("2026-10-26T12:00:00Z"));
        assert_eq!(
            local(&autumn, "Europe/Brussels"),
            vec![
                "2026-10-24 08:00 CEST",
                "2026-10-25 08:00 CET",
                "2026-10-26 08:00 CET",
            ]
        );
        assert_eq!(autumn[1], utc("2026-10-25T07:00:00Z"));
    }

    #[test]
    fn fixed_time_in_skipped_and_repeated_hours_runs_once() {
        let night = schedule("30 2 * * *", "Europe/Berlin");
        let spring = night.occurrences(utc("2026-03-28T12:00:00Z"), utc("2026-03-29T23:00:00Z"));
        assert_eq!(spring.len(), 1, "{spring:?}");
        assert_eq!(
            local(&spring, "Europe/Berlin"),
            vec!["2026-03-29 03:00 CEST"],
            "right after the skipped hour"
        );
        let autumn = night.occurrences(utc("2026-10-24T12:00:00Z"), utc("2026-10-25T23:00:00Z"));
        assert_eq!(autumn.len(), 1, "{autumn:?}");
        assert_eq!(
            autumn[0],
            utc("2026-10-25T00:30:00Z"),
            "the first pass of the repeated hour"
        );
    }

    #[test]
    fn interval_job_keeps_its_real_cadence() {
        let quarter = schedule("*/30 * * * *", "Europe/Berlin");
        let autumn = quarter.occurrences(utc("2026-10-24T23:45:00Z"), utc("2026-10-25T01:45:00Z"));
        let gaps: Vec<i64> = autumn
            .windows(2)
            .map(|w| (w[1] - w[0]).num_minutes())
            .collect();
        assert_eq!(autumn.len(), 4, "{autumn:?}");
        assert!(
            gaps.iter().all(|g| *g == 30),
            "every 30 real minutes through the repeated hour: {gaps:?}"
        );
    }

    #[test]
    fn catch_up_policies_split_missed_runs() {
        let due = vec![
            utc("2026-12-04T11:00:00Z"),
            utc("2026-12-04T12:00:00Z"),
            utc("2026-12-04T13:00:00Z"),
        ];
        assert_eq!(catch_up(CatchUp::Skip, &due), (vec![], due.clone()));
        assert_eq!(
            catch_up(CatchUp::Once, &due),
            (vec![due[2]], vec![due[0], due[1]])
        );
        assert_eq!(
            catch_up(CatchUp::All { limit: 10 }, &due),
            (due.clone(), vec![])
        );
        assert_eq!(
            catch_up(CatchUp::All { limit: 2 }, &due),
            (vec![due[1], due[2]], vec![due[0]])
        );
    }

    #[test]
    fn local_times_in_a_gap_move_forward() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            local_instant(berlin, gap),
            utc("2026-03-29T01:00:00Z"),
            "03:00 CEST"
        );
        let repeated = NaiveDate::from_ymd_opt(2026, 10, 25)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(local_instant(berlin, repeated), utc("2026-10-25T00:30:00Z"));
    }
}
