//! The engine: the command path, rule dispatch, durable jobs with retries and dead letters,
//! the rule registry and the controls runner.
//!
//! Every write goes through [`pipeline::apply`] inside a store transaction: the record change,
//! its event, the runs of the rules it matched and the jobs they queued commit together or not
//! at all. Workers run jobs; a job's effects and its completion commit together too, so a job
//! takes effect exactly once however often it is attempted.

pub mod approvals;
pub mod billing;
pub mod collections;
pub mod config;
pub mod control_schedules;
pub mod control_settings;
pub mod controls;
pub mod cutoffs;
mod delivery_controls;
pub mod entries;
mod entry_controls;
mod error;
pub mod handoff;
mod health;
pub mod metric_names;
pub mod outbound;
pub mod pipeline;
mod registry;
pub mod scheduler;
pub mod simulate;
pub mod staffing;
pub mod steps;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use steward_domain::{Clock, Command, CommandContext};
use steward_rules::RuleSet;
use steward_store::{Store, StoreError};

pub use config::EngineConfig;
pub use controls::ControlsReport;
pub use error::EngineError;
pub use pipeline::Outcome;
pub use registry::RuleChange;

pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    rules: RwLock<Arc<RuleSet>>,
    outbound: OnceLock<Arc<dyn outbound::Outbound>>,
    handlers: RwLock<HashMap<String, Arc<dyn outbound::JobHandler>>>,
    pub(crate) versions: scheduler::VersionCache,
    approvals: RwLock<Arc<approvals::Approvals>>,
    settings: RwLock<Arc<steward_controls::FirmSettings>>,
    /// Lets one queued controls run at a time through, and remembers when the last one
    /// started, so that controls jobs queued before it complete without a run of their own.
    controls_gate: tokio::sync::Mutex<ControlsGate>,
}

/// The record of this process's controls jobs.
#[derive(Debug, Default)]
struct ControlsGate {
    /// Start of the last controls run that succeeded.
    last_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Controls runs started from queued jobs.
    runs: u64,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: EngineConfig) -> Arc<Engine> {
        Arc::new(Engine {
            store,
            clock,
            config,
            rules: RwLock::new(Arc::new(RuleSet::default())),
            outbound: OnceLock::new(),
            handlers: RwLock::new(HashMap::new()),
            versions: scheduler::VersionCache::default(),
            approvals: RwLock::new(Arc::new(approvals::Approvals::default())),
            settings: RwLock::new(Arc::new(steward_controls::FirmSettings::default())),
            controls_gate: tokio::sync::Mutex::new(ControlsGate::default()),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Sets the HTTP client of `http` actions; the first call wins.
    pub fn set_outbound(&self, outbound: Arc<dyn outbound::Outbound>) {
        let _ = self.outbound.set(outbound);
    }

    pub(crate) fn outbound(&self) -> Option<Arc<dyn outbound::Outbound>> {
        self.outbound.get().cloned()
    }

    /// Makes `handler` run the jobs of `kind`.
    pub fn register_handler(&self, kind: &str, handler: Arc<dyn outbound::JobHandler>) {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind.to_string(), handler);
    }

    pub(crate) fn handler(&self, kind: &str) -> Option<Arc<dyn outbound::JobHandler>> {
        self.handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
    }

    /// Returns the approval policies in force.
    pub fn approvals(&self) -> Arc<approvals::Approvals> {
        Arc::clone(&self.approvals.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set_approvals(&self, approvals: approvals::Approvals) {
        *self.approvals.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(approvals);
    }

    /// Returns the rule set that new events are matched against.
    pub fn rules(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Applies one command and waits for its commit.
    pub async fn execute(
        &self,
        command: Command,
        context: CommandContext,
    ) -> Result<Outcome, EngineError> {
        self.submit(command, context).await
    }

    /// Queues one command and returns a future of its committed outcome. Commands queued
    /// before any is awaited share a transaction commit.
    pub fn submit(
        &self,
        command: Command,
        context: CommandContext,
    ) -> impl std::future::Future<Output = Result<Outcome, EngineError>> + Send + 'static {
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let clock = Arc::clone(&self.clock);
        let store = Arc::clone(&self.store);
        let actor = context.actor.clone();
        let (audit_rules, audit_config, audit_approvals, audit_clock) = (
            Arc::clone(&rules),
            config.clone(),
            Arc::clone(&approvals),
            Arc::clone(&clock),
        );
        let future = steward_store::submit_write(self.store.as_ref(), move |tx| {
            let env = pipeline::Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now: clock.now(),
            };
            pipeline::apply(tx, &env, command.clone(), context.clone())
        });
        async move {
            let outcome = future.await;
            if let Err(EngineError::Domain(
                error @ steward_domain::DomainError::ApprovalRequired { .. },
            )) = &outcome
            {
                let error = error.clone();
                let audited = steward_store::write(store.as_ref(), move |tx| {
                    let env = pipeline::Env {
                        rules: &audit_rules,
                        config: &audit_config,
                        approvals: &audit_approvals,
                        now: audit_clock.now(),
                    };
                    approvals::record_bypass(tx, &env, &error, &actor)
                })
                .await;
                if let Err(e) = audited {
                    tracing::error!(error = %e, "could not record a rejected bypass of an approval");
                }
            }
            if let Ok(Outcome {
                event: Some(event), ..
            }) = &outcome
            {
                metrics::counter!(metric_names::EVENTS, "name" => event.name.clone()).increment(1);
            }
            outcome
        }
    }

    /// Applies many commands with grouped commits and returns each outcome in order.
    pub async fn execute_all(
        &self,
        commands: Vec<(Command, CommandContext)>,
    ) -> Vec<Result<Outcome, EngineError>> {
        let futures: Vec<_> = commands
            .into_iter()
            .map(|(c, ctx)| self.submit(c, ctx))
            .collect();
        let mut outcomes = Vec::with_capacity(futures.len());
        for future in futures {
            outcomes.push(future.await);
        }
        outcomes
    }

    /// Returns jobs that a previous process claimed and never finished to the queue. Call it
    /// once at start-up, when no other process works on the same database.
    pub async fn recover(&self) -> Result<u64, EngineError> {
        let far = self.clock.now() + chrono::Duration::days(36_500);
        let released = steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            tx.release_expired_leases(far)
        })
        .await?;
        if released > 0 {
            tracing::warn!(
                jobs = released,
                "returned unfinished jobs of a previous run to the queue"
            );
        }
        Ok(released)
    }

    /// Moves a dead job back to the queue with fresh attempts.
    pub async fn replay(&self, job_id: &str) -> Result<bool, EngineError> {
        let id = job_id.to_string();
        let now = self.clock.now();
        let replayed = steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            let job = tx.job(&id)?;
            let replayed = tx.replay_job(&id, now)?;
            if replayed && let Some(run) = job.and_then(|j| j.run_id) {
                let actions = tx.run(&run)?.map(|r| r.actions).unwrap_or_default();
                tx.finish_run(&run, steward_store::RunStatus::Queued, &actions, None, None)?;
            }
            Ok(replayed)
        })
        .await?;
        if replayed {
            metrics::counter!(metric_names::REPLAYS).increment(1);
            tracing::info!(job = job_id, "dead job replayed");
        }
        Ok(replayed)
    }
}
