use std::time::Duration;

/// Settings of the engine. The defaults suit one server on SQLite.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Maximum length of a chain of rules triggering rules. The rule that would go deeper
    /// does not run, and a finding shows the chain.
    pub max_depth: u32,
    /// Attempts of a job before it goes to the dead-letter queue.
    pub max_attempts: u32,
    /// Delay before the first retry; each later retry doubles it, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a worker owns a claimed job before another worker may take it over.
    pub lease: Duration,
    /// Jobs claimed at once by one worker.
    pub claim_batch: usize,
    /// How often an idle worker looks for due jobs when no commit woke it.
    pub poll_interval: Duration,
    /// Controls run at most once per this period after relevant records change.
    pub controls_debounce: Duration,
    /// Whether changes to time, expenses, people and projects schedule the controls.
    pub controls_on_change: bool,
    /// Whether a rule's actions that touch only Steward's own records run at once, in the
    /// transaction of the event that triggered them. A failed attempt becomes a queued job
    /// that workers retry. Off, every rule run waits for a worker.
    pub inline_jobs: bool,
    /// Longest the scheduler sleeps; it wakes earlier at every due instant and after commits.
    pub scheduler_interval: Duration,
    /// How late a schedule occurrence may start and still count as on time; older ones follow
    /// the schedule's catch-up policy.
    pub schedule_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_depth: 8,
            max_attempts: 8,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            claim_batch: 256,
            poll_interval: Duration::from_millis(500),
            controls_debounce: Duration::from_secs(5),
            controls_on_change: true,
            inline_jobs: true,
            scheduler_interval: Duration::from_secs(30),
            schedule_grace: Duration::from_secs(60),
        }
    }
}
