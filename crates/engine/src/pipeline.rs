//! The single command path: validate, apply, append the event and dispatch it to the rules,
//! all inside the caller's write transaction.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use steward_domain::command::{ExternalKey, ExternalRef};
use steward_domain::finding::RaisedFinding;
use steward_domain::plan::{Planned, Stamp, plan_business_event, plan_create, plan_update};
use steward_domain::{
    Actor, Command, CommandContext, DomainError, Event, FieldError, Kind, Record, RecordRef,
    Severity, new_id,
};
use steward_rules::context::{self, Expansion};
use steward_rules::eval::{Occasion, evaluate_condition, resolve_actions};
use steward_rules::{Effect, ResolvedAction, Rule, RuleSet, VM};
use steward_store::{ExternalLink, Job, JobState, Run, RunStatus, WriteTx};

use crate::config::EngineConfig;
use crate::error::EngineError;

/// The result of a command.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub record: Option<Record>,
    /// The appended event; `None` when the command changed nothing.
    pub event: Option<Event>,
    pub created: bool,
    /// Jobs queued by rules that matched the event.
    pub jobs: usize,
}

/// The rule set, settings and time that a write uses besides the transaction.
pub struct Env<'a> {
    pub rules: &'a RuleSet,
    pub config: &'a EngineConfig,
    pub approvals: &'a crate::approvals::Approvals,
    pub now: DateTime<Utc>,
}

/// The job kind that runs a rule's actions.
pub const RULE_JOB: &str = "rule_actions";
/// The job kind that runs the controls.
pub const CONTROLS_JOB: &str = "controls";

/// The payload of a rule job: everything decided when the event happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleJob {
    pub rule_id: String,
    pub rule_version: i64,
    pub event_id: String,
    pub correlation: String,
    pub depth: u32,
    pub record: Option<RecordRef>,
    pub actions: Vec<ResolvedAction>,
    /// The index of the next action to run; earlier ones are done.
    #[serde(default)]
    pub next: usize,
    /// The outcome of each action done.
    #[serde(default)]
    pub outcomes: Vec<Value>,
    /// The index of an `await` action the job is paused at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<usize>,
    /// The event that ended the wait; set by the store when it wakes the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaited: Option<String>,
}

/// Kinds whose changes can change what the starter controls find.
const CONTROLLED_KINDS: &[Kind] = &[
    Kind::Timesheet,
    Kind::Expense,
    Kind::Employee,
    Kind::WorkCalendar,
    Kind::Project,
    Kind::Leave,
    Kind::Allocation,
    Kind::Milestone,
    Kind::Ticket,
    Kind::Opportunity,
    Kind::Invoice,
];

thread_local! {
    static MACHINE: RefCell<VM> = RefCell::new(VM::new());
}

/// Applies one command: the only way records change and events are appended.
pub fn apply(
    tx: &mut dyn WriteTx,
    env: &Env,
    command: Command,
    context: CommandContext,
) -> Result<Outcome, EngineError> {
    let stamp = Stamp {
        event_id: new_id(),
        correlation: context.correlation.clone().unwrap_or_else(new_id),
        now: env.now,
    };
    match command {
        Command::Create {
            kind,
            id,
            state,
            fields,
            attributes,
        } => {
            if kind == Kind::Timesheet
                && let Some(outcome) = crate::entries::create_split(
                    tx,
                    env,
                    &id,
                    &state,
                    &fields,
                    &attributes,
                    &context,
                )?
            {
                return Ok(outcome);
            }
            let id = match id {
                Some(id) => {
                    if !steward_domain::id::is_valid_id(&id) {
                        return Err(DomainError::Invalid(format!(
                            "`{id}` is not a valid id; leave `id` out to get a generated one"
                        ))
                        .into());
                    }
                    if tx.record(kind, &id)?.is_some() {
                        return Err(DomainError::AlreadyExists { kind, id }.into());
                    }
                    id
                }
                None => new_id(),
            };
            let planned = plan_create(
                kind,
                id,
                state.as_deref(),
                &fields,
                &attributes,
                &context,
                &stamp,
            )?;
            store_planned(tx, env, planned, true)
        }
        Command::Update {
            kind,
            id,
            expected_version,
            state,
            fields,
            attributes,
        } => {
            let current = tx.record(kind, &id)?.ok_or_else(|| DomainError::NotFound {
                kind,
                id: id.clone(),
            })?;
            let planned = plan_update(
                &current,
                &fields,
                &attributes,
                state.as_deref(),
                expected_version,
                &context,
                &stamp,
            )?;
            match planned {
                Some(planned) => store_planned(tx, env, planned, false),
                None => Ok(Outcome {
                    record: Some(current),
                    event: None,
                    created: false,
                    jobs: 0,
                }),
            }
        }
        Command::Upsert {
            kind,
            external,
            source_version,
            state,
            mut fields,
            mut attributes,
            external_refs,
        } => {
            resolve_external_refs(tx, kind, &external_refs, &mut fields, &mut attributes)?;
            let link = tx.external_link(&external)?;
            let current = match &link {
                Some(link) if link.record.kind == kind => tx.record(kind, &link.record.id)?,
                Some(link) => {
                    return Err(DomainError::Invalid(format!(
                        "{external} is already mirrored as a {}, not a {kind}",
                        link.record.kind
                    ))
                    .into());
                }
                None => None,
            };
            let outcome = match current {
                Some(current) => {
                    let state =
                        upsert_state(&current, link.as_ref(), &source_version, state, &attributes);
                    let planned = plan_update(
                        &current,
                        &fields,
                        &attributes,
                        state.as_deref(),
                        None,
                        &context,
                        &stamp,
                    )?;
                    match planned {
                        Some(planned) => store_planned(tx, env, planned, false)?,
                        None => Outcome {
                            record: Some(current),
                            event: None,
                            created: false,
                            jobs: 0,
                        },
                    }
                }
                None => {
                    attributes.retain(|_, v| !v.is_null());
                    let planned = plan_create(
                        kind,
                        new_id(),
                        state.as_deref(),
                        &fields,
                        &attributes,
                        &context,
                        &stamp,
                    )?;
                    store_planned(tx, env, planned, true)?
                }
            };
            let record = outcome.record.as_ref().expect("an upsert leaves a record");
            let version_changed = link.as_ref().map(|l| &l.source_version) != Some(&source_version);
            if link.is_none() || version_changed {
                tx.link_external(&ExternalLink {
                    system: external.system.clone(),
                    model: external.model.clone(),
                    external_id: external.id.clone(),
                    record: record.reference(),
                    source_version,
                })?;
            }
            Ok(outcome)
        }
        Command::Emit { name, record, data } => {
            let mut event = plan_business_event(&name, record.clone(), data, &context, &stamp)?;
            event.seq = tx.append_event(&event)?;
            wake_waiting(tx, env, &event)?;
            let subject = match &record {
                Some(r) => tx.record(r.kind, &r.id)?,
                None => None,
            };
            let jobs = dispatch(tx, env, &event, subject.as_ref())?;
            Ok(Outcome {
                record: subject,
                event: Some(event),
                created: false,
                jobs,
            })
        }
    }
}

/// The attribute that lists reference fields whose target was not mirrored.
pub const UNRESOLVED_REFS: &str = "unresolved_refs";

/// The attribute where an upsert stores the state that the source system reports, for records
/// whose later states are decided in Steward, such as approved time. See [`upsert_state`].
pub const SOURCE_STATE: &str = "source_state";

/// Returns the state an upsert moves an existing record to. Without a [`SOURCE_STATE`]
/// attribute in the upsert, that is the upsert's state. With one, it is the upsert's state only
/// when the reported source state differs from the one the previous upsert stored. Otherwise it
/// is `None`, so the record keeps the state it has, including an approval or rejection made in
/// Steward since.
///
/// A record mirrored before source states were stored has none. Then the upsert's state applies
/// only when `source_version` changed, because a source row not written since the last sync
/// cannot carry a new state.
fn upsert_state(
    current: &Record,
    link: Option<&ExternalLink>,
    source_version: &Option<String>,
    state: Option<String>,
    attributes: &Map<String, Value>,
) -> Option<String> {
    let Some(reported) = attributes.get(SOURCE_STATE) else {
        return state;
    };
    let source_moved = match current.attributes.get(SOURCE_STATE) {
        Some(stored) => stored != reported,
        None => link.map(|l| &l.source_version) != Some(source_version),
    };
    if source_moved { state } else { None }
}

fn resolve_external_refs(
    tx: &mut dyn WriteTx,
    kind: Kind,
    refs: &[(String, Option<ExternalRef>)],
    fields: &mut Map<String, Value>,
    attributes: &mut Map<String, Value>,
) -> Result<(), EngineError> {
    if refs.is_empty() {
        return Ok(());
    }
    let mut unresolved = Map::new();
    for (field, reference) in refs {
        let value = match reference {
            None => Value::Null,
            Some(ExternalRef::One(key)) => match linked_id(tx, kind, field, key)? {
                Some(id) => Value::String(id),
                None => {
                    unresolved.insert(field.clone(), Value::String(key.to_string()));
                    Value::Null
                }
            },
            Some(ExternalRef::Many(keys)) => {
                let mut ids = Vec::new();
                for key in keys {
                    match linked_id(tx, kind, field, key)? {
                        Some(id) => ids.push(Value::String(id)),
                        None => {
                            unresolved.insert(
                                format!("{field}.{}", key.id),
                                Value::String(key.to_string()),
                            );
                        }
                    }
                }
                Value::Array(ids)
            }
        };
        fields.insert(field.clone(), value);
    }
    let value = if unresolved.is_empty() {
        Value::Null
    } else {
        Value::Object(unresolved)
    };
    attributes.insert(UNRESOLVED_REFS.into(), value);
    Ok(())
}

fn linked_id(
    tx: &mut dyn WriteTx,
    kind: Kind,
    field: &str,
    key: &ExternalKey,
) -> Result<Option<String>, EngineError> {
    let Some(link) = tx.external_link(key)? else {
        return Ok(None);
    };
    let expected = kind.schema().field(field).and_then(|def| match def.ty {
        steward_domain::FieldType::Ref(k) | steward_domain::FieldType::RefList(k) => Some(k),
        _ => None,
    });
    if expected.is_some_and(|k| k != link.record.kind) {
        return Ok(None);
    }
    Ok(Some(link.record.id))
}

fn store_planned(
    tx: &mut dyn WriteTx,
    env: &Env,
    planned: Planned,
    created: bool,
) -> Result<Outcome, EngineError> {
    check_references(tx, &planned)?;
    let from = planned
        .event
        .changes
        .get(steward_domain::event::STATE_FIELD)
        .and_then(|c| c.old.as_str());
    let from = if created {
        None
    } else {
        from.or(Some(planned.record.state.as_str()))
    };
    crate::entries::check_entry(tx, env, &planned, created)?;
    crate::approvals::check_guards(tx, env, from, &planned.record, &planned.event.actor)?;
    let Planned {
        record, mut event, ..
    } = planned;
    if created {
        tx.insert_record(&record)?;
    } else {
        tx.update_record(&record)?;
    }
    event.seq = tx.append_event(&event)?;
    wake_waiting(tx, env, &event)?;
    let mut jobs = dispatch(tx, env, &event, Some(&record))?;
    crate::scheduler::maintain_timers(tx, env, &record)?;
    jobs += crate::handoff::after_write(tx, env, &record, &event)?;
    if env.config.controls_on_change && CONTROLLED_KINDS.contains(&record.kind) {
        jobs += usize::from(schedule_controls(tx, env)?);
    }
    Ok(Outcome {
        record: Some(record),
        event: Some(event),
        created,
        jobs,
    })
}

fn check_references(tx: &mut dyn WriteTx, planned: &Planned) -> Result<(), EngineError> {
    let mut errors = Vec::new();
    for (field, kind, id) in &planned.references {
        // A record may point at itself, such as an employee who is their own manager.
        let itself = *kind == planned.record.kind && *id == planned.record.id;
        if !itself && !tx.record_exists(*kind, id)? {
            errors.push(FieldError::new(
                field.as_str(),
                &Value::String(id.clone()),
                format!(
                    "no {} has id {id}; create it first or correct the id",
                    kind.name()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Validation {
            kind: planned.record.kind,
            errors,
        }
        .into())
    }
}

/// Queues one controls run for the current debounce period; later changes in the same period
/// share it.
fn schedule_controls(tx: &mut dyn WriteTx, env: &Env) -> Result<bool, EngineError> {
    let period = Duration::from_std(env.config.controls_debounce).unwrap_or(Duration::seconds(5));
    let start = env.now.duration_trunc(period).unwrap_or(env.now);
    let due = start + period;
    let job = Job {
        id: new_id(),
        key: format!("{CONTROLS_JOB}/{}", due.timestamp_millis()),
        kind: CONTROLS_JOB.into(),
        run_id: None,
        payload: json!({"due": due}),
        state: JobState::Pending,
        attempts: 0,
        max_attempts: env.config.max_attempts,
        run_at: due,
        lease_until: None,
        last_error: None,
        replays: 0,
        created_at: env.now,
        updated_at: env.now,
    };
    Ok(tx.insert_job(&job)?)
}

/// Matches `event` against the rules, records a run for each match, and queues the actions of
/// those whose condition holds.
pub fn dispatch(
    tx: &mut dyn WriteTx,
    env: &Env,
    event: &Event,
    record: Option<&Record>,
) -> Result<usize, EngineError> {
    let rules: Vec<Arc<Rule>> = env.rules.matching(event).cloned().collect();
    if rules.is_empty() {
        return Ok(0);
    }
    let outcomes = run_rules(tx, env, &rules, event, record)?;
    Ok(outcomes.iter().filter(|o| o.job.is_some()).count())
}

/// What became of one rule's run on one event.
#[derive(Clone, Debug)]
pub struct RuleOutcome {
    pub run: String,
    pub status: RunStatus,
    /// The job queued for a worker, if the actions did not run inline.
    pub job: Option<String>,
}

/// Evaluates `rules` on `event`: records a run for each, runs the actions inline when they
/// can, and queues the rest as jobs.
pub fn run_rules(
    tx: &mut dyn WriteTx,
    env: &Env,
    rules: &[Arc<Rule>],
    event: &Event,
    record: Option<&Record>,
) -> Result<Vec<RuleOutcome>, EngineError> {
    let mut expansion = Expansion::default();
    for rule in rules {
        expansion.merge(&rule.expansion);
    }
    let context = {
        let reader: &dyn WriteTx = tx;
        context::build(event, record, &expansion, &mut |kind, id| {
            reader.record(kind, id).ok().flatten()
        })
    };

    let mut outcomes = Vec::with_capacity(rules.len());
    for rule in rules {
        let (mut run, actions) = MACHINE.with(|machine| {
            let mut vm = machine.borrow_mut();
            evaluate_rule(rule, event, &context, env, &mut vm)
        });
        let mut queued = None;
        if run.status == RunStatus::Queued {
            let payload = RuleJob {
                rule_id: rule.id.clone(),
                rule_version: rule.version,
                event_id: event.id.clone(),
                correlation: event.correlation.clone(),
                depth: event.depth,
                record: event.record.clone(),
                actions,
                next: 0,
                outcomes: Vec::new(),
                awaiting: None,
                awaited: None,
            };
            let mut job = Job {
                id: new_id(),
                key: format!("rule/{}/{}/{}", rule.id, rule.version, event.id),
                kind: RULE_JOB.into(),
                run_id: Some(run.id.clone()),
                payload: Value::Null,
                state: JobState::Pending,
                attempts: 0,
                max_attempts: env.config.max_attempts,
                run_at: env.now,
                lease_until: None,
                last_error: None,
                replays: 0,
                created_at: env.now,
                updated_at: env.now,
            };
            let local = payload.actions.iter().all(|a| a.effect.is_local());
            let mut done = false;
            if env.config.inline_jobs && local {
                match run_inline(tx, env, &payload)? {
                    Ok(outcomes) => {
                        run.status = RunStatus::Succeeded;
                        run.actions = Value::Array(outcomes);
                        run.finished_at = Some(env.now);
                        done = true;
                    }
                    Err(error) => {
                        if let EngineError::Domain(domain) = &error {
                            crate::approvals::record_bypass(
                                tx,
                                env,
                                domain,
                                &Actor::rule(&rule.id),
                            )?;
                        }
                        record_inline_failure(&mut run, &mut job, env, &error)
                    }
                }
            }
            if !done {
                job.payload = serde_json::to_value(&payload)
                    .map_err(|e| EngineError::Rule(format!("cannot encode job: {e}")))?;
                if tx.insert_job(&job)? {
                    if job.state == JobState::Pending {
                        queued = Some(job.id.clone());
                    }
                } else {
                    // The same rule version already handled this event.
                    run.status = RunStatus::Skipped;
                    run.error = Some("a job for this rule version and event already exists".into());
                    run.finished_at = Some(env.now);
                }
            }
        }
        if run.status == RunStatus::DepthLimited {
            raise_chain_finding(tx, env, rule, event)?;
        }
        tx.insert_run(&run)?;
        outcomes.push(RuleOutcome {
            run: run.id.clone(),
            status: run.status,
            job: queued,
        });
    }
    Ok(outcomes)
}

fn evaluate_rule(
    rule: &Rule,
    event: &Event,
    context: &steward_rules::Variable,
    env: &Env,
    vm: &mut VM,
) -> (Run, Vec<ResolvedAction>) {
    let evaluation = evaluate_condition(rule, context, vm);
    let mut run = Run {
        id: new_id(),
        rule_id: rule.id.clone(),
        rule_version: rule.version,
        event_id: event.id.clone(),
        record: event.record.clone(),
        status: RunStatus::Skipped,
        trigger: rule.trigger.describe(),
        condition: rule.condition.as_ref().map(|c| c.source.clone()),
        inputs: Value::Object(evaluation.inputs),
        result: Value::Null,
        actions: json!([]),
        error: None,
        created_at: env.now,
        finished_at: Some(env.now),
    };
    let mut resolved = Vec::new();
    match evaluation.result {
        Err(error) => {
            run.status = RunStatus::EvaluationError;
            run.error = Some(error);
        }
        Ok(false) => run.result = Value::Bool(false),
        Ok(true) if event.depth >= env.config.max_depth => {
            run.result = Value::Bool(true);
            run.status = RunStatus::DepthLimited;
            run.error = Some(format!(
                "the rule chain reached depth {}, the limit; the actions did not run",
                event.depth
            ));
        }
        Ok(true) => {
            run.result = Value::Bool(true);
            let occasion = Occasion {
                record: event.record.as_ref(),
                now: event.occurred_at,
                correlation: &event.correlation,
            };
            match resolve_actions(rule, context, &occasion, vm) {
                Ok(actions) => {
                    run.actions = serde_json::to_value(&actions).unwrap_or(Value::Null);
                    run.status = RunStatus::Queued;
                    run.finished_at = None;
                    resolved = actions;
                }
                Err(error) => {
                    run.status = RunStatus::EvaluationError;
                    run.error = Some(error);
                }
            }
        }
    }
    (run, resolved)
}

/// Where a rule job stands after its local steps ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Finished,
    /// Stopped before a step that needs a worker: an HTTP call or a wait.
    Paused,
}

/// Applies a rule job's local steps in order from `job.next`, as the rule, one level deeper
/// than its event, and records each outcome in the job.
pub(crate) fn run_local_steps(
    tx: &mut dyn WriteTx,
    env: &Env,
    job: &mut RuleJob,
) -> Result<Progress, EngineError> {
    let context = CommandContext {
        actor: Actor::rule(&job.rule_id),
        cause: Some(job.event_id.clone()),
        correlation: Some(job.correlation.clone()),
        depth: job.depth + 1,
    };
    while job.next < job.actions.len() {
        let index = job.next;
        let action = job.actions[index].clone();
        if !action.effect.is_local() {
            return Ok(Progress::Paused);
        }
        let outcome = apply_local(tx, env, job, index, &action.effect, &context).map_err(
            |error| match error {
                // Kept whole so that the bypass is recorded.
                EngineError::Domain(e @ steward_domain::DomainError::ApprovalRequired { .. }) => {
                    EngineError::Domain(e)
                }
                EngineError::Domain(e) => {
                    EngineError::Domain(steward_domain::DomainError::Invalid(format!(
                        "action {} ({}) failed: {e}",
                        index + 1,
                        action.action
                    )))
                }
                other => other,
            },
        )?;
        job.outcomes
            .push(json!({"action": action.action, "effect": action.effect, "outcome": outcome}));
        job.next += 1;
    }
    Ok(Progress::Finished)
}

/// The wait key of a job waiting for `event` with `key` (see `Effect::Await`).
pub fn wait_key(event: &str, key: &str) -> String {
    format!("{event}|{key}")
}

/// Wakes the jobs waiting for `event`, by its record or its correlation id.
fn wake_waiting(tx: &mut dyn WriteTx, env: &Env, event: &Event) -> Result<(), EngineError> {
    let mut keys = vec![wait_key(
        &event.name,
        &steward_rules::rule::await_key_for_correlation(&event.correlation),
    )];
    if let Some(record) = &event.record {
        keys.push(wait_key(
            &event.name,
            &steward_rules::rule::await_key_for_record(record),
        ));
    }
    tx.resume_waiting(&keys, &event.id, env.now)?;
    Ok(())
}

/// The job kind that delivers an outbound webhook.
pub const WEBHOOK_JOB: &str = "webhook_delivery";

fn apply_local(
    tx: &mut dyn WriteTx,
    env: &Env,
    job: &RuleJob,
    index: usize,
    effect: &Effect,
    context: &CommandContext,
) -> Result<Value, EngineError> {
    let command = match effect {
        Effect::Update {
            target,
            fields,
            state,
        } => Command::Update {
            kind: target.kind,
            id: target.id.clone(),
            expected_version: None,
            state: state.clone(),
            fields: fields.clone(),
            attributes: Default::default(),
        },
        Effect::Create {
            kind,
            fields,
            state,
        } => Command::Create {
            kind: *kind,
            id: None,
            state: state.clone(),
            fields: fields.clone(),
            attributes: Default::default(),
        },
        Effect::Emit { name, record, data } => Command::Emit {
            name: name.clone(),
            record: record.clone(),
            data: data.clone(),
        },
        Effect::Webhook {
            endpoint,
            event,
            record,
            data,
        } => {
            let delivery = new_id();
            let payload = json!({
                "delivery": delivery,
                "endpoint": endpoint,
                "event": event,
                "record": record,
                "data": data,
                "rule": job.rule_id,
                "cause": job.event_id,
                "occurred_at": env.now,
            });
            tx.insert_job(&new_job(
                env,
                WEBHOOK_JOB,
                format!("webhook/{delivery}"),
                payload,
            ))?;
            return Ok(json!({"delivery": delivery, "endpoint": endpoint}));
        }
        Effect::Control { name } => {
            let key = format!("{CONTROLS_JOB}/{}/{}/{index}", job.event_id, job.rule_id);
            let queued =
                tx.insert_job(&new_job(env, CONTROLS_JOB, key, json!({"control": name})))?;
            return Ok(json!({"queued": queued, "control": name}));
        }
        Effect::Respond { status, body } => {
            return Ok(json!({"respond": {"status": status, "body": body}}));
        }
        Effect::Approval {
            request,
            record,
            summary,
        } => {
            let opened = crate::approvals::open(
                tx,
                env,
                crate::approvals::OpenRequest {
                    kind: request.clone(),
                    subject: record.clone(),
                    summary: summary.clone(),
                    ..Default::default()
                },
                context,
            )?;
            return Ok(json!({"request": opened.request.id, "created": opened.created}));
        }
        Effect::ApprovalStep { op, step } => {
            return match op.as_str() {
                "remind" => crate::approvals::remind(tx, env, step, context),
                _ => crate::approvals::escalate(tx, env, step, context),
            };
        }
        Effect::Http { .. } | Effect::Wait { .. } | Effect::Await { .. } => {
            return Err(EngineError::Rule(format!(
                "{} is not a local step",
                effect_name(effect)
            )));
        }
    };
    let outcome = apply(tx, env, command, context.clone())?;
    Ok(describe(&outcome))
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::Http { .. } => "an HTTP call",
        Effect::Wait { .. } => "a wait",
        Effect::Await { .. } => "an awaited event",
        _ => "this effect",
    }
}

/// A pending job of `kind`, due now.
pub(crate) fn new_job(env: &Env, kind: &str, key: String, payload: Value) -> Job {
    Job {
        id: new_id(),
        key,
        kind: kind.to_string(),
        run_id: None,
        payload,
        state: JobState::Pending,
        attempts: 0,
        max_attempts: env.config.max_attempts,
        run_at: env.now,
        lease_until: None,
        last_error: None,
        replays: 0,
        created_at: env.now,
        updated_at: env.now,
    }
}

fn describe(outcome: &Outcome) -> Value {
    json!({
        "record": outcome.record.as_ref().map(|r| r.reference()),
        "event": outcome.event.as_ref().map(|e| &e.id),
        "created": outcome.created,
        "changed": outcome.event.is_some(),
    })
}

/// Runs a job's actions at once, inside the transaction that queued it. The outer `Result`
/// carries store failures, which abort the whole write; the inner one the job's own failure,
/// after which the transaction holds none of the job's writes.
///
/// A single action needs no savepoint: `apply` finishes validating before its first write,
/// so an action that fails has written nothing.
fn run_inline(
    tx: &mut dyn WriteTx,
    env: &Env,
    job: &RuleJob,
) -> Result<Result<Vec<Value>, EngineError>, EngineError> {
    let run = |tx: &mut dyn WriteTx| {
        let mut attempt = job.clone();
        run_local_steps(tx, env, &mut attempt).map(|_| attempt.outcomes)
    };
    // One action that writes one record can skip the savepoint; approvals write several.
    let single_write = !matches!(
        job.actions.first().map(|a| &a.effect),
        Some(Effect::Approval { .. } | Effect::ApprovalStep { .. })
    );
    if job.actions.len() == 1 && single_write {
        let before = tx.write_count();
        return match run(tx) {
            Ok(outcomes) => Ok(Ok(outcomes)),
            Err(error) if error.is_transient() => Err(error),
            Err(error) if tx.write_count() == before => Ok(Err(error)),
            Err(error) => Err(EngineError::Rule(format!(
                "an action failed after writing, which validation should have prevented: {error}"
            ))),
        };
    }
    let mut result = None;
    tx.nested(&mut |tx| {
        let outcome = run(tx);
        let keep = outcome.is_ok();
        result = Some(outcome);
        keep
    })?;
    match result.expect("the nested write ran") {
        Err(error) if error.is_transient() => Err(error),
        other => Ok(other),
    }
}

/// Turns a failed inline attempt into the job's first attempt: retried later by a worker, or
/// dead at once when retrying cannot help.
fn record_inline_failure(run: &mut Run, job: &mut Job, env: &Env, error: &EngineError) {
    let message = error.to_string();
    job.attempts = 1;
    job.last_error = Some(message.clone());
    run.error = Some(message);
    if error.is_transient() && job.max_attempts > 1 {
        let delay = crate::worker::backoff(1, env.config.base_backoff, env.config.max_backoff);
        job.run_at = env.now + Duration::from_std(delay).unwrap_or_default();
        run.status = RunStatus::Retrying;
    } else {
        job.state = JobState::Dead;
        run.status = RunStatus::Dead;
        run.finished_at = Some(env.now);
    }
}

/// Raises a finding that shows the causal chain that hit the depth limit.
fn raise_chain_finding(
    tx: &mut dyn WriteTx,
    env: &Env,
    rule: &Rule,
    event: &Event,
) -> Result<(), EngineError> {
    let mut chain = Vec::new();
    let mut current = Some(event.clone());
    while let Some(step) = current {
        chain.push(json!({
            "event": step.id,
            "name": step.name,
            "record": step.record,
            "actor": step.actor.to_string(),
            "depth": step.depth,
        }));
        current = match &step.cause {
            Some(cause) if chain.len() <= env.config.max_depth as usize + 1 => tx.event(cause)?,
            _ => None,
        };
    }
    chain.reverse();
    let path: Vec<String> = chain
        .iter()
        .map(|step| {
            format!(
                "{} by {}",
                step["name"].as_str().unwrap_or(""),
                step["actor"].as_str().unwrap_or("")
            )
        })
        .collect();
    let finding = RaisedFinding {
        key: format!("rule_chain/{}/{}", event.correlation, rule.id),
        control: "rule_chain".into(),
        severity: Severity::Error,
        record: event.record.clone(),
        message: format!(
            "Rule {} stopped at depth {}, the limit, after the chain {}",
            rule.id,
            event.depth,
            path.join(" → ")
        ),
        evidence: json!({"rule": rule.id, "depth": event.depth, "chain": chain}),
    };
    tx.raise_finding(&finding, env.now)?;
    Ok(())
}
