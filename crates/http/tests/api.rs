//! The API over real HTTP on loopback, against a real SQLite file.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_domain::SystemClock;
use steward_engine::{Engine, EngineConfig};
use steward_http::AppState;
use steward_store::Store;
use steward_store_sqlite::{SqliteOptions, SqliteStore};

const ADMIN: &str = "stw_test_admin_token_0123456789";

struct Api {
    base: String,
    client: reqwest::Client,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("api.db"), SqliteOptions::default()).unwrap();
    let config = EngineConfig {
        controls_on_change: false,
        ..EngineConfig::default()
    };
    let engine = Engine::new(store.clone(), Arc::new(SystemClock), config);
    steward_http::auth::ensure_admin_token(store, Some(ADMIN.into()), chrono::Utc::now())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(engine.clone());
    tokio::spawn(steward_http::serve(listener, state, std::future::pending()));
    Api {
        base,
        client: reqwest::Client::new(),
        engine,
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(ADMIN), None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(ADMIN), Some(body)).await
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        value
    }

    async fn token(&self, role: &str) -> String {
        let body = json!({"name": format!("{role}-token"), "role": role});
        self.created("/api/v1/tokens", body).await["secret"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn requests_need_a_valid_token() {
    let api = start().await;
    let (status, body) = api.call(Method::GET, "/api/v1/clients", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = api
        .call(
            Method::GET,
            "/api/v1/clients",
            Some("stw_wrong_wrong_wrong_wrong"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["store"], "sqlite");
}

#[tokio::test]
async fn records_are_created_listed_and_paged() {
    let api = start().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        let client = api
            .created(
                "/api/v1/clients",
                json!({"name": format!("Client {n}"), "country": "be"}),
            )
            .await;
        assert_eq!(client["country"], "BE");
        assert_eq!(client["state"], "active");
        ids.push(client["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/clients?limit=3".to_string();
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/clients?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, filtered) = api.get("/api/v1/clients?name=Client%203").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (status, body) = api.get("/api/v1/clients?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let (status, body) = api.get("/api/v1/clients?limit=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for list in [
        "clients",
        "runs",
        "findings",
        "dead-letters",
        "events",
        "timesheets/01JAAAAAAAAAAAAAAAAAAAAAAA/events",
    ] {
        let (status, body) = api.get(&format!("/api/v1/{list}?cursor=garbage")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{list}: {body}");
        assert_eq!(body["error"]["details"][0]["field"], "cursor", "{list}");
    }
}

#[tokio::test]
async fn bad_bodies_get_clear_errors_and_store_nothing() {
    let api = start().await;
    let response = api
        .client
        .post(format!("{}/api/v1/clients", api.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");

    let employee = api
        .created("/api/v1/employees", json!({"name": "Ann"}))
        .await;
    let (status, body) = api
        .post(
            "/api/v1/timesheets",
            json!({"employee": employee["id"], "date": "2026-13-01", "hours": "many"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{body}");
    assert_eq!(details[0]["field"], "date");
    assert_eq!(details[0]["value"], "2026-13-01");
    assert!(
        details[1]["message"]
            .as_str()
            .unwrap()
            .contains("`many` is not a decimal number")
    );
    let (_, page) = api.get("/api/v1/timesheets").await;
    assert_eq!(page["items"], json!([]));

    let (status, body) = api.post("/api/v1/widgets", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`widgets` is not a collection")
    );
    let (status, _) = api
        .post("/api/v1/clients", json!(["not", "an", "object"]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_body_shapes_name_no_rust_types() {
    let api = start().await;
    let client = api
        .created("/api/v1/clients", json!({"name": "Acme"}))
        .await;
    let transition = format!(
        "/api/v1/clients/{}/transition",
        client["id"].as_str().unwrap()
    );
    let cases = [
        ("/api/v1/billing-drafts", r#"{"period": "2026-11"}"#),
        (transition.as_str(), r#"{"state": "submitted"}"#),
        (
            "/api/v1/tokens",
            r#"{"name": "n8n", "role": "integration"}"#,
        ),
        ("/api/v1/events", r#"{"name": "invoice.disputed""#),
        ("/api/v1/approvals", r#"{"kind": "write_off""#),
        ("/api/v1/clients", ""),
    ];
    for (path, example) in cases {
        for body in [
            json!([]),
            json!("2026-11"),
            json!({"period": ["2026-11"], "state": 5}),
        ] {
            let (status, answer) = api.post(path, body.clone()).await;
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {body}: {status} {answer}"
            );
            for leak in ["struct ", "enum ", "Body", "Request", "Change"] {
                assert!(!message.contains(leak), "{path} {body}: {message}");
            }
            if body.is_array() {
                assert!(message.contains(example), "{path}: {message}");
            }
        }
    }
    let (_, answer) = api.post("/api/v1/billing-drafts", json!([])).await;
    assert_eq!(
        answer["error"]["message"],
        r#"the body must be a JSON object such as {"period": "2026-11"}, not an array"#
    );

    let (status, answer) = api.get("/api/v1/billing-readiness?period=11/2026").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        "invalid parameter period=11/2026: is not a month; write it as YYYY-MM, such as 2026-11"
    );
    assert_eq!(answer["error"]["details"][0]["value"], "11/2026");
}

#[tokio::test]
async fn transitions_and_versions_are_enforced() {
    let api = start().await;
    let employee = api
        .created("/api/v1/employees", json!({"name": "Ann"}))
        .await;
    let entry = api
        .created(
            "/api/v1/timesheets",
            json!({"employee": employee["id"], "date": "2026-12-01", "hours": 7.5}),
        )
        .await;
    let id = entry["id"].as_str().unwrap();
    assert_eq!(entry["hours"], "7.5");
    let (status, body) = api
        .post(
            &format!("/api/v1/timesheets/{id}/transition"),
            json!({"state": "invoiced"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed next states: submitted"),
        "{body}"
    );
    let (status, body) = api
        .post(
            &format!("/api/v1/timesheets/{id}/transition"),
            json!({"state": "submitted", "version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/api/v1/timesheets/{id}"),
            Some(ADMIN),
            Some(json!({"hours": 8, "version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a stale version is refused");
    let (status, body) = api.post("/api/v1/timesheets", json!({"employee": employee["id"], "date": "2026-12-01", "hours": 1, "state": "approved"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a decision cannot be set on create: {body}"
    );
    let (_, history) = api.get(&format!("/api/v1/timesheets/{id}/events")).await;
    let names: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["timesheet.created", "timesheet.updated"]);
}

#[tokio::test]
async fn rules_are_installed_checked_and_explained() {
    let api = start().await;
    let rule = "id: flag-long-entry\ntrigger: { on: create, record: timesheet }\ncondition: record.hours > 10\nactions:\n  - notify: { message: \"Long entry: {{ record.hours }} h\", role: operations }\n";
    let response = api
        .client
        .post(format!("{}/api/v1/rules", api.base))
        .bearer_auth(ADMIN)
        .body(rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let change: Value = response.json().await.unwrap();
    assert_eq!(
        change,
        json!([{"rule_id": "flag-long-entry", "version": 1, "change": "added"}])
    );

    let bad = "id: bad\ntrigger: { on: create, record: timesheet }\ncondition: record.hourz > 10\nactions: []\n";
    let response = api
        .client
        .post(format!("{}/api/v1/rules", api.base))
        .bearer_auth(ADMIN)
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`hourz` is not a field of timesheet"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"][0]["value"],
        json!({"line": 3, "column": 12})
    );

    let file = "rules:\n  - id: one\n    trigger: { on: create, record: client }\n    actions: [ { emit: { event: a.b } } ]\n  - id: two\n    trigger: { on: create, record: client }\n    actions: [ { emit: { event: a.c } } ]\n";
    let response = api
        .client
        .post(format!("{}/api/v1/rules", api.base))
        .bearer_auth(ADMIN)
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let changes: Value = response.json().await.unwrap();
    assert_eq!(
        changes.as_array().unwrap().len(),
        2,
        "a whole file installs every rule in it"
    );

    let employee = api
        .created("/api/v1/employees", json!({"name": "Ann"}))
        .await;
    let entry = api
        .created(
            "/api/v1/timesheets",
            json!({"employee": employee["id"], "date": "2026-12-01", "hours": 12}),
        )
        .await;
    api.engine.drain().await.unwrap();
    let (_, runs) = api
        .get(&format!(
            "/api/v1/timesheets/{}/runs",
            entry["id"].as_str().unwrap()
        ))
        .await;
    let run = &runs["items"][0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["inputs"], json!({"record.hours": "12"}));
    let (_, notes) = api.get("/api/v1/notifications").await;
    assert_eq!(notes["items"][0]["message"], "Long entry: 12 h");

    let (status, _) = api
        .call(
            Method::DELETE,
            "/api/v1/rules/flag-long-entry",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, rules) = api.get("/api/v1/rules").await;
    assert_eq!(rules["items"][0]["active"], false);
}

#[tokio::test]
async fn roles_limit_what_tokens_may_do() {
    let api = start().await;
    let auditor = api.token("auditor").await;
    let (status, _) = api
        .call(Method::GET, "/api/v1/clients", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(&auditor),
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auditor")
    );
    let employee = api.token("employee").await;
    let (status, _) = api
        .call(Method::GET, "/api/v1/tokens", Some(&employee), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api
        .post("/api/v1/tokens", json!({"name": "x", "role": "superuser"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, tokens) = api.get("/api/v1/tokens").await;
    assert!(
        tokens["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("hash").is_none() && t.get("secret").is_none())
    );
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed() {
    let api = start().await;
    let rule = "id: broken\ntrigger: { on: create, record: client }\nactions:\n  - create: { record: activity, fields: { title: x, assignee: \"= record.name\" } }\n";
    let response = api
        .client
        .post(format!("{}/api/v1/rules", api.base))
        .bearer_auth(ADMIN)
        .body(rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    api.created("/api/v1/clients", json!({"name": "Nobody"}))
        .await;
    api.engine.drain().await.unwrap();
    let (_, dead) = api.get("/api/v1/dead-letters").await;
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap();
    let (status, body) = api
        .post(&format!("/api/v1/dead-letters/{id}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _) = api
        .post(&format!("/api/v1/dead-letters/{id}/replay"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a pending job is not in the queue of dead letters"
    );
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let api = start().await;
    let (status, document) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().unwrap();
    for kind in steward_domain::Kind::ALL {
        assert!(
            paths.contains_key(&format!("/api/v1/{}", kind.plural())),
            "{kind} is missing"
        );
    }
    // Every documented endpoint exists: it never answers with the router's own 404.
    for (path, operations) in paths {
        let concrete = path
            .replace("{id}", "01JAAAAAAAAAAAAAAAAAAAAAAA")
            .replace("{collection}", "clients");
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (_, body) = api.call(method.clone(), &concrete, Some(ADMIN), None).await;
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.starts_with("no endpoint"),
                "{method} {path} is documented but not routed"
            );
        }
    }
}

impl Api {
    async fn as_token(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(token), body).await
    }

    async fn linked_token(&self, role: &str, employee: &Value) -> String {
        let body = json!({"name": format!("{role}-{}", employee["name"].as_str().unwrap()), "role": role, "employee": employee["id"]});
        self.created("/api/v1/tokens", body).await["secret"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn employees_change_only_their_own_time() {
    let api = start().await;
    let ann = api
        .created("/api/v1/employees", json!({"name": "Ann"}))
        .await;
    let bob = api
        .created(
            "/api/v1/employees",
            json!({"name": "Bob", "manager": ann["id"]}),
        )
        .await;
    let bob_token = api.linked_token("employee", &bob).await;
    let entry = json!({"employee": bob["id"], "date": "2026-12-01", "hours": "6"});
    let (status, own) = api
        .as_token(&bob_token, Method::POST, "/api/v1/timesheets", Some(entry))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let someone_else = json!({"employee": ann["id"], "date": "2026-12-01", "hours": "6"});
    let (status, _) = api
        .as_token(
            &bob_token,
            Method::POST,
            "/api/v1/timesheets",
            Some(someone_else),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .as_token(
            &bob_token,
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api
        .as_token(
            &bob_token,
            Method::PATCH,
            &format!("/api/v1/employees/{}", bob["id"].as_str().unwrap()),
            Some(json!({"cost_rate": "999"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let id = own["id"].as_str().unwrap();
    let transition = format!("/api/v1/timesheets/{id}/transition");
    let (status, submitted) = api
        .as_token(
            &bob_token,
            Method::POST,
            &transition,
            Some(json!({"state": "submitted"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    assert_eq!(
        submitted["submitted_by"], bob["id"],
        "the submitter is stamped"
    );
    let (status, body) = api
        .as_token(
            &bob_token,
            Method::POST,
            &transition,
            Some(json!({"state": "approved"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an employee cannot approve: {body}"
    );
    let (status, body) = api
        .as_token(
            &bob_token,
            Method::POST,
            "/api/v1/events",
            Some(json!({"name": "finding.opened"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn approvers_decide_on_others_only() {
    let api = start().await;
    let ann = api
        .created("/api/v1/employees", json!({"name": "Ann"}))
        .await;
    let bob = api
        .created(
            "/api/v1/employees",
            json!({"name": "Bob", "manager": ann["id"]}),
        )
        .await;
    let ann_token = api.linked_token("delivery_manager", &ann).await;
    let mine = api.created("/api/v1/timesheets", json!({"employee": ann["id"], "date": "2026-12-01", "hours": "5", "state": "submitted"})).await;
    let his = api.created("/api/v1/timesheets", json!({"employee": bob["id"], "date": "2026-12-01", "hours": "5", "state": "submitted"})).await;
    let approve = |entry: &Value| {
        format!(
            "/api/v1/timesheets/{}/transition",
            entry["id"].as_str().unwrap()
        )
    };
    let (status, body) = api
        .as_token(
            &ann_token,
            Method::POST,
            &approve(&mine),
            Some(json!({"state": "approved"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody decides on their own timesheet")
    );
    let (status, approved) = api
        .as_token(
            &ann_token,
            Method::POST,
            &approve(&his),
            Some(json!({"state": "approved"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        approved["approved_by"], ann["id"],
        "the approver is stamped"
    );

    let path = format!("/api/v1/timesheets/{}", his["id"].as_str().unwrap());
    let (status, body) = api
        .call(
            Method::PATCH,
            &path,
            Some(ADMIN),
            Some(json!({"hours": "9"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an approved entry is locked: {body}"
    );
    let (status, body) = api.call(Method::POST, "/api/v1/timesheets", Some(ADMIN), Some(json!({"employee": bob["id"], "date": "2026-12-01", "hours": "1", "approved_by": ann["id"]}))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "approvers are stamped, not sent: {body}"
    );
}

#[tokio::test]
async fn if_match_guards_changes() {
    let api = start().await;
    let client = api
        .created("/api/v1/clients", json!({"name": "Deco"}))
        .await;
    let path = format!("/api/v1/clients/{}", client["id"].as_str().unwrap());
    let response = api
        .client
        .get(format!("{}{path}", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let stale = api
        .client
        .patch(format!("{}{path}", api.base))
        .bearer_auth(ADMIN)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "Deco Addict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let fresh = api
        .client
        .patch(format!("{}{path}", api.base))
        .bearer_auth(ADMIN)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Deco Addict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(fresh.headers()["etag"], "\"2\"");
}

#[tokio::test]
async fn bearer_scheme_ignores_case() {
    let api = start().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = api
            .client
            .get(format!("{}/api/v1/clients", api.base))
            .header("Authorization", format!("{scheme} {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    let response = api
        .client
        .get(format!("{}/api/v1/clients", api.base))
        .header("Authorization", format!("Basic {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_methods_and_ids_get_json_errors() {
    let api = start().await;
    let client = api
        .created("/api/v1/clients", json!({"name": "Deco"}))
        .await;
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{}", client["id"].as_str().unwrap()),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let (status, body) = api
        .call(Method::GET, "/api/v1/billing-drafts", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.ends_with("it takes "),
        "the message names methods or where they are listed: {message}"
    );
    let (status, _) = api
        .post(
            "/api/v1/dead-letters/01JAAAAAAAAAAAAAAAAAAAAAAA/replay",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .post("/api/v1/clients", json!({"name": "x".repeat(20_000)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.to_string().len() < 3000,
        "a huge value is not echoed back whole"
    );
}
