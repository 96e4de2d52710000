//! Inbound webhooks through the real Steward router over loopback: idempotency keys,
//! rejections with their reasons, synchronous answers from rules, and Odoo 17's own webhook
//! payload updating a task mirrored by the Odoo sync.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use steward_domain::Kind;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Posts `body` to `/hooks/<path>` with Standard Webhooks headers signed by `secret`.
async fn post_signed(
    h: &Harness,
    path: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> (u16, Value, Option<String>) {
    let response = h
        .http
        .post(format!("{}/hooks/{path}", h.base))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(secret, id, timestamp, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn answer(response: reqwest::Response) -> (u16, Value, Option<String>) {
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, replayed)
}

async fn create_inbound(h: &Harness, config: Value) -> Value {
    let (status, created) = h.api(Method::POST, "/webhooks/inbound", Some(config)).await;
    assert_eq!(status, 201, "{created}");
    created
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn count(h: &Harness, kind: Kind) -> u64 {
    steward_store::read(h.engine.store().as_ref(), |tx| tx.count_records(kind, None)).unwrap()
}

#[tokio::test]
async fn one_key_sent_three_times_creates_one_record() {
    let h = harness(fast_config(3)).await;
    create_inbound(
        &h,
        json!({"id": "portal", "verification": "standard", "secret": STANDARD_SECRET,
               "idempotency": {"header": "webhook-id"},
               "mapping": {"emit": "portal.request"}}),
    )
    .await;
    h.rules(
        r#"
rules:
  - id: new-client-from-portal
    trigger: { on: event, event: portal.request }
    actions:
      - create: { record: client, fields: { name: "= event.data.name" } }
"#,
    )
    .await;

    let body = json_body(&json!({"name": "Deco Addict", "budget": 1200}));
    let timestamp = now();
    let (first, second, third) = tokio::join!(
        post_signed(&h, "portal", STANDARD_SECRET, "msg_1", timestamp, &body),
        post_signed(&h, "portal", STANDARD_SECRET, "msg_1", timestamp, &body),
        post_signed(&h, "portal", STANDARD_SECRET, "msg_1", timestamp, &body),
    );
    for (status, answer, _) in [&first, &second, &third] {
        assert_eq!(*status, 202, "{answer}");
        assert_eq!(answer, &first.1, "every repeat gets the first answer");
    }
    let replayed = [&first, &second, &third]
        .iter()
        .filter(|(_, _, replayed)| replayed.as_deref() == Some("true"))
        .count();
    assert_eq!(replayed, 2);
    assert_eq!(count_events(&h.engine, "portal.request"), 1);
    assert_eq!(count(&h, Kind::Client), 1);
    let event = first.1["accepted"].as_str().unwrap();
    let stored = h.get(&format!("/events/{event}")).await;
    assert_eq!(
        stored["actor"],
        json!({"kind": "integration", "id": "portal"})
    );
    assert_eq!(stored["data"]["name"], "Deco Addict");

    // Another key is another delivery.
    let (status, _, replayed) =
        post_signed(&h, "portal", STANDARD_SECRET, "msg_2", now(), &body).await;
    assert_eq!(status, 202);
    assert_eq!(replayed, None);
    assert_eq!(count(&h, Kind::Client), 2);

    let health = h.get("/integrations/health").await;
    let portal = health["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "portal")
        .cloned()
        .unwrap();
    assert_eq!(portal["integration"], "webhook_in");
    assert_eq!(portal["accepted"], 2);
    assert_eq!(portal["status"], "healthy");
}

#[tokio::test]
async fn bad_deliveries_are_rejected_and_logged() {
    let h = harness(fast_config(3)).await;
    create_inbound(
        &h,
        json!({"id": "portal", "verification": "standard", "secret": STANDARD_SECRET,
               "idempotency": {"header": "webhook-id"}, "mapping": {"emit": "portal.request"}}),
    )
    .await;
    let odoo = create_inbound(
        &h,
        json!({"id": "odoo", "verification": "token", "idempotency": "none",
               "mapping": {"emit": "odoo.changed"}}),
    )
    .await;
    let token = odoo["secret"].as_str().unwrap().to_string();
    assert_eq!(odoo["url_path"], json!(format!("/hooks/odoo/{token}")));
    let hmac = create_inbound(
        &h,
        json!({"id": "shop", "verification": "hmac", "signature_header": "X-Hub-Signature-256",
               "signature_prefix": "sha256=", "secret": "a-sender-chosen-secret-0123456789",
               "mapping": {"upsert": {"record": "client",
                   "external": {"system": "shop", "model": "customer", "id": "= payload.customer.id"},
                   "fields": {"name": "= payload.customer.name"}}}}),
    )
    .await;
    assert_eq!(hmac["path"], "/hooks/shop");

    let body = json_body(&json!({"name": "Azure Interior"}));
    let other_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let (status, answer, _) = post_signed(&h, "portal", other_secret, "m1", now(), &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("bad_signature"))
    );
    let (status, answer, _) =
        post_signed(&h, "portal", STANDARD_SECRET, "m2", now() - 600, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("stale_timestamp"))
    );
    let (status, answer, _) =
        post_signed(&h, "portal", STANDARD_SECRET, "m3", now(), b"name=Azure").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("not_json"))
    );
    let unsigned = h
        .http
        .post(format!("{}/hooks/portal", h.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, answer, _) = self::answer(unsigned).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("bad_signature"))
    );

    for path in ["/hooks/odoo/not-the-token", "/hooks/odoo"] {
        let response = h
            .http
            .post(format!("{}{path}", h.base))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, answer, _) = self::answer(response).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("bad_token")),
            "{path}"
        );
    }
    let response = h
        .http
        .post(format!("{}/hooks/odoo/{token}", h.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);

    let response = h
        .http
        .post(format!("{}/hooks/nobody", h.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, answer, _) = self::answer(response).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_endpoint"))
    );

    // HMAC of the body in a header, with and without the right secret, and a payload the
    // mapping cannot use.
    let shop = |signature: String, body: Vec<u8>| {
        h.http
            .post(format!("{}/hooks/shop", h.base))
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
    };
    let order = json_body(&json!({"customer": {"id": 7, "name": "Gemini Furniture"}}));
    let digest = |secret: &str, body: &[u8]| {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let good = digest("a-sender-chosen-secret-0123456789", &order);
    assert_eq!(
        shop(good, order.clone()).await.unwrap().status().as_u16(),
        202
    );
    let bad = digest("another-secret-0123456789abcdef", &order);
    assert_eq!(
        shop(bad, order.clone()).await.unwrap().status().as_u16(),
        401
    );
    let no_customer = json_body(&json!({"order": 1}));
    let response = shop(
        digest("a-sender-chosen-secret-0123456789", &no_customer),
        no_customer,
    )
    .await
    .unwrap();
    let (status, answer, _) = self::answer(response).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("mapping_failed"))
    );
    assert_eq!(count(&h, Kind::Client), 1);

    let reasons = |endpoint: &'static str| {
        let h = &h;
        async move {
            let page = h
                .get(&format!("/webhooks/inbound/{endpoint}/rejections"))
                .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["reason"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        reasons("portal").await,
        vec![
            "bad_signature",
            "not_json",
            "stale_timestamp",
            "bad_signature"
        ]
    );
    assert_eq!(reasons("odoo").await, vec!["bad_token", "bad_token"]);
    assert_eq!(reasons("nobody").await, vec!["unknown_endpoint"]);
    assert_eq!(
        reasons("shop").await,
        vec!["mapping_failed", "bad_signature"]
    );
    let page = h.get("/webhooks/inbound/portal/rejections?limit=1").await;
    let first = &page["items"][0];
    assert_eq!(first["status"], 401);
    assert_eq!(first["body_bytes"], body.len());
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("webhook-signature")
    );
    assert!(page["next_cursor"].is_string());
    assert_eq!(count_events(&h.engine, "portal.request"), 0);
}

#[tokio::test]
async fn synchronous_endpoint_answers_with_rule_respond() {
    let h = harness(fast_config(3)).await;
    create_inbound(
        &h,
        json!({"id": "intake", "verification": "standard", "secret": STANDARD_SECRET,
               "idempotency": {"fields": ["request.id"]}, "synchronous": true,
               "mapping": {"emit": "intake.request"}}),
    )
    .await;
    h.rules(
        r#"
rules:
  - id: route-large-requests
    trigger: { on: event, event: intake.request }
    condition: event.data.request.budget > 10000
    actions:
      - respond:
          status: 200
          body: { team: enterprise, client: "= event.data.client", event: "= event.id" }
"#,
    )
    .await;

    let large =
        json_body(&json!({"client": "Deco Addict", "request": {"id": "R-1", "budget": 25000}}));
    let (status, body, _) = post_signed(&h, "intake", STANDARD_SECRET, "a", now(), &large).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["team"], "enterprise");
    assert_eq!(body["client"], "Deco Addict");
    assert!(body["event"].is_string());

    // The same request id is the same delivery, whatever its webhook-id.
    let (status, again, replayed) =
        post_signed(&h, "intake", STANDARD_SECRET, "b", now(), &large).await;
    assert_eq!(status, 200);
    assert_eq!(again, body);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(count_events(&h.engine, "intake.request"), 1);

    // No rule responds to a small request: the default answer.
    let small = json_body(&json!({"client": "Azure", "request": {"id": "R-2", "budget": 900}}));
    let (status, body, _) = post_signed(&h, "intake", STANDARD_SECRET, "c", now(), &small).await;
    assert_eq!(status, 202);
    assert!(body["accepted"].is_string());

    let no_id = json_body(&json!({"client": "Azure"}));
    let (status, body, _) = post_signed(&h, "intake", STANDARD_SECRET, "d", now(), &no_id).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "missing_idempotency_key");
}

/// Sends the captured request with its request line and `Host` header pointed at Steward, and
/// every other byte, the body included, unchanged. Returns the status and the body.
async fn send_captured(base: &str, path: &str, file: &str) -> (u16, Value) {
    let bytes = std::fs::read(shared_data().join("odoo17-jsonrpc").join(file)).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let address = base.trim_start_matches("http://");
    let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
    lines[0] = format!("POST {path} HTTP/1.1");
    for line in lines.iter_mut() {
        if line.starts_with("Host: ") {
            *line = format!("Host: {address}");
        }
    }
    let mut request = lines.join("\r\n").into_bytes();
    request.extend_from_slice(&bytes[split..]);

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(&request).await.unwrap();
    // The request keeps the connection alive, so read the head, then Content-Length bytes.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let (head_end, length) = loop {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed before the answer");
        answer.extend_from_slice(&buffer[..read]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            break (end + 4, length);
        }
    };
    while answer.len() < head_end + length {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0);
        answer.extend_from_slice(&buffer[..read]);
    }
    let status = String::from_utf8_lossy(&answer[..head_end])
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let body = serde_json::from_slice(&answer[head_end..head_end + length]).unwrap();
    (status, body)
}

fn mirrored_task(h: &Harness, id: i64) -> steward_domain::Record {
    let key = steward_odoo::key("project.task", id);
    steward_store::read(h.engine.store().as_ref(), |tx| {
        let link = tx.external_link(&key)?.expect("the task is mirrored");
        tx.record(link.record.kind, &link.record.id)
    })
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn odoo_stage_change_updates_mirrored_task() {
    let h = harness(fast_config(3)).await;
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(replay.clone().serve(listener));
    let config = steward_odoo::OdooConfig {
        url: odoo,
        db: "steward_demo".into(),
        login: "admin".into(),
        password: "admin".into(),
    };
    let options = steward_odoo::SyncOptions {
        progress: false,
        ..Default::default()
    };
    let report = steward_odoo::sync(&h.engine, &config, &options)
        .await
        .unwrap();
    assert_eq!(report.failures().count(), 0);
    let before = mirrored_task(&h, 28);
    assert_eq!(before.fields["stage"], "New");
    assert_eq!(before.fields["name"], "Usability review");

    // Odoo signs nothing and never retries, and two changes can send the same body, so the
    // endpoint checks a URL token and applies every delivery.
    let created = create_inbound(
        &h,
        json!({"id": "odoo-tasks", "verification": "token", "idempotency": "none",
            "mapping": {"upsert": {
                "record": "task",
                "external": {"system": "odoo", "model": "= payload._model", "id": "= payload._id"},
                "fields": {
                    "name": "= payload.name",
                    "stage": "= payload.stage_id == 1 ? 'New' : payload.stage_id == 2 ? 'In Progress' : payload.stage_id == 3 ? 'Done' : 'Stage ' + string(payload.stage_id)"
                }}}}),
    )
    .await;
    let path = created["url_path"].as_str().unwrap().to_string();

    let (status, answer) =
        send_captured(&h.base, &path, "webhook_out__task_stage_change.http.txt").await;
    assert_eq!(status, 202, "{answer}");
    let after = mirrored_task(&h, 28);
    assert_eq!(after.id, before.id);
    assert_eq!(after.fields["stage"], "In Progress");
    assert_eq!(after.fields["name"], "Usability review");
    assert_eq!(after.fields["project"], before.fields["project"]);
    let event = h
        .get(&format!("/events/{}", answer["accepted"].as_str().unwrap()))
        .await;
    assert_eq!(
        event["actor"],
        json!({"kind": "integration", "id": "odoo-tasks"})
    );
    assert_eq!(event["changes"]["stage"]["old"], "New");
    assert_eq!(event["changes"]["stage"]["new"], "In Progress");
    let link = steward_store::read(h.engine.store().as_ref(), |tx| {
        tx.external_link(&steward_odoo::key("project.task", 28))
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        link.source_version.as_deref(),
        Some("2026-12-04 15:24:13"),
        "the webhook keeps the sync's version marker"
    );

    // `\uXXXX` escapes decode to the real name.
    let (status, _) = send_captured(
        &h.base,
        &path,
        "webhook_out__task_stage_change__non_ascii_name.http.txt",
    )
    .await;
    assert_eq!(status, 202);
    let renamed = mirrored_task(&h, 28);
    assert_eq!(renamed.fields["name"], "Usability review — café ✓");
    assert_eq!(renamed.fields["stage"], "Done");

    // The same bytes again are a later, real change back to In Progress.
    let (status, _) =
        send_captured(&h.base, &path, "webhook_out__task_stage_change.http.txt").await;
    assert_eq!(status, 202);
    assert_eq!(mirrored_task(&h, 28).fields["stage"], "In Progress");

    let (status, _) = send_captured(
        &h.base,
        &path,
        "webhook_out__task_stage_change__back_to_new.http.txt",
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(mirrored_task(&h, 30).fields["stage"], "New");

    let (status, answer) = send_captured(
        &h.base,
        "/hooks/odoo-tasks/wrong-token",
        "webhook_out__task_stage_change.http.txt",
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], "bad_token");
}
