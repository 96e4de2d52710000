//! The size, period and seed of a generated firm.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use steward_domain::Currency;

use crate::GenerateError;

/// The last day of the demo firm's period, a Friday, fixed so that a seed always gives the same
/// firm. [`FirmConfig::ending_on`] moves the period.
pub const DEMO_END: (i32, u32, u32) = (2026, 11, 27);

/// Working days (Monday to Friday) in the demo period: thirteen weeks, about three months.
pub const DEMO_WORKING_DAYS: usize = 65;

/// Minimum number of people: the planted exceptions need five distinct staff members besides
/// the partner, the directors and the managers.
pub const MIN_PEOPLE: usize = 12;

/// Minimum number of working days in a period, so that approved, submitted and draft weeks
/// and a project closed mid-period all fit.
pub const MIN_WORKING_DAYS: usize = 20;

/// A description of the firm to generate. The same configuration always generates the same firm: the same people,
/// projects, hours and amounts, though record ids differ between runs.
#[derive(Clone, Debug, PartialEq)]
pub struct FirmConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Employees, the managing partner included.
    pub people: usize,
    pub clients: usize,
    /// Client projects, each with its own contract. An internal project comes on top.
    pub projects: usize,
    /// First and last day of logged time and expenses.
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Currency of cost rates and of expenses paid at home. Clients abroad are billed in
    /// their own currency.
    pub currency: Currency,
}

impl FirmConfig {
    /// Returns a firm of 25 people, 6 clients and 10 projects over thirteen weeks ending on
    /// [`DEMO_END`].
    pub fn demo() -> FirmConfig {
        let (year, month, day) = DEMO_END;
        let end = NaiveDate::from_ymd_opt(year, month, day).expect("DEMO_END is a date");
        FirmConfig {
            seed: 2026,
            people: 25,
            clients: 6,
            projects: 10,
            start: start_for(end, DEMO_WORKING_DAYS),
            end,
            currency: Currency::from_code("EUR").expect("EUR is a currency"),
        }
    }

    /// Returns a firm of `people` over `working_days` days (Monday to Friday) ending on
    /// [`DEMO_END`], with one client per ten people and one project, and so one contract,
    /// per person. `benchmark(2000, 260)` logs about a million timesheet entries on 2,000
    /// contracts.
    pub fn benchmark(people: usize, working_days: usize) -> FirmConfig {
        let demo = FirmConfig::demo();
        FirmConfig {
            seed: 42,
            people,
            clients: (people / 10).max(6),
            projects: people.max(10),
            start: start_for(demo.end, working_days),
            ..demo
        }
    }

    /// Moves the period to end on `end`, keeping its number of working days.
    pub fn ending_on(self, end: NaiveDate) -> FirmConfig {
        let days = working_days(self.start, self.end).len();
        FirmConfig {
            start: start_for(end, days),
            end,
            ..self
        }
    }

    /// Returns the working days (Monday to Friday) of the period, public holidays included.
    pub fn working_days(&self) -> Vec<NaiveDate> {
        working_days(self.start, self.end)
    }

    pub(crate) fn check(&self) -> Result<(), GenerateError> {
        let invalid = |message: String| Err(GenerateError::InvalidConfig(message));
        if self.people < MIN_PEOPLE {
            return invalid(format!(
                "people is {}, but a firm needs at least {MIN_PEOPLE} to hold its planted \
                 exceptions",
                self.people
            ));
        }
        if self.clients == 0 {
            return invalid("clients is 0; a firm needs at least one client".into());
        }
        if self.projects < 2 {
            return invalid(format!(
                "projects is {}; a firm needs at least 2, one of which is closed mid-period",
                self.projects
            ));
        }
        let days = self.working_days().len();
        if days < MIN_WORKING_DAYS {
            return invalid(format!(
                "the period {} to {} has {days} working days; use at least {MIN_WORKING_DAYS}",
                self.start, self.end
            ));
        }
        Ok(())
    }
}

fn is_weekday(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Returns Monday to Friday from `start` to `end`, both included.
pub fn working_days(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take_while(|day| *day <= end)
        .filter(|day| is_weekday(*day))
        .collect()
}

/// Returns the first day of a period of `count` working days that ends on `end`.
fn start_for(end: NaiveDate, count: usize) -> NaiveDate {
    let mut day = end;
    let mut found = 0;
    loop {
        if is_weekday(day) {
            found += 1;
            if found >= count {
                return day;
            }
        }
        day -= Duration::days(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_covers_thirteen_weeks() {
        let config = FirmConfig::demo();
        assert_eq!(config.working_days().len(), DEMO_WORKING_DAYS);
        assert_eq!(config.start, NaiveDate::from_ymd_opt(2026, 8, 31).unwrap());
        assert!(config.check().is_ok());
    }

    #[test]
    fn ending_on_keeps_the_length() {
        let end = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let config = FirmConfig::demo().ending_on(end);
        assert_eq!(config.end, end);
        assert_eq!(config.working_days().len(), DEMO_WORKING_DAYS);
    }

    #[test]
    fn benchmark_has_a_contract_per_person() {
        let config = FirmConfig::benchmark(2000, 260);
        assert_eq!(config.projects, 2000);
        assert_eq!(config.clients, 200);
        assert_eq!(config.working_days().len(), 260);
    }

    #[test]
    fn small_firms_are_rejected() {
        let config = FirmConfig {
            people: 5,
            ..FirmConfig::demo()
        };
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("at least 12"), "{error}");
    }
}
