//! The firm's settings of the controls, as compiled from the `templates:` and `controls:`
//! sections of the rules folder: project templates by service line, and the thresholds,
//! cut-offs, limits, schedules and switches of each control.
//!
//! Every field has a default, so a firm that writes no settings gets the documented
//! behaviour. The compiled settings serialize to JSON, which is how the engine stores each
//! installed version.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use steward_domain::calendar::Calendar;

/// Everything the settings sections of the rules folder define.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FirmSettings {
    pub templates: Vec<ProjectTemplate>,
    pub controls: ControlSettings,
}

impl FirmSettings {
    /// The template of `service_line` (compared without case), or the default template.
    pub fn template_for(&self, service_line: Option<&str>) -> Option<&ProjectTemplate> {
        let wanted = service_line.map(|s| s.trim().to_lowercase());
        self.templates
            .iter()
            .find(|t| Some(t.service_line.to_lowercase()) == wanted)
            .or_else(|| self.templates.iter().find(|t| t.default))
    }
}

/// A number of days, counted on the calendar or on working days of a work calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySpan {
    pub days: i64,
    pub working: bool,
}

impl DaySpan {
    pub const ZERO: DaySpan = DaySpan {
        days: 0,
        working: false,
    };

    pub fn days(days: i64) -> DaySpan {
        DaySpan {
            days,
            working: false,
        }
    }

    pub fn working_days(days: i64) -> DaySpan {
        DaySpan {
            days,
            working: true,
        }
    }

    /// Moves `from` by the span. Working days skip the days `calendar` schedules no work;
    /// without a calendar they skip Saturdays and Sundays.
    pub fn add_to(&self, from: NaiveDate, calendar: Option<&Calendar>) -> NaiveDate {
        if !self.working {
            return from + Duration::days(self.days);
        }
        let fallback;
        let calendar = match calendar {
            Some(c) => c,
            None => {
                fallback = weekdays_calendar();
                &fallback
            }
        };
        calendar
            .add_working_days(from, self.days)
            .unwrap_or(from + Duration::days(self.days))
    }

    /// Parses `3 days`, `2 weeks` or `10 working days`. Hours, minutes and negative spans
    /// are rejected, because every span of the settings counts whole days forward.
    pub fn parse(text: &str) -> Result<DaySpan, String> {
        use steward_rules::duration::{Unit, parse_offset_with_help};
        let help = "write a number of days, weeks or working days, such as `1 day`, `2 weeks` or `10 working days`";
        let offset = parse_offset_with_help(text, help)?;
        if offset.amount < 0 {
            return Err(format!(
                "`{text}` is negative; {help}, without a minus sign"
            ));
        }
        match offset.unit {
            Unit::Days => Ok(DaySpan::days(offset.amount)),
            Unit::Weeks => Ok(DaySpan::days(offset.amount * 7)),
            Unit::WorkingDays => Ok(DaySpan::working_days(offset.amount)),
            Unit::Hours | Unit::Minutes => Err(format!(
                "`{text}` is shorter than a day; write days, weeks or working days, such as `3 days`"
            )),
        }
    }
}

impl std::fmt::Display for DaySpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match (self.working, self.days.abs() == 1) {
            (true, true) => "working day",
            (true, false) => "working days",
            (false, true) => "day",
            (false, false) => "days",
        };
        write!(f, "{} {unit}", self.days)
    }
}

impl Serialize for DaySpan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DaySpan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DaySpan::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Eight hours Monday to Friday and no holidays: the calendar of people who have none.
pub fn weekdays_calendar() -> Calendar {
    let eight = Decimal::from(8);
    Calendar {
        name: "a standard 40-hour week".into(),
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
        holidays: BTreeMap::new(),
    }
}

/// How a project created from a template finds its delivery owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerRule {
    /// The contract's owner, else the deal's owner.
    ContractOwner,
    /// The deal's owner, else the contract's owner.
    DealOwner,
    /// A named person: an employee id, name or e-mail address.
    Person(String),
}

/// The project a won deal of one service line starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectTemplate {
    pub service_line: String,
    /// Used for deals whose service line has no template of its own.
    #[serde(default)]
    pub default: bool,
    /// The project's name; `{client}`, `{deal}`, `{contract}` and `{service_line}` are
    /// replaced.
    pub project_name: String,
    /// The project's length when the contract sets no end date.
    pub duration: Option<DaySpan>,
    /// Name of the work calendar that working-day offsets count on.
    pub calendar: Option<String>,
    pub owner: OwnerRule,
    /// `planned` or `active`.
    pub state: String,
    pub tasks: Vec<TemplateTask>,
    pub milestones: Vec<TemplateMilestone>,
    pub roles: Vec<TemplateRole>,
    /// `file:<path>` of the file that defines the template.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateTask {
    pub name: String,
    /// The deadline, from the project's start.
    pub due: Option<DaySpan>,
    pub planned_hours: Option<Decimal>,
    /// Done when the project kicks off; its completion records the kickoff instant.
    pub kickoff: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateMilestone {
    pub name: String,
    pub due: DaySpan,
    /// Share of the contract's amount billed at the milestone, in percent.
    pub percentage: Option<Decimal>,
}

/// A role to staff, created as an open allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateRole {
    pub role: String,
    pub hours_per_week: Decimal,
    pub skills: Vec<String>,
    /// First day, from the project's start.
    pub from: DaySpan,
    /// Last day, from the project's start; the project's end when unset.
    pub until: Option<DaySpan>,
}

/// Thresholds and switches of every control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlSettings {
    /// Controls switched off by name, such as `staffing_bench`.
    pub disabled: BTreeSet<String>,
    pub handoff: HandoffSettings,
    pub staffing: StaffingSettings,
    pub timesheets: TimesheetSettings,
    pub expenses: ExpenseSettings,
    pub billable: Switch,
    pub collections: CollectionSettings,
    pub health: HealthSettings,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            disabled: BTreeSet::new(),
            handoff: HandoffSettings::default(),
            staffing: StaffingSettings::default(),
            timesheets: TimesheetSettings::default(),
            expenses: ExpenseSettings::default(),
            billable: Switch { enabled: true },
            collections: CollectionSettings::default(),
            health: HealthSettings::default(),
        }
    }
}

impl ControlSettings {
    /// True unless the control or its group is switched off.
    pub fn is_on(&self, control: &str) -> bool {
        use steward_domain::controls::*;
        if self.disabled.contains(control) {
            return false;
        }
        match control {
            HANDOFF_OVERDUE | HANDOFF_NO_TEMPLATE => self.handoff.enabled,
            STAFFING_OVERBOOKED
            | STAFFING_BENCH
            | STAFFING_UNSTAFFED_ROLE
            | STAFFING_SKILL_MISMATCH => self.staffing.enabled,
            TIMESHEET_INCOMPLETE => self.timesheets.enabled,
            EXPENSE_LIMIT | EXPENSE_RECEIPT | EXPENSE_DUPLICATE => self.expenses.enabled,
            BILLABLE_MISMATCH => self.billable.enabled,
            COLLECTIONS_OVERDUE => self.collections.enabled,
            BUDGET_BURN | MARGIN_LOW | MILESTONE_OVERDUE | SLA_BREACH => self.health.enabled,
            _ => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandoffSettings {
    pub enabled: bool,
    /// A deal won and signed longer ago than this without a kicked-off project raises a
    /// finding for its owner.
    pub kickoff_within: DaySpan,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        HandoffSettings {
            enabled: true,
            kickoff_within: DaySpan::working_days(10),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaffingSettings {
    pub enabled: bool,
    /// Weeks looked at, from the current one.
    pub weeks: u32,
    /// Booked hours above this share of capacity, in percent, overbook a person.
    pub overbooked_above: Decimal,
    /// Booked hours above this share, in percent, need an approved `staffing_exception`
    /// request before the allocation that causes them is confirmed.
    pub exception_above: Decimal,
    /// Booked hours below this share, in percent, put a person on the bench.
    pub bench_below: Decimal,
    /// Open roles that start within this span raise a finding.
    pub unstaffed_within: DaySpan,
    /// Whether the controls open a `staffing_exception` request for a planned allocation
    /// beyond `exception_above`, when a policy routes that kind.
    pub open_exception_requests: bool,
}

impl Default for StaffingSettings {
    fn default() -> Self {
        StaffingSettings {
            enabled: true,
            weeks: 4,
            overbooked_above: Decimal::ONE_HUNDRED,
            exception_above: Decimal::from(120),
            bench_below: Decimal::from(50),
            unstaffed_within: DaySpan::days(28),
            open_exception_requests: true,
        }
    }
}

/// The length of the period a cut-off closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// An ISO week, Monday to Sunday.
    Week,
    Month,
}

/// A deadline for time: people with gaps are reminded at `remind`, and at `escalate` the gaps
/// of the period that ended before it go to their managers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cutoff {
    pub name: String,
    pub period: Period,
    /// Cron expression of the reminders; each covers the period its instant falls in.
    pub remind: Option<String>,
    /// Cron expression of the cut-off; each closes the last period that ended before it.
    pub escalate: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimesheetSettings {
    pub enabled: bool,
    /// IANA time zone of the cut-offs.
    pub timezone: String,
    /// Entry states whose hours count as logged.
    pub counted_states: Vec<String>,
    /// A period is complete when the logged hours reach this share of the expected hours,
    /// in percent.
    pub complete_at: Decimal,
    pub cutoffs: Vec<Cutoff>,
    /// Entries dated later than this after the person's local today are rejected on write.
    pub future_tolerance: DaySpan,
}

impl Default for TimesheetSettings {
    fn default() -> Self {
        TimesheetSettings {
            enabled: true,
            timezone: "UTC".into(),
            counted_states: ["draft", "submitted", "approved", "invoiced"]
                .map(String::from)
                .to_vec(),
            complete_at: Decimal::ONE_HUNDRED,
            cutoffs: vec![Cutoff {
                name: "payroll".into(),
                period: Period::Week,
                remind: Some("0 14 * * FRI".into()),
                escalate: "0 10 * * MON".into(),
            }],
            future_tolerance: DaySpan::days(1),
        }
    }
}

/// The most one expense of a category may claim, by currency, optionally in one country.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpenseLimit {
    pub category: String,
    /// ISO 3166 country where the cost was incurred; any country when unset.
    pub country: Option<String>,
    /// Limit per currency code; expenses in other currencies are not checked.
    pub limits: BTreeMap<String, Decimal>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpenseSettings {
    pub enabled: bool,
    /// Expenses above this amount, per currency, need a receipt.
    pub receipt_above: BTreeMap<String, Decimal>,
    pub limits: Vec<ExpenseLimit>,
    /// Whether two expenses with the same receipt raise a finding.
    pub duplicates: bool,
}

impl Default for ExpenseSettings {
    fn default() -> Self {
        ExpenseSettings {
            enabled: true,
            receipt_above: BTreeMap::new(),
            limits: Vec::new(),
            duplicates: true,
        }
    }
}

impl ExpenseSettings {
    /// The most specific limit for a category and country: a country's own limit wins over
    /// the category's general one. Categories compare without case.
    pub fn limit_for(&self, category: &str, country: Option<&str>) -> Option<&ExpenseLimit> {
        let category = category.trim().to_lowercase();
        let matching: Vec<&ExpenseLimit> = self
            .limits
            .iter()
            .filter(|l| l.category.to_lowercase() == category)
            .collect();
        let own = matching
            .iter()
            .find(|l| l.country.is_some() && l.country.as_deref() == country);
        own.or_else(|| matching.iter().find(|l| l.country.is_none()))
            .copied()
    }
}

/// What a collection step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionStep {
    /// Remind the client's billing contact.
    Remind,
    /// Give the unpaid invoice to the client's account leader.
    Escalate,
}

impl CollectionStep {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionStep::Remind => "remind",
            CollectionStep::Escalate => "escalate",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionStage {
    /// Time after the due date.
    pub after: DaySpan,
    pub step: CollectionStep,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionSettings {
    pub enabled: bool,
    /// IANA time zone of `at`.
    pub timezone: String,
    /// Local time of day, `HH:MM`, at which the steps of a day run.
    pub at: String,
    /// Steps by time after the due date, in order.
    pub schedule: Vec<CollectionStage>,
}

impl Default for CollectionSettings {
    fn default() -> Self {
        CollectionSettings {
            enabled: true,
            timezone: "UTC".into(),
            at: "09:00".into(),
            schedule: vec![
                CollectionStage {
                    after: DaySpan::days(1),
                    step: CollectionStep::Remind,
                },
                CollectionStage {
                    after: DaySpan::days(14),
                    step: CollectionStep::Remind,
                },
                CollectionStage {
                    after: DaySpan::days(30),
                    step: CollectionStep::Escalate,
                },
            ],
        }
    }
}

impl CollectionSettings {
    /// The last stage whose time has come `days_overdue` days after the due date, with its
    /// position from 1. Working-day stages count Monday to Friday from the due date.
    pub fn stage_at(&self, due: NaiveDate, today: NaiveDate) -> Option<(usize, &CollectionStage)> {
        self.schedule
            .iter()
            .enumerate()
            .filter(|(_, stage)| stage.after.add_to(due, None) <= today)
            .next_back()
            .map(|(index, stage)| (index + 1, stage))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthSettings {
    pub enabled: bool,
    /// Projects whose margin falls below this, in percent, raise a finding.
    pub margin_below: Decimal,
    /// Projects whose budget burn runs ahead of their progress by more than this many
    /// percentage points raise a finding.
    pub burn_ahead_by: Decimal,
    /// Milestones not reached this long after their deadline are overdue.
    pub milestone_grace: DaySpan,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            enabled: true,
            margin_below: Decimal::from(20),
            burn_ahead_by: Decimal::from(15),
            milestone_grace: DaySpan::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_spans_parse_and_print() {
        assert_eq!(DaySpan::parse("2 weeks"), Ok(DaySpan::days(14)));
        assert_eq!(
            DaySpan::parse("10 working days"),
            Ok(DaySpan::working_days(10))
        );
        assert!(
            DaySpan::parse("4 hours")
                .unwrap_err()
                .contains("shorter than a day")
        );
        assert_eq!(
            DaySpan::parse("-1 day"),
            Err("`-1 day` is negative; write a number of days, weeks or working days, such as `1 day`, `2 weeks` or `10 working days`, without a minus sign".into())
        );
        let unreadable = DaySpan::parse("tomorrow").unwrap_err();
        assert_eq!(
            unreadable,
            "`tomorrow` has no number; write a number of days, weeks or working days, such as `1 day`, `2 weeks` or `10 working days`"
        );
        assert_eq!(DaySpan::working_days(1).to_string(), "1 working day");
        let json = serde_json::to_string(&DaySpan::working_days(3)).unwrap();
        assert_eq!(json, "\"3 working days\"");
        let back: DaySpan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, DaySpan::working_days(3));
    }

    #[test]
    fn working_days_skip_weekends_without_a_calendar() {
        let friday = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let span = DaySpan::working_days(1);
        assert_eq!(
            span.add_to(friday, None),
            NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
        );
    }

    #[test]
    fn country_limit_wins_over_general_limit() {
        let limit = |country: Option<&str>, amount: i64| ExpenseLimit {
            category: "Meals".into(),
            country: country.map(String::from),
            limits: [("EUR".to_string(), Decimal::from(amount))].into(),
        };
        let settings = ExpenseSettings {
            limits: vec![limit(None, 50), limit(Some("BE"), 60)],
            ..ExpenseSettings::default()
        };
        let be = settings.limit_for("meals", Some("BE")).unwrap();
        assert_eq!(be.limits["EUR"], Decimal::from(60));
        let fr = settings.limit_for("Meals", Some("FR")).unwrap();
        assert_eq!(fr.limits["EUR"], Decimal::from(50));
        assert!(settings.limit_for("Travel", None).is_none());
    }

    #[test]
    fn collection_stage_is_the_last_one_due() {
        let settings = CollectionSettings::default();
        let due = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let on = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        assert!(settings.stage_at(due, on(1)).is_none());
        assert_eq!(settings.stage_at(due, on(2)).unwrap().0, 1);
        assert_eq!(settings.stage_at(due, on(15)).unwrap().0, 2);
        let (position, stage) = settings.stage_at(due, on(30)).unwrap();
        assert_eq!(position, 2);
        assert_eq!(stage.step, CollectionStep::Remind);
        let (position, stage) = settings
            .stage_at(due, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
            .unwrap();
        assert_eq!((position, stage.step), (3, CollectionStep::Escalate));
    }
}
