//! Compiled rules, their triggers, and the set the engine matches events against.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use steward_domain::event::STATE_FIELD;
use steward_domain::{Event, EventKind, Kind, RecordRef};

use crate::context::Expansion;
use crate::expr::{Expr, ValueExpr};

#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Trigger {
    Created {
        kind: Kind,
    },
    /// Any update, or only updates that change one of `fields`.
    Updated {
        kind: Kind,
        fields: Vec<String>,
    },
    /// The record entered `state`, by a transition or by being created in it.
    EnteredState {
        kind: Kind,
        state: String,
    },
    /// `field` took `value`, by a change or by being created with it.
    FieldValue {
        kind: Kind,
        field: String,
        value: Value,
    },
    Business {
        name: String,
    },
    /// Due at a delay before or after a date field; fired by the scheduler, not by events.
    Time(crate::time::TimeTrigger),
    /// Due at the occurrences of a cron schedule; fired by the scheduler.
    Schedule(crate::time::Schedule),
}

impl Trigger {
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Trigger::Created { kind }
            | Trigger::Updated { kind, .. }
            | Trigger::EnteredState { kind, .. }
            | Trigger::FieldValue { kind, .. } => Some(*kind),
            Trigger::Time(time) => Some(time.kind),
            Trigger::Business { .. } | Trigger::Schedule(_) => None,
        }
    }

    /// True when `event` is a real occurrence of this trigger. A record change appears in an
    /// event only when a value differs, so a rewrite of the same value never matches.
    pub fn matches(&self, event: &Event) -> bool {
        let record_kind = event.record.as_ref().map(|r| r.kind);
        let record_event = matches!(event.kind, EventKind::Created | EventKind::Updated);
        match self {
            Trigger::Created { kind } => {
                event.kind == EventKind::Created && record_kind == Some(*kind)
            }
            Trigger::Updated { kind, fields } => {
                event.kind == EventKind::Updated
                    && record_kind == Some(*kind)
                    && (fields.is_empty() || fields.iter().any(|f| event.changed(f)))
            }
            Trigger::EnteredState { kind, state } => {
                record_event
                    && record_kind == Some(*kind)
                    && event.changes.get(STATE_FIELD).and_then(|c| c.new.as_str())
                        == Some(state.as_str())
            }
            Trigger::FieldValue { kind, field, value } => {
                record_event
                    && record_kind == Some(*kind)
                    && event.changes.get(field).is_some_and(|c| &c.new == value)
            }
            Trigger::Business { name } => event.kind == EventKind::Business && &event.name == name,
            // The scheduler fires these directly.
            Trigger::Time(_) | Trigger::Schedule(_) => false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Trigger::Created { kind } => format!("{kind} created"),
            Trigger::Updated { kind, fields } if fields.is_empty() => format!("{kind} updated"),
            Trigger::Updated { kind, fields } => {
                format!("{kind} updated in {}", fields.join(", "))
            }
            Trigger::EnteredState { kind, state } => format!("{kind} entered state {state}"),
            Trigger::FieldValue { kind, field, value } => format!("{kind}.{field} became {value}"),
            Trigger::Business { name } => format!("event {name}"),
            Trigger::Time(time) => time.describe(),
            Trigger::Schedule(schedule) => schedule.describe(),
        }
    }
}

/// Who an activity or notification is for: a person (an employee id expression) or a role.
#[derive(Clone, Debug)]
pub struct Audience {
    pub person: Option<ValueExpr>,
    pub role: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Action {
    Update {
        fields: Vec<(String, ValueExpr)>,
        state: Option<String>,
    },
    Create {
        kind: Kind,
        fields: Vec<(String, ValueExpr)>,
        state: Option<String>,
    },
    Activity {
        title: ValueExpr,
        audience: Audience,
        due_in_days: Option<i64>,
        note: Option<ValueExpr>,
    },
    Notify {
        message: ValueExpr,
        audience: Audience,
    },
    Emit {
        name: String,
        data: Vec<(String, ValueExpr)>,
    },
    Http {
        method: String,
        url: ValueExpr,
        headers: Vec<(String, ValueExpr)>,
        body: Option<Vec<(String, ValueExpr)>>,
        timeout_seconds: u64,
    },
    Webhook {
        endpoint: String,
        event: String,
        data: Vec<(String, ValueExpr)>,
    },
    Control {
        name: String,
    },
    Wait {
        duration: Option<chrono::Duration>,
        until: Option<ValueExpr>,
    },
    Await {
        event: String,
        on_correlation: bool,
        timeout: Option<chrono::Duration>,
    },
    Respond {
        status: u16,
        body: Vec<(String, ValueExpr)>,
    },
    Approval {
        request: String,
        summary: Option<ValueExpr>,
    },
    ApprovalStep {
        op: String,
    },
}

impl Action {
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Update { .. } => "update",
            Action::Create { .. } => "create",
            Action::Activity { .. } => "activity",
            Action::Notify { .. } => "notify",
            Action::Emit { .. } => "emit",
            Action::Http { .. } => "http",
            Action::Webhook { .. } => "webhook",
            Action::Control { .. } => "control",
            Action::Wait { .. } => "wait",
            Action::Await { .. } => "await",
            Action::Respond { .. } => "respond",
            Action::Approval { .. } => "approval",
            Action::ApprovalStep { .. } => "approval_step",
        }
    }

    pub fn values(&self) -> Vec<&ValueExpr> {
        let mut values = Vec::new();
        match self {
            Action::Update { fields, .. } | Action::Create { fields, .. } => {
                values.extend(fields.iter().map(|(_, v)| v));
            }
            Action::Activity {
                title,
                audience,
                note,
                ..
            } => {
                values.push(title);
                values.extend(audience.person.iter());
                values.extend(note.iter());
            }
            Action::Notify { message, audience } => {
                values.push(message);
                values.extend(audience.person.iter());
            }
            Action::Emit { data, .. }
            | Action::Webhook { data, .. }
            | Action::Respond { body: data, .. } => values.extend(data.iter().map(|(_, v)| v)),
            Action::Http {
                url, headers, body, ..
            } => {
                values.push(url);
                values.extend(headers.iter().map(|(_, v)| v));
                values.extend(body.iter().flatten().map(|(_, v)| v));
            }
            Action::Wait { until, .. } => values.extend(until.iter()),
            Action::Approval { summary, .. } => values.extend(summary.iter()),
            Action::Control { .. } | Action::Await { .. } | Action::ApprovalStep { .. } => {}
        }
        values
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// Assigned by the engine when the rule is registered; 0 before.
    pub version: i64,
    pub trigger: Trigger,
    pub condition: Option<Expr>,
    pub actions: Vec<Action>,
    pub allow_self_trigger: bool,
    /// The related records that the rule's expressions read.
    pub expansion: Expansion,
    /// The rule in canonical JSON, as stored with each version.
    pub definition: Value,
    /// SHA-256 of the canonical JSON.
    pub hash: String,
    /// Where the rule came from: `file:<path>` or `api`.
    pub origin: String,
}

/// What one action will do, with every expression already evaluated. Jobs carry these, so a
/// retried job does exactly what was decided when the event happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedAction {
    /// The action type as written in the rule, such as `activity`.
    pub action: String,
    pub effect: Effect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    Update {
        target: RecordRef,
        fields: Map<String, Value>,
        state: Option<String>,
    },
    Create {
        kind: Kind,
        fields: Map<String, Value>,
        state: Option<String>,
    },
    Emit {
        name: String,
        record: Option<RecordRef>,
        data: Value,
    },
    /// Calls an HTTP API from a worker.
    Http {
        method: String,
        url: String,
        headers: std::collections::BTreeMap<String, String>,
        body: Option<Value>,
        timeout_seconds: u64,
    },
    /// Queues a signed delivery to an outbound webhook endpoint.
    Webhook {
        endpoint: String,
        event: String,
        record: Option<RecordRef>,
        data: Value,
    },
    /// Queues a run of the controls.
    Control { name: String },
    /// Pauses the job until the instant.
    Wait {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// Pauses the job until an event named `event` with the wait key arrives, or `timeout_at`.
    Await {
        event: String,
        key: String,
        timeout_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The answer to the inbound webhook that triggered the rule.
    Respond { status: u16, body: Value },
    /// Opens or joins an approval request of kind `request` about `record`.
    Approval {
        request: String,
        record: Option<RecordRef>,
        summary: Option<String>,
    },
    /// Reminds the approver of, or escalates, an approval step.
    ApprovalStep { op: String, step: RecordRef },
}

impl Effect {
    /// True for effects that only write to Steward's own store, which can run inside the
    /// transaction of their event.
    pub fn is_local(&self) -> bool {
        !matches!(
            self,
            Effect::Http { .. } | Effect::Wait { .. } | Effect::Await { .. }
        )
    }
}

/// The key an awaited event is matched by when it is about the same record.
pub fn await_key_for_record(record: &RecordRef) -> String {
    format!("record:{}:{}", record.kind, record.id)
}

/// The key an awaited event is matched by when it shares the correlation id.
pub fn await_key_for_correlation(correlation: &str) -> String {
    format!("correlation:{correlation}")
}

/// The enabled rules, indexed by what can trigger them.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    by_kind: HashMap<Kind, Vec<usize>>,
    by_event: HashMap<String, Vec<usize>>,
    timed: HashMap<Kind, Vec<usize>>,
    scheduled: Vec<usize>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut set = RuleSet::default();
        for rule in rules.into_iter().filter(|r| r.enabled) {
            let index = set.rules.len();
            match &rule.trigger {
                Trigger::Business { name } => {
                    set.by_event.entry(name.clone()).or_default().push(index)
                }
                Trigger::Time(time) => set.timed.entry(time.kind).or_default().push(index),
                Trigger::Schedule(_) => set.scheduled.push(index),
                other => {
                    if let Some(kind) = other.kind() {
                        set.by_kind.entry(kind).or_default().push(index);
                    }
                }
            }
            set.rules.push(Arc::new(rule));
        }
        set
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rules with a time trigger on records of `kind`.
    pub fn timed(&self, kind: Kind) -> impl Iterator<Item = &Arc<Rule>> {
        self.timed
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|i| &self.rules[*i])
    }

    /// Every rule with a time trigger.
    pub fn all_timed(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.timed.values().flatten().map(|i| &self.rules[*i])
    }

    /// The rules with a schedule.
    pub fn scheduled(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.scheduled.iter().map(|i| &self.rules[*i])
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The rules whose trigger matches `event`, leaving out a rule reacting to its own change
    /// unless it allows that.
    pub fn matching<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Arc<Rule>> + 'a {
        let candidates: &[usize] = match event.kind {
            EventKind::Business => self
                .by_event
                .get(&event.name)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            _ => event
                .record
                .as_ref()
                .and_then(|r| self.by_kind.get(&r.kind))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        };
        candidates
            .iter()
            .map(|i| &self.rules[*i])
            .filter(move |rule| {
                let own_change = event.actor.kind == steward_domain::ActorKind::Rule
                    && event.actor.id == rule.id;
                (!own_change || rule.allow_self_trigger) && rule.trigger.matches(event)
            })
    }

    /// The union of every matching rule's related-record needs, so the context is built once.
    pub fn expansion_for(&self, event: &Event) -> Expansion {
        let mut expansion = Expansion::default();
        for rule in self.matching(event) {
            expansion.merge(&rule.expansion);
        }
        expansion
    }
}
