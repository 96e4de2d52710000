//! Compiling policy and authority files. Every problem names its file, line and column and
//! how to fix it; a file with any error contributes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use steward_domain::kinds::APPROVAL_KINDS;
use steward_domain::money::Currency;
use steward_rules::Diagnostic;
use steward_rules::duration::{Offset, parse_offset};

use crate::policy::{
    ApprovalConfig, Approver, Authority, COLUMNS, Cell, CellTest, Hit, Limit, Order, Policy,
    RoleAuthority, Row, StepTemplate, decimal_of,
};
use crate::spec::{ApprovalFile, AuthoritySpec, PolicySpec, StepSpec};

/// Most steps one row may yield.
const MAX_STEPS: usize = 10;
/// Most approvals one step may need.
const MAX_APPROVALS: u32 = 10;

/// Compiles the policies and the authority of files given as (name, text). Files that are
/// not YAML maps, or hold only rules, contribute nothing and raise nothing here; the rules
/// checker reports their problems.
pub fn compile_sources(sources: &[(String, String)]) -> (ApprovalConfig, Vec<Diagnostic>) {
    let mut policies: Vec<Policy> = Vec::new();
    let mut authority: Option<(Authority, String)> = None;
    let mut diagnostics = Vec::new();
    let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_kinds: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in sources {
        if !mentions_approvals(text) {
            continue;
        }
        let mut checker = Checker {
            file,
            diagnostics: Vec::new(),
        };
        let parsed: Result<ApprovalFile, _> = serde_saphyr::from_str(text);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                checker.parse_error(&error);
                diagnostics.append(&mut checker.diagnostics);
                continue;
            }
        };
        let mut compiled = Vec::new();
        for spec in parsed.policies {
            let at = spec.referenced;
            if let Some(policy) = checker.policy(spec.value, file) {
                compiled.push((policy, at));
            }
        }
        for (policy, at) in &compiled {
            if let Some(first) = seen_ids.insert(policy.id.clone(), file.clone()) {
                checker.error(
                    at,
                    format!(
                        "policy id `{}` is already used in {first}; give each policy its own id",
                        policy.id
                    ),
                );
            }
            for kind in &policy.request_kinds {
                if let Some(first) = seen_kinds.insert(kind.clone(), policy.id.clone()) {
                    checker.error(
                        at,
                        format!(
                            "requests of kind `{kind}` are already routed by policy `{first}`; \
                             each request kind has one policy"
                        ),
                    );
                }
            }
        }
        let compiled_authority = parsed
            .authority
            .map(|spec| (spec.referenced, checker.authority(spec.value)));
        if let Some((at, Some(found))) = compiled_authority {
            match &authority {
                Some((_, first)) => checker.error(
                    &at,
                    format!(
                        "the authority is already set in {first}; keep one `authority` section"
                    ),
                ),
                None if checker.diagnostics.is_empty() => {
                    authority = Some((found, file.clone()));
                }
                None => {}
            }
        }
        if checker.diagnostics.is_empty() {
            policies.extend(compiled.into_iter().map(|(p, _)| p));
        }
        diagnostics.append(&mut checker.diagnostics);
    }
    let authority = authority.map(|(a, _)| a).unwrap_or_default();
    check_authority_covers(&policies, &authority, &mut diagnostics);
    diagnostics.sort();
    (ApprovalConfig::new(policies, authority), diagnostics)
}

/// Cheap test that keeps rule-only files out of the approval parser.
fn mentions_approvals(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("policies:") || l.starts_with("authority:"))
}

/// Checks that every role a policy routes to, `manager` included, has a limit in the authority.
fn check_authority_covers(
    policies: &[Policy],
    authority: &Authority,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut missing: BTreeSet<(String, String)> = BTreeSet::new();
    for policy in policies {
        let approvers = policy
            .rows
            .iter()
            .flat_map(|r| r.steps.iter().map(|s| &s.approver))
            .chain(policy.fallback.iter());
        for approver in approvers {
            let role = match approver {
                Approver::Manager | Approver::ManagerOfManager => "manager",
                Approver::Role(role) => role.as_str(),
                Approver::Person(_) => continue,
            };
            if !authority.roles.contains_key(role) {
                missing.insert((policy.origin.clone(), format!(
                    "policy `{}` routes to {approver}, but the authority declares no role `{role}`; \
                     add `authority: roles: {role}: {{limit: ...}}` so that Steward knows what \
                     they may approve",
                    policy.id
                )));
            }
        }
    }
    for (origin, message) in missing {
        diagnostics.push(Diagnostic {
            file: origin.trim_start_matches("file:").to_string(),
            line: 0,
            column: 0,
            message,
        });
    }
}

struct Checker<'a> {
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(self.file, at, message));
    }

    fn parse_error(&mut self, error: &serde_saphyr::Error) {
        self.diagnostics
            .push(Diagnostic::from_parse_error(self.file, error));
    }

    fn policy(&mut self, spec: PolicySpec, file: &str) -> Option<Policy> {
        let before = self.diagnostics.len();
        let id = spec.id.value.clone();
        if id.is_empty()
            || id.len() > 100
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.error(
                &spec.id.referenced,
                format!("policy id `{id}` must be lower-case letters, digits, `-` or `_`"),
            );
        }
        let mut kinds = Vec::new();
        for kind in &spec.request_kinds {
            if APPROVAL_KINDS.contains(&kind.value.as_str()) {
                kinds.push(kind.value.clone());
            } else {
                self.error(
                    &kind.referenced,
                    format!(
                        "`{}` is not a request kind; use one of {}",
                        kind.value,
                        APPROVAL_KINDS.join(", ")
                    ),
                );
            }
        }
        if spec.request_kinds.is_empty() {
            self.error(
                &spec.id.referenced,
                format!(
                    "policy `{id}` routes no request kind; list some under `request_kinds`, such as [expense]"
                ),
            );
        }
        let hit = match spec.hit.as_ref().map(|h| h.value.as_str()) {
            None | Some("first") => Hit::First,
            Some("collect") => Hit::Collect,
            Some(other) => {
                let at = spec
                    .hit
                    .as_ref()
                    .map_or(spec.id.referenced, |h| h.referenced);
                self.error(
                    &at,
                    format!("hit policy `{other}` is unknown; use `first` or `collect`"),
                );
                Hit::First
            }
        };
        let fallback = spec
            .fallback
            .as_ref()
            .and_then(|f| self.approver(&f.value, &f.referenced));
        if spec.rows.is_empty() {
            self.error(
                &spec.id.referenced,
                format!("policy `{id}` has no rows; add at least one under `rows`"),
            );
        }
        let mut rows = Vec::new();
        for (index, row) in spec.rows.iter().enumerate() {
            let at = row.referenced;
            let row = &row.value;
            let mut cells = Vec::new();
            for (column, value) in &row.when {
                if !COLUMNS.contains(&column.as_str()) {
                    self.error(
                        &value.referenced,
                        format!(
                            "`{column}` is not a column of approval tables; use one of {}",
                            COLUMNS.join(", ")
                        ),
                    );
                    continue;
                }
                if let Some(cell) = self.cell(column, &value.value, &value.referenced) {
                    cells.push(cell);
                }
            }
            let order = match row.order.as_ref().map(|o| o.value.as_str()) {
                None | Some("sequential") => Order::Sequential,
                Some("parallel") => Order::Parallel,
                Some(other) => {
                    let at = row.order.as_ref().map(|o| o.referenced).unwrap_or(at);
                    self.error(
                        &at,
                        format!("order `{other}` is unknown; use `sequential` or `parallel`"),
                    );
                    Order::Sequential
                }
            };
            if row.steps.is_empty() || row.steps.len() > MAX_STEPS {
                self.error(
                    &at,
                    format!(
                        "row {} has {} steps; give it between 1 and {MAX_STEPS}",
                        index + 1,
                        row.steps.len()
                    ),
                );
            }
            let mut steps = Vec::new();
            for step in &row.steps {
                if let Some(template) = self.step(&step.value, &step.referenced) {
                    if steps
                        .iter()
                        .any(|s: &StepTemplate| s.approver == template.approver)
                    {
                        self.error(
                            &step.referenced,
                            format!(
                                "row {} asks {} twice; nobody approves two steps of one request, so merge the steps",
                                index + 1,
                                template.approver
                            ),
                        );
                    }
                    steps.push(template);
                }
            }
            rows.push(Row {
                number: index + 1,
                cells,
                order,
                steps,
                note: row.note.clone(),
            });
        }
        if self.diagnostics.len() > before {
            return None;
        }
        let definition = serde_json::to_value(&spec).unwrap_or(Value::Null);
        let hash = hex::encode(Sha256::digest(definition.to_string().as_bytes()));
        Some(Policy {
            name: spec.name.clone().unwrap_or_else(|| id.clone()),
            id,
            description: spec.description.clone(),
            request_kinds: kinds,
            hit,
            fallback,
            rows,
            version: 0,
            definition,
            hash,
            origin: format!("file:{file}"),
        })
    }

    fn cell(&mut self, column: &str, value: &Value, at: &Location) -> Option<Cell> {
        let source = match value {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        let test = match value {
            Value::String(s) if is_unary_test(s) => {
                match zen_expression::compile_unary_expression(s.trim()) {
                    Ok(expression) => CellTest::Unary(Arc::new(expression)),
                    Err(e) => {
                        self.error(
                            at,
                            format!(
                                "the test `{}` on `{column}` does not parse ({e}); write it like `> 500`, `[100..500]` or `\"EMEA\", \"APAC\"`",
                                s.trim()
                            ),
                        );
                        return None;
                    }
                }
            }
            Value::Array(values) => CellTest::OneOf(values.clone()),
            Value::Null => {
                self.error(
                    at,
                    format!(
                        "the test on `{column}` is empty; leave the column out to match anything"
                    ),
                );
                return None;
            }
            Value::Object(_) => {
                self.error(
                    at,
                    format!("the test on `{column}` is a map; write a value, a list of values or a test such as `> 500`"),
                );
                return None;
            }
            other => CellTest::OneOf(vec![other.clone()]),
        };
        let source = match &test {
            CellTest::OneOf(values) if values.len() == 1 => format!("= {}", plain(&values[0])),
            CellTest::OneOf(values) => format!(
                "in [{}]",
                values.iter().map(plain).collect::<Vec<_>>().join(", ")
            ),
            CellTest::Unary(_) => source,
        };
        Some(Cell {
            column: column.to_string(),
            source,
            test,
        })
    }

    fn step(&mut self, spec: &StepSpec, at: &Location) -> Option<StepTemplate> {
        let approver = self.approver(&spec.approver.value, &spec.approver.referenced)?;
        let approvals = match &spec.approvals {
            Some(n) if n.value == 0 || n.value > MAX_APPROVALS => {
                self.error(
                    &n.referenced,
                    format!(
                        "a step needs between 1 and {MAX_APPROVALS} approvals, not {}",
                        n.value
                    ),
                );
                return None;
            }
            Some(n) => n.value,
            None => 1,
        };
        if approvals > 1 && !matches!(approver, Approver::Role(_)) {
            self.error(
                at,
                format!(
                    "only a role step can need {approvals} approvals, since {approver} is one person; \
                     route it to a role or ask for 1"
                ),
            );
            return None;
        }
        let deadline = self.offset(spec.deadline.as_ref(), "deadline")?;
        let remind_before = self.offset(spec.remind_before.as_ref(), "remind_before")?;
        if remind_before.is_some() && deadline.is_none() {
            self.error(
                at,
                "`remind_before` needs a `deadline` to count back from; add one",
            );
            return None;
        }
        Some(StepTemplate {
            name: spec.name.clone().unwrap_or_else(|| approver.to_rule()),
            approver,
            approvals,
            deadline,
            remind_before,
        })
    }

    /// Reads an optional positive offset; `None` inside `Some` means absent.
    fn offset(&mut self, text: Option<&Spanned<String>>, name: &str) -> Option<Option<Offset>> {
        let Some(text) = text else {
            return Some(None);
        };
        match parse_offset(&text.value) {
            Ok(offset) if offset.amount > 0 => Some(Some(offset)),
            Ok(_) => {
                self.error(
                    &text.referenced,
                    format!("`{name}` must be positive, such as `2 working days`"),
                );
                None
            }
            Err(e) => {
                self.error(&text.referenced, format!("`{name}`: {e}"));
                None
            }
        }
    }

    fn approver(&mut self, value: &Value, at: &Location) -> Option<Approver> {
        let help = "write `manager`, `manager_of_manager`, `{role: finance}` or `{person: \"name or e-mail\"}`";
        match value {
            Value::String(s) if s == "manager" => Some(Approver::Manager),
            Value::String(s) if s == "manager_of_manager" => Some(Approver::ManagerOfManager),
            Value::Object(map) if map.len() == 1 => {
                let (key, name) = map.iter().next().expect("one entry");
                let name = name.as_str().map(str::trim).filter(|n| !n.is_empty());
                match (key.as_str(), name) {
                    ("role", Some(role)) => Some(Approver::Role(role.to_string())),
                    ("person", Some(person)) => Some(Approver::Person(person.to_string())),
                    _ => {
                        self.error(at, format!("`{key}` is not an approver; {help}"));
                        None
                    }
                }
            }
            other => {
                self.error(at, format!("`{}` is not an approver; {help}", plain(other)));
                None
            }
        }
    }

    fn authority(&mut self, spec: AuthoritySpec) -> Option<Authority> {
        let before = self.diagnostics.len();
        let currency = spec.currency.value.trim().to_ascii_uppercase();
        if Currency::from_code(&currency).is_none() {
            self.error(
                &spec.currency.referenced,
                format!(
                    "`{}` is not an ISO 4217 currency code; write one such as USD or EUR",
                    spec.currency.value
                ),
            );
        }
        let mut roles = BTreeMap::new();
        for (name, role) in &spec.roles {
            let limit = self.limit(
                &role.value.limit.value,
                &role.value.limit.referenced,
                &currency,
            );
            if let Some(limit) = limit {
                roles.insert(
                    name.clone(),
                    RoleAuthority {
                        limit,
                        members: role.value.members.iter().map(|m| m.value.clone()).collect(),
                    },
                );
            }
        }
        let mut people = BTreeMap::new();
        for (name, person) in &spec.people {
            let limit = &person.value.limit;
            if let Some(limit) = self.limit(&limit.value, &limit.referenced, &currency) {
                people.insert(name.clone(), limit);
            }
        }
        if self.diagnostics.len() > before {
            return None;
        }
        Some(Authority {
            currency: Some(currency),
            roles,
            people,
        })
    }

    fn limit(&mut self, value: &Value, at: &Location, currency: &str) -> Option<Limit> {
        let help = "write an amount such as \"5000\", `unlimited`, or amounts by currency such as {USD: 5000, EUR: 4500}";
        match value {
            Value::String(s) if s.trim() == "unlimited" => Some(Limit::Unlimited),
            Value::Object(map) => {
                let mut amounts = BTreeMap::new();
                for (code, amount) in map {
                    let code = code.trim().to_ascii_uppercase();
                    if Currency::from_code(&code).is_none() {
                        self.error(
                            at,
                            format!("`{code}` is not an ISO 4217 currency code; {help}"),
                        );
                        return None;
                    }
                    amounts.insert(code, self.amount(amount, at, help)?);
                }
                Some(Limit::Amounts(amounts))
            }
            other => {
                let amount = self.amount(other, at, help)?;
                Some(Limit::Amounts([(currency.to_string(), amount)].into()))
            }
        }
    }

    fn amount(&mut self, value: &Value, at: &Location, help: &str) -> Option<Decimal> {
        match decimal_of(value) {
            Some(amount) if amount >= Decimal::ZERO => Some(amount),
            _ => {
                self.error(at, format!("`{}` is not a limit; {help}", plain(value)));
                None
            }
        }
    }
}

/// Cells written as an operator, a range or quoted values are unary tests; other text is
/// compared as it is.
fn is_unary_test(text: &str) -> bool {
    let text = text.trim();
    text.starts_with(['<', '>', '=', '!', '[', '(', ']', '"', '\''])
        || text.starts_with("not ")
        || text.starts_with("not(")
        || text.contains('$')
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn compile(text: &str) -> (ApprovalConfig, Vec<Diagnostic>) {
        compile_sources(&[("policies.yaml".to_string(), text.to_string())])
    }

    const FILE: &str = r#"
authority:
  currency: USD
  roles:
    manager: { limit: "1000" }
    finance: { limit: unlimited, members: ["Tina Williamson"] }
policies:
  - id: expenses
    request_kinds: [expense]
    fallback: { role: finance }
    rows:
      - when: { amount: "<= 500" }
        steps:
          - approver: manager
            deadline: 2 working days
            remind_before: 4 hours
      - when: { amount: "> 500", category: [Travel, Meals] }
        steps:
          - approver: manager
          - approver: { role: finance }
      - steps:
          - approver: { role: finance }
"#;

    fn facts(value: serde_json::Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_table_routes_by_its_first_matching_row() {
        let (config, diagnostics) = compile(FILE);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let policy = config.policy_for("expense").unwrap();
        let small = policy.evaluate(&facts(json!({"amount": "120.50", "category": "Meals"})));
        assert_eq!(small.rows, vec![1]);
        assert_eq!(small.steps.len(), 1);
        assert_eq!(small.steps[0].template.approver, Approver::Manager);
        let travel = policy.evaluate(&facts(json!({"amount": "2000", "category": "Travel"})));
        assert_eq!(travel.rows, vec![2]);
        assert_eq!(
            travel
                .steps
                .iter()
                .map(|s| (s.stage, s.template.approver.to_rule()))
                .collect::<Vec<_>>(),
            vec![(1, "manager".to_string()), (2, "role:finance".to_string())]
        );
        let other = policy.evaluate(&facts(json!({"amount": "2000", "category": "Software"})));
        assert_eq!(other.rows, vec![3]);
        assert!(other.explanation[0].contains("any request"));
    }

    #[test]
    fn collect_merges_rows_and_parallel_rows_share_a_stage() {
        let text = r#"
authority:
  currency: EUR
  roles:
    manager: { limit: "5000" }
    legal: { limit: unlimited }
    finance: { limit: unlimited }
policies:
  - id: proposals
    request_kinds: [proposal]
    hit: collect
    rows:
      - steps: [{ approver: manager, deadline: 3 days }]
      - when: { terms: non_standard }
        order: parallel
        steps:
          - approver: { role: legal }
          - approver: { role: finance }
      - when: { amount: "> 100000" }
        steps: [{ approver: { role: finance }, approvals: 2, deadline: 1 day }]
"#;
        let (config, diagnostics) = compile(text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let policy = config.policy_for("proposal").unwrap();
        let result = policy.evaluate(&facts(json!({"terms": "non_standard", "amount": 250000})));
        assert_eq!(result.rows, vec![1, 2, 3]);
        let steps: Vec<_> = result
            .steps
            .iter()
            .map(|s| (s.stage, s.template.approver.to_rule(), s.template.approvals))
            .collect();
        assert_eq!(
            steps,
            vec![
                (1, "manager".to_string(), 1),
                (2, "role:legal".to_string(), 1),
                (2, "role:finance".to_string(), 2),
            ]
        );
        assert_eq!(
            result.steps[2].template.deadline.unwrap().to_string(),
            "1 days"
        );
        let standard = policy.evaluate(&facts(json!({"terms": "standard", "amount": 900})));
        assert_eq!(standard.rows, vec![1]);
    }

    #[test]
    fn mistakes_are_reported_with_their_line_and_fix() {
        let text = r#"
authority:
  currency: EUX
  roles:
    manager: { limit: lots }
policies:
  - id: Bad Id
    request_kinds: [expense, lunch]
    hit: sometimes
    rows:
      - when: { colour: red, amount: "> >" }
        order: random
        steps:
          - approver: boss
          - approver: manager
            approvals: 3
            deadline: soon
"#;
        let (config, diagnostics) = compile(text);
        assert!(config.is_empty());
        let messages: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
        let expect = [
            "policies.yaml:3:13: `EUX` is not an ISO 4217 currency code",
            "policies.yaml:5:23: `lots` is not a limit",
            "policies.yaml:7:9: policy id `Bad Id` must be",
            "`lunch` is not a request kind",
            "hit policy `sometimes` is unknown",
            "`colour` is not a column of approval tables",
            "the test `> >` on `amount` does not parse",
            "order `random` is unknown",
            "`boss` is not an approver",
            "only a role step can need 3 approvals",
        ];
        for fragment in expect {
            assert!(
                messages.iter().any(|m| m.contains(fragment)),
                "no diagnostic contains {fragment:?}: {messages:#?}"
            );
        }
    }

    #[test]
    fn a_policy_needs_the_limits_of_the_roles_it_routes_to() {
        let text = r#"
policies:
  - id: writeoffs
    request_kinds: [write_off]
    rows:
      - steps: [{ approver: { role: controller } }]
"#;
        let (_, diagnostics) = compile(text);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(
            diagnostics[0]
                .message
                .contains("declares no role `controller`")
        );
    }

    #[test]
    fn two_policies_cannot_route_one_kind() {
        let first = "policies:\n  - id: a\n    request_kinds: [discount]\n    rows:\n      - steps: [{ approver: { person: ceo@example.com } }]\n";
        let second = "policies:\n  - id: b\n    request_kinds: [discount]\n    rows:\n      - steps: [{ approver: { person: cfo@example.com } }]\n";
        let (_, diagnostics) = compile_sources(&[
            ("a.yaml".to_string(), first.to_string()),
            ("b.yaml".to_string(), second.to_string()),
        ]);
        assert!(
            diagnostics
                .iter()
                .any(|d| d.file == "b.yaml" && d.message.contains("already routed by policy `a`")),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn limits_compare_in_their_currency() {
        let limit = Limit::Amounts([("USD".to_string(), Decimal::from(1000))].into());
        assert!(limit.covers(Decimal::from(1000), "USD").is_ok());
        let over = limit.covers(Decimal::from(1001), "USD").unwrap_err();
        assert!(over.contains("1000 USD does not cover 1001 USD"), "{over}");
        let other = limit.covers(Decimal::from(10), "EUR").unwrap_err();
        assert!(other.contains("does not convert EUR"), "{other}");
        assert!(
            Limit::Unlimited
                .covers(Decimal::from(10_000_000), "JPY")
                .is_ok()
        );
    }
}
