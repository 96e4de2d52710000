//! Approvals on the real Odoo demo firm: after a sync, reported expenses and unbilled weeks
//! of time are routed by the example policies; decision links are safe to GET and HEAD; the
//! first decision wins; the metrics show backlog and turnaround.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Server, TOKEN, all, shared_data, steward};

async fn token_for(server: &Server, name: &str, role: &str, employee: Option<&str>) -> String {
    let response = server
        .client
        .post(format!("{}/api/v1/tokens", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": name, "role": role, "employee": employee}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["secret"].as_str().unwrap().to_string()
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = server
        .client
        .request(method, format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_expenses_and_weeks_follow_the_firm_policies() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    let examples = format!("{}/../../rules/examples", env!("CARGO_MANIFEST_DIR"));

    // The policies are installed in the database by serving it once with the rules folder.
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
    let server = Server::start(dir.path(), &[]).await;

    let requests = all(&server, "approvals").await;
    let of_kind = |kind: &str| {
        requests
            .iter()
            .filter(|r| r["request_kind"] == kind)
            .collect::<Vec<_>>()
    };
    // The eleven reported expenses; the four drafts await their claimants.
    assert_eq!(of_kind("expense").len(), 11);
    let weeks = of_kind("timesheet_week");
    assert!(!weeks.is_empty());
    let uninvoiced: Vec<Value> = all(&server, "timesheets?state=submitted").await;
    let mut expected_weeks = std::collections::BTreeSet::new();
    for line in &uninvoiced {
        let day =
            chrono::NaiveDate::parse_from_str(line["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        let week = chrono::Datelike::iso_week(&day);
        expected_weeks.insert((
            line["employee"].as_str().unwrap().to_string(),
            format!("{}-W{:02}", week.year(), week.week()),
        ));
    }
    assert_eq!(
        weeks.len(),
        expected_weeks.len(),
        "one request per person and week"
    );

    // The administrator has no manager: his requests went to finance instead of stalling.
    let employees = all(&server, "employees").await;
    let id_of = |name: &str| {
        employees
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no employee {name}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (mitchell, marc, tina) = (
        id_of("Mitchell Admin"),
        id_of("Marc Demo"),
        id_of("Tina Williamson"),
    );
    let admin_requests: Vec<&Value> = requests
        .iter()
        .filter(|r| r["requester"] == mitchell.as_str())
        .collect();
    assert!(admin_requests.len() > 4);
    for request in &admin_requests {
        let first = &request["steps"][0];
        assert_eq!(first["state"], "pending", "{}", request["summary"]);
        assert_eq!(
            first["approver_rule"], "role:finance",
            "{}",
            request["summary"]
        );
        assert_eq!(first["candidates"], json!([tina]), "{}", request["summary"]);
        assert!(
            first["notes"]
                .to_string()
                .contains("Mitchell Admin has no manager"),
            "{}",
            request["summary"]
        );
    }

    // Marc's expense waits for his manager, Mitchell.
    let marcs = of_kind("expense")
        .into_iter()
        .find(|r| r["requester"] == marc.as_str())
        .unwrap()
        .clone();
    let id = marcs["id"].as_str().unwrap().to_string();
    assert_eq!(marcs["steps"][0]["approver"], mitchell.as_str());
    let version = marcs["version"].clone();
    let events = all(&server, "events").await.len();

    // A mail scanner follows both links, with and without a token: nothing changes.
    let mitchell_token = token_for(&server, "mitchell", "delivery_manager", Some(&mitchell)).await;
    for link in ["approve", "reject"] {
        let path = format!("/api/v1/approvals/{id}/{link}");
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let (status, _) = send(&server, method.clone(), &path, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            let (status, body) = send(&server, method.clone(), &path, Some(&mitchell_token)).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}: {body}");
            if method == reqwest::Method::GET {
                let shown: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(
                    shown["decision"],
                    if link == "approve" {
                        "approve"
                    } else {
                        "reject"
                    }
                );
                assert!(
                    shown["how"]
                        .as_str()
                        .unwrap()
                        .contains("nothing was decided")
                );
            }
        }
    }
    let after = server.get(&format!("/api/v1/approvals/{id}")).await;
    assert_eq!(after["state"], "pending");
    assert_eq!(after["version"], version);
    assert_eq!(after["steps"][0]["decisions"], json!([]));
    assert_eq!(
        all(&server, "events").await.len(),
        events,
        "looking appended nothing"
    );

    // Marc may not approve his own claim; a token with no employee may not decide at all.
    let marc_token = token_for(&server, "marc", "delivery_manager", Some(&marc)).await;
    let approve = format!("/api/v1/approvals/{id}/approve");
    let (status, body) = send(&server, reqwest::Method::POST, &approve, Some(&marc_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("nobody approves their own request"), "{body}");
    let (status, body) = send(&server, reqwest::Method::POST, &approve, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Mitchell approves; the expense is approved; a second decision is a conflict.
    let (status, body) = send(
        &server,
        reqwest::Method::POST,
        &approve,
        Some(&mitchell_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expense_id = marcs["subject_id"].as_str().unwrap();
    let expense = server.get(&format!("/api/v1/expenses/{expense_id}")).await;
    assert_eq!(expense["state"], "approved");
    assert_eq!(expense["approved_by"], mitchell.as_str());
    let reject = format!("/api/v1/approvals/{id}/reject");
    let (status, body) = send(
        &server,
        reqwest::Method::POST,
        &reject,
        Some(&mitchell_token),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        server.get(&format!("/api/v1/expenses/{expense_id}")).await["state"],
        "approved"
    );

    // The requests cannot be changed through the generic record API.
    let (status, body) = {
        let response = server
            .client
            .patch(format!("{}/api/v1/approval-requests/{id}", server.base))
            .bearer_auth(TOKEN)
            .json(&json!({"state": "approved"}))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Tina decides the administrator's week of time for finance.
    let tina_token = token_for(&server, "tina", "finance", Some(&tina)).await;
    let week = weeks
        .iter()
        .find(|w| w["requester"] == mitchell.as_str())
        .unwrap();
    let path = format!("/api/v1/approvals/{}/approve", week["id"].as_str().unwrap());
    let (status, body) = send(&server, reqwest::Method::POST, &path, Some(&tina_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Listing by approver shows what waits for Tina.
    let mine = server
        .client
        .get(format!(
            "{}/api/v1/approvals?approver=me&state=pending&limit=500",
            server.base
        ))
        .bearer_auth(&tina_token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let waiting_for_tina = requests
        .iter()
        .filter(|r| {
            r["steps"].as_array().unwrap().iter().any(|s| {
                s["state"] == "pending"
                    && (s["approver"] == tina.as_str()
                        || s["candidates"].as_array().unwrap().contains(&json!(tina)))
            })
        })
        .count();
    let listed = mine["items"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        waiting_for_tina - 1,
        "one of them was decided"
    );
    assert!(listed.len() >= admin_requests.len() - 1);

    let metrics = server.get("/api/v1/approvals/metrics").await;
    let open = metrics["requests"]["backlog"]["open"].as_u64().unwrap();
    assert_eq!(open as usize, requests.len() - 2, "{}", metrics["requests"]);
    assert!(
        metrics["requests"]["backlog"]["over_7_days"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        metrics["requests"]["turnaround"]["decided"], 2,
        "{}",
        metrics["requests"]
    );
    assert!(metrics["requests"]["turnaround"]["median_hours"].is_string());
    assert!(
        metrics["by_policy"]["expenses"]["backlog"]["open"]
            .as_u64()
            .unwrap()
            == 10
    );
    assert_eq!(
        metrics["by_approver"][&mitchell]["name"], "Mitchell Admin",
        "{}",
        metrics["requests"]
    );
    assert_eq!(
        metrics["by_approver"][&mitchell]["turnaround"]["decided"], 1,
        "{}",
        metrics["requests"]
    );
    // Prometheus sees the same counts, read from the database.
    let text = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(&format!("steward_approvals_open {open}")),
        "{text}"
    );
    assert!(
        text.contains(
            "steward_rule_runs_stored{rule=\"expense-approval\",status=\"succeeded\"} 11"
        ),
        "{text}"
    );
    assert!(text.contains("steward_jobs{state=\"dead\"} 0"), "{text}");
    assert!(text.contains("steward_events_stored "), "{text}");
    println!(
        "approval metrics of the Odoo demo firm: {}",
        serde_json::to_string(&metrics["requests"]).unwrap()
    );
}
