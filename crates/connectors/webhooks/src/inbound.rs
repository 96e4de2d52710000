//! Inbound webhooks: endpoints that other systems post to at `/hooks/<id>`, their
//! verification, idempotency keys, and the mapping of each payload to one command, applied
//! through the command path together with the delivery's receipt.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use steward_domain::{Actor, Command, CommandContext, new_id};
use steward_engine::pipeline::{self, Env};
use steward_engine::{Engine, EngineError, Outcome};
use steward_store::webhooks::{InboundEndpoint, InboundReceipt, InboundRejection};
use steward_store::{RunQuery, RunStatus, StoreError, WriteTx};

use crate::error::WebhookError;
use crate::mapping::{Mapped, Mapping, MappingSpec};
use crate::metric_names;
use crate::secrets::{new_signing_secret, new_url_token};
use crate::signature;
use crate::{Webhooks, validate_id};

/// The check that separates real deliveries from forged ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Standard Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature`.
    Standard,
    /// An HMAC-SHA256 of the body, in hex or base64, in a configured header.
    Hmac,
    /// A secret token in the URL, `/hooks/<id>/<token>`, for senders that sign nothing.
    Token,
}

/// The encoding of the digest in an HMAC signature header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

/// The source of a delivery's idempotency key.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Idempotency {
    /// The SHA-256 of the body.
    #[default]
    Body,
    /// A request header, such as `webhook-id` or `Idempotency-Key`.
    Header(String),
    /// Values of the payload at dotted paths, joined.
    Fields(Vec<String>),
    /// Every delivery is applied, for senders that never retry and may send the same body
    /// for two separate changes (Odoo 17's webhook notifications).
    None,
}

impl Serialize for Idempotency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Idempotency::Body => serializer.serialize_str("body"),
            Idempotency::None => serializer.serialize_str("none"),
            Idempotency::Header(name) => json!({"header": name}).serialize(serializer),
            Idempotency::Fields(fields) => json!({"fields": fields}).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Idempotency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Idempotency::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl Idempotency {
    fn from_value(value: &Value) -> Result<Idempotency, String> {
        let fix = "use \"body\", \"none\", {\"header\": \"<name>\"} or {\"fields\": [\"<path>\"]}";
        match value {
            Value::String(mode) if mode == "body" => Ok(Idempotency::Body),
            Value::String(mode) if mode == "none" => Ok(Idempotency::None),
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((key, Value::String(name))) if key == "header" => {
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if valid {
                        Ok(Idempotency::Header(name.to_ascii_lowercase()))
                    } else {
                        Err(format!("`{name}` is not a header name"))
                    }
                }
                Some((key, Value::Array(items))) if key == "fields" && !items.is_empty() => items
                    .iter()
                    .map(|item| match item {
                        Value::String(path) if !path.is_empty() => Ok(path.clone()),
                        other => Err(format!("{other} is not a field path such as `event.id`")),
                    })
                    .collect::<Result<_, _>>()
                    .map(Idempotency::Fields),
                _ => Err(format!("{value} is not an idempotency key source; {fix}")),
            },
            other => Err(format!("{other} is not an idempotency key source; {fix}")),
        }
    }
}

fn default_horizon_hours() -> u32 {
    DEFAULT_KEY_HORIZON_HOURS
}

/// How long idempotency keys are kept by default: 7 days, longer than the retry schedule of
/// common senders.
pub const DEFAULT_KEY_HORIZON_HOURS: u32 = 7 * 24;
/// The maximum key horizon: 90 days.
pub const MAX_KEY_HORIZON_HOURS: u32 = 90 * 24;
/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;
/// The maximum length of an idempotency key kept as it is; a longer one is stored as its
/// SHA-256.
const MAX_KEY_CHARS: usize = 200;

/// The configuration of an inbound endpoint, as stored and as sent to the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    pub verification: Verification,
    /// For `hmac`: the header that contains the signature, such as `X-Hub-Signature-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
    /// For `hmac`: text before the digest, such as `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_prefix: Option<String>,
    /// For `hmac`: `hex` (the default) or `base64`.
    #[serde(default)]
    pub signature_encoding: Encoding,
    #[serde(default)]
    pub idempotency: Idempotency,
    /// How long an idempotency key is kept, in hours.
    #[serde(default = "default_horizon_hours")]
    pub key_horizon_hours: u32,
    pub mapping: MappingSpec,
    /// InboundResponse with the `respond` action of a rule that ran on the delivery's event, instead
    /// of `202 {"accepted": <event id>}`.
    #[serde(default)]
    pub synchronous: bool,
}

impl InboundConfig {
    /// Reads and checks a configuration given as JSON.
    pub fn from_value(value: Value) -> Result<InboundConfig, WebhookError> {
        InboundConfig::compile(value).map(|(config, _)| config)
    }

    /// Reads and checks a configuration and compiles its mapping.
    pub(crate) fn compile(value: Value) -> Result<(InboundConfig, Mapping), WebhookError> {
        let config: InboundConfig = serde_json::from_value(value.clone()).map_err(|e| {
            WebhookError::field(
                "config",
                &value,
                format!("{e}; see the README for the keys"),
            )
        })?;
        let mapping = config.check()?;
        Ok((config, mapping))
    }

    /// Reads a configuration from JSON or YAML text, such as a file given to the CLI.
    pub fn parse_text(text: &str) -> Result<Value, WebhookError> {
        serde_saphyr::from_str::<Value>(text).map_err(|e| WebhookError::Invalid {
            message: format!("the configuration is not valid JSON or YAML: {e}"),
            details: Vec::new(),
        })
    }

    /// Checks the settings against each other and compiles the mapping.
    pub(crate) fn check(&self) -> Result<Mapping, WebhookError> {
        let mut errors = Vec::new();
        let field_error = |field: &str, value: Value, message: &str| {
            steward_domain::FieldError::new(field, &value, message)
        };
        match (self.verification, &self.signature_header) {
            (Verification::Hmac, None) => errors.push(field_error(
                "signature_header",
                Value::Null,
                "is required with `verification: hmac`; name the header the sender signs in",
            )),
            (Verification::Hmac, Some(header))
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                errors.push(field_error(
                    "signature_header",
                    json!(header),
                    "is not a header name",
                ))
            }
            (Verification::Standard | Verification::Token, Some(header)) => {
                errors.push(field_error(
                    "signature_header",
                    json!(header),
                    "applies only to `verification: hmac`; remove it",
                ))
            }
            _ => {}
        }
        if self.verification != Verification::Hmac && self.signature_prefix.is_some() {
            errors.push(field_error(
                "signature_prefix",
                json!(self.signature_prefix),
                "applies only to `verification: hmac`; remove it",
            ));
        }
        if !(1..=MAX_KEY_HORIZON_HOURS).contains(&self.key_horizon_hours) {
            errors.push(field_error(
                "key_horizon_hours",
                json!(self.key_horizon_hours),
                &format!("must be from 1 to {MAX_KEY_HORIZON_HOURS} hours"),
            ));
        }
        let mapping = Mapping::compile(&self.mapping);
        if let Err(mapping_errors) = &mapping {
            errors.extend(mapping_errors.iter().cloned());
        }
        if errors.is_empty() {
            Ok(mapping.expect("no errors means the mapping compiled"))
        } else {
            Err(WebhookError::fields(errors))
        }
    }
}

/// An inbound endpoint as the API shows it: never its secret.
#[derive(Clone, Debug, Serialize)]
pub struct InboundView {
    pub id: String,
    pub enabled: bool,
    /// The path senders post to; `{token}` stands for the secret token.
    pub path: String,
    #[serde(flatten)]
    pub config: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl InboundView {
    pub fn of(endpoint: &InboundEndpoint) -> InboundView {
        let token = endpoint.config.get("verification") == Some(&json!("token"));
        InboundView {
            id: endpoint.id.clone(),
            enabled: endpoint.enabled,
            path: if token {
                format!("/hooks/{}/{{token}}", endpoint.id)
            } else {
                format!("/hooks/{}", endpoint.id)
            },
            config: endpoint.config.clone(),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// A new inbound endpoint with its secret, shown only in this response.
#[derive(Clone, Debug, Serialize)]
pub struct InboundCreated {
    #[serde(flatten)]
    pub endpoint: InboundView,
    pub secret: String,
    /// The full path with the token, for `verification: token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
}

/// One delivery as it reached the receiver.
pub struct Delivered<'a> {
    pub endpoint: &'a str,
    /// The token segment of `/hooks/<id>/<token>`, if the path had one.
    pub token: Option<&'a str>,
    /// Header values by lower-case name.
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
}

/// The response to an accepted delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundResponse {
    pub status: u16,
    pub body: Value,
    /// True when the response repeats the stored response to an earlier delivery with the key.
    pub replayed: bool,
}

/// The reason a delivery was rejected, with the status of the response.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// A stable code: `unknown_endpoint`, `disabled_endpoint`, `bad_signature`,
    /// `stale_timestamp`, `bad_token`, `not_json`, `missing_idempotency_key`,
    /// `mapping_failed`, `command_failed`, or `unavailable` for a failure to retry.
    pub reason: &'static str,
    /// The HTTP status of the response.
    pub status: u16,
    pub message: String,
}

impl Rejection {
    fn new(reason: &'static str, status: u16, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            status,
            message: message.into(),
        }
    }
}

/// The outcome of the write that applies a delivery.
enum Applied {
    /// The delivery was applied. The event name feeds the metrics.
    New {
        answer: InboundResponse,
        event_name: Option<String>,
    },
    /// A receipt with the key committed meanwhile.
    Repeat(InboundResponse),
}

/// Names the purpose a secret of `endpoint` is sealed for.
fn purpose(endpoint: &str) -> String {
    format!("inbound/{endpoint}")
}

impl Webhooks {
    /// Creates an inbound endpoint from a request object with `id`, optional `enabled` and
    /// `secret`, and the configuration keys. Returns it with its secret, which is shown only here.
    pub async fn create_inbound(
        &self,
        engine: &Arc<Engine>,
        request: Value,
    ) -> Result<InboundCreated, WebhookError> {
        let Value::Object(mut fields) = request else {
            return Err(WebhookError::field(
                "body",
                &request,
                "send a JSON object with `id`, `verification` and `mapping`",
            ));
        };
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            other => {
                return Err(WebhookError::field(
                    "id",
                    &other.unwrap_or(Value::Null),
                    "is required: a lower-case slug such as `odoo-tasks`",
                ));
            }
        };
        validate_id(&id)?;
        let enabled = take_bool(&mut fields, "enabled")?.unwrap_or(true);
        let given_secret = match fields.remove("secret") {
            None | Some(Value::Null) => None,
            Some(Value::String(secret)) => Some(secret),
            Some(other) => {
                return Err(WebhookError::field("secret", &other, "must be text"));
            }
        };
        let config = InboundConfig::from_value(Value::Object(fields))?;
        let secret = match given_secret {
            Some(secret) => {
                check_given_secret(config.verification, &secret)?;
                secret
            }
            None => match config.verification {
                Verification::Standard => new_signing_secret(),
                Verification::Hmac | Verification::Token => new_url_token(),
            },
        };
        let now = engine.clock().now();
        let endpoint = InboundEndpoint {
            id: id.clone(),
            sealed_secret: self.key.seal(&purpose(&id), &secret),
            config: serde_json::to_value(&config).expect("a configuration encodes as JSON"),
            enabled,
            created_at: now,
            updated_at: now,
        };
        let stored = endpoint.clone();
        steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
            Ok(tx.webhooks_mut().insert_inbound_endpoint(&stored)?)
        })
        .await?;
        tracing::info!(endpoint = %id, verification = ?config.verification, "inbound webhook endpoint created");
        let url_path =
            (config.verification == Verification::Token).then(|| format!("/hooks/{id}/{secret}"));
        Ok(InboundCreated {
            endpoint: InboundView::of(&endpoint),
            secret,
            url_path,
        })
    }

    /// Changes an inbound endpoint: `enabled`, and any configuration key, which replaces the
    /// stored one. The whole configuration is checked again.
    pub async fn update_inbound(
        &self,
        engine: &Arc<Engine>,
        id: &str,
        change: Value,
    ) -> Result<InboundView, WebhookError> {
        let Value::Object(mut fields) = change else {
            return Err(WebhookError::field(
                "body",
                &change,
                "send a JSON object with the keys to change",
            ));
        };
        for fixed in ["id", "secret"] {
            if let Some(value) = fields.remove(fixed) {
                let fix = if fixed == "id" {
                    "an endpoint keeps its id; create another endpoint instead"
                } else {
                    "rotate the secret with POST .../rotate-secret"
                };
                return Err(WebhookError::field(fixed, &value, fix));
            }
        }
        let enabled = take_bool(&mut fields, "enabled")?;
        let mut endpoint = self.inbound(engine, id).await?;
        let mut config = match endpoint.config.clone() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in fields {
            if value.is_null() {
                config.remove(&key);
            } else {
                config.insert(key, value);
            }
        }
        let config = InboundConfig::from_value(Value::Object(config))?;
        endpoint.config = serde_json::to_value(&config).expect("a configuration encodes as JSON");
        if let Some(enabled) = enabled {
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = engine.clock().now();
        let stored = endpoint.clone();
        let found =
            steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
                Ok(tx.webhooks_mut().update_inbound_endpoint(&stored)?)
            })
            .await?;
        if !found {
            return Err(not_found_inbound(id));
        }
        tracing::info!(endpoint = %id, "inbound webhook endpoint changed");
        Ok(InboundView::of(&endpoint))
    }

    /// Replaces an inbound endpoint's secret with a new one, shown only in the response.
    pub async fn rotate_inbound_secret(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<InboundCreated, WebhookError> {
        let mut endpoint = self.inbound(engine, id).await?;
        let config = InboundConfig::from_value(endpoint.config.clone())?;
        let secret = match config.verification {
            Verification::Standard => new_signing_secret(),
            Verification::Hmac | Verification::Token => new_url_token(),
        };
        endpoint.sealed_secret = self.key.seal(&purpose(id), &secret);
        endpoint.updated_at = engine.clock().now();
        let stored = endpoint.clone();
        steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
            Ok(tx.webhooks_mut().update_inbound_endpoint(&stored)?)
        })
        .await?;
        tracing::info!(endpoint = %id, "inbound webhook secret rotated");
        let url_path =
            (config.verification == Verification::Token).then(|| format!("/hooks/{id}/{secret}"));
        Ok(InboundCreated {
            endpoint: InboundView::of(&endpoint),
            secret,
            url_path,
        })
    }

    pub async fn delete_inbound(&self, engine: &Arc<Engine>, id: &str) -> Result<(), WebhookError> {
        let lookup = id.to_string();
        let deleted =
            steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
                Ok(tx.webhooks_mut().delete_inbound_endpoint(&lookup)?)
            })
            .await?;
        if !deleted {
            return Err(not_found_inbound(id));
        }
        tracing::info!(endpoint = %id, "inbound webhook endpoint deleted");
        Ok(())
    }

    pub(crate) async fn inbound(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<InboundEndpoint, WebhookError> {
        let lookup = id.to_string();
        steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().inbound_endpoint(&lookup)
        })
        .await?
        .ok_or_else(|| not_found_inbound(id))
    }

    /// Verifies, deduplicates, maps and applies one inbound delivery. The response comes
    /// only after the change, its event and the delivery's receipt committed together. A
    /// delivery whose key was seen within the horizon gets the stored response and changes
    /// nothing.
    /// Every rejection is stored with its reason.
    pub async fn receive(
        &self,
        engine: &Arc<Engine>,
        delivered: Delivered<'_>,
    ) -> Result<InboundResponse, Rejection> {
        match self.accept(engine, &delivered).await {
            Ok(answer) => {
                let outcome = if answer.replayed {
                    "repeated"
                } else {
                    "accepted"
                };
                metrics::counter!(metric_names::RECEIPTS, "endpoint" => delivered.endpoint.to_string(), "outcome" => outcome)
                    .increment(1);
                Ok(answer)
            }
            Err(rejection) => {
                self.log_rejection(engine, &delivered, &rejection).await;
                Err(rejection)
            }
        }
    }

    async fn accept(
        &self,
        engine: &Arc<Engine>,
        delivered: &Delivered<'_>,
    ) -> Result<InboundResponse, Rejection> {
        let id = delivered.endpoint;
        let lookup = id.to_string();
        let endpoint = steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().inbound_endpoint(&lookup)
        })
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            Rejection::new(
                "unknown_endpoint",
                404,
                format!("no inbound webhook endpoint `{id}` exists"),
            )
        })?;
        if !endpoint.enabled {
            return Err(Rejection::new(
                "disabled_endpoint",
                503,
                format!("the inbound webhook endpoint `{id}` is disabled; retry later"),
            ));
        }
        let (config, mapping) = InboundConfig::compile(endpoint.config.clone()).map_err(|e| {
            tracing::error!(endpoint = %id, error = %e, "a stored inbound configuration is invalid");
            Rejection::new(
                "unavailable",
                500,
                "the endpoint's configuration is invalid; an administrator must fix it",
            )
        })?;
        let secret = self
            .key
            .open(&purpose(id), &endpoint.sealed_secret)
            .map_err(|e| {
                tracing::error!(endpoint = %id, error = %e, "cannot open an inbound secret");
                Rejection::new(
                    "unavailable",
                    500,
                    "the endpoint's secret cannot be read; an administrator must rotate it",
                )
            })?;
        let now = engine.clock().now();
        verify(&config, &secret, delivered, now)?;

        let payload: Value = serde_json::from_slice(delivered.body).map_err(|e| {
            Rejection::new(
                "not_json",
                400,
                format!("the body is not valid JSON ({e}); send a JSON object"),
            )
        })?;
        let key = idempotency_key(&config.idempotency, delivered, &payload)?;
        if let Some(key) = &key {
            let (lookup, key) = (id.to_string(), key.clone());
            let stored = steward_store::read_async(engine.store().clone(), move |tx| {
                tx.webhooks().inbound_receipt(&lookup, &key, now)
            })
            .await
            .map_err(unavailable)?;
            if let Some(receipt) = stored {
                return Ok(replayed(receipt));
            }
        }
        let mapped = mapping.apply(&payload).map_err(|message| {
            Rejection::new(
                "mapping_failed",
                422,
                format!("the payload does not fit the endpoint's mapping: {message}"),
            )
        })?;
        let horizon = Duration::hours(i64::from(config.key_horizon_hours));
        self.apply(
            engine,
            id,
            key,
            mapped,
            config.synchronous,
            now,
            now + horizon,
        )
        .await
    }

    /// Applies the mapped command and stores the receipt in one transaction; a receipt that
    /// committed meanwhile under the same key wins and nothing is applied.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        engine: &Arc<Engine>,
        endpoint: &str,
        key: Option<String>,
        mapped: Mapped,
        synchronous: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<InboundResponse, Rejection> {
        let rules = engine.rules();
        let approvals = engine.approvals();
        let config = engine.config().clone();
        let endpoint = endpoint.to_string();
        let context = CommandContext::new(Actor::integration(&endpoint));
        let applied = steward_store::write(engine.store().as_ref(), move |tx| {
            if let Some(key) = &key
                && let Some(receipt) = tx.webhooks().inbound_receipt(&endpoint, key, now)?
            {
                return Ok(Applied::Repeat(replayed(receipt)));
            }
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let command = keep_link_version(tx, &mapped)?;
            let outcome = pipeline::apply(tx, &env, command, context.clone())?;
            let answer = response_for(tx, &outcome, synchronous)?;
            let receipt = InboundReceipt {
                endpoint: endpoint.clone(),
                // Without a key the receipt only counts the delivery; no repeat matches it.
                key: key.clone().unwrap_or_else(|| format!("unique:{}", new_id())),
                event: outcome.event.as_ref().map(|e| e.id.clone()),
                status: answer.status,
                body: answer.body.clone(),
                received_at: now,
                expires_at,
            };
            if !tx.webhooks_mut().insert_inbound_receipt(&receipt)? {
                return Err(EngineError::Store(StoreError::Conflict {
                    what: format!("the receipt of key {} at {endpoint}", receipt.key),
                }));
            }
            if let Some(event) = &outcome.event {
                tracing::debug!(endpoint = %endpoint, event = %event.id, name = %event.name, "inbound delivery applied");
            }
            Ok(Applied::New {
                answer,
                event_name: outcome.event.as_ref().map(|e| e.name.clone()),
            })
        })
        .await
        .map_err(command_rejection)?;
        match applied {
            Applied::New { answer, event_name } => {
                if let Some(name) = event_name {
                    metrics::counter!(steward_engine::metric_names::EVENTS, "name" => name)
                        .increment(1);
                }
                Ok(answer)
            }
            Applied::Repeat(answer) => Ok(answer),
        }
    }

    async fn log_rejection(
        &self,
        engine: &Arc<Engine>,
        delivered: &Delivered<'_>,
        rejection: &Rejection,
    ) {
        let label = if rejection.reason == "unknown_endpoint" {
            "unknown".to_string()
        } else {
            delivered.endpoint.to_string()
        };
        metrics::counter!(metric_names::REJECTIONS, "endpoint" => label, "reason" => rejection.reason)
            .increment(1);
        tracing::warn!(
            endpoint = %delivered.endpoint,
            reason = rejection.reason,
            status = rejection.status,
            message = %rejection.message,
            "inbound webhook rejected"
        );
        if rejection.reason == "unavailable" {
            // The store failed or the endpoint is broken; the log line above is the record.
            return;
        }
        // NOTE: every rejection is stored, including deliveries to unknown endpoints, so a
        // sender that floods them fills the table until the history purge removes them.
        let row = InboundRejection {
            id: new_id(),
            endpoint: delivered.endpoint.chars().take(100).collect(),
            reason: rejection.reason.to_string(),
            message: rejection.message.clone(),
            status: rejection.status,
            body_sha256: hex::encode(Sha256::digest(delivered.body)),
            body_bytes: delivered.body.len() as u64,
            received_at: engine.clock().now(),
        };
        let stored = steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
            tx.webhooks_mut().insert_inbound_rejection(&row)
        })
        .await;
        if let Err(error) = stored {
            tracing::error!(endpoint = %delivered.endpoint, %error, "storing an inbound rejection failed");
        }
    }
}

fn replayed(receipt: InboundReceipt) -> InboundResponse {
    InboundResponse {
        status: receipt.status,
        body: receipt.body,
        replayed: true,
    }
}

/// For a mapping without a source version, passes on the version the link holds, so a
/// webhook does not erase the marker that a sync keeps there.
fn keep_link_version(tx: &mut dyn WriteTx, mapped: &Mapped) -> Result<Command, EngineError> {
    let mut command = mapped.command.clone();
    if mapped.keep_source_version
        && let Command::Upsert {
            external,
            source_version,
            ..
        } = &mut command
        && let Some(link) = tx.external_link(external)?
    {
        *source_version = link.source_version;
    }
    Ok(command)
}

/// Builds the response to a new delivery: `202 {"accepted": <event id>}`, or for a synchronous
/// endpoint the first `respond` outcome among the rules that ran on the event inline.
fn response_for(
    tx: &mut dyn WriteTx,
    outcome: &Outcome,
    synchronous: bool,
) -> Result<InboundResponse, EngineError> {
    let event = outcome.event.as_ref();
    // NOTE: only rules that ran inline have a run with outcomes here. With
    // `EngineConfig::inline_jobs` off, or a rule that also calls HTTP, the rule runs later in a
    // worker and the delivery gets the default response.
    if synchronous && let Some(event) = event {
        let runs = tx.runs(&RunQuery {
            event_id: Some(event.id.clone()),
            limit: steward_store::MAX_PAGE,
            ..Default::default()
        })?;
        for run in runs
            .items
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
        {
            let Some(actions) = run.actions.as_array() else {
                continue;
            };
            for action in actions {
                if let Some(respond) = action.pointer("/outcome/respond") {
                    let status = respond
                        .get("status")
                        .and_then(Value::as_u64)
                        .and_then(|s| u16::try_from(s).ok())
                        .filter(|s| (200..=599).contains(s))
                        .unwrap_or(200);
                    let body = respond.get("body").cloned().unwrap_or(Value::Null);
                    return Ok(InboundResponse {
                        status,
                        body,
                        replayed: false,
                    });
                }
            }
        }
    }
    Ok(InboundResponse {
        status: 202,
        body: json!({"accepted": event.map(|e| e.id.clone())}),
        replayed: false,
    })
}

fn unavailable(error: StoreError) -> Rejection {
    tracing::error!(%error, "reading for an inbound webhook failed");
    Rejection::new(
        "unavailable",
        503,
        "the server cannot take the delivery now; retry later",
    )
}

/// Maps a failed apply: an invalid command is the sender's to fix; a store failure or a
/// conflict is worth a retry.
fn command_rejection(error: EngineError) -> Rejection {
    match error {
        EngineError::Domain(error) => Rejection::new(
            "command_failed",
            422,
            format!("the mapped change is invalid: {error}"),
        ),
        error if error.is_transient() => {
            tracing::warn!(%error, "applying an inbound webhook failed; the sender may retry");
            Rejection::new(
                "unavailable",
                503,
                "the server cannot take the delivery now; retry later",
            )
        }
        error => {
            tracing::error!(%error, "applying an inbound webhook failed");
            Rejection::new("unavailable", 500, "the server failed; see its log")
        }
    }
}

fn header<'a>(delivered: &'a Delivered<'_>, name: &str) -> Option<&'a str> {
    delivered.headers.get(name).map(String::as_str)
}

/// Checks the delivery's signature, timestamp or token.
fn verify(
    config: &InboundConfig,
    secret: &str,
    delivered: &Delivered<'_>,
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    let bad_signature = |message: &str| Rejection::new("bad_signature", 401, message);
    if config.verification != Verification::Token && delivered.token.is_some() {
        return Err(Rejection::new(
            "bad_token",
            401,
            "this endpoint verifies signatures; post to /hooks/<id> without a token",
        ));
    }
    match config.verification {
        Verification::Token => match delivered.token {
            Some(token) if signature::secrets_match(token, secret) => Ok(()),
            Some(_) => Err(Rejection::new(
                "bad_token",
                401,
                "the token in the URL is not this endpoint's",
            )),
            None => Err(Rejection::new(
                "bad_token",
                401,
                "this endpoint takes its token in the URL: /hooks/<id>/<token>",
            )),
        },
        Verification::Standard => {
            let (Some(id), Some(timestamp), Some(signatures)) = (
                header(delivered, signature::ID_HEADER),
                header(delivered, signature::TIMESTAMP_HEADER),
                header(delivered, signature::SIGNATURE_HEADER),
            ) else {
                return Err(bad_signature(
                    "send the headers webhook-id, webhook-timestamp and webhook-signature",
                ));
            };
            let timestamp: i64 = timestamp.trim().parse().map_err(|_| {
                Rejection::new(
                    "stale_timestamp",
                    401,
                    format!("webhook-timestamp `{timestamp}` is not a Unix time in seconds"),
                )
            })?;
            let skew = (now.timestamp() - timestamp).abs();
            if skew > TIMESTAMP_TOLERANCE_SECONDS {
                return Err(Rejection::new(
                    "stale_timestamp",
                    401,
                    format!(
                        "webhook-timestamp is {skew} s away from now, more than the \
                         {TIMESTAMP_TOLERANCE_SECONDS} s allowed; sign with the current time"
                    ),
                ));
            }
            let key = signature::signing_key(secret).map_err(|reason| {
                tracing::error!(endpoint = %delivered.endpoint, %reason, "an inbound signing secret is invalid");
                Rejection::new("unavailable", 500, "the endpoint's secret is invalid; rotate it")
            })?;
            if signature::verify(&key, id, timestamp, delivered.body, signatures) {
                Ok(())
            } else {
                Err(bad_signature(
                    "no signature in webhook-signature matches the body; check the secret",
                ))
            }
        }
        Verification::Hmac => {
            let name = config
                .signature_header
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let Some(given) = header(delivered, &name) else {
                return Err(bad_signature(&format!(
                    "send the signature in the header {name}"
                )));
            };
            let given = given.trim();
            let given = match &config.signature_prefix {
                Some(prefix) => given.strip_prefix(prefix.as_str()).ok_or_else(|| {
                    bad_signature(&format!("the signature must start with `{prefix}`"))
                })?,
                None => given,
            };
            let decoded = match config.signature_encoding {
                Encoding::Hex => hex::decode(given.to_ascii_lowercase()).ok(),
                Encoding::Base64 => STANDARD.decode(given).ok(),
            };
            let expected = signature::hmac_sha256(secret.as_bytes(), &[delivered.body]);
            match decoded {
                Some(digest) if signature::constant_time_eq(&digest, &expected) => Ok(()),
                _ => Err(bad_signature(&format!(
                    "the signature in {name} does not match the body; check the secret"
                ))),
            }
        }
    }
}

/// Derives the delivery's idempotency key, or `None` when the endpoint keeps none.
fn idempotency_key(
    source: &Idempotency,
    delivered: &Delivered<'_>,
    payload: &Value,
) -> Result<Option<String>, Rejection> {
    let key = match source {
        Idempotency::None => return Ok(None),
        Idempotency::Body => format!("sha256:{}", hex::encode(Sha256::digest(delivered.body))),
        Idempotency::Header(name) => match header(delivered, name).map(str::trim) {
            Some(value) if !value.is_empty() => value.to_string(),
            _ => {
                return Err(Rejection::new(
                    "missing_idempotency_key",
                    400,
                    format!("send the idempotency key in the header {name}"),
                ));
            }
        },
        Idempotency::Fields(paths) => {
            let mut parts = Vec::new();
            for path in paths {
                let value = path
                    .split('.')
                    .try_fold(payload, |value, segment| value.get(segment));
                match value {
                    Some(Value::String(text)) => parts.push(text.clone()),
                    Some(value) if !value.is_null() => parts.push(value.to_string()),
                    _ => {
                        return Err(Rejection::new(
                            "missing_idempotency_key",
                            400,
                            format!(
                                "the payload has no `{path}`, which this endpoint takes its \
                                 idempotency key from"
                            ),
                        ));
                    }
                }
            }
            parts.join("|")
        }
    };
    if key.chars().count() > MAX_KEY_CHARS {
        return Ok(Some(format!("sha256:{}", hex::encode(Sha256::digest(key)))));
    }
    Ok(Some(key))
}

fn take_bool(fields: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, WebhookError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(value)),
        Some(other) => Err(WebhookError::field(name, &other, "must be true or false")),
    }
}

fn check_given_secret(verification: Verification, secret: &str) -> Result<(), WebhookError> {
    let value = json!("(hidden)");
    match verification {
        Verification::Standard => signature::signing_key(secret)
            .map(|_| ())
            .map_err(|reason| WebhookError::field("secret", &value, reason)),
        Verification::Hmac | Verification::Token if secret.chars().count() < 24 => {
            Err(WebhookError::field(
                "secret",
                &value,
                "must be at least 24 characters; leave it out to get a generated one",
            ))
        }
        Verification::Token
            if !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(WebhookError::field(
                "secret",
                &value,
                "a URL token may hold only letters, digits, `-` and `_`",
            ))
        }
        _ => Ok(()),
    }
}

fn not_found_inbound(id: &str) -> WebhookError {
    WebhookError::NotFound(format!("no inbound webhook endpoint `{id}` exists"))
}
