//! `steward sync odoo` and `steward odoo-replay`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::StoreArgs;
use crate::commands::open_engine;

#[derive(clap::Args)]
pub struct OdooArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Base URL of the Odoo server, such as https://erp.example.com.
    #[arg(long, env = "STEWARD_ODOO_URL")]
    url: String,
    /// Odoo database name.
    #[arg(long, env = "STEWARD_ODOO_DB")]
    db: String,
    /// Login of the Odoo user to read as.
    #[arg(long, env = "STEWARD_ODOO_LOGIN")]
    login: String,
    /// Password or API key of that user.
    #[arg(long, env = "STEWARD_ODOO_PASSWORD", hide_env_values = true)]
    password: String,
    /// Read every record instead of those changed since the last sync.
    #[arg(long)]
    full: bool,
    /// Longest wait for one Odoo request, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum SyncCommand {
    /// Mirror an Odoo 17 firm over its JSON-RPC API: partners, people, calendars, leaves,
    /// services, sale orders as deals and contracts, projects, tasks, milestones, timesheets,
    /// expenses and invoices.
    Odoo(OdooArgs),
}

pub async fn sync(command: SyncCommand) -> anyhow::Result<ExitCode> {
    let SyncCommand::Odoo(args) = command;
    let config = steward_odoo::OdooConfig {
        url: args.url.clone(),
        db: args.db.clone(),
        login: args.login.clone(),
        password: args.password.clone(),
    };
    let options = steward_odoo::SyncOptions {
        full: args.full,
        ..steward_odoo::SyncOptions::default()
    };
    let timeouts = steward_odoo::Timeouts {
        request: std::time::Duration::from_secs(args.timeout.max(1)),
        ..steward_odoo::Timeouts::default()
    };
    let client = steward_odoo::OdooClient::with_timeouts(config, timeouts)
        .with_context(|| format!("cannot set up a client for {}", args.url))?;
    // Log in before opening the database, so that a wrong URL, database or login leaves no
    // new empty database behind.
    client
        .authenticate()
        .await
        .with_context(|| format!("the sync from {} failed", args.url))?;
    let new_database = !args.store.database.exists();
    let engine = open_engine(&args.store).await?;
    let report = match steward_odoo::sync_with_client(&engine, &client, &options).await {
        Ok(report) => report,
        Err(error) => {
            if new_database {
                remove_if_empty(engine, &args.store.database).await;
            }
            return Err(error).with_context(|| format!("the sync from {} failed", args.url));
        }
    };
    engine.drain().await?;
    let controls = engine.run_controls().await?;
    engine.drain().await?;
    let not_handed_off = deals_without_template(&engine).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "sync": report,
                "controls": controls,
                "not_handed_off": not_handed_off,
            }))?
        );
    } else {
        print_report(&report);
        if !not_handed_off.is_empty() {
            println!(
                "{} won deals were not handed off to delivery:",
                not_handed_off.len()
            );
            for finding in &not_handed_off {
                println!("  {}", finding.message);
            }
        }
        let open: usize = controls.open.values().sum();
        println!(
            "controls: {open} open findings ({} new); list them with `steward findings`",
            controls.opened
        );
    }
    let failed: usize = report.models.iter().map(|m| m.failed.len()).sum();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Removes the database that this run created when the failed sync wrote no event into it,
/// so that the next attempt starts as the first did. A database with events is kept: the next
/// sync continues from what it holds.
async fn remove_if_empty(engine: std::sync::Arc<steward_engine::Engine>, database: &Path) {
    let store = engine.store().clone();
    let events = steward_store::read_async(store, |tx| tx.count_events()).await;
    drop(engine);
    match events {
        Ok(0) => {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let path = PathBuf::from(format!("{}{suffix}", database.display()));
                if let Err(error) = std::fs::remove_file(&path)
                    && error.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), %error,
                        "cannot remove the database the failed sync created");
                }
            }
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(database = %database.display(), %error,
                "cannot check whether the failed sync wrote anything; the database is kept");
        }
    }
}

/// Returns the open `handoff_no_template` findings: won deals that got no project because no
/// template covers their service line, so that the sync reports them itself.
async fn deals_without_template(
    engine: &steward_engine::Engine,
) -> anyhow::Result<Vec<steward_domain::finding::Finding>> {
    let mut query = steward_store::FindingQuery {
        state: Some("open".into()),
        control: Some(steward_domain::controls::HANDOFF_NO_TEMPLATE.into()),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    let mut found = Vec::new();
    loop {
        let page_query = query.clone();
        let page =
            steward_store::read_async(engine.store().clone(), move |tx| tx.findings(&page_query))
                .await?;
        found.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => return Ok(found),
        }
    }
}

fn print_report(report: &steward_odoo::SyncReport) {
    println!(
        "{:<28} {:>6} {:>8} {:>8} {:>10} {:>8} {:>7}",
        "model", "read", "created", "updated", "unchanged", "skipped", "failed"
    );
    for model in &report.models {
        println!(
            "{:<28} {:>6} {:>8} {:>8} {:>10} {:>8} {:>7}",
            model.model,
            model.read,
            model.created,
            model.updated,
            model.unchanged,
            model.skipped,
            model.failed.len()
        );
        for failure in &model.failed {
            println!("  {} {}: {}", failure.model, failure.id, failure.error);
        }
    }
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Folder of captured Odoo 17 JSON-RPC exchanges, such as ../shared/data/odoo17-jsonrpc.
    #[arg(long)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8069")]
    listen: SocketAddr,
}

/// Serves captured Odoo answers on loopback, so the sync can be tried without an Odoo server.
pub async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    // The capture is read before the banner, so a wrong folder fails without claiming to serve.
    let replay = steward_odoo_replay::Replay::load(&args.data)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| crate::serve::listen_error(args.listen, error))?;
    eprintln!(
        "answering Odoo JSON-RPC from {} on http://{} (database steward_demo, login admin, password admin)",
        args.data.display(),
        listener.local_addr()?
    );
    replay.serve(listener).await?;
    Ok(ExitCode::SUCCESS)
}
