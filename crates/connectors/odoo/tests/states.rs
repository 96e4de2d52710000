//! States of mirrored time and expenses across syncs: a decision made in Steward stays until
//! Odoo's own state for the record changes.

mod support;

use serde_json::{Map, Value, json};
use steward_domain::{Actor, Command, CommandContext, Event, Record};
use steward_engine::pipeline::SOURCE_STATE;
use steward_odoo::{SyncReport, sync};
use steward_store::EventQuery;
use support::{Harness, harness, options};

/// A timesheet line whose `write_date` is the timesheet cursor, so every sync reads it again.
const LINE: i64 = 7;

/// An expense `reported` in Odoo whose `write_date` is the expense cursor, so every sync reads
/// it again.
const EXPENSE: i64 = 9;

async fn run(h: &Harness) -> SyncReport {
    let report = sync(&h.engine, &h.config, &options())
        .await
        .unwrap_or_else(|e| panic!("sync failed: {e}"));
    let failures: Vec<String> = report.failures().map(|f| f.error.clone()).collect();
    assert_eq!(failures, Vec::<String>::new());
    report
}

fn changes(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Moves a record to `state` as a manager would through the API.
async fn decide(h: &Harness, record: &Record, state: &str) {
    let context = CommandContext::new(Actor::user("manager"));
    h.engine
        .execute(Command::transition(record.kind, &record.id, state), context)
        .await
        .unwrap_or_else(|e| panic!("{} {} to {state}: {e}", record.kind, record.id));
}

/// Removes the stored Odoo state, as on a record mirrored before the sync stored it.
async fn forget_source_state(h: &Harness, record: &Record) {
    let mut attributes = Map::new();
    attributes.insert(SOURCE_STATE.into(), Value::Null);
    let remove = Command::Update {
        kind: record.kind,
        id: record.id.clone(),
        expected_version: None,
        state: None,
        fields: Map::new(),
        attributes,
    };
    let context = CommandContext::new(Actor::integration("odoo"));
    h.engine.execute(remove, context).await.unwrap();
}

/// Returns the events of one record, oldest first.
fn history(h: &Harness, record: &Record) -> Vec<Event> {
    steward_store::read(h.store(), |tx| {
        tx.events(&EventQuery {
            record: Some(record.reference()),
            limit: 1000,
            ..Default::default()
        })
    })
    .unwrap()
    .items
}

#[tokio::test]
async fn approval_survives_a_resync() {
    let h = harness().await;
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    let expense = h.mirrored("hr.expense", EXPENSE).unwrap();
    assert_eq!(line.state, "submitted");
    assert_eq!(expense.state, "submitted");
    assert_eq!(line.attributes[SOURCE_STATE], json!("submitted"));
    decide(&h, &line, "approved").await;
    decide(&h, &expense, "approved").await;
    let events = h.events();

    let report = run(&h).await;
    assert_eq!(report.model("account.analytic.line").unwrap().read, 532);
    assert_eq!(report.model("hr.expense").unwrap().read, 2);
    assert_eq!(report.created(), 0);
    assert_eq!(report.updated(), 0);
    assert_eq!(h.events(), events, "no event appended");
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    let expense = h.mirrored("hr.expense", EXPENSE).unwrap();
    assert_eq!(line.state, "approved");
    assert_eq!(expense.state, "approved");
}

#[tokio::test]
async fn rejection_survives_a_resync() {
    let h = harness().await;
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    decide(&h, &line, "rejected").await;
    let events = h.events();

    let report = run(&h).await;
    assert_eq!(report.updated(), 0);
    assert_eq!(h.events(), events, "no event appended");
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.state, "rejected");
}

#[tokio::test]
async fn changed_hours_keep_the_approval() {
    let h = harness().await;
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    decide(&h, &line, "approved").await;
    let events = h.events();

    h.replay
        .update_record(
            "account.analytic.line",
            LINE,
            changes(json!({"write_date": "2026-12-05 09:00:00", "unit_amount": 3.5})),
        )
        .unwrap();
    let report = run(&h).await;
    assert_eq!(report.model("account.analytic.line").unwrap().updated, 1);
    assert_eq!(h.events(), events + 1);
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.text("hours"), Some("3.5"));
    assert_eq!(line.state, "approved");
    let last = history(&h, &line).pop().unwrap();
    assert_eq!(last.actor, Actor::integration("odoo"));
    assert!(last.changed("hours"), "{:?}", last.changes);
    assert!(!last.changed("state"), "{:?}", last.changes);
}

#[tokio::test]
async fn odoo_invoicing_overrides_steward() {
    let h = harness().await;
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    decide(&h, &line, "approved").await;

    h.replay
        .update_record(
            "account.analytic.line",
            LINE,
            changes(json!({
                "write_date": "2026-12-05 09:00:00",
                "timesheet_invoice_id": [4, "INV/2026/00001"],
            })),
        )
        .unwrap();
    run(&h).await;
    let invoice = h.mirrored("account.move", 4).unwrap();
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.state, "invoiced");
    assert_eq!(line.ref_id("invoice"), Some(invoice.id.as_str()));
    assert_eq!(line.attributes[SOURCE_STATE], json!("invoiced"));

    // Odoo clears the line's invoice.
    h.replay
        .update_record(
            "account.analytic.line",
            LINE,
            changes(json!({
                "write_date": "2026-12-05 10:00:00",
                "timesheet_invoice_id": false,
            })),
        )
        .unwrap();
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.state, "submitted");
    assert_eq!(line.ref_id("invoice"), None);
}

#[tokio::test]
async fn odoo_refusal_overrides_steward() {
    let h = harness().await;
    run(&h).await;
    let expense = h.mirrored("hr.expense", EXPENSE).unwrap();
    decide(&h, &expense, "approved").await;

    h.replay
        .update_record(
            "hr.expense",
            EXPENSE,
            changes(json!({"write_date": "2026-12-05 09:00:00", "state": "refused"})),
        )
        .unwrap();
    run(&h).await;
    let expense = h.mirrored("hr.expense", EXPENSE).unwrap();
    assert_eq!(expense.state, "rejected");
}

#[tokio::test]
async fn entry_without_source_state() {
    let h = harness().await;
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    forget_source_state(&h, &line).await;
    decide(&h, &line, "approved").await;

    // The line was not written in Odoo since, so the approval stays and the state is stored.
    let report = run(&h).await;
    assert_eq!(report.model("account.analytic.line").unwrap().updated, 1);
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.state, "approved");
    assert_eq!(line.attributes[SOURCE_STATE], json!("submitted"));

    // A line written in Odoo since the last sync follows Odoo's state.
    forget_source_state(&h, &line).await;
    h.replay
        .update_record(
            "account.analytic.line",
            LINE,
            changes(json!({"write_date": "2026-12-05 09:00:00"})),
        )
        .unwrap();
    run(&h).await;
    let line = h.mirrored("account.analytic.line", LINE).unwrap();
    assert_eq!(line.state, "submitted");
    assert_eq!(line.attributes[SOURCE_STATE], json!("submitted"));
}
