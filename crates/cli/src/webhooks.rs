//! `steward webhooks`: outbound and inbound endpoints, deliveries, resends and health, on the
//! database directly; and the wiring of webhooks into `steward serve`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use steward_engine::Engine;
use steward_store::webhooks::{DeliveryQuery, DeliveryState, RejectionQuery};
use steward_webhooks::{
    InboundConfig, KeySource, OutboundChange, OutboundRequest, SecretKey, WebhookOptions, Webhooks,
};

use crate::StoreArgs;

/// Loads the secret key of `database` and wires webhooks into `engine`: the HTTP client of
/// `http` actions, the delivery handler and the history purge.
pub fn install(engine: &Arc<Engine>, database: &Path) -> anyhow::Result<Arc<Webhooks>> {
    let key = load_key(database)?;
    Ok(steward_webhooks::install(engine, WebhookOptions::new(key))?)
}

fn load_key(database: &Path) -> anyhow::Result<SecretKey> {
    let (key, source) = SecretKey::for_database(database)?;
    match source {
        KeySource::Environment => {
            tracing::info!("webhook secrets are sealed with the key in STEWARD_SECRET_KEY")
        }
        KeySource::File {
            path,
            created: true,
        } => tracing::info!(
            file = %path.display(),
            "created the key that seals webhook secrets; back it up with the database"
        ),
        KeySource::File {
            path,
            created: false,
        } => {
            tracing::debug!(file = %path.display(), "webhook secrets are sealed with the key file")
        }
    }
    Ok(key)
}

async fn open(store: &StoreArgs) -> anyhow::Result<(Arc<Engine>, Webhooks)> {
    let engine = crate::commands::open_engine(store).await?;
    let key = load_key(&store.database)?;
    Ok((engine, Webhooks::new(WebhookOptions::new(key))?))
}

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Manage the endpoints Steward sends signed webhooks to.
    Outbound {
        #[command(subcommand)]
        command: OutboundCommand,
    },
    /// Manage the endpoints other systems post to at /hooks/<id>.
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// List outbound deliveries, newest first.
    Deliveries {
        #[command(flatten)]
        store: StoreArgs,
        /// Only deliveries to this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// Only deliveries in this state: succeeded, retrying, dead or skipped.
        #[arg(long)]
        state: Option<String>,
        /// Most deliveries listed.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Queue a delivery again as a new delivery with a new id. To retry a dead delivery
    /// with its own id, replay its job with `steward dead-letters replay`.
    Resend {
        #[command(flatten)]
        store: StoreArgs,
        /// The delivery id (the `webhook-id` header).
        delivery: String,
    },
    /// Show the health of every webhook endpoint over the last 24 hours.
    Health {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OutboundCommand {
    /// Create an endpoint and print its signing secret, which is shown only once.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// A lower-case slug such as `billing-n8n`.
        id: String,
        /// The receiver's http or https URL.
        #[arg(long)]
        url: String,
        /// Comma-separated event names the endpoint accepts; every event when absent.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// How long one attempt may take, in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        #[arg(long)]
        description: Option<String>,
        /// Create it disabled: deliveries to it fail until it is enabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List the endpoints; secrets are never shown.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Change an endpoint.
    Update {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Comma-separated event names the endpoint accepts.
        #[arg(long, value_delimiter = ',', conflicts_with = "all_events")]
        events: Option<Vec<String>>,
        /// Accept every event.
        #[arg(long)]
        all_events: bool,
        /// `true` or `false`.
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Replace the signing secret and print the new one, which is shown only once.
    RotateSecret {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Delete an endpoint; its delivery history stays.
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Show one endpoint's health over the last 24 hours.
    Health {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
}

#[derive(Subcommand)]
pub enum InboundCommand {
    /// Create an endpoint from a JSON or YAML file (verification, idempotency, mapping,
    /// synchronous) and print its secret, which is shown only once.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// A lower-case slug such as `odoo-tasks`; senders post to /hooks/<id>.
        id: String,
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The sender's secret, when the sender chose it; generated when absent.
        #[arg(long, env = "STEWARD_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long)]
        disabled: bool,
    },
    /// List the endpoints; secrets are never shown.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Change an endpoint: keys in the file replace the stored ones.
    Update {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// `true` or `false`.
        #[arg(long)]
        enabled: Option<bool>,
    },
    /// Replace the secret or URL token and print the new one, which is shown only once.
    RotateSecret {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Delete an endpoint and its idempotency keys; its rejections stay.
    Remove {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// List rejected deliveries with their reasons, newest first.
    Rejections {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

fn read_config(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    InboundConfig::parse_text(&text)
        .with_context(|| format!("in the configuration file {}", path.display()))
}

fn print_json(value: Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

pub async fn webhooks(command: WebhooksCommand) -> anyhow::Result<ExitCode> {
    match command {
        WebhooksCommand::Outbound { command } => outbound(command).await,
        WebhooksCommand::Inbound { command } => inbound(command).await,
        WebhooksCommand::Deliveries {
            store,
            endpoint,
            state,
            limit,
            json,
        } => {
            let (engine, _) = open(&store).await?;
            let state = state
                .map(|s| {
                    DeliveryState::parse(&s).with_context(|| {
                        format!("`{s}` is not a delivery state; use succeeded, retrying, dead or skipped")
                    })
                })
                .transpose()?;
            let query = DeliveryQuery {
                limit,
                endpoint,
                state,
                ..Default::default()
            };
            let page = steward_store::read_async(engine.store().clone(), move |tx| {
                tx.webhooks().deliveries(&query)
            })
            .await?;
            if json {
                return print_json(serde_json::to_value(&page.items)?).map(|()| ExitCode::SUCCESS);
            }
            for d in &page.items {
                let status = d.last_status.map_or("-".to_string(), |s| s.to_string());
                println!(
                    "{}  {:<20} {:<24} {:<9} attempts {:<2} status {:<4} {}",
                    d.id,
                    d.endpoint,
                    d.event,
                    d.state.as_str(),
                    d.attempts,
                    status,
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhooksCommand::Resend { store, delivery } => {
            let (engine, webhooks) = open(&store).await?;
            let resent = webhooks.resend(&engine, &delivery).await?;
            println!(
                "queued delivery {} (a resend of {}); a running server sends it",
                resent.delivery, resent.resent_from
            );
            Ok(ExitCode::SUCCESS)
        }
        WebhooksCommand::Health { store, json } => {
            let (engine, webhooks) = open(&store).await?;
            let health = webhooks.integrations_health(&engine).await?;
            if json {
                return print_json(serde_json::to_value(&health)?).map(|()| ExitCode::SUCCESS);
            }
            for item in &health {
                println!(
                    "{:<11} {:<24} {:<9} {}",
                    item.integration, item.id, item.status, item.figures
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn outbound(command: OutboundCommand) -> anyhow::Result<ExitCode> {
    match command {
        OutboundCommand::Add {
            store,
            id,
            url,
            events,
            timeout_ms,
            description,
            disabled,
        } => {
            let (engine, webhooks) = open(&store).await?;
            let request = OutboundRequest {
                id,
                url,
                enabled: Some(!disabled),
                events,
                timeout_ms,
                description,
            };
            let created = webhooks.create_outbound(&engine, request).await?;
            println!("created outbound endpoint {}", created.endpoint.id);
            println!(
                "signing secret (shown once, store it now): {}",
                created.secret
            );
        }
        OutboundCommand::List { store, json } => {
            let (engine, _) = open(&store).await?;
            let endpoints = steward_store::read_async(engine.store().clone(), |tx| {
                tx.webhooks().outbound_endpoints()
            })
            .await?;
            if json {
                return print_json(serde_json::to_value(&endpoints)?).map(|()| ExitCode::SUCCESS);
            }
            for e in &endpoints {
                let events = e
                    .events
                    .as_ref()
                    .map_or("every event".into(), |v| v.join(","));
                let state = if e.enabled { "enabled" } else { "disabled" };
                println!("{:<24} {:<8} {}  ({events})", e.id, state, e.url);
            }
        }
        OutboundCommand::Update {
            store,
            id,
            url,
            events,
            all_events,
            enabled,
            timeout_ms,
        } => {
            let (engine, webhooks) = open(&store).await?;
            let change = OutboundChange {
                url,
                enabled,
                events: if all_events {
                    Some(None)
                } else {
                    events.map(Some)
                },
                timeout_ms,
                description: None,
            };
            let endpoint = webhooks.update_outbound(&engine, &id, change).await?;
            print_json(serde_json::to_value(&endpoint)?)?;
        }
        OutboundCommand::RotateSecret { store, id } => {
            let (engine, webhooks) = open(&store).await?;
            let rotated = webhooks.rotate_outbound_secret(&engine, &id).await?;
            println!(
                "new signing secret of {id} (shown once): {}",
                rotated.secret
            );
        }
        OutboundCommand::Remove { store, id } => {
            let (engine, webhooks) = open(&store).await?;
            webhooks.delete_outbound(&engine, &id).await?;
            println!("deleted outbound endpoint {id}");
        }
        OutboundCommand::Health { store, id } => {
            let (engine, webhooks) = open(&store).await?;
            print_json(serde_json::to_value(
                &webhooks.outbound_health(&engine, &id).await?,
            )?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn inbound(command: InboundCommand) -> anyhow::Result<ExitCode> {
    match command {
        InboundCommand::Add {
            store,
            id,
            config,
            secret,
            disabled,
        } => {
            let (engine, webhooks) = open(&store).await?;
            let mut request = read_config(&config)?;
            let Some(fields) = request.as_object_mut() else {
                anyhow::bail!(
                    "{} is not a mapping of keys such as `verification: token`; see the README for an \
                     example",
                    config.display()
                );
            };
            fields.insert("id".into(), json!(id));
            fields.insert("enabled".into(), json!(!disabled));
            if let Some(secret) = secret {
                fields.insert("secret".into(), json!(secret));
            }
            let created = webhooks.create_inbound(&engine, request).await?;
            println!("created inbound endpoint {}", created.endpoint.id);
            match &created.url_path {
                Some(path) => println!("senders post to (shown once, store it now): {path}"),
                None => {
                    println!("senders post to: {}", created.endpoint.path);
                    println!("secret (shown once, store it now): {}", created.secret);
                }
            }
        }
        InboundCommand::List { store, json } => {
            let (engine, _) = open(&store).await?;
            let endpoints = steward_store::read_async(engine.store().clone(), |tx| {
                tx.webhooks().inbound_endpoints()
            })
            .await?;
            let views: Vec<_> = endpoints
                .iter()
                .map(steward_webhooks::inbound::InboundView::of)
                .collect();
            if json {
                return print_json(serde_json::to_value(&views)?).map(|()| ExitCode::SUCCESS);
            }
            for v in &views {
                let state = if v.enabled { "enabled" } else { "disabled" };
                let verification = v.config["verification"].as_str().unwrap_or("?");
                println!("{:<24} {:<8} {:<8} {}", v.id, state, verification, v.path);
            }
        }
        InboundCommand::Update {
            store,
            id,
            config,
            enabled,
        } => {
            let (engine, webhooks) = open(&store).await?;
            let mut change = match &config {
                Some(path) => read_config(path)?,
                None => json!({}),
            };
            if let (Some(enabled), Some(fields)) = (enabled, change.as_object_mut()) {
                fields.insert("enabled".into(), json!(enabled));
            }
            print_json(serde_json::to_value(
                &webhooks.update_inbound(&engine, &id, change).await?,
            )?)?;
        }
        InboundCommand::RotateSecret { store, id } => {
            let (engine, webhooks) = open(&store).await?;
            let rotated = webhooks.rotate_inbound_secret(&engine, &id).await?;
            match &rotated.url_path {
                Some(path) => println!("new path of {id} (shown once): {path}"),
                None => println!("new secret of {id} (shown once): {}", rotated.secret),
            }
        }
        InboundCommand::Remove { store, id } => {
            let (engine, webhooks) = open(&store).await?;
            webhooks.delete_inbound(&engine, &id).await?;
            println!("deleted inbound endpoint {id}");
        }
        InboundCommand::Rejections {
            store,
            id,
            limit,
            json,
        } => {
            let (engine, _) = open(&store).await?;
            let query = RejectionQuery {
                limit,
                endpoint: Some(id),
                ..Default::default()
            };
            let page = steward_store::read_async(engine.store().clone(), move |tx| {
                tx.webhooks().inbound_rejections(&query)
            })
            .await?;
            if json {
                return print_json(serde_json::to_value(&page.items)?).map(|()| ExitCode::SUCCESS);
            }
            for r in &page.items {
                println!(
                    "{}  {}  {:<24} {}  {}",
                    r.received_at.format("%Y-%m-%d %H:%M:%S"),
                    r.status,
                    r.reason,
                    r.message,
                    r.id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
