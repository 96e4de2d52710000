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

pub use steward_domain::controls::*;
