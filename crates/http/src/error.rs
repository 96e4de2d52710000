//! The API's errors: a stable code, an HTTP status and a plain message, as JSON.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use steward_domain::{DomainError, FieldError};
use steward_engine::EngineError;
use steward_store::StoreError;

/// Every error code the API returns, with its status and meaning. The OpenAPI document lists
/// the same table.
pub const CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_request",
        400,
        "The request is malformed: bad JSON, a bad parameter or a bad cursor.",
    ),
    ("unauthorized", 401, "No valid bearer token was sent."),
    ("forbidden", 403, "The token's role may not do this."),
    ("not_found", 404, "No such resource."),
    (
        "method_not_allowed",
        405,
        "The path does not take this method; the `Allow` header lists those it takes.",
    ),
    (
        "conflict",
        409,
        "The resource changed or exists already, or the state does not allow this.",
    ),
    (
        "payload_too_large",
        413,
        "The body is larger than the API accepts.",
    ),
    (
        "validation_failed",
        422,
        "One or more values are invalid; `details` lists each.",
    ),
    (
        "internal",
        500,
        "The server failed; the log has the details.",
    ),
    (
        "unavailable",
        503,
        "The server cannot serve the request now; retry later.",
    ),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a ApiError,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn validation(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        let details = details.into_iter().map(shorten_value).collect();
        let message = shorten(message.into());
        ApiError {
            details,
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; see its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: &self })).into_response();
        // The logging middleware reads this to log server errors once, with their cause.
        response.extensions_mut().insert(self);
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::Validation { errors, .. } => ApiError::validation(message, errors),
            DomainError::NotFound { .. } => ApiError::not_found(message),
            DomainError::TransitionNotAllowed { .. }
            | DomainError::VersionConflict { .. }
            | DomainError::AlreadyExists { .. }
            | DomainError::Locked { .. } => ApiError::conflict(message),
            DomainError::UnknownState { .. } | DomainError::InitialStateNotAllowed { .. } => {
                ApiError::validation(message, Vec::new())
            }
            DomainError::Invalid(_) => ApiError::validation(message, Vec::new()),
            DomainError::Conflict(_) => ApiError::conflict(message),
            DomainError::Forbidden(_) => ApiError::forbidden(message),
            DomainError::ApprovalRequired { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "approval_required", message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { .. } | StoreError::Duplicate { .. } => {
                ApiError::conflict(error.to_string())
            }
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            ),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Domain(e) => e.into(),
            EngineError::Store(e) => e.into(),
            EngineError::Rule(message) => ApiError::validation(message, Vec::new()),
            EngineError::External { message, .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", message)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::invalid("send the body as JSON with `Content-Type: application/json`")
            }
            JsonRejection::BytesRejection(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
            ),
            JsonRejection::JsonDataError(error) => ApiError::invalid(format!(
                "the body does not have the expected fields: {}",
                without_type_names(error.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                ))
            )),
            other => {
                ApiError::invalid(format!("the body is not valid JSON: {}", other.body_text()))
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid(format!(
            "invalid query parameters: {}",
            rejection.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid(format!("invalid path: {}", rejection.body_text()))
    }
}

/// Longest value echoed back in an error, in characters; a huge rejected value is cut.
const MAX_ECHO: usize = 200;

fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_ECHO * 4 {
        return text;
    }
    let cut: String = text.chars().take(MAX_ECHO * 4).collect();
    format!("{cut}…")
}

fn shorten_value(mut error: FieldError) -> FieldError {
    if let Value::String(text) = &error.value
        && text.chars().count() > MAX_ECHO
    {
        let cut: String = text.chars().take(MAX_ECHO).collect();
        error.value = Value::String(format!("{cut}… ({} characters)", text.chars().count()));
    }
    if error.message.chars().count() > MAX_ECHO * 4 {
        error.message = shorten(error.message);
    }
    error
}

/// An error about one query parameter or header, with the value it had. The message names
/// both, as in `invalid parameter period=11/2026: is not a month`, and so does `details`.
pub fn parameter_error(name: &str, value: &str, message: impl Into<String>) -> ApiError {
    let detail = shorten_value(FieldError::new(
        name,
        &Value::String(value.to_string()),
        message,
    ));
    let value_text = detail.value.as_str().unwrap_or_default();
    let message = if value_text.is_empty() {
        format!("invalid parameter {name}: {}", detail.message)
    } else {
        format!("invalid parameter {name}={value_text}: {}", detail.message)
    };
    let mut error = ApiError::invalid(message);
    error.details = vec![detail];
    error
}

/// Reads a JSON request body into `T`. `example` is a body of the expected form, such as
/// `{"period": "2026-11"}`, which the error shows in place of the Rust type name that serde
/// reports.
pub fn json_body<T: serde::de::DeserializeOwned>(
    payload: Result<Json<Value>, JsonRejection>,
    example: &str,
) -> Result<T, ApiError> {
    let Json(value) = payload?;
    if !value.is_object() {
        return Err(ApiError::invalid(format!(
            "the body must be a JSON object such as {example}, not {}",
            json_type(&value)
        )));
    }
    serde_json::from_value(value).map_err(|error| {
        ApiError::invalid(format!(
            "the body is not valid: {}; send a JSON object such as {example}",
            without_type_names(&error.to_string())
        ))
    })
}

/// Returns the JSON type of `value` with its article, as error messages name it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replaces the Rust type names in a serde message, such as `expected struct DraftBody`,
/// with the JSON a client sends, because the names mean nothing outside this crate.
pub fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = ["struct ", "enum "]
            .iter()
            .filter_map(|word| rest.find(word).map(|at| (at, *word)))
            .min();
        let Some((at, word)) = next else {
            out.push_str(rest);
            return out;
        };
        let name_start = at + word.len();
        let name_len = rest[name_start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len() - name_start);
        let after_word_boundary = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric());
        let starts_upper = rest[name_start..].starts_with(|c: char| c.is_ascii_uppercase());
        if name_len == 0 || !after_word_boundary || !starts_upper {
            out.push_str(&rest[..name_start]);
            rest = &rest[name_start..];
            continue;
        }
        out.push_str(&rest[..at]);
        out.push_str(if word == "struct " {
            "a JSON object"
        } else {
            "one of the values the API documents"
        });
        rest = &rest[name_start + name_len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_become_json_terms() {
        assert_eq!(
            without_type_names("invalid type: sequence, expected struct DraftBody"),
            "invalid type: sequence, expected a JSON object"
        );
        assert_eq!(
            without_type_names("invalid type: integer `5`, expected enum Role at line 1"),
            "invalid type: integer `5`, expected one of the values the API documents at line 1"
        );
        assert_eq!(
            without_type_names("unknown field `structure`, expected `period`"),
            "unknown field `structure`, expected `period`"
        );
        assert_eq!(
            without_type_names("the enum value is a struct of lower case"),
            "the enum value is a struct of lower case"
        );
    }

    #[test]
    fn parameter_error_names_the_value() {
        let error = parameter_error("period", "11/2026", "is not a month");
        assert_eq!(
            error.message,
            "invalid parameter period=11/2026: is not a month"
        );
        let missing = parameter_error("period", "", "is required");
        assert_eq!(missing.message, "invalid parameter period: is required");
    }
}
