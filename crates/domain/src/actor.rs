//! Who caused a change: a user, a rule, an integration or the engine itself.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person or API client authenticated by a token.
    User,
    /// An automation rule; the id is the rule id.
    Rule,
    /// A connector or import mirroring an external system; the id names the system.
    Integration,
    /// The engine's own controls and housekeeping.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Rule => "rule",
            ActorKind::Integration => "integration",
            ActorKind::System => "system",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "user" => Some(ActorKind::User),
            "rule" => Some(ActorKind::Rule),
            "integration" => Some(ActorKind::Integration),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::User,
            id: id.into(),
        }
    }

    pub fn rule(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Rule,
            id: id.into(),
        }
    }

    pub fn integration(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Integration,
            id: id.into(),
        }
    }

    pub fn system(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::System,
            id: id.into(),
        }
    }

    /// True for actors that mirror another system of record, which may set any valid state.
    pub fn is_mirror(&self) -> bool {
        matches!(self.kind, ActorKind::Integration)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}
