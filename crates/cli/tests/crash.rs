//! A server killed with SIGKILL in the middle of a burst loses no acknowledged event and, once
//! restarted, runs every event's rule exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "stw_crash_test_admin_token_0123456789";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &Path, inline: bool) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
        ])
        .args(["--inline-actions", if inline { "true" } else { "false" }])
        .arg("--database")
        .arg(dir.join("steward.db"))
        .arg("--rules")
        .arg(dir.join("rules"))
        .env("STEWARD_ADMIN_TOKEN", TOKEN)
        .env("STEWARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the steward binary starts");
    // Build the guard first, so that a server that never answers is still killed.
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = client.get(format!("{}/healthz", server.base)).send().await
            && response.status().is_success()
        {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all(client: &reqwest::Client, base: &str, collection: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/{collection}?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_queued_actions_repeats_nothing() {
    burst_kill_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_inline_actions_repeats_nothing() {
    burst_kill_restart(true).await;
}

/// Posts entries from eight clients, kills the server with SIGKILL while entries still
/// arrive (and, with queued actions, while their jobs wait), restarts it and checks that every
/// acknowledged entry is stored and every stored entry got exactly one review activity.
async fn burst_kill_restart(inline: bool) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/review.yaml"),
        "rules:\n  - id: review-entry\n    trigger: { on: create, record: timesheet }\n    actions:\n      - activity: { title: \"Review {{ record.hours }} h\", role: operations }\n",
    )
    .unwrap();

    let server = start(dir.path(), inline).await;
    let client = reqwest::Client::new();
    let employee: Value = client
        .post(format!("{}/api/v1/employees", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Burst Tester"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let employee = employee["id"].as_str().unwrap().to_string();

    // Eight clients post entries until the server dies; each remembers what was acknowledged.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for sender in 0..16u64 {
        let (client, base, employee) = (client.clone(), server.base.clone(), employee.clone());
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..400u64 {
                // One entry per day, counting back from 2026-12-01, keeps every day under the
                // 24 hours that the command path allows one person.
                let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
                    - chrono::Days::new(sender * 400 + n);
                let body = json!({"employee": employee, "date": date.to_string(), "hours": format!("{}.{}", sender + 1, n % 10)});
                let sent = client.post(format!("{base}/api/v1/timesheets")).bearer_auth(TOKEN).json(&body).send().await;
                match sent {
                    Ok(response) if response.status().as_u16() == 201 => {
                        let entry: Value = response.json().await.unwrap();
                        acknowledged.push(entry["id"].as_str().unwrap().to_string());
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    // Kill while entries still arrive and, with queued actions, while rule jobs wait or run.
    // At most one pending job belongs to the controls, so two or more means rule jobs too.
    let watching = Instant::now();
    let backlog_at_kill = loop {
        let queue: Value = client
            .get(format!("{}/api/v1/queue", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let backlog = queue["pending"].as_u64().unwrap() + queue["running"].as_u64().unwrap();
        let acknowledged_so_far = acked.load(std::sync::atomic::Ordering::SeqCst);
        if acknowledged_so_far >= 100 && (inline || backlog >= 2) {
            break backlog;
        }
        assert!(
            watching.elapsed() < Duration::from_secs(30),
            "no moment with work in flight was seen"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let mut server = server;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = server.child.wait();
    drop(server);

    let mut acknowledged = BTreeSet::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 50,
        "the burst was under way: {} acknowledged",
        acknowledged.len()
    );

    let server = start(dir.path(), inline).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queue: Value = client
            .get(format!("{}/api/v1/queue", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if queue["pending"] == 0 && queue["running"] == 0 {
            assert_eq!(queue["dead"], 0, "no job failed: {queue}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {queue}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let entries: BTreeSet<String> = all(&client, &server.base, "timesheets")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = acknowledged.difference(&entries).collect();
    assert!(
        missing.is_empty(),
        "acknowledged entries were lost: {missing:?}"
    );

    let mut reviews: BTreeMap<String, usize> = BTreeMap::new();
    for activity in all(&client, &server.base, "activities").await {
        *reviews
            .entry(activity["subject_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let unreviewed: Vec<&String> = entries
        .iter()
        .filter(|id| !reviews.contains_key(*id))
        .collect();
    assert!(
        unreviewed.is_empty(),
        "{} stored entries never got their review: {unreviewed:?}",
        unreviewed.len()
    );
    let repeated: Vec<(&String, &usize)> = reviews.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "entries reviewed more than once: {repeated:?}"
    );
    assert_eq!(
        reviews.len(),
        entries.len(),
        "every review belongs to a stored entry"
    );
    eprintln!(
        "killed with {backlog_at_kill} jobs queued or running; {} entries acknowledged, {} stored, each reviewed once",
        acknowledged.len(),
        entries.len()
    );
}
