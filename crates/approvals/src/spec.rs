//! The file format of approval policies and the firm's authority, as written in the rules
//! folder. A file may hold rules, policies and the authority side by side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;

/// The parts of a file in the rules folder that approvals read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    /// Automation rules, read by the rules checker.
    #[serde(default)]
    pub rules: Option<Value>,
    #[serde(default)]
    pub policies: Vec<Spanned<PolicySpec>>,
    #[serde(default)]
    pub authority: Option<Spanned<AuthoritySpec>>,
    /// Sections other loaders read.
    #[serde(default)]
    pub billing: Option<Value>,
    #[serde(default)]
    pub templates: Option<Value>,
    #[serde(default)]
    pub controls: Option<Value>,
}

/// One approval policy: a decision table whose rows yield approval steps.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Lower-case letters, digits, `-` and `_`; unique across all files.
    pub id: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The request kinds the policy routes, such as `expense`.
    pub request_kinds: Vec<Spanned<String>>,
    /// `first` (the default): the first matching row decides. `collect`: every matching row
    /// adds its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit: Option<Spanned<String>>,
    /// Who decides when a step's chain of approvers runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Spanned<Value>>,
    pub rows: Vec<Spanned<RowSpec>>,
}

/// One row of a policy's decision table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    /// Tests on the request's facts, one per column; a missing column matches anything.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub when: BTreeMap<String, Spanned<Value>>,
    /// `sequential` (the default): each step waits for the one before. `parallel`: all steps
    /// are open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Spanned<String>>,
    pub steps: Vec<Spanned<StepSpec>>,
    /// Why the row exists, shown in the routing explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One approval step that a row yields.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `manager`, `manager_of_manager`, `{role: finance}` or `{person: "name or e-mail"}`.
    pub approver: Spanned<Value>,
    /// Distinct approvals the step needs; 1 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Spanned<u32>>,
    /// How long the approver has, such as `2 working days` or `48 hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Spanned<String>>,
    /// How long before the deadline the approver is reminded, such as `4 hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_before: Option<Spanned<String>>,
}

/// Who may approve what: roles with their members and limits, and limits of single people.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySpec {
    /// Currency of limits written as a plain amount.
    pub currency: Spanned<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Spanned<RoleSpec>>,
    /// Limits of single people, by employee id, name or e-mail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub people: BTreeMap<String, Spanned<PersonSpec>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// `"1000"`, `unlimited`, or amounts by currency such as `{USD: 1000, EUR: 900}`.
    pub limit: Spanned<Value>,
    /// Employees holding the role, by id, name or e-mail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    pub limit: Spanned<Value>,
}
