//! The replay server over real loopback HTTP, checked against the captured requests and
//! responses of the Odoo 17 session.

use std::path::PathBuf;

use serde_json::{Value, json};
use steward_odoo_replay::{Fault, Replay};
use tokio::net::TcpListener;

/// Returns the folder of shared test data: `STEWARD_SHARED_DATA`, or the nearest `shared/data` above
/// this crate.
fn shared_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("STEWARD_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../../../../shared/data"))
}

fn capture_dir() -> PathBuf {
    shared_data().join("odoo17-jsonrpc")
}

fn read_json(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

struct Server {
    replay: Replay,
    url: String,
    http: reqwest::Client,
}

async fn start() -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let replay = Replay::load(&capture_dir()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jsonrpc", listener.local_addr().unwrap());
    tokio::spawn(replay.clone().serve(listener));
    Server {
        replay,
        url,
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn post(&self, body: &Value) -> (u16, Value) {
        let response = self.http.post(&self.url).json(body).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(content_type, "application/json; charset=utf-8");
        (status, response.json().await.unwrap())
    }

    async fn call(&self, service: &str, method: &str, args: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 7,
            "params": {"service": service, "method": method, "args": args}});
        let (status, answer) = self.post(&body).await;
        assert_eq!(status, 200);
        assert_eq!(answer["id"], 7);
        answer
    }

    async fn execute(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
        self.call(
            "object",
            "execute_kw",
            json!(["steward_demo", 2, "admin", model, method, args, kwargs]),
        )
        .await
    }
}

/// Returns every captured pair whose name contains `contains`, as (name, request, response).
fn captured_pairs(dir: &PathBuf, contains: &str) -> Vec<(String, Value, Value)> {
    let mut pairs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name.strip_suffix(".request.json") else {
            continue;
        };
        if !stem.contains(contains) {
            continue;
        }
        let response = read_json(&dir.join(format!("{stem}.json")));
        pairs.push((stem.to_string(), read_json(&path), response));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

#[tokio::test]
async fn pages_match_the_capture() {
    let server = start().await;
    let pairs = captured_pairs(&capture_dir(), "__search_read__page");
    assert_eq!(pairs.len(), 22, "one pair per captured page");
    for (name, request, response) in pairs {
        let (status, answer) = server.post(&request).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(answer, response, "{name}");
    }
}

#[tokio::test]
async fn counts_and_fields_match_the_capture() {
    let server = start().await;
    let mut checked = 0;
    for pattern in ["__search_count", "__fields_get"] {
        for (name, request, response) in captured_pairs(&capture_dir(), pattern) {
            let model = request["params"]["args"][3].as_str().unwrap().to_string();
            if model == "base.automation" || model == "ir.actions.server" {
                // No records of these models were captured, so the server does not know them.
                continue;
            }
            let (_, answer) = server.post(&request).await;
            assert_eq!(answer, response, "{name}");
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        17 * 2 + 3,
        "17 models, 3 counts with archived records"
    );
}

#[tokio::test]
async fn captured_errors_are_reproduced() {
    let server = start().await;
    let errors = capture_dir().join("errors");
    let reproduced = [
        "common__authenticate__error_unknown_db",
        "res.partner__search_read__error_wrong_password",
        "res.partner__search_read__error_unknown_field",
        "res.partner__search_read__error_unknown_field_in_domain",
        "x_no_such.model__search_read__error_unknown_model",
        "res.partner__no_such_method__error_unknown_method",
    ];
    for name in reproduced {
        let request = read_json(&errors.join(format!("{name}.request.json")));
        let response = read_json(&errors.join(format!("{name}.json")));
        let (status, answer) = server.post(&request).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(answer, response, "{name}");
    }
}

#[tokio::test]
async fn authenticate_checks_the_login() {
    let server = start().await;
    let version = server.call("common", "version", json!([])).await;
    assert_eq!(version["result"]["server_version"], "17.0-20240709");

    let ok = server
        .call(
            "common",
            "authenticate",
            json!(["steward_demo", "admin", "admin", {}]),
        )
        .await;
    assert_eq!(ok["result"], 2);

    let wrong = server
        .call(
            "common",
            "authenticate",
            json!(["steward_demo", "admin", "nope", {}]),
        )
        .await;
    assert_eq!(wrong["result"], false);

    let other_db = server
        .call(
            "common",
            "authenticate",
            json!(["elsewhere", "admin", "admin", {}]),
        )
        .await;
    let message = other_db["error"]["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("database \"elsewhere\" does not exist"),
        "{message}"
    );
    assert_eq!(
        other_db["error"]["data"]["name"],
        "psycopg2.OperationalError"
    );

    let wrong_uid = server
        .call(
            "object",
            "execute_kw",
            json!([
                "steward_demo",
                6,
                "admin",
                "res.users",
                "search_count",
                [[]]
            ]),
        )
        .await;
    assert_eq!(
        wrong_uid["error"]["data"]["name"],
        "odoo.exceptions.AccessDenied"
    );
}

fn ids(answer: &Value) -> Vec<i64> {
    answer["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result list in {answer}"))
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn search_read_applies_domain_and_paging() {
    let server = start().await;
    let fields = json!({"fields": ["id", "write_date"], "order": "id asc", "limit": 3});

    let page = server
        .execute(
            "account.analytic.line",
            "search_read",
            json!([[["id", ">", 410]]]),
            fields.clone(),
        )
        .await;
    assert_eq!(
        ids(&page),
        [411, 412, 417],
        "ids 413 to 416 are not timesheets"
    );

    let mut with_offset = fields.clone();
    with_offset["offset"] = json!(2);
    with_offset["order"] = json!("id desc");
    let page = server
        .execute("hr.employee", "search_read", json!([[]]), with_offset)
        .await;
    assert_eq!(ids(&page), [18, 17, 16]);

    let newest = server
        .execute(
            "sale.order",
            "search_read",
            json!([[["write_date", ">", "2026-12-04 15:24:06"]]]),
            json!({"fields": ["name"], "order": "id asc"}),
        )
        .await;
    assert_eq!(ids(&newest), [3, 21, 22, 23]);
    assert_eq!(newest["result"][0], json!({"id": 3, "name": "S00003"}));

    let same_second = server
        .execute(
            "sale.order",
            "search_read",
            json!([[["write_date", ">=", "2026-12-04 15:24:14"]]]),
            json!({"fields": ["id"]}),
        )
        .await;
    assert_eq!(ids(&same_second), [3, 21, 22, 23]);

    let either = server
        .execute(
            "hr.employee",
            "search_read",
            json!([["|", ["department_id", "in", [5]], ["user_id", "=", 6]]]),
            json!({"fields": ["id"]}),
        )
        .await;
    assert_eq!(ids(&either), [3, 14]);
}

#[tokio::test]
async fn read_count_and_missing_records() {
    let server = start().await;
    let read = server
        .execute(
            "res.users",
            "read",
            json!([[6, 2]]),
            json!({"fields": ["login"]}),
        )
        .await;
    assert_eq!(
        read["result"],
        json!([{"id": 6, "login": "demo"}, {"id": 2, "login": "admin"}])
    );

    let missing = server
        .execute(
            "res.users",
            "read",
            json!([[99]]),
            json!({"fields": ["login"]}),
        )
        .await;
    assert_eq!(
        missing["error"]["data"]["name"],
        "odoo.exceptions.MissingError"
    );

    let count = server
        .execute(
            "project.task",
            "search_count",
            json!([[["id", ">", 60]]]),
            json!({}),
        )
        .await;
    assert_eq!(count["result"], 11);
}

#[tokio::test]
async fn unknown_names_get_odoo_errors() {
    let server = start().await;
    let field = server
        .execute(
            "hr.leave",
            "search_read",
            json!([[]]),
            json!({"fields": ["id", "x_mood"]}),
        )
        .await;
    assert_eq!(field["error"]["data"]["name"], "builtins.ValueError");
    assert_eq!(
        field["error"]["data"]["message"],
        "Invalid field 'x_mood' on model 'hr.leave'"
    );

    let leaf = server
        .execute(
            "hr.leave",
            "search_read",
            json!([[["x_mood", "in", ["calm"]]]]),
            json!({}),
        )
        .await;
    assert_eq!(
        leaf["error"]["data"]["message"],
        "Invalid field hr.leave.x_mood in leaf ('x_mood', 'in', ['calm'])"
    );

    let order = server
        .execute(
            "hr.leave",
            "search_read",
            json!([[]]),
            json!({"order": "x_mood asc"}),
        )
        .await;
    assert_eq!(order["error"]["data"]["name"], "builtins.ValueError");

    let write = server
        .execute("hr.leave", "write", json!([[1], {"name": "x"}]), json!({}))
        .await;
    assert_eq!(write["error"]["data"]["name"], "odoo.exceptions.UserError");

    let private = server
        .execute("hr.leave", "_read_group", json!([]), json!({}))
        .await;
    assert_eq!(
        private["error"]["data"]["name"],
        "odoo.exceptions.AccessError"
    );
}

#[tokio::test]
async fn body_that_is_not_json_gets_bad_request() {
    let server = start().await;
    let response = server
        .http
        .post(&server.url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(
        answer["error"]["data"]["name"],
        "werkzeug.exceptions.BadRequest"
    );
}

#[tokio::test]
async fn update_hook_changes_a_row() {
    let server = start().await;
    let changes = json!({"write_date": "2026-12-05 09:00:00", "unit_amount": 3.5});
    server
        .replay
        .update_record(
            "account.analytic.line",
            7,
            changes.as_object().unwrap().clone(),
        )
        .unwrap();
    let changed = server
        .execute(
            "account.analytic.line",
            "search_read",
            json!([[
                ["project_id", "!=", false],
                ["write_date", ">=", "2026-12-05 00:00:00"]
            ]]),
            json!({"fields": ["unit_amount", "write_date"]}),
        )
        .await;
    assert_eq!(
        changed["result"],
        json!([{"id": 7, "unit_amount": 3.5, "write_date": "2026-12-05 09:00:00"}])
    );

    let unknown = server.replay.update_record(
        "account.analytic.line",
        7,
        json!({"x_mood": 1}).as_object().unwrap().clone(),
    );
    assert!(unknown.unwrap_err().to_string().contains("x_mood"));
}

#[tokio::test]
async fn injected_faults_replace_answers() {
    let server = start().await;
    server.replay.inject_fault(
        "hr.leave",
        Fault::Http {
            status: 502,
            body: "<html>Bad Gateway</html>".into(),
        },
    );
    let response = server
        .http
        .post(&server.url)
        .json(
            &json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": ["steward_demo", 2, "admin", "hr.leave", "search_count", [[]]]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);

    let untouched = server
        .execute("hr.employee", "search_count", json!([[]]), json!({}))
        .await;
    assert_eq!(untouched["result"], 20);

    server.replay.clear_faults();
    let healed = server
        .execute("hr.leave", "search_count", json!([[]]), json!({}))
        .await;
    assert_eq!(healed["result"], 12);
    assert!(server.replay.requests().len() >= 3);
}
