//! Working calendars: scheduled hours per weekday, and public holidays.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::Value;
use steward_domain::Record;
use steward_domain::plan::WEEKDAYS;
use steward_domain::value::decimal;

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
}
