//! Starter controls: checks over what is loaded that raise findings with their evidence.
//!
//! Each control is a pure function from data the engine gathered to the findings that hold
//! now. The engine stores them and resolves the findings a control no longer raises, so a
//! corrected timesheet closes its finding on the next run.
//!
//! The controls' settings come from the `templates:` and `controls:` sections of the rules
//! folder ([`load_dir`]); nothing else in this crate does IO.

mod checks;
pub mod collections;
pub mod entries;
pub mod handoff;
pub mod health;
mod load;
pub mod settings;
pub mod spec;
pub mod staffing;
pub mod timesheets;

pub use checks::*;
pub use load::compile_sources;
pub use settings::FirmSettings;
pub use steward_domain::calendar::Calendar;

use std::collections::HashMap;
use std::path::Path;

use steward_rules::Diagnostic;

/// Reads every `.yaml` and `.yml` file under `dir` and compiles its project templates and
/// control settings.
pub fn load_dir(dir: &Path) -> Result<FirmSettings, Vec<Diagnostic>> {
    let sources = steward_rules::check::read_sources(dir)?;
    let (settings, diagnostics) = compile_sources(&sources);
    if diagnostics.is_empty() {
        Ok(settings)
    } else {
        Err(diagnostics)
    }
}

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
