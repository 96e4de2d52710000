//! Commands: requests to change records or emit events, with their context.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::actor::Actor;
use crate::id::EventId;
use crate::kinds::Kind;
use crate::record::RecordRef;

/// A record's identity in another system, such as `odoo` / `hr.employee` / `7`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExternalKey {
    pub system: String,
    pub model: String,
    pub id: String,
}

impl ExternalKey {
    pub fn new(system: &str, model: &str, id: impl ToString) -> Self {
        ExternalKey {
            system: system.to_string(),
            model: model.to_string(),
            id: id.to_string(),
        }
    }
}

impl std::fmt::Display for ExternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.system, self.model, self.id)
    }
}

/// A reference field given by external keys, resolved to record ids inside the transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ExternalRef {
    One(ExternalKey),
    Many(Vec<ExternalKey>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Create {
        kind: Kind,
        /// A caller-chosen id; a new one is generated when absent.
        id: Option<String>,
        state: Option<String>,
        fields: Map<String, Value>,
        attributes: Map<String, Value>,
    },
    /// Sets the given fields (null clears one), merges attributes (null removes one) and moves
    /// to `state` when given.
    Update {
        kind: Kind,
        id: String,
        expected_version: Option<i64>,
        state: Option<String>,
        fields: Map<String, Value>,
        attributes: Map<String, Value>,
    },
    /// Creates or updates the record mirrored from `external`. Reference fields named in
    /// `external_refs` are resolved through earlier mirrors; an unresolved one is left empty
    /// and noted in the `unresolved_refs` attribute. When `attributes` contains
    /// `source_state`, an existing record moves to `state` only when that source state
    /// changed since the previous upsert.
    Upsert {
        kind: Kind,
        external: ExternalKey,
        /// The source's version marker, such as Odoo's `write_date`, kept on the link.
        source_version: Option<String>,
        state: Option<String>,
        fields: Map<String, Value>,
        attributes: Map<String, Value>,
        external_refs: Vec<(String, Option<ExternalRef>)>,
    },
    /// Appends a business event.
    Emit {
        name: String,
        record: Option<RecordRef>,
        data: Value,
    },
}

impl Command {
    pub fn create(kind: Kind, fields: Map<String, Value>) -> Self {
        Command::Create {
            kind,
            id: None,
            state: None,
            fields,
            attributes: Map::new(),
        }
    }

    pub fn update(kind: Kind, id: impl Into<String>, fields: Map<String, Value>) -> Self {
        Command::Update {
            kind,
            id: id.into(),
            expected_version: None,
            state: None,
            fields,
            attributes: Map::new(),
        }
    }

    pub fn transition(kind: Kind, id: impl Into<String>, state: &str) -> Self {
        Command::Update {
            kind,
            id: id.into(),
            expected_version: None,
            state: Some(state.to_string()),
            fields: Map::new(),
            attributes: Map::new(),
        }
    }

    pub fn kind(&self) -> Option<Kind> {
        match self {
            Command::Create { kind, .. }
            | Command::Update { kind, .. }
            | Command::Upsert { kind, .. } => Some(*kind),
            Command::Emit { .. } => None,
        }
    }
}

/// Who issues a command and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandContext {
    pub actor: Actor,
    /// The event whose rule run issued this command.
    pub cause: Option<EventId>,
    /// Groups every event of one request; a new id is used when absent.
    pub correlation: Option<String>,
    pub depth: u32,
}

impl CommandContext {
    pub fn new(actor: Actor) -> Self {
        CommandContext {
            actor,
            cause: None,
            correlation: None,
            depth: 0,
        }
    }
}
