//! Shared set-up of the webhook tests: an engine on a real SQLite file with fast retries,
//! the webhook service, the Steward API served on loopback, and receivers on loopback.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use steward_domain::{Actor, Command, CommandContext, SystemClock};
use steward_engine::{Engine, EngineConfig};
use steward_http::AppState;
use steward_store::Store;
use steward_store_sqlite::{SqliteOptions, SqliteStore};
use steward_webhooks::{SecretKey, WebhookOptions, Webhooks};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const TOKEN: &str = "stw_webhook_test_admin_token_0123456789";

/// The folder of real inputs: `STEWARD_SHARED_DATA`, or the nearest `shared/data` above the
/// crate.
pub fn shared_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("STEWARD_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
        .expect("no shared/data folder above the crate; set STEWARD_SHARED_DATA")
}

pub struct Harness {
    pub engine: Arc<Engine>,
    pub webhooks: Arc<Webhooks>,
    /// The Steward API and receivers, such as `http://127.0.0.1:PORT`.
    pub base: String,
    pub http: reqwest::Client,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Retries start after 20 to 40 ms; a job dies after `max_attempts` attempts.
pub fn fast_config(max_attempts: u32) -> EngineConfig {
    EngineConfig {
        max_attempts,
        base_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        controls_on_change: false,
        ..EngineConfig::default()
    }
}

/// Starts an engine with `config`, the webhook service, one worker and the API.
pub async fn harness(config: EngineConfig) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let engine = Engine::new(store, Arc::new(SystemClock), config);
    let key = SecretKey::load_or_create(&SecretKey::file_for(&dir.path().join("steward.db")))
        .unwrap()
        .0;
    let webhooks = steward_webhooks::install(&engine, WebhookOptions::new(key)).unwrap();
    steward_http::auth::ensure_admin_token(
        engine.store().clone(),
        Some(TOKEN.into()),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(Arc::clone(&engine).run_worker(stopped.clone()));
    let mut state = AppState::new(Arc::clone(&engine));
    state.webhooks = Some(Arc::clone(&webhooks));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut shutdown = stopped.clone();
    tokio::spawn(steward_http::serve(listener, state, async move {
        let _ = shutdown.changed().await;
    }));
    Harness {
        engine,
        webhooks,
        base,
        http: reqwest::Client::new(),
        stop,
        _dir: dir,
    }
}

impl Harness {
    /// The SQLite file of the harness.
    pub fn database(&self) -> PathBuf {
        self._dir.path().join("steward.db")
    }

    /// Waits until the runs of `event` are all finished, and returns them.
    pub async fn runs_of(&self, event: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let runs = self.get(&format!("/runs?event={event}")).await;
            let items = runs["items"].as_array().cloned().unwrap_or_default();
            let finished = !items.is_empty()
                && items.iter().all(|r| {
                    matches!(
                        r["status"].as_str(),
                        Some("succeeded" | "dead" | "skipped" | "evaluation_error")
                    )
                });
            if finished {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "the runs of {event} did not finish: {runs}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Installs rules given as the text of a rule file.
    pub async fn rules(&self, text: &str) {
        let (rules, diagnostics) =
            steward_rules::compile_sources(&[("test.yaml".into(), text.into())]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        self.engine.install_file_rules(rules).await.unwrap();
    }

    /// Appends a business event as a user.
    pub async fn emit(&self, name: &str, data: Value) -> String {
        let outcome = self
            .engine
            .execute(
                Command::Emit {
                    name: name.into(),
                    record: None,
                    data,
                },
                CommandContext::new(Actor::user("test")),
            )
            .await
            .unwrap();
        outcome.event.unwrap().id
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Waits until `done` holds, checking every 20 ms for at most 15 s.
    pub async fn until<F: FnMut() -> bool>(&self, what: &str, mut done: F) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the API shows delivery `id` in `state`, with its job ended when the state is
    /// final, and returns it.
    pub async fn delivery_in(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let delivery = self.get(&format!("/webhooks/deliveries/{id}")).await;
            // The delivery records its outcome before its job ends, so a final state waits
            // for the job to end the same way.
            let settled = match state {
                "succeeded" | "dead" => delivery["job_state"] == state,
                _ => true,
            };
            if delivery["state"] == state && settled {
                return delivery;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} never reached {state}: {delivery}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub type Log = Arc<Mutex<Vec<Received>>>;

/// Serves `router` on 127.0.0.1 at a free port and returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

pub fn record(log: &Log, headers: &axum::http::HeaderMap, body: &[u8]) {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    log.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
    });
}

/// Verifies a Standard Webhooks signature written out from the specification, independent
/// of the crate: HMAC-SHA256 with the base64-decoded secret after `whsec_`, over
/// `<id>.<timestamp>.<body>`, compared as `v1,<base64>`.
pub fn signature_is_valid(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = received.header("webhook-id").unwrap();
    let timestamp = received.header("webhook-timestamp").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

/// Signs like a Standard Webhooks sender.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

pub fn count_events(engine: &Engine, name: &str) -> usize {
    let query = steward_store::EventQuery {
        name: Some(name.into()),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    steward_store::read(engine.store().as_ref(), |tx| tx.events(&query))
        .unwrap()
        .items
        .len()
}

pub fn json_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}
