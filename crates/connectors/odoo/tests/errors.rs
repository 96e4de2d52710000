//! Odoo's error payloads, broken responses and unreachable servers, each mapped to a clear error,
//! and a failed sync that writes nothing.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use steward_domain::Kind;
use steward_odoo::{CallContext, OdooClient, OdooError, SyncError, Timeouts, map_rpc_error, sync};
use steward_odoo_replay::Fault;
use support::{capture_dir, config, harness, options, start_replay};
use tokio::net::TcpListener;

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Builds the context of a captured request, as the client describes the call.
fn context_of(request: &Value) -> CallContext {
    let params = &request["params"];
    let args = params["args"].as_array().unwrap();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let object = params["service"] == "object";
    CallContext {
        url: "http://127.0.0.1:8069".into(),
        db: text(&args[0]).unwrap(),
        login: if object {
            "admin".into()
        } else {
            text(&args[1]).unwrap()
        },
        service: text(&params["service"]).unwrap(),
        method: text(&params["method"]).unwrap(),
        model: if object { text(&args[3]) } else { None },
        model_method: if object { text(&args[4]) } else { None },
    }
}

#[test]
fn every_captured_error_maps_to_a_typed_error() {
    let dir = capture_dir().join("errors");
    let mut mapped = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name
            .strip_suffix(".json")
            .filter(|s| !s.ends_with(".request"))
        else {
            continue;
        };
        let response = read_json(&path);
        let Some(error) = response.get("error") else {
            continue; // the ir.logging capture is a normal response
        };
        let request = read_json(&dir.join(format!("{stem}.request.json")));
        let error = map_rpc_error(error, &context_of(&request));
        let message = error.to_string();
        match stem {
            "common__authenticate__error_unknown_db" => {
                assert_eq!(
                    error,
                    OdooError::DatabaseNotFound {
                        url: "http://127.0.0.1:8069".into(),
                        db: "no_such_db".into()
                    }
                );
                assert!(message.contains("`no_such_db` does not exist"), "{message}");
            }
            "ir.config_parameter__search_read__error_access_denied"
            | "res.company__write__error_access_denied" => {
                assert!(
                    matches!(error, OdooError::AccessError { .. }),
                    "{stem}: {error:?}"
                );
                assert!(message.contains("You are not allowed to"), "{message}");
                assert!(message.contains("administrator"), "{message}");
            }
            "project.project__search_read__error_field_not_accessible" => {
                assert!(matches!(error, OdooError::AccessError { .. }), "{error:?}");
                assert!(message.contains("stage_id"), "{message}");
                assert!(message.contains("project.project.search_read"), "{message}");
            }
            "res.partner__no_such_method__error_unknown_method" => {
                assert_eq!(
                    error,
                    OdooError::UnknownMethod {
                        model: "res.partner".into(),
                        method: "no_such_method".into()
                    }
                );
            }
            "res.partner__search_read__error_unknown_field"
            | "res.partner__search_read__error_unknown_field_in_domain" => {
                assert_eq!(
                    error,
                    OdooError::UnknownField {
                        model: "res.partner".into(),
                        field: "x_no_such_field".into()
                    }
                );
                assert!(message.contains("`x_no_such_field`"), "{message}");
            }
            "res.partner__search_read__error_wrong_password" => {
                assert!(matches!(error, OdooError::AccessDenied { .. }), "{error:?}");
                assert!(message.contains("`admin`"), "{message}");
                assert!(message.contains("API key"), "{message}");
            }
            "x_no_such.model__search_read__error_unknown_model" => {
                assert_eq!(
                    error,
                    OdooError::UnknownModel {
                        model: "x_no_such.model".into()
                    }
                );
                assert!(message.contains("install"), "{message}");
            }
            other => panic!("no expectation for the captured error {other}: {error}"),
        }
        mapped += 1;
    }
    assert_eq!(mapped, 9, "every captured error file is checked");
}

fn client(url: &str) -> OdooClient {
    OdooClient::new(config(url)).unwrap()
}

#[tokio::test]
async fn login_errors_come_from_the_server() {
    let (_replay, url) = start_replay().await;
    let mut wrong = config(&url);
    wrong.password = "wrong".into();
    let error = OdooClient::new(wrong)
        .unwrap()
        .authenticate()
        .await
        .unwrap_err();
    assert!(matches!(error, OdooError::AccessDenied { .. }), "{error:?}");

    let mut other_db = config(&url);
    other_db.db = "elsewhere".into();
    let error = OdooClient::new(other_db)
        .unwrap()
        .authenticate()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, OdooError::DatabaseNotFound { db, .. } if db == "elsewhere"),
        "{error:?}"
    );
    assert_eq!(client(&url).authenticate().await.unwrap(), 2);
}

#[tokio::test]
async fn model_errors_come_from_the_server() {
    let (_replay, url) = start_replay().await;
    let odoo = client(&url);
    let error = odoo
        .search_read("hr.leave", &[], &["id", "x_mood"], None, Some(1))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        OdooError::UnknownField {
            model: "hr.leave".into(),
            field: "x_mood".into()
        }
    );
    let error = odoo
        .search_read(
            "hr.leave",
            &[json!(["x_mood", "=", 1])],
            &["id"],
            None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(&error, OdooError::UnknownField { field, .. } if field == "x_mood"));
    let error = odoo.search_count("x_nothing", &[]).await.unwrap_err();
    assert_eq!(
        error,
        OdooError::UnknownModel {
            model: "x_nothing".into()
        }
    );
    let error = odoo
        .execute_kw("hr.leave", "x_shout", vec![], Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        OdooError::UnknownMethod {
            model: "hr.leave".into(),
            method: "x_shout".into()
        }
    );
}

#[tokio::test]
async fn broken_responses_are_named() {
    let (replay, url) = start_replay().await;
    let odoo = client(&url);
    let cases = [
        (
            Fault::Http {
                status: 502,
                body: "<html>Bad Gateway</html>".into(),
            },
            "HTTP 502",
        ),
        (
            Fault::Http {
                status: 200,
                body: "<html>Odoo login page</html>".into(),
            },
            "not JSON",
        ),
        (Fault::Result(json!("oops")), "expected a list of records"),
        (Fault::Result(json!([{"name": "no id"}])), "integer `id`"),
        (Fault::Result(json!([{"id": 1}])), "the field `name`"),
    ];
    for (fault, expected) in cases {
        replay.inject_fault("hr.leave", fault.clone());
        let error = odoo
            .search_read("hr.leave", &[], &["id", "name"], None, None)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains(expected), "{fault:?}: {message}");
        assert!(message.contains("hr.leave"), "{fault:?}: {message}");
    }
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = client(&url).authenticate().await.unwrap_err();
    assert!(matches!(error, OdooError::Transport { .. }), "{error:?}");
    assert!(error.to_string().contains(&url), "{error}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts connections and never responds.
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_millis(300),
    };
    let odoo = OdooClient::with_timeouts(config(&url), timeouts).unwrap();
    let error = odoo.version().await.unwrap_err();
    assert!(matches!(error, OdooError::Timeout { .. }), "{error:?}");
    silent.abort();
}

#[tokio::test]
async fn failed_sync_writes_nothing() {
    let h = harness().await;
    let captured = |name: &str| {
        read_json(&capture_dir().join("errors").join(format!("{name}.json")))["error"].clone()
    };
    let cases = [
        (
            Fault::Error(captured("res.partner__search_read__error_wrong_password")),
            "AccessDenied",
        ),
        (
            Fault::Error(captured(
                "ir.config_parameter__search_read__error_access_denied",
            )),
            "AccessError",
        ),
        (
            Fault::Error(captured("res.partner__search_read__error_unknown_field")),
            "UnknownField",
        ),
        (
            Fault::Error(captured(
                "x_no_such.model__search_read__error_unknown_model",
            )),
            "UnknownModel",
        ),
        (
            Fault::Error(captured(
                "res.partner__no_such_method__error_unknown_method",
            )),
            "UnknownMethod",
        ),
        (
            Fault::Http {
                status: 500,
                body: "Internal Server Error".into(),
            },
            "HttpStatus",
        ),
        (
            Fault::Http {
                status: 200,
                body: "{\"jsonrpc\": \"2.0\"".into(),
            },
            "NotJsonRpc",
        ),
        (Fault::Result(json!({"records": []})), "UnexpectedResult"),
    ];
    for (fault, variant) in cases {
        // Timesheets are read near the end, after most models, so a write before the read
        // finished would show.
        h.replay
            .inject_fault("account.analytic.line", fault.clone());
        let error = sync(&h.engine, &h.config, &options()).await.unwrap_err();
        let SyncError::Odoo(odoo) = &error else {
            panic!("{fault:?}: expected an Odoo error, got {error}");
        };
        assert!(
            format!("{odoo:?}").starts_with(variant),
            "{fault:?}: {odoo:?}"
        );
        assert!(!error.to_string().is_empty());
        assert_eq!(h.events(), 0, "{variant}: nothing is written");
        assert_eq!(h.count(Kind::Employee), 0, "{variant}");
        assert_eq!(h.cursor("hr.employee"), None, "{variant}");
    }
    h.replay.clear_faults();
    let report = sync(&h.engine, &h.config, &options()).await.unwrap();
    assert!(report.created() > 0);
    assert_eq!(h.count(Kind::Timesheet), 532);
}
