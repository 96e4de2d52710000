//! The sync end to end: the replay server on loopback, the engine on a real SQLite file.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use steward_domain::Kind;
use steward_odoo::{CONTRACT_MODEL, OWN_COMPANY, SyncReport, sync};
use steward_store::{FindingQuery, RecordQuery};
use support::{Harness, harness, options};

async fn run(h: &Harness) -> SyncReport {
    sync(&h.engine, &h.config, &options())
        .await
        .unwrap_or_else(|e| panic!("sync failed: {e}"))
}

fn failures(report: &SyncReport) -> Vec<String> {
    report
        .failures()
        .map(|f| format!("{} {}: {}", f.model, f.id, f.error))
        .collect()
}

fn changes(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn full_sync_mirrors_the_demo_firm() {
    let h = harness().await;
    let report = run(&h).await;
    assert_eq!(failures(&report), Vec::<String>::new());
    assert!(!report.incremental);

    assert_eq!(h.count(Kind::Timesheet), 532);
    assert_eq!(h.count(Kind::Employee), 20);
    assert_eq!(h.count(Kind::Task), 64);
    assert_eq!(h.count(Kind::Expense), 16);
    assert_eq!(h.count(Kind::Opportunity), 23);
    assert_eq!(h.count(Kind::WorkCalendar), 3);
    assert_eq!(h.count(Kind::Leave), 12);
    assert_eq!(h.count(Kind::Service), 17);
    assert_eq!(h.count(Kind::Project), 8);
    assert_eq!(h.count(Kind::Milestone), 5);
    assert_eq!(h.count(Kind::Invoice), 9);
    assert_eq!(h.count(Kind::InvoiceLine), 16);

    let timesheets = report.model("account.analytic.line").unwrap();
    assert_eq!(timesheets.read, 532);
    assert_eq!(timesheets.created, 532);
    assert_eq!(timesheets.cursor.as_deref(), Some("2026-12-04 15:24:14"));
    assert_eq!(
        h.cursor("account.analytic.line").as_deref(),
        Some("2026-12-04 15:24:14")
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["models"][0]["model"], "res.users");
}

#[tokio::test]
async fn contracts_follow_service_lines() {
    let h = harness().await;
    run(&h).await;
    let expected = BTreeMap::from([
        ("S00002", ("time_and_materials", "2947.50", "draft")),
        ("S00003", ("mixed", "1057.50", "draft")),
        ("S00004", ("time_and_materials", "1200.00", "active")),
        ("S00020", ("time_and_materials", "2947.50", "active")),
        ("S00021", ("mixed", "21900.00", "active")),
        ("S00022", ("mixed", "48700.00", "active")),
        ("S00023", ("mixed", "6250.00", "active")),
    ]);
    let contracts = steward_store::read(h.store(), |tx| {
        tx.records(&RecordQuery {
            kind: Some(Kind::Contract),
            limit: 100,
            ..Default::default()
        })
    })
    .unwrap()
    .items;
    let found: BTreeMap<String, (String, String, String)> = contracts
        .iter()
        .map(|c| {
            (
                c.text("reference").unwrap().to_string(),
                (
                    c.text("billing_model").unwrap().to_string(),
                    c.text("amount").unwrap().to_string(),
                    c.state.clone(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (String, String, String)> = expected
        .into_iter()
        .map(|(k, (m, a, s))| (k.to_string(), (m.into(), a.into(), s.into())))
        .collect();
    assert_eq!(found, expected);

    let contract = h.mirrored(CONTRACT_MODEL, 21).unwrap();
    let opportunity = h.mirrored("sale.order", 21).unwrap();
    assert_eq!(
        contract.ref_id("opportunity"),
        Some(opportunity.id.as_str())
    );
    assert_eq!(opportunity.state, "won");
    assert_eq!(opportunity.text("amount"), Some("21900.00"));
    assert_eq!(opportunity.text("won_at"), Some("2026-11-16T15:24:17Z"));
    let client = h.mirrored("res.partner", 10).unwrap();
    assert_eq!(opportunity.ref_id("client"), Some(client.id.as_str()));

    let line = h.mirrored("sale.order.line", 47).unwrap();
    assert_eq!(line.ref_id("contract"), Some(contract.id.as_str()));
    assert_eq!(line.text("billing_model"), Some("time_and_materials"));
    assert_eq!(line.text("unit_price"), Some("200.00"));
    assert_eq!(line.text("discount"), Some("10"));
    assert_eq!(line.text("tax_rate"), Some("15"));
    assert_eq!(line.text("qty_delivered"), Some("107"));
    let task = h.mirrored("project.task", 46).unwrap();
    assert_eq!(
        line.ref_id("task"),
        Some(task.id.as_str()),
        "resolved by the second pass"
    );
    assert!(
        line.attributes.get("unresolved_refs").is_none(),
        "{:?}",
        line.attributes
    );

    let goods = h.mirrored("sale.order.line", 1);
    assert!(goods.is_none(), "goods lines are not contract lines");
    assert_eq!(h.count(Kind::ContractLine), 23);
}

#[tokio::test]
async fn people_and_calendars_are_linked() {
    let h = harness().await;
    run(&h).await;
    let mitchell = h.mirrored("hr.employee", 1).unwrap();
    let jeffrey = h.mirrored("hr.employee", 2).unwrap();
    let paul = h.mirrored("hr.employee", 18).unwrap();
    let walter = h.mirrored("hr.employee", 19).unwrap();
    assert_eq!(mitchell.ref_id("manager"), None);
    assert_eq!(jeffrey.ref_id("manager"), Some(mitchell.id.as_str()));
    assert_eq!(walter.ref_id("manager"), Some(paul.id.as_str()));
    assert_eq!(mitchell.text("user_login"), Some("admin"));
    assert_eq!(mitchell.text("department"), Some("Management"));
    assert_eq!(jeffrey.text("department"), Some("Sales"));
    assert_eq!(mitchell.text("cost_rate"), Some("100.00"));
    assert_eq!(mitchell.text("currency"), Some("USD"));
    assert_eq!(mitchell.text("timezone"), Some("Europe/Brussels"));

    let calendar = h.mirrored("resource.calendar", 3).unwrap();
    assert_eq!(
        mitchell.ref_id("calendar"),
        h.mirrored("resource.calendar", 1).map(|c| c.id).as_deref()
    );
    assert_eq!(calendar.text("hours_per_day"), Some("7.6"));
    assert_eq!(
        calendar.get("week_hours"),
        Some(
            &json!({"mon": "7.6", "tue": "7.6", "wed": "7.6", "thu": "7.6", "fri": "7.6",
            "sat": "0", "sun": "0"})
        )
    );

    let own = h.mirrored("res.partner", 1).unwrap();
    assert_eq!(own.kind, Kind::Client);
    assert_eq!(own.attributes.get(OWN_COMPANY), Some(&json!(true)));
    let contact = h.mirrored("res.partner", 39).unwrap();
    assert_eq!(contact.kind, Kind::Contact);
    assert_eq!(contact.ref_id("client"), Some(own.id.as_str()));
    assert!(
        h.mirrored("res.partner", 41).is_none(),
        "an employee's work contact"
    );

    let task = h.mirrored("project.task", 67).unwrap();
    let marc = h.mirrored("hr.employee", 3).unwrap();
    let assignees: Vec<&str> = task
        .get("assignees")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(assignees, [marc.id.as_str(), mitchell.id.as_str()]);

    let leave = h.mirrored("hr.leave", 6).unwrap();
    assert_eq!(leave.state, "requested");
    assert_eq!(
        leave.ref_id("employee"),
        h.mirrored("hr.employee", 14).map(|e| e.id).as_deref()
    );
}

#[tokio::test]
async fn second_sync_changes_nothing() {
    let h = harness().await;
    run(&h).await;
    let events = h.events();
    let timesheets = h.count(Kind::Timesheet);

    let report = run(&h).await;
    assert!(report.incremental);
    assert_eq!(report.created(), 0);
    assert_eq!(report.updated(), 0);
    assert_eq!(failures(&report), Vec::<String>::new());
    assert_eq!(h.events(), events, "no event appended");
    assert_eq!(h.count(Kind::Timesheet), timesheets);
    let read = report.model("account.analytic.line").unwrap();
    assert_eq!(read.since.as_deref(), Some("2026-12-04 15:24:14"));
}

#[tokio::test]
async fn second_sync_reads_each_row_once() {
    let h = harness().await;
    run(&h).await;
    let events = h.events();

    // Every captured timesheet line, order line and calendar line was written in the last
    // second the first sync saw, so the cursor query returns them again. The dependant reads
    // must not fetch them a second time.
    let report = run(&h).await;
    let read = |model: &str| report.model(model).unwrap().read;
    assert_eq!(read("account.analytic.line"), 532);
    assert_eq!(read("sale.order.line"), 61);
    assert_eq!(read("resource.calendar.attendance"), 45);
    assert_eq!(read("hr.employee"), 20);
    assert_eq!(report.updated(), 0);
    assert_eq!(h.events(), events, "no event appended");
}

#[tokio::test]
async fn changed_order_line_remaps_its_contract() {
    let h = harness().await;
    run(&h).await;
    let contract = h.mirrored(CONTRACT_MODEL, 21).unwrap();
    assert_eq!(contract.text("amount"), Some("21900.00"));

    // These changes move the cursors of orders and lines past the second in which the capture
    // wrote them, so later syncs read again only order 21, whose write_date is the cursor.
    h.replay
        .update_record(
            "sale.order",
            21,
            changes(json!({"write_date": "2026-12-05 09:00:00"})),
        )
        .unwrap();
    for (write_date, subtotal, amount) in [
        ("2026-12-05 09:00:00", 4600.0, "22000.00"),
        ("2026-12-05 10:00:00", 4700.0, "22100.00"),
    ] {
        h.replay
            .update_record(
                "sale.order.line",
                47,
                changes(json!({"write_date": write_date, "price_subtotal": subtotal})),
            )
            .unwrap();
        let report = run(&h).await;
        assert_eq!(failures(&report), Vec::<String>::new());
        let contract = h.mirrored(CONTRACT_MODEL, 21).unwrap();
        assert_eq!(contract.text("amount"), Some(amount), "{write_date}");
    }
    let cursor = h.cursor("sale.order.line");
    assert_eq!(cursor.as_deref(), Some("2026-12-05 10:00:00"));

    h.replay
        .update_record(
            "sale.order.line",
            47,
            changes(json!({"write_date": "2026-12-05 11:00:00", "price_subtotal": 4800.0})),
        )
        .unwrap();
    let report = run(&h).await;
    let lines = report.model("sale.order.line").unwrap();
    assert_eq!(
        lines.read, 8,
        "the changed line, then the other 7 lines of its order"
    );
    let contract = h.mirrored(CONTRACT_MODEL, 21).unwrap();
    assert_eq!(contract.text("amount"), Some("22200.00"));
}

#[tokio::test]
async fn incremental_sync_reads_only_changes() {
    let h = harness().await;
    run(&h).await;
    let before = h.mirrored("account.analytic.line", 7).unwrap();
    let events = h.events();

    h.replay
        .update_record(
            "account.analytic.line",
            7,
            changes(json!({"write_date": "2026-12-05 09:00:00", "unit_amount": 3.5})),
        )
        .unwrap();
    h.replay.clear_requests();
    let report = run(&h).await;
    assert_eq!(report.created(), 0);
    assert_eq!(report.updated(), 1);
    assert_eq!(report.model("account.analytic.line").unwrap().updated, 1);
    assert_eq!(h.events(), events + 1);
    let after = h.mirrored("account.analytic.line", 7).unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.text("hours"), Some("3.5"));
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        h.cursor("account.analytic.line").as_deref(),
        Some("2026-12-05 09:00:00")
    );

    let timesheet_reads: Vec<Value> = h
        .replay
        .requests()
        .into_iter()
        .filter(|r| r.pointer("/params/args/3") == Some(&json!("account.analytic.line")))
        .collect();
    let first = &timesheet_reads[0]["params"]["args"];
    assert_eq!(
        first[5][0],
        json!([
            ["project_id", "!=", false],
            ["write_date", ">=", "2026-12-04 15:24:14"],
            ["id", ">", 0]
        ])
    );
    assert_eq!(first[6]["order"], "id asc");
    assert_eq!(first[6]["limit"], 100);
    assert!(first[6].get("offset").is_none());

    let report = run(&h).await;
    assert_eq!(report.model("account.analytic.line").unwrap().read, 1);
    assert_eq!(report.updated(), 0);
    assert_eq!(h.events(), events + 1);
}

#[tokio::test]
async fn managers_resolve_in_any_order() {
    let h = harness().await;
    h.replay
        .update_record(
            "hr.employee",
            2,
            changes(json!({"parent_id": [20, "Beth Evans"]})),
        )
        .unwrap();
    let report = run(&h).await;
    assert_eq!(failures(&report), Vec::<String>::new());
    let jeffrey = h.mirrored("hr.employee", 2).unwrap();
    let beth = h.mirrored("hr.employee", 20).unwrap();
    assert_eq!(jeffrey.ref_id("manager"), Some(beth.id.as_str()));
    assert!(jeffrey.attributes.get("unresolved_refs").is_none());
    let employees = report.model("hr.employee").unwrap();
    assert_eq!(employees.created, 20);
    assert_eq!(
        employees.updated, 0,
        "a record created in this sync counts once"
    );
}

#[tokio::test]
async fn invalid_row_is_reported_alone() {
    let h = harness().await;
    h.replay
        .update_record(
            "account.analytic.line",
            9,
            changes(json!({"unit_amount": 30.0, "write_date": "2026-12-04 15:23:59"})),
        )
        .unwrap();
    let report = run(&h).await;
    let failed = &report.model("account.analytic.line").unwrap().failed;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].id, 9);
    assert_eq!(failed[0].kind.as_deref(), Some("timesheet"));
    assert!(failed[0].error.contains("30"), "{}", failed[0].error);
    assert!(failed[0].error.contains("hours"), "{}", failed[0].error);
    assert_eq!(h.count(Kind::Timesheet), 531);
    assert_eq!(
        h.cursor("account.analytic.line").as_deref(),
        Some("2026-12-04 15:23:59"),
        "the failed row is read again next time"
    );
}

#[tokio::test]
async fn controls_find_the_demo_anomalies() {
    let h = harness().await;
    run(&h).await;
    h.engine.run_controls().await.unwrap();
    let findings = steward_store::read(h.store(), |tx| {
        tx.findings(&FindingQuery {
            limit: 1000,
            state: Some("open".into()),
            ..Default::default()
        })
    })
    .unwrap()
    .items;

    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    let has = |parts: &[&str]| messages.iter().any(|m| parts.iter().all(|p| m.contains(p)));
    assert!(
        has(&["Mitchell Admin", "20 hours", "2026-11-26"]),
        "{messages:#?}"
    );
    assert!(
        has(&["Mitchell Admin", "20 hours", "2026-12-04"]),
        "{messages:#?}"
    );
    assert!(
        has(&["Randall Lewis", "16 hours", "2026-12-01"]),
        "{messages:#?}"
    );
    assert!(
        has(&["Mitchell Admin has no manager", "expenses"]),
        "{messages:#?}"
    );
}
