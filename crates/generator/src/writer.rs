//! Batched writes through the engine's command path.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use steward_domain::{Actor, Command, CommandContext, Kind};
use steward_engine::Engine;

use crate::GenerateError;

/// Commands sent to the engine at once. The engine commits them in grouped transactions, and
/// the generator keeps no more than one batch in memory.
pub const BATCH_SIZE: usize = 2000;

/// Returns the actor of every generated record. An integration may create records in any state, such
/// as approved timesheets and closed projects.
pub fn actor() -> Actor {
    Actor::integration("generator")
}

pub struct Writer<'a> {
    engine: &'a Arc<Engine>,
    context: CommandContext,
    pending: Vec<(Command, CommandContext)>,
    /// Records written per kind.
    pub counts: BTreeMap<Kind, u64>,
    pub commands: u64,
}

impl<'a> Writer<'a> {
    pub fn new(engine: &'a Arc<Engine>) -> Writer<'a> {
        Writer {
            engine,
            context: CommandContext::new(actor()),
            pending: Vec::with_capacity(BATCH_SIZE),
            counts: BTreeMap::new(),
            commands: 0,
        }
    }

    /// Queues the creation of a record with a chosen id, writing the batch when it is full.
    pub async fn create(
        &mut self,
        kind: Kind,
        id: &str,
        state: &str,
        fields: Map<String, Value>,
    ) -> Result<(), GenerateError> {
        let command = Command::Create {
            kind,
            id: Some(id.to_string()),
            state: Some(state.to_string()),
            fields,
            attributes: Map::new(),
        };
        self.pending.push((command, self.context.clone()));
        if self.pending.len() >= BATCH_SIZE {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the queued commands and waits for their commits. Stops at the first failed
    /// command, since a generated record that fails validation is a bug in the generator.
    pub async fn flush(&mut self) -> Result<(), GenerateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH_SIZE));
        let kinds: Vec<(Kind, String)> = batch
            .iter()
            .map(|(command, _)| match command {
                Command::Create { kind, id, .. } => (*kind, id.clone().unwrap_or_default()),
                _ => unreachable!("the generator only creates records"),
            })
            .collect();
        let outcomes = self.engine.execute_all(batch).await;
        for ((kind, id), outcome) in kinds.into_iter().zip(outcomes) {
            if let Err(error) = outcome {
                return Err(GenerateError::Write {
                    kind,
                    id,
                    error: Box::new(error),
                });
            }
            *self.counts.entry(kind).or_default() += 1;
            self.commands += 1;
        }
        Ok(())
    }
}
