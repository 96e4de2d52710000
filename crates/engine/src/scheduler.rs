//! The scheduler: fires time triggers when their instant comes and starts the occurrences of
//! schedules, once each, whatever the number of processes.
//!
//! Timers are kept by the command path: whenever a record with a time-triggered rule changes,
//! the rule's due instant for it is computed and stored. A tick claims every pending timer due
//! by its instant, so ticks never skip or repeat a timer, downtime only delays them, and a date
//! set to a past instant fires at the next tick. Schedules keep a cursor of the instant up to
//! which their occurrences were decided; occurrences that passed while nothing ran follow the
//! schedule's catch-up policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use steward_domain::calendar::Calendar;
use steward_domain::plan::{Stamp, plan_business_event};
use steward_domain::{Actor, CommandContext, Kind, Record, new_id};
use steward_rules::Rule;
use steward_rules::rule::Trigger;
use steward_rules::time::{CalendarSource, Overlap, TimeTrigger, catch_up};
use steward_store::schedule::{Occurrence, Timer};
use steward_store::{JobState, RecordQuery, RuleVersion, StoreError, WriteTx};
use tokio::sync::watch;

use crate::Engine;
use crate::error::EngineError;
use crate::pipeline::{Env, run_rules};

/// Name of the event appended when a timer fires.
pub const TIMER_EVENT: &str = "timer.fired";
/// Name of the event appended when a schedule's occurrence starts.
pub const SCHEDULE_EVENT: &str = "schedule.fired";

/// Timers claimed per transaction.
const TIMER_BATCH: usize = 200;
/// Records given timers per transaction when a new time rule is installed.
const BACKFILL_BATCH: usize = 500;

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TickReport {
    pub timers_fired: usize,
    pub timers_backfilled: usize,
    pub occurrences_started: usize,
    pub occurrences_missed: usize,
    pub occurrences_skipped: usize,
    pub occurrences_buffered: usize,
}

/// Stores the due instant of every time-triggered rule for `record`.
pub(crate) fn maintain_timers(
    tx: &mut dyn WriteTx,
    env: &Env,
    record: &Record,
) -> Result<(), EngineError> {
    for rule in env.rules.timed(record.kind) {
        let Trigger::Time(trigger) = &rule.trigger else {
            continue;
        };
        let due = match due_for(tx, trigger, record) {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(rule = %rule.id, record = %record.id, %error, "cannot compute when the time trigger is due");
                None
            }
        };
        tx.schedule_mut()
            .set_timer(&rule.id, rule.version, &record.reference(), due, None)?;
    }
    Ok(())
}

/// Computes the due instant of `trigger` for `record`, loading its work calendar if needed.
fn due_for(
    tx: &dyn WriteTx,
    trigger: &TimeTrigger,
    record: &Record,
) -> Result<Option<DateTime<Utc>>, String> {
    let calendar = match &trigger.calendar {
        None => None,
        Some(source) => load_calendar(tx, source, record).map_err(|e| e.to_string())?,
    };
    trigger.due_at(record, calendar.as_ref())
}

fn load_calendar(
    tx: &dyn WriteTx,
    source: &CalendarSource,
    record: &Record,
) -> Result<Option<Calendar>, StoreError> {
    match source {
        CalendarSource::Named(name) => {
            let query = RecordQuery {
                kind: Some(Kind::WorkCalendar),
                fields: vec![("name".into(), json!(name))],
                limit: 1,
                ..Default::default()
            };
            Ok(tx.records(&query)?.items.first().map(Calendar::from_record))
        }
        CalendarSource::Path(segments) => {
            let mut current = record.clone();
            for segment in segments {
                let Some(id) = current.ref_id(segment).map(str::to_string) else {
                    return Ok(None);
                };
                let Some(steward_domain::FieldType::Ref(kind)) =
                    current.kind.schema().field(segment).map(|f| f.ty)
                else {
                    return Ok(None);
                };
                match tx.record(kind, &id)? {
                    Some(next) => current = next,
                    None => return Ok(None),
                }
            }
            Ok((current.kind == Kind::WorkCalendar).then(|| Calendar::from_record(&current)))
        }
    }
}

/// Compiled rule versions, so a schedule can run the version current at its instant.
#[derive(Default)]
pub(crate) struct VersionCache {
    compiled: Mutex<HashMap<(String, i64), Arc<Rule>>>,
}

impl VersionCache {
    fn get(&self, version: &RuleVersion) -> Result<Arc<Rule>, EngineError> {
        let key = (version.rule_id.clone(), version.version);
        if let Some(rule) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(rule));
        }
        let mut rule =
            steward_rules::compile_rule_text(&version.definition.to_string(), &version.origin)
                .map_err(|d| {
                    EngineError::Rule(format!(
                        "version {} of rule {} does not compile: {:?}",
                        version.version, version.rule_id, d
                    ))
                })?;
        rule.version = version.version;
        let rule = Arc::new(rule);
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&rule));
        Ok(rule)
    }
}

impl Engine {
    /// Fires every due timer and starts every due schedule occurrence.
    pub async fn scheduler_tick(self: &Arc<Self>) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        report.timers_backfilled = self.backfill_timers().await?;
        loop {
            let fired = self.fire_timers().await?;
            report.timers_fired += fired;
            if fired < TIMER_BATCH {
                break;
            }
        }
        self.decide_schedules(&mut report).await?;
        if report != TickReport::default() {
            tracing::debug!(?report, "scheduler tick");
        }
        Ok(report)
    }

    /// Ticks until `shutdown` turns true, waking at the next due instant, after commits (which
    /// may add earlier timers) and at least every `scheduler_interval`.
    pub async fn run_scheduler(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.store.commits();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.scheduler_tick().await {
                tracing::error!(%error, "scheduler tick failed");
            }
            let wait = match self.next_scheduler_instant().await {
                Ok(Some(next)) => (next - self.clock.now())
                    .to_std()
                    .unwrap_or(StdDuration::ZERO),
                Ok(None) => self.config.scheduler_interval,
                Err(error) => {
                    tracing::error!(%error, "reading the next due instant failed");
                    self.config.scheduler_interval
                }
            }
            .min(self.config.scheduler_interval);
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The earliest instant at which a timer or a schedule is due.
    pub async fn next_scheduler_instant(
        self: &Arc<Self>,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let rules = self.rules();
        let ids: Vec<String> = rules.scheduled().map(|r| r.id.clone()).collect();
        let (timer, cursors) = steward_store::read_async(Arc::clone(&self.store), move |tx| {
            let timer = tx.schedule().next_timer_due()?;
            let cursors = ids
                .iter()
                .map(|id| tx.schedule().schedule_cursor(id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((timer, cursors))
        })
        .await?;
        let now = self.clock.now();
        let mut next = timer;
        for (rule, cursor) in rules.scheduled().zip(cursors) {
            let Trigger::Schedule(schedule) = &rule.trigger else {
                continue;
            };
            let from = cursor.unwrap_or(now);
            if let Some(occurrence) = schedule.next_after(from) {
                next = Some(next.map_or(occurrence, |n: DateTime<Utc>| n.min(occurrence)));
            }
        }
        Ok(next)
    }

    /// Gives existing records timers for time rules installed or changed since the last tick.
    async fn backfill_timers(self: &Arc<Self>) -> Result<usize, EngineError> {
        let rules = self.rules();
        let mut total = 0;
        for rule in rules.all_timed() {
            let Trigger::Time(trigger) = &rule.trigger else {
                continue;
            };
            let (id, version) = (rule.id.clone(), rule.version);
            let done = steward_store::read_async(Arc::clone(&self.store), move |tx| {
                tx.schedule().backfilled_version(&id)
            })
            .await?;
            if done == Some(version) {
                continue;
            }
            // Instants that passed before this version existed are recorded, not fired.
            let installed = self
                .version_created_at(&rule.id, version)
                .await?
                .unwrap_or(self.clock.now());
            let mut after: Option<String> = None;
            loop {
                let query = RecordQuery {
                    kind: Some(trigger.kind),
                    after: after.clone(),
                    limit: BACKFILL_BATCH,
                    ..Default::default()
                };
                let (rule_id, trigger) = (rule.id.clone(), trigger.clone());
                let page =
                    steward_store::write::<_, EngineError, _>(self.store.as_ref(), move |tx| {
                        let page = tx.records(&query)?;
                        for record in &page.items {
                            let due = due_for(tx, &trigger, record).unwrap_or(None);
                            tx.schedule_mut().set_timer(
                                &rule_id,
                                version,
                                &record.reference(),
                                due,
                                Some(installed),
                            )?;
                        }
                        Ok(page)
                    })
                    .await?;
                total += page.items.len();
                match page.next_cursor {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
            let id = rule.id.clone();
            steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
                tx.schedule_mut().set_backfilled_version(&id, version)
            })
            .await?;
            tracing::info!(rule = %rule.id, version, records = total, "timers computed for existing records");
        }
        Ok(total)
    }

    async fn version_created_at(
        self: &Arc<Self>,
        rule_id: &str,
        version: i64,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let id = rule_id.to_string();
        let versions =
            steward_store::read_async(Arc::clone(&self.store), |tx| tx.rule_versions()).await?;
        Ok(versions
            .into_iter()
            .find(|v| v.rule_id == id && v.version == version)
            .map(|v| v.created_at))
    }

    /// Claims one batch of due timers and runs their rules; returns how many fired.
    async fn fire_timers(self: &Arc<Self>) -> Result<usize, EngineError> {
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let now = self.clock.now();
        steward_store::write(self.store.as_ref(), move |tx| {
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let timers = tx.schedule_mut().claim_due_timers(now, TIMER_BATCH)?;
            for timer in &timers {
                fire_timer(tx, &env, timer)?;
            }
            Ok::<_, EngineError>(timers.len())
        })
        .await
    }

    async fn decide_schedules(
        self: &Arc<Self>,
        report: &mut TickReport,
    ) -> Result<(), EngineError> {
        let rules = self.rules();
        let approvals = self.approvals();
        for rule in rules.scheduled() {
            let rule = Arc::clone(rule);
            let engine = Arc::clone(self);
            let config = self.config.clone();
            let now = self.clock.now();
            let all_rules = Arc::clone(&rules);
            let approvals = Arc::clone(&approvals);
            let decided = steward_store::write(self.store.as_ref(), move |tx| {
                let env = Env {
                    rules: &all_rules,
                    config: &config,
                    approvals: &approvals,
                    now,
                };
                decide_schedule(tx, &env, &engine.versions, &rule)
            })
            .await?;
            report.occurrences_started += decided.started;
            report.occurrences_missed += decided.missed;
            report.occurrences_skipped += decided.skipped;
            report.occurrences_buffered += decided.buffered;
        }
        Ok(())
    }
}

fn scheduler_context() -> CommandContext {
    CommandContext::new(Actor::system("scheduler"))
}

/// Appends the timer's event and runs its rule on the record as it is now.
fn fire_timer(tx: &mut dyn WriteTx, env: &Env, timer: &Timer) -> Result<(), EngineError> {
    let Some(rule) = env.rules.get(&timer.rule_id).cloned() else {
        tracing::info!(rule = %timer.rule_id, "a timer of a retired rule was dropped");
        return Ok(());
    };
    let Trigger::Time(trigger) = &rule.trigger else {
        return Ok(());
    };
    let Some(record) = tx.record(timer.record.kind, &timer.record.id)? else {
        return Ok(());
    };
    // A record changed since the timer was set has a new timer; this one is stale.
    if due_for(tx, trigger, &record).ok().flatten() != Some(timer.due_at) {
        return Ok(());
    }
    let stamp = Stamp {
        event_id: new_id(),
        correlation: new_id(),
        now: env.now,
    };
    let data = json!({"rule": rule.id, "due_at": timer.due_at, "trigger": rule.trigger.describe()});
    let mut event = plan_business_event(
        TIMER_EVENT,
        Some(record.reference()),
        data,
        &scheduler_context(),
        &stamp,
    )?;
    event.seq = tx.append_event(&event)?;
    tx.schedule_mut().record_timer_event(timer, &event.id)?;
    run_rules(tx, env, &[rule], &event, Some(&record))?;
    Ok(())
}

#[derive(Default)]
struct Decided {
    started: usize,
    missed: usize,
    skipped: usize,
    buffered: usize,
}

fn occurrence(
    rule: &Rule,
    at: DateTime<Utc>,
    version: i64,
    state: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Occurrence {
    Occurrence {
        rule_id: rule.id.clone(),
        scheduled_at: at,
        rule_version: version,
        state: state.to_string(),
        reason: reason.map(str::to_string),
        event_id: None,
        run_id: None,
        job_id: None,
        decided_at: now,
        finished_at: None,
    }
}

/// Decides the occurrences of one schedule up to now.
fn decide_schedule(
    tx: &mut dyn WriteTx,
    env: &Env,
    versions: &VersionCache,
    rule: &Arc<Rule>,
) -> Result<Decided, EngineError> {
    let Trigger::Schedule(schedule) = &rule.trigger else {
        return Ok(Decided::default());
    };
    let mut decided = Decided::default();
    let Some(cursor) = tx.schedule().schedule_cursor(&rule.id)? else {
        // A new schedule starts from now; it has no past to catch up on.
        tx.schedule_mut().set_schedule_cursor(&rule.id, env.now)?;
        return Ok(decided);
    };
    refresh_running(tx, rule)?;
    start_buffered(tx, env, versions, rule, &mut decided)?;

    let due = schedule.occurrences(cursor, env.now);
    if due.is_empty() {
        return Ok(decided);
    }
    let grace = Duration::from_std(env.config.schedule_grace).unwrap_or(Duration::minutes(1));
    let (late, on_time): (Vec<_>, Vec<_>) = due.iter().partition(|at| **at < env.now - grace);
    let (run_late, missed) = catch_up(schedule.catch_up, &late);
    for at in missed {
        let row = occurrence(
            rule,
            at,
            rule.version,
            "missed",
            Some("Steward was not running at this instant"),
            env.now,
        );
        if tx.schedule_mut().insert_occurrence(&row)? {
            decided.missed += 1;
        }
    }
    for at in run_late.into_iter().chain(on_time) {
        match overlap_state(tx, rule, schedule.overlap)? {
            Some((state, reason)) => {
                let row = occurrence(rule, at, rule.version, state, Some(reason), env.now);
                if tx.schedule_mut().insert_occurrence(&row)? {
                    if state == "buffered" {
                        decided.buffered += 1;
                    } else {
                        decided.skipped += 1;
                    }
                }
            }
            None => {
                if start_occurrence(tx, env, versions, rule, at, None)? {
                    decided.started += 1;
                }
            }
        }
    }
    tx.schedule_mut().set_schedule_cursor(&rule.id, env.now)?;
    Ok(decided)
}

/// Marks the newest started occurrence finished when its job is done.
fn refresh_running(tx: &mut dyn WriteTx, rule: &Rule) -> Result<(), EngineError> {
    let Some(mut last) = tx.schedule().latest_occurrence(&rule.id, "started")? else {
        return Ok(());
    };
    let running = match &last.job_id {
        Some(job) => tx.job(job)?.is_some_and(|j| {
            matches!(
                j.state,
                JobState::Pending | JobState::Running | JobState::Waiting
            )
        }),
        None => false,
    };
    if !running {
        last.state = "finished".into();
        last.finished_at = Some(last.finished_at.unwrap_or(last.decided_at));
        tx.schedule_mut().update_occurrence(&last)?;
    }
    Ok(())
}

/// What the overlap policy makes of a new occurrence while a run is going; `None` to start it.
fn overlap_state(
    tx: &mut dyn WriteTx,
    rule: &Rule,
    overlap: Overlap,
) -> Result<Option<(&'static str, &'static str)>, EngineError> {
    if overlap == Overlap::Allow
        || tx
            .schedule()
            .latest_occurrence(&rule.id, "started")?
            .is_none()
    {
        return Ok(None);
    }
    Ok(Some(match overlap {
        Overlap::Buffer
            if tx
                .schedule()
                .latest_occurrence(&rule.id, "buffered")?
                .is_none() =>
        {
            (
                "buffered",
                "the previous run was still going; it starts when that run ends",
            )
        }
        Overlap::Buffer => (
            "skipped",
            "the previous run was still going and another occurrence was already waiting",
        ),
        _ => ("skipped", "the previous run was still going"),
    }))
}

fn start_buffered(
    tx: &mut dyn WriteTx,
    env: &Env,
    versions: &VersionCache,
    rule: &Arc<Rule>,
    decided: &mut Decided,
) -> Result<(), EngineError> {
    if tx
        .schedule()
        .latest_occurrence(&rule.id, "started")?
        .is_some()
    {
        return Ok(());
    }
    let Some(waiting) = tx.schedule().latest_occurrence(&rule.id, "buffered")? else {
        return Ok(());
    };
    if start_occurrence(tx, env, versions, rule, waiting.scheduled_at, Some(waiting))? {
        decided.started += 1;
    }
    Ok(())
}

/// Starts one occurrence with the rule version current at its instant. Returns false when
/// another process took the instant first.
fn start_occurrence(
    tx: &mut dyn WriteTx,
    env: &Env,
    versions: &VersionCache,
    rule: &Arc<Rule>,
    at: DateTime<Utc>,
    buffered: Option<Occurrence>,
) -> Result<bool, EngineError> {
    let history = tx.rule_versions()?;
    let current = history
        .iter()
        .filter(|v| v.rule_id == rule.id && v.created_at <= at)
        .max_by_key(|v| v.version);
    let version_rule = match current {
        Some(v) if v.version == rule.version => Arc::clone(rule),
        Some(v) if v.retired_at.is_some_and(|r| r <= at) || !v.enabled => {
            let row = occurrence(
                rule,
                at,
                v.version,
                "skipped",
                Some("the rule was disabled at this instant"),
                env.now,
            );
            tx.schedule_mut().insert_occurrence(&row)?;
            return Ok(false);
        }
        Some(v) => versions.get(v)?,
        // The instant predates the rule's first version: use the first one.
        None => Arc::clone(rule),
    };
    let buffered_row = buffered.is_some();
    let mut row = buffered
        .unwrap_or_else(|| occurrence(rule, at, version_rule.version, "started", None, env.now));
    row.rule_version = version_rule.version;
    row.state = "started".into();
    row.reason = None;
    let taken = match buffered_row {
        true => true,
        false => tx.schedule_mut().insert_occurrence(&row)?,
    };
    if !taken {
        return Ok(false);
    }
    let stamp = Stamp {
        event_id: new_id(),
        correlation: new_id(),
        now: env.now,
    };
    let data = json!({"rule": rule.id, "scheduled_at": at, "version": version_rule.version});
    let mut event = plan_business_event(SCHEDULE_EVENT, None, data, &scheduler_context(), &stamp)?;
    event.seq = tx.append_event(&event)?;
    let outcomes = run_rules(tx, env, &[version_rule], &event, None)?;
    let outcome = outcomes.first();
    row.event_id = Some(event.id.clone());
    row.run_id = outcome.map(|o| o.run.clone());
    row.job_id = outcome.and_then(|o| o.job.clone());
    if row.job_id.is_none() {
        row.state = "finished".into();
        row.finished_at = Some(env.now);
    }
    tx.schedule_mut().update_occurrence(&row)?;
    Ok(true)
}
