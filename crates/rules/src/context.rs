//! The data a rule sees: the record with the related records its expressions reach, the old
//! values, the event, and the time of the event.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use steward_domain::event::STATE_FIELD;
use steward_domain::schema::FieldType;
use steward_domain::{Event, Kind, Record};
use zen_expression::variable::Variable;

/// How far reference chains are followed, as in `record.project.client.account_leader`.
pub const MAX_REFERENCE_DEPTH: usize = 4;

/// The reference fields to load, as a tree: `{employee: {manager: {}}}` loads the employee and
/// the employee's manager.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expansion(pub BTreeMap<String, Expansion>);

impl Expansion {
    /// Builds the tree from paths such as `record.employee.manager.name`, for a record of
    /// `kind`. Segments that are not reference fields end the walk.
    pub fn from_paths<'a>(kind: Kind, paths: impl IntoIterator<Item = &'a String>) -> Expansion {
        let mut tree = Expansion::default();
        for path in paths {
            let mut segments = path.split('.');
            if segments.next() != Some("record") {
                continue;
            }
            tree.insert(kind, &segments.collect::<Vec<_>>(), 0);
        }
        tree
    }

    fn insert(&mut self, kind: Kind, segments: &[&str], depth: usize) {
        let [field, rest @ ..] = segments else { return };
        if rest.is_empty() || depth >= MAX_REFERENCE_DEPTH {
            return;
        }
        let Some(def) = kind.schema().field(field) else {
            return;
        };
        let FieldType::Ref(target) = def.ty else {
            return;
        };
        let child = self.0.entry(field.to_string()).or_default();
        child.insert(target, rest, depth + 1);
    }

    pub fn merge(&mut self, other: &Expansion) {
        for (field, child) in &other.0 {
            self.0.entry(field.clone()).or_default().merge(child);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Loads a record by kind and id; supplied by the caller, which owns the store.
pub type Lookup<'a> = dyn FnMut(Kind, &str) -> Option<Record> + 'a;

/// Converts a record to the object that expressions read, loading related records along
/// `expansion`.
pub fn record_variable(record: &Record, expansion: &Expansion, lookup: &mut Lookup) -> Variable {
    let mut object = base_object(record);
    let schema = record.kind.schema();
    for def in schema.fields {
        let value = record.fields.get(def.name).unwrap_or(&Value::Null);
        let converted = match (def.ty, value) {
            (FieldType::Ref(target), Value::String(id)) => match expansion.0.get(def.name) {
                Some(child) => match lookup(target, id) {
                    Some(related) => record_variable(&related, child, lookup),
                    None => reference(id),
                },
                None => reference(id),
            },
            _ => field_variable(def.ty, value),
        };
        object.push((def.name.to_string(), converted));
    }
    object_variable(object)
}

fn base_object(record: &Record) -> Vec<(String, Variable)> {
    vec![
        ("id".into(), Variable::String(record.id.as_str().into())),
        ("kind".into(), Variable::String(record.kind.name().into())),
        (
            STATE_FIELD.into(),
            Variable::String(record.state.as_str().into()),
        ),
        (
            "version".into(),
            Variable::Number(Decimal::from(record.version)),
        ),
        (
            "created_at".into(),
            Variable::String(
                steward_domain::value::format_instant(record.created_at)
                    .as_str()
                    .into(),
            ),
        ),
        (
            "updated_at".into(),
            Variable::String(
                steward_domain::value::format_instant(record.updated_at)
                    .as_str()
                    .into(),
            ),
        ),
        (
            "attributes".into(),
            Variable::from(Value::Object(record.attributes.clone())),
        ),
    ]
}

/// A reference that was not loaded: an object with only the id, so `record.employee.id`
/// reads the same whether or not the employee was loaded.
fn reference(id: &str) -> Variable {
    object_variable(vec![("id".into(), Variable::String(id.into()))])
}

fn object_variable(pairs: Vec<(String, Variable)>) -> Variable {
    let mut map = zen_expression::variable::VariableMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        map.insert(Variable::key(&key), value);
    }
    Variable::from_object(map)
}

/// Converts one stored field value by its type: numbers become decimals, references objects.
pub fn field_variable(ty: FieldType, value: &Value) -> Variable {
    match (ty, value) {
        (_, Value::Null) => Variable::Null,
        (FieldType::Decimal | FieldType::Money { .. }, Value::String(s)) => Decimal::from_str(s)
            .map(Variable::Number)
            .unwrap_or(Variable::Null),
        (FieldType::Ref(_), Value::String(id)) => reference(id),
        (FieldType::RefList(_), Value::Array(ids)) => Variable::from_array(
            ids.iter()
                .filter_map(Value::as_str)
                .map(reference)
                .collect(),
        ),
        _ => Variable::from(value.clone()),
    }
}

/// The old values of a record before `event`: the record with each changed field set back.
fn old_variable(record: &Record, event: &Event) -> Variable {
    if event.kind != steward_domain::EventKind::Updated {
        return Variable::Null;
    }
    let mut before = record.clone();
    for (name, change) in &event.changes {
        if name == STATE_FIELD {
            if let Some(state) = change.old.as_str() {
                before.state = state.to_string();
            }
        } else if let Some(attribute) = name.strip_prefix(steward_domain::event::ATTRIBUTE_PREFIX) {
            set_or_remove(&mut before.attributes, attribute, &change.old);
        } else {
            set_or_remove(&mut before.fields, name, &change.old);
        }
    }
    record_variable(&before, &Expansion::default(), &mut |_, _| None)
}

fn set_or_remove(map: &mut Map<String, Value>, key: &str, value: &Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_string(), value.clone());
    }
}

fn event_variable(event: &Event) -> Variable {
    let mut pairs = vec![
        ("id".to_string(), Variable::String(event.id.as_str().into())),
        (
            "name".to_string(),
            Variable::String(event.name.as_str().into()),
        ),
        (
            "kind".to_string(),
            Variable::String(event.kind.as_str().into()),
        ),
        (
            "depth".to_string(),
            Variable::Number(Decimal::from(event.depth)),
        ),
        (
            "actor".to_string(),
            object_variable(vec![
                (
                    "kind".into(),
                    Variable::String(event.actor.kind.as_str().into()),
                ),
                (
                    "id".into(),
                    Variable::String(event.actor.id.as_str().into()),
                ),
            ]),
        ),
        ("data".to_string(), Variable::from(event.data.clone())),
    ];
    if let Some(record) = &event.record {
        pairs.push((
            "record".into(),
            object_variable(vec![
                ("kind".into(), Variable::String(record.kind.name().into())),
                ("id".into(), Variable::String(record.id.as_str().into())),
            ]),
        ));
    }
    object_variable(pairs)
}

/// Builds the whole context for one event: `record`, `old`, `changed`, `event`, `now` and
/// `today` (the event's instant and its UTC date).
pub fn build(
    event: &Event,
    record: Option<&Record>,
    expansion: &Expansion,
    lookup: &mut Lookup,
) -> Variable {
    let record_value = match record {
        Some(r) => record_variable(r, expansion, lookup),
        None => Variable::Null,
    };
    let old = match record {
        Some(r) => old_variable(r, event),
        None => Variable::Null,
    };
    let changed = Variable::from_array(
        event
            .changes
            .keys()
            .map(|k| Variable::String(k.as_str().into()))
            .collect(),
    );
    let now = steward_domain::value::format_instant(event.occurred_at);
    let today = event
        .occurred_at
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    object_variable(vec![
        ("record".into(), record_value),
        ("old".into(), old),
        ("changed".into(), changed),
        ("event".into(), event_variable(event)),
        ("now".into(), Variable::String(now.as_str().into())),
        ("today".into(), Variable::String(today.as_str().into())),
    ])
}

/// Reads the value at a dotted path from a context, for the explanation of a run.
pub fn value_at(context: &Variable, path: &str) -> Value {
    let mut current = context.clone();
    for segment in path.split('.') {
        let next = match &current {
            Variable::Object(map) => map.borrow().get_str(segment).cloned(),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Value::Null,
        }
    }
    crate::expr::to_json(&current)
}
