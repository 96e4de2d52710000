//! Rule files, from text to matched triggers, evaluated conditions and resolved actions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use steward_domain::event::FieldChange;
use steward_domain::{Actor, Event, EventKind, Kind, Record, new_id};
use steward_rules::context::{self, Expansion};
use steward_rules::eval::{Occasion, evaluate_condition, resolve_actions};
use steward_rules::{
    Diagnostic, Effect, Rule, RuleSet, VM, compile_sources, compile_sources_with_roles,
};

fn compile(text: &str) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let (rules, diagnostics) =
        compile_sources(&[("rules/test.yaml".to_string(), text.to_string())]);
    if diagnostics.is_empty() {
        Ok(rules)
    } else {
        Err(diagnostics)
    }
}

fn errors(text: &str) -> Vec<String> {
    compile(text)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn at() -> DateTime<Utc> {
    "2026-12-04T10:00:00Z".parse().unwrap()
}

fn record(kind: Kind, state: &str, fields: Value) -> Record {
    Record {
        id: new_id(),
        kind,
        state: state.into(),
        version: 2,
        created_at: at(),
        updated_at: at(),
        fields: fields.as_object().unwrap().clone(),
        attributes: Map::new(),
    }
}

fn event(
    record: &Record,
    kind: EventKind,
    changes: &[(&str, Value, Value)],
    actor: Actor,
) -> Event {
    let changes: BTreeMap<String, FieldChange> = changes
        .iter()
        .map(|(f, old, new)| {
            (
                f.to_string(),
                FieldChange {
                    old: old.clone(),
                    new: new.clone(),
                },
            )
        })
        .collect();
    Event {
        seq: 1,
        id: new_id(),
        kind,
        name: format!("{}.{}", record.kind, kind.as_str()),
        record: Some(record.reference()),
        record_version: Some(record.version),
        changes,
        data: Value::Null,
        actor,
        cause: None,
        correlation: new_id(),
        depth: 0,
        occurred_at: at(),
    }
}

const EXPENSE_RULE: &str = r#"
rules:
  - id: large-expense
    name: Review large expenses
    trigger: { on: state, record: expense, state: submitted }
    condition: record.amount > 500 and record.employee.manager != null
    actions:
      - activity:
          title: "{{ record.employee.manager.name }}: review {{ record.category }} of {{ record.amount }} {{ record.currency }}"
          assignee: "= record.employee.manager"
          role: finance
          due_in_days: 2
      - update:
          fields: { policy_result: needs_review }
      - emit:
          event: expense.flagged
          data: { amount: "= record.amount" }
"#;

#[test]
fn rule_file_compiles_with_its_expansion() {
    let rules = compile(EXPENSE_RULE).unwrap();
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule.trigger.describe(), "expense entered state submitted");
    assert_eq!(rule.actions.len(), 3);
    assert!(
        rule.expansion.0.contains_key("employee"),
        "{:?}",
        rule.expansion
    );
    assert_eq!(rule.hash.len(), 64);
}

#[test]
fn rules_cannot_write_approval_records_directly() {
    let text = "rules:\n  - id: a\n    trigger: { on: create, record: approval_request }\n    actions:\n      - update: { state: approved }\n  - id: b\n    trigger: { on: create, record: expense }\n    actions:\n      - create: { record: approval_request, fields: { request_kind: expense } }\n      - approval_step: escalate\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("change only through decisions"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("use `approval: { request: ... }`"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("for Steward's built-in approval rules"),
        "{}",
        errors[2]
    );
}

#[test]
fn unknown_fields_are_reported_with_line_and_fix() {
    let text = "rules:\n  - id: a\n    trigger: { on: create, record: expense }\n    condition: record.amout > 5\n    actions:\n      - update: { fields: { colour: red } }\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("rules/test.yaml:4:"), "{}", errors[0]);
    assert!(
        errors[0].contains("`amout` is not a field of expense"),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with("rules/test.yaml:6:"), "{}", errors[1]);
    assert!(errors[1].contains("`colour` is not a field of expense; known fields are"));
}

#[test]
fn misspelt_keys_and_kinds_are_reported() {
    let errors = errors(
        "rules:\n  - id: a\n    trigger: { on: create, record: expence }\n    condtion: x\n    actions: []\n",
    );
    assert_eq!(
        errors.len(),
        1,
        "only the parse error is reported: {errors:?}"
    );
    assert!(
        errors[0].contains("rules/test.yaml:4:5: unknown field `condtion`"),
        "{}",
        errors[0]
    );

    let errors = errors_for_kind();
    assert!(
        errors[0].contains("`expence` is not a record kind"),
        "{errors:?}"
    );
}

fn errors_for_kind() -> Vec<String> {
    errors(
        "rules:\n  - id: a\n    trigger: { on: create, record: expence }\n    actions:\n      - emit: { event: a.b }\n",
    )
}

#[test]
fn bad_values_and_states_are_reported() {
    let text = r#"
rules:
  - id: bad
    trigger: { on: state, record: timesheet, state: aproved }
    actions:
      - update: { fields: { hours: "lots" } }
      - create: { record: activity, fields: { note: x } }
      - emit: { event: Not.An.Event }
      - activity: { title: hello }
"#;
    let errors = errors(text);
    let joined = errors.join("\n");
    assert!(
        joined.contains("`aproved` is not a state of timesheet"),
        "{joined}"
    );
    assert!(
        joined.contains("`hours`: `lots` is not a decimal number"),
        "{joined}"
    );
    assert!(
        joined.contains("creating a activity needs `title`"),
        "{joined}"
    );
    assert!(
        joined.contains("`Not.An.Event` cannot be emitted"),
        "{joined}"
    );
    assert!(joined.contains("name an `assignee`"), "{joined}");
}

#[test]
fn yaml_booleans_stay_text_in_text_fields() {
    let text = "rules:\n  - id: norway\n    trigger: { on: create, record: client }\n    actions:\n      - update: { fields: { country: NO, vat: 1.10 } }\n";
    let rules = compile(text).unwrap();
    let steward_rules::Action::Update { fields, .. } = &rules[0].actions[0] else {
        panic!()
    };
    let values: Vec<String> = fields
        .iter()
        .map(|(n, v)| match v {
            steward_rules::expr::ValueExpr::Literal(l) => format!("{n}={l}"),
            _ => panic!("literal expected"),
        })
        .collect();
    assert_eq!(values, vec!["country=\"NO\"", "vat=\"1.10\""]);
}

#[test]
fn duplicate_ids_are_reported() {
    let one = "rules:\n  - id: same\n    trigger: { on: create, record: client }\n    actions: [ { emit: { event: a.b } } ]\n";
    let (_, diagnostics) =
        compile_sources(&[("a.yaml".into(), one.into()), ("b.yaml".into(), one.into())]);
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0].message.contains("already used in a.yaml"));
}

#[test]
fn duplicate_id_is_reported_beside_other_errors() {
    let text = "rules:\n  - id: same\n    trigger: { on: create, record: timeshet }\n    actions: [ { emit: { event: a.b } } ]\n  - id: same\n    trigger: { on: create, record: client }\n    actions: [ { emit: { event: a.b } } ]\n";
    let (rules, diagnostics) = compile_sources(&[("a.yaml".into(), text.into())]);
    assert!(rules.is_empty());
    let messages: Vec<_> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("timeshet")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("rule id `same` is already used in a.yaml")),
        "{messages:?}"
    );
}

#[test]
fn triggers_fire_once_per_real_transition() {
    let rules = compile(EXPENSE_RULE).unwrap();
    let set = RuleSet::new(rules);
    let expense = record(
        Kind::Expense,
        "submitted",
        json!({"amount": "750.00", "currency": "EUR"}),
    );
    let entered = event(
        &expense,
        EventKind::Updated,
        &[("state", json!("draft"), json!("submitted"))],
        Actor::user("u"),
    );
    assert_eq!(set.matching(&entered).count(), 1);
    let other_change = event(
        &expense,
        EventKind::Updated,
        &[("amount", json!("700.00"), json!("750.00"))],
        Actor::user("u"),
    );
    assert_eq!(
        set.matching(&other_change).count(),
        0,
        "no transition, no match"
    );
    let created_in_state = event(
        &expense,
        EventKind::Created,
        &[("state", Value::Null, json!("submitted"))],
        Actor::user("u"),
    );
    assert_eq!(
        set.matching(&created_in_state).count(),
        1,
        "creation in the state enters it"
    );
}

#[test]
fn rules_ignore_their_own_changes() {
    let text = "rules:\n  - id: touch\n    trigger: { on: update, record: client }\n    actions: [ { update: { fields: { vat: x } } } ]\n  - id: echo\n    allow_self_trigger: true\n    trigger: { on: update, record: client, fields: [vat] }\n    actions: [ { emit: { event: client.echo } } ]\n";
    let set = RuleSet::new(compile(text).unwrap());
    let client = record(Kind::Client, "active", json!({"name": "A"}));
    let own = event(
        &client,
        EventKind::Updated,
        &[("vat", json!("y"), json!("x"))],
        Actor::rule("touch"),
    );
    let ids: Vec<&str> = set.matching(&own).map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["echo"]);
    let echo_own = event(
        &client,
        EventKind::Updated,
        &[("vat", json!("y"), json!("x"))],
        Actor::rule("echo"),
    );
    let ids: Vec<&str> = set.matching(&echo_own).map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["touch", "echo"], "echo allows reacting to itself");
}

#[test]
fn condition_reads_related_records_and_reports_inputs() {
    let rules = compile(EXPENSE_RULE).unwrap();
    let rule = &rules[0];
    let manager = record(Kind::Employee, "active", json!({"name": "Marc"}));
    let employee = record(
        Kind::Employee,
        "active",
        json!({"name": "Ada", "manager": manager.id}),
    );
    let expense = record(
        Kind::Expense,
        "submitted",
        json!({"employee": employee.id, "amount": "750.00", "currency": "EUR", "category": "Travel"}),
    );
    let trigger = event(
        &expense,
        EventKind::Updated,
        &[("state", json!("draft"), json!("submitted"))],
        Actor::user("u"),
    );
    let mut loads = Vec::new();
    let (e, m) = (employee.clone(), manager.clone());
    let ctx = context::build(
        &trigger,
        Some(&expense),
        &rule.expansion,
        &mut |kind, id| {
            loads.push((kind, id.to_string()));
            [&e, &m].into_iter().find(|r| r.id == id).cloned()
        },
    );
    assert_eq!(
        loads.len(),
        2,
        "the employee and the manager are loaded: {loads:?}"
    );

    let mut vm = VM::new();
    let evaluation = evaluate_condition(rule, &ctx, &mut vm);
    assert_eq!(evaluation.result, Ok(true));
    assert_eq!(evaluation.inputs["record.amount"], json!("750.00"));

    let reference = expense.reference();
    let occasion = Occasion {
        record: Some(&reference),
        now: at(),
        correlation: "c",
    };
    let actions = resolve_actions(rule, &ctx, &occasion, &mut vm).unwrap();
    let Effect::Create { kind, fields, .. } = &actions[0].effect else {
        panic!()
    };
    assert_eq!(*kind, Kind::Activity);
    assert_eq!(fields["title"], json!("Marc: review Travel of 750.00 EUR"));
    assert_eq!(fields["assignee"], json!(manager.id));
    assert_eq!(fields["due_date"], json!("2026-12-06"));
    assert_eq!(fields["subject_id"], json!(expense.id));
    let Effect::Emit { data, .. } = &actions[2].effect else {
        panic!()
    };
    assert_eq!(data["amount"], json!("750.00"));
}

#[test]
fn condition_errors_are_values_not_panics() {
    let text = "rules:\n  - id: a\n    trigger: { on: create, record: client }\n    condition: record.name\n    actions: [ { emit: { event: a.b } } ]\n";
    let rules = compile(text).unwrap();
    let client = record(Kind::Client, "active", json!({"name": "A"}));
    let trigger = event(&client, EventKind::Created, &[], Actor::user("u"));
    let ctx = context::build(
        &trigger,
        Some(&client),
        &Expansion::default(),
        &mut |_, _| None,
    );
    let evaluation = evaluate_condition(&rules[0], &ctx, &mut VM::new());
    assert_eq!(
        evaluation.result,
        Err("the condition gave \"A\" instead of true or false".into())
    );
}

#[test]
fn old_values_are_visible() {
    let text = "rules:\n  - id: a\n    trigger: { on: update, record: timesheet, fields: [hours] }\n    condition: record.hours - old.hours > 2\n    actions: [ { emit: { event: a.b } } ]\n";
    let rules = compile(text).unwrap();
    let entry = record(Kind::Timesheet, "draft", json!({"hours": "8"}));
    let trigger = event(
        &entry,
        EventKind::Updated,
        &[("hours", json!("5"), json!("8"))],
        Actor::user("u"),
    );
    let ctx = context::build(
        &trigger,
        Some(&entry),
        &Expansion::default(),
        &mut |_, _| None,
    );
    assert_eq!(
        evaluate_condition(&rules[0], &ctx, &mut VM::new()).result,
        Ok(true)
    );
}

#[test]
fn changed_is_a_list_not_a_record() {
    let errors = errors(
        "rules:\n  - id: a\n    trigger: { on: update, record: client }\n    condition: changed.vat\n    actions: [ { emit: { event: a.b } } ]\n",
    );
    assert!(errors[0].contains("write `'vat' in changed`"), "{errors:?}");
}

#[test]
fn duplicate_ids_point_at_the_second_id() {
    let one = "rules:\n  - id: same\n    trigger: { on: create, record: client }\n    actions: [ { emit: { event: a.b } } ]\n";
    let (_, diagnostics) =
        compile_sources(&[("a.yaml".into(), one.into()), ("b.yaml".into(), one.into())]);
    assert_eq!(
        diagnostics[0].to_string(),
        "b.yaml:2:9: rule id `same` is already used in a.yaml; give each rule its own id"
    );
}

#[test]
fn type_errors_at_run_time_are_readable() {
    let text = "rules:\n  - id: a\n    trigger: { on: create, record: timesheet }\n    condition: record.hours * 'a' > 1\n    actions: [ { emit: { event: a.b } } ]\n";
    let rules = compile(text).unwrap();
    let entry = record(Kind::Timesheet, "draft", json!({"hours": "8"}));
    let trigger = event(&entry, EventKind::Created, &[], Actor::user("u"));
    let ctx = context::build(
        &trigger,
        Some(&entry),
        &Expansion::default(),
        &mut |_, _| None,
    );
    let error = evaluate_condition(&rules[0], &ctx, &mut VM::new())
        .result
        .unwrap_err();
    assert!(
        error.contains("Multiply cannot work on these values"),
        "{error}"
    );
    assert!(!error.contains("OpcodeErr"), "{error}");
}

#[test]
fn time_and_schedule_triggers_compile() {
    let text = r#"
rules:
  - id: invoice-reminder
    trigger: { on: time, record: invoice, field: due_date, offset: "3 days", at: "09:00", timezone: Europe/Brussels }
    actions: [ { emit: { event: invoice.overdue } } ]
  - id: timesheet-chase
    trigger: { on: time, record: timesheet, field: date, offset: "2 working days", calendar: record.employee.calendar }
    actions: [ { notify: { message: "Submit", recipient: "= record.employee" } } ]
  - id: monday-digest
    trigger: { on: schedule, cron: "0 8 * * 1", timezone: Europe/Brussels, catch_up: all, catch_up_limit: 3, overlap: buffer }
    actions:
      - control: { name: all }
      - http: { url: "https://chat.example.com/hook", body: { text: "Digest of {{ today }}" } }
      - wait: { for: 1 hour }
      - webhook: { endpoint: billing, event: digest.sent, data: { day: "= today" } }
"#;
    let rules = compile(text).unwrap();
    assert_eq!(rules[0].trigger.describe(), "3 days after invoice.due_date");
    assert_eq!(
        rules[1].trigger.describe(),
        "2 working days after timesheet.date"
    );
    assert_eq!(
        rules[2].trigger.describe(),
        "schedule `0 8 * * 1` in Europe/Brussels"
    );
    let set = RuleSet::new(rules);
    assert_eq!(set.scheduled().count(), 1);
    assert_eq!(set.timed(Kind::Invoice).count(), 1);
}

#[test]
fn bad_time_triggers_and_actions_are_reported() {
    let text = r#"
rules:
  - id: a
    trigger: { on: time, record: invoice, field: number, offset: "2 working days" }
    actions: [ { emit: { event: a.b } } ]
  - id: b
    trigger: { on: schedule, cron: "61 8 * * *", timezone: Mars/Base }
    actions:
      - http: { method: FETCH, url: "ftp://example.com" }
      - control: { name: everything }
      - wait: {}
      - respond: { status: 99 }
"#;
    let joined = errors(text).join("\n");
    for expected in [
        "`number` is a text, not a date or datetime field",
        "is not a cron expression",
        "`Mars/Base` is not an IANA time zone",
        "`FETCH` is not an HTTP method",
        "`everything` is not a control",
        "`wait` needs either `for:`",
        "status 99 is not an HTTP status",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn respond_status_is_checked() {
    let errors = errors(
        "rules:\n  - id: a\n    trigger: { on: create, record: client }\n    actions:\n      - respond: { status: 99 }\n",
    );
    assert!(errors[0].contains("status 99"), "{errors:?}");
}

#[test]
fn unknown_notify_role_is_reported() {
    let text = "rules:\n  - id: tell\n    trigger: { on: create, record: expense }\n    actions:\n      - notify: { message: New expense, role: finanse }\n      - activity: { title: Check it, role: legal }\n      - notify: { message: Again, role: operations }\n";
    let known: Vec<String> = ["admin", "finance", "operations", "legal"]
        .map(String::from)
        .to_vec();
    let (rules, diagnostics) = compile_sources_with_roles(
        &[("rules/test.yaml".to_string(), text.to_string())],
        Some(&known),
    );
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "rules/test.yaml:5:47: role `finanse` is not defined; use one of admin, finance, \
          operations, legal, or declare it under `authority: roles:` in an approval policy file"
        ]
    );
    assert!(rules.is_empty(), "a file with errors installs nothing");

    // Without the list of roles, as for a rule sent alone, any role is accepted.
    assert!(compile(text).is_ok());
}
