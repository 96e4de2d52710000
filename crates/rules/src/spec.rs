//! The rule file format, as written by people. Locations are kept for error messages.
//!
//! ```yaml
//! rules:
//!   - id: large-expense-review
//!     name: Ask finance to review large expenses
//!     trigger:
//!       on: state            # create, update, state, value, event, time or schedule
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
    /// Approval policies, read by the approvals checker.
    #[serde(default, skip_serializing)]
    pub policies: Option<Value>,
    /// The firm's approval authority, read by the approvals checker.
    #[serde(default, skip_serializing)]
    pub authority: Option<Value>,
    /// Billing settings (taxes, rounding), read by the billing loader.
    #[serde(default, skip_serializing)]
    pub billing: Option<Value>,
    /// Project templates by service line, read by the handoff loader.
    #[serde(default, skip_serializing)]
    pub templates: Option<Value>,
    /// Thresholds and switches of the built-in controls, read by the controls loader.
    #[serde(default, skip_serializing)]
    pub controls: Option<Value>,
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
    /// For `time`: how long before (negative) or after the date in `field`, such as
    /// `-3 days` or `2 working days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<Spanned<String>>,
    /// For `time` on a date field: the local time of day, `HH:MM`; midnight by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Spanned<String>>,
    /// For `time` and `schedule`: the IANA time zone of local times; UTC by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Spanned<String>>,
    /// For `time` with working days: a work calendar's name, or a path to one such as
    /// `record.employee.calendar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Spanned<String>>,
    /// For `schedule`: a cron expression of five fields (minute to weekday) or six (with
    /// seconds first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<Spanned<String>>,
    /// For `schedule`: `skip`, `once` (the default) or `all` occurrences missed while
    /// Steward was down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<Spanned<String>>,
    /// For `schedule` with `catch_up: all`: the most missed occurrences run; 10 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_limit: Option<Spanned<u64>>,
    /// For `schedule`: `skip` (the default), `buffer` or `allow` an occurrence that comes
    /// while the previous run is still going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Spanned<String>>,
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
    /// Calls an HTTP API. Runs at least once: retries send the same `Idempotency-Key` header.
    Http {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<Spanned<String>>,
        url: Spanned<String>,
        #[serde(default, skip_serializing_if = "FieldValues::is_empty")]
        headers: FieldValues,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<FieldValues>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<Spanned<u64>>,
    },
    /// Sends a signed webhook to an outbound endpoint.
    Webhook {
        endpoint: Spanned<String>,
        event: Spanned<String>,
        #[serde(default)]
        data: FieldValues,
    },
    /// Runs a built-in control, or `all` of them.
    Control { name: Spanned<String> },
    /// Waits for a duration (`for: 2 days`) or until an instant (`until: "= ..."`), then
    /// goes on with the next action.
    Wait {
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        duration: Option<Spanned<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Spanned<String>>,
    },
    /// Waits for a business event about the same record (or with the same correlation id),
    /// then goes on; after `timeout` it goes on without it.
    Await {
        event: Spanned<String>,
        /// `record` (the default) or `correlation`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<Spanned<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<Spanned<String>>,
    },
    /// Opens an approval request of a kind about the triggering record, routed by the policy
    /// for that kind; joins the open request when one exists.
    Approval {
        request: Spanned<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<Spanned<String>>,
    },
    /// Reminds the approver of, or escalates, the triggering approval step. Only Steward's
    /// built-in rules use it.
    ApprovalStep(Spanned<String>),
    /// Sets the answer of the inbound webhook that triggered the rule.
    Respond {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<Spanned<u16>>,
        #[serde(default)]
        body: FieldValues,
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
            ActionSpec::Http { .. } => "http",
            ActionSpec::Webhook { .. } => "webhook",
            ActionSpec::Control { .. } => "control",
            ActionSpec::Wait { .. } => "wait",
            ActionSpec::Await { .. } => "await",
            ActionSpec::Respond { .. } => "respond",
            ActionSpec::Approval { .. } => "approval",
            ActionSpec::ApprovalStep(_) => "approval_step",
        }
    }
}
