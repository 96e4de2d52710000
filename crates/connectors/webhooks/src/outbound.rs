//! Outbound webhooks: endpoints, signed deliveries run as jobs of kind
//! [`WEBHOOK_JOB`](steward_engine::pipeline::WEBHOOK_JOB), resends, and endpoint health.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use steward_domain::{RecordRef, new_id};
use steward_engine::outbound::{BoxFuture, JobHandler};
use steward_engine::pipeline::WEBHOOK_JOB;
use steward_engine::{Engine, EngineError};
use steward_store::webhooks::{
    Delivery, DeliveryAttempt, DeliveryState, OutboundEndpoint, OutboundHealth,
};
use steward_store::{Job, JobState, StoreError};

use crate::client::{AGENT, describe_target, read_body};
use crate::error::WebhookError;
use crate::secrets::new_signing_secret;
use crate::{Webhooks, metric_names, signature, validate_id};

/// How long one attempt may take when the endpoint sets nothing, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The accepted range of attempt timeouts, in milliseconds.
pub const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// Maximum length of a failed response's body kept in the attempt's error, in characters.
const ERROR_BODY_CHARS: usize = 300;

/// The payload of a delivery job, as `apply_local` in the engine's pipeline queues it; a
/// resend adds `resent_from`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery: String,
    pub endpoint: String,
    pub event: String,
    #[serde(default)]
    pub record: Option<RecordRef>,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resent_from: Option<String>,
}

impl DeliveryJob {
    /// Encodes the JSON body of the delivery, the same bytes on every attempt.
    pub fn body(&self) -> Vec<u8> {
        let body = json!({
            "id": self.delivery,
            "type": self.event,
            "timestamp": self.occurred_at,
            "data": self.data,
            "record": self.record,
            "rule": self.rule,
            "cause": self.cause,
        });
        serde_json::to_vec(&body).expect("a delivery body encodes as JSON")
    }
}

/// A request to create an outbound endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequest {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Event names the endpoint accepts; every event when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A change to an outbound endpoint; absent keys stay, `null` clears `events` or
/// `description`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundChange {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub events: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
}

/// Tells a key sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A new outbound endpoint, or one with a new secret: the secret is shown only here.
#[derive(Clone, Debug, Serialize)]
pub struct OutboundCreated {
    #[serde(flatten)]
    pub endpoint: OutboundEndpoint,
    pub secret: String,
}

/// The health of one integration endpoint over the last 24 hours.
#[derive(Clone, Debug, Serialize)]
pub struct IntegrationHealth {
    /// `webhook_out` or `webhook_in`.
    pub integration: &'static str,
    pub id: String,
    /// `healthy`, `failing`, `rejecting`, `idle` or `disabled`.
    pub status: &'static str,
    pub enabled: bool,
    pub window_hours: u32,
    /// The figures: [`OutboundHealth`] or [`steward_store::webhooks::InboundHealth`].
    #[serde(flatten)]
    pub figures: Value,
}

/// Hours of the health window.
pub const HEALTH_WINDOW_HOURS: u32 = 24;

/// One delivery with its attempts, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub endpoint: String,
    pub event: String,
    /// `pending` before the first attempt, then the state after the latest attempt.
    pub state: String,
    pub job: Option<String>,
    /// The state of the carrying job, such as `dead` for a dead letter to replay.
    pub job_state: Option<JobState>,
    pub resent_from: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
    pub data: Value,
}

/// A delivery queued by a resend.
#[derive(Clone, Debug, Serialize)]
pub struct Resent {
    pub delivery: String,
    pub resent_from: String,
    pub job: String,
}

fn purpose(endpoint: &str) -> String {
    format!("outbound/{endpoint}")
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let value = json!(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        WebhookError::field(
            "url",
            &value,
            format!("is not a URL ({e}); use http(s)://host/path"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::field("url", &value, "must use http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::field("url", &value, "has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(WebhookError::field(
            "url",
            &json!("(hidden)"),
            "holds credentials, which would be stored in plain text; receivers authenticate \
             Steward by the signature instead",
        ));
    }
    Ok(())
}

fn check_events(events: &Option<Vec<String>>) -> Result<(), WebhookError> {
    let Some(events) = events else {
        return Ok(());
    };
    if events.is_empty() {
        return Err(WebhookError::field(
            "events",
            &json!(events),
            "is empty, so nothing would be sent; leave it out to accept every event",
        ));
    }
    for name in events {
        if !steward_domain::plan::is_event_name(name) {
            return Err(WebhookError::field(
                "events",
                &json!(name),
                "is not an event name; use dotted lower-case words such as `invoice.sent`",
            ));
        }
    }
    Ok(())
}

fn check_timeout(timeout_ms: u64) -> Result<(), WebhookError> {
    if TIMEOUT_RANGE_MS.contains(&timeout_ms) {
        Ok(())
    } else {
        Err(WebhookError::field(
            "timeout_ms",
            &json!(timeout_ms),
            format!(
                "must be from {} to {} milliseconds",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end()
            ),
        ))
    }
}

fn check_description(description: &Option<String>) -> Result<(), WebhookError> {
    match description {
        Some(text) if text.chars().count() > 500 => Err(WebhookError::field(
            "description",
            &json!(text),
            "is longer than 500 characters",
        )),
        _ => Ok(()),
    }
}

fn not_found_outbound(id: &str) -> WebhookError {
    WebhookError::NotFound(format!("no outbound webhook endpoint `{id}` exists"))
}

/// Derives the status of an outbound endpoint from its figures.
pub(crate) fn outbound_status(enabled: bool, health: &OutboundHealth) -> &'static str {
    if !enabled {
        "disabled"
    } else if health.consecutive_failures > 0 {
        "failing"
    } else if health.attempts == 0 {
        "idle"
    } else {
        "healthy"
    }
}

impl Webhooks {
    /// Creates an outbound endpoint with a new signing secret, shown only in the response.
    pub async fn create_outbound(
        &self,
        engine: &Arc<Engine>,
        request: OutboundRequest,
    ) -> Result<OutboundCreated, WebhookError> {
        validate_id(&request.id)?;
        check_url(&request.url)?;
        check_events(&request.events)?;
        let timeout_ms = request.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        check_timeout(timeout_ms)?;
        check_description(&request.description)?;
        let secret = new_signing_secret();
        let now = engine.clock().now();
        let endpoint = OutboundEndpoint {
            id: request.id.clone(),
            url: request.url,
            sealed_secret: self.key.seal(&purpose(&request.id), &secret),
            enabled: request.enabled.unwrap_or(true),
            events: request.events,
            timeout_ms,
            description: request.description,
            created_at: now,
            updated_at: now,
        };
        let stored = endpoint.clone();
        steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
            Ok(tx.webhooks_mut().insert_outbound_endpoint(&stored)?)
        })
        .await?;
        tracing::info!(endpoint = %endpoint.id, "outbound webhook endpoint created");
        Ok(OutboundCreated { endpoint, secret })
    }

    pub async fn update_outbound(
        &self,
        engine: &Arc<Engine>,
        id: &str,
        change: OutboundChange,
    ) -> Result<OutboundEndpoint, WebhookError> {
        let mut endpoint = self.outbound(engine, id).await?;
        if let Some(url) = change.url {
            check_url(&url)?;
            endpoint.url = url;
        }
        if let Some(enabled) = change.enabled {
            endpoint.enabled = enabled;
        }
        if let Some(events) = change.events {
            check_events(&events)?;
            endpoint.events = events;
        }
        if let Some(timeout_ms) = change.timeout_ms {
            check_timeout(timeout_ms)?;
            endpoint.timeout_ms = timeout_ms;
        }
        if let Some(description) = change.description {
            check_description(&description)?;
            endpoint.description = description;
        }
        endpoint.updated_at = engine.clock().now();
        let stored = endpoint.clone();
        let found =
            steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
                Ok(tx.webhooks_mut().update_outbound_endpoint(&stored)?)
            })
            .await?;
        if !found {
            return Err(not_found_outbound(id));
        }
        tracing::info!(endpoint = %id, enabled = endpoint.enabled, "outbound webhook endpoint changed");
        Ok(endpoint)
    }

    /// Replaces an endpoint's signing secret; attempts from now on sign with the new one.
    pub async fn rotate_outbound_secret(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<OutboundCreated, WebhookError> {
        let mut endpoint = self.outbound(engine, id).await?;
        let secret = new_signing_secret();
        endpoint.sealed_secret = self.key.seal(&purpose(id), &secret);
        endpoint.updated_at = engine.clock().now();
        let stored = endpoint.clone();
        steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
            Ok(tx.webhooks_mut().update_outbound_endpoint(&stored)?)
        })
        .await?;
        tracing::info!(endpoint = %id, "outbound webhook secret rotated");
        Ok(OutboundCreated { endpoint, secret })
    }

    pub async fn delete_outbound(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<(), WebhookError> {
        let lookup = id.to_string();
        let deleted =
            steward_store::write::<_, WebhookError, _>(engine.store().as_ref(), move |tx| {
                Ok(tx.webhooks_mut().delete_outbound_endpoint(&lookup)?)
            })
            .await?;
        if !deleted {
            return Err(not_found_outbound(id));
        }
        tracing::info!(endpoint = %id, "outbound webhook endpoint deleted");
        Ok(())
    }

    pub(crate) async fn outbound(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<OutboundEndpoint, WebhookError> {
        let lookup = id.to_string();
        steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().outbound_endpoint(&lookup)
        })
        .await?
        .ok_or_else(|| not_found_outbound(id))
    }

    /// Reads the health of one outbound endpoint over the last 24 hours.
    pub async fn outbound_health(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<IntegrationHealth, WebhookError> {
        let endpoint = self.outbound(engine, id).await?;
        let since = engine.clock().now() - Duration::hours(i64::from(HEALTH_WINDOW_HOURS));
        let lookup = id.to_string();
        let health = steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().outbound_health(&lookup, since)
        })
        .await?;
        Ok(IntegrationHealth {
            integration: "webhook_out",
            id: endpoint.id,
            status: outbound_status(endpoint.enabled, &health),
            enabled: endpoint.enabled,
            window_hours: HEALTH_WINDOW_HOURS,
            figures: serde_json::to_value(&health).expect("health figures encode as JSON"),
        })
    }

    /// Reads one delivery with its attempts. A delivery not yet attempted shows as `pending`.
    pub async fn delivery(
        &self,
        engine: &Arc<Engine>,
        id: &str,
    ) -> Result<DeliveryView, WebhookError> {
        let lookup = id.to_string();
        let (summary, attempts, job) =
            steward_store::read_async(engine.store().clone(), move |tx| {
                let webhooks = tx.webhooks();
                Ok((
                    webhooks.delivery(&lookup)?,
                    webhooks.delivery_attempts(&lookup)?,
                    webhooks.delivery_job(&lookup)?,
                ))
            })
            .await?;
        let payload = job
            .as_ref()
            .and_then(|j| serde_json::from_value::<DeliveryJob>(j.payload.clone()).ok());
        let (endpoint, event) = match (&summary, &payload) {
            (Some(s), _) => (s.endpoint.clone(), s.event.clone()),
            (None, Some(p)) => (p.endpoint.clone(), p.event.clone()),
            (None, None) => {
                return Err(WebhookError::NotFound(format!(
                    "no webhook delivery {id} exists"
                )));
            }
        };
        Ok(DeliveryView {
            id: id.to_string(),
            endpoint,
            event,
            state: summary
                .as_ref()
                .map_or("pending", |s| s.state.as_str())
                .to_string(),
            job: job.as_ref().map(|j| j.id.clone()),
            job_state: job.as_ref().map(|j| j.state),
            resent_from: payload.as_ref().and_then(|p| p.resent_from.clone()),
            attempts,
            data: payload.map(|p| p.data).unwrap_or(Value::Null),
        })
    }

    /// Queues the delivery `id` again as a new delivery with a new id, for a receiver that
    /// lost or mishandled it. A dead delivery replayed from the dead-letter queue keeps its
    /// id instead.
    pub async fn resend(&self, engine: &Arc<Engine>, id: &str) -> Result<Resent, WebhookError> {
        let lookup = id.to_string();
        let job = steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().delivery_job(&lookup)
        })
        .await?
        .ok_or_else(|| WebhookError::NotFound(format!("no webhook delivery {id} exists")))?;
        let mut payload: DeliveryJob =
            serde_json::from_value(job.payload.clone()).map_err(|e| {
                WebhookError::Conflict(format!(
                    "delivery {id} has a payload that cannot be sent again: {e}"
                ))
            })?;
        let endpoint = self
            .outbound(engine, &payload.endpoint)
            .await
            .map_err(|_| {
                WebhookError::Conflict(format!(
                    "the endpoint `{}` of delivery {id} no longer exists; create it first",
                    payload.endpoint
                ))
            })?;
        if !endpoint.enabled {
            return Err(WebhookError::Conflict(format!(
                "the endpoint `{}` is disabled; enable it before resending",
                endpoint.id
            )));
        }
        let now = engine.clock().now();
        let delivery = new_id();
        payload.delivery = delivery.clone();
        payload.resent_from = Some(id.to_string());
        let new_job = Job {
            id: new_id(),
            key: format!("webhook/{delivery}"),
            kind: WEBHOOK_JOB.to_string(),
            run_id: None,
            payload: serde_json::to_value(&payload).expect("a delivery payload encodes as JSON"),
            state: JobState::Pending,
            attempts: 0,
            max_attempts: engine.config().max_attempts,
            run_at: now,
            lease_until: None,
            last_error: None,
            replays: 0,
            created_at: now,
            updated_at: now,
        };
        let job_id = new_job.id.clone();
        steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
            tx.insert_job(&new_job).map(|_| ())
        })
        .await?;
        tracing::info!(delivery = %delivery, resent_from = %id, endpoint = %endpoint.id, "webhook delivery resent");
        Ok(Resent {
            delivery,
            resent_from: id.to_string(),
            job: job_id,
        })
    }

    /// Runs one attempt of a delivery job: signs and posts the body, records the attempt,
    /// and fails transiently on 408, 429, 5xx, timeouts and connection errors, so the engine
    /// retries with backoff, or permanently on other responses and unusable endpoints.
    pub async fn deliver(&self, engine: &Arc<Engine>, job: &Job) -> Result<Value, EngineError> {
        let payload: DeliveryJob =
            serde_json::from_value(job.payload.clone()).map_err(|e| EngineError::External {
                message: format!("webhook job {} has an invalid payload: {e}", job.id),
                transient: false,
            })?;
        let lookup = payload.endpoint.clone();
        let endpoint = steward_store::read_async(engine.store().clone(), move |tx| {
            tx.webhooks().outbound_endpoint(&lookup)
        })
        .await?;
        let now = engine.clock().now();
        let mut delivery = Delivery {
            id: payload.delivery.clone(),
            endpoint: payload.endpoint.clone(),
            event: payload.event.clone(),
            job: job.id.clone(),
            state: DeliveryState::Dead,
            attempts: 0,
            last_status: None,
            last_error: None,
            resent_from: payload.resent_from.clone(),
            created_at: job.created_at,
            updated_at: now,
        };
        let endpoint = match endpoint {
            Some(endpoint) if endpoint.enabled => endpoint,
            Some(_) => {
                let message = format!(
                    "the endpoint `{}` is disabled; enable it and replay the dead letter",
                    payload.endpoint
                );
                return self.give_up(engine, &mut delivery, message).await;
            }
            None => {
                let message = format!(
                    "no outbound webhook endpoint `{}` exists; create it and replay the dead \
                     letter",
                    payload.endpoint
                );
                return self.give_up(engine, &mut delivery, message).await;
            }
        };
        if let Some(events) = &endpoint.events
            && !events.contains(&payload.event)
        {
            delivery.state = DeliveryState::Skipped;
            delivery.last_error = Some(format!(
                "the endpoint does not accept `{}`; it accepts {}",
                payload.event,
                events.join(", ")
            ));
            let stored = delivery.clone();
            steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
                tx.webhooks_mut().record_delivery(&stored)
            })
            .await?;
            metrics::counter!(metric_names::DELIVERIES, "endpoint" => endpoint.id.clone(), "outcome" => "skipped")
                .increment(1);
            return Ok(json!({"delivery": delivery.id, "skipped": true}));
        }
        let key = match self
            .key
            .open(&purpose(&endpoint.id), &endpoint.sealed_secret)
            .map_err(|e| e.to_string())
            .and_then(|secret| signature::signing_key(&secret))
        {
            Ok(key) => key,
            Err(reason) => return self.give_up(engine, &mut delivery, reason).await,
        };

        let body = payload.body();
        let timestamp = now.timestamp();
        let signed = signature::sign(&key, &delivery.id, timestamp, &body);
        let timeout = std::time::Duration::from_millis(endpoint.timeout_ms);
        let target = reqwest::Url::parse(&endpoint.url)
            .map(|url| describe_target(&reqwest::Method::POST, &url))
            .unwrap_or_else(|_| format!("the endpoint `{}`", endpoint.id));
        let started = Instant::now();
        let sent = self
            .delivery_client
            .post(&endpoint.url)
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, AGENT)
            .header(signature::ID_HEADER, &delivery.id)
            .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signature::SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await;
        let (status, failure) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    (Some(status), None)
                } else {
                    let excerpt = read_body(response, ERROR_BODY_CHARS)
                        .await
                        .unwrap_or_default();
                    let transient = matches!(status, 408 | 425 | 429 | 500..=599);
                    let message = if excerpt.is_empty() {
                        format!("{target} answered {status}")
                    } else {
                        format!("{target} answered {status}: {excerpt}")
                    };
                    (Some(status), Some((message, transient)))
                }
            }
            Err(error) => {
                let EngineError::External { message, transient } =
                    crate::client::transport_error(&target, &error, timeout)
                else {
                    unreachable!("transport errors are external");
                };
                (None, Some((message, transient)))
            }
        };
        let elapsed = started.elapsed();
        metrics::histogram!(metric_names::DELIVERY_DURATION, "endpoint" => endpoint.id.clone())
            .record(elapsed.as_secs_f64());

        let retrying = failure
            .as_ref()
            .is_some_and(|(_, transient)| *transient && job.attempts < job.max_attempts);
        delivery.state = match (&failure, retrying) {
            (None, _) => DeliveryState::Succeeded,
            (Some(_), true) => DeliveryState::Retrying,
            (Some(_), false) => DeliveryState::Dead,
        };
        let attempt = DeliveryAttempt {
            id: new_id(),
            delivery: delivery.id.clone(),
            endpoint: endpoint.id.clone(),
            attempt: 0,
            status,
            error: failure.as_ref().map(|(message, _)| message.clone()),
            duration_ms: elapsed.as_millis() as u64,
            succeeded: failure.is_none(),
            at: now,
        };
        let number = self.record_attempt(engine, &delivery, &attempt).await;
        metrics::counter!(metric_names::DELIVERIES, "endpoint" => endpoint.id.clone(), "outcome" => delivery.state.as_str())
            .increment(1);
        match failure {
            None => {
                tracing::debug!(delivery = %delivery.id, endpoint = %endpoint.id, attempt = number, status, "webhook delivered");
                Ok(json!({"delivery": delivery.id, "status": status, "attempt": number}))
            }
            Some((message, transient)) => {
                tracing::warn!(delivery = %delivery.id, endpoint = %endpoint.id, attempt = number, %message, "webhook attempt failed");
                Err(EngineError::External { message, transient })
            }
        }
    }

    /// Records a delivery that cannot be attempted and fails it permanently.
    async fn give_up(
        &self,
        engine: &Arc<Engine>,
        delivery: &mut Delivery,
        message: String,
    ) -> Result<Value, EngineError> {
        delivery.state = DeliveryState::Dead;
        let attempt = DeliveryAttempt {
            id: new_id(),
            delivery: delivery.id.clone(),
            endpoint: delivery.endpoint.clone(),
            attempt: 0,
            status: None,
            error: Some(message.clone()),
            duration_ms: 0,
            succeeded: false,
            at: engine.clock().now(),
        };
        self.record_attempt(engine, delivery, &attempt).await;
        metrics::counter!(metric_names::DELIVERIES, "endpoint" => delivery.endpoint.clone(), "outcome" => "dead")
            .increment(1);
        tracing::warn!(delivery = %delivery.id, endpoint = %delivery.endpoint, %message, "webhook delivery cannot be attempted");
        Err(EngineError::External {
            message,
            transient: false,
        })
    }

    /// Stores an attempt; returns its number, or 0 when storing failed, which is logged and
    /// does not change the outcome of the attempt.
    async fn record_attempt(
        &self,
        engine: &Arc<Engine>,
        delivery: &Delivery,
        attempt: &DeliveryAttempt,
    ) -> u32 {
        let (summary, row) = (delivery.clone(), attempt.clone());
        let stored = steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
            tx.webhooks_mut().record_delivery_attempt(&summary, &row)
        })
        .await;
        match stored {
            Ok(number) => number,
            Err(error) => {
                tracing::error!(delivery = %delivery.id, %error, "recording a webhook attempt failed");
                0
            }
        }
    }
}

/// Runs the jobs of kind [`WEBHOOK_JOB`].
pub(crate) struct DeliveryHandler {
    pub webhooks: Arc<Webhooks>,
}

impl JobHandler for DeliveryHandler {
    fn run<'a>(
        &'a self,
        engine: &'a Arc<Engine>,
        job: &'a Job,
    ) -> BoxFuture<'a, Result<Value, EngineError>> {
        Box::pin(self.webhooks.deliver(engine, job))
    }
}
