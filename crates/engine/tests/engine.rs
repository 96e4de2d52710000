//! The command path, rule dispatch and jobs, end to end on a real SQLite file.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use steward_domain::command::{ExternalKey, ExternalRef};
use steward_domain::{Actor, Command, CommandContext, Kind, ManualClock};
use steward_engine::{Engine, EngineConfig, EngineError};
use steward_rules::compile_sources;
use steward_store::{JobQuery, JobState, RecordQuery, RunQuery, RunStatus, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

struct Harness {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// An engine whose rule actions run inline, in the transaction of their event.
fn harness() -> Harness {
    harness_with(true)
}

/// An engine whose rule actions all wait for a worker, so tests can count jobs.
fn queued_harness() -> Harness {
    harness_with(false)
}

fn harness_with(inline_jobs: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new("2026-12-04T10:00:00Z".parse().unwrap()));
    let config = EngineConfig {
        controls_on_change: false,
        inline_jobs,
        ..EngineConfig::default()
    };
    Harness {
        engine: Engine::new(store, clock.clone(), config),
        clock,
        _dir: dir,
    }
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn user() -> CommandContext {
    CommandContext::new(Actor::user("tester"))
}

impl Harness {
    fn store(&self) -> &dyn Store {
        self.engine.store().as_ref()
    }

    async fn install(&self, text: &str) {
        let (rules, diagnostics) = compile_sources(&[("test.yaml".into(), text.into())]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        self.engine.install_file_rules(rules).await.unwrap();
    }

    async fn create(&self, kind: Kind, value: Value) -> String {
        let outcome = self
            .engine
            .execute(Command::create(kind, fields(value)), user())
            .await
            .unwrap();
        outcome.record.unwrap().id
    }

    async fn employee(&self, name: &str, manager: Option<&str>) -> String {
        let mut value = json!({"name": name});
        if let Some(manager) = manager {
            value["manager"] = json!(manager);
        }
        self.create(Kind::Employee, value).await
    }

    fn count(&self, kind: Kind) -> u64 {
        read(self.store(), move |tx| tx.count_records(kind, None)).unwrap()
    }

    fn events(&self) -> u64 {
        read(self.store(), |tx| tx.count_events()).unwrap()
    }
}

const SUBMIT_RULE: &str = r#"
rules:
  - id: review-submitted-expense
    trigger: { on: state, record: expense, state: submitted }
    condition: record.amount > 100
    actions:
      - activity:
          title: "Review {{ record.category }} expense of {{ record.employee.name }}"
          assignee: "= record.employee.manager"
          role: finance
"#;

async fn expense(h: &Harness, employee: &str, amount: &str) -> String {
    h.create(
        Kind::Expense,
        json!({"employee": employee, "date": "2026-12-03", "category": "Travel", "currency": "EUR", "amount": amount}),
    )
    .await
}

#[tokio::test]
async fn command_appends_one_event_per_real_change() {
    let h = harness();
    let ann = h.employee("Ann", None).await;
    assert_eq!(h.events(), 1);
    let same = Command::update(Kind::Employee, &ann, fields(json!({"name": "Ann"})));
    let outcome = h.engine.execute(same, user()).await.unwrap();
    assert!(outcome.event.is_none());
    assert_eq!(h.events(), 1, "rewriting the same value appends nothing");
    let renamed = Command::update(Kind::Employee, &ann, fields(json!({"name": "Ann Lee"})));
    let outcome = h.engine.execute(renamed, user()).await.unwrap();
    assert_eq!(outcome.record.unwrap().version, 2);
    assert_eq!(h.events(), 2);
}

#[tokio::test]
async fn invalid_commands_store_nothing() {
    let h = harness();
    let missing = steward_domain::new_id();
    let command = Command::create(
        Kind::Timesheet,
        fields(json!({"employee": missing, "date": "2026-12-01", "hours": "30"})),
    );
    let error = h.engine.execute(command, user()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("30 hours do not fit in one day"),
        "{message}"
    );
    assert_eq!(h.count(Kind::Timesheet), 0);
    assert_eq!(h.events(), 0);

    let command = Command::create(
        Kind::Timesheet,
        fields(json!({"employee": missing, "date": "2026-12-01", "hours": "3"})),
    );
    let message = h
        .engine
        .execute(command, user())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("no employee has id {missing}")),
        "{message}"
    );
}

#[tokio::test]
async fn rule_fires_once_per_transition_and_explains_itself() {
    let h = queued_harness();
    h.install(SUBMIT_RULE).await;
    let boss = h.employee("Marc", None).await;
    let ann = h.employee("Ann", Some(&boss)).await;
    let claim = expense(&h, &ann, "250.00").await;

    let submit = Command::transition(Kind::Expense, &claim, "submitted");
    let outcome = h.engine.execute(submit.clone(), user()).await.unwrap();
    assert_eq!(outcome.jobs, 1);
    // The same transition again changes nothing, so nothing fires.
    let again = h.engine.execute(submit, user()).await.unwrap();
    assert!(again.event.is_none());
    assert_eq!(h.engine.drain().await.unwrap(), 1);
    assert_eq!(h.engine.drain().await.unwrap(), 0, "nothing is left to run");

    let activities = read(h.store(), |tx| {
        tx.records(&RecordQuery {
            kind: Some(Kind::Activity),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(activities.items.len(), 1);
    let activity = &activities.items[0];
    assert_eq!(activity.text("title"), Some("Review Travel expense of Ann"));
    assert_eq!(activity.ref_id("assignee"), Some(boss.as_str()));
    assert_eq!(activity.text("subject_id"), Some(claim.as_str()));

    let event_id = outcome.event.unwrap().id;
    let runs = read(h.store(), move |tx| {
        tx.runs(&RunQuery {
            event_id: Some(event_id),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(runs.items.len(), 1);
    let run = &runs.items[0];
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.rule_version, 1);
    assert_eq!(run.result, json!(true));
    assert_eq!(run.inputs, json!({"record.amount": "250.00"}));
    assert_eq!(run.actions[0]["outcome"]["created"], json!(true));
}

#[tokio::test]
async fn inline_actions_commit_with_their_event() {
    let h = harness();
    h.install(SUBMIT_RULE).await;
    let boss = h.employee("Marc", None).await;
    let ann = h.employee("Ann", Some(&boss)).await;
    let claim = expense(&h, &ann, "250.00").await;
    let outcome = h
        .engine
        .execute(
            Command::transition(Kind::Expense, &claim, "submitted"),
            user(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.jobs, 0, "nothing waits for a worker");
    assert_eq!(
        h.count(Kind::Activity),
        1,
        "the activity committed with the transition"
    );
    let event_id = outcome.event.unwrap().id;
    let runs = read(h.store(), move |tx| {
        tx.runs(&RunQuery {
            event_id: Some(event_id),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(runs.items[0].status, RunStatus::Succeeded);
    assert_eq!(runs.items[0].actions[0]["outcome"]["created"], json!(true));
    let jobs = read(h.store(), |tx| {
        tx.jobs(&JobQuery {
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert!(
        jobs.items.is_empty(),
        "a successful inline run leaves no job behind"
    );
}

#[tokio::test]
async fn inline_chain_stops_at_the_depth_limit() {
    let h = harness();
    h.install(
        r#"
rules:
  - id: ping
    trigger: { on: update, record: client, fields: [vat] }
    actions:
      - update: { fields: { phone: "= record.vat + '1'" } }
  - id: pong
    trigger: { on: update, record: client, fields: [phone] }
    actions:
      - update: { fields: { vat: "= record.phone + '2'" } }
"#,
    )
    .await;
    let client = h.create(Kind::Client, json!({"name": "Loop Inc"})).await;
    h.engine
        .execute(
            Command::update(Kind::Client, &client, fields(json!({"vat": "x"}))),
            user(),
        )
        .await
        .unwrap();
    let record = read(h.store(), move |tx| tx.record(Kind::Client, &client))
        .unwrap()
        .unwrap();
    assert_eq!(
        record.text("vat"),
        Some("x12121212"),
        "four round trips, then the limit"
    );
    let limited = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            status: Some(RunStatus::DepthLimited),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(limited.items.len(), 1);
}

#[tokio::test]
async fn inline_multi_action_failure_leaves_no_trace() {
    let h = harness();
    h.install(
        r#"
rules:
  - id: two-steps
    trigger: { on: create, record: client }
    actions:
      - update: { fields: { vat: "BE0123" } }
      - create: { record: activity, fields: { title: x, assignee: "= record.name" } }
"#,
    )
    .await;
    let client = h.create(Kind::Client, json!({"name": "Nobody"})).await;
    let record = read(h.store(), move |tx| tx.record(Kind::Client, &client))
        .unwrap()
        .unwrap();
    assert_eq!(
        record.text("vat"),
        None,
        "the first action rolled back with the second"
    );
    assert_eq!(record.version, 1);
    let dead = read(h.store(), |tx| {
        tx.jobs(&JobQuery {
            state: Some(JobState::Dead),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(dead.items.len(), 1);
    assert!(
        dead.items[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("action 2 (create) failed")
    );
}

#[tokio::test]
async fn false_condition_is_recorded_without_a_job() {
    let h = harness();
    h.install(SUBMIT_RULE).await;
    let ann = h.employee("Ann", None).await;
    let claim = expense(&h, &ann, "20.00").await;
    let outcome = h
        .engine
        .execute(
            Command::transition(Kind::Expense, &claim, "submitted"),
            user(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.jobs, 0);
    let runs = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(runs.items[0].status, RunStatus::Skipped);
    assert_eq!(runs.items[0].result, json!(false));
}

#[tokio::test]
async fn rule_does_not_retrigger_itself() {
    let h = queued_harness();
    h.install(
        r#"
rules:
  - id: stamp-updates
    trigger: { on: update, record: client }
    actions:
      - update: { fields: { vat: "= record.name + '-checked'" } }
"#,
    )
    .await;
    let client = h.create(Kind::Client, json!({"name": "Deco"})).await;
    h.engine
        .execute(
            Command::update(
                Kind::Client,
                &client,
                fields(json!({"name": "Deco Addict"})),
            ),
            user(),
        )
        .await
        .unwrap();
    assert_eq!(
        h.engine.drain().await.unwrap(),
        1,
        "its own update does not queue another run"
    );
    let record = read(h.store(), move |tx| tx.record(Kind::Client, &client))
        .unwrap()
        .unwrap();
    assert_eq!(record.text("vat"), Some("Deco Addict-checked"));
}

#[tokio::test]
async fn rule_chain_stops_at_the_depth_limit_with_a_finding() {
    let h = queued_harness();
    h.install(
        r#"
rules:
  - id: ping
    trigger: { on: update, record: client, fields: [vat] }
    actions:
      - update: { fields: { phone: "= record.vat + '1'" } }
  - id: pong
    trigger: { on: update, record: client, fields: [phone] }
    actions:
      - update: { fields: { vat: "= record.phone + '2'" } }
"#,
    )
    .await;
    let client = h.create(Kind::Client, json!({"name": "Loop Inc"})).await;
    h.engine
        .execute(
            Command::update(Kind::Client, &client, fields(json!({"vat": "x"}))),
            user(),
        )
        .await
        .unwrap();
    let ran = h.engine.drain().await.unwrap();
    assert_eq!(
        ran as u32,
        h.engine.config().max_depth,
        "one job per level until the limit"
    );
    let limited = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            status: Some(RunStatus::DepthLimited),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(limited.items.len(), 1);
    let findings = read(h.store(), |tx| {
        tx.findings(&steward_store::FindingQuery {
            control: Some("rule_chain".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(findings.items.len(), 1);
    let chain = findings.items[0].evidence["chain"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(chain.len() as u32, h.engine.config().max_depth + 1);
    assert_eq!(chain[0]["actor"], json!("user:tester"));
    assert!(
        findings.items[0]
            .message
            .contains("client.updated by rule:ping → client.updated by rule:pong")
    );
}

#[tokio::test]
async fn failing_action_goes_to_dead_letters_and_replays() {
    let h = harness();
    h.install(
        r#"
rules:
  - id: bad-assignee
    trigger: { on: create, record: client }
    actions:
      - create: { record: activity, fields: { title: "Call {{ record.name }}", assignee: "= record.name" } }
"#,
    )
    .await;
    h.create(Kind::Client, json!({"name": "Nobody"})).await;
    h.engine.drain().await.unwrap();
    let dead = read(h.store(), |tx| {
        tx.jobs(&JobQuery {
            state: Some(JobState::Dead),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(dead.items.len(), 1, "an invalid action is not retried");
    let job = &dead.items[0];
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("action 1 (create) failed"),
        "{:?}",
        job.last_error
    );
    assert_eq!(h.count(Kind::Activity), 0, "nothing half-written");

    assert!(h.engine.replay(&job.id).await.unwrap());
    h.engine.drain().await.unwrap();
    let id = job.id.clone();
    let replayed = read(h.store(), move |tx| tx.job(&id)).unwrap().unwrap();
    assert_eq!((replayed.state, replayed.replays), (JobState::Dead, 1));
}

#[tokio::test]
async fn upsert_mirrors_once_and_resolves_references() {
    let h = harness();
    let ctx = CommandContext::new(Actor::integration("odoo"));
    let upsert = |model: &str,
                  id: i64,
                  kind: Kind,
                  value: Value,
                  refs: Vec<(String, Option<ExternalRef>)>| Command::Upsert {
        kind,
        external: ExternalKey::new("odoo", model, id),
        source_version: Some("2026-12-04 15:23:38".into()),
        state: None,
        fields: fields(value),
        attributes: Map::new(),
        external_refs: refs,
    };
    let manager_ref = |id| {
        vec![(
            "manager".to_string(),
            Some(ExternalRef::One(ExternalKey::new(
                "odoo",
                "hr.employee",
                id,
            ))),
        )]
    };
    let boss = upsert(
        "hr.employee",
        1,
        Kind::Employee,
        json!({"name": "Mitchell Admin"}),
        vec![("manager".into(), None)],
    );
    let worker = upsert(
        "hr.employee",
        2,
        Kind::Employee,
        json!({"name": "Jeffrey Kelly"}),
        manager_ref(1),
    );
    let orphan = upsert(
        "hr.employee",
        3,
        Kind::Employee,
        json!({"name": "Marc Demo"}),
        manager_ref(99),
    );
    for command in [boss.clone(), worker.clone(), orphan.clone()] {
        h.engine.execute(command, ctx.clone()).await.unwrap();
    }
    let events = h.events();
    for command in [boss, worker, orphan] {
        let outcome = h.engine.execute(command, ctx.clone()).await.unwrap();
        assert!(
            outcome.event.is_none(),
            "a second mirror of the same data changes nothing"
        );
    }
    assert_eq!(h.events(), events);
    assert_eq!(h.count(Kind::Employee), 3);

    let people = read(h.store(), |tx| {
        tx.records(&RecordQuery {
            kind: Some(Kind::Employee),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    let by_name = |name: &str| people.iter().find(|p| p.title() == name).unwrap().clone();
    assert_eq!(
        by_name("Jeffrey Kelly").ref_id("manager"),
        Some(by_name("Mitchell Admin").id.as_str())
    );
    let marc = by_name("Marc Demo");
    assert_eq!(marc.ref_id("manager"), None);
    assert_eq!(
        marc.attributes["unresolved_refs"],
        json!({"manager": "odoo hr.employee 99"})
    );
}

#[tokio::test]
async fn queued_controls_jobs_share_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new("2026-12-04T10:00:00Z".parse().unwrap()));
    let engine = Engine::new(store, clock.clone(), EngineConfig::default());
    let employee = |name: &str| {
        let engine = Arc::clone(&engine);
        let name = name.to_string();
        async move {
            engine
                .execute(
                    Command::create(Kind::Employee, fields(json!({"name": name}))),
                    user(),
                )
                .await
                .unwrap();
        }
    };

    // Three changes in three debounce periods queue three controls jobs.
    for name in ["Ana", "Ben", "Cleo"] {
        employee(name).await;
        clock.advance(chrono::Duration::seconds(6));
    }
    let queued = |engine: &Engine| {
        read(engine.store().as_ref(), |tx| {
            tx.jobs(&steward_store::JobQuery {
                kind: Some("controls".into()),
                limit: 50,
                ..Default::default()
            })
        })
        .unwrap()
        .items
    };
    assert_eq!(queued(&engine).len(), 3);

    // Run when all three are due: the first run covers every change, so it runs once.
    clock.advance(chrono::Duration::seconds(30));
    engine.drain().await.unwrap();
    assert_eq!(engine.controls_runs().await, 1);
    assert!(
        queued(&engine)
            .iter()
            .all(|j| j.state.as_str() == "succeeded"),
        "{:?}",
        queued(&engine)
    );

    // A change after that run started is not covered and gets a run of its own.
    employee("Dan").await;
    clock.advance(chrono::Duration::seconds(30));
    engine.drain().await.unwrap();
    assert_eq!(engine.controls_runs().await, 2);
}

#[tokio::test]
async fn controls_raise_and_resolve_findings() {
    let h = harness();
    let admin = h.employee("Mitchell Admin", None).await;
    let mut entries = Vec::new();
    for hours in ["12", "8"] {
        let id = h
            .create(
                Kind::Timesheet,
                json!({"employee": admin, "date": "2026-11-26", "hours": hours}),
            )
            .await;
        entries.push(id);
    }
    let report = h.engine.run_controls().await.unwrap();
    assert_eq!(report.open["daily_hours"], 1);
    assert_eq!(
        report.open["time_on_closed_or_missing_project"], 1,
        "the entries name no project"
    );
    let findings = read(h.store(), |tx| {
        tx.findings(&steward_store::FindingQuery {
            control: Some("daily_hours".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(findings.items.len(), 1);
    assert_eq!(
        findings.items[0].message,
        "Mitchell Admin logged 20 hours on Thursday 2026-11-26, over the 8 hours of a standard 8-hour day"
    );
    assert_eq!(findings.items[0].evidence["entries"], json!(2));

    let fix = Command::update(Kind::Timesheet, &entries[0], fields(json!({"hours": "0"})));
    h.engine.execute(fix, user()).await.unwrap();
    let report = h.engine.run_controls().await.unwrap();
    assert_eq!(report.resolved, 1);
    let open = read(h.store(), |tx| {
        tx.findings(&steward_store::FindingQuery {
            state: Some("open".into()),
            control: Some("daily_hours".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert!(open.items.is_empty());
}

#[tokio::test]
async fn version_conflicts_are_reported() {
    let h = harness();
    let ann = h.employee("Ann", None).await;
    let stale = Command::Update {
        kind: Kind::Employee,
        id: ann,
        expected_version: Some(5),
        state: None,
        fields: fields(json!({"name": "Ann B"})),
        attributes: Map::new(),
    };
    let error = h.engine.execute(stale, user()).await.unwrap_err();
    assert!(matches!(
        error,
        EngineError::Domain(steward_domain::DomainError::VersionConflict { .. })
    ));
}

const WAIT_RULE: &str = r#"
rules:
  - id: chase-unsubmitted
    trigger: { on: create, record: timesheet }
    actions:
      - wait: { for: 2 days }
      - notify: { message: "Submit your entry of {{ record.date }}", recipient: "= record.employee" }
"#;

#[tokio::test]
async fn wait_step_resumes_when_due() {
    let h = harness();
    h.install(WAIT_RULE).await;
    let ann = h.employee("Ann", None).await;
    h.create(
        Kind::Timesheet,
        json!({"employee": ann, "date": "2026-12-03", "hours": "4"}),
    )
    .await;
    assert_eq!(
        h.engine.drain().await.unwrap(),
        1,
        "the job runs up to the wait"
    );
    assert_eq!(h.count(Kind::Notification), 0);
    let runs = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(runs.items[0].status, RunStatus::Waiting);

    h.clock.advance(chrono::Duration::hours(47));
    assert_eq!(h.engine.drain().await.unwrap(), 0, "not due yet");
    h.clock.advance(chrono::Duration::hours(2));
    assert_eq!(h.engine.drain().await.unwrap(), 1);
    assert_eq!(
        h.count(Kind::Notification),
        1,
        "the step after the wait ran once"
    );
    let runs = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(runs.items[0].status, RunStatus::Succeeded);
    assert_eq!(
        runs.items[0].actions.as_array().unwrap().len(),
        2,
        "{}",
        runs.items[0].actions
    );
    assert_eq!(h.engine.drain().await.unwrap(), 0);
}

const AWAIT_RULE: &str = r#"
rules:
  - id: wait-for-approval
    trigger: { on: state, record: expense, state: submitted }
    actions:
      - await: { event: expense.approved_elsewhere, timeout: 3 days }
      - update: { fields: { policy_result: "= event.name" } }
"#;

#[tokio::test]
async fn await_step_resumes_on_its_event_only() {
    let h = harness();
    h.install(AWAIT_RULE).await;
    let ann = h.employee("Ann", None).await;
    let first = expense(&h, &ann, "80.00").await;
    let second = expense(&h, &ann, "90.00").await;
    for id in [&first, &second] {
        h.engine
            .execute(Command::transition(Kind::Expense, id, "submitted"), user())
            .await
            .unwrap();
    }
    assert_eq!(
        h.engine.drain().await.unwrap(),
        2,
        "both jobs run up to the await"
    );
    let stats = read(h.store(), |tx| tx.queue_stats(chrono::Utc::now())).unwrap();
    assert_eq!(stats.waiting, 2);

    let emit = Command::Emit {
        name: "expense.approved_elsewhere".into(),
        record: Some(steward_domain::RecordRef::new(Kind::Expense, first.clone())),
        data: Value::Null,
    };
    h.engine.execute(emit, user()).await.unwrap();
    assert_eq!(
        h.engine.drain().await.unwrap(),
        1,
        "only the job about that expense wakes"
    );
    let (f, s) = (first.clone(), second.clone());
    let woke = read(h.store(), move |tx| tx.record(Kind::Expense, &f))
        .unwrap()
        .unwrap();
    assert_eq!(
        woke.text("policy_result"),
        Some("expense.updated"),
        "the update ran after the wait"
    );
    let still = read(h.store(), move |tx| tx.record(Kind::Expense, &s))
        .unwrap()
        .unwrap();
    assert_eq!(still.text("policy_result"), None);

    h.clock
        .advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
    assert_eq!(
        h.engine.drain().await.unwrap(),
        1,
        "the other job times out and goes on"
    );
    let timed_out = read(h.store(), move |tx| tx.record(Kind::Expense, &second))
        .unwrap()
        .unwrap();
    assert!(timed_out.text("policy_result").is_some());
    let runs = read(h.store(), |tx| {
        tx.runs(&RunQuery {
            status: Some(RunStatus::Succeeded),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    let outcomes: Vec<String> = runs
        .items
        .iter()
        .map(|r| r.actions[0]["outcome"].to_string())
        .collect();
    assert!(
        outcomes.iter().any(|o| o.contains("timed_out")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| o.contains("\"event\"")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn idle_worker_makes_no_writes() {
    let h = harness();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(h.engine.clone().run_worker(stopped));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = *h.engine.store().commits().borrow();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after = *h.engine.store().commits().borrow();
    assert_eq!(
        after,
        before,
        "an idle worker committed {} times",
        after - before
    );
    stop.send(true).unwrap();
    worker.await.unwrap();
}

#[tokio::test]
async fn simulation_replays_history_without_effects() {
    let h = harness();
    h.install(SUBMIT_RULE).await;
    let boss = h.employee("Marc", None).await;
    let ann = h.employee("Ann", Some(&boss)).await;
    for amount in ["50.00", "150.00", "250.00", "450.00"] {
        let claim = expense(&h, &ann, amount).await;
        h.engine
            .execute(
                Command::transition(Kind::Expense, &claim, "submitted"),
                user(),
            )
            .await
            .unwrap();
    }
    // Raise an amount after submission: the simulation must judge each event on the record as
    // it was then, not as it is now.
    let activities_before = h.count(Kind::Activity);
    let events_before = h.events();

    let changed = SUBMIT_RULE.replace("record.amount > 100", "record.amount > 200");
    let (rules, diagnostics) = compile_sources(&[("candidate.yaml".into(), changed)]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let since = "2026-12-01T00:00:00Z".parse().unwrap();
    let report = h.engine.simulate(rules, since).await.unwrap();
    let rule = &report.rules[0];
    assert_eq!(rule.matched, 4);
    assert_eq!(rule.would_run, 2, "only 250 and 450 are above 200");
    assert_eq!(rule.actions["activity"], 2);
    let installed = rule.installed.as_ref().unwrap();
    assert_eq!(
        installed.ran, 3,
        "the installed rule acted on 150, 250 and 450"
    );
    assert_eq!(installed.only_installed, 1);
    assert_eq!(installed.only_candidate, 0);
    assert_eq!(
        rule.samples[0]["inputs"],
        json!({"record.amount": "250.00"})
    );
    assert_eq!(
        h.count(Kind::Activity),
        activities_before,
        "a simulation has no effects"
    );
    assert_eq!(h.events(), events_before);
}

/// A job handler that counts its runs and takes `millis` of real time.
struct Slow {
    runs: Arc<std::sync::atomic::AtomicUsize>,
    millis: u64,
}

impl steward_engine::outbound::JobHandler for Slow {
    fn run<'a>(
        &'a self,
        _engine: &'a Arc<Engine>,
        _job: &'a steward_store::Job,
    ) -> steward_engine::outbound::BoxFuture<'a, Result<Value, EngineError>> {
        Box::pin(async move {
            self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(self.millis)).await;
            Ok(json!({}))
        })
    }
}

#[tokio::test]
async fn long_job_keeps_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new("2026-12-04T10:00:00Z".parse().unwrap()));
    let config = EngineConfig {
        controls_on_change: false,
        lease: std::time::Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, clock.clone(), config);
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    engine.register_handler(
        "slow",
        Arc::new(Slow {
            runs: Arc::clone(&runs),
            millis: 1_000,
        }),
    );
    let now = engine.clock().now();
    let job = steward_store::Job {
        id: steward_domain::new_id(),
        key: "slow/1".into(),
        kind: "slow".into(),
        run_id: None,
        payload: json!({}),
        state: JobState::Pending,
        attempts: 0,
        max_attempts: 3,
        run_at: now,
        lease_until: None,
        last_error: None,
        replays: 0,
        created_at: now,
        updated_at: now,
    };
    let id = job.id.clone();
    steward_store::write(engine.store().as_ref(), move |tx| tx.insert_job(&job))
        .await
        .unwrap();

    // One worker runs the job for a second, three leases long. Meanwhile a second worker
    // keeps looking for due jobs and expired leases while the clock moves with real time.
    let first = tokio::spawn({
        let engine = Arc::clone(&engine);
        async move { engine.run_due_jobs().await.unwrap() }
    });
    while !first.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        clock.advance(chrono::Duration::milliseconds(50));
        engine.run_due_jobs().await.unwrap();
    }
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    let stored = read(engine.store().as_ref(), move |tx| tx.job(&id))
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, JobState::Succeeded);
    assert_eq!(stored.attempts, 1, "no second claim took the job over");
}
