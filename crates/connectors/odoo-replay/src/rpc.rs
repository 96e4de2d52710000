//! Odoo's JSON-RPC services over the captured data: `common`, `db` and `object.execute_kw`.

use serde_json::{Map, Value, json};

use crate::dataset::{Dataset, Model};
use crate::domain::{DomainError, Filter, parse_order, sort_rows};
use crate::pyrepr::{repr, repr_str, repr_tuple};

/// The server's reply to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A JSON-RPC `result`.
    Result(Value),
    /// A JSON-RPC `error` object, in Odoo's shape.
    Error(Value),
    /// A raw HTTP response that is not JSON-RPC, for testing how clients handle broken servers.
    Http { status: u16, body: String },
}

/// Methods every Odoo model has that the replay server does not run, because it only reads.
const WRITE_METHODS: &[&str] = &[
    "create",
    "write",
    "unlink",
    "copy",
    "name_create",
    "action_archive",
    "action_unarchive",
    "toggle_active",
    "load",
];

/// Read methods that exist on every model but that the replay server does not implement.
const UNIMPLEMENTED_READS: &[&str] = &[
    "name_search",
    "read_group",
    "web_search_read",
    "web_read",
    "default_get",
    "onchange",
    "export_data",
    "check_access_rights",
    "exists",
];

/// Sets the message of an error template, keeping Odoo's shape around it.
pub(crate) fn error_with(template: &Value, message: String) -> Value {
    let mut error = template.clone();
    if let Some(data) = error.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("message".into(), Value::String(message.clone()));
        data.insert("arguments".into(), json!([message]));
    }
    error
}

/// Builds an error of another Python exception type, in the same shape.
pub(crate) fn error_named(template: &Value, name: &str, message: String) -> Value {
    let mut error = error_with(template, message);
    if let Some(data) = error.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("name".into(), Value::String(name.into()));
    }
    error
}

impl Dataset {
    fn generic_error(&self, name: &str, message: String) -> Reply {
        Reply::Error(error_named(&self.errors.unknown_model, name, message))
    }

    fn unknown_db(&self, db: &str) -> Reply {
        let template = &self.errors.unknown_db;
        let captured = template
            .pointer("/data/message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = captured.replace(
            &format!("\"{}\"", self.errors.unknown_db_name),
            &format!("\"{db}\""),
        );
        Reply::Error(error_with(template, message))
    }

    fn type_error(&self, message: String) -> Reply {
        self.generic_error("builtins.TypeError", message)
    }

    /// Dispatches one JSON-RPC `call` with `params` `{service, method, args}`.
    pub fn dispatch(&self, params: &Value) -> Reply {
        let service = params.get("service").and_then(Value::as_str);
        let method = params.get("method").and_then(Value::as_str);
        let (Some(service), Some(method)) = (service, method) else {
            return self.type_error(
                "jsonrpc() missing required positional arguments: 'service' and 'method'".into(),
            );
        };
        let args = match params.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(args)) => args.clone(),
            Some(other) => {
                return self.type_error(format!("args must be a list, got {}", repr(other)));
            }
        };
        match service {
            "common" => self.common(method, &args),
            "db" => self.db(method),
            "object" => self.object(method, &args),
            other => self.generic_error("builtins.KeyError", repr_str(other)),
        }
    }

    fn common(&self, method: &str, args: &[Value]) -> Reply {
        match method {
            "version" => Reply::Result(self.version.clone()),
            "authenticate" | "login" => {
                let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
                if args.len() < 3 {
                    return self.type_error(format!(
                        "exp_{method}() missing required positional arguments: 'db', 'login' \
                         and 'password'"
                    ));
                }
                if text(0) != self.login.db {
                    return self.unknown_db(text(0));
                }
                if text(1) == self.login.login && text(2) == self.login.password {
                    Reply::Result(json!(self.login.uid))
                } else {
                    Reply::Result(Value::Bool(false))
                }
            }
            other => self.generic_error("builtins.KeyError", repr_str(&format!("exp_{other}"))),
        }
    }

    fn db(&self, method: &str) -> Reply {
        match method {
            "list" => Reply::Result(json!([self.login.db])),
            "server_version" => Reply::Result(
                self.version
                    .get("server_version")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            other => self.generic_error("builtins.KeyError", repr_str(&format!("exp_{other}"))),
        }
    }

    /// Checks the database and the credentials of an `object` call.
    pub fn check_login(&self, args: &[Value]) -> Result<(), Reply> {
        if args.len() < 3 {
            return Err(self
                .type_error("dispatch() needs the database, the user id and the password".into()));
        }
        let db = args[0].as_str().unwrap_or_default();
        if db != self.login.db {
            return Err(self.unknown_db(db));
        }
        let uid = match &args[1] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if uid != Some(self.login.uid) || args[2].as_str() != Some(self.login.password.as_str()) {
            return Err(Reply::Error(self.errors.access_denied.clone()));
        }
        Ok(())
    }

    fn object(&self, method: &str, args: &[Value]) -> Reply {
        if let Err(reply) = self.check_login(args) {
            return reply;
        }
        let rest = &args[3..];
        let (model, model_method, positional, keywords) = match method {
            "execute_kw" => {
                if rest.len() < 3 {
                    return self.type_error(
                        "execute_kw() missing required positional arguments: 'obj', 'method' \
                         and 'args'"
                            .into(),
                    );
                }
                let positional = match &rest[2] {
                    Value::Array(items) => items.clone(),
                    other => {
                        return self.type_error(format!(
                            "execute_kw() args must be a list, got {}",
                            repr(other)
                        ));
                    }
                };
                let keywords = match rest.get(3) {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(other) => {
                        return self.type_error(format!(
                            "execute_kw() keyword arguments must be a dict, got {}",
                            repr(other)
                        ));
                    }
                };
                (&rest[0], &rest[1], positional, keywords)
            }
            "execute" => {
                if rest.len() < 2 {
                    return self.type_error(
                        "execute() missing required positional arguments: 'obj' and 'method'"
                            .into(),
                    );
                }
                (&rest[0], &rest[1], rest[2..].to_vec(), Map::new())
            }
            other => {
                return self.generic_error(
                    "builtins.NameError",
                    format!("Method not available {other}"),
                );
            }
        };
        let model_name = model.as_str().unwrap_or_default();
        let method_name = model_method.as_str().unwrap_or_default();
        let Some(data) = self.models.get(model_name) else {
            return Reply::Error(error_with(
                &self.errors.unknown_model,
                format!("Object {model_name} doesn't exist"),
            ));
        };
        let call = Call {
            dataset: self,
            model_name,
            model: data,
            positional: &positional,
            keywords: &keywords,
        };
        call.run(method_name)
    }
}

/// One `execute_kw` on a known model.
struct Call<'a> {
    dataset: &'a Dataset,
    model_name: &'a str,
    model: &'a Model,
    positional: &'a [Value],
    keywords: &'a Map<String, Value>,
}

impl Call<'_> {
    fn run(&self, method: &str) -> Reply {
        if method.starts_with('_') {
            return Reply::Error(error_named(
                &self.dataset.errors.access_error,
                "odoo.exceptions.AccessError",
                format!("Private methods (such as {method}) cannot be called remotely."),
            ));
        }
        let result = match method {
            "search_read" => self.search_read(),
            "search_count" => self.search_count(),
            "search" => self.search(),
            "read" => self.read(),
            "fields_get" => self.fields_get(),
            m if WRITE_METHODS.contains(&m) || UNIMPLEMENTED_READS.contains(&m) => {
                Err(self.dataset.generic_error(
                    "odoo.exceptions.UserError",
                    format!(
                        "The replay server does not run {} on {}; it supports search_read, \
                         search_count, search, read and fields_get from captured records",
                        repr_str(m),
                        repr_str(self.model_name)
                    ),
                ))
            }
            m => Err(Reply::Error(error_with(
                &self.dataset.errors.unknown_method,
                format!(
                    "The method {} does not exist on the model {}",
                    repr_str(m),
                    repr_str(self.model_name)
                ),
            ))),
        };
        match result {
            Ok(value) => Reply::Result(value),
            Err(reply) => reply,
        }
    }

    /// Returns the argument at `index`, or else the keyword argument `name`.
    fn argument(&self, index: usize, name: &str) -> Option<&Value> {
        self.positional
            .get(index)
            .or_else(|| self.keywords.get(name))
            .filter(|v| !v.is_null())
    }

    fn unknown_field(&self, field: &str) -> Reply {
        Reply::Error(error_with(
            &self.dataset.errors.unknown_field,
            format!(
                "Invalid field {} on model {}",
                repr_str(field),
                repr_str(self.model_name)
            ),
        ))
    }

    fn value_error(&self, message: String) -> Reply {
        Reply::Error(error_with(&self.dataset.errors.unknown_field, message))
    }

    fn domain_error(&self, error: DomainError) -> Reply {
        match error {
            DomainError::UnknownField { field, leaf } => Reply::Error(error_with(
                &self.dataset.errors.unknown_field_in_domain,
                format!(
                    "Invalid field {}.{field} in leaf {}",
                    self.model_name,
                    repr_tuple(&leaf)
                ),
            )),
            DomainError::Invalid(message) => self.value_error(format!("Invalid domain: {message}")),
            DomainError::Unsupported(message) => self
                .dataset
                .generic_error("builtins.NotImplementedError", message),
        }
    }

    /// Checks the requested field names; `None` means every field.
    fn fields(&self, index: usize) -> Result<Option<Vec<String>>, Reply> {
        let Some(value) = self.argument(index, "fields") else {
            return Ok(None);
        };
        let Some(items) = value.as_array() else {
            return Err(self.value_error(format!(
                "fields must be a list of field names, got {}",
                repr(value)
            )));
        };
        let mut names = Vec::new();
        for item in items {
            let Some(name) = item.as_str() else {
                return Err(self.value_error(format!(
                    "fields must be a list of field names, got {}",
                    repr(item)
                )));
            };
            if !self.model.has_field(name) {
                return Err(self.unknown_field(name));
            }
            names.push(name.to_string());
        }
        Ok(if names.is_empty() { None } else { Some(names) })
    }

    fn domain(&self) -> Result<Vec<Value>, Reply> {
        match self.argument(0, "domain") {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(other) => {
                Err(self.value_error(format!("Invalid domain: {} is not a list", repr(other))))
            }
        }
    }

    fn count_argument(&self, index: usize, name: &str) -> Result<Option<usize>, Reply> {
        match self.argument(index, name) {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(value) => value.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.dataset.type_error(format!(
                    "{name} must be a non-negative integer, got {}",
                    repr(value)
                ))
            }),
        }
    }

    /// Returns the rows matching the domain, ordered and cut by offset and limit.
    fn matching(
        &self,
        domain: &[Value],
        order_index: usize,
        offset_index: usize,
        limit_index: usize,
    ) -> Result<Vec<&Map<String, Value>>, Reply> {
        let filter = Filter::compile(self.model, domain).map_err(|e| self.domain_error(e))?;
        let mut rows = Vec::new();
        for row in self.model.rows.values() {
            if filter.matches(row).map_err(|e| self.domain_error(e))? {
                rows.push(row);
            }
        }
        if let Some(order) = self.argument(order_index, "order").and_then(Value::as_str) {
            let keys = parse_order(self.model, order).map_err(|f| self.unknown_field(&f))?;
            sort_rows(&mut rows, &keys);
        }
        let offset = self.count_argument(offset_index, "offset")?.unwrap_or(0);
        let limit = self.count_argument(limit_index, "limit")?;
        let rows = rows.into_iter().skip(offset);
        Ok(match limit {
            Some(limit) => rows.take(limit).collect(),
            None => rows.collect(),
        })
    }

    fn project(
        &self,
        row: &Map<String, Value>,
        fields: &Option<Vec<String>>,
    ) -> Result<Value, Reply> {
        let Some(fields) = fields else {
            return Ok(Value::Object(row.clone()));
        };
        let mut out = Map::new();
        out.insert("id".into(), row.get("id").cloned().unwrap_or(Value::Null));
        for name in fields {
            let Some(value) = row.get(name) else {
                return Err(self.dataset.generic_error(
                    "builtins.NotImplementedError",
                    format!(
                        "the captured rows of {} hold no values of `{name}`",
                        self.model_name
                    ),
                ));
            };
            out.insert(name.clone(), value.clone());
        }
        Ok(Value::Object(out))
    }

    fn search_read(&self) -> Result<Value, Reply> {
        let fields = self.fields(1)?;
        let domain = self.domain()?;
        let rows = self.matching(&domain, 4, 2, 3)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.project(row, &fields)?);
        }
        Ok(Value::Array(out))
    }

    fn search_count(&self) -> Result<Value, Reply> {
        let domain = self.domain()?;
        let archived_too = self
            .keywords
            .get("context")
            .and_then(|c| c.get("active_test"))
            == Some(&Value::Bool(false));
        if archived_too
            && domain == self.model.base_domain
            && let Some(count) = &self.model.count_with_archived
        {
            return Ok(count.clone());
        }
        let rows = self.matching(&domain, usize::MAX, usize::MAX, 1)?;
        Ok(json!(rows.len()))
    }

    fn search(&self) -> Result<Value, Reply> {
        let domain = self.domain()?;
        let rows = self.matching(&domain, 3, 1, 2)?;
        Ok(Value::Array(rows.iter().map(|r| r["id"].clone()).collect()))
    }

    fn read(&self) -> Result<Value, Reply> {
        let ids: Vec<Value> = match self.argument(0, "ids") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(single) => vec![single.clone()],
        };
        let fields = self.fields(1)?;
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in &ids {
            match id.as_i64().and_then(|id| self.model.rows.get(&id)) {
                Some(row) => out.push(self.project(row, &fields)?),
                None => missing.push(repr(id)),
            }
        }
        if !missing.is_empty() {
            return Err(self.dataset.generic_error(
                "odoo.exceptions.MissingError",
                format!(
                    "Record does not exist or has been deleted.\n(Record: {}({},), User: {})",
                    self.model_name,
                    missing.join(", "),
                    self.dataset.login.uid
                ),
            ));
        }
        Ok(Value::Array(out))
    }

    fn fields_get(&self) -> Result<Value, Reply> {
        let wanted: Option<Vec<&str>> = self
            .argument(0, "allfields")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect());
        let attributes: Option<Vec<&str>> = self
            .argument(1, "attributes")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect());
        let mut out = Map::new();
        for (name, description) in &self.model.fields {
            if wanted.as_ref().is_some_and(|w| !w.contains(&name.as_str())) {
                continue;
            }
            let description = match (&attributes, description.as_object()) {
                (Some(keep), Some(map)) => Value::Object(
                    map.iter()
                        .filter(|(k, _)| keep.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                _ => description.clone(),
            };
            out.insert(name.clone(), description);
        }
        Ok(Value::Object(out))
    }
}
