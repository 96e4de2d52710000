//! Billing on the real Odoo demo firm, synced through the loopback replay server: readiness of
//! each contract with its reasons, drafts for the ready ones (twice, billing nothing twice),
//! an override and a release through approvals, the reconciliation report, the KPIs and
//! the comparison of quantities with Odoo's.

mod common;

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Server, TOKEN, shared_data, steward};

const PERIOD: &str = "2026-11";

async fn token_for(server: &Server, name: &str, employee: &str) -> String {
    let response = server
        .client
        .post(format!("{}/api/v1/tokens", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": name, "role": "finance", "employee": employee}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["secret"].as_str().unwrap().to_string()
}

async fn post(server: &Server, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Approves every step of a request, each by the person it was routed to.
async fn approve(server: &Server, request: &str) {
    for round in 0..4 {
        let view = server.get(&format!("/api/v1/approvals/{request}")).await;
        if view["state"] == "approved" {
            return;
        }
        let step = view["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["state"] == "pending")
            .unwrap_or_else(|| panic!("no pending step: {view}"));
        let approver = step["approver"]
            .as_str()
            .or_else(|| step["candidates"][0].as_str())
            .unwrap_or_else(|| panic!("nobody can decide: {step}"));
        let token = token_for(server, &format!("approver-{request}-{round}"), approver).await;
        let path = format!("/api/v1/approvals/{request}/approve");
        let (status, body) = post(server, &path, &token, json!({})).await;
        assert!(status.is_success(), "{status}: {body}");
    }
    panic!("request {request} was not approved after four steps");
}

fn billing(args: &[&str], database: &str) -> Value {
    let mut full = vec!["billing"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--database", database, "--json"]);
    let (code, stdout, stderr) = steward(&full);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn codes(contract: &Value) -> Vec<String> {
    contract["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_firm_is_gated_drafted_and_reconciled() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    let examples = format!("{}/../../rules/examples", env!("CARGO_MANIFEST_DIR"));
    drop(Server::start(dir.path(), &["--rules", &examples]).await);
    let (code, _, stderr) = steward(&[
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
    ]);
    assert_eq!(code, 0, "{stderr}");

    // Readiness: the five confirmed orders with service lines are billed; quotations are not.
    let readiness = billing(&["readiness", "--period", PERIOD], &database);
    let by_order: BTreeMap<String, Value> = readiness
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["reference"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    let orders: Vec<&str> = by_order.keys().map(String::as_str).collect();
    assert_eq!(orders, ["S00004", "S00020", "S00021", "S00022", "S00023"]);
    // S00004 was confirmed on 2026-12-04, after November.
    assert_eq!(codes(&by_order["S00004"]), ["before_contract_start"]);
    assert_eq!(codes(&by_order["S00020"]), ["nothing_to_bill"]);
    assert_eq!(codes(&by_order["S00021"]), ["not_approved"]);
    assert_eq!(codes(&by_order["S00022"]), ["not_approved"]);
    assert!(
        by_order["S00021"]["blockers"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("75 billable timesheet entries (143 h) are submitted"),
        "{}",
        by_order["S00021"]
    );
    assert_eq!(by_order["S00023"]["ready"], true);
    assert_eq!(by_order["S00023"]["untaxed"]["amount"], "1250.00");

    // A second month shows the milestone reached in December and not accepted.
    let december = billing(
        &[
            "readiness",
            "--period",
            "2026-12",
            "--contract",
            by_order["S00021"]["contract"].as_str().unwrap(),
        ],
        &database,
    );
    assert_eq!(codes(&december[0]), ["not_approved", "not_accepted"]);

    // A month before a contract's start, its confirmation date in Odoo, bills nothing.
    let early = billing(&["draft", "--period", "2020-01"], &database);
    assert_eq!(early["created"], 0, "{early}");
    assert_eq!(early["blocked"], 5, "{early}");
    let early = billing(&["readiness", "--period", "2020-01"], &database);
    for contract in early.as_array().unwrap() {
        assert!(
            codes(contract).contains(&"before_contract_start".to_string()),
            "{contract}"
        );
    }

    // Drafts: only the ready contract; a second run finds the same draft and writes nothing.
    let first = billing(&["draft", "--period", PERIOD], &database);
    assert_eq!(first["created"], 1, "{first}");
    assert_eq!(first["blocked"], 4);
    let created = first["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "created")
        .unwrap();
    assert_eq!(created["reference"], "S00023");
    assert_eq!(created["total"]["amount"], "1437.50");
    assert_eq!(created["rounding"], "per_line");
    let second = billing(&["draft", "--period", PERIOD], &database);
    assert_eq!(second["created"], 0, "{second}");
    assert_eq!(second["existing"], 1);
    let existing = second["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "existing")
        .unwrap();
    assert_eq!(existing["invoice"], created["invoice"]);

    // The readiness text names the draft already written, so that a clerk does not draft it by hand.
    let (code, text, stderr) = steward(&[
        "billing",
        "readiness",
        "--period",
        PERIOD,
        "--database",
        &database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let invoice = created["invoice"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "draft invoice {invoice} is already written for this month"
        )),
        "{text}"
    );

    let server = Server::start(dir.path(), &[]).await;
    let invoices = common::all(&server, "invoices?state=draft").await;
    assert_eq!(invoices.len(), 1, "drafting twice wrote one invoice");
    let invoice_id = created["invoice"].as_str().unwrap();
    let lines = common::all(&server, &format!("invoice-lines?invoice={invoice_id}")).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["sources"][0]["kind"], "contract_line");
    assert_eq!(lines[0]["sources"][0]["quantity"], "5");

    // An approved override lets S00022 be drafted; its blockers become warnings.
    let s00022 = by_order["S00022"]["contract"].as_str().unwrap();
    let (status, opened) = post(
        &server,
        "/api/v1/approvals",
        TOKEN,
        json!({"kind": "billing_override", "subject": {"kind": "contract", "id": s00022}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{opened}");
    assert!(opened.to_string().contains("needs `period`"), "{opened}");
    let (status, opened) = post(
        &server,
        "/api/v1/approvals",
        TOKEN,
        json!({"kind": "billing_override", "subject": {"kind": "contract", "id": s00022}, "period": PERIOD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let override_id = opened["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/billing-readiness?period={PERIOD}&contract={s00022}");
    let still = server.get(&path).await;
    assert_eq!(
        still["items"][0]["ready"], false,
        "a pending request lifts nothing"
    );
    approve(&server, &override_id).await;
    let lifted = server.get(&path).await;
    let item = &lifted["items"][0];
    assert_eq!(item["ready"], true, "{item}");
    assert_eq!(item["override_request"], override_id.as_str());
    assert_eq!(item["warnings"][0]["code"], "not_approved");
    let (status, drafted) = post(
        &server,
        "/api/v1/billing-drafts",
        TOKEN,
        json!({"period": PERIOD, "contract": s00022}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{drafted}");
    let override_draft = &drafted["outcomes"][0];
    assert_eq!(override_draft["override_request"], override_id.as_str());
    assert_eq!(override_draft["warnings"][0]["code"], "not_approved");
    assert_eq!(override_draft["untaxed"]["amount"], "37500.00");
    let s00022_invoice = override_draft["invoice"].as_str().unwrap().to_string();
    let record = server
        .get(&format!("/api/v1/invoices/{s00022_invoice}"))
        .await;
    assert_eq!(record["override_request"], override_id.as_str());
    let (status, again) = post(
        &server,
        "/api/v1/billing-drafts",
        TOKEN,
        json!({"period": PERIOD, "contract": s00022}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["existing"], 1);

    // Release only through an approved invoice_release request.
    let (status, refused) = post(
        &server,
        &format!("/api/v1/invoices/{s00022_invoice}/transition"),
        TOKEN,
        json!({"state": "pending_approval"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    let (status, refused) = post(
        &server,
        &format!("/api/v1/invoices/{s00022_invoice}/transition"),
        TOKEN,
        json!({"state": "released"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "approval_required");
    let (status, release) = post(
        &server,
        "/api/v1/approvals",
        TOKEN,
        json!({"kind": "invoice_release", "subject": {"kind": "invoice", "id": s00022_invoice}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{release}");
    approve(&server, release["id"].as_str().unwrap()).await;
    let released = server
        .get(&format!("/api/v1/invoices/{s00022_invoice}"))
        .await;
    assert_eq!(released["state"], "released");

    // Reconciliation: the released block is invoiced once; the S00023 block waits in draft;
    // unapproved time is listed with its reason.
    let report = server
        .get(&format!(
            "/api/v1/reconciliation?period={PERIOD}&limit=1000"
        ))
        .await;
    let statuses = &report["statuses"];
    assert_eq!(statuses["invoiced"], 1, "{statuses}");
    assert_eq!(statuses["in_draft"], 1, "{statuses}");
    assert_eq!(statuses["not_approved"], 82, "{statuses}");
    assert_eq!(report["reconciled"], false);
    let invoiced: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "invoiced")
        .collect();
    assert_eq!(invoiced[0]["invoices"], json!([s00022_invoice]));
    for entry in report["items"].as_array().unwrap() {
        assert!(!entry["reason"].as_str().unwrap().is_empty(), "{entry}");
    }

    // KPIs over the same month.
    let kpis = server.get(&format!("/api/v1/kpis?period={PERIOD}")).await;
    assert!(kpis["utilization"]["value"].is_string(), "{kpis}");
    assert!(kpis["approval_backlog"]["pending"].as_u64().unwrap() > 0);
    assert!(kpis["won_to_kickoff"]["median_days"].is_null());
    // S00023's draft is written and S00022's invoice released; every other contract is
    // blocked, so a draft run would bill nothing more this month.
    assert_eq!(kpis["unbilled"]["ready_amount"], json!({}), "{kpis}");
    assert_eq!(kpis["unbilled"]["hours"], "167", "{kpis}");
    let (status, bad) = post(
        &server,
        "/api/v1/billing-drafts",
        TOKEN,
        json!({"period": "11/2026"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("period"),
        "{bad}"
    );
    drop(server);

    // Odoo's quantities beside Steward's, each difference explained.
    let rows = billing(&["compare-odoo"], &database);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 23, "every synced service line");
    assert!(rows.iter().all(|r| r["invoiced_in_odoo"] == false));
    let line = |odoo_line: &str| {
        rows.iter()
            .find(|r| r["odoo_line"] == odoo_line)
            .unwrap_or_else(|| panic!("no row for sale order line {odoo_line}"))
    };
    assert_eq!(line("47")["steward_delivered"], "107");
    assert_eq!(line("47")["odoo_delivered"], "107");
    assert_eq!(
        line("47")["delivered_explanation"],
        "same delivered quantity"
    );
    assert!(
        line("53")["delivered_explanation"]
            .as_str()
            .unwrap()
            .contains("the 23 h logged on it are covered by the line's price"),
        "{}",
        line("53")
    );
    assert_eq!(line("54")["steward_invoiced"], "150");
    assert!(
        line("54")["invoiced_explanation"]
            .as_str()
            .unwrap()
            .starts_with("Steward invoiced 150 more"),
        "{}",
        line("54")
    );
    assert_eq!(
        line("58")["invoiced_explanation"],
        "not invoiced on either side"
    );
}

/// Syncs the Odoo demo firm, without a rules folder, into `firm.db` under `dir` and returns
/// the database path.
async fn synced_firm(dir: &std::path::Path) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));
    let database = dir.join("firm.db").to_str().unwrap().to_string();
    let (code, _, stderr) = steward(&[
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
    ]);
    assert_eq!(code, 0, "{stderr}");
    database
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_text_names_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let database = synced_firm(dir.path()).await;
    let (code, stdout, stderr) = steward(&[
        "billing",
        "reconcile",
        "--period",
        PERIOD,
        "--database",
        &database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let not_approved = stdout
        .lines()
        .find(|line| line.contains(" timesheet "))
        .unwrap_or_else(|| panic!("no timesheet line in {stdout}"));
    assert!(
        not_approved.ends_with(": not_approved (submitted, not approved)"),
        "{not_approved}"
    );
    assert!(!stdout.contains("NotApproved"), "{stdout}");
    assert!(stdout.contains("\nnot_approved: "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_text_starts_with_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let database = synced_firm(dir.path()).await;
    let report = billing(&["reconcile", "--period", PERIOD], &database);
    let contracts = report["contracts"].as_array().unwrap();
    assert!(contracts.len() > 1, "{report}");

    let (code, stdout, stderr) = steward(&[
        "billing",
        "reconcile",
        "--period",
        PERIOD,
        "--database",
        &database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (summary, items) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line after the summary: {stdout}"));
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), contracts.len(), "{summary}");
    let mut unsettled = 0;
    for (line, contract) in lines.iter().zip(contracts) {
        let reference = contract["reference"].as_str().unwrap();
        let id = contract["contract"].as_str().unwrap();
        assert!(line.starts_with(&format!("{reference} ({id}): ")), "{line}");
        let mut counts = BTreeMap::<String, usize>::new();
        for entry in contract["entries"].as_array().unwrap() {
            let status = entry["status"].as_str().unwrap().to_string();
            *counts.entry(status).or_default() += 1;
        }
        for (status, count) in &counts {
            assert!(line.contains(&format!("{status} {count}")), "{line}");
        }
        let settled = ["invoiced", "not_billable", "not_due"];
        let reconciled = counts.keys().all(|s| settled.contains(&s.as_str()));
        if reconciled {
            assert!(line.contains(": reconciled ("), "{line}");
        } else {
            unsettled += 1;
            assert!(line.contains(": not reconciled ("), "{line}");
        }
        if counts.is_empty() {
            assert!(line.ends_with("(no items)"), "{line}");
        }
    }
    assert!(unsettled > 0, "{summary}");
    assert!(items.contains(" timesheet "), "{items}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_rows_name_reference() {
    let dir = tempfile::tempdir().unwrap();
    synced_firm(dir.path()).await;
    let server = Server::start(dir.path(), &[]).await;
    let contracts: BTreeMap<String, String> = common::all(&server, "contracts")
        .await
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_string();
            (id, c["reference"].as_str().unwrap().to_string())
        })
        .collect();
    let page = server
        .get(&format!("/api/v1/reconciliation?period={PERIOD}&limit=500"))
        .await;
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{page}");
    for item in items {
        let contract = item["contract"].as_str().unwrap();
        assert_eq!(item["reference"], contracts[contract], "{item}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_contract_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let database = synced_firm(dir.path()).await;
    for command in ["readiness", "draft", "reconcile"] {
        let (code, _, stderr) = steward(&[
            "billing",
            command,
            "--contract",
            "NOPE",
            "--database",
            &database,
        ]);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains("no contract has the id or reference NOPE; pass a contract id"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("`steward billing readiness` lists them without --contract"),
            "{command}: {stderr}"
        );
    }

    let server = Server::start(dir.path(), &[]).await;
    let get = |path: String| {
        let request = server.client.get(format!("{}{path}", server.base));
        request.bearer_auth(TOKEN).send()
    };
    let readiness = get(format!(
        "/api/v1/billing-readiness?period={PERIOD}&contract=NOPE"
    ));
    let reconciliation = get(format!(
        "/api/v1/reconciliation?period={PERIOD}&contract=NOPE"
    ));
    let mut responses = Vec::new();
    for (endpoint, response) in [
        ("billing-readiness", readiness.await.unwrap()),
        ("reconciliation", reconciliation.await.unwrap()),
    ] {
        let status = response.status();
        responses.push((endpoint, status, response.json::<Value>().await.unwrap()));
    }
    let body = json!({"period": PERIOD, "contract": "NOPE"});
    let (status, drafts) = post(&server, "/api/v1/billing-drafts", TOKEN, body).await;
    responses.push(("billing-drafts", status, drafts));
    for (endpoint, status, body) in responses {
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{endpoint}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("no contract has the id or reference NOPE; pass a contract id"),
            "{endpoint}: {message}"
        );
        assert!(
            message.contains("GET /api/v1/contracts"),
            "{endpoint}: {message}"
        );
        let detail = &body["error"]["details"][0];
        assert_eq!(detail["field"], "contract", "{endpoint}: {body}");
        assert_eq!(detail["value"], "NOPE", "{endpoint}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_option_takes_reference() {
    let dir = tempfile::tempdir().unwrap();
    let database = synced_firm(dir.path()).await;
    let report = billing(
        &["readiness", "--period", PERIOD, "--contract", "S00004"],
        &database,
    );
    let contracts = report.as_array().unwrap();
    assert_eq!(contracts.len(), 1, "{report}");
    assert_eq!(contracts[0]["reference"], "S00004");
    let id = contracts[0]["contract"].as_str().unwrap();
    let message = contracts[0]["blockers"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("contract S00004 ({id})")),
        "{message}"
    );

    let (code, text, stderr) = steward(&[
        "billing",
        "draft",
        "--period",
        PERIOD,
        "--contract",
        "S00004",
        "--database",
        &database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.starts_with(&format!("S00004 ({id}) blocked: ")),
        "{text}"
    );

    let (code, text, stderr) = steward(&[
        "billing",
        "reconcile",
        "--period",
        "2026-12",
        "--contract",
        "S00021",
        "--database",
        &database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("S00021 ("), "{text}");

    let server = Server::start(dir.path(), &[]).await;
    let path = format!("/api/v1/billing-readiness?period={PERIOD}&contract=S00004");
    let by_reference = server.get(&path).await;
    assert_eq!(by_reference["items"][0]["contract"], id, "{by_reference}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_firm_has_contracts_to_draft() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]).await;
    let findings = common::all(&server, "findings?state=open").await;
    drop(server);
    // The example billing section leaves the planted exceptions for the controls to find.
    for control in [
        "daily_hours",
        "approver_missing",
        "self_approval",
        "time_on_closed_or_missing_project",
        "overlapping_entries",
    ] {
        assert!(
            findings.iter().any(|f| f["control"] == control),
            "no open {control} finding"
        );
    }

    // The demo firm's time spans the months before today, so each of them is checked.
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    let today = chrono::Utc::now().date_naive();
    let mut ready_months = Vec::new();
    for back in 1..=4 {
        let month = today - chrono::Months::new(back);
        let period = month.format("%Y-%m").to_string();
        let report = billing(&["readiness", "--period", &period], &database);
        let contracts = report.as_array().unwrap();
        for contract in contracts {
            assert!(
                !codes(contract).contains(&"tax_unavailable".to_string()),
                "{period}: {contract}"
            );
        }
        let ready = contracts.iter().filter(|c| c["ready"] == true).count();
        if ready > 0 {
            ready_months.push((period, ready));
        }
    }
    let Some((period, ready)) = ready_months.first() else {
        panic!("no contract of the demo firm is ready in the four months before {today}");
    };
    let drafts = billing(&["draft", "--period", period], &database);
    assert_eq!(drafts["created"], *ready, "{drafts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_month_draft_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]).await;
    let current = chrono::Utc::now().date_naive().format("%Y-%m").to_string();
    let (status, body) = post(
        &server,
        "/api/v1/billing-drafts",
        TOKEN,
        json!({"period": "2030-01"}),
    )
    .await;
    drop(server);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("billing period 2030-01 has not started yet"),
        "{message}"
    );
    assert!(
        message.contains(&format!("the current month is {current}")),
        "{message}"
    );

    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    for period in ["2030-01", "9999-12"] {
        let (code, stdout, stderr) = steward(&[
            "billing",
            "draft",
            "--period",
            period,
            "--database",
            &database,
        ]);
        assert_eq!(code, 1, "{period}: {stdout}");
        assert!(
            stderr.contains(&format!("billing period {period} has not started yet")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("the current month is {current}")),
            "{stderr}"
        );
    }
    let after = billing(&["readiness", "--period", &current], &database);
    let drafted = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["draft_invoice"].is_null())
        .count();
    assert_eq!(drafted, 0, "a rejected draft wrote invoices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_draft_is_not_called_earlier() {
    let dir = tempfile::tempdir().unwrap();
    drop(Server::start(dir.path(), &["--demo"]).await);
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    // Months counted back from the month after the demo firm's last day, whatever the day
    // the test runs.
    let (year, month_number, _) = steward_generator::DEMO_END;
    let today =
        chrono::NaiveDate::from_ymd_opt(year, month_number, 1).unwrap() + chrono::Months::new(1);
    let month = |back: u32| {
        (today - chrono::Months::new(back))
            .format("%Y-%m")
            .to_string()
    };
    // The newest month with a ready contract gets drafts, and the months before it see them.
    let ready = |period: &str| {
        let report = billing(&["readiness", "--period", period], &database);
        report
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ready"] == true)
    };
    let back = (1..=3)
        .find(|&back| ready(&month(back)))
        .expect("no contract of the demo firm is ready in the three months before today");
    let later = month(back);
    billing(&["draft", "--period", &later], &database);

    let mut blockers = Vec::new();
    for earlier_back in back + 1..=back + 3 {
        let earlier = month(earlier_back);
        let report = billing(&["readiness", "--period", &earlier], &database);
        for contract in report.as_array().unwrap() {
            for blocker in contract["blockers"].as_array().unwrap() {
                if blocker["code"] == "draft_pending" {
                    blockers.push((earlier.clone(), blocker.clone()));
                }
            }
        }
    }
    assert!(
        !blockers.is_empty(),
        "no draft_pending blocker before {later}"
    );
    for (earlier, blocker) in blockers {
        let message = blocker["message"].as_str().unwrap();
        let fix = blocker["fix"].as_str().unwrap();
        assert!(message.starts_with("draft invoice "), "{message}");
        assert!(message.contains(&format!("for {later} (")), "{message}");
        assert!(message.contains(&format!("after {earlier})")), "{message}");
        assert!(!message.contains("(s)"), "{message}");
        assert_eq!(
            fix,
            format!(
                "release or cancel the draft of {later} first, so that its items are not \
                 billed twice"
            )
        );
        assert!(!fix.contains("earlier"), "{fix}");
    }
}
