//! Compiled policies and authority, and the evaluation of a policy's decision table.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};
use steward_domain::money::Currency;
use steward_rules::duration::Offset;
use zen_expression::Expression;
use zen_expression::expression::Unary;
use zen_expression::variable::{Variable, VariableMap};

/// The columns a decision table may test: facts every request kind can carry.
pub const COLUMNS: &[&str] = &[
    "kind",
    "amount",
    "currency",
    "discount",
    "payment_terms",
    "terms",
    "margin",
    "subcontractors",
    "region",
    "service_line",
    "category",
    "country",
    "hours",
    "billable_hours",
    "project",
    "client",
];

/// The hit policy: which matching rows a table uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hit {
    /// The first matching row decides.
    First,
    /// Every matching row adds its steps, in row order.
    Collect,
}

/// Whether a row's steps wait for each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Sequential,
    Parallel,
}

/// The approver of a step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    /// The requester's manager; up the chain when the manager cannot decide.
    Manager,
    /// The manager of the requester's manager.
    ManagerOfManager,
    /// Any member of a role in the authority.
    Role(String),
    /// One person, by employee id, name or e-mail.
    Person(String),
}

impl Approver {
    /// Returns the rule as stored on a step: `manager`, `manager_of_manager`, `role:finance` or
    /// `person:Tina Williamson`.
    pub fn to_rule(&self) -> String {
        match self {
            Approver::Manager => "manager".into(),
            Approver::ManagerOfManager => "manager_of_manager".into(),
            Approver::Role(role) => format!("role:{role}"),
            Approver::Person(person) => format!("person:{person}"),
        }
    }

    /// Reads a rule written by [`Approver::to_rule`].
    pub fn from_rule(rule: &str) -> Option<Approver> {
        match rule {
            "manager" => Some(Approver::Manager),
            "manager_of_manager" => Some(Approver::ManagerOfManager),
            _ => {
                if let Some(role) = rule.strip_prefix("role:") {
                    Some(Approver::Role(role.to_string()))
                } else {
                    rule.strip_prefix("person:")
                        .map(|p| Approver::Person(p.to_string()))
                }
            }
        }
    }
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::Manager => f.write_str("the requester's manager"),
            Approver::ManagerOfManager => f.write_str("the manager of the requester's manager"),
            Approver::Role(role) => write!(f, "a member of role `{role}`"),
            Approver::Person(person) => write!(f, "{person}"),
        }
    }
}

/// A test in one cell of a decision table.
#[derive(Clone, Debug)]
pub enum CellTest {
    /// The fact equals one of these values.
    OneOf(Vec<Value>),
    /// A unary test such as `> 500` or `[100..500]`, run against the fact as `$`.
    Unary(Arc<Expression<Unary>>),
}

#[derive(Clone, Debug)]
pub struct Cell {
    pub column: String,
    /// The test as written.
    pub source: String,
    pub test: CellTest,
}

impl Cell {
    /// Runs the test against `fact`; a missing fact is `null`.
    pub fn matches(&self, fact: &Value) -> bool {
        match &self.test {
            CellTest::OneOf(values) => values.iter().any(|v| same_value(v, fact)),
            CellTest::Unary(expression) => {
                if fact.is_null() {
                    return false;
                }
                // Money and decimals are stored as text; compare them as numbers.
                let value = match decimal_of(fact) {
                    Some(number) if fact.is_string() => Variable::Number(number),
                    _ => Variable::from(fact.clone()),
                };
                let mut context = VariableMap::default();
                context.insert(Variable::dollar_key(), value);
                expression
                    .evaluate(Variable::from_object(context))
                    .unwrap_or(false)
            }
        }
    }
}

/// Compares values as a person would: numbers by value, whatever their written form.
fn same_value(expected: &Value, fact: &Value) -> bool {
    match (decimal_of(expected), decimal_of(fact)) {
        (Some(a), Some(b)) => a == b,
        _ => expected == fact,
    }
}

/// Reads a number or a decimal string.
pub fn decimal_of(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A step a row yields, before approvers are resolved.
#[derive(Clone, Debug, Serialize)]
pub struct StepTemplate {
    pub name: String,
    pub approver: Approver,
    pub approvals: u32,
    #[serde(serialize_with = "offset_text")]
    pub deadline: Option<Offset>,
    #[serde(serialize_with = "offset_text")]
    pub remind_before: Option<Offset>,
}

fn offset_text<S: serde::Serializer>(offset: &Option<Offset>, s: S) -> Result<S::Ok, S::Error> {
    match offset {
        Some(offset) => s.serialize_str(&offset.to_string()),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    /// The row's number in the table, from 1.
    pub number: usize,
    pub cells: Vec<Cell>,
    pub order: Order,
    pub steps: Vec<StepTemplate>,
    pub note: Option<String>,
}

impl Row {
    pub fn matches(&self, facts: &Map<String, Value>) -> bool {
        self.cells
            .iter()
            .all(|cell| cell.matches(facts.get(&cell.column).unwrap_or(&Value::Null)))
    }

    /// Returns the row's tests as written, for explanations: `amount > 500, region = EMEA`.
    pub fn describe(&self) -> String {
        if self.cells.is_empty() {
            return "any request".into();
        }
        self.cells
            .iter()
            .map(|c| format!("{} {}", c.column, c.source))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub request_kinds: Vec<String>,
    pub hit: Hit,
    pub fallback: Option<Approver>,
    pub rows: Vec<Row>,
    /// Assigned when the policy is registered; 0 before.
    pub version: i64,
    /// The policy in canonical JSON, as stored with each version.
    pub definition: Value,
    /// SHA-256 of the canonical JSON.
    pub hash: String,
    /// `file:<path>`.
    pub origin: String,
}

/// The steps a table yields for one request, with the rows that matched.
#[derive(Clone, Debug, Serialize)]
pub struct TableResult {
    /// Numbers of the matching rows that contributed steps.
    pub rows: Vec<usize>,
    /// Each step with the row it came from and its stage: steps of one stage are open at
    /// the same time, stages follow each other.
    pub steps: Vec<PlannedStep>,
    pub explanation: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedStep {
    pub row: usize,
    pub stage: u32,
    pub template: StepTemplate,
}

impl Policy {
    /// Evaluates the decision table against the request's facts. With hit policy `collect`,
    /// steps with the same approver are merged into the first, keeping the larger number of
    /// approvals and the shorter deadline.
    pub fn evaluate(&self, facts: &Map<String, Value>) -> TableResult {
        let mut result = TableResult {
            rows: Vec::new(),
            steps: Vec::new(),
            explanation: Vec::new(),
        };
        let mut stage = 0;
        for row in &self.rows {
            if !row.matches(facts) {
                continue;
            }
            result.rows.push(row.number);
            result.explanation.push(format!(
                "row {} of policy `{}` matched ({}){}",
                row.number,
                self.id,
                row.describe(),
                row.note
                    .as_ref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ));
            if row.order == Order::Parallel {
                stage += 1;
            }
            for template in &row.steps {
                if let Some(existing) = result
                    .steps
                    .iter_mut()
                    .find(|s| s.template.approver == template.approver)
                {
                    existing.template.approvals =
                        existing.template.approvals.max(template.approvals);
                    existing.template.deadline =
                        shorter(existing.template.deadline, template.deadline);
                    result.explanation.push(format!(
                        "row {} also asks {}; merged into the step `{}`",
                        row.number, template.approver, existing.template.name
                    ));
                    continue;
                }
                if row.order == Order::Sequential {
                    stage += 1;
                }
                result.steps.push(PlannedStep {
                    row: row.number,
                    stage,
                    template: template.clone(),
                });
            }
            if self.hit == Hit::First {
                break;
            }
        }
        if result.rows.is_empty() {
            result
                .explanation
                .push(format!("no row of policy `{}` matched", self.id));
        }
        result
    }
}

fn shorter(a: Option<Offset>, b: Option<Offset>) -> Option<Offset> {
    match (a, b) {
        (Some(a), Some(b)) => match (a.as_duration(), b.as_duration()) {
            (Some(x), Some(y)) => Some(if x <= y { a } else { b }),
            _ => Some(if a.amount <= b.amount { a } else { b }),
        },
        (a, None) => a,
        (None, b) => b,
    }
}

/// An authority limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Unlimited,
    /// The most one person may approve, by currency.
    Amounts(BTreeMap<String, Decimal>),
}

impl Limit {
    /// Whether the limit covers `amount` in `currency`; the reason when it does not.
    pub fn covers(&self, amount: Decimal, currency: &str) -> Result<(), String> {
        match self {
            Limit::Unlimited => Ok(()),
            Limit::Amounts(amounts) => match amounts.get(currency) {
                Some(limit) if *limit >= amount => Ok(()),
                Some(limit) => Err(format!(
                    "an authority limit of {limit} {currency} does not cover {amount} {currency}"
                )),
                None => Err(format!(
                    "the authority limit is set in {} only, and Steward does not convert {currency}",
                    amounts.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            },
        }
    }

    /// The larger of two limits, when both are in the same currencies.
    pub fn max(self, other: Limit) -> Limit {
        match (self, other) {
            (Limit::Unlimited, _) | (_, Limit::Unlimited) => Limit::Unlimited,
            (Limit::Amounts(mut a), Limit::Amounts(b)) => {
                for (currency, amount) in b {
                    let entry = a.entry(currency).or_insert(amount);
                    *entry = (*entry).max(amount);
                }
                Limit::Amounts(a)
            }
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Unlimited => f.write_str("unlimited"),
            Limit::Amounts(amounts) => {
                let parts: Vec<String> = amounts.iter().map(|(c, a)| format!("{a} {c}")).collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RoleAuthority {
    pub limit: Limit,
    /// Employee ids, names or e-mails.
    pub members: Vec<String>,
}

/// Roles, members and limits of the firm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Authority {
    pub currency: Option<String>,
    pub roles: BTreeMap<String, RoleAuthority>,
    /// Limits of single people, by employee id, name or e-mail.
    pub people: BTreeMap<String, Limit>,
}

impl Authority {
    /// The currency limits are written in, checked to be an ISO 4217 code.
    pub fn currency(&self) -> Option<Currency> {
        self.currency.as_deref().and_then(Currency::from_code)
    }
}

/// Every policy and the authority, as loaded from the rules folder.
#[derive(Clone, Debug, Default)]
pub struct ApprovalConfig {
    pub policies: Vec<Arc<Policy>>,
    by_kind: HashMap<String, Arc<Policy>>,
    pub authority: Authority,
}

impl ApprovalConfig {
    pub fn new(policies: Vec<Policy>, authority: Authority) -> ApprovalConfig {
        let policies: Vec<Arc<Policy>> = policies.into_iter().map(Arc::new).collect();
        let mut by_kind = HashMap::new();
        for policy in &policies {
            for kind in &policy.request_kinds {
                by_kind.insert(kind.clone(), policy.clone());
            }
        }
        ApprovalConfig {
            policies,
            by_kind,
            authority,
        }
    }

    /// The policy that routes requests of `kind`.
    pub fn policy_for(&self, kind: &str) -> Option<&Arc<Policy>> {
        self.by_kind.get(kind)
    }

    pub fn policy(&self, id: &str) -> Option<&Arc<Policy>> {
        self.policies.iter().find(|p| p.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Replaces the policies with versioned copies.
    pub fn with_versions(&self, versions: &HashMap<String, i64>) -> ApprovalConfig {
        let policies = self
            .policies
            .iter()
            .map(|p| {
                let mut p = (**p).clone();
                p.version = versions.get(&p.id).copied().unwrap_or(p.version);
                p
            })
            .collect();
        ApprovalConfig::new(policies, self.authority.clone())
    }
}
