//! Work calendars of the generated firm, which is based in Brussels: a 40-hour and a 32-hour
//! week, both with the Belgian public holidays.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};

/// The firm's time zone, for calendars, people and timer entries.
pub const TIMEZONE: chrono_tz::Tz = chrono_tz::Europe::Brussels;

/// Returns Easter Sunday of `year` in the Gregorian calendar (the anonymous Gregorian
/// algorithm, also known as Meeus/Jones/Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a date")
}

/// Returns the ten Belgian public holidays of `year`.
pub fn belgian_holidays(year: i32) -> BTreeMap<NaiveDate, &'static str> {
    let date = |month, day| NaiveDate::from_ymd_opt(year, month, day).expect("a fixed holiday");
    let easter = easter(year);
    BTreeMap::from([
        (date(1, 1), "New Year's Day"),
        (easter + Duration::days(1), "Easter Monday"),
        (date(5, 1), "Labour Day"),
        (easter + Duration::days(39), "Ascension Day"),
        (easter + Duration::days(50), "Whit Monday"),
        (date(7, 21), "Belgian National Day"),
        (date(8, 15), "Assumption Day"),
        (date(11, 1), "All Saints' Day"),
        (date(11, 11), "Armistice Day"),
        (date(12, 25), "Christmas Day"),
    ])
}

/// A work calendar as the generator plans it.
#[derive(Clone, Debug)]
pub struct WorkCalendar {
    pub id: String,
    pub name: &'static str,
    /// Hours Monday to Sunday.
    pub week: [u32; 7],
    pub holidays: BTreeMap<NaiveDate, &'static str>,
}

impl WorkCalendar {
    /// Builds a calendar with the holidays of every year from `first_year` to `last_year`.
    pub fn new(
        id: String,
        name: &'static str,
        week: [u32; 7],
        first_year: i32,
        last_year: i32,
    ) -> WorkCalendar {
        let holidays = (first_year..=last_year)
            .flat_map(belgian_holidays)
            .collect();
        WorkCalendar {
            id,
            name,
            week,
            holidays,
        }
    }

    /// Returns the hours scheduled on `day`: none on a weekend or a public holiday.
    pub fn scheduled(&self, day: NaiveDate) -> u32 {
        if self.holidays.contains_key(&day) {
            return 0;
        }
        self.week[day.weekday().num_days_from_monday() as usize]
    }

    /// Returns the calendar's fields as the `work_calendar` schema stores them.
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let week: serde_json::Map<String, Value> = days
            .iter()
            .zip(self.week)
            .map(|(day, hours)| (day.to_string(), json!(hours.to_string())))
            .collect();
        let holidays: Vec<Value> = self
            .holidays
            .iter()
            .map(|(date, name)| json!({"date": date.to_string(), "name": name}))
            .collect();
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), json!(self.name));
        fields.insert("timezone".into(), json!(TIMEZONE.name()));
        fields.insert("hours_per_day".into(), json!("8"));
        fields.insert("week_hours".into(), Value::Object(week));
        fields.insert("holidays".into(), Value::Array(holidays));
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    #[test]
    fn easter_dates() {
        assert_eq!(easter(2024), date(2024, 3, 31));
        assert_eq!(easter(2025), date(2025, 4, 20));
        assert_eq!(easter(2026), date(2026, 4, 5));
        assert_eq!(easter(2027), date(2027, 3, 28));
    }

    #[test]
    fn holidays_of_2026() {
        let holidays = belgian_holidays(2026);
        assert_eq!(holidays.len(), 10);
        assert_eq!(holidays[&date(2026, 5, 14)], "Ascension Day");
        assert_eq!(holidays[&date(2026, 5, 25)], "Whit Monday");
    }

    #[test]
    fn part_time_week() {
        let calendar = WorkCalendar::new(
            "id".into(),
            "Part time 32 hours/week",
            [8, 8, 8, 8, 0, 0, 0],
            2026,
            2026,
        );
        assert_eq!(calendar.week.iter().sum::<u32>(), 32);
        assert_eq!(calendar.scheduled(date(2026, 11, 26)), 8);
        assert_eq!(calendar.scheduled(date(2026, 11, 27)), 0);
        assert_eq!(calendar.scheduled(date(2026, 11, 11)), 0);
    }
}
