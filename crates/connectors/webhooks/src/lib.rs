//! Outbound and inbound webhooks, and the HTTP client of `http` rule actions.
//!
//! - [`HttpClient`] makes the calls of `http` actions for the engine.
//! - Outbound: rule actions `webhook: {endpoint, event, data}` queue delivery jobs; this crate
//!   runs them, signed with the Standard Webhooks scheme, records every attempt, and serves
//!   endpoint health. The engine retries failed attempts and keeps dead ones for replay.
//! - Inbound: endpoints at `/hooks/<id>` verify each delivery (signature, HMAC or URL
//!   token), drop repeats by idempotency key, map the payload to one command and apply it
//!   with its receipt in one transaction.
//!
//! Secrets are sealed with a [`SecretKey`] before they reach the store. [`install`] wires
//! everything into an engine.

mod client;
mod error;
pub mod inbound;
pub mod mapping;
pub mod metric_names;
pub mod outbound;
pub mod secrets;
pub mod signature;

use std::sync::{Arc, Weak};

use chrono::Duration;
use serde_json::json;
use steward_engine::Engine;
use steward_engine::pipeline::WEBHOOK_JOB;
use steward_store::StoreError;
use steward_store::webhooks::Purged;

pub use client::{AGENT, HttpClient};
pub use error::WebhookError;
pub use inbound::{Delivered, InboundConfig, InboundResponse, Rejection};
pub use outbound::{IntegrationHealth, OutboundChange, OutboundRequest};
pub use secrets::{KeySource, SecretKey};

/// Settings of the webhook service.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Seals and opens the endpoints' secrets.
    pub key: SecretKey,
    /// How long attempts, finished deliveries and rejections are kept.
    pub history: Duration,
    /// How often expired idempotency keys and old history are purged.
    pub purge_interval: std::time::Duration,
}

impl WebhookOptions {
    pub fn new(key: SecretKey) -> WebhookOptions {
        WebhookOptions {
            key,
            history: Duration::days(30),
            purge_interval: std::time::Duration::from_secs(3600),
        }
    }
}

/// The webhook service: endpoint management, deliveries and the inbound receiver. It keeps
/// no engine, so the engine can keep its delivery handler without a reference cycle.
pub struct Webhooks {
    pub(crate) key: SecretKey,
    /// Sends deliveries without following redirects, so a redirect is a failed attempt.
    pub(crate) delivery_client: reqwest::Client,
    options: WebhookOptions,
}

/// Wires webhooks into `engine`: the HTTP client of `http` actions, the handler of delivery
/// jobs, and, inside a Tokio runtime, the hourly purge of expired keys and old history.
pub fn install(
    engine: &Arc<Engine>,
    options: WebhookOptions,
) -> Result<Arc<Webhooks>, WebhookError> {
    engine.set_outbound(Arc::new(HttpClient::new()?));
    let webhooks = Arc::new(Webhooks::new(options)?);
    engine.register_handler(
        WEBHOOK_JOB,
        Arc::new(outbound::DeliveryHandler {
            webhooks: Arc::clone(&webhooks),
        }),
    );
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(housekeeping(Arc::downgrade(engine), Arc::clone(&webhooks)));
    }
    Ok(webhooks)
}

/// Purges on every interval until the engine is dropped.
async fn housekeeping(engine: Weak<Engine>, webhooks: Arc<Webhooks>) {
    let mut interval = tokio::time::interval(webhooks.options.purge_interval);
    loop {
        interval.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if let Err(error) = webhooks.purge(&engine).await {
            tracing::error!(%error, "purging webhook history failed; the next run retries");
        }
    }
}

impl Webhooks {
    pub fn new(options: WebhookOptions) -> Result<Webhooks, WebhookError> {
        Ok(Webhooks {
            key: options.key.clone(),
            delivery_client: client::build_client(false)?,
            options,
        })
    }

    /// Deletes expired idempotency keys, and attempts, finished deliveries and rejections
    /// older than the history period.
    pub async fn purge(&self, engine: &Arc<Engine>) -> Result<Purged, WebhookError> {
        let now = engine.clock().now();
        let before = now - self.options.history;
        let purged = steward_store::write::<_, StoreError, _>(engine.store().as_ref(), move |tx| {
            tx.webhooks_mut().purge_webhook_history(now, before)
        })
        .await?;
        if purged != Purged::default() {
            tracing::info!(
                receipts = purged.receipts,
                rejections = purged.rejections,
                attempts = purged.attempts,
                deliveries = purged.deliveries,
                "purged webhook history"
            );
        }
        Ok(purged)
    }

    /// Reads the health of every webhook endpoint, outbound first, each over the last 24
    /// hours.
    pub async fn integrations_health(
        &self,
        engine: &Arc<Engine>,
    ) -> Result<Vec<IntegrationHealth>, WebhookError> {
        let since =
            engine.clock().now() - Duration::hours(i64::from(outbound::HEALTH_WINDOW_HOURS));
        let (outbound, inbound) = steward_store::read_async(engine.store().clone(), move |tx| {
            let webhooks = tx.webhooks();
            let mut outbound = Vec::new();
            for endpoint in webhooks.outbound_endpoints()? {
                let health = webhooks.outbound_health(&endpoint.id, since)?;
                outbound.push((endpoint, health));
            }
            let mut inbound = Vec::new();
            for endpoint in webhooks.inbound_endpoints()? {
                let health = webhooks.inbound_health(&endpoint.id, since)?;
                inbound.push((endpoint, health));
            }
            Ok((outbound, inbound))
        })
        .await?;
        let mut list = Vec::new();
        for (endpoint, health) in outbound {
            list.push(IntegrationHealth {
                integration: "webhook_out",
                status: outbound::outbound_status(endpoint.enabled, &health),
                id: endpoint.id,
                enabled: endpoint.enabled,
                window_hours: outbound::HEALTH_WINDOW_HOURS,
                figures: serde_json::to_value(&health).unwrap_or(json!({})),
            });
        }
        for (endpoint, health) in inbound {
            let rejecting = match (health.last_rejected_at, health.last_accepted_at) {
                (Some(rejected), Some(accepted)) => rejected > accepted,
                (Some(_), None) => true,
                _ => false,
            };
            let status = if !endpoint.enabled {
                "disabled"
            } else if health.accepted + health.rejected == 0 {
                "idle"
            } else if rejecting {
                "rejecting"
            } else {
                "healthy"
            };
            list.push(IntegrationHealth {
                integration: "webhook_in",
                status,
                id: endpoint.id,
                enabled: endpoint.enabled,
                window_hours: outbound::HEALTH_WINDOW_HOURS,
                figures: serde_json::to_value(&health).unwrap_or(json!({})),
            });
        }
        Ok(list)
    }
}

/// Checks an endpoint id: 1 to 63 lower-case letters, digits and hyphens, starting with a
/// letter or digit.
pub fn validate_id(id: &str) -> Result<(), WebhookError> {
    let valid = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(WebhookError::field(
            "id",
            &json!(id),
            "is not a valid endpoint id; use 1 to 63 lower-case letters, digits and hyphens, \
             starting with a letter or digit, such as `odoo-tasks`",
        ))
    }
}
