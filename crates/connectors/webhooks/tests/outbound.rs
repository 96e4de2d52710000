//! Outbound webhooks and `http` actions over real loopback HTTP: signatures checked by an
//! independent implementation, retries that keep the delivery id, dead letters, resends and
//! health figures.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const BILLING_RULE: &str = r#"
rules:
  - id: notify-billing
    trigger: { on: event, event: invoice.sent }
    actions:
      - webhook:
          endpoint: billing
          event: invoice.sent
          data: { amount: "= event.data.amount", client: "= event.data.client" }
"#;

/// A receiver that records every request and answers with the status in `status`.
async fn receiver(status: Arc<AtomicU16>) -> (String, Log) {
    let log: Log = Arc::default();
    let state = (Arc::clone(&log), status);
    let router = Router::new()
        .route(
            "/hook",
            post(
                |State((log, status)): State<(Log, Arc<AtomicU16>)>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    record(&log, &headers, &body);
                    StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
                },
            ),
        )
        .with_state(state);
    (format!("{}/hook", serve(router).await), log)
}

async fn create_endpoint(h: &Harness, id: &str, url: &str, extra: Value) -> String {
    let mut body = json!({"id": id, "url": url});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let (status, created) = h.api(Method::POST, "/webhooks/outbound", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["secret"].as_str().unwrap().to_string()
}

/// The delivery id the webhook action of the event's run queued.
async fn delivery_of(h: &Harness, event: &str) -> String {
    let runs = h.runs_of(event).await;
    runs[0]["actions"][0]["outcome"]["delivery"]
        .as_str()
        .unwrap_or_else(|| panic!("no delivery in {runs:?}"))
        .to_string()
}

#[tokio::test]
async fn delivery_is_signed_and_verifies_independently() {
    let h = harness(fast_config(3)).await;
    let (url, log) = receiver(Arc::new(AtomicU16::new(204))).await;
    let secret = create_endpoint(&h, "billing", &url, json!({"events": ["invoice.sent"]})).await;
    assert!(secret.starts_with("whsec_"));
    h.rules(BILLING_RULE).await;

    let event = h
        .emit(
            "invoice.sent",
            json!({"amount": "1250.50", "client": "Deco Addict"}),
        )
        .await;
    let delivery = delivery_of(&h, &event).await;
    let stored = h.delivery_in(&delivery, "succeeded").await;

    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(signature_is_valid(&secret, request));
    assert_eq!(request.header("webhook-id"), Some(delivery.as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let body = request.json();
    assert_eq!(body["id"], json!(delivery));
    assert_eq!(body["type"], "invoice.sent");
    assert_eq!(body["data"]["amount"], "1250.50");
    assert_eq!(body["data"]["client"], "Deco Addict");
    assert_eq!(body["cause"], json!(event));
    assert_eq!(body["rule"], "notify-billing");

    let mut tampered = request.clone();
    tampered.body = br#"{"id": "forged"}"#.to_vec();
    assert!(!signature_is_valid(&secret, &tampered));

    assert_eq!(stored["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(stored["attempts"][0]["status"], 204);

    // The secret is shown once: never in a read, and never in plain text in the database.
    let listed = h.get("/webhooks/outbound").await;
    assert!(!listed.to_string().contains(&secret));
    assert!(listed["items"][0].get("secret").is_none());
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", h.database().display());
        if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret.trim_start_matches("whsec_")),
                "{path} holds the secret in plain text"
            );
        }
    }
}

#[tokio::test]
async fn retry_after_timeout_keeps_delivery_id() {
    let h = harness(fast_config(4)).await;
    // The receiver commits each delivery id, then sleeps past Steward's timeout on the first
    // request, so Steward sees a timeout for a delivery the receiver processed.
    let log: Log = Arc::default();
    let committed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let state = (Arc::clone(&log), Arc::clone(&committed), Arc::clone(&calls));
    let router = Router::new()
        .route(
            "/hook",
            post(
                |State((log, committed, calls)): State<(
                    Log,
                    Arc<Mutex<HashSet<String>>>,
                    Arc<AtomicUsize>,
                )>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    record(&log, &headers, &body);
                    let id = headers["webhook-id"].to_str().unwrap().to_string();
                    committed.lock().unwrap().insert(id);
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    StatusCode::OK
                },
            ),
        )
        .with_state(state);
    let url = format!("{}/hook", serve(router).await);
    let secret = create_endpoint(&h, "billing", &url, json!({"timeout_ms": 300})).await;
    h.rules(BILLING_RULE).await;

    let event = h
        .emit("invoice.sent", json!({"amount": "10", "client": "A"}))
        .await;
    let delivery = delivery_of(&h, &event).await;
    let stored = h.delivery_in(&delivery, "succeeded").await;

    let received = log.lock().unwrap().clone();
    assert!(received.len() >= 2, "{received:?}");
    for request in &received {
        assert_eq!(request.header("webhook-id"), Some(delivery.as_str()));
        assert!(signature_is_valid(&secret, request));
        assert_eq!(
            request.body, received[0].body,
            "every attempt sends the same body"
        );
    }
    assert_eq!(committed.lock().unwrap().len(), 1);
    let attempts = stored["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["status"], Value::Null);
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(error.contains("timed out after 300 ms"), "{error}");
    assert!(
        !error.contains("/hook"),
        "errors leave out the URL path: {error}"
    );
    assert_eq!(attempts.last().unwrap()["status"], 200);
}

#[tokio::test]
async fn dead_delivery_replays_with_its_id_and_resend_gets_new_one() {
    let h = harness(fast_config(2)).await;
    let status = Arc::new(AtomicU16::new(503));
    let (url, log) = receiver(Arc::clone(&status)).await;
    let secret = create_endpoint(&h, "billing", &url, json!({})).await;
    h.rules(BILLING_RULE).await;

    let event = h
        .emit("invoice.sent", json!({"amount": "10", "client": "A"}))
        .await;
    let delivery = delivery_of(&h, &event).await;
    let dead = h.delivery_in(&delivery, "dead").await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(dead["job_state"], "dead");
    let letters = h.get("/dead-letters?kind=webhook_delivery").await;
    assert_eq!(letters["items"].as_array().unwrap().len(), 1);
    let job = dead["job"].as_str().unwrap().to_string();
    assert_eq!(letters["items"][0]["id"], json!(job));

    // Replayed from the dead-letter queue: the same delivery id.
    status.store(200, Ordering::SeqCst);
    let (code, _) = h
        .api(Method::POST, &format!("/dead-letters/{job}/replay"), None)
        .await;
    assert_eq!(code, 202);
    let replayed = h.delivery_in(&delivery, "succeeded").await;
    assert_eq!(replayed["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(replayed["attempts"][2]["attempt"], 3);
    {
        let received = log.lock().unwrap();
        assert_eq!(received.len(), 3);
        assert!(
            received
                .iter()
                .all(|r| r.header("webhook-id") == Some(delivery.as_str()))
        );
    }

    // Resent on purpose: a new delivery with a new id.
    let (code, resent) = h
        .api(
            Method::POST,
            &format!("/webhooks/deliveries/{delivery}/resend"),
            None,
        )
        .await;
    assert_eq!(code, 202, "{resent}");
    let new_id = resent["delivery"].as_str().unwrap().to_string();
    assert_ne!(new_id, delivery);
    let new_delivery = h.delivery_in(&new_id, "succeeded").await;
    assert_eq!(new_delivery["resent_from"], json!(delivery));
    let received = log.lock().unwrap().clone();
    let last = received.last().unwrap();
    assert_eq!(last.header("webhook-id"), Some(new_id.as_str()));
    assert_eq!(last.json()["id"], json!(new_id));
    assert_eq!(last.json()["data"], received[0].json()["data"]);
    assert!(signature_is_valid(&secret, last));

    let (code, missing) = h
        .api(
            Method::POST,
            "/webhooks/deliveries/01JD0000000000000000000000/resend",
            None,
        )
        .await;
    assert_eq!(code, 404, "{missing}");
}

#[tokio::test]
async fn health_reports_failures_and_latency() {
    let h = harness(fast_config(1)).await;
    let status = Arc::new(AtomicU16::new(200));
    let (url, _log) = receiver(Arc::clone(&status)).await;
    create_endpoint(&h, "billing", &url, json!({})).await;
    h.rules(BILLING_RULE).await;

    let mut deliveries = Vec::new();
    for (n, code) in [200, 200, 200, 500, 500].into_iter().enumerate() {
        status.store(code, Ordering::SeqCst);
        let event = h
            .emit(
                "invoice.sent",
                json!({"amount": n.to_string(), "client": "A"}),
            )
            .await;
        let delivery = delivery_of(&h, &event).await;
        let state = if code == 200 { "succeeded" } else { "dead" };
        h.delivery_in(&delivery, state).await;
        deliveries.push(delivery);
    }

    let health = h.get("/webhooks/outbound/billing/health").await;
    assert_eq!(health["integration"], "webhook_out");
    assert_eq!(health["status"], "failing");
    assert_eq!(health["deliveries"], 5);
    assert_eq!(health["attempts"], 5);
    assert_eq!(health["failed_attempts"], 2);
    assert_eq!(health["consecutive_failures"], 2);
    assert!(health["last_success_at"].is_string());
    assert!(health["last_failure_at"].is_string());
    assert!(
        health["last_error"]
            .as_str()
            .unwrap()
            .contains("answered 500")
    );
    let median = health["median_latency_ms"].as_f64().unwrap();
    assert!((0.0..5000.0).contains(&median), "{median}");

    // One success ends the run of failures.
    status.store(200, Ordering::SeqCst);
    let event = h
        .emit("invoice.sent", json!({"amount": "9", "client": "A"}))
        .await;
    let delivery = delivery_of(&h, &event).await;
    h.delivery_in(&delivery, "succeeded").await;
    let health = h.get("/webhooks/outbound/billing/health").await;
    assert_eq!(health["consecutive_failures"], 0);
    assert_eq!(health["status"], "healthy");

    let all = h.get("/integrations/health").await;
    let billing = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "billing")
        .cloned()
        .unwrap();
    assert_eq!(billing["deliveries"], 6);

    let metrics = steward_store::read(h.engine.store().as_ref(), |tx| {
        tx.webhooks()
            .deliveries(&steward_store::webhooks::DeliveryQuery {
                limit: 10,
                endpoint: Some("billing".into()),
                state: Some(steward_store::webhooks::DeliveryState::Dead),
                ..Default::default()
            })
    })
    .unwrap();
    assert_eq!(metrics.items.len(), 2);
}

#[tokio::test]
async fn unusable_endpoints_fail_without_retry() {
    let h = harness(fast_config(5)).await;
    let (gone_url, _) = receiver(Arc::new(AtomicU16::new(410))).await;
    let (ok_url, ok_log) = receiver(Arc::new(AtomicU16::new(200))).await;
    create_endpoint(&h, "gone", &gone_url, json!({})).await;
    create_endpoint(&h, "paused", &ok_url, json!({"enabled": false})).await;
    create_endpoint(&h, "picky", &ok_url, json!({"events": ["invoice.paid"]})).await;
    h.rules(
        r#"
rules:
  - id: fan-out
    trigger: { on: event, event: invoice.sent }
    actions:
      - webhook: { endpoint: gone, event: invoice.sent }
      - webhook: { endpoint: paused, event: invoice.sent }
      - webhook: { endpoint: ghost, event: invoice.sent }
      - webhook: { endpoint: picky, event: invoice.sent }
"#,
    )
    .await;
    let event = h.emit("invoice.sent", json!({})).await;
    let runs = h.runs_of(&event).await;
    let ids: Vec<String> = runs[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"]["delivery"].as_str().unwrap().to_string())
        .collect();
    for (id, reason) in [
        (&ids[0], "answered 410"),
        (&ids[1], "is disabled"),
        (&ids[2], "no outbound webhook endpoint `ghost` exists"),
    ] {
        let dead = h.delivery_in(id, "dead").await;
        let attempts = dead["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{dead}");
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(error.contains(reason), "{error}");
    }
    let skipped = h.delivery_in(&ids[3], "skipped").await;
    assert!(skipped["attempts"].as_array().unwrap().is_empty());
    assert!(ok_log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn http_action_sends_idempotency_key_and_cuts_reply() {
    let h = harness(fast_config(3)).await;
    let log: Log = Arc::default();
    let router = Router::new()
        .route(
            "/api",
            post(
                |State(log): State<Log>, headers: HeaderMap, body: Bytes| async move {
                    record(&log, &headers, &body);
                    (StatusCode::OK, "é".repeat(10_000))
                },
            ),
        )
        .with_state(Arc::clone(&log));
    let base = serve(router).await;
    h.rules(&format!(
        r#"
rules:
  - id: call-api
    trigger: {{ on: event, event: ticket.opened }}
    actions:
      - http:
          method: POST
          url: "{base}/api"
          headers: {{ X-Source: steward }}
          body: {{ ticket: "= event.data.ticket" }}
          timeout_seconds: 5
"#
    ))
    .await;
    let event = h.emit("ticket.opened", json!({"ticket": "T-1"})).await;
    let runs = h.runs_of(&event).await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let reply = &runs[0]["actions"][0]["outcome"];
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"].as_str().unwrap().chars().count(), 4096);

    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let key = received[0].header("idempotency-key").unwrap();
    let version = runs[0]["rule_version"].as_i64().unwrap();
    assert_eq!(key, format!("rule/call-api/{version}/{event}/0"));
    assert_eq!(received[0].header("x-source"), Some("steward"));
    assert_eq!(received[0].json(), json!({"ticket": "T-1"}));
}

#[tokio::test]
async fn http_action_calls_odoo_on_webhook_trigger() {
    let h = harness(fast_config(2)).await;
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(replay.clone().serve(listener));
    h.rules(&format!(
        r#"
rules:
  - id: star-task-in-odoo
    trigger: {{ on: event, event: task.escalated }}
    actions:
      - http:
          method: POST
          url: "{odoo}/web/hook/{{{{ event.data.uuid }}}}"
          body: {{ _model: project.task, _id: "= event.data.task" }}
"#
    ))
    .await;

    let event = h
        .emit(
            "task.escalated",
            json!({"uuid": "9835f701-8d3b-490e-bd4b-92045c269f5a", "task": 47}),
        )
        .await;
    let runs = h.runs_of(&event).await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let outcome = &runs[0]["actions"][0]["outcome"];
    assert_eq!(outcome["status"], 200);
    assert_eq!(outcome["body"], r#"{"status": "ok"}"#);
    let read = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": ["steward_demo", 2, "admin", "project.task", "read", [[47]], {"fields": ["priority"]}]}});
    let steward_odoo_replay::Reply::Result(rows) = replay.respond(&read) else {
        panic!("reading task 47 failed");
    };
    assert_eq!(rows[0]["priority"], "1");

    // An unknown uuid is a 404, which a retry cannot fix.
    let event = h
        .emit(
            "task.escalated",
            json!({"uuid": "00000000-0000-0000-0000-000000000000", "task": 47}),
        )
        .await;
    let runs = h.runs_of(&event).await;
    assert_eq!(runs[0]["status"], "dead");
    assert!(
        runs[0]["error"].as_str().unwrap().contains("answered 404"),
        "{runs:?}"
    );

    // A missing record is a 500: retried, then dead after the last attempt.
    let event = h
        .emit(
            "task.escalated",
            json!({"uuid": "9835f701-8d3b-490e-bd4b-92045c269f5a", "task": 999999}),
        )
        .await;
    let runs = h.runs_of(&event).await;
    assert_eq!(runs[0]["status"], "dead");
    let error = runs[0]["error"].as_str().unwrap();
    assert!(error.contains("answered 500"), "{error}");
}
