//! Typed errors of the Odoo client. Odoo returns JSON-RPC errors with HTTP 200 and an `error`
//! object whose `data.name` is the Python exception. [`map_rpc_error`] turns it into a variant
//! that names the value at fault and the fix.

use serde_json::Value;

/// The call a request made, for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallContext {
    pub url: String,
    pub db: String,
    pub login: String,
    /// `common` or `object`.
    pub service: String,
    /// The service method, such as `authenticate` or `execute_kw`.
    pub method: String,
    /// The model and its method for `execute_kw`, such as `hr.employee` and `search_read`.
    pub model: Option<String>,
    pub model_method: Option<String>,
}

impl CallContext {
    /// Returns a short description such as `hr.employee.search_read` or `common.authenticate`.
    pub fn describe(&self) -> String {
        match (&self.model, &self.model_method) {
            (Some(model), Some(method)) => format!("{model}.{method}"),
            _ => format!("{}.{}", self.service, self.method),
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OdooError {
    #[error(
        "invalid Odoo URL `{url}`: {reason}; give the server's base address, such as \
         https://odoo.example.com"
    )]
    InvalidUrl { url: String, reason: String },

    #[error("the Odoo {setting} is empty; set it in the Odoo connection settings")]
    MissingSetting { setting: &'static str },

    #[error(
        "Odoo at {url} rejected the login `{login}` on database `{db}`: the login or the \
         password or API key is wrong; check both, or create a new API key in Odoo under \
         My Profile > Account Security"
    )]
    AccessDenied {
        url: String,
        db: String,
        login: String,
    },

    #[error(
        "the Odoo user `{login}` lacks an access right for {call}: {message} Ask an Odoo \
         administrator to grant it, or sync with a user that has it"
    )]
    AccessError {
        login: String,
        call: String,
        message: String,
    },

    #[error(
        "the field `{field}` does not exist on the Odoo model `{model}`; install the Odoo module \
         that adds it, or check that the server runs Odoo 17"
    )]
    UnknownField { model: String, field: String },

    #[error(
        "the Odoo model `{model}` does not exist on this database; install the Odoo module that \
         provides it"
    )]
    UnknownModel { model: String },

    #[error(
        "the method `{method}` does not exist on the Odoo model `{model}`; check the method name \
         and the Odoo version"
    )]
    UnknownMethod { model: String, method: String },

    #[error(
        "the database `{db}` does not exist on the Odoo server at {url}; check the database \
         name, which Odoo shows on its database selector"
    )]
    DatabaseNotFound { url: String, db: String },

    #[error("Odoo failed on {call} with {name}: {message} See the Odoo server log for details")]
    Server {
        call: String,
        name: String,
        message: String,
    },

    #[error(
        "the request {call} to Odoo at {url} timed out after {seconds} s; check that the \
         server is up, or raise the request timeout"
    )]
    Timeout {
        url: String,
        call: String,
        seconds: u64,
    },

    #[error("cannot reach Odoo at {url}: {reason}; check the URL and that the server is running")]
    Transport { url: String, reason: String },

    #[error(
        "Odoo at {url} returned HTTP {status} for {call} instead of 200 (body starts with \
         `{body}`); check that the URL is the Odoo server's base address"
    )]
    HttpStatus {
        url: String,
        call: String,
        status: u16,
        body: String,
    },

    #[error(
        "the body Odoo at {url} returned for {call} is not a JSON-RPC response: {reason} (body starts with \
         `{body}`); check that the URL is the Odoo server's base address"
    )]
    NotJsonRpc {
        url: String,
        call: String,
        reason: String,
        body: String,
    },

    #[error(
        "the result of {call} from Odoo has an unexpected shape: expected {expected}, got {got}"
    )]
    UnexpectedResult {
        call: String,
        expected: String,
        got: String,
    },
}

/// Joins Odoo's multi-line messages into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns the first `max` characters of `text`, for quoting a body in a message.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let flat = one_line(text);
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Returns the text between the first pair of single quotes after `prefix`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.split_once(prefix)?.1;
    let rest = rest.strip_prefix('\'')?;
    rest.split_once('\'').map(|(inside, _)| inside)
}

/// Reads the field name from Odoo 17's two `ValueError` messages about unknown fields:
/// `Invalid field 'f' on model 'm'` and `Invalid field m.f in leaf (...)`.
fn unknown_field(message: &str, model: Option<&str>) -> Option<(String, String)> {
    if let Some(field) = quoted_after(message, "Invalid field ") {
        let on_model = quoted_after(message, " on model ")
            .map(str::to_string)
            .or_else(|| model.map(str::to_string))?;
        return Some((on_model, field.to_string()));
    }
    let rest = message.strip_prefix("Invalid field ")?;
    let (path, _) = rest.split_once(" in leaf ")?;
    match model {
        Some(model) if path.starts_with(&format!("{model}.")) => {
            Some((model.to_string(), path[model.len() + 1..].to_string()))
        }
        _ => {
            let (model, field) = path.rsplit_once('.')?;
            Some((model.to_string(), field.to_string()))
        }
    }
}

/// Maps the `error` object of a JSON-RPC response to a typed error.
pub fn map_rpc_error(error: &Value, call: &CallContext) -> OdooError {
    let name = error
        .pointer("/data/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .pointer("/data/message")
        .and_then(Value::as_str)
        .or_else(|| error.get("message").and_then(Value::as_str))
        .unwrap_or("no message")
        .to_string();
    let model = call.model.as_deref();
    let server = || OdooError::Server {
        call: call.describe(),
        name: if name.is_empty() {
            "an unnamed error".into()
        } else {
            name.to_string()
        },
        message: one_line(&message),
    };
    match name {
        "odoo.exceptions.AccessDenied" => OdooError::AccessDenied {
            url: call.url.clone(),
            db: call.db.clone(),
            login: call.login.clone(),
        },
        "odoo.exceptions.AccessError" => OdooError::AccessError {
            login: call.login.clone(),
            call: call.describe(),
            message: one_line(&message),
        },
        "builtins.ValueError" => match unknown_field(&message, model) {
            Some((model, field)) => OdooError::UnknownField { model, field },
            None => server(),
        },
        "odoo.exceptions.UserError" => {
            match message
                .strip_prefix("Object ")
                .and_then(|rest| rest.strip_suffix(" doesn't exist"))
            {
                Some(model) => OdooError::UnknownModel {
                    model: model.to_string(),
                },
                None => server(),
            }
        }
        "builtins.AttributeError" => {
            let method = quoted_after(&message, "The method ")
                .map(str::to_string)
                .or_else(|| call.model_method.clone());
            let on_model = quoted_after(&message, "on the model ")
                .map(str::to_string)
                .or_else(|| call.model.clone());
            match (on_model, method) {
                (Some(model), Some(method)) => OdooError::UnknownMethod { model, method },
                _ => server(),
            }
        }
        "psycopg2.OperationalError" if message.contains("does not exist") => {
            OdooError::DatabaseNotFound {
                url: call.url.clone(),
                db: call.db.clone(),
            }
        }
        _ => server(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_names_are_read_from_both_messages() {
        assert_eq!(
            unknown_field("Invalid field 'x_a' on model 'res.partner'", None),
            Some(("res.partner".into(), "x_a".into()))
        );
        assert_eq!(
            unknown_field(
                "Invalid field sale.order.line.x_b in leaf ('x_b', '=', 1)",
                Some("sale.order.line")
            ),
            Some(("sale.order.line".into(), "x_b".into()))
        );
        assert_eq!(unknown_field("Invalid domain", None), None);
    }

    #[test]
    fn unnamed_errors_keep_the_message() {
        let error = json!({"code": 200, "message": "Odoo Server Error"});
        let mapped = map_rpc_error(&error, &CallContext::default());
        assert!(mapped.to_string().contains("Odoo Server Error"), "{mapped}");
    }

    #[test]
    fn excerpt_cuts_long_bodies() {
        assert_eq!(excerpt("<html>\n  <body>", 100), "<html> <body>");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
