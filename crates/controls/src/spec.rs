//! The `templates:` and `controls:` sections of the rules folder, as people write them.
//! Locations are kept for error messages.
//!
//! ```yaml
//! templates:
//!   - service_line: Consulting
//!     project_name: "{client}: {deal}"
//!     duration: 12 weeks
//!     tasks:
//!       - { name: Kickoff meeting, due: 2 working days, planned_hours: 4, kickoff: true }
//!     milestones:
//!       - { name: Final acceptance, due: 12 weeks, percentage: 100 }
//!     roles:
//!       - { role: Senior Consultant, hours_per_week: 32, skills: [strategy] }
//! controls:
//!   staffing: { overbooked_above: 100%, exception_above: 120% }
//!   expenses:
//!     receipt_above: { EUR: 75 }
//!     limits: [{ category: Meals, country: BE, limit: { EUR: 60 } }]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// The parts of a file in the rules folder that the controls read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    #[serde(default)]
    pub templates: Vec<Spanned<TemplateSpec>>,
    #[serde(default)]
    pub controls: Option<Spanned<ControlsSpec>>,
    /// Sections other loaders read.
    #[serde(default)]
    pub rules: Option<Value>,
    #[serde(default)]
    pub policies: Option<Value>,
    #[serde(default)]
    pub authority: Option<Value>,
    #[serde(default)]
    pub billing: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub service_line: Spanned<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub project_name: Option<Spanned<String>>,
    #[serde(default)]
    pub duration: Option<Spanned<String>>,
    #[serde(default)]
    pub calendar: Option<Spanned<String>>,
    /// `contract_owner` (the default), `deal_owner` or `{person: "name or e-mail"}`.
    #[serde(default)]
    pub owner: Option<Spanned<Value>>,
    #[serde(default)]
    pub state: Option<Spanned<String>>,
    #[serde(default)]
    pub tasks: Vec<Spanned<TaskSpec>>,
    #[serde(default)]
    pub milestones: Vec<Spanned<MilestoneSpec>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RoleSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub due: Option<Spanned<String>>,
    #[serde(default)]
    pub planned_hours: Option<Spanned<Value>>,
    #[serde(default)]
    pub kickoff: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilestoneSpec {
    pub name: Spanned<String>,
    pub due: Spanned<String>,
    #[serde(default)]
    pub percentage: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub role: Spanned<String>,
    pub hours_per_week: Spanned<Value>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    #[serde(default)]
    pub until: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlsSpec {
    #[serde(default)]
    pub disabled: Vec<Spanned<String>>,
    #[serde(default)]
    pub handoff: Option<HandoffSpec>,
    #[serde(default)]
    pub staffing: Option<StaffingSpec>,
    #[serde(default)]
    pub timesheets: Option<TimesheetsSpec>,
    #[serde(default)]
    pub expenses: Option<ExpensesSpec>,
    #[serde(default)]
    pub billable: Option<SwitchSpec>,
    #[serde(default)]
    pub collections: Option<CollectionsSpec>,
    #[serde(default)]
    pub health: Option<HealthSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub kickoff_within: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffingSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub weeks: Option<Spanned<u32>>,
    #[serde(default)]
    pub overbooked_above: Option<Spanned<Value>>,
    #[serde(default)]
    pub exception_above: Option<Spanned<Value>>,
    #[serde(default)]
    pub bench_below: Option<Spanned<Value>>,
    #[serde(default)]
    pub unstaffed_within: Option<Spanned<String>>,
    #[serde(default)]
    pub open_exception_requests: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimesheetsSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub counted_states: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub complete_at: Option<Spanned<Value>>,
    #[serde(default)]
    pub cutoffs: Option<Vec<Spanned<CutoffSpec>>>,
    #[serde(default)]
    pub future_tolerance: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoffSpec {
    pub name: Spanned<String>,
    pub period: Spanned<String>,
    #[serde(default)]
    pub remind: Option<Spanned<String>>,
    pub escalate: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpensesSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub receipt_above: Option<Spanned<BTreeMap<String, Spanned<Value>>>>,
    #[serde(default)]
    pub limits: Vec<Spanned<LimitSpec>>,
    #[serde(default)]
    pub duplicates: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    pub category: Spanned<String>,
    #[serde(default)]
    pub country: Option<Spanned<String>>,
    pub limit: Spanned<BTreeMap<String, Spanned<Value>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionsSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub at: Option<Spanned<String>>,
    #[serde(default)]
    pub schedule: Option<Vec<Spanned<StageSpec>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub after: Spanned<String>,
    pub step: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub margin_below: Option<Spanned<Value>>,
    #[serde(default)]
    pub burn_ahead_by: Option<Spanned<Value>>,
    #[serde(default)]
    pub milestone_grace: Option<Spanned<String>>,
}
