//! Time-and-expense controls and collections through the engine on a real SQLite file: the
//! checks on write, the findings of the controls, timesheet reminders and escalations at the
//! cut-offs, and collection stages, on a clock the tests move.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use steward_domain::Clock;
use steward_domain::command::ExternalKey;
use steward_domain::{Actor, Command, CommandContext, Kind, ManualClock, Record};
use steward_engine::{Engine, EngineConfig, EngineError};
use steward_store::{ControlSettingsVersion, EventQuery, FindingQuery, RecordQuery, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

const SETTINGS: &str = r#"
controls:
  timesheets:
    timezone: Europe/Brussels
    future_tolerance: 1 day
    cutoffs:
      - { name: payroll, period: week, remind: "0 14 * * FRI", escalate: "0 10 * * MON" }
  expenses:
    receipt_above: { EUR: 75 }
    limits:
      - { category: Meals, limit: { EUR: 50 } }
      - { category: Meals, country: BE, limit: { EUR: 60 } }
  collections:
    timezone: Europe/Brussels
    at: "09:00"
    schedule:
      - { after: 7 days, step: remind }
      - { after: 21 days, step: remind }
      - { after: 45 days, step: escalate }
"#;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn user() -> CommandContext {
    CommandContext::new(Actor::user("tester"))
}

struct Firm {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
}

async fn open(path: &Path, clock: Arc<ManualClock>) -> Firm {
    let store: Arc<dyn Store> = SqliteStore::open(path, SqliteOptions::default()).unwrap();
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, clock.clone(), config);
    engine.reload_rules().await.unwrap();
    Firm { engine, clock }
}

async fn firm(path: &Path, start: &str) -> Firm {
    let clock = Arc::new(ManualClock::new(utc(start)));
    let firm = open(path, clock).await;
    let (settings, diagnostics) =
        steward_controls::compile_sources(&[("firm.yaml".into(), SETTINGS.into())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let version = ControlSettingsVersion {
        version: 1,
        hash: "test".into(),
        definition: serde_json::to_value(&settings).unwrap(),
        origin: None,
        created_at: firm.clock.now(),
    };
    steward_store::write::<_, steward_store::StoreError, _>(
        firm.engine.store().as_ref(),
        move |tx| tx.insert_control_settings(&version),
    )
    .await
    .unwrap();
    firm.engine.install_control_schedules().await.unwrap();
    firm
}

impl Firm {
    async fn create(&self, kind: Kind, value: Value) -> Result<Record, EngineError> {
        let command = Command::Create {
            kind,
            id: None,
            state: None,
            fields: fields(value),
            attributes: Map::new(),
        };
        let outcome = self.engine.execute(command, user()).await?;
        Ok(outcome.record.unwrap())
    }

    async fn mirror(&self, kind: Kind, id: &str, state: &str, value: Value) -> Record {
        let command = Command::Upsert {
            kind,
            external: ExternalKey::new("odoo", kind.name(), id),
            source_version: None,
            state: Some(state.into()),
            fields: fields(value),
            attributes: Map::new(),
            external_refs: Vec::new(),
        };
        let context = CommandContext::new(Actor::integration("odoo"));
        let outcome = self.engine.execute(command, context).await.unwrap();
        outcome.record.unwrap()
    }

    async fn employee(&self, name: &str, manager: Option<&str>, country: &str) -> String {
        let calendar = self
            .create(
                Kind::WorkCalendar,
                json!({
                    "name": format!("{name}'s week"),
                    "timezone": "Europe/Brussels",
                    "hours_per_day": "8",
                    "week_hours": {"mon": "8", "tue": "8", "wed": "8", "thu": "8", "fri": "8", "sat": "0", "sun": "0"},
                }),
            )
            .await
            .unwrap();
        let mut value = json!({"name": name, "country": country, "calendar": calendar.id});
        if let Some(manager) = manager {
            value["manager"] = json!(manager);
        }
        self.create(Kind::Employee, value).await.unwrap().id
    }

    async fn records(&self, kind: Kind, field: &str, value: &str) -> Vec<Record> {
        let query = RecordQuery {
            kind: Some(kind),
            fields: vec![(field.into(), json!(value))],
            limit: 500,
            ..Default::default()
        };
        read(self.engine.store().as_ref(), move |tx| tx.records(&query))
            .unwrap()
            .items
    }

    async fn open_findings(&self, control: &str) -> Vec<steward_domain::Finding> {
        let query = FindingQuery {
            control: Some(control.to_string()),
            state: Some("open".into()),
            limit: 100,
            ..Default::default()
        };
        read(self.engine.store().as_ref(), move |tx| tx.findings(&query))
            .unwrap()
            .items
    }

    async fn events_of(&self, kind: Kind, id: &str, name: &str) -> Vec<steward_domain::Event> {
        let query = EventQuery {
            record: Some(steward_domain::RecordRef::new(kind, id)),
            name: Some(name.into()),
            limit: 100,
            ..Default::default()
        };
        read(self.engine.store().as_ref(), move |tx| tx.events(&query))
            .unwrap()
            .items
    }

    /// Moves the clock, lets the scheduler start what is due, and runs the queued jobs.
    async fn run_at(&self, instant: &str) {
        self.clock.set(utc(instant));
        self.engine.scheduler_tick().await.unwrap();
        self.engine.drain().await.unwrap();
    }
}

fn rejection(result: Result<Record, EngineError>) -> String {
    match result {
        Ok(record) => panic!("the write was accepted: {record:?}"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn entries_are_checked_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-12-03T12:00:00Z").await;
    let eve = firm.employee("Eve", None, "BE").await;
    let entry = |date: &str, hours: &str| json!({"employee": eve, "date": date, "hours": hours});

    firm.create(Kind::Timesheet, entry("2026-12-03", "10"))
        .await
        .expect("a normal day is accepted");
    firm.create(Kind::Timesheet, entry("2026-12-04", "1"))
        .await
        .expect("tomorrow is within the tolerance of one day");

    let message = rejection(
        firm.create(Kind::Timesheet, entry("2026-12-03", "-2"))
            .await,
    );
    assert!(message.contains("-2 is negative"), "{message}");

    let message = rejection(firm.create(Kind::Timesheet, entry("2026-12-06", "2")).await);
    assert!(message.contains("2026-12-06 is in the future"), "{message}");
    assert!(message.contains("until 2026-12-04"), "{message}");

    let message = rejection(
        firm.create(Kind::Timesheet, entry("2026-12-03", "15"))
            .await,
    );
    assert!(
        message.contains("would log 25 hours on 2026-12-03"),
        "{message}"
    );
    assert!(
        message.contains("(10 hours already in 1 other entry)"),
        "{message}"
    );
    firm.create(Kind::Timesheet, entry("2026-12-03", "14"))
        .await
        .expect("exactly 24 hours is accepted");
    let message = rejection(firm.create(Kind::Timesheet, entry("2026-12-03", "1")).await);
    assert!(
        message.contains("(24 hours already in 2 other entries)"),
        "{message}"
    );

    let stored = firm.records(Kind::Timesheet, "employee", &eve).await;
    assert_eq!(stored.len(), 3, "no rejected entry was stored");
}

#[tokio::test]
async fn entry_across_midnight_splits_by_local_day_across_dst() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-10-26T12:00:00Z").await;
    let eve = firm.employee("Eve", None, "BE").await;
    // 22:00 on Saturday 24 October to 02:00 CET on Sunday in Brussels: the clocks go back at
    // 03:00 CEST that night, so the night lasts 5 hours, 2 before midnight and 3 after.
    let first = firm
        .create(
            Kind::Timesheet,
            json!({
                "employee": eve,
                "date": "2026-10-24",
                "started_at": "2026-10-24T22:00:00+02:00",
                "ended_at": "2026-10-25T02:00:00+01:00",
                "hours": "5",
            }),
        )
        .await
        .unwrap();
    let mut parts = firm.records(Kind::Timesheet, "employee", &eve).await;
    parts.sort_by_key(|p| p.text("date").unwrap().to_string());
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].id, first.id,
        "the first part keeps the request's place"
    );
    assert_eq!(parts[0].text("date"), Some("2026-10-24"));
    assert_eq!(parts[0].decimal("hours"), Some(2.into()));
    assert_eq!(parts[1].text("date"), Some("2026-10-25"));
    assert_eq!(parts[1].decimal("hours"), Some(3.into()));
    assert_eq!(
        parts[1].datetime("started_at"),
        Some(utc("2026-10-24T22:00:00Z")),
        "the second part starts at local midnight"
    );
    assert_eq!(parts[1].attributes["split"]["part"], json!(2));

    // The Toggl import cuts the same entry at the same instants.
    let tz: chrono_tz::Tz = "Europe/Brussels".parse().unwrap();
    let cut = steward_domain::localday::split_by_local_day(
        tz,
        utc("2026-10-24T20:00:00Z"),
        utc("2026-10-25T01:00:00Z"),
        5.into(),
    );
    assert_eq!(cut[1].start, parts[1].datetime("started_at").unwrap());

    let message = rejection(
        firm.create(
            Kind::Timesheet,
            json!({
                "employee": eve,
                "date": "2026-10-23",
                "started_at": "2026-10-22T09:00:00+02:00",
                "ended_at": "2026-10-22T10:00:00+02:00",
                "hours": "1",
            }),
        )
        .await,
    );
    assert!(
        message.contains("starts on 2026-10-22 in Europe/Brussels"),
        "{message}"
    );
}

#[tokio::test]
async fn mirrored_entries_raise_findings_instead() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-12-03T12:00:00Z").await;
    let eve = firm.employee("Eve", None, "BE").await;
    firm.mirror(
        Kind::Timesheet,
        "1",
        "draft",
        json!({"employee": eve, "date": "2026-12-20", "hours": "3"}),
    )
    .await;
    firm.mirror(
        Kind::Timesheet,
        "2",
        "draft",
        json!({"employee": eve, "date": "2026-12-04", "hours": "3"}),
    )
    .await;
    firm.engine.run_controls().await.unwrap();
    let findings = firm.open_findings("entry_validity").await;
    assert_eq!(
        findings.len(),
        1,
        "tomorrow is within the tolerance: {findings:?}"
    );
    let message = &findings[0].message;
    assert!(
        message.contains("a date in the future (2026-12-20, later than 2026-12-05)"),
        "{message}"
    );
}

#[tokio::test]
async fn billable_flags_are_checked_against_project_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-12-03T12:00:00Z").await;
    let eve = firm.employee("Eve", None, "BE").await;
    let client = firm
        .create(Kind::Client, json!({"name": "Acme"}))
        .await
        .unwrap();
    let internal = firm
        .create(
            Kind::Project,
            json!({"name": "Internal", "billable": false}),
        )
        .await
        .unwrap();
    let delivery = firm
        .create(Kind::Project, json!({"name": "Delivery", "billable": true}))
        .await
        .unwrap();
    let contract = firm
        .create(
            Kind::Contract,
            json!({"name": "SOW 1", "client": client.id, "currency": "EUR", "billing_model": "time_and_materials"}),
        )
        .await
        .unwrap();
    let line = firm
        .create(
            Kind::ContractLine,
            json!({"contract": contract.id, "name": "Consulting", "billing_model": "time_and_materials", "currency": "EUR", "unit_price": "120"}),
        )
        .await
        .unwrap();
    let entry = |project: &str, line: Option<&str>, billable: bool| {
        let mut value = json!({"employee": eve, "date": "2026-12-02", "hours": "2", "project": project, "billable": billable});
        if let Some(line) = line {
            value["contract_line"] = json!(line);
        }
        value
    };
    firm.create(Kind::Timesheet, entry(&internal.id, None, false))
        .await
        .unwrap();
    firm.create(Kind::Timesheet, entry(&delivery.id, Some(&line.id), true))
        .await
        .unwrap();
    firm.engine.run_controls().await.unwrap();
    assert!(firm.open_findings("billable_mismatch").await.is_empty());

    firm.create(Kind::Timesheet, entry(&internal.id, None, true))
        .await
        .unwrap();
    firm.create(Kind::Timesheet, entry(&delivery.id, Some(&line.id), false))
        .await
        .unwrap();
    firm.engine.run_controls().await.unwrap();
    let findings = firm.open_findings("billable_mismatch").await;
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("billable on Internal, an internal"))
    );
    assert!(findings.iter().any(|f| {
        f.message
            .contains("non-billable on contract line Consulting")
    }));
}

#[tokio::test]
async fn expenses_are_checked_for_limits_receipts_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-12-03T12:00:00Z").await;
    let eve = firm.employee("Eve", None, "BE").await;
    let fred = firm.employee("Fred", None, "FR").await;
    let expense = |who: &str, amount: &str, extra: Value| {
        let mut value = json!({"employee": who, "date": "2026-12-01", "category": "Meals", "currency": "EUR", "amount": amount});
        for (k, v) in extra.as_object().unwrap() {
            value[k] = v.clone();
        }
        value
    };
    // 55 EUR of meals is within Belgium's 60 but over the general 50 that France falls under.
    firm.create(
        Kind::Expense,
        expense(&eve, "55", json!({"receipt": "sha256:aa"})),
    )
    .await
    .unwrap();
    let french = firm
        .create(
            Kind::Expense,
            expense(&fred, "55", json!({"receipt": "sha256:bb"})),
        )
        .await
        .unwrap();
    let no_receipt = firm
        .create(
            Kind::Expense,
            expense(&eve, "58", json!({"vendor": "Chez Léon"})),
        )
        .await
        .unwrap();
    firm.create(
        Kind::Expense,
        expense(&eve, "20", json!({"vendor": "Chez Léon"})),
    )
    .await
    .unwrap();
    firm.create(
        Kind::Expense,
        expense(
            &eve,
            "30",
            json!({"receipt": "sha256:cc", "vendor": "Bistro"}),
        ),
    )
    .await
    .unwrap();
    firm.create(
        Kind::Expense,
        expense(&fred, "12", json!({"receipt": "SHA256:CC"})),
    )
    .await
    .unwrap();
    firm.create(
        Kind::Expense,
        expense(&eve, "90", json!({"category": "Travel", "country": "DE"})),
    )
    .await
    .unwrap();
    firm.engine.run_controls().await.unwrap();

    let limits = firm.open_findings("expense_limit").await;
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].record.as_ref().unwrap().id, french.id);
    assert!(
        limits[0].message.contains("over the limit of 50 EUR"),
        "{}",
        limits[0].message
    );

    let receipts = firm.open_findings("expense_receipt_missing").await;
    assert_eq!(
        receipts.len(),
        1,
        "only the 90 EUR expense is above 75 without a receipt"
    );
    assert!(
        receipts[0].message.contains("90 EUR"),
        "{}",
        receipts[0].message
    );
    assert_ne!(receipts[0].record.as_ref().unwrap().id, no_receipt.id);

    let duplicates = firm.open_findings("expense_duplicate_receipt").await;
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert!(
        duplicates[0].message.contains("share receipt"),
        "{}",
        duplicates[0].message
    );

    firm.create(
        Kind::Expense,
        expense(&eve, "20", json!({"vendor": "chez léon "})),
    )
    .await
    .unwrap();
    firm.engine.run_controls().await.unwrap();
    let duplicates = firm.open_findings("expense_duplicate_receipt").await;
    assert_eq!(duplicates.len(), 2, "{duplicates:?}");
    assert!(
        duplicates
            .iter()
            .any(|d| d.message.contains("same person, amount, date and vendor"))
    );
}

#[tokio::test]
async fn cutoff_reminds_then_escalates_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steward.db");
    // Thursday 3 December 2026; the payroll reminder is on Friday at 14:00 in Brussels.
    let firm = firm(&path, "2026-12-03T12:00:00Z").await;
    let mona = firm.employee("Mona", None, "BE").await;
    let eve = firm.employee("Eve", Some(&mona), "BE").await;
    for day in [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
    ] {
        firm.create(
            Kind::Timesheet,
            json!({"employee": mona, "date": day, "hours": "8"}),
        )
        .await
        .unwrap();
    }
    for day in ["2026-11-30", "2026-12-01", "2026-12-02"] {
        firm.create(
            Kind::Timesheet,
            json!({"employee": eve, "date": day, "hours": "8"}),
        )
        .await
        .unwrap();
    }
    firm.create(
        Kind::Leave,
        json!({"employee": eve, "start_date": "2026-12-03", "end_date": "2026-12-03"}),
    )
    .await
    .unwrap();
    let leave = firm.records(Kind::Leave, "employee", &eve).await;
    firm.engine
        .execute(
            Command::Update {
                kind: Kind::Leave,
                id: leave[0].id.clone(),
                expected_version: None,
                state: Some("approved".into()),
                fields: Map::new(),
                attributes: Map::new(),
            },
            user(),
        )
        .await
        .unwrap();

    firm.run_at("2026-12-04T12:59:00Z").await;
    assert!(
        firm.records(Kind::Notification, "recipient", &eve)
            .await
            .is_empty()
    );

    firm.run_at("2026-12-04T13:00:30Z").await;
    let reminders = firm.records(Kind::Notification, "recipient", &eve).await;
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    let message = reminders[0].text("message").unwrap();
    assert!(message.contains("24 of 32 expected hours"), "{message}");
    assert!(
        firm.records(Kind::Notification, "recipient", &mona)
            .await
            .is_empty(),
        "Mona's week is complete"
    );
    // Both were hired this week, so the closed weeks before are short too; the open week
    // is Eve's alone.
    let findings: Vec<_> = firm
        .open_findings("timesheet_incomplete")
        .await
        .into_iter()
        .filter(|f| f.evidence["period"] == json!("2026-W49"))
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].evidence["expected_hours"], json!("32"));
    assert_eq!(findings[0].evidence["logged_hours"], json!("24"));
    assert_eq!(findings[0].evidence["leave_hours"], json!("8"));
    assert_eq!(
        firm.events_of(Kind::Employee, &eve, "timesheet.reminder")
            .await
            .len(),
        1
    );

    // A restart on the same file sends nothing twice.
    firm.engine.run_controls().await.unwrap();
    drop(firm);
    let clock = Arc::new(ManualClock::new(utc("2026-12-05T10:00:00Z")));
    let firm = open(&path, clock).await;
    firm.run_at("2026-12-05T10:00:00Z").await;
    firm.engine.run_controls().await.unwrap();
    assert_eq!(
        firm.records(Kind::Notification, "recipient", &eve)
            .await
            .len(),
        1
    );

    // The cut-off on Monday at 10:00 escalates to Eve's manager, once.
    firm.run_at("2026-12-07T09:00:30Z").await;
    let escalations = firm.records(Kind::Notification, "recipient", &mona).await;
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    let message = escalations[0].text("message").unwrap();
    assert!(
        message.contains("Eve's timesheet for 2026-W49"),
        "{message}"
    );
    assert!(message.contains("after the payroll cut-off"), "{message}");
    let findings = firm.open_findings("timesheet_incomplete").await;
    let closed = findings
        .iter()
        .find(|f| f.evidence["period"] == json!("2026-W49") && f.evidence["employee"] == json!(eve))
        .expect("Eve's week is still short");
    assert_eq!(closed.severity, steward_domain::Severity::Error);
    firm.run_at("2026-12-07T11:00:00Z").await;
    firm.engine.run_controls().await.unwrap();
    assert_eq!(
        firm.records(Kind::Notification, "recipient", &mona)
            .await
            .len(),
        1
    );
    assert_eq!(
        firm.events_of(Kind::Employee, &eve, "timesheet.escalated")
            .await
            .len(),
        1
    );

    // Completing the week resolves its finding.
    firm.create(
        Kind::Timesheet,
        json!({"employee": eve, "date": "2026-12-04", "hours": "8"}),
    )
    .await
    .unwrap();
    firm.engine.run_controls().await.unwrap();
    let open = firm.open_findings("timesheet_incomplete").await;
    assert!(
        open.iter()
            .all(|f| f.evidence["period"] != json!("2026-W49")),
        "{open:?}"
    );
}

#[tokio::test]
async fn collection_stages_run_once_each_and_stop_when_paid() {
    let dir = tempfile::tempdir().unwrap();
    let firm = firm(&dir.path().join("steward.db"), "2026-11-01T12:00:00Z").await;
    let leader = firm.employee("Lea Leader", None, "BE").await;
    let contact = firm
        .create(
            Kind::Contact,
            json!({"name": "Paula Payer", "email": "ap@acme.test"}),
        )
        .await
        .unwrap();
    let client = firm
        .create(
            Kind::Client,
            json!({"name": "Acme", "account_leader": leader, "billing_contact": contact.id}),
        )
        .await
        .unwrap();
    let invoice = firm
        .mirror(
            Kind::Invoice,
            "7",
            "released",
            json!({"client": client.id, "currency": "EUR", "number": "INV/2026/0007", "due_date": "2026-11-02", "total": "1210", "residual": "1210", "payment_state": "not_paid"}),
        )
        .await;
    let reminders = || firm.events_of(Kind::Invoice, &invoice.id, "invoice.payment_reminder");

    firm.run_at("2026-11-09T07:59:00Z").await;
    assert!(
        reminders().await.is_empty(),
        "09:00 in Brussels is 08:00 UTC"
    );
    firm.run_at("2026-11-09T08:00:30Z").await;
    let sent = reminders().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].data["to"]["email"], json!("ap@acme.test"));
    assert_eq!(sent[0].data["stage"], json!(1));
    assert_eq!(sent[0].data["days_overdue"], json!(7));
    let notices: Vec<Record> = firm
        .records(Kind::Notification, "recipient", &leader)
        .await
        .into_iter()
        .filter(|n| n.text("subject_kind") == Some("invoice"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]
            .text("message")
            .unwrap()
            .contains("sent to Paula Payer <ap@acme.test>"),
        "{notices:?}"
    );

    firm.run_at("2026-11-10T08:00:30Z").await;
    firm.engine.run_controls().await.unwrap();
    let sent = reminders().await;
    assert_eq!(sent.len(), 1, "stage 1 runs once: {sent:#?}");

    firm.run_at("2026-11-23T08:00:30Z").await;
    let sent = reminders().await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().any(|e| e.data["stage"] == json!(2)));
    let finding = firm.open_findings("collections_overdue").await;
    assert_eq!(finding.len(), 1);
    assert_eq!(finding[0].evidence["stage"], json!(2));

    firm.mirror(
        Kind::Invoice,
        "7",
        "paid",
        json!({"residual": "0", "payment_state": "paid"}),
    )
    .await;
    firm.run_at("2026-12-17T08:00:30Z").await;
    firm.engine.run_controls().await.unwrap();
    assert!(
        firm.events_of(Kind::Invoice, &invoice.id, "invoice.collection_escalated")
            .await
            .is_empty(),
        "a paid invoice is not escalated"
    );
    assert_eq!(reminders().await.len(), 2);
    assert!(firm.open_findings("collections_overdue").await.is_empty());
}
