//! Steward's domain model: record kinds with their schemas and state machines, money, events,
//! commands and findings.
//!
//! Everything here is pure. A command is planned against the current record by
//! [`plan::plan_command`], which validates it and returns the new record and the event that the
//! store appends in the same transaction. No function in this crate reads a clock, a file or a
//! socket: the caller passes `now` in.

pub mod actor;
pub mod calendar;
pub mod clock;
pub mod command;
pub mod controls;
pub mod error;
pub mod event;
pub mod finding;
pub mod id;
pub mod kinds;
pub mod localday;
pub mod money;
pub mod plan;
pub mod record;
pub mod roles;
pub mod schema;
pub mod value;

pub use actor::{Actor, ActorKind};
pub use calendar::Calendar;
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{Command, CommandContext, ExternalKey};
pub use error::{DomainError, FieldError};
pub use event::{Event, EventKind, FieldChange};
pub use finding::{Finding, Severity};
pub use id::{EventId, new_id};
pub use kinds::Kind;
pub use money::{Currency, Money};
pub use record::{Record, RecordRef};
pub use schema::{FieldDef, FieldType, KindSchema};
