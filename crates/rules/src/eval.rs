//! Evaluation of a rule against a context: the condition with the inputs it read, and the
//! actions with every expression resolved. Nothing here does IO.

use serde_json::{Map, Value};
use steward_domain::{Kind, RecordRef};
use zen_expression::variable::Variable;
use zen_expression::vm::VM;

use crate::context::value_at;
use crate::expr::ValueExpr;
use crate::rule::{Action, Audience, Effect, ResolvedAction, Rule};

/// The outcome of a condition, with the values it read by path.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub result: Result<bool, String>,
    pub inputs: Map<String, Value>,
}

/// Evaluates the rule's condition; a rule without one always holds.
pub fn evaluate_condition(rule: &Rule, context: &Variable, vm: &mut VM) -> Evaluation {
    let Some(condition) = &rule.condition else {
        return Evaluation {
            result: Ok(true),
            inputs: Map::new(),
        };
    };
    let inputs = condition
        .paths
        .iter()
        .map(|p| (p.clone(), value_at(context, p)))
        .collect();
    let result = match condition.evaluate(context, vm) {
        Ok(Variable::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "the condition gave {} instead of true or false",
            crate::expr::to_json(&other)
        )),
        Err(error) => Err(error),
    };
    Evaluation { result, inputs }
}

/// Resolves every action of `rule` for the triggering record.
/// What action resolution needs to know about the triggering event.
pub struct Occasion<'a> {
    pub record: Option<&'a RecordRef>,
    /// The instant of the event; waits and deadlines count from it.
    pub now: chrono::DateTime<chrono::Utc>,
    pub correlation: &'a str,
}

/// Resolves every action of `rule`, evaluating each expression against `context`.
pub fn resolve_actions(
    rule: &Rule,
    context: &Variable,
    occasion: &Occasion,
    vm: &mut VM,
) -> Result<Vec<ResolvedAction>, String> {
    rule.actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            resolve(action, context, occasion, vm)
                .map(|effect| ResolvedAction {
                    action: action.type_name().to_string(),
                    effect,
                })
                .map_err(|e| format!("action {} ({}): {e}", index + 1, action.type_name()))
        })
        .collect()
}

fn resolve(
    action: &Action,
    context: &Variable,
    occasion: &Occasion,
    vm: &mut VM,
) -> Result<Effect, String> {
    let record = occasion.record;
    let today = occasion.now.date_naive();
    match action {
        Action::Update { fields, state } => {
            let target = record
                .cloned()
                .ok_or("an update needs a triggering record")?;
            Ok(Effect::Update {
                target,
                fields: values(fields, context, vm)?,
                state: state.clone(),
            })
        }
        Action::Create {
            kind,
            fields,
            state,
        } => Ok(Effect::Create {
            kind: *kind,
            fields: values(fields, context, vm)?,
            state: state.clone(),
        }),
        Action::Activity {
            title,
            audience,
            due_in_days,
            note,
        } => {
            let mut fields = subject(record);
            fields.insert("title".into(), title.resolve(context, vm)?);
            add_audience(&mut fields, audience, "assignee", context, vm)?;
            if let Some(days) = due_in_days {
                let due = today + chrono::Duration::days(*days);
                fields.insert(
                    "due_date".into(),
                    Value::String(due.format("%Y-%m-%d").to_string()),
                );
            }
            if let Some(note) = note {
                fields.insert("note".into(), note.resolve(context, vm)?);
            }
            Ok(Effect::Create {
                kind: Kind::Activity,
                fields,
                state: None,
            })
        }
        Action::Notify { message, audience } => {
            let mut fields = subject(record);
            fields.insert("message".into(), message.resolve(context, vm)?);
            fields.insert("channel".into(), Value::String("in_app".into()));
            add_audience(&mut fields, audience, "recipient", context, vm)?;
            Ok(Effect::Create {
                kind: Kind::Notification,
                fields,
                state: None,
            })
        }
        Action::Emit { name, data } => Ok(Effect::Emit {
            name: name.clone(),
            record: record.cloned(),
            data: Value::Object(values(data, context, vm)?),
        }),
        Action::Http {
            method,
            url,
            headers,
            body,
            timeout_seconds,
        } => {
            let url = match url.resolve(context, vm)? {
                Value::String(url) => url,
                other => return Err(format!("the URL evaluated to {other}, not text")),
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("`{url}` is not an http or https URL"));
            }
            let headers = values(headers, context, vm)?
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (name, text)
                })
                .collect();
            let body = match body {
                Some(body) => Some(Value::Object(values(body, context, vm)?)),
                None => None,
            };
            Ok(Effect::Http {
                method: method.clone(),
                url,
                headers,
                body,
                timeout_seconds: *timeout_seconds,
            })
        }
        Action::Webhook {
            endpoint,
            event,
            data,
        } => Ok(Effect::Webhook {
            endpoint: endpoint.clone(),
            event: event.clone(),
            record: record.cloned(),
            data: Value::Object(values(data, context, vm)?),
        }),
        Action::Control { name } => Ok(Effect::Control { name: name.clone() }),
        Action::Wait { duration, until } => {
            let until = match (duration, until) {
                (Some(duration), _) => occasion.now + *duration,
                (None, Some(expression)) => match expression.resolve(context, vm)? {
                    Value::String(text) => parse_instant(&text)?,
                    other => {
                        return Err(format!(
                            "`until` evaluated to {other}, not a date or an instant"
                        ));
                    }
                },
                (None, None) => occasion.now,
            };
            Ok(Effect::Wait { until })
        }
        Action::Await {
            event,
            on_correlation,
            timeout,
        } => {
            let key = if *on_correlation {
                crate::rule::await_key_for_correlation(occasion.correlation)
            } else {
                match record {
                    Some(record) => crate::rule::await_key_for_record(record),
                    None => {
                        return Err("waiting for an event about the record needs a record".into());
                    }
                }
            };
            Ok(Effect::Await {
                event: event.clone(),
                key,
                timeout_at: timeout.map(|t| occasion.now + t),
            })
        }
        Action::Respond { status, body } => Ok(Effect::Respond {
            status: *status,
            body: Value::Object(values(body, context, vm)?),
        }),
        Action::Approval { request, summary } => Ok(Effect::Approval {
            request: request.clone(),
            record: record.cloned(),
            summary: match summary {
                Some(summary) => match summary.resolve(context, vm)? {
                    Value::String(text) => Some(text),
                    Value::Null => None,
                    other => Some(other.to_string()),
                },
                None => None,
            },
        }),
        Action::ApprovalStep { op } => match record {
            Some(step) => Ok(Effect::ApprovalStep {
                op: op.clone(),
                step: step.clone(),
            }),
            None => Err("`approval_step` needs the approval step that triggered the rule".into()),
        },
    }
}

/// Reads an RFC 3339 instant, or a date as its midnight in UTC.
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("`{text}` is not a date or an RFC 3339 instant"))
}

fn values(
    fields: &[(String, ValueExpr)],
    context: &Variable,
    vm: &mut VM,
) -> Result<Map<String, Value>, String> {
    fields
        .iter()
        .map(|(name, value)| value.resolve(context, vm).map(|v| (name.clone(), v)))
        .collect()
}

fn subject(record: Option<&RecordRef>) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(record) = record {
        fields.insert(
            "subject_kind".into(),
            Value::String(record.kind.name().into()),
        );
        fields.insert("subject_id".into(), Value::String(record.id.clone()));
    }
    fields
}

/// Sets the person field from the audience. An expression may yield an id or a loaded record
/// (`record.employee.manager`), whose `id` is taken.
fn add_audience(
    fields: &mut Map<String, Value>,
    audience: &Audience,
    person_field: &str,
    context: &Variable,
    vm: &mut VM,
) -> Result<(), String> {
    let mut has_person = false;
    if let Some(person) = &audience.person {
        let value = match person.resolve(context, vm)? {
            Value::Object(object) => object.get("id").cloned().unwrap_or(Value::Null),
            other => other,
        };
        has_person = !value.is_null();
        if has_person {
            fields.insert(person_field.into(), value);
        }
    }
    if let Some(role) = &audience.role {
        fields.insert("role".into(), Value::String(role.clone()));
    }
    if !has_person && audience.role.is_none() {
        return Err(format!(
            "the {person_field} is empty and no role is set, so nobody would receive it; add a \
             `role` to fall back on"
        ));
    }
    Ok(())
}
