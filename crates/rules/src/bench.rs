//! The condition-evaluation workload shared by the criterion benchmark and its smoke test:
//! 200 rules on timesheet entries, with conditions of the shapes firms write, evaluated
//! against one event.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use steward_domain::{Actor, Event, EventKind, Kind, Record, new_id};

use crate::context::{self, Expansion};
use crate::eval::evaluate_condition;
use crate::{Rule, VM, Variable, compile_sources};

/// The conditions the 200 rules cycle through.
const CONDITIONS: &[&str] = &[
    "record.hours > 10",
    "record.hours > 4 and record.billable == true",
    "record.state == 'submitted' and 'hours' in changed",
    "record.notes != null and len(record.notes) > 20",
    "record.hours * 2 >= 15 or record.role == 'Partner'",
    "record.date < today and record.state == 'draft'",
    "record.employee.id != null and record.hours >= 8",
    "old.hours != null and record.hours - old.hours > 2",
];

/// Compiles the 200 rules.
pub fn rules(count: usize) -> Vec<Rule> {
    let mut text = String::from("rules:\n");
    for index in 0..count {
        let condition = CONDITIONS[index % CONDITIONS.len()];
        text.push_str(&format!(
            "  - id: rule-{index}\n    trigger: {{ on: update, record: timesheet }}\n    condition: \"{condition}\"\n    actions: [ {{ emit: {{ event: bench.hit }} }} ]\n"
        ));
    }
    let (rules, diagnostics) = compile_sources(&[("bench.yaml".into(), text)]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    rules
}

/// The event and the context the rules are evaluated against.
pub fn context() -> (Event, Variable) {
    let at: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
    let fields: Map<String, Value> = json!({
        "employee": new_id(), "date": "2026-12-03", "hours": "9.5", "billable": true,
        "notes": "Workshop with the client's finance team", "role": "Consultant",
    })
    .as_object()
    .unwrap()
    .clone();
    let record = Record {
        id: new_id(),
        kind: Kind::Timesheet,
        state: "submitted".into(),
        version: 2,
        created_at: at,
        updated_at: at,
        fields,
        attributes: Map::new(),
    };
    let mut changes = std::collections::BTreeMap::new();
    changes.insert(
        "hours".to_string(),
        steward_domain::event::FieldChange {
            old: json!("6"),
            new: json!("9.5"),
        },
    );
    let event = Event {
        seq: 1,
        id: new_id(),
        kind: EventKind::Updated,
        name: "timesheet.updated".into(),
        record: Some(record.reference()),
        record_version: Some(2),
        changes,
        data: Value::Null,
        actor: Actor::user("bench"),
        cause: None,
        correlation: new_id(),
        depth: 0,
        occurred_at: at,
    };
    let variable = context::build(&event, Some(&record), &Expansion::default(), &mut |_, _| {
        None
    });
    (event, variable)
}

/// Evaluates every rule once and returns how many conditions held.
pub fn evaluate_all(rules: &[Rule], context: &Variable, vm: &mut VM) -> usize {
    rules
        .iter()
        .filter(|rule| evaluate_condition(rule, context, vm).result == Ok(true))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_workload_evaluates() {
        let rules = rules(200);
        let (event, context) = context();
        assert!(rules.iter().all(|r| r.trigger.matches(&event)));
        let mut vm = VM::new();
        let held = evaluate_all(&rules, &context, &mut vm);
        // Two of the eight shapes are false for this 9.5-hour submitted entry: `hours > 10`
        // and the draft one.
        assert_eq!(held, 200 - 2 * 200 / CONDITIONS.len());
    }
}
