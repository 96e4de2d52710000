//! Inbound webhooks through `steward serve` killed with SIGKILL in the middle of a burst:
//! after a restart, resending every delivery that got no answer stores each delivery exactly
//! once. Also the `steward webhooks` commands on a database file.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, TOKEN, all, steward};
use serde_json::{Value, json};

/// What one sender saw: keys acknowledged with their event ids, and the key it was sending
/// when the server died, if any.
struct Sent {
    acknowledged: Vec<(String, String)>,
    unanswered: Option<String>,
}

/// Posts one delivery; returns the status, the body and whether the answer was replayed.
async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
) -> Result<(u16, Value, bool), String> {
    let response = client
        .post(url)
        .header("Idempotency-Key", key)
        .json(&json!({"key": key}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let body = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, body, replayed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_inbound_burst_stores_each_delivery_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--workers", "1"]).await;
    let (status, created): (u16, Value) = {
        let response = server
            .client
            .post(format!("{}/api/v1/webhooks/inbound", server.base))
            .bearer_auth(TOKEN)
            .json(&json!({"id": "burst", "verification": "token",
                "idempotency": {"header": "Idempotency-Key"},
                "mapping": {"emit": "burst.delivery"}}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };
    assert_eq!(status, 201, "{created}");
    let path = created["url_path"].as_str().unwrap().to_string();

    let acked = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (client, url) = (server.client.clone(), format!("{}{path}", server.base));
        let acked = Arc::clone(&acked);
        senders.push(tokio::spawn(async move {
            let mut sent = Sent {
                acknowledged: Vec::new(),
                unanswered: None,
            };
            for n in 0..300 {
                let key = format!("s{sender:02}-{n:03}");
                match post(&client, &url, &key).await {
                    Ok((202, body, _)) => {
                        let event = body["accepted"].as_str().unwrap().to_string();
                        sent.acknowledged.push((key, event));
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        sent.unanswered = Some(key);
                        break;
                    }
                }
            }
            sent
        }));
    }
    let watching = Instant::now();
    while acked.load(Ordering::SeqCst) < 200 {
        assert!(
            watching.elapsed() < Duration::from_secs(60),
            "the burst did not get under way"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut server = server;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = server.child.wait();
    drop(server);

    let mut acknowledged = BTreeMap::new();
    let mut unanswered = Vec::new();
    for sender in senders {
        let sent = sender.await.unwrap();
        acknowledged.extend(sent.acknowledged);
        unanswered.extend(sent.unanswered);
    }
    assert!(
        !unanswered.is_empty(),
        "the server died while deliveries were in flight"
    );

    let server = Server::start(dir.path(), &["--workers", "1"]).await;
    let url = format!("{}{path}", server.base);
    let mut resent = BTreeMap::new();
    let mut committed_before_kill = 0;
    for key in &unanswered {
        let (status, body, replayed) = post(&server.client, &url, key).await.unwrap();
        assert_eq!(status, 202, "resending {key}: {body}");
        committed_before_kill += usize::from(replayed);
        resent.insert(key.clone(), body["accepted"].as_str().unwrap().to_string());
    }
    // A repeat of an acknowledged delivery gets its first answer.
    for (key, event) in acknowledged.iter().take(20) {
        let (status, body, replayed) = post(&server.client, &url, key).await.unwrap();
        assert_eq!(status, 202);
        assert!(replayed, "{key}");
        assert_eq!(body["accepted"].as_str(), Some(event.as_str()), "{key}");
    }

    let events = all(&server, "events?name=burst.delivery").await;
    let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &events {
        stored
            .entry(event["data"]["key"].as_str().unwrap().to_string())
            .or_default()
            .push(event["id"].as_str().unwrap().to_string());
    }
    let repeated: Vec<_> = stored.iter().filter(|(_, ids)| ids.len() != 1).collect();
    assert!(repeated.is_empty(), "deliveries stored twice: {repeated:?}");
    for (key, event) in acknowledged.iter().chain(resent.iter()) {
        assert_eq!(
            stored.get(key),
            Some(&vec![event.clone()]),
            "delivery {key} is stored once, as the event it was answered with"
        );
    }
    assert_eq!(stored.len(), acknowledged.len() + resent.len());
    eprintln!(
        "killed after {} acknowledged deliveries; {} resent after the restart, {} of them \
         committed before the kill; {} events, each delivery once",
        acknowledged.len(),
        resent.len(),
        committed_before_kill,
        events.len()
    );
}

#[test]
fn webhook_commands_manage_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let database = database.to_str().unwrap();
    let (code, out, err) = steward(&[
        "webhooks",
        "outbound",
        "add",
        "billing",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "invoice.sent,invoice.paid",
        "--database",
        database,
    ]);
    assert_eq!(code, 0, "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("signing secret (shown once, store it now): "))
        .unwrap()
        .to_string();
    assert!(secret.starts_with("whsec_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(format!("{database}.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (code, out, _) = steward(&["webhooks", "outbound", "list", "--database", database]);
    assert_eq!(code, 0);
    assert!(out.contains("billing"));
    assert!(out.contains("invoice.sent,invoice.paid"));
    assert!(!out.contains(&secret));

    let (code, _, err) = steward(&[
        "webhooks",
        "outbound",
        "add",
        "Billing!",
        "--url",
        "http://127.0.0.1:9/",
        "--database",
        database,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid id `Billing!`"), "{err}");

    let config = dir.path().join("odoo.yaml");
    std::fs::write(
        &config,
        "verification: token\nidempotency: none\nmapping:\n  upsert:\n    record: task\n    external: { system: odoo, model: project.task, id: \"= payload._id\" }\n    fields: { name: \"= payload.name\" }\n",
    )
    .unwrap();
    let (code, out, err) = steward(&[
        "webhooks",
        "inbound",
        "add",
        "odoo-tasks",
        "--config",
        config.to_str().unwrap(),
        "--database",
        database,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/hooks/odoo-tasks/"), "{out}");

    std::fs::write(&config, "verification: token\nmapping:\n  upsert:\n    record: task\n    external: { system: odoo, model: project.task, id: \"= record.id\" }\n").unwrap();
    let (code, _, err) = steward(&[
        "webhooks",
        "inbound",
        "add",
        "broken",
        "--config",
        config.to_str().unwrap(),
        "--database",
        database,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("mapping.upsert.external.id"), "{err}");

    let (code, out, _) = steward(&["webhooks", "health", "--database", database]);
    assert_eq!(code, 0);
    assert!(
        out.contains("webhook_out") && out.contains("webhook_in"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_bodies_name_no_rust_types() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    for (path, body) in [
        ("outbound", json!([])),
        ("outbound", json!({"id": 5, "url": "http://127.0.0.1:9/"})),
        ("outbound/none", json!([])),
        ("inbound", json!([])),
        ("inbound", json!({"id": "x", "verification": ["token"]})),
    ] {
        let method = if path.contains('/') {
            reqwest::Method::PATCH
        } else {
            reqwest::Method::POST
        };
        let response = server
            .client
            .request(method, format!("{}/api/v1/webhooks/{path}", server.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert!(status == 400 || status == 422, "{path} {body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        for leak in ["struct ", "enum ", "Request", "Change", "Config"] {
            assert!(!message.contains(leak), "{path} {body}: {message}");
        }
    }
}
