//! Time triggers and schedules, on a clock the tests move.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use steward_domain::{Actor, Command, CommandContext, Kind, ManualClock};
use steward_engine::{Engine, EngineConfig};
use steward_rules::compile_sources;
use steward_store::schedule::Occurrence;
use steward_store::{EventQuery, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

struct Harness {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn harness(start: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let engine_and_clock = engine_on(&dir, start);
    Harness {
        engine: engine_and_clock.0,
        clock: engine_and_clock.1,
        dir,
    }
}

fn engine_on(dir: &tempfile::TempDir, start: &str) -> (Arc<Engine>, Arc<ManualClock>) {
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new(utc(start)));
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    (Engine::new(store, clock.clone(), config), clock)
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

impl Harness {
    async fn install(&self, text: &str) {
        let (rules, diagnostics) = compile_sources(&[("test.yaml".into(), text.into())]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        self.engine.install_file_rules(rules).await.unwrap();
    }

    async fn at(&self, instant: &str) -> steward_engine::scheduler::TickReport {
        self.clock.set(utc(instant));
        self.engine.scheduler_tick().await.unwrap()
    }

    async fn create(&self, kind: Kind, value: Value) -> String {
        let context = CommandContext::new(Actor::user("tester"));
        self.engine
            .execute(Command::create(kind, fields(value)), context)
            .await
            .unwrap()
            .record
            .unwrap()
            .id
    }

    fn occurrences(&self, rule: &str) -> Vec<Occurrence> {
        let id = rule.to_string();
        let mut list = read(self.engine.store().as_ref(), move |tx| {
            tx.schedule().occurrences(&id, 1000)
        })
        .unwrap();
        list.reverse();
        list
    }

    /// Moves the clock to each due instant until `until`, ticking at each.
    async fn run_until(&self, until: &str) {
        let until = utc(until);
        loop {
            let Some(next) = self.engine.next_scheduler_instant().await.unwrap() else {
                break;
            };
            if next > until {
                break;
            }
            self.clock.set(next.max(self.clock_now()));
            self.engine.scheduler_tick().await.unwrap();
        }
        self.clock.set(until);
        self.engine.scheduler_tick().await.unwrap();
    }

    fn clock_now(&self) -> DateTime<Utc> {
        steward_domain::Clock::now(self.clock.as_ref())
    }

    fn notifications(&self) -> u64 {
        read(self.engine.store().as_ref(), |tx| {
            tx.count_records(Kind::Notification, None)
        })
        .unwrap()
    }
}

fn local(instants: &[DateTime<Utc>], zone: &str) -> Vec<String> {
    let tz: Tz = zone.parse().unwrap();
    instants
        .iter()
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .collect()
}

fn schedule_rule(id: &str, cron: &str, zone: &str, extra: &str) -> String {
    format!(
        "rules:\n  - id: {id}\n    trigger: {{ on: schedule, cron: \"{cron}\", timezone: {zone}{extra} }}\n    actions:\n      - notify: {{ message: \"{id} at {{{{ event.data.scheduled_at }}}}\", role: operations }}\n"
    )
}

#[tokio::test]
async fn brussels_eight_oclock_stays_local_across_both_changes() {
    let h = harness("2026-03-27T12:00:00Z");
    h.install(&schedule_rule(
        "morning",
        "0 8 * * *",
        "Europe/Brussels",
        "",
    ))
    .await;
    h.at("2026-03-27T12:00:00Z").await;
    h.run_until("2026-03-31T12:00:00Z").await;
    let spring: Vec<DateTime<Utc>> = h
        .occurrences("morning")
        .iter()
        .map(|o| o.scheduled_at)
        .collect();
    assert_eq!(
        local(&spring, "Europe/Brussels"),
        vec![
            "2026-03-28 08:00 CET",
            "2026-03-29 08:00 CEST",
            "2026-03-30 08:00 CEST",
            "2026-03-31 08:00 CEST",
        ]
    );
    assert!(
        h.occurrences("morning")
            .iter()
            .all(|o| o.state == "finished")
    );

    let h = harness("2026-10-23T12:00:00Z");
    h.install(&schedule_rule(
        "morning",
        "0 8 * * *",
        "Europe/Brussels",
        "",
    ))
    .await;
    h.at("2026-10-23T12:00:00Z").await;
    h.run_until("2026-10-26T12:00:00Z").await;
    let autumn: Vec<DateTime<Utc>> = h
        .occurrences("morning")
        .iter()
        .map(|o| o.scheduled_at)
        .collect();
    assert_eq!(
        local(&autumn, "Europe/Brussels"),
        vec![
            "2026-10-24 08:00 CEST",
            "2026-10-25 08:00 CET",
            "2026-10-26 08:00 CET",
        ]
    );
    assert_eq!(autumn[1], utc("2026-10-25T07:00:00Z"));
    assert!(
        h.occurrences("morning")
            .iter()
            .all(|o| o.state == "finished")
    );
}

#[tokio::test]
async fn berlin_half_past_two_runs_once_on_both_change_days() {
    let h = harness("2026-03-28T12:00:00Z");
    h.install(&schedule_rule("night", "30 2 * * *", "Europe/Berlin", ""))
        .await;
    h.at("2026-03-28T12:00:00Z").await;
    h.run_until("2026-03-29T23:00:00Z").await;
    let spring = h.occurrences("night");
    assert_eq!(spring.len(), 1, "{spring:?}");
    assert_eq!(
        local(&[spring[0].scheduled_at], "Europe/Berlin"),
        vec!["2026-03-29 03:00 CEST"]
    );
    assert_eq!(h.notifications(), 1);

    let h = harness("2026-10-24T12:00:00Z");
    h.install(&schedule_rule("night", "30 2 * * *", "Europe/Berlin", ""))
        .await;
    h.at("2026-10-24T12:00:00Z").await;
    h.run_until("2026-10-25T23:00:00Z").await;
    let autumn = h.occurrences("night");
    assert_eq!(autumn.len(), 1, "once in the repeated hour: {autumn:?}");
    assert_eq!(
        autumn[0].scheduled_at,
        utc("2026-10-25T00:30:00Z"),
        "02:30 CEST, the first pass"
    );
    assert_eq!(h.notifications(), 1);
}

/// An hourly job whose engine is down from 10:55 to 13:05 under one catch-up policy: the
/// states of the 11:00, 12:00, 13:00 and 14:00 occurrences.
async fn hourly_with_downtime(policy: &str) -> Vec<(String, String)> {
    let h = harness("2026-12-04T09:30:00Z");
    h.install(&schedule_rule(
        "hourly",
        "0 * * * *",
        "UTC",
        &format!(", catch_up: {policy}"),
    ))
    .await;
    h.at("2026-12-04T09:30:00Z").await;
    h.run_until("2026-12-04T10:55:00Z").await;
    h.at("2026-12-04T13:05:00Z").await;
    h.run_until("2026-12-04T14:30:00Z").await;
    h.occurrences("hourly")
        .iter()
        .map(|o| (o.scheduled_at.format("%H:%M").to_string(), o.state.clone()))
        .collect()
}

#[tokio::test]
async fn downtime_follows_the_catch_up_policy() {
    let pairs = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hourly_with_downtime("skip").await,
        pairs(&[
            ("10:00", "finished"),
            ("11:00", "missed"),
            ("12:00", "missed"),
            ("13:00", "missed"),
            ("14:00", "finished"),
        ])
    );
    assert_eq!(
        hourly_with_downtime("once").await,
        pairs(&[
            ("10:00", "finished"),
            ("11:00", "missed"),
            ("12:00", "missed"),
            ("13:00", "finished"),
            ("14:00", "finished"),
        ])
    );
    assert_eq!(
        hourly_with_downtime("all").await,
        pairs(&[
            ("10:00", "finished"),
            ("11:00", "finished"),
            ("12:00", "finished"),
            ("13:00", "finished"),
            ("14:00", "finished"),
        ])
    );
}

#[tokio::test]
async fn two_processes_run_each_instant_once() {
    let h = harness("2026-12-04T09:30:00Z");
    h.install(&schedule_rule("hourly", "0 * * * *", "UTC", ""))
        .await;
    h.at("2026-12-04T09:30:00Z").await;
    let (other, other_clock) = engine_on(&h.dir, "2026-12-04T09:30:00Z");
    other.reload_rules().await.unwrap();
    for instant in [
        "2026-12-04T10:00:00Z",
        "2026-12-04T11:00:00Z",
        "2026-12-04T11:00:00.5Z",
    ] {
        h.clock.set(utc(instant));
        other_clock.set(utc(instant));
        let (a, b) = tokio::join!(h.engine.scheduler_tick(), other.scheduler_tick());
        a.unwrap();
        b.unwrap();
    }
    let occurrences = h.occurrences("hourly");
    assert_eq!(occurrences.len(), 2, "{occurrences:?}");
    assert_eq!(h.notifications(), 2, "each instant ran once");
}

#[tokio::test]
async fn each_instant_runs_the_version_current_then() {
    let h = harness("2026-12-04T09:30:00Z");
    h.install(&schedule_rule(
        "hourly",
        "0 * * * *",
        "UTC",
        ", catch_up: all",
    ))
    .await;
    h.at("2026-12-04T09:30:00Z").await;
    // Steward is down from 09:30; version 2 is installed at 11:30, and the engine comes back
    // at 12:10.
    h.clock.set(utc("2026-12-04T11:30:00Z"));
    h.install(&schedule_rule(
        "hourly",
        "0 * * * *",
        "UTC",
        ", catch_up: all, overlap: allow",
    ))
    .await;
    h.at("2026-12-04T12:10:00Z").await;
    let versions: Vec<(String, i64)> = h
        .occurrences("hourly")
        .iter()
        .map(|o| (o.scheduled_at.format("%H:%M").to_string(), o.rule_version))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("10:00".to_string(), 1),
            ("11:00".to_string(), 1),
            ("12:00".to_string(), 2)
        ]
    );
}

#[tokio::test]
async fn overlap_policies_skip_buffer_or_allow() {
    for (policy, expected) in [
        ("skip", vec!["started", "skipped", "skipped"]),
        ("buffer", vec!["started", "buffered", "skipped"]),
        ("allow", vec!["started", "started", "started"]),
    ] {
        let h = harness("2026-12-04T09:30:00Z");
        // The wait keeps each run going for three hours.
        let rule = format!(
            "rules:\n  - id: slow\n    trigger: {{ on: schedule, cron: \"0 * * * *\", timezone: UTC, overlap: {policy} }}\n    actions:\n      - wait: {{ for: 3 hours }}\n      - emit: {{ event: slow.done }}\n"
        );
        h.install(&rule).await;
        h.at("2026-12-04T09:30:00Z").await;
        for instant in [
            "2026-12-04T10:00:00Z",
            "2026-12-04T11:00:00Z",
            "2026-12-04T12:00:00Z",
        ] {
            h.clock.set(utc(instant));
            h.engine.scheduler_tick().await.unwrap();
            h.engine.drain().await.unwrap();
        }
        let states: Vec<String> = h
            .occurrences("slow")
            .iter()
            .map(|o| o.state.clone())
            .collect();
        assert_eq!(states, expected, "overlap {policy}");
    }
}

const INVOICE_RULE: &str = r#"
rules:
  - id: payment-reminder
    trigger: { on: time, record: invoice, field: due_date, offset: "3 days", at: "09:00", timezone: Europe/Brussels }
    condition: record.state == 'released'
    actions:
      - notify: { message: "Invoice {{ record.number }} is 3 days overdue", role: finance }
"#;

async fn released_invoice(h: &Harness, due: &str) -> String {
    let client = h.create(Kind::Client, json!({"name": "Deco"})).await;
    let context = CommandContext::new(Actor::integration("erp"));
    let command = Command::Create {
        kind: Kind::Invoice,
        id: None,
        state: Some("released".into()),
        fields: fields(
            json!({"client": client, "currency": "EUR", "number": "INV-1", "due_date": due}),
        ),
        attributes: Map::new(),
    };
    h.engine
        .execute(command, context)
        .await
        .unwrap()
        .record
        .unwrap()
        .id
}

#[tokio::test]
async fn time_trigger_fires_once_at_its_instant() {
    let h = harness("2026-12-01T08:00:00Z");
    h.install(INVOICE_RULE).await;
    h.at("2026-12-01T08:00:00Z").await;
    released_invoice(&h, "2026-12-02").await;
    // Due 2026-12-05 09:00 in Brussels, 08:00 UTC.
    assert_eq!(
        h.engine.next_scheduler_instant().await.unwrap(),
        Some(utc("2026-12-05T08:00:00Z"))
    );
    assert_eq!(h.at("2026-12-05T07:59:59Z").await.timers_fired, 0);
    assert_eq!(h.at("2026-12-05T08:00:00Z").await.timers_fired, 1);
    assert_eq!(
        h.at("2026-12-05T08:00:30Z").await.timers_fired,
        0,
        "a fired timer stays fired"
    );
    assert_eq!(h.notifications(), 1);
    let fired = read(h.engine.store().as_ref(), |tx| {
        tx.events(&EventQuery {
            name: Some("timer.fired".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(fired.items.len(), 1);
    assert_eq!(fired.items[0].actor, Actor::system("scheduler"));
}

#[tokio::test]
async fn date_set_in_the_past_fires_at_the_next_tick_once() {
    let h = harness("2026-12-10T12:00:00Z");
    h.install(INVOICE_RULE).await;
    h.at("2026-12-10T12:00:00Z").await;
    let before = read(h.engine.store().as_ref(), |tx| tx.count_events()).unwrap();
    // Due three days ago: after the instant's own tick.
    released_invoice(&h, "2026-12-04").await;
    assert_eq!(h.at("2026-12-10T12:00:01Z").await.timers_fired, 1);
    assert_eq!(h.at("2026-12-10T12:00:02Z").await.timers_fired, 0);
    assert_eq!(h.notifications(), 1);
    let after = read(h.engine.store().as_ref(), |tx| tx.count_events()).unwrap();
    // The client, the invoice, the timer and the notification; the timer bookkeeping is no
    // update of the invoice.
    assert_eq!(after - before, 4);
}

#[tokio::test]
async fn moved_date_cancels_and_downtime_delays() {
    let h = harness("2026-12-01T08:00:00Z");
    h.install(INVOICE_RULE).await;
    h.at("2026-12-01T08:00:00Z").await;
    let invoice = released_invoice(&h, "2026-12-02").await;
    let context = CommandContext::new(Actor::integration("erp"));
    h.engine
        .execute(
            Command::update(
                Kind::Invoice,
                &invoice,
                fields(json!({"due_date": "2026-12-09"})),
            ),
            context,
        )
        .await
        .unwrap();
    // Down from 12-01 to 12-20: the moved instant fires once on return; the first never does.
    let report = h.at("2026-12-20T10:00:00Z").await;
    assert_eq!(report.timers_fired, 1);
    let id = invoice.clone();
    let timers = read(h.engine.store().as_ref(), move |tx| {
        tx.schedule()
            .timers_of(&steward_domain::RecordRef::new(Kind::Invoice, id))
    })
    .unwrap();
    let states: Vec<&str> = timers.iter().map(|t| t.state.as_str()).collect();
    assert_eq!(states, vec!["cancelled", "fired"]);
}

#[tokio::test]
async fn working_days_follow_the_calendar_and_backfill_skips_the_past() {
    let h = harness("2026-12-24T18:00:00Z");
    let calendar = h
        .create(
            Kind::WorkCalendar,
            json!({"name": "Office", "timezone": "Europe/Brussels",
        "week_hours": {"mon": "8", "tue": "8", "wed": "8", "thu": "8", "fri": "8"},
        "holidays": [{"date": "2026-12-25", "name": "Christmas"}]}),
        )
        .await;
    let ann = h
        .create(Kind::Employee, json!({"name": "Ann", "calendar": calendar}))
        .await;
    let old = h
        .create(
            Kind::Timesheet,
            json!({"employee": ann, "date": "2026-12-01", "hours": "2"}),
        )
        .await;
    let new = h
        .create(
            Kind::Timesheet,
            json!({"employee": ann, "date": "2026-12-24", "hours": "2"}),
        )
        .await;
    h.install(r#"
rules:
  - id: chase
    trigger: { on: time, record: timesheet, field: date, offset: "1 working day", at: "10:00", timezone: Europe/Brussels, calendar: record.employee.calendar }
    condition: record.state == 'draft'
    actions:
      - notify: { message: "Submit {{ record.date }}", recipient: "= record.employee" }
"#).await;
    let report = h.at("2026-12-24T18:00:00Z").await;
    assert_eq!(report.timers_backfilled, 2);
    assert_eq!(
        report.timers_fired, 0,
        "the entry of 12-01 was due before the rule existed"
    );
    // Thursday 12-24 plus one working day skips Christmas and the weekend: Monday 12-28.
    assert_eq!(
        h.engine.next_scheduler_instant().await.unwrap(),
        Some(utc("2026-12-28T09:00:00Z"))
    );
    h.run_until("2026-12-28T12:00:00Z").await;
    assert_eq!(h.notifications(), 1);
    let states = |id: String| {
        read(h.engine.store().as_ref(), move |tx| {
            tx.schedule()
                .timers_of(&steward_domain::RecordRef::new(Kind::Timesheet, id))
        })
        .unwrap()
        .iter()
        .map(|t| t.state.clone())
        .collect::<Vec<_>>()
    };
    assert_eq!(states(old), vec!["skipped"]);
    assert_eq!(states(new), vec!["fired"]);
}
