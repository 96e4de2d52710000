//! `steward sync odoo` against a loopback Odoo that answers from the captured demo firm, then
//! the API over what was synced.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{Server, all, shared_data, steward};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_odoo_firm_is_served_by_the_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let database = database.to_str().unwrap().to_string();
    let sync = [
        "sync",
        "odoo",
        "--url",
        &odoo,
        "--db",
        "steward_demo",
        "--login",
        "admin",
        "--password",
        "admin",
        "--database",
        &database,
        "--json",
    ];
    let (code, stdout, stderr) = steward(&sync);
    assert_eq!(code, 0, "{stderr}");
    let first: Value = serde_json::from_str(&stdout).unwrap();
    // The starter controls of the foundation, by name; the delivery, time and billing
    // controls add their own findings on top.
    let open = &first["controls"]["open"];
    assert_eq!(open["daily_hours"], 12, "{open}");
    assert_eq!(open["approver_missing"], 1, "{open}");
    assert_eq!(open["self_approval"], 0, "{open}");
    assert_eq!(open["overlapping_entries"], 0, "{open}");
    assert_eq!(open["time_on_closed_or_missing_project"], 0, "{open}");
    let total: u64 = open
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(first["controls"]["opened"], total, "{}", first["controls"]);

    let (code, stdout, stderr) = steward(&sync);
    assert_eq!(code, 0, "{stderr}");
    let second: Value = serde_json::from_str(&stdout).unwrap();
    for model in second["sync"]["models"].as_array().unwrap() {
        assert_eq!(model["created"], 0, "{model}");
        assert_eq!(model["updated"], 0, "{model}");
    }

    let server = Server::start(dir.path(), &[]).await;
    let events_before = all(&server, "events").await.len();
    let count = |items: &Vec<Value>| items.len();
    assert_eq!(count(&all(&server, "timesheets").await), 532);
    assert_eq!(count(&all(&server, "employees").await), 20);
    assert_eq!(count(&all(&server, "tasks").await), 64);
    assert_eq!(count(&all(&server, "expenses").await), 16);

    let deals = all(&server, "opportunities").await;
    let numbers: Vec<&str> = deals
        .iter()
        .map(|d| d["reference"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 23);
    for n in 1..=23 {
        assert!(
            numbers.contains(&format!("S{n:05}").as_str()),
            "S{n:05} is missing"
        );
    }
    let contracts: BTreeMap<String, String> = all(&server, "contracts")
        .await
        .iter()
        .map(|c| {
            (
                c["reference"].as_str().unwrap().to_string(),
                c["billing_model"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("S00002", "time_and_materials"),
        ("S00003", "mixed"),
        ("S00004", "time_and_materials"),
        ("S00020", "time_and_materials"),
        ("S00021", "mixed"),
        ("S00022", "mixed"),
        ("S00023", "mixed"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        contracts, expected,
        "orders with service lines are contracts"
    );

    let findings: Vec<String> = all(&server, "findings?state=open")
        .await
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "Mitchell Admin logged 20 hours on Thursday 2026-11-26",
        "Mitchell Admin logged 20 hours on Friday 2026-12-04",
        "Randall Lewis logged 16 hours on Tuesday 2026-12-01",
        "Mitchell Admin has no manager, so nobody can approve their",
    ] {
        assert!(
            findings.iter().any(|f| f.starts_with(expected)),
            "no finding starts with {expected:?}: {findings:#?}"
        );
    }
    let admin = findings
        .iter()
        .find(|f| f.starts_with("Mitchell Admin has no manager"))
        .unwrap();
    assert!(admin.contains("4 expenses (2909.60 USD)"), "{admin}");
    assert_eq!(
        all(&server, "events").await.len(),
        events_before,
        "serving appends nothing"
    );
}
