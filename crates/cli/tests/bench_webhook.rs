//! The set-up of the webhook benchmark (`bench/webhook_vs_n8n.sh`) on a small scale: the same
//! endpoint file created with the CLI, `steward serve` with the same rule folder, and the
//! request bodies that `post_expense.lua` sends. Checks every answer and every commit, never
//! timing.

mod common;

use std::path::PathBuf;

use common::{Server, all};
use serde_json::{Value, json};

const URL_TOKEN: &str = "bench-url-token-0123456789abcdef";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The body of request `n` as `post_expense.lua` builds it: amounts alternate 250 and 750.
fn expense(n: u64) -> Value {
    let amount = if n.is_multiple_of(2) { 750 } else { 250 };
    json!({"amount": amount, "employee": format!("emp-{}", n % 97), "category": "travel"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_endpoint_routes_and_commits_each_expense() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let config = repository().join("bench/webhook/expenses.yaml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["webhooks", "inbound", "add", "expenses", "--config"])
        .arg(&config)
        .arg("--database")
        .arg(&database)
        .env("STEWARD_WEBHOOK_SECRET", URL_TOKEN)
        .env("STEWARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let rules = repository().join("bench/webhook/rules");
    let server = Server::start(dir.path(), &["--rules", rules.to_str().unwrap()]).await;
    let url = format!("{}/hooks/expenses/{URL_TOKEN}", server.base);

    // Concurrent senders, as wrk's connections are, so that commits are grouped.
    let mut senders = Vec::new();
    for sender in 0..4u64 {
        let (client, url) = (server.client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in (1..=60).filter(|n| n % 4 == sender) {
                let body = expense(n);
                let response = client.post(&url).json(&body).send().await.unwrap();
                let status = response.status().as_u16();
                let replayed = response.headers().contains_key("idempotent-replayed");
                let answer: Value = response.json().await.unwrap();
                answers.push((body, status, replayed, answer));
            }
            answers
        }));
    }
    let mut answered = 0;
    for sender in senders {
        for (body, status, replayed, answer) in sender.await.unwrap() {
            let route = if body["amount"] == 750 {
                "manager"
            } else {
                "auto"
            };
            assert_eq!(status, 200, "{body} got {answer}");
            assert!(!replayed, "{body} got a replayed answer");
            assert_eq!(answer["route"], route, "{body} got {answer}");
            // Expressions compute in exact decimals, which JSON answers carry as strings.
            assert_eq!(answer["amount"], body["amount"].to_string());
            assert_eq!(answer["employee"], body["employee"]);
            assert_eq!(answer["category"], "travel");
            answered += 1;
        }
    }
    assert_eq!(answered, 60);

    // Repeated bodies are new deliveries: every answered request is a committed event.
    let events = all(&server, "events?name=expense.submitted").await;
    assert_eq!(events.len(), 60);
    let runs = all(&server, "runs").await;
    let succeeded = runs
        .iter()
        .filter(|r| r["rule_id"] == "route-expense" && r["status"] == "succeeded")
        .count();
    assert_eq!(succeeded, 60);

    let forged = server
        .client
        .post(format!("{}/hooks/expenses/not-the-token", server.base))
        .json(&expense(1))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(
        all(&server, "events?name=expense.submitted").await.len(),
        60
    );
}
