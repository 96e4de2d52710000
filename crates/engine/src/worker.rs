//! Workers: claim due jobs, run them, and record success, a retry with backoff, or a dead
//! letter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use steward_rules::Effect;
use steward_store::{Job, JobState, RunStatus, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Engine;
use crate::error::EngineError;
use crate::metric_names;
use crate::outbound::{HttpCall, HttpReply};
use crate::pipeline::{CONTROLS_JOB, Env, Progress, RULE_JOB, RuleJob, run_local_steps};

/// Computes the delay before retry number `attempt` (1 for the first retry): exponential from
/// `base`, capped at `max`, with the upper half randomised so that failed jobs do not retry
/// in step.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    let half = full / 2;
    let jitter = rand::random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// How a job attempt ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Completed,
    /// Paused at a wait; it continues when its time or event comes.
    Parked,
}

/// Names the action in an error from one of its steps.
fn at_action(error: EngineError, index: usize, action: &str) -> EngineError {
    match error {
        EngineError::External { message, transient } => EngineError::External {
            message: format!("action {} ({action}) failed: {message}", index + 1),
            transient,
        },
        other => other,
    }
}

impl Engine {
    /// Runs jobs until `shutdown` turns true. Wakes on every commit and at least every poll
    /// interval, so new jobs start at once and retries start when due.
    pub async fn run_worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.store.commits();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Look before claiming: a claim is a write, and writes wake every worker, so
            // claiming on every wake-up would keep idle workers spinning.
            let next =
                steward_store::read_async(Arc::clone(&self.store), |tx| tx.next_job_due()).await;
            let now = self.clock.now();
            let wait = match next {
                Ok(Some(due)) if due <= now => match self.run_due_jobs().await {
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::error!(%error, "claiming jobs failed");
                        self.config.poll_interval
                    }
                },
                Ok(Some(due)) => (due - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(self.config.poll_interval),
                Ok(None) => self.config.poll_interval,
                Err(error) => {
                    tracing::error!(%error, "reading the job queue failed");
                    self.config.poll_interval
                }
            };
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims one batch of due jobs and runs them; returns how many ran.
    pub async fn run_due_jobs(self: &Arc<Self>) -> Result<usize, EngineError> {
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30));
        let limit = self.config.claim_batch;
        let jobs: Vec<Job> = steward_store::write(self.store.as_ref(), move |tx| {
            tx.release_expired_leases(now)?;
            tx.claim_jobs(now, limit, now + lease)
        })
        .await?;
        let count = jobs.len();
        let claims: Vec<(String, u32)> = jobs.iter().map(|j| (j.id.clone(), j.attempts)).collect();
        let mut running = JoinSet::new();
        for job in jobs {
            let engine = Arc::clone(self);
            running.spawn(async move { engine.execute_job(job).await });
        }
        // A job may run longer than one lease, as a controls run over a large firm does, or
        // wait for one. Renewing the batch's leases every third of a lease keeps other
        // workers from taking such a job over and running it a second time.
        let period = (self.config.lease / 3).max(Duration::from_millis(10));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                joined = running.join_next() => if joined.is_none() { break },
                _ = renew.tick() => self.renew_leases(&claims).await,
            }
        }
        Ok(count)
    }

    /// Extends the leases of the claimed jobs that still run. A finished job's lease is no
    /// longer current, so its row is left as it is.
    async fn renew_leases(&self, claims: &[(String, u32)]) {
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30));
        let until = self.clock.now() + lease;
        let claims = claims.to_vec();
        let renewed = steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            let mut renewed = 0;
            for (id, attempt) in &claims {
                renewed += usize::from(tx.extend_lease(id, *attempt, until)?);
            }
            Ok(renewed)
        })
        .await;
        match renewed {
            Ok(renewed) => tracing::debug!(jobs = renewed, "renewed the leases of running jobs"),
            Err(error) => tracing::warn!(%error, "renewing the leases of running jobs failed"),
        }
    }

    /// Runs jobs until none is due; for tests and one-shot commands.
    pub async fn drain(self: &Arc<Self>) -> Result<usize, EngineError> {
        let mut total = 0;
        loop {
            let ran = self.run_due_jobs().await?;
            if ran == 0 {
                return Ok(total);
            }
            total += ran;
        }
    }

    async fn execute_job(self: Arc<Self>, job: Job) {
        let result = match job.kind.as_str() {
            RULE_JOB => self.execute_rule_job(&job).await,
            CONTROLS_JOB => self.run_controls_job(&job).await,
            crate::handoff::HANDOFF_JOB => {
                self.run_handoff_job(&job).await.map(|_| Done::Completed)
            }
            other => match self.handler(other) {
                Some(handler) => match handler.run(&self, &job).await {
                    Ok(_) => self.complete(&job).await,
                    Err(error) => Err(error),
                },
                None => Err(EngineError::Rule(format!(
                    "no handler runs jobs of kind `{other}` in this build"
                ))),
            },
        };
        let kind = job.kind.clone();
        match result {
            Ok(Done::Completed) => {
                let latency =
                    (self.clock.now() - job.created_at).num_milliseconds() as f64 / 1000.0;
                metrics::histogram!(metric_names::JOB_LATENCY, "kind" => kind.clone())
                    .record(latency.max(0.0));
                metrics::counter!(metric_names::JOBS, "kind" => kind, "outcome" => "succeeded")
                    .increment(1);
            }
            Ok(Done::Parked) => {
                metrics::counter!(metric_names::JOBS, "kind" => kind, "outcome" => "paused")
                    .increment(1);
            }
            Err(error) => self.record_failure(&job, &error).await,
        }
    }

    /// Marks a job done, unless another worker took it over.
    /// Runs the controls for a queued controls job, one run at a time in this process. A run
    /// reads every change committed before it starts, so a job queued for changes that were
    /// committed before the last successful run started completes without running the
    /// controls again. Over a large firm a run takes minutes while changes keep queueing
    /// jobs; without this, the jobs would pile up and run side by side.
    async fn run_controls_job(self: &Arc<Self>, job: &Job) -> Result<Done, EngineError> {
        let mut gate = self.controls_gate.lock().await;
        // A change is stamped before its transaction commits, so a job counts as covered
        // only when its changes were stamped one debounce period before the run started.
        let margin = chrono::Duration::from_std(self.config.controls_debounce)
            .unwrap_or(chrono::Duration::seconds(5));
        if gate
            .last_start
            .is_some_and(|started| job.run_at + margin <= started)
        {
            tracing::debug!(job = %job.id, "controls job covered by an earlier run");
            return self.complete(job).await;
        }
        let started = self.clock.now();
        gate.runs += 1;
        self.run_controls().await?;
        gate.last_start = Some(started);
        self.complete(job).await
    }

    /// Returns how many controls runs this process started from queued controls jobs.
    pub async fn controls_runs(&self) -> u64 {
        self.controls_gate.lock().await.runs
    }

    async fn complete(&self, job: &Job) -> Result<Done, EngineError> {
        let (id, attempt, now) = (job.id.clone(), job.attempts, self.clock.now());
        let done = steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            tx.complete_job(&id, attempt, now)
        })
        .await?;
        if !done {
            tracing::warn!(job = %job.id, "another worker took the job over before it finished");
        }
        Ok(Done::Completed)
    }

    async fn execute_rule_job(&self, job: &Job) -> Result<Done, EngineError> {
        let mut payload: RuleJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| EngineError::Rule(format!("the job payload is invalid: {e}")))?;
        // A job resumed after an `await` records how the wait ended.
        if let Some(index) = payload.awaiting.take() {
            let outcome = match payload.awaited.take() {
                Some(event) => json!({"event": event}),
                None => json!({"timed_out": true}),
            };
            let effect = payload.actions.get(index).map(|a| a.effect.clone());
            payload
                .outcomes
                .push(json!({"action": "await", "effect": effect, "outcome": outcome}));
        }
        loop {
            let (saved, progress) = self.run_local_segment(job, payload).await?;
            payload = saved;
            if progress == Progress::Finished {
                return Ok(Done::Completed);
            }
            let index = payload.next;
            let action = payload.actions[index].clone();
            let now = self.clock.now();
            match &action.effect {
                Effect::Http {
                    method,
                    url,
                    headers,
                    body,
                    timeout_seconds,
                } => {
                    let call = HttpCall {
                        method: method.clone(),
                        url: url.clone(),
                        headers: headers.clone(),
                        body: body.clone(),
                        timeout: Duration::from_secs(*timeout_seconds),
                        idempotency_key: format!("{}/{index}", job.key),
                    };
                    let reply = self
                        .call_http(call)
                        .await
                        .map_err(|e| at_action(e, index, &action.action))?;
                    payload.outcomes.push(
                        json!({"action": action.action, "effect": action.effect, "outcome": reply}),
                    );
                    payload.next += 1;
                }
                Effect::Wait { until } if *until <= now => {
                    payload.outcomes.push(json!({"action": action.action, "effect": action.effect, "outcome": {"waited_until": until}}));
                    payload.next += 1;
                }
                Effect::Wait { until } => {
                    payload.outcomes.push(json!({"action": action.action, "effect": action.effect, "outcome": {"waited_until": until}}));
                    payload.next += 1;
                    return self
                        .park(job, &payload, JobState::Pending, *until, None)
                        .await;
                }
                Effect::Await {
                    event,
                    key,
                    timeout_at,
                } => {
                    payload.awaiting = Some(index);
                    payload.next += 1;
                    // Without a timeout the job waits until the event comes, however long.
                    let until =
                        timeout_at.unwrap_or_else(|| now + chrono::Duration::days(365 * 100));
                    let wait_key = crate::pipeline::wait_key(event, key);
                    return self
                        .park(job, &payload, JobState::Waiting, until, Some(wait_key))
                        .await;
                }
                other => {
                    return Err(EngineError::Rule(format!(
                        "step {} of job {} is local but was not run: {other:?}",
                        index + 1,
                        job.id
                    )));
                }
            }
        }
    }

    /// Runs the local steps from `payload.next` in one transaction; then completes the job and
    /// its run when nothing is left, or saves the progress.
    async fn run_local_segment(
        &self,
        job: &Job,
        payload: RuleJob,
    ) -> Result<(RuleJob, Progress), EngineError> {
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let now = self.clock.now();
        let job_id = job.id.clone();
        let attempt = job.attempts;
        let run_id = job.run_id.clone();
        steward_store::write(self.store.as_ref(), move |tx| {
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let mut progress_payload = payload.clone();
            let progress = run_local_steps(tx, &env, &mut progress_payload)?;
            let current = match progress {
                Progress::Finished => tx.complete_job(&job_id, attempt, now)?,
                Progress::Paused => {
                    let encoded = serde_json::to_value(&progress_payload)
                        .map_err(|e| EngineError::Rule(format!("cannot encode job: {e}")))?;
                    tx.save_job_progress(&job_id, attempt, &encoded)?
                }
            };
            if !current {
                // Another worker took the job over, and its attempt decides. Failing here
                // rolls these effects back, so they are never applied twice.
                return Err(EngineError::Store(StoreError::Conflict {
                    what: format!("job {job_id}"),
                }));
            }
            if progress == Progress::Finished
                && let Some(run_id) = &run_id
            {
                let outcomes = Value::Array(progress_payload.outcomes.clone());
                tx.finish_run(run_id, RunStatus::Succeeded, &outcomes, None, Some(now))?;
            }
            Ok((progress_payload, progress))
        })
        .await
    }

    /// Pauses a rule job until `until`, or until an event with `wait_key` arrives.
    async fn park(
        &self,
        job: &Job,
        payload: &RuleJob,
        state: JobState,
        until: DateTime<Utc>,
        wait_key: Option<String>,
    ) -> Result<Done, EngineError> {
        let encoded = serde_json::to_value(payload)
            .map_err(|e| EngineError::Rule(format!("cannot encode job: {e}")))?;
        let outcomes = Value::Array(payload.outcomes.clone());
        let (id, attempt, run_id, now) = (
            job.id.clone(),
            job.attempts,
            job.run_id.clone(),
            self.clock.now(),
        );
        steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            if !tx.park_job(
                &id,
                attempt,
                &encoded,
                state,
                until,
                wait_key.as_deref(),
                now,
            )? {
                return Err(StoreError::Conflict {
                    what: format!("job {id}"),
                });
            }
            if let Some(run_id) = &run_id {
                tx.finish_run(run_id, RunStatus::Waiting, &outcomes, None, None)?;
            }
            Ok(())
        })
        .await?;
        tracing::debug!(job = %job.id, %until, "job paused");
        Ok(Done::Parked)
    }

    async fn call_http(&self, call: HttpCall) -> Result<HttpReply, EngineError> {
        let Some(outbound) = self.outbound() else {
            return Err(EngineError::External {
                message: "this server has no HTTP client for `http` actions".into(),
                transient: false,
            });
        };
        // Paths can carry secrets, such as the token of an Odoo "On webhook" trigger, so
        // errors name only the method, host and port.
        let url = format!("{} {}", call.method, origin_of(&call.url));
        let reply = outbound.call(call).await?;
        match reply.status {
            200..=299 => Ok(reply),
            408 | 425 | 429 | 500..=599 => Err(EngineError::External {
                message: format!("{url} answered {}: {}", reply.status, reply.body),
                transient: true,
            }),
            status => Err(EngineError::External {
                message: format!(
                    "{url} answered {status}, which a retry will not change: {}",
                    reply.body
                ),
                transient: false,
            }),
        }
    }

    async fn record_failure(&self, job: &Job, error: &EngineError) {
        let now = self.clock.now();
        let retry = error.is_transient() && job.attempts < job.max_attempts;
        let retry_at: Option<DateTime<Utc>> = retry.then(|| {
            let delay = backoff(
                job.attempts,
                self.config.base_backoff,
                self.config.max_backoff,
            );
            now + chrono::Duration::from_std(delay).unwrap_or_default()
        });
        let message = error.to_string();
        if retry {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %message, "job failed; retrying");
            metrics::counter!(metric_names::JOBS, "kind" => job.kind.clone(), "outcome" => "retried").increment(1);
        } else {
            tracing::error!(job = %job.id, kind = %job.kind, attempt = job.attempts, %message, "job failed; moved to the dead-letter queue");
            metrics::counter!(metric_names::JOBS, "kind" => job.kind.clone(), "outcome" => "dead")
                .increment(1);
            metrics::counter!(metric_names::DEAD_LETTERS, "kind" => job.kind.clone()).increment(1);
        }
        let (id, run_id, attempt) = (job.id.clone(), job.run_id.clone(), job.attempts);
        let status = if retry {
            RunStatus::Retrying
        } else {
            RunStatus::Dead
        };
        let outcome = steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
            if !tx.fail_job(&id, attempt, &message, retry_at, now)? {
                return Ok(());
            }
            if let Some(run_id) = &run_id {
                let finished = (!retry).then_some(now);
                let actions = tx.run(run_id)?.map(|r| r.actions).unwrap_or(Value::Null);
                tx.finish_run(run_id, status, &actions, Some(&message), finished)?;
            }
            Ok(())
        })
        .await;
        if let Err(store_error) = outcome {
            // The lease expires and another attempt picks the job up.
            tracing::error!(job = %job.id, error = %store_error, "recording a job failure failed");
        }
        if let EngineError::Domain(domain @ steward_domain::DomainError::ApprovalRequired { .. }) =
            error
        {
            let rule = job
                .payload
                .get("rule_id")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let (rules, approvals, config) = (self.rules(), self.approvals(), self.config.clone());
            let domain = domain.clone();
            let audited = steward_store::write(self.store.as_ref(), move |tx| {
                let env = Env {
                    rules: &rules,
                    config: &config,
                    approvals: &approvals,
                    now,
                };
                crate::approvals::record_bypass(
                    tx,
                    &env,
                    &domain,
                    &steward_domain::Actor::rule(&rule),
                )
            })
            .await;
            if let Err(e) = audited {
                tracing::error!(job = %job.id, error = %e, "could not record a rejected bypass of an approval");
            }
        }
    }
}

/// The scheme, host and port of `url`, without its path or query.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_path_query_and_credentials() {
        assert_eq!(
            origin_of("http://127.0.0.1:8069/web/hook/6f1c-secret?x=1"),
            "http://127.0.0.1:8069"
        );
        assert_eq!(
            origin_of("https://user:pw@api.example.test/a"),
            "https://api.example.test"
        );
        assert_eq!(origin_of("localhost:9000/path"), "localhost:9000");
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..=10u32 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(max);
            for _ in 0..50 {
                let delay = backoff(attempt, base, max);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "attempt {attempt}: {delay:?} outside {full:?}"
                );
            }
        }
    }
}
