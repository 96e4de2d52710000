//! Working calendars: scheduled hours per weekday, and public holidays.

use std::collections::BTreeMap;

use crate::Record;
use crate::plan::WEEKDAYS;
use crate::value::decimal;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub name: String,
    /// Scheduled hours Monday to Sunday.
    pub week: [Decimal; 7],
    /// The length of a normal working day, used on days with no scheduled hours.
    pub hours_per_day: Decimal,
    pub holidays: BTreeMap<NaiveDate, String>,
}

impl Calendar {
    /// Reads a work calendar record. Missing weekdays have no scheduled hours; a calendar
    /// without `week_hours` schedules `hours_per_day` (8 when unset) Monday to Friday.
    pub fn from_record(record: &Record) -> Calendar {
        let hours_per_day = record.decimal("hours_per_day").unwrap_or(Decimal::from(8));
        let mut week = [Decimal::ZERO; 7];
        match record.get("week_hours").and_then(Value::as_object) {
            Some(days) => {
                for (index, day) in WEEKDAYS.iter().enumerate() {
                    week[index] = days
                        .get(*day)
                        .and_then(|v| decimal(v).ok())
                        .unwrap_or_default();
                }
            }
            None => week[..5].fill(hours_per_day),
        }
        let holidays = record
            .get("holidays")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let date = item.get("date")?.as_str()?;
                        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
                        let name = item
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("holiday");
                        Some((date, name.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Calendar {
            name: record.title(),
            week,
            hours_per_day,
            holidays,
        }
    }

    /// Hours scheduled on `day`: none on a public holiday.
    pub fn scheduled(&self, day: NaiveDate) -> Decimal {
        if self.holidays.contains_key(&day) {
            return Decimal::ZERO;
        }
        self.week[day.weekday().num_days_from_monday() as usize]
    }

    pub fn weekly_hours(&self) -> Decimal {
        self.week.iter().sum()
    }

    /// True when the calendar schedules work on `day`.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !self.scheduled(day).is_zero()
    }

    /// Moves `days` working days from `from`, forward when positive and backward when
    /// negative; 0 returns `from` itself. Returns `None` when the calendar has no working day
    /// at all.
    pub fn add_working_days(&self, from: NaiveDate, days: i64) -> Option<NaiveDate> {
        if self.week.iter().all(|h| h.is_zero()) {
            return None;
        }
        let step = if days >= 0 {
            chrono::Duration::days(1)
        } else {
            chrono::Duration::days(-1)
        };
        let mut day = from;
        let mut left = days.unsigned_abs();
        while left > 0 {
            day += step;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        Some(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week_40() -> Calendar {
        let eight = Decimal::from(8);
        let christmas = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        Calendar {
            name: "40 h".into(),
            week: [
                eight,
                eight,
                eight,
                eight,
                eight,
                Decimal::ZERO,
                Decimal::ZERO,
            ],
            hours_per_day: eight,
            holidays: [(christmas, "Christmas".to_string())].into(),
        }
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let calendar = week_40();
        let thursday = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        let after = calendar.add_working_days(thursday, 1).unwrap();
        assert_eq!(
            after,
            NaiveDate::from_ymd_opt(2026, 12, 28).unwrap(),
            "Christmas and the weekend are skipped"
        );
        let before = calendar
            .add_working_days(NaiveDate::from_ymd_opt(2026, 12, 28).unwrap(), -2)
            .unwrap();
        assert_eq!(before, NaiveDate::from_ymd_opt(2026, 12, 23).unwrap());
        assert_eq!(calendar.add_working_days(thursday, 0), Some(thursday));
    }
}
