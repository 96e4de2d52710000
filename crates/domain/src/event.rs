//! Events: the append-only record of every change and business occurrence.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::Actor;
use crate::id::EventId;
use crate::record::RecordRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Updated,
    /// A named occurrence emitted by a rule, a control or an integration.
    Business,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Business => "business",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "created" => Some(EventKind::Created),
            "updated" => Some(EventKind::Updated),
            "business" => Some(EventKind::Business),
            _ => None,
        }
    }
}

/// The old and new value of one field; null stands for "not set".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub old: Value,
    pub new: Value,
}

/// The name under which a state change appears in [`Event::changes`].
pub const STATE_FIELD: &str = "state";

/// The prefix of attribute changes in [`Event::changes`], as in `attributes.cost_center`.
pub const ATTRIBUTE_PREFIX: &str = "attributes.";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, assigned by the store on append; 0 before that.
    pub seq: i64,
    pub id: EventId,
    pub kind: EventKind,
    /// `<kind>.created` or `<kind>.updated` for record changes, the emitted name otherwise.
    pub name: String,
    pub record: Option<RecordRef>,
    /// The record's version after the change.
    pub record_version: Option<i64>,
    pub changes: BTreeMap<String, FieldChange>,
    /// Payload of a business event; null for record changes.
    pub data: Value,
    pub actor: Actor,
    /// The event whose rule run caused this one.
    pub cause: Option<EventId>,
    /// Shared by every event descending from one external request.
    pub correlation: String,
    /// 0 for changes made by people and integrations, one more for each rule in the chain.
    pub depth: u32,
    pub occurred_at: DateTime<Utc>,
}

impl Event {
    pub fn changed(&self, field: &str) -> bool {
        self.changes.contains_key(field)
    }

    /// The state the record entered with this event, if the state changed or it was created.
    pub fn entered_state(&self) -> Option<&str> {
        self.changes.get(STATE_FIELD).and_then(|c| c.new.as_str())
    }
}
