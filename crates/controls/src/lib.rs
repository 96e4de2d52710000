//! Starter controls: checks over what is loaded that raise findings with their evidence.
//!
//! Each control is a pure function from data the engine gathered to the findings that hold
//! now. The engine stores them and resolves the findings a control no longer raises, so a
//! corrected timesheet closes its finding on the next run.

mod checks;

pub use checks::*;
pub use steward_domain::calendar::Calendar;

use std::collections::HashMap;

/// What the controls know about a person.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub manager: Option<String>,
    pub calendar: Option<Calendar>,
}

pub type People = HashMap<String, Person>;

/// Names of the starter controls, as stored on their findings.
pub const DAILY_HOURS: &str = "daily_hours";
pub const APPROVER_MISSING: &str = "approver_missing";
pub const SELF_APPROVAL: &str = "self_approval";
pub const PROJECT_TIME: &str = "time_on_closed_or_missing_project";
pub const OVERLAPPING_ENTRIES: &str = "overlapping_entries";

pub const ALL: &[&str] = &[
    DAILY_HOURS,
    APPROVER_MISSING,
    SELF_APPROVAL,
    PROJECT_TIME,
    OVERLAPPING_ENTRIES,
];
