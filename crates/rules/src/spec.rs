//! The rule file format, as written by people. Locations are kept for error messages.
//!
//! ```yaml
//! rules:
//!   - id: large-expense-review
//!     name: Ask finance to review large expenses
//!     trigger:
//!       on: state            # create, update, state, value or event
//!       record: expense
//!       state: submitted
//!     condition: record.amount > 500
//!     actions:
//!       - activity:
//!           title: "Review {{ record.description }} of {{ record.employee.name }}"
//!           role: finance
//!           due_in_days: 2
//! ```
//!
//! A string value that starts with `=` is an expression (`"= record.amount * 2"`); a string
//! with `{{ … }}` is a template whose parts are expressions; anything else is a literal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A rule file: a list of rules.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Lower-case letters, digits, `-` and `_`; unique across all rule files.
    pub id: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub trigger: Spanned<TriggerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Spanned<String>>,
    #[serde(default)]
    pub actions: Vec<Spanned<ActionSpec>>,
    /// Lets the rule react to changes made by its own actions. Off by default so that a rule
    /// that updates its record does not trigger itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_self_trigger: bool,
}

fn enabled_by_default() -> bool {
    true
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub on: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Spanned<String>>,
    /// For `update`: fire only when one of these fields changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Spanned<String>>,
    /// For `state`: the state entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Spanned<String>>,
    /// For `value`: the field and the value it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Spanned<Value>>,
    /// For `event`: the business event's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Spanned<String>>,
}

pub type FieldValues = BTreeMap<String, Spanned<Value>>;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Changes fields or the state of the record that triggered the rule.
    Update {
        #[serde(default)]
        fields: FieldValues,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Spanned<String>>,
    },
    /// Creates a record of any kind.
    Create {
        record: Spanned<String>,
        #[serde(default)]
        fields: FieldValues,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Spanned<String>>,
    },
    /// Creates an activity about the triggering record for a person or a role.
    Activity {
        title: Spanned<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<Spanned<Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Spanned<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_days: Option<Spanned<i64>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<Spanned<String>>,
    },
    /// Sends an in-app notification to a person or a role.
    Notify {
        message: Spanned<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient: Option<Spanned<Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Spanned<String>>,
    },
    /// Emits a business event that other rules can trigger on.
    Emit {
        event: Spanned<String>,
        #[serde(default)]
        data: FieldValues,
    },
}

impl ActionSpec {
    pub fn type_name(&self) -> &'static str {
        match self {
            ActionSpec::Update { .. } => "update",
            ActionSpec::Create { .. } => "create",
            ActionSpec::Activity { .. } => "activity",
            ActionSpec::Notify { .. } => "notify",
            ActionSpec::Emit { .. } => "emit",
        }
    }
}
