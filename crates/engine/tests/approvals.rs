//! Approval requests through the engine on a real SQLite file: routing, decisions, two
//! decisions at once, reminders and escalation on a clock the tests move, delegation,
//! guarded transitions and policy versions.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use steward_approvals::Verdict;
use steward_domain::{Actor, Command, CommandContext, DomainError, Kind, ManualClock, Record};
use steward_engine::approvals::{DecisionRequest, OpenRequest};
use steward_engine::{Engine, EngineConfig, EngineError};
use steward_store::{FindingQuery, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};

const POLICIES: &str = r#"
authority:
  currency: EUR
  roles:
    manager: { limit: "1000" }
    finance: { limit: "50000", members: [fiona@firm.test, frank@firm.test] }
    director: { limit: unlimited, members: [dora@firm.test] }
policies:
  - id: expenses
    request_kinds: [expense]
    fallback: { role: director }
    rows:
      - when: { amount: "<= 1000" }
        steps:
          - { name: Manager, approver: manager, deadline: 2 days, remind_before: 1 day }
      - when: { amount: "> 1000" }
        steps:
          - { name: Manager, approver: manager, deadline: 2 days }
          - { name: Finance, approver: { role: finance }, deadline: 3 days }
  - id: time
    request_kinds: [timesheet_week]
    fallback: { role: director }
    rows:
      - steps: [{ name: Manager, approver: manager, deadline: 3 days }]
  - id: releases
    request_kinds: [invoice_release, write_off]
    rows:
      - steps: [{ name: Finance, approver: { role: finance } }]
"#;

const RULES: &str = r#"
rules:
  - id: expense-approval
    trigger: { on: state, record: expense, state: submitted }
    actions:
      - approval: { request: expense }
  - id: time-approval
    trigger: { on: state, record: timesheet, state: submitted }
    actions:
      - approval: { request: timesheet_week }
"#;

struct Firm {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    ids: std::collections::HashMap<&'static str, String>,
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn user() -> CommandContext {
    CommandContext::new(Actor::user("tester"))
}

async fn firm(policies: &str) -> Firm {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new(utc("2026-12-07T09:00:00Z")));
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store, clock.clone(), config);
    let (approvals, diagnostics) =
        steward_approvals::compile_sources(&[("policies.yaml".into(), policies.into())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    engine.install_policies(approvals).await.unwrap();
    let (rules, diagnostics) =
        steward_rules::compile_sources(&[("rules.yaml".into(), RULES.into())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    engine.install_file_rules(rules).await.unwrap();
    let mut firm = Firm {
        engine,
        clock,
        _dir: dir,
        ids: Default::default(),
    };
    // Dora directs; Mark manages Eve; Sam is his own manager; Fiona and Frank are finance.
    for (key, name, manager) in [
        ("dora", "Dora Director", None),
        ("mark", "Mark Manager", Some("dora")),
        ("mona", "Mona Manager", Some("dora")),
        ("eve", "Eve Employee", Some("mark")),
        ("fiona", "Fiona Finance", Some("dora")),
        ("frank", "Frank Finance", Some("dora")),
    ] {
        let mut value = json!({"name": name, "email": format!("{key}@firm.test")});
        if let Some(manager) = manager {
            value["manager"] = json!(firm.ids[manager]);
        }
        let id = firm.create(Kind::Employee, value, None).await.id;
        firm.ids.insert(key, id);
    }
    let sam = firm
        .create(
            Kind::Employee,
            json!({"name": "Sam Self", "email": "sam@firm.test"}),
            None,
        )
        .await
        .id;
    firm.update(Kind::Employee, &sam, json!({"manager": sam}), None)
        .await
        .unwrap();
    firm.ids.insert("sam", sam);
    firm
}

impl Firm {
    fn id(&self, key: &str) -> String {
        self.ids[key].clone()
    }

    async fn create(&self, kind: Kind, value: Value, state: Option<&str>) -> Record {
        let command = Command::Create {
            kind,
            id: None,
            state: state.map(str::to_string),
            fields: fields(value),
            attributes: Map::new(),
        };
        self.engine
            .execute(command, user())
            .await
            .unwrap()
            .record
            .unwrap()
    }

    async fn update(
        &self,
        kind: Kind,
        id: &str,
        value: Value,
        state: Option<&str>,
    ) -> Result<Record, EngineError> {
        let command = Command::Update {
            kind,
            id: id.to_string(),
            expected_version: None,
            state: state.map(str::to_string),
            fields: fields(value),
            attributes: Map::new(),
        };
        Ok(self.engine.execute(command, user()).await?.record.unwrap())
    }

    async fn expense(&self, who: &str, amount: &str) -> Record {
        self.create(
            Kind::Expense,
            json!({"employee": self.id(who), "date": "2026-12-04", "category": "Travel",
                   "currency": "EUR", "amount": amount}),
            Some("submitted"),
        )
        .await
    }

    async fn record(&self, kind: Kind, id: &str) -> Record {
        let id = id.to_string();
        read(self.engine.store().as_ref(), move |tx| tx.record(kind, &id))
            .unwrap()
            .unwrap()
    }

    /// The request about `subject`.
    async fn request_about(&self, subject: &str) -> steward_engine::approvals::RequestView {
        let (all, _) = self
            .engine
            .approvals_list(steward_engine::approvals::RequestFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        all.into_iter()
            .find(|r| r.request.text("subject_id") == Some(subject))
            .unwrap_or_else(|| panic!("no request about {subject}"))
    }

    async fn decide(
        &self,
        request: &str,
        who: &str,
        verdict: Verdict,
    ) -> Result<steward_engine::approvals::Decided, EngineError> {
        self.engine
            .decide_approval(
                DecisionRequest {
                    request: request.to_string(),
                    step: None,
                    decider: self.id(who),
                    verdict,
                    comment: Some(format!("{who} decided")),
                },
                CommandContext::new(Actor::user(who)),
            )
            .await
    }

    async fn findings(&self, control: &str) -> Vec<steward_domain::Finding> {
        let query = FindingQuery {
            control: Some(control.to_string()),
            limit: 100,
            ..Default::default()
        };
        read(self.engine.store().as_ref(), move |tx| tx.findings(&query))
            .unwrap()
            .items
    }

    async fn tick_at(&self, instant: DateTime<Utc>) {
        self.clock.set(instant);
        self.engine.scheduler_tick().await.unwrap();
    }
}

fn refusal(result: Result<steward_engine::approvals::Decided, EngineError>) -> DomainError {
    match result {
        Err(EngineError::Domain(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_submitted_expense_is_routed_and_decided_by_the_manager() {
    let firm = firm(POLICIES).await;
    let expense = firm.expense("eve", "120.00").await;
    let view = firm.request_about(&expense.id).await;
    assert_eq!(view.request.state, "pending");
    assert_eq!(view.request.text("policy"), Some("expenses"));
    assert_eq!(view.request.integer("policy_version"), Some(1));
    assert_eq!(view.steps.len(), 1);
    let step = &view.steps[0];
    assert_eq!(step.state, "pending");
    assert_eq!(step.ref_id("approver"), Some(firm.id("mark").as_str()));
    assert_eq!(step.text("deadline"), Some("2026-12-09T09:00:00Z"));
    assert_eq!(step.text("remind_at"), Some("2026-12-08T09:00:00Z"));

    // Nobody approves their own request; someone else's manager may not either.
    let own = refusal(firm.decide(&view.request.id, "eve", Verdict::Approve).await);
    assert!(
        matches!(&own, DomainError::Forbidden(m) if m.contains("nobody approves their own request")),
        "{own}"
    );
    let other = refusal(
        firm.decide(&view.request.id, "mona", Verdict::Approve)
            .await,
    );
    assert!(matches!(other, DomainError::Forbidden(_)), "{other}");

    let decided = firm
        .decide(&view.request.id, "mark", Verdict::Approve)
        .await
        .unwrap();
    assert_eq!(decided.request.state, "approved");
    assert_eq!(decided.step.state, "approved");
    let expense = firm.record(Kind::Expense, &expense.id).await;
    assert_eq!(expense.state, "approved");
    assert_eq!(
        expense.ref_id("approved_by"),
        Some(firm.id("mark").as_str())
    );

    // A later decision is a conflict and changes nothing.
    let late = refusal(firm.decide(&view.request.id, "mark", Verdict::Reject).await);
    assert!(
        matches!(&late, DomainError::Conflict(m) if m.contains("already approved")),
        "{late}"
    );
    assert_eq!(
        firm.record(Kind::Expense, &expense.id).await.state,
        "approved"
    );
}

#[tokio::test]
async fn two_decisions_on_one_step_at_the_same_moment_give_one_winner() {
    let firm = firm(POLICIES).await;
    // Above 1000 EUR Mark lacks the authority, so Dora decides the manager step; finance
    // follows, and either of two members may take it.
    let expense = firm.expense("eve", "4000.00").await;
    let view = firm.request_about(&expense.id).await;
    assert_eq!(
        view.steps[0].ref_id("approver"),
        Some(firm.id("dora").as_str())
    );
    firm.decide(&view.request.id, "dora", Verdict::Approve)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        firm.decide(&view.request.id, "fiona", Verdict::Approve),
        firm.decide(&view.request.id, "frank", Verdict::Reject),
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) => (w, l),
        (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one decision must win: {other:?}"),
    };
    assert!(
        matches!(&loser, EngineError::Domain(DomainError::Conflict(_))),
        "{loser:?}"
    );
    let request = firm.record(Kind::ApprovalRequest, &view.request.id).await;
    assert_eq!(request.state, winner.request.state);
    let step = firm.record(Kind::ApprovalStep, &winner.step.id).await;
    assert_eq!(step.get("decisions").unwrap().as_array().unwrap().len(), 1);
    let expected = if request.state == "approved" {
        "approved"
    } else {
        "rejected"
    };
    assert_eq!(
        firm.record(Kind::Expense, &expense.id).await.state,
        expected
    );
}

#[tokio::test]
async fn an_employee_who_is_their_own_manager_escalates_to_the_fallback() {
    let firm = firm(POLICIES).await;
    let expense = firm.expense("sam", "80.00").await;
    let view = firm.request_about(&expense.id).await;
    let step = &view.steps[0];
    assert_eq!(step.text("approver_rule"), Some("role:director"));
    assert_eq!(step.get("candidates"), Some(&json!([firm.id("dora")])));
    let notes = step.get("notes").unwrap().to_string();
    assert!(notes.contains("Sam Self is their own manager"), "{notes}");
    assert!(
        refusal(firm.decide(&view.request.id, "sam", Verdict::Approve).await)
            .to_string()
            .contains("own request")
    );
    firm.decide(&view.request.id, "dora", Verdict::Approve)
        .await
        .unwrap();
}

#[tokio::test]
async fn reminders_and_escalation_follow_the_test_clock() {
    let firm = firm(POLICIES).await;
    let expense = firm.expense("eve", "300.00").await;
    let view = firm.request_about(&expense.id).await;
    let step_id = view.steps[0].id.clone();

    // Before the reminder instant nothing happens.
    firm.tick_at(utc("2026-12-08T08:59:00Z")).await;
    assert!(
        firm.record(Kind::ApprovalStep, &step_id)
            .await
            .get("reminded_at")
            .is_none()
    );
    firm.tick_at(utc("2026-12-08T09:00:30Z")).await;
    let reminded = firm.record(Kind::ApprovalStep, &step_id).await;
    assert_eq!(reminded.state, "pending");
    assert!(reminded.text("reminded_at").is_some(), "{reminded:?}");

    // The deadline passes: Mark's step is escalated to his manager Dora.
    firm.tick_at(utc("2026-12-09T09:00:30Z")).await;
    let view = firm.request_about(&expense.id).await;
    assert_eq!(view.steps.len(), 2, "{:#?}", view.steps);
    assert_eq!(view.steps[0].state, "escalated");
    let next = &view.steps[1];
    assert_eq!(next.state, "pending");
    assert_eq!(next.ref_id("approver"), Some(firm.id("dora").as_str()));
    assert_eq!(next.ref_id("escalated_from"), Some(step_id.as_str()));
    assert_eq!(next.integer("level"), Some(1));
    // Mark's chance has passed; Dora decides.
    let late = refusal(
        firm.decide(&view.request.id, "mark", Verdict::Approve)
            .await,
    );
    assert!(matches!(late, DomainError::Forbidden(_)), "{late}");
    firm.decide(&view.request.id, "dora", Verdict::Approve)
        .await
        .unwrap();

    // Ticking again changes nothing: each timer fires once.
    firm.tick_at(utc("2026-12-20T09:00:00Z")).await;
    assert_eq!(firm.request_about(&expense.id).await.steps.len(), 2);
}

#[tokio::test]
async fn an_approver_away_is_replaced_by_their_delegate() {
    let firm = firm(POLICIES).await;
    firm.update(
        Kind::Employee,
        &firm.id("mark"),
        json!({"away_from": "2026-12-07", "away_until": "2026-12-11", "delegate": firm.id("mona")}),
        None,
    )
    .await
    .unwrap();
    let expense = firm.expense("eve", "200.00").await;
    let view = firm.request_about(&expense.id).await;
    let step = &view.steps[0];
    assert_eq!(step.ref_id("approver"), Some(firm.id("mona").as_str()));
    assert_eq!(
        step.ref_id("delegated_from"),
        Some(firm.id("mark").as_str())
    );
    firm.decide(&view.request.id, "mona", Verdict::Approve)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_approver_over_their_authority_limit_cannot_decide() {
    let policies = POLICIES.replace(
        "director: { limit: unlimited",
        "director: { limit: \"1500\"",
    );
    let firm = firm(&policies).await;
    // Mark's 1000 EUR and Dora's 1500 EUR do not cover 2500: the finance step alone remains
    // decidable, and the manager step says why nobody could take it.
    let expense = firm.expense("eve", "2500.00").await;
    let view = firm.request_about(&expense.id).await;
    let first = &view.steps[0];
    let notes = first.get("notes").unwrap().to_string();
    assert!(
        notes.contains("Mark Manager has an authority limit of 1000 EUR does not cover 2500"),
        "{notes}"
    );
    assert!(
        notes.contains("Dora Director has an authority limit of 1500 EUR"),
        "{notes}"
    );
    for who in ["mark", "dora"] {
        let error = refusal(firm.decide(&view.request.id, who, Verdict::Approve).await);
        assert!(matches!(error, DomainError::Forbidden(_)), "{who}: {error}");
    }
}

#[tokio::test]
async fn a_week_of_time_becomes_one_request_and_its_decision_approves_every_line() {
    let firm = firm(POLICIES).await;
    let mut lines = Vec::new();
    for (date, hours) in [
        ("2026-11-30", "8"),
        ("2026-12-01", "7.5"),
        ("2026-12-02", "6"),
    ] {
        let line = firm
            .create(
                Kind::Timesheet,
                json!({"employee": firm.id("eve"), "date": date, "hours": hours}),
                Some("submitted"),
            )
            .await;
        lines.push(line.id);
    }
    let view = firm.request_about(&firm.id("eve")).await;
    assert_eq!(view.request.text("period"), Some("2026-W49"));
    assert_eq!(view.request.text("hours"), Some("21.5"));
    let (all, _) = firm
        .engine
        .approvals_list(steward_engine::approvals::RequestFilter {
            kind: Some("timesheet_week".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "one request for the week");

    // Approving a line directly bypasses the policy and is refused.
    let direct = firm
        .update(Kind::Timesheet, &lines[0], json!({}), Some("approved"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            direct,
            EngineError::Domain(DomainError::ApprovalRequired { .. })
        ),
        "{direct:?}"
    );
    firm.decide(&view.request.id, "mark", Verdict::Approve)
        .await
        .unwrap();
    for line in &lines {
        let line = firm.record(Kind::Timesheet, line).await;
        assert_eq!(line.state, "approved");
        assert_eq!(line.ref_id("approved_by"), Some(firm.id("mark").as_str()));
    }
}

#[tokio::test]
async fn releasing_an_invoice_needs_an_approved_request_and_a_bypass_is_audited() {
    let firm = firm(POLICIES).await;
    let client = firm
        .create(Kind::Client, json!({"name": "Acme"}), None)
        .await;
    let invoice = firm
        .create(
            Kind::Invoice,
            json!({"client": client.id, "currency": "EUR", "total": "5000.00"}),
            None,
        )
        .await;
    firm.update(
        Kind::Invoice,
        &invoice.id,
        json!({}),
        Some("pending_approval"),
    )
    .await
    .unwrap();
    let bypass = firm
        .update(Kind::Invoice, &invoice.id, json!({}), Some("released"))
        .await
        .unwrap_err();
    assert!(
        bypass
            .to_string()
            .contains("only through an approved `invoice_release` request"),
        "{bypass}"
    );
    assert_eq!(
        firm.record(Kind::Invoice, &invoice.id).await.state,
        "pending_approval"
    );
    let findings = firm.findings("approval_bypass").await;
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0]
            .message
            .contains("user:tester tried to move invoice"),
        "{}",
        findings[0].message
    );

    let opened = firm
        .engine
        .open_approval(
            OpenRequest {
                kind: "invoice_release".into(),
                subject: Some(invoice.reference()),
                requester: Some(firm.id("mark")),
                ..Default::default()
            },
            user(),
        )
        .await
        .unwrap();
    assert!(opened.created);
    assert_eq!(opened.request.text("amount"), Some("5000.00"));
    firm.decide(&opened.request.id, "fiona", Verdict::Approve)
        .await
        .unwrap();
    assert_eq!(
        firm.record(Kind::Invoice, &invoice.id).await.state,
        "released"
    );
}

#[tokio::test]
async fn a_rule_that_tries_to_release_an_invoice_is_stopped_and_audited() {
    let firm = firm(POLICIES).await;
    let sneaky = r#"
rules:
  - id: auto-release
    trigger: { on: state, record: invoice, state: pending_approval }
    actions:
      - update: { state: released }
"#;
    let (rules, diagnostics) = steward_rules::compile_sources(&[
        ("rules.yaml".into(), RULES.into()),
        ("sneaky.yaml".into(), sneaky.into()),
    ]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    firm.engine.install_file_rules(rules).await.unwrap();
    let client = firm
        .create(Kind::Client, json!({"name": "Acme"}), None)
        .await;
    let invoice = firm
        .create(
            Kind::Invoice,
            json!({"client": client.id, "currency": "EUR"}),
            None,
        )
        .await;
    firm.update(
        Kind::Invoice,
        &invoice.id,
        json!({}),
        Some("pending_approval"),
    )
    .await
    .unwrap();
    assert_eq!(
        firm.record(Kind::Invoice, &invoice.id).await.state,
        "pending_approval"
    );
    let findings = firm.findings("approval_bypass").await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].message.contains("rule:auto-release"),
        "{}",
        findings[0].message
    );
}

#[tokio::test]
async fn a_request_keeps_the_policy_version_it_started_under() {
    let firm = firm(POLICIES).await;
    let first = firm.expense("eve", "100.00").await;
    let changed = POLICIES.replace("deadline: 2 days, remind_before: 1 day", "deadline: 5 days");
    let (approvals, diagnostics) =
        steward_approvals::compile_sources(&[("policies.yaml".into(), changed)]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let changes = firm.engine.install_policies(approvals).await.unwrap();
    let expenses = changes.iter().find(|c| c.policy_id == "expenses").unwrap();
    assert_eq!((expenses.version, expenses.change), (2, "changed"));
    let second = firm.expense("eve", "100.00").await;
    let old = firm.request_about(&first.id).await;
    let new = firm.request_about(&second.id).await;
    assert_eq!(old.request.integer("policy_version"), Some(1));
    assert_eq!(new.request.integer("policy_version"), Some(2));
    assert_eq!(new.steps[0].text("deadline"), Some("2026-12-12T09:00:00Z"));
    // The old request still escalates under version 1's deadline.
    firm.tick_at(utc("2026-12-09T09:00:30Z")).await;
    assert_eq!(
        firm.request_about(&first.id).await.steps[0].state,
        "escalated"
    );
    assert_eq!(
        firm.request_about(&second.id).await.steps[0].state,
        "pending"
    );
    let _ = Duration::zero();
}
