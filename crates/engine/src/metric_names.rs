//! Metric names, each with its unit in the name and its labels.

/// Counter, labels `name`: events appended.
pub const EVENTS: &str = "steward_events_total";
/// Counter, labels `rule`, `status`: rule runs by outcome.
pub const RULE_RUNS: &str = "steward_rule_runs_total";
/// Counter, labels `kind`, `outcome` (`succeeded`, `retried`, `dead`): job attempts.
pub const JOBS: &str = "steward_jobs_total";
/// Histogram in seconds, label `kind`: from a job's creation to its successful end.
pub const JOB_LATENCY: &str = "steward_job_latency_seconds";
/// Counter, label `kind`: jobs moved to the dead-letter queue.
pub const DEAD_LETTERS: &str = "steward_dead_letters_total";
/// Counter, label `kind`: dead jobs replayed by an operator.
pub const REPLAYS: &str = "steward_replays_total";
/// Counter, labels `control`, `severity`: findings opened.
pub const FINDINGS_OPENED: &str = "steward_findings_opened_total";
/// Counter, label `event`: reminders and escalations the controls sent.
pub const CONTROL_STEPS: &str = "steward_control_steps_total";
