//! Steps the controls take besides raising findings: reminders and escalations of timesheet
//! cut-offs and collection stages. Each step has a key and runs once: the controls store a
//! finished job under that key in the same transaction as the step's notifications and
//! event, and a key already stored means the step ran, whatever process ran it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_controls::settings::FirmSettings;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Actor, Command, CommandContext, Kind, RecordRef, new_id};
use steward_store::{Job, JobState, ReadTx, StoreError, WriteTx};

use crate::error::EngineError;
use crate::pipeline::{Env, apply};

/// The job kind under which finished steps are kept.
pub const STEP_JOB: &str = "control_step";

/// The actor of every change a step makes.
pub const ACTOR: &str = "controls";

/// An in-app notification a step sends: to a person, or to a role when nobody is named.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub recipient: Option<String>,
    pub role: Option<String>,
    pub message: String,
}

/// One reminder or escalation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ControlStep {
    /// Runs once per key.
    pub key: String,
    pub control: &'static str,
    /// The business event the step emits, for rules, webhooks and n8n to act on.
    pub event: String,
    /// The record the step is about; the event joins its history.
    pub record: RecordRef,
    pub notices: Vec<Notice>,
    pub data: Value,
}

/// Runs each step whose key has not run yet and returns how many ran.
pub(crate) fn run_steps(
    tx: &mut dyn WriteTx,
    env: &Env,
    steps: &[ControlStep],
) -> Result<usize, EngineError> {
    let mut ran = 0;
    for step in steps {
        let ledger = Job {
            id: new_id(),
            key: step.key.clone(),
            kind: STEP_JOB.into(),
            run_id: None,
            payload: serde_json::to_value(step).unwrap_or(Value::Null),
            state: JobState::Succeeded,
            attempts: 1,
            max_attempts: 1,
            run_at: env.now,
            lease_until: None,
            last_error: None,
            replays: 0,
            created_at: env.now,
            updated_at: env.now,
        };
        if !tx.insert_job(&ledger)? {
            continue;
        }
        let context = CommandContext::new(Actor::system(ACTOR));
        for notice in &step.notices {
            let mut fields = Map::new();
            fields.insert("message".into(), json!(notice.message));
            fields.insert("channel".into(), json!("in_app"));
            fields.insert("subject_kind".into(), json!(step.record.kind.name()));
            fields.insert("subject_id".into(), json!(step.record.id));
            if let Some(recipient) = &notice.recipient {
                fields.insert("recipient".into(), json!(recipient));
            }
            if let Some(role) = &notice.role {
                fields.insert("role".into(), json!(role));
            }
            let command = Command::Create {
                kind: Kind::Notification,
                id: None,
                state: None,
                fields,
                attributes: Map::new(),
            };
            apply(tx, env, command, context.clone())?;
        }
        let mut data = step.data.clone();
        data["step"] = json!(step.key);
        let command = Command::Emit {
            name: step.event.clone(),
            record: Some(step.record.clone()),
            data,
        };
        apply(tx, env, command, context)?;
        metrics::counter!(crate::metric_names::CONTROL_STEPS, "event" => step.event.clone())
            .increment(1);
        ran += 1;
    }
    Ok(ran)
}

/// Runs the time, expense and collection controls over one snapshot: their findings by
/// control, and the steps due at `now`.
pub(crate) fn check_time_and_collections(
    tx: &dyn ReadTx,
    now: DateTime<Utc>,
) -> Result<(Vec<(&'static str, Vec<RaisedFinding>)>, Vec<ControlStep>), StoreError> {
    let (settings, installed_at) = stored_settings(tx)?;
    let settings = &settings;
    let people = crate::controls::load_people(tx)?;
    let mut results = crate::entry_controls::check(tx, settings, &people, now)?;
    // Escalations of cut-offs that passed before the settings were installed are not sent,
    // so switching the control on does not flood managers with old periods.
    let (findings, mut steps) = crate::cutoffs::check(tx, settings, &people, now, installed_at)?;
    results.push((steward_controls::TIMESHEET_INCOMPLETE, findings));
    let (findings, collection_steps) = crate::collections::check(tx, settings, now)?;
    results.push((steward_controls::COLLECTIONS_OVERDUE, findings));
    steps.extend(collection_steps);
    Ok((results, steps))
}

/// Reads the newest installed control settings and when they were installed; the defaults
/// when none were installed or the stored ones no longer parse.
pub(crate) fn stored_settings(
    tx: &dyn ReadTx,
) -> Result<(FirmSettings, Option<DateTime<Utc>>), StoreError> {
    let Some(stored) = tx.control_settings()? else {
        return Ok((FirmSettings::default(), None));
    };
    match serde_json::from_value::<FirmSettings>(stored.definition) {
        Ok(settings) => Ok((settings, Some(stored.created_at))),
        Err(error) => {
            tracing::warn!(
                version = stored.version,
                %error,
                "stored control settings cannot be read; the controls use the defaults"
            );
            Ok((FirmSettings::default(), None))
        }
    }
}
