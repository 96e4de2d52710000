//! `/web/hook/<uuid>` over a plain socket, checked against the exact requests and responses
//! of the captured Odoo 17 server.

use std::path::PathBuf;

use serde_json::{Value, json};
use steward_odoo_replay::Replay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn capture_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STEWARD_SHARED_DATA") {
        return PathBuf::from(dir).join("odoo17-jsonrpc");
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../../../../shared/data"))
        .join("odoo17-jsonrpc")
}

/// Reads the request and response bytes of a `webhook_in__*.http.txt` capture.
fn exchange(name: &str) -> (Vec<u8>, Vec<u8>) {
    let path = capture_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8(bytes).unwrap();
    let request_marker = "### request (exact bytes sent, CRLF line ends)\r\n";
    let response_marker = "\r\n### response (exact bytes received, CRLF line ends)\r\n";
    let start = text.find(request_marker).unwrap() + request_marker.len();
    let middle = text.find(response_marker).unwrap();
    let request = text[start..middle].as_bytes().to_vec();
    let response = text[middle + response_marker.len()..]
        .strip_suffix("\r\n")
        .unwrap()
        .as_bytes()
        .to_vec();
    (request, response)
}

/// Splits an HTTP/1.1 response into its status code, headers by lower-case name, and body.
fn parse(answer: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the answer has a header section");
    let head = String::from_utf8(answer[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_ascii_lowercase(), value.to_string())
        })
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

async fn start() -> (Replay, String) {
    let replay = Replay::load(&capture_dir()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(replay.clone().serve(listener));
    (replay, address)
}

/// Sends the captured request bytes unchanged. They contain `Connection: close`, so the
/// response ends with the connection.
async fn send(address: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    answer
}

fn task_priority(replay: &Replay, id: i64) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": ["steward_demo", 2, "admin", "project.task", "read", [[id]], {"fields": ["priority", "write_date"]}]}});
    match replay.respond(&request) {
        steward_odoo_replay::Reply::Result(rows) => rows[0]["priority"].clone(),
        other => panic!("reading task {id} failed: {other:?}"),
    }
}

#[test]
fn captured_webhook_rule_is_loaded() {
    let replay = Replay::load(&capture_dir()).unwrap();
    let triggers = replay.webhook_triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].uuid, "9835f701-8d3b-490e-bd4b-92045c269f5a");
    assert_eq!(triggers[0].model, "project.task");
    assert_eq!(
        triggers[0].write,
        Some(("priority".to_string(), json!("1")))
    );
}

#[tokio::test]
async fn web_hook_responds_as_captured() {
    let (_, address) = start().await;
    for name in [
        "webhook_in__post_unknown_uuid.http.txt",
        "webhook_in__post_missing_record.http.txt",
        "webhook_in__post_without_model_and_id.http.txt",
        "webhook_in__post_task.http.txt",
    ] {
        let (request, captured) = exchange(name);
        let (want_status, want_headers, want_body) = parse(&captured);
        let (status, headers, body) = parse(&send(&address, &request).await);
        assert_eq!(status, want_status, "{name}");
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want_body),
            "{name}"
        );
        for header in ["content-type", "content-length", "x-content-type-options"] {
            let want = want_headers
                .iter()
                .find(|(n, _)| n == header)
                .map(|(_, v)| v);
            let got = headers.iter().find(|(n, _)| n == header).map(|(_, v)| v);
            assert_eq!(got, want, "{name}: {header}");
        }
    }
}

#[tokio::test]
async fn web_hook_runs_the_rule_action() {
    let (replay, address) = start().await;
    assert_eq!(task_priority(&replay, 47), json!("0"));
    let (request, _) = exchange("webhook_in__post_task.http.txt");
    let (status, _, _) = parse(&send(&address, &request).await);
    assert_eq!(status, 200);
    assert_eq!(task_priority(&replay, 47), json!("1"));

    // A missing record changes nothing.
    let (missing, _) = exchange("webhook_in__post_missing_record.http.txt");
    let (status, _, _) = parse(&send(&address, &missing).await);
    assert_eq!(status, 500);
}

#[tokio::test]
async fn web_hook_takes_query_parameters_on_get() {
    let (replay, address) = start().await;
    let request = format!(
        "GET /web/hook/9835f701-8d3b-490e-bd4b-92045c269f5a?_model=project.task&_id=30 HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = parse(&send(&address, request.as_bytes()).await);
    assert_eq!(status, 200);
    assert_eq!(body, br#"{"status": "ok"}"#);
    assert_eq!(task_priority(&replay, 30), json!("1"));
}
