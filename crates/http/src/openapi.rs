//! The OpenAPI 3.1 document, built from the record schemas and the endpoint table so that it
//! always describes what the server does.

use serde_json::{Map, Value, json};
use steward_domain::schema::FieldType;
use steward_domain::{Kind, KindSchema};

use crate::error::CODES;

/// One endpoint: method, path, summary, whether it takes a body, and the error codes it can
/// return besides `unauthorized` and `internal`.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub body: Option<&'static str>,
    pub response: &'static str,
    pub errors: &'static [&'static str],
}

const LIST_ERRORS: &[&str] = &["invalid_request"];

/// The endpoints outside the record collections.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/api/v1/events",
        summary: "List events in log order",
        body: None,
        response: "EventPage",
        errors: LIST_ERRORS,
    },
    Endpoint {
        method: "post",
        path: "/api/v1/events",
        summary: "Emit a business event",
        body: Some("EmitRequest"),
        response: "Event",
        errors: &["invalid_request", "validation_failed", "forbidden"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/events/{id}",
        summary: "Read one event",
        body: None,
        response: "Event",
        errors: &["not_found"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/rules",
        summary: "List rules with their newest version",
        body: None,
        response: "RulePage",
        errors: &[],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/rules",
        summary: "Install a rule, or a file of rules, given as JSON or YAML",
        body: Some("Rule"),
        response: "RuleChanges",
        errors: &["validation_failed", "forbidden"],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/rules/check",
        summary: "Check a rule without installing it",
        body: Some("Rule"),
        response: "RuleCheck",
        errors: &[],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/rules/simulate",
        summary: "Replay the recorded events since `since` through a rule or rule file, with no effects",
        body: Some("Rule"),
        response: "SimulationReport",
        errors: &["invalid_request", "validation_failed", "forbidden"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/rules/{id}",
        summary: "List every version of a rule",
        body: None,
        response: "RuleVersionPage",
        errors: &["not_found"],
    },
    Endpoint {
        method: "delete",
        path: "/api/v1/rules/{id}",
        summary: "Retire a rule",
        body: None,
        response: "Empty",
        errors: &["not_found", "forbidden"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/runs",
        summary: "List rule runs with their explanations",
        body: None,
        response: "RunPage",
        errors: LIST_ERRORS,
    },
    Endpoint {
        method: "get",
        path: "/api/v1/runs/{id}",
        summary: "Read one rule run",
        body: None,
        response: "Run",
        errors: &["not_found"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/findings",
        summary: "List findings raised by controls",
        body: None,
        response: "FindingPage",
        errors: LIST_ERRORS,
    },
    Endpoint {
        method: "get",
        path: "/api/v1/findings/{id}",
        summary: "Read one finding",
        body: None,
        response: "Finding",
        errors: &["not_found"],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/controls/run",
        summary: "Run every control now",
        body: None,
        response: "ControlsReport",
        errors: &["forbidden"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/dead-letters",
        summary: "List jobs that failed every attempt",
        body: None,
        response: "JobPage",
        errors: LIST_ERRORS,
    },
    Endpoint {
        method: "get",
        path: "/api/v1/dead-letters/{id}",
        summary: "Read one dead letter",
        body: None,
        response: "Job",
        errors: &["not_found"],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/dead-letters/{id}/replay",
        summary: "Queue a dead job again with fresh attempts",
        body: None,
        response: "Replayed",
        errors: &["conflict", "forbidden"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/queue",
        summary: "Count pending, running and dead jobs",
        body: None,
        response: "QueueStats",
        errors: &[],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/tokens",
        summary: "List API tokens",
        body: None,
        response: "TokenPage",
        errors: &["forbidden"],
    },
    Endpoint {
        method: "post",
        path: "/api/v1/tokens",
        summary: "Create an API token; the secret is shown once",
        body: Some("TokenRequest"),
        response: "TokenCreated",
        errors: &["validation_failed", "forbidden", "conflict"],
    },
    Endpoint {
        method: "delete",
        path: "/api/v1/tokens/{id}",
        summary: "Revoke an API token",
        body: None,
        response: "Empty",
        errors: &["not_found", "forbidden", "conflict"],
    },
    Endpoint {
        method: "get",
        path: "/api/v1/schemas/{collection}",
        summary: "Describe the fields and states of a record kind",
        body: None,
        response: "KindDescription",
        errors: &["not_found"],
    },
];

fn field_schema(ty: FieldType) -> Value {
    match ty {
        FieldType::Text => {
            json!({"type": "string", "maxLength": steward_domain::value::MAX_TEXT_CHARS})
        }
        FieldType::Integer => json!({"type": "integer"}),
        FieldType::Decimal => json!({"type": "string", "format": "decimal", "examples": ["7.5"]}),
        FieldType::Money { currency_field } => json!({
            "type": "string", "format": "decimal",
            "description": format!("amount at the minor unit of `{currency_field}`"),
            "examples": ["1250.00"],
        }),
        FieldType::Currency => {
            json!({"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["EUR"]})
        }
        FieldType::Country => {
            json!({"type": "string", "pattern": "^[A-Z]{2}$", "examples": ["BE"]})
        }
        FieldType::Timezone => json!({"type": "string", "examples": ["Europe/Brussels"]}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Ref(kind) => {
            json!({"type": "string", "description": format!("id of {} {kind}", steward_domain::schema::article(kind.name()))})
        }
        FieldType::RefList(kind) => {
            json!({"type": "array", "items": {"type": "string"}, "description": format!("ids of {kind} records")})
        }
        FieldType::Enum(values) => json!({"type": "string", "enum": values}),
        FieldType::TextList => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Json => json!({}),
    }
}

fn kind_schema(schema: &KindSchema) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "string", "readOnly": true}));
    properties.insert(
        "kind".into(),
        json!({"type": "string", "const": schema.kind.name(), "readOnly": true}),
    );
    properties.insert(
        "state".into(),
        json!({"type": "string", "enum": schema.states}),
    );
    properties.insert(
        "version".into(),
        json!({"type": "integer", "readOnly": true}),
    );
    properties.insert(
        "created_at".into(),
        json!({"type": "string", "format": "date-time", "readOnly": true}),
    );
    properties.insert(
        "updated_at".into(),
        json!({"type": "string", "format": "date-time", "readOnly": true}),
    );
    properties.insert(
        "attributes".into(),
        json!({"type": "object", "description": "firm-specific values that rules can read"}),
    );
    for field in schema.fields {
        let mut value = field_schema(field.ty);
        if let Value::Object(map) = &mut value {
            let doc = match map.get("description").and_then(Value::as_str) {
                Some(extra) => format!("{}; {extra}", field.doc),
                None => field.doc.to_string(),
            };
            map.insert("description".into(), Value::String(doc));
        }
        properties.insert(field.name.into(), value);
    }
    let required: Vec<&str> = schema
        .fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({"type": "object", "description": schema.doc, "properties": properties, "required": required})
}

/// A description of a kind's fields, states and transitions, for `/api/v1/schemas/<kind>`.
pub fn kind_description(kind: Kind) -> Value {
    let schema = kind.schema();
    json!({
        "kind": kind.name(),
        "collection": kind.plural(),
        "label": schema.label,
        "doc": schema.doc,
        "states": schema.states,
        "initial_states": schema.initial,
        "transitions": schema.transitions.iter().map(|t| json!({"from": t.from, "to": t.to})).collect::<Vec<_>>(),
        "fields": schema.fields.iter().map(|f| json!({
            "name": f.name, "type": f.ty.describe(), "required": f.required, "doc": f.doc,
        })).collect::<Vec<_>>(),
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn page_of(item: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": reference(item)},
            "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` to read the next page"},
        },
        "required": ["items", "next_cursor"],
    })
}

fn responses(status: &str, schema: &str, errors: &[&str]) -> Value {
    let mut map = Map::new();
    if schema == "Empty" {
        map.insert(status.into(), json!({"description": "done"}));
    } else {
        map.insert(status.into(), json!({"description": "success", "content": {"application/json": {"schema": reference(schema)}}}));
    }
    for code in errors.iter().chain(["unauthorized", "internal"].iter()) {
        if let Some((name, http, meaning)) = CODES.iter().find(|(name, _, _)| name == code) {
            map.insert(
                http.to_string(),
                json!({
                    "description": format!("`{name}`: {meaning}"),
                    "content": {"application/json": {"schema": reference("Error")}},
                }),
            );
        }
    }
    Value::Object(map)
}

fn parameter(name: &str, location: &str, description: &str) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "schema": {"type": "string"}, "description": description})
}

fn paging_parameters() -> Vec<Value> {
    vec![
        parameter("cursor", "query", "the `next_cursor` of the previous page"),
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": steward_store::MAX_PAGE, "default": crate::paging::DEFAULT_LIMIT}}),
    ]
}

fn operation(summary: &str, parameters: Vec<Value>, body: Option<&str>, responses: Value) -> Value {
    let mut op = json!({"summary": summary, "parameters": parameters, "responses": responses, "security": [{"bearer": []}]});
    if let Some(body) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": reference(body)}}});
    }
    op
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| parameter(name, "path", name))
        .collect()
}

/// Builds the whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();

    for kind in Kind::ALL {
        let schema = kind.schema();
        let name = schema_name(*kind);
        schemas.insert(name.clone(), kind_schema(schema));
        schemas.insert(format!("{name}Page"), page_of(&name));
        let collection = format!("/api/v1/{}", kind.plural());
        let mut list_parameters = paging_parameters();
        list_parameters.push(json!({"name": "state", "in": "query", "schema": {"type": "string", "enum": schema.states}}));
        for field in schema.fields.iter().filter(|f| {
            !matches!(
                f.ty,
                FieldType::Json | FieldType::RefList(_) | FieldType::TextList
            )
        }) {
            list_parameters.push(parameter(
                field.name,
                "query",
                "equals this value; `null` matches an unset field",
            ));
        }
        paths.insert(collection.clone(), json!({
            "get": operation(&format!("List {} records in id order", schema.label), list_parameters, None, responses("200", &format!("{name}Page"), LIST_ERRORS)),
            "post": operation(&format!("Create a {}", schema.label), vec![], Some(&name), responses("201", &name, &["invalid_request", "validation_failed", "conflict", "forbidden"])),
        }));
        let item = format!("{collection}/{{id}}");
        paths.insert(item.clone(), json!({
            "get": operation(&format!("Read a {}", schema.label), path_parameters(&item), None, responses("200", &name, &["not_found"])),
            "patch": operation(&format!("Change fields or the state of a {}; `version` guards against lost updates", schema.label), path_parameters(&item), Some(&name), responses("200", &name, &["not_found", "validation_failed", "conflict", "forbidden"])),
        }));
        let transition = format!("{item}/transition");
        paths.insert(transition.clone(), json!({
            "post": operation(&format!("Move a {} to another state", schema.label), path_parameters(&transition), Some("TransitionRequest"), responses("200", &name, &["not_found", "validation_failed", "conflict", "forbidden"])),
        }));
        let events = format!("{item}/events");
        let mut event_parameters = path_parameters(&events);
        event_parameters.extend(paging_parameters());
        paths.insert(events, json!({
            "get": operation(&format!("The history of a {}", schema.label), event_parameters, None, responses("200", "EventPage", LIST_ERRORS)),
        }));
        let runs = format!("{item}/runs");
        let mut run_parameters = path_parameters(&runs);
        run_parameters.extend(paging_parameters());
        paths.insert(runs, json!({
            "get": operation(&format!("Rule runs about a {}: why each automation did or did not act", schema.label), run_parameters, None, responses("200", "RunPage", LIST_ERRORS)),
        }));
    }

    for endpoint in ENDPOINTS {
        let mut parameters = path_parameters(endpoint.path);
        if endpoint.method == "get" && endpoint.response.ends_with("Page") {
            parameters.extend(paging_parameters());
        }
        let status = match (endpoint.method, endpoint.response) {
            (_, "Empty") => "204",
            ("post", "RuleCheck" | "ControlsReport" | "SimulationReport") => "200",
            ("post", "Replayed") => "202",
            ("post", _) => "201",
            _ => "200",
        };
        let op = operation(
            endpoint.summary,
            parameters,
            endpoint.body,
            responses(status, endpoint.response, endpoint.errors),
        );
        let entry = paths
            .entry(endpoint.path.to_string())
            .or_insert_with(|| json!({}));
        entry[endpoint.method] = op;
    }

    paths.extend(crate::webhooks::openapi_paths());
    paths.extend(crate::approvals::openapi_paths());
    paths.extend(crate::billing::openapi_paths());
    paths.extend(crate::staffing::openapi_paths());
    paths.insert("/healthz".into(), json!({"get": {"summary": "Liveness: the process serves requests", "responses": {"200": {"description": "alive"}}}}));
    paths.insert("/readyz".into(), json!({"get": {"summary": "Readiness: the database answers", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}}));
    paths.insert("/metrics".into(), json!({"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}}));

    for (name, schema) in fixed_schemas() {
        schemas.insert(name.to_string(), schema);
    }
    for item in ["Event", "Run", "Finding", "Job", "RuleVersion", "Token"] {
        schemas.insert(format!("{item}Page"), page_of(item));
    }
    schemas.insert("RulePage".into(), page_of("RuleVersion"));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Steward API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Records, events, automation rules, their runs, findings and dead letters of a professional-services firm. Every list pages with `cursor` and `limit` and returns `{\"items\": [...], \"next_cursor\": ...}`. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}

fn schema_name(kind: Kind) -> String {
    kind.name()
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn fixed_schemas() -> Vec<(&'static str, Value)> {
    let codes: Vec<&str> = CODES.iter().map(|(name, _, _)| *name).collect();
    vec![
        (
            "Error",
            json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "value": {}, "message": {"type": "string"}}}},
        }, "required": ["code", "message"]}}, "required": ["error"]}),
        ),
        (
            "Event",
            json!({"type": "object", "description": "One change or business occurrence", "properties": {
            "seq": {"type": "integer"}, "id": {"type": "string"}, "kind": {"type": "string", "enum": ["created", "updated", "business"]},
            "name": {"type": "string"}, "record": {"type": ["object", "null"]}, "record_version": {"type": ["integer", "null"]},
            "changes": {"type": "object", "additionalProperties": {"type": "object", "properties": {"old": {}, "new": {}}}},
            "data": {}, "actor": {"type": "object"}, "cause": {"type": ["string", "null"]}, "correlation": {"type": "string"},
            "depth": {"type": "integer"}, "occurred_at": {"type": "string", "format": "date-time"}}}),
        ),
        (
            "EmitRequest",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "record_kind": {"type": "string"}, "record_id": {"type": "string"}, "data": {}}, "required": ["name"]}),
        ),
        (
            "TransitionRequest",
            json!({"type": "object", "properties": {"state": {"type": "string"}, "version": {"type": "integer"}}, "required": ["state"]}),
        ),
        (
            "Rule",
            json!({"type": "object", "description": "A rule as in a rule file: id, trigger, condition, actions"}),
        ),
        (
            "RuleChange",
            json!({"type": "object", "properties": {"rule_id": {"type": "string"}, "version": {"type": "integer"}, "change": {"type": "string", "enum": ["added", "changed", "unchanged", "retired"]}}}),
        ),
        (
            "SimulationReport",
            json!({"type": "object", "description": "Per rule: events matched, runs that would happen, actions by type, records acted on, samples, and the comparison with the installed version"}),
        ),
        (
            "RuleChanges",
            json!({"type": "array", "items": reference("RuleChange")}),
        ),
        (
            "RuleCheck",
            json!({"type": "object", "properties": {"valid": {"type": "boolean"}, "diagnostics": {"type": "array", "items": {"type": "object"}}}}),
        ),
        (
            "RuleVersion",
            json!({"type": "object", "properties": {"rule_id": {"type": "string"}, "version": {"type": "integer"}, "hash": {"type": "string"}, "definition": {"type": "object"}, "origin": {"type": "string"}, "enabled": {"type": "boolean"}, "created_at": {"type": "string"}, "retired_at": {"type": ["string", "null"]}}}),
        ),
        (
            "Run",
            json!({"type": "object", "description": "Why a rule did or did not act on an event", "properties": {
            "id": {"type": "string"}, "rule_id": {"type": "string"}, "rule_version": {"type": "integer"}, "event_id": {"type": "string"},
            "status": {"type": "string", "enum": ["skipped", "evaluation_error", "queued", "succeeded", "retrying", "dead", "depth_limited"]},
            "trigger": {"type": "string"}, "condition": {"type": ["string", "null"]}, "inputs": {"type": "object"}, "result": {},
            "actions": {"type": "array"}, "error": {"type": ["string", "null"]}}}),
        ),
        (
            "Finding",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "key": {"type": "string"}, "control": {"type": "string"}, "severity": {"type": "string", "enum": ["info", "warning", "error"]}, "record": {"type": ["object", "null"]}, "message": {"type": "string"}, "evidence": {}, "state": {"type": "string", "enum": ["open", "resolved"]}, "first_seen": {"type": "string"}, "last_seen": {"type": "string"}, "resolved_at": {"type": ["string", "null"]}}}),
        ),
        (
            "ControlsReport",
            json!({"type": "object", "properties": {"open": {"type": "object"}, "opened": {"type": "integer"}, "resolved": {"type": "integer"}}}),
        ),
        (
            "Job",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "key": {"type": "string"}, "kind": {"type": "string"}, "run_id": {"type": ["string", "null"]}, "payload": {}, "state": {"type": "string"}, "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"}, "run_at": {"type": "string"}, "last_error": {"type": ["string", "null"]}, "replays": {"type": "integer"}}}),
        ),
        (
            "Replayed",
            json!({"type": "object", "properties": {"job": {"type": "string"}, "state": {"type": "string"}}}),
        ),
        (
            "QueueStats",
            json!({"type": "object", "properties": {"pending": {"type": "integer"}, "running": {"type": "integer"}, "dead": {"type": "integer"}, "oldest_due_seconds": {"type": ["number", "null"]}}}),
        ),
        (
            "Token",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string", "enum": crate::auth::ROLES}, "employee": {"type": ["string", "null"]}, "created_at": {"type": "string"}, "last_used_at": {"type": ["string", "null"]}, "revoked_at": {"type": ["string", "null"]}}}),
        ),
        (
            "TokenRequest",
            json!({"type": "object", "properties": {"name": {"type": "string"}, "role": {"type": "string", "enum": crate::auth::ROLES}, "employee": {"type": "string"}}, "required": ["name", "role"]}),
        ),
        (
            "TokenCreated",
            json!({"allOf": [reference("Token"), {"type": "object", "properties": {"secret": {"type": "string"}}}]}),
        ),
        ("KindDescription", json!({"type": "object"})),
    ]
}
