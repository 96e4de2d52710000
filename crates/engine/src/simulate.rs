//! Simulation: replays the recorded event history through new or changed rules, with no
//! effects, and reports what they would have done beside what the installed versions did.
//!
//! Records are rebuilt from their events, so each event is judged on the record as it was
//! then; the records it refers to are rebuilt the same way. Nothing is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_domain::event::{ATTRIBUTE_PREFIX, STATE_FIELD};
use steward_domain::schema::FieldType;
use steward_domain::{Event, EventKind, Kind, Record, RecordRef};
use steward_rules::context::{self, Expansion};
use steward_rules::eval::{Occasion, evaluate_condition, resolve_actions};
use steward_rules::rule::Trigger;
use steward_rules::{Rule, VM};
use steward_store::{EventQuery, ReadTx, RunQuery, RunStatus, StoreError};

use crate::Engine;
use crate::error::EngineError;

/// Events read per page while replaying.
const PAGE: usize = 1000;
/// Examples kept per list in a report.
const SAMPLES: usize = 20;

/// What one rule would have done over the history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleSimulation {
    pub rule_id: String,
    pub trigger: String,
    /// Events whose trigger matched.
    pub matched: u64,
    /// Matches whose condition held, so the actions would have run.
    pub would_run: u64,
    /// Matches whose condition or actions could not be evaluated.
    pub errors: u64,
    /// How often each action type would have run.
    pub actions: BTreeMap<String, u64>,
    /// Records the rule would have acted on, with how often, most often first.
    pub records: Vec<RecordCount>,
    /// The first matches, with the values the condition read and the resolved actions.
    pub samples: Vec<Value>,
    /// What the installed version of the rule did over the same events, when there is one.
    pub installed: Option<InstalledComparison>,
    /// Why nothing was simulated, for triggers that history cannot replay.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordCount {
    pub record: RecordRef,
    pub runs: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct InstalledComparison {
    pub version: i64,
    /// Events on which the installed version ran its actions.
    pub ran: u64,
    /// Events where the candidate would run and the installed version did not, and the
    /// other way round; a few event ids each.
    pub only_candidate: u64,
    pub only_installed: u64,
    pub only_candidate_events: Vec<String>,
    pub only_installed_events: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SimulationReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub events_read: u64,
    pub events_in_window: u64,
    pub rules: Vec<RuleSimulation>,
}

impl Engine {
    /// Replays the events since `since` through `rules` without effects.
    pub async fn simulate(
        self: &Arc<Self>,
        rules: Vec<Rule>,
        since: DateTime<Utc>,
    ) -> Result<SimulationReport, EngineError> {
        let until = self.clock.now();
        let installed = self.rules();
        let report = steward_store::read_async(Arc::clone(&self.store), move |tx| {
            let installed: Vec<Option<Arc<Rule>>> = rules
                .iter()
                .map(|r| installed.get(&r.id).cloned())
                .collect();
            simulate_on(tx, &rules, &installed, since, until)
        })
        .await?;
        Ok(report)
    }
}

/// The kinds whose records a simulation must rebuild: the triggers' kinds and every kind a
/// rule's expressions reach through references.
fn kinds_needed(rules: &[Rule]) -> BTreeSet<Kind> {
    fn walk(kind: Kind, expansion: &Expansion, out: &mut BTreeSet<Kind>) {
        out.insert(kind);
        for (field, child) in &expansion.0 {
            if let Some(FieldType::Ref(target)) = kind.schema().field(field).map(|f| f.ty) {
                walk(target, child, out);
            }
        }
    }
    let mut kinds = BTreeSet::new();
    for rule in rules {
        if let Some(kind) = rule.trigger.kind() {
            walk(kind, &rule.expansion, &mut kinds);
        }
    }
    kinds
}

fn apply_event(records: &mut HashMap<RecordRef, Record>, event: &Event) {
    let Some(reference) = &event.record else {
        return;
    };
    if !matches!(event.kind, EventKind::Created | EventKind::Updated) {
        return;
    }
    let record = records.entry(reference.clone()).or_insert_with(|| Record {
        id: reference.id.clone(),
        kind: reference.kind,
        state: String::new(),
        version: 0,
        created_at: event.occurred_at,
        updated_at: event.occurred_at,
        fields: Map::new(),
        attributes: Map::new(),
    });
    for (name, change) in &event.changes {
        let target = if name == STATE_FIELD {
            record.state = change.new.as_str().unwrap_or_default().to_string();
            continue;
        } else if let Some(attribute) = name.strip_prefix(ATTRIBUTE_PREFIX) {
            (&mut record.attributes, attribute)
        } else {
            (&mut record.fields, name.as_str())
        };
        if change.new.is_null() {
            target.0.remove(target.1);
        } else {
            target.0.insert(target.1.to_string(), change.new.clone());
        }
    }
    record.version = event.record_version.unwrap_or(record.version + 1);
    record.updated_at = event.occurred_at;
}

fn simulate_on(
    tx: &dyn ReadTx,
    rules: &[Rule],
    installed: &[Option<Arc<Rule>>],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<SimulationReport, StoreError> {
    let kinds = kinds_needed(rules);
    let mut records: HashMap<RecordRef, Record> = HashMap::new();
    let mut results: Vec<RuleSimulation> = rules
        .iter()
        .map(|rule| RuleSimulation {
            rule_id: rule.id.clone(),
            trigger: rule.trigger.describe(),
            ..Default::default()
        })
        .collect();
    let mut per_record: Vec<HashMap<RecordRef, u64>> = vec![HashMap::new(); rules.len()];
    let mut fired_events: Vec<BTreeSet<String>> = vec![BTreeSet::new(); rules.len()];
    let mut vm = VM::new();
    let (mut events_read, mut in_window) = (0u64, 0u64);
    let mut after = None;
    loop {
        let page = tx.events(&EventQuery {
            after_seq: after,
            limit: PAGE,
            ..Default::default()
        })?;
        for event in &page.items {
            events_read += 1;
            if event
                .record
                .as_ref()
                .is_some_and(|r| kinds.contains(&r.kind))
            {
                apply_event(&mut records, event);
            }
            if event.occurred_at < since || event.occurred_at > until {
                continue;
            }
            in_window += 1;
            for (index, rule) in rules.iter().enumerate() {
                let own = event.actor.kind == steward_domain::ActorKind::Rule
                    && event.actor.id == rule.id;
                if (own && !rule.allow_self_trigger) || !rule.trigger.matches(event) {
                    continue;
                }
                let result = &mut results[index];
                result.matched += 1;
                let record = event.record.as_ref().and_then(|r| records.get(r));
                let ctx = context::build(event, record, &rule.expansion, &mut |kind, id| {
                    records.get(&RecordRef::new(kind, id)).cloned()
                });
                let evaluation = evaluate_condition(rule, &ctx, &mut vm);
                let sample = |result: &RuleSimulation, value: Value| {
                    (result.samples.len() < SAMPLES).then_some(value)
                };
                match evaluation.result {
                    Err(error) => {
                        result.errors += 1;
                        if let Some(s) = sample(result, json!({"event": event.id, "error": error}))
                        {
                            result.samples.push(s);
                        }
                    }
                    Ok(false) => {}
                    Ok(true) => {
                        let occasion = Occasion {
                            record: event.record.as_ref(),
                            now: event.occurred_at,
                            correlation: &event.correlation,
                        };
                        match resolve_actions(rule, &ctx, &occasion, &mut vm) {
                            Ok(actions) => {
                                result.would_run += 1;
                                fired_events[index].insert(event.id.clone());
                                for action in &actions {
                                    *result.actions.entry(action.action.clone()).or_default() += 1;
                                }
                                if let Some(reference) = &event.record {
                                    *per_record[index].entry(reference.clone()).or_default() += 1;
                                }
                                let value = json!({
                                    "event": event.id, "record": event.record, "at": event.occurred_at,
                                    "inputs": evaluation.inputs, "actions": actions,
                                });
                                if let Some(s) = sample(result, value) {
                                    result.samples.push(s);
                                }
                            }
                            Err(error) => {
                                result.errors += 1;
                                if let Some(s) =
                                    sample(result, json!({"event": event.id, "error": error}))
                                {
                                    result.samples.push(s);
                                }
                            }
                        }
                    }
                }
            }
        }
        match page.next_cursor.and_then(|c| c.parse::<i64>().ok()) {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }

    for (index, rule) in rules.iter().enumerate() {
        let result = &mut results[index];
        let mut counts: Vec<RecordCount> = per_record[index]
            .iter()
            .map(|(record, runs)| RecordCount {
                record: record.clone(),
                runs: *runs,
            })
            .collect();
        counts.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.record.cmp(&b.record)));
        counts.truncate(SAMPLES);
        result.records = counts;
        if matches!(rule.trigger, Trigger::Time(_) | Trigger::Schedule(_)) {
            result.note = Some(
                "time and schedule triggers fire from the clock, not from events, so the history holds nothing to replay for them".into(),
            );
        }
        if let Some(current) = &installed[index] {
            result.installed = Some(compare(tx, current, &fired_events[index], since, until)?);
        }
    }
    Ok(SimulationReport {
        since,
        until,
        events_read,
        events_in_window: in_window,
        rules: results,
    })
}

/// What the installed version did on the events of the window.
fn compare(
    tx: &dyn ReadTx,
    current: &Rule,
    candidate: &BTreeSet<String>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<InstalledComparison, StoreError> {
    let mut ran = BTreeSet::new();
    let mut query = RunQuery {
        rule_id: Some(current.id.clone()),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    loop {
        let page = tx.runs(&query)?;
        for run in &page.items {
            let acted = !matches!(
                run.status,
                RunStatus::Skipped | RunStatus::EvaluationError | RunStatus::DepthLimited
            );
            if acted && run.created_at >= since && run.created_at <= until {
                ran.insert(run.event_id.clone());
            }
        }
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    let only_candidate: Vec<String> = candidate.difference(&ran).cloned().collect();
    let only_installed: Vec<String> = ran.difference(candidate).cloned().collect();
    Ok(InstalledComparison {
        version: current.version,
        ran: ran.len() as u64,
        only_candidate: only_candidate.len() as u64,
        only_installed: only_installed.len() as u64,
        only_candidate_events: only_candidate.into_iter().take(SAMPLES).collect(),
        only_installed_events: only_installed.into_iter().take(SAMPLES).collect(),
    })
}
