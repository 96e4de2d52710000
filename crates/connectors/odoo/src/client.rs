//! A client for Odoo's JSON-RPC external API: `POST <url>/jsonrpc` with
//! `{"jsonrpc": "2.0", "method": "call", "params": {"service", "method", "args"}}`.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Url;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::config::{OdooConfig, Timeouts};
use crate::error::{CallContext, OdooError, excerpt, map_rpc_error};

/// One row of a `search_read` or `read` result.
pub type Row = Map<String, Value>;

/// Characters of an unexpected body quoted in an error.
const BODY_EXCERPT: usize = 200;

/// A logged-in connection to one Odoo database.
pub struct OdooClient {
    http: reqwest::Client,
    endpoint: Url,
    config: OdooConfig,
    timeouts: Timeouts,
    uid: OnceCell<i64>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for OdooClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdooClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("config", &self.config)
            .finish()
    }
}

/// Builds `<base>/jsonrpc` from the configured base address.
fn endpoint(url: &str) -> Result<Url, OdooError> {
    let invalid = |reason: String| OdooError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let mut parsed = Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme is `{}`, not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".into()));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("it has a query or fragment".into()));
    }
    let path = parsed.path().trim_end_matches('/');
    let path = path.strip_suffix("/jsonrpc").unwrap_or(path);
    parsed.set_path(&format!("{path}/jsonrpc"));
    Ok(parsed)
}

impl OdooClient {
    /// Builds a client with the default timeouts. Nothing is sent until the first call.
    pub fn new(config: OdooConfig) -> Result<OdooClient, OdooError> {
        OdooClient::with_timeouts(config, Timeouts::default())
    }

    pub fn with_timeouts(config: OdooConfig, timeouts: Timeouts) -> Result<OdooClient, OdooError> {
        for (setting, value) in [
            ("database name", &config.db),
            ("login", &config.login),
            ("password or API key", &config.password),
        ] {
            if value.trim().is_empty() {
                return Err(OdooError::MissingSetting { setting });
            }
        }
        let endpoint = endpoint(&config.url)?;
        // The workspace builds rustls with the ring provider only; reqwest needs it installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("steward-odoo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OdooError::Transport {
                url: config.url.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(OdooClient {
            http,
            endpoint,
            config,
            timeouts,
            uid: OnceCell::new(),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &OdooConfig {
        &self.config
    }

    /// Returns the address requests go to, `<url>/jsonrpc`.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    fn context(&self, service: &str, method: &str) -> CallContext {
        CallContext {
            url: self.config.url.clone(),
            db: self.config.db.clone(),
            login: self.config.login.clone(),
            service: service.into(),
            method: method.into(),
            model: None,
            model_method: None,
        }
    }

    /// Sends one JSON-RPC call and returns its `result`.
    async fn call(&self, call: &CallContext, args: Vec<Value>) -> Result<Value, OdooError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": call.service, "method": call.method, "args": args},
            "id": id,
        });

        let started = std::time::Instant::now();
        let response = self
            .http
            .post(self.endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(call, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(call, e))?;
        let text = String::from_utf8_lossy(&bytes);

        tracing::debug!(
            call = %call.describe(),
            status = status.as_u16(),
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Odoo responded"
        );
        if status != reqwest::StatusCode::OK {
            return Err(OdooError::HttpStatus {
                url: self.config.url.clone(),
                call: call.describe(),
                status: status.as_u16(),
                body: excerpt(&text, BODY_EXCERPT),
            });
        }

        let not_rpc = |reason: String| OdooError::NotJsonRpc {
            url: self.config.url.clone(),
            call: call.describe(),
            reason,
            body: excerpt(&text, BODY_EXCERPT),
        };
        let reply: Value =
            serde_json::from_slice(&bytes).map_err(|e| not_rpc(format!("it is not JSON ({e})")))?;
        let Some(reply) = reply.as_object() else {
            return Err(not_rpc("it is not a JSON object".into()));
        };
        match reply.get("id") {
            Some(Value::Number(n)) if n.as_u64() == Some(id) => {}
            Some(Value::Null) | None if reply.contains_key("error") => {}
            other => {
                return Err(not_rpc(format!(
                    "its id is {}, not the request's id {id}",
                    other.map_or("missing".to_string(), Value::to_string)
                )));
            }
        }

        if let Some(error) = reply.get("error") {
            let mapped = map_rpc_error(error, call);
            tracing::warn!(call = %call.describe(), error = %mapped, "Odoo returned an error");
            return Err(mapped);
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| not_rpc("it has neither `result` nor `error`".into()))
    }

    fn transport_error(&self, call: &CallContext, error: reqwest::Error) -> OdooError {
        if error.is_timeout() {
            return OdooError::Timeout {
                url: self.config.url.clone(),
                call: call.describe(),
                seconds: self.timeouts.request.as_secs(),
            };
        }
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        OdooError::Transport {
            url: self.config.url.clone(),
            reason,
        }
    }

    /// Returns `common.version`: `server_version`, `server_version_info` and more.
    pub async fn version(&self) -> Result<Value, OdooError> {
        self.call(&self.context("common", "version"), Vec::new())
            .await
    }

    /// Logs in once and returns the user id; later calls reuse it.
    pub async fn authenticate(&self) -> Result<i64, OdooError> {
        self.uid
            .get_or_try_init(|| async {
                let call = self.context("common", "authenticate");
                let args = vec![
                    json!(self.config.db),
                    json!(self.config.login),
                    json!(self.config.password),
                    json!({}),
                ];
                match self.call(&call, args).await? {
                    Value::Number(n) if n.as_i64().is_some() => {
                        let uid = n.as_i64().unwrap_or_default();
                        tracing::info!(url = %self.config.url, db = %self.config.db,
                            login = %self.config.login, uid, "logged in to Odoo");
                        Ok(uid)
                    }
                    Value::Bool(false) => Err(OdooError::AccessDenied {
                        url: self.config.url.clone(),
                        db: self.config.db.clone(),
                        login: self.config.login.clone(),
                    }),
                    other => Err(OdooError::UnexpectedResult {
                        call: call.describe(),
                        expected: "a user id or false".into(),
                        got: excerpt(&other.to_string(), BODY_EXCERPT),
                    }),
                }
            })
            .await
            .copied()
    }

    /// Calls `model.method(*args, **kwargs)` through `object.execute_kw`.
    pub async fn execute_kw(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, OdooError> {
        let uid = self.authenticate().await?;
        let mut call = self.context("object", "execute_kw");
        call.model = Some(model.to_string());
        call.model_method = Some(method.to_string());
        let params = vec![
            json!(self.config.db),
            json!(uid),
            json!(self.config.password),
            json!(model),
            json!(method),
            Value::Array(args),
            Value::Object(kwargs),
        ];
        self.call(&call, params).await
    }

    fn shape_error(model: &str, method: &str, expected: &str, got: &Value) -> OdooError {
        OdooError::UnexpectedResult {
            call: format!("{model}.{method}"),
            expected: expected.into(),
            got: excerpt(&got.to_string(), BODY_EXCERPT),
        }
    }

    /// Checks that a `read` or `search_read` result is a list of rows, each with an integer id
    /// and every requested field.
    fn rows(
        model: &str,
        method: &str,
        fields: &[&str],
        result: Value,
    ) -> Result<Vec<Row>, OdooError> {
        let Value::Array(items) = result else {
            return Err(Self::shape_error(
                model,
                method,
                "a list of records",
                &result,
            ));
        };
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            let Value::Object(row) = item else {
                return Err(Self::shape_error(model, method, "a record object", &item));
            };
            if !row.get("id").is_some_and(Value::is_i64) {
                return Err(Self::shape_error(
                    model,
                    method,
                    "a record with an integer `id`",
                    &Value::Object(row),
                ));
            }
            if let Some(missing) = fields.iter().find(|f| !row.contains_key(**f)) {
                return Err(Self::shape_error(
                    model,
                    method,
                    &format!("a record with the field `{missing}`"),
                    &Value::Object(row),
                ));
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// Runs `search_read` with an explicit field list.
    pub async fn search_read(
        &self,
        model: &str,
        domain: &[Value],
        fields: &[&str],
        order: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Row>, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("fields".into(), json!(fields));
        if let Some(order) = order {
            kwargs.insert("order".into(), json!(order));
        }
        if let Some(limit) = limit {
            kwargs.insert("limit".into(), json!(limit));
        }
        let result = self
            .execute_kw(model, "search_read", vec![json!(domain)], kwargs)
            .await?;
        Self::rows(model, "search_read", fields, result)
    }

    /// Reads records by id with an explicit field list.
    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
    ) -> Result<Vec<Row>, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("fields".into(), json!(fields));
        let result = self
            .execute_kw(model, "read", vec![json!(ids)], kwargs)
            .await?;
        Self::rows(model, "read", fields, result)
    }

    /// Counts the records a domain matches.
    pub async fn search_count(&self, model: &str, domain: &[Value]) -> Result<u64, OdooError> {
        let result = self
            .execute_kw(model, "search_count", vec![json!(domain)], Map::new())
            .await?;
        result
            .as_u64()
            .ok_or_else(|| Self::shape_error(model, "search_count", "a count", &result))
    }

    /// Describes the given fields; Odoo leaves out names that do not exist.
    pub async fn fields_get(
        &self,
        model: &str,
        fields: &[&str],
    ) -> Result<Map<String, Value>, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("allfields".into(), json!(fields));
        let result = self
            .execute_kw(model, "fields_get", Vec::new(), kwargs)
            .await?;
        match result {
            Value::Object(map) => Ok(map),
            other => Err(Self::shape_error(
                model,
                "fields_get",
                "an object of fields",
                &other,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_jsonrpc_once() {
        assert_eq!(
            endpoint("http://127.0.0.1:8069").unwrap().as_str(),
            "http://127.0.0.1:8069/jsonrpc"
        );
        assert_eq!(
            endpoint("https://odoo.example.com/odoo/").unwrap().as_str(),
            "https://odoo.example.com/odoo/jsonrpc"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8069/jsonrpc").unwrap().as_str(),
            "http://127.0.0.1:8069/jsonrpc"
        );
    }

    #[test]
    fn endpoint_rejects_other_schemes() {
        let error = endpoint("ftp://127.0.0.1").unwrap_err();
        assert!(error.to_string().contains("`ftp`"), "{error}");
        assert!(matches!(
            endpoint("127.0.0.1:8069"),
            Err(OdooError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn empty_settings_are_rejected() {
        let config = OdooConfig {
            url: "http://127.0.0.1:8069".into(),
            db: "steward_demo".into(),
            login: "admin".into(),
            password: " ".into(),
        };
        let error = OdooClient::new(config).unwrap_err();
        assert_eq!(
            error,
            OdooError::MissingSetting {
                setting: "password or API key"
            }
        );
    }
}
