//! Timesheet cut-offs: which period a cut-off's reminder or escalation covers at a given
//! instant, the hours a person is expected to log in a period (their calendar minus public
//! holidays and leave), and the `timesheet_incomplete` finding with expected and logged hours.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::calendar::Calendar;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::settings::{Cutoff, Period};
use crate::{People, TIMESHEET_INCOMPLETE};

/// The days of one period, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodSpan {
    pub period: Period,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl PeriodSpan {
    /// The period of kind `period` that contains `day`.
    pub fn containing(period: Period, day: NaiveDate) -> PeriodSpan {
        match period {
            Period::Week => {
                let start = day - Duration::days(day.weekday().num_days_from_monday() as i64);
                PeriodSpan {
                    period,
                    start,
                    end: start + Duration::days(6),
                }
            }
            Period::Month => {
                let start = day.with_day(1).expect("every month has a first day");
                let next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                }
                .expect("a valid month start");
                PeriodSpan {
                    period,
                    start,
                    end: next - Duration::days(1),
                }
            }
        }
    }

    pub fn previous(&self) -> PeriodSpan {
        PeriodSpan::containing(self.period, self.start - Duration::days(1))
    }

    /// `2026-W49` for an ISO week, `2026-12` for a month.
    pub fn label(&self) -> String {
        match self.period {
            Period::Week => {
                let week = self.start.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Period::Month => self.start.format("%Y-%m").to_string(),
        }
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.start.iter_days().take_while(|d| *d <= self.end)
    }
}

/// What one cut-off asks for at an instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CutoffDue {
    /// The latest reminder instant, with the period it covers, while that period is still
    /// open: its escalation has not come yet.
    pub remind: Option<(DateTime<Utc>, PeriodSpan)>,
    /// The latest escalation instant, with the period it closed.
    pub escalate: Option<(DateTime<Utc>, PeriodSpan)>,
}

/// How far back the latest occurrence of a cut-off's cron expressions is looked for. A
/// monthly cut-off recurs within 31 days, so 62 days always finds the last one.
const LOOKBACK_DAYS: i64 = 62;

fn parse_cron(pattern: &str) -> Result<Cron, String> {
    Cron::from_str(pattern).map_err(|e| format!("`{pattern}` is not a cron expression ({e})"))
}

fn latest_at_or_before(cron: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = (now - Duration::days(LOOKBACK_DAYS)).with_timezone(&tz);
    cron.iter_after(start)
        .map(|t| t.with_timezone(&Utc))
        .take_while(|t| *t <= now)
        .last()
}

fn first_after(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn local_day(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// The first instant after the last day of `span`, in `tz`.
fn end_instant(span: &PeriodSpan, tz: Tz) -> DateTime<Utc> {
    let next = span.end + Duration::days(1);
    steward_rules::time::local_instant(tz, next.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// Works out which reminder and escalation of `cutoff` are due at `now`, in the cut-offs'
/// time zone `tz`.
pub fn cutoff_due(cutoff: &Cutoff, tz: Tz, now: DateTime<Utc>) -> Result<CutoffDue, String> {
    let escalate = parse_cron(&cutoff.escalate)?;
    let mut due = CutoffDue::default();
    if let Some(at) = latest_at_or_before(&escalate, tz, now) {
        let closed = PeriodSpan::containing(cutoff.period, local_day(at, tz)).previous();
        due.escalate = Some((at, closed));
    }
    if let Some(pattern) = &cutoff.remind {
        let remind = parse_cron(pattern)?;
        if let Some(at) = latest_at_or_before(&remind, tz, now) {
            let span = PeriodSpan::containing(cutoff.period, local_day(at, tz));
            let closes = first_after(&escalate, tz, end_instant(&span, tz));
            if closes.is_none_or(|closes| now < closes) {
                due.remind = Some((at, span));
            }
        }
    }
    Ok(due)
}

/// A leave of one person, both ends included.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaveSpan {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Hours taken, for a leave shorter than its day.
    pub hours: Option<Decimal>,
}

/// Expected hours of one person in one period, with what reduced them.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub hours: Decimal,
    pub leave_hours: Decimal,
    pub holidays: Vec<NaiveDate>,
}

/// Sums the calendar's hours over the period's days, minus public holidays (which the
/// calendar schedules at zero) and leave. A one-day leave with fewer hours than the day
/// takes only those hours.
pub fn expected_hours(calendar: &Calendar, leaves: &[LeaveSpan], span: &PeriodSpan) -> Expected {
    let mut expected = Expected {
        hours: Decimal::ZERO,
        leave_hours: Decimal::ZERO,
        holidays: Vec::new(),
    };
    for day in span.days() {
        if calendar.holidays.contains_key(&day) {
            expected.holidays.push(day);
        }
        let scheduled = calendar.scheduled(day);
        let on_leave = leaves
            .iter()
            .filter(|l| l.start <= day && day <= l.end)
            .map(|l| match l.hours {
                Some(hours) if l.start == l.end && hours < scheduled => hours,
                _ => scheduled,
            })
            .max()
            .unwrap_or(Decimal::ZERO);
        expected.leave_hours += on_leave;
        expected.hours += scheduled - on_leave;
    }
    expected
}

/// One person's time in one period of one cut-off.
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodLog {
    pub employee: String,
    pub cutoff: String,
    pub span: PeriodSpan,
    pub expected: Expected,
    pub logged: Decimal,
    /// True once the cut-off has passed and the period is closed.
    pub closed: bool,
}

impl PeriodLog {
    /// True when the logged hours fall short of `complete_at` percent of the expected hours.
    pub fn is_incomplete(&self, complete_at: Decimal) -> bool {
        !self.expected.hours.is_zero()
            && self.logged * Decimal::ONE_HUNDRED < self.expected.hours * complete_at
    }

    /// The key of the finding, and of the reminder and escalation steps it leads to.
    pub fn key(&self) -> String {
        format!(
            "{TIMESHEET_INCOMPLETE}/{}/{}/{}",
            self.cutoff,
            self.span.label(),
            self.employee
        )
    }
}

/// Raises a finding for each incomplete period: a warning while the period is open, an error
/// once its cut-off has passed.
pub fn timesheet_incomplete(
    people: &People,
    logs: &[PeriodLog],
    complete_at: Decimal,
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for log in logs.iter().filter(|l| l.is_incomplete(complete_at)) {
        let name = people
            .get(&log.employee)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("employee {}", log.employee));
        let missing = (log.expected.hours - log.logged).max(Decimal::ZERO);
        let (severity, when) = if log.closed {
            (Severity::Error, "after the cut-off")
        } else {
            (Severity::Warning, "before the cut-off")
        };
        findings.push(RaisedFinding {
            key: log.key(),
            control: TIMESHEET_INCOMPLETE.into(),
            severity,
            record: Some(RecordRef::new(Kind::Employee, log.employee.clone())),
            message: format!(
                "{name} logged {} of {} expected hours in {} ({} to {}), {} short {when} `{}`",
                log.logged.normalize(),
                log.expected.hours.normalize(),
                log.span.label(),
                log.span.start,
                log.span.end,
                missing.normalize(),
                log.cutoff
            ),
            evidence: json!({
                "employee": log.employee,
                "employee_name": name,
                "cutoff": log.cutoff,
                "period": log.span.label(),
                "from": log.span.start,
                "to": log.span.end,
                "expected_hours": log.expected.hours.normalize().to_string(),
                "logged_hours": log.logged.normalize().to_string(),
                "missing_hours": missing.normalize().to_string(),
                "leave_hours": log.expected.leave_hours.normalize().to_string(),
                "holidays": log.expected.holidays,
                "closed": log.closed,
            }),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn cutoff() -> Cutoff {
        Cutoff {
            name: "payroll".into(),
            period: Period::Week,
            remind: Some("0 14 * * FRI".into()),
            escalate: "0 10 * * MON".into(),
        }
    }

    #[test]
    fn weeks_and_months_have_labels() {
        let week = PeriodSpan::containing(Period::Week, day("2026-12-04"));
        assert_eq!(
            (week.start, week.end),
            (day("2026-11-30"), day("2026-12-06"))
        );
        assert_eq!(week.label(), "2026-W49");
        let month = PeriodSpan::containing(Period::Month, day("2026-12-04"));
        assert_eq!(month.end, day("2026-12-31"));
        assert_eq!(month.previous().label(), "2026-11");
    }

    #[test]
    fn reminder_covers_the_open_week_until_the_cutoff() {
        let tz: Tz = "Europe/Brussels".parse().unwrap();
        let before: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let due = cutoff_due(&cutoff(), tz, before).unwrap();
        assert_eq!(
            due.remind.map(|(_, s)| s.label()),
            None,
            "the week before was closed"
        );
        let friday: DateTime<Utc> = "2026-12-04T13:00:00Z".parse().unwrap();
        let due = cutoff_due(&cutoff(), tz, friday).unwrap();
        assert_eq!(due.remind.map(|(_, s)| s.label()), Some("2026-W49".into()));
        assert_eq!(
            due.escalate.map(|(_, s)| s.label()),
            Some("2026-W48".into())
        );
        let monday: DateTime<Utc> = "2026-12-07T09:00:00Z".parse().unwrap();
        let due = cutoff_due(&cutoff(), tz, monday).unwrap();
        assert_eq!(due.remind, None, "the escalation closed the week");
        assert_eq!(
            due.escalate.map(|(_, s)| s.label()),
            Some("2026-W49".into())
        );
    }

    #[test]
    fn expected_hours_drop_holidays_and_leave() {
        let mut calendar = crate::settings::weekdays_calendar();
        calendar
            .holidays
            .insert(day("2026-12-25"), "Christmas".into());
        let week = PeriodSpan::containing(Period::Week, day("2026-12-21"));
        let leaves = [
            LeaveSpan {
                start: day("2026-12-21"),
                end: day("2026-12-21"),
                hours: Some(Decimal::from(4)),
            },
            LeaveSpan {
                start: day("2026-12-23"),
                end: day("2026-12-24"),
                hours: None,
            },
        ];
        let expected = expected_hours(&calendar, &leaves, &week);
        assert_eq!(expected.hours, Decimal::from(12));
        assert_eq!(expected.leave_hours, Decimal::from(20));
        assert_eq!(expected.holidays, vec![day("2026-12-25")]);
    }
}
