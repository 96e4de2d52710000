//! Workers: claim due jobs, run them, and record success, a retry with backoff, or a dead
//! letter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_store::{Job, RunStatus, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Engine;
use crate::error::EngineError;
use crate::metric_names;
use crate::pipeline::{CONTROLS_JOB, Env, RULE_JOB, RuleJob, run_actions};

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

impl Engine {
    /// Runs jobs until `shutdown` turns true. Wakes on every commit and at least every poll
    /// interval, so new jobs start at once and retries start when due.
    pub async fn run_worker(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.store.commits();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let ran = match self.run_due_jobs().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::error!(%error, "claiming jobs failed");
                    0
                }
            };
            if ran > 0 {
                continue;
            }
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
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
        let mut running = JoinSet::new();
        for job in jobs {
            let engine = Arc::clone(self);
            running.spawn(async move { engine.execute_job(job).await });
        }
        while running.join_next().await.is_some() {}
        Ok(count)
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
            CONTROLS_JOB => self.run_controls().await.map(|_| ()),
            other => Err(EngineError::Rule(format!("unknown job kind `{other}`"))),
        };
        match result {
            Ok(()) => {
                let latency =
                    (self.clock.now() - job.created_at).num_milliseconds() as f64 / 1000.0;
                metrics::histogram!(metric_names::JOB_LATENCY, "kind" => job.kind.clone())
                    .record(latency.max(0.0));
                metrics::counter!(metric_names::JOBS, "kind" => job.kind.clone(), "outcome" => "succeeded").increment(1);
                if job.kind == CONTROLS_JOB {
                    let (id, attempt, now) = (job.id.clone(), job.attempts, self.clock.now());
                    if let Err(error) =
                        steward_store::write::<_, StoreError, _>(self.store.as_ref(), move |tx| {
                            tx.complete_job(&id, attempt, now)
                        })
                        .await
                    {
                        tracing::error!(job = %job.id, %error, "recording the end of a controls run failed");
                    }
                }
            }
            Err(error) => self.record_failure(&job, &error).await,
        }
    }

    async fn execute_rule_job(&self, job: &Job) -> Result<(), EngineError> {
        let payload: RuleJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| EngineError::Rule(format!("the job payload is invalid: {e}")))?;
        let rules = self.rules();
        let config = self.config.clone();
        let now = self.clock.now();
        let job_id = job.id.clone();
        let attempt = job.attempts;
        let run_id = job.run_id.clone();
        steward_store::write(self.store.as_ref(), move |tx| {
            let env = Env {
                rules: &rules,
                config: &config,
                now,
            };
            let outcomes = run_actions(tx, &env, &payload)?;
            if !tx.complete_job(&job_id, attempt, now)? {
                // Another worker took the job over, and its attempt decides. Failing here
                // rolls these effects back, so they are never applied twice.
                let what = format!("job {job_id}");
                return Err(EngineError::Store(StoreError::Conflict { what }));
            }
            if let Some(run_id) = &run_id {
                tx.finish_run(
                    run_id,
                    RunStatus::Succeeded,
                    &Value::Array(outcomes),
                    None,
                    Some(now),
                )?;
            }
            Ok(())
        })
        .await
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
