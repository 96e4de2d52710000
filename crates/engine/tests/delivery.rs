//! Handoff, staffing and account health through the engine on a real SQLite file.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use steward_domain::{Actor, Command, CommandContext, Kind, ManualClock, Record};
use steward_engine::{Engine, EngineConfig};
use steward_store::{FindingQuery, RecordQuery, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

const SETTINGS: &str = r#"
templates:
  - service_line: Audit
    project_name: "{client}: {deal}"
    calendar: Belgium
    tasks:
      - { name: Kickoff meeting, due: 3 working days, planned_hours: 4, kickoff: true }
      - { name: Fieldwork, due: 10 working days, planned_hours: 36 }
    milestones:
      - { name: Report, due: 2 weeks, percentage: 100 }
    roles:
      - { role: Auditor, hours_per_week: 32, skills: [audit], until: 4 weeks }
controls:
  handoff: { kickoff_within: 5 working days }
  health: { margin_below: 25%, burn_ahead_by: 5% }
"#;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn user() -> CommandContext {
    CommandContext::new(Actor::user("tester"))
}

async fn engine(dir: &tempfile::TempDir, now: &str) -> (Arc<Engine>, Arc<ManualClock>) {
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new(utc(now)));
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, clock.clone(), config);
    let (settings, diagnostics) =
        steward_controls::compile_sources(&[("firm.yaml".into(), SETTINGS.into())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    engine
        .install_control_settings(settings, None)
        .await
        .unwrap();
    (engine, clock)
}

async fn create(engine: &Engine, kind: Kind, state: Option<&str>, fields: Value) -> Record {
    let command = Command::Create {
        kind,
        id: None,
        state: state.map(str::to_string),
        fields: fields.as_object().unwrap().clone(),
        attributes: Default::default(),
    };
    engine
        .execute(command, user())
        .await
        .unwrap()
        .record
        .unwrap()
}

async fn update(engine: &Engine, kind: Kind, id: &str, state: Option<&str>, fields: Value) {
    let command = Command::Update {
        kind,
        id: id.to_string(),
        expected_version: None,
        state: state.map(str::to_string),
        fields: fields.as_object().unwrap().clone(),
        attributes: Default::default(),
    };
    engine.execute(command, user()).await.unwrap();
}

fn records(engine: &Engine, kind: Kind, field: &str, value: &str) -> Vec<Record> {
    read(engine.store().as_ref(), |tx| {
        tx.records(&RecordQuery {
            kind: Some(kind),
            fields: vec![(field.into(), json!(value))],
            limit: 500,
            ..Default::default()
        })
    })
    .unwrap()
    .items
}

#[tokio::test]
async fn won_deal_creates_its_project_once_on_working_days() {
    let dir = tempfile::tempdir().unwrap();
    // Thursday 24 December 2026; Friday 25 is a holiday in the Belgian calendar.
    let (engine, clock) = engine(&dir, "2026-12-24T10:00:00Z").await;
    create(
        &engine,
        Kind::WorkCalendar,
        None,
        json!({"name": "Belgium", "holidays": [{"date": "2026-12-25", "name": "Christmas"}]}),
    )
    .await;
    let owner = create(&engine, Kind::Employee, None, json!({"name": "Olga Owner"})).await;
    let client = create(&engine, Kind::Client, None, json!({"name": "Acme"})).await;
    let deal = create(
        &engine,
        Kind::Opportunity,
        Some("proposal"),
        json!({"name": "FY26 audit", "client": client.id, "owner": owner.id,
               "service_line": "Audit", "currency": "EUR", "amount": "20000"}),
    )
    .await;
    let contract = create(
        &engine,
        Kind::Contract,
        None,
        json!({"name": "SOW 1", "client": client.id, "billing_model": "fixed_fee",
               "currency": "EUR", "amount": "18000", "opportunity": deal.id,
               "start_date": "2026-12-24", "owner": owner.id, "subcontractors": false}),
    )
    .await;

    // Won but not signed: nothing yet.
    update(
        &engine,
        Kind::Opportunity,
        &deal.id,
        Some("won"),
        json!({"won_at": "2026-12-24T10:00:00Z"}),
    )
    .await;
    engine.drain().await.unwrap();
    assert!(records(&engine, Kind::Project, "opportunity", &deal.id).is_empty());

    // The contract becomes active: signed. A repeated change queues nothing more.
    update(
        &engine,
        Kind::Contract,
        &contract.id,
        Some("active"),
        json!({}),
    )
    .await;
    update(
        &engine,
        Kind::Contract,
        &contract.id,
        None,
        json!({"po_number": "PO-7"}),
    )
    .await;
    update(
        &engine,
        Kind::Opportunity,
        &deal.id,
        None,
        json!({"signed_at": "2026-12-24T11:00:00Z"}),
    )
    .await;
    engine.drain().await.unwrap();
    engine.drain().await.unwrap();

    let projects = records(&engine, Kind::Project, "opportunity", &deal.id);
    assert_eq!(projects.len(), 1, "one project per deal");
    let project = &projects[0];
    assert_eq!(project.text("name"), Some("Acme: FY26 audit"));
    assert_eq!(project.text("budget"), Some("18000.00"));
    assert_eq!(project.ref_id("owner"), Some(owner.id.as_str()));
    assert_eq!(project.text("start_date"), Some("2026-12-24"));

    let tasks = records(&engine, Kind::Task, "project", &project.id);
    let deadline = |name: &str| {
        tasks
            .iter()
            .find(|t| t.text("name") == Some(name))
            .and_then(|t| t.text("deadline"))
            .map(str::to_string)
    };
    // Three working days after Thursday 24 skip Christmas and the weekend: 28, 29, 30.
    assert_eq!(deadline("Kickoff meeting").as_deref(), Some("2026-12-30"));
    assert_eq!(deadline("Fieldwork").as_deref(), Some("2027-01-08"));
    let milestones = records(&engine, Kind::Milestone, "project", &project.id);
    assert_eq!(milestones[0].text("deadline"), Some("2027-01-07"));
    assert_eq!(milestones[0].text("amount"), Some("18000.00"));
    let roles = records(&engine, Kind::Allocation, "project", &project.id);
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].ref_id("employee"), None, "an open role");

    // Kickoff on Tuesday 29 at 10:00: 119 hours after winning, two working days.
    clock.set(utc("2026-12-29T09:00:00Z"));
    let kickoff = tasks
        .iter()
        .find(|t| t.text("name") == Some("Kickoff meeting"))
        .unwrap();
    update(&engine, Kind::Task, &kickoff.id, Some("done"), json!({})).await;
    let project = records(&engine, Kind::Project, "opportunity", &deal.id).remove(0);
    assert_eq!(project.text("kickoff_at"), Some("2026-12-29T09:00:00Z"));
    assert_eq!(project.attributes["won_to_kickoff_hours"], "119");
    assert_eq!(project.attributes["won_to_kickoff_working_days"], 2);
}

#[tokio::test]
async fn late_handoff_and_health_findings_notify_the_accountable_person() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _clock) = engine(&dir, "2026-12-10T12:00:00Z").await;
    let pm = create(
        &engine,
        Kind::Employee,
        None,
        json!({"name": "Pat Manager"}),
    )
    .await;
    let leader = create(&engine, Kind::Employee, None, json!({"name": "Lea Leader"})).await;
    let worker = create(
        &engine,
        Kind::Employee,
        None,
        json!({"name": "Wim Worker", "currency": "EUR", "cost_rate": "100"}),
    )
    .await;
    let client = create(
        &engine,
        Kind::Client,
        None,
        json!({"name": "Beta", "account_leader": leader.id}),
    )
    .await;
    // 60 hours at 100 EUR is 6,000 of a 10,000 budget, with one task of two done: burn runs
    // 10 points ahead of the 5 allowed, and the projected cost of 12,000 leaves a margin of -20 %.
    let project = create(
        &engine,
        Kind::Project,
        Some("active"),
        json!({"name": "Beta rollout", "client": client.id, "owner": pm.id,
               "currency": "EUR", "budget": "10000"}),
    )
    .await;
    for name in ["Design", "Build"] {
        let task = create(
            &engine,
            Kind::Task,
            None,
            json!({"name": name, "project": project.id}),
        )
        .await;
        if name == "Design" {
            update(&engine, Kind::Task, &task.id, Some("done"), json!({})).await;
        }
    }
    for day in [
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
        "2026-12-07",
        "2026-12-08",
        "2026-12-09",
        "2026-12-10",
    ] {
        create(
            &engine,
            Kind::Timesheet,
            None,
            json!({"employee": worker.id, "project": project.id, "date": day, "hours": "7.5"}),
        )
        .await;
    }
    create(
        &engine,
        Kind::Milestone,
        None,
        json!({"name": "Go-live", "project": project.id, "deadline": "2026-12-01"}),
    )
    .await;
    create(
        &engine,
        Kind::Ticket,
        None,
        json!({"title": "Login fails", "project": project.id, "sla_due_at": "2026-12-10T08:00:00Z"}),
    )
    .await;
    let deal = create(
        &engine,
        Kind::Opportunity,
        Some("proposal"),
        json!({"name": "Beta phase 2", "client": client.id, "owner": pm.id}),
    )
    .await;
    update(
        &engine,
        Kind::Opportunity,
        &deal.id,
        Some("won"),
        json!({"won_at": "2026-11-20T09:00:00Z", "signed_at": "2026-11-20T09:00:00Z"}),
    )
    .await;
    // The handoff job has not run yet, so the deal has no project past its window.

    let report = engine.run_controls().await.unwrap();
    let findings = read(engine.store().as_ref(), |tx| {
        tx.findings(&FindingQuery {
            state: Some("open".into()),
            limit: 500,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    let of = |control: &str| {
        findings
            .iter()
            .filter(|f| f.control == control)
            .collect::<Vec<_>>()
    };
    assert_eq!(report.open["budget_burn"], 1);
    assert_eq!(of("budget_burn")[0].evidence["burn_percent"], "60");
    assert_eq!(of("margin_low")[0].evidence["margin_percent"], "-20");
    assert_eq!(of("milestone_overdue").len(), 1);
    assert_eq!(of("sla_breach").len(), 1);
    assert_eq!(of("handoff_overdue").len(), 1);

    let notifications = |recipient: &str| -> Vec<Record> {
        records(&engine, Kind::Notification, "recipient", recipient)
    };
    let to_pm: Vec<String> = notifications(&pm.id)
        .iter()
        .map(|n| n.attributes["control"].as_str().unwrap().to_string())
        .collect();
    for control in [
        "budget_burn",
        "milestone_overdue",
        "sla_breach",
        "handoff_overdue",
    ] {
        assert!(
            to_pm.contains(&control.to_string()),
            "{control} reaches the project manager: {to_pm:?}"
        );
    }
    let to_leader = notifications(&leader.id);
    assert_eq!(to_leader.len(), 1);
    assert_eq!(to_leader[0].attributes["control"], "margin_low");
    assert_eq!(to_leader[0].text("channel"), Some("in_app"));

    // A second run opens nothing new and sends nothing twice.
    let again = engine.run_controls().await.unwrap();
    assert_eq!(again.opened, 0);
    assert_eq!(notifications(&leader.id).len(), 1);
    let _ = Decimal::ZERO;
}

#[tokio::test]
async fn uncovered_deal_is_handed_off_once_covered() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _clock) = engine(&dir, "2026-12-24T10:00:00Z").await;
    let client = create(&engine, Kind::Client, None, json!({"name": "Acme"})).await;
    let deal = create(
        &engine,
        Kind::Opportunity,
        Some("proposal"),
        json!({"name": "Tax return", "client": client.id, "service_line": "Tax",
               "currency": "EUR", "amount": "5000"}),
    )
    .await;
    update(
        &engine,
        Kind::Opportunity,
        &deal.id,
        Some("won"),
        json!({"won_at": "2026-12-24T10:00:00Z", "signed_at": "2026-12-24T10:00:00Z"}),
    )
    .await;
    engine.drain().await.unwrap();

    // Only Audit has a template: the handoff is skipped, not dead, and a finding gives the reason.
    assert!(records(&engine, Kind::Project, "opportunity", &deal.id).is_empty());
    let dead = read(engine.store().as_ref(), |tx| {
        tx.jobs(&steward_store::JobQuery {
            state: Some(steward_store::JobState::Dead),
            limit: 100,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    assert!(dead.is_empty(), "{dead:?}");
    engine.run_controls().await.unwrap();
    let findings = read(engine.store().as_ref(), |tx| {
        tx.findings(&FindingQuery {
            state: Some("open".into()),
            control: Some("handoff_no_template".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].evidence["service_line"], "Tax");

    // A template for Tax hands the deal off; a later change of settings does not again.
    let covered = SETTINGS.replace("controls:", "  - service_line: Tax\ncontrols:");
    for text in [
        covered.clone(),
        covered.replace("5 working days", "6 working days"),
    ] {
        let (settings, diagnostics) =
            steward_controls::compile_sources(&[("firm.yaml".into(), text)]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        engine
            .install_control_settings(settings, None)
            .await
            .unwrap();
        engine.drain().await.unwrap();
        let projects = records(&engine, Kind::Project, "opportunity", &deal.id);
        assert_eq!(projects.len(), 1, "one project per deal");
    }
    let handed_off = read(engine.store().as_ref(), |tx| {
        tx.events(&steward_store::EventQuery {
            name: Some("deal.handed_off".into()),
            limit: 100,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    assert_eq!(handed_off.len(), 1, "{handed_off:?}");
    engine.run_controls().await.unwrap();
    let open = read(engine.store().as_ref(), |tx| {
        tx.findings(&FindingQuery {
            state: Some("open".into()),
            control: Some("handoff_no_template".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    assert!(open.is_empty(), "the finding resolves: {open:?}");
}

#[tokio::test]
async fn kpis_count_hours_by_state_flag_and_month() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine(&dir, "2026-12-02T09:00:00Z").await;
    let six_hours = create(
        &engine,
        Kind::WorkCalendar,
        None,
        json!({"name": "Part time", "hours_per_day": "6"}),
    )
    .await;
    let ann = create(
        &engine,
        Kind::Employee,
        None,
        json!({"name": "Ann", "cost_rate": "50", "currency": "EUR", "calendar": six_hours.id}),
    )
    .await;
    let bob = create(
        &engine,
        Kind::Employee,
        None,
        json!({"name": "Bob", "cost_rate": "40", "currency": "EUR"}),
    )
    .await;
    let client = create(&engine, Kind::Client, None, json!({"name": "Acme"})).await;
    let contract = create(
        &engine,
        Kind::Contract,
        None,
        json!({"name": "Audit", "client": client.id, "billing_model": "time_and_materials",
               "currency": "EUR"}),
    )
    .await;
    let line = create(
        &engine,
        Kind::ContractLine,
        None,
        json!({"contract": contract.id, "name": "Hours", "billing_model": "time_and_materials",
               "currency": "EUR"}),
    )
    .await;
    let internal = create(&engine, Kind::Project, None, json!({"name": "Internal"})).await;
    let audit = create(&engine, Kind::Project, None, json!({"name": "Audit work"})).await;
    let entries = [
        // (employee, project, date, hours, state, billable flag, contract line)
        (
            &ann,
            &internal,
            "2026-11-03",
            "6",
            "approved",
            Some(true),
            None,
        ),
        (
            &ann,
            &internal,
            "2026-11-04",
            "2",
            "submitted",
            Some(false),
            None,
        ),
        (&ann, &internal, "2026-11-10", "1.5", "draft", None, None),
        (
            &bob,
            &internal,
            "2026-11-05",
            "3",
            "rejected",
            Some(true),
            None,
        ),
        (
            &bob,
            &internal,
            "2026-10-30",
            "4",
            "approved",
            Some(true),
            None,
        ),
        (
            &bob,
            &internal,
            "2026-12-01",
            "5",
            "draft",
            Some(true),
            None,
        ),
        (
            &bob,
            &audit,
            "2026-11-12",
            "2.5",
            "approved",
            None,
            Some(&line),
        ),
        (
            &bob,
            &audit,
            "2026-11-20",
            "1",
            "submitted",
            Some(true),
            None,
        ),
    ];
    for (employee, project, date, hours, state, billable, contract_line) in entries {
        let mut fields = json!({"employee": employee.id, "project": project.id, "date": date,
                                "hours": hours});
        if let Some(flag) = billable {
            fields["billable"] = json!(flag);
        }
        if let Some(line) = contract_line {
            fields["contract_line"] = json!(line.id);
        }
        let initial = if state == "draft" {
            "draft"
        } else {
            "submitted"
        };
        let entry = create(&engine, Kind::Timesheet, Some(initial), fields).await;
        let path: &[&str] = match state {
            "approved" => &["approved"],
            "rejected" => &["rejected"],
            _ => &[],
        };
        for next in path {
            update(&engine, Kind::Timesheet, &entry.id, Some(next), json!({})).await;
        }
    }

    let period = steward_engine::billing::BillingPeriod::parse("2026-11").unwrap();
    let kpis = engine.billing_kpis(period).await.unwrap();
    // November 2026 has 21 weekdays: Ann's calendar gives 6 hours a day, Bob's default 8.
    assert_eq!(
        kpis.utilization.capacity_hours,
        Decimal::from(21 * 6 + 21 * 8)
    );
    // Billable in November: Ann's flagged 6 h, Bob's 2.5 h on a contract line without a
    // flag, and his 1 h submitted; rejected and unflagged internal time does not count.
    assert_eq!(kpis.utilization.billable_hours, Decimal::new(95, 1));
    let cost = |project: &str| {
        kpis.margin_by_project
            .iter()
            .find(|m| m.project == project)
            .map(|m| m.cost)
    };
    // Cost until the end of November, rejected time left out: Ann 9.5 h at 50, Bob 4 h at 40.
    assert_eq!(cost(&internal.id), Some(Decimal::from(635)));
    // Bob's 2.5 h and 1 h at 40.
    assert_eq!(cost(&audit.id), Some(Decimal::from(140)));
}
