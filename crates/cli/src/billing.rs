//! `steward billing`: readiness, drafts, reconciliation and the Odoo quantity comparison.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use steward_domain::{Actor, CommandContext, DomainError};
use steward_engine::billing::{BillingPeriod, DraftOutcome, Selection};

use crate::ExistingStoreArgs;
use crate::commands::open_engine;

#[derive(clap::Args)]
pub struct BillingArgs {
    #[command(flatten)]
    store: ExistingStoreArgs,
    /// Billing month as YYYY-MM; the current month when unset.
    #[arg(long)]
    period: Option<String>,
    /// Only this contract, by id or reference (such as an Odoo sale order number); every
    /// active or closed contract when unset.
    #[arg(long)]
    contract: Option<String>,
    /// Folder of rule files whose `billing` section (tax table, rounding) to install first.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    store: ExistingStoreArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Accepted only to reject it with the reason the comparison has no period.
    #[arg(long, hide = true)]
    period: Option<String>,
}

/// The reason `compare-odoo` takes no `--period`.
const COMPARE_ALL_TIME: &str = "Odoo keeps qty_delivered and qty_invoiced on each sale order \
    line as totals to date, not per month, so the comparison covers all time";

#[derive(Subcommand)]
pub enum BillingCommand {
    /// Show whether each contract can be invoiced for the month, and every reason why not.
    Readiness(BillingArgs),
    /// Write draft invoices for the ready contracts; a second run bills nothing twice.
    Draft(BillingArgs),
    /// List every billable item of the month with how it was billed, or why it was not.
    Reconcile(BillingArgs),
    /// Compare delivered and invoiced quantities with Odoo's on lines synced from Odoo.
    ///
    /// The comparison covers all time and takes no --period: Odoo keeps qty_delivered and
    /// qty_invoiced on each sale order line as totals to date, not per month. Steward's side
    /// matches them with all the line's time entries that are not rejected and all its
    /// released or paid invoice lines, net of credit notes.
    CompareOdoo(CompareArgs),
}

pub async fn billing(command: BillingCommand) -> anyhow::Result<ExitCode> {
    match command {
        BillingCommand::Readiness(args) => readiness(args).await,
        BillingCommand::Draft(args) => draft(args).await,
        BillingCommand::Reconcile(args) => reconcile(args).await,
        BillingCommand::CompareOdoo(args) => compare_odoo(args).await,
    }
}

async fn prepare(
    args: &BillingArgs,
) -> anyhow::Result<(std::sync::Arc<steward_engine::Engine>, Selection)> {
    if let Some(dir) = &args.rules {
        crate::serve::check_rules_folder(dir)?;
    }
    let engine = open_existing(&args.store).await?;
    if let Some(dir) = &args.rules {
        let settings = steward_billing::settings::load_dir(dir).map_err(|diagnostics| {
            crate::serve::folder_errors("the billing section in {} has errors", dir, &diagnostics)
        })?;
        engine.install_billing_settings(settings).await?;
    }
    let period = match &args.period {
        Some(text) => BillingPeriod::parse(text)?,
        None => BillingPeriod::of(engine.clock().now().date_naive()),
    };
    let contract = match &args.contract {
        Some(key) => Some(find_contract(&engine, key).await?),
        None => None,
    };
    Ok((engine, Selection { period, contract }))
}

/// Finds the contract that a `--contract` id or reference names and returns its id. The
/// error for an unknown key lists where contract ids and references are shown.
async fn find_contract(engine: &steward_engine::Engine, key: &str) -> anyhow::Result<String> {
    let owned = key.to_string();
    let found = steward_store::read_async(engine.store().clone(), move |tx| {
        match steward_engine::billing::find_contract(tx, &owned) {
            Ok(contract) => Ok(Ok(contract.id)),
            Err(steward_engine::EngineError::Store(error)) => Err(error),
            Err(other) => Ok(Err(other)),
        }
    })
    .await?;
    match found {
        Ok(id) => Ok(id),
        Err(steward_engine::EngineError::Domain(DomainError::NotFound { .. })) => {
            anyhow::bail!(
                "no contract has the id or reference {key}; pass a contract id or its \
                 reference (such as an Odoo sale order number), as `steward billing readiness` \
                 lists them without --contract, or as GET /api/v1/contracts returns them"
            )
        }
        Err(other) => Err(other.into()),
    }
}

/// Returns how the text output names a contract: its reference followed by its id in
/// parentheses, or its id alone, so that either can be passed to `--contract`.
fn label(id: &str, reference: Option<&str>) -> String {
    match reference {
        Some(reference) => format!("{reference} ({id})"),
        None => id.to_string(),
    }
}

fn money(amount: &Option<steward_domain::Money>) -> String {
    amount.map_or_else(|| "-".into(), |m| m.to_string())
}

async fn readiness(args: BillingArgs) -> anyhow::Result<ExitCode> {
    let (engine, selection) = prepare(&args).await?;
    let report = engine.billing_readiness(selection).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for contract in &report {
        let verdict = if contract.ready { "ready" } else { "blocked" };
        println!(
            "{} {}: {verdict}, untaxed {}",
            label(&contract.contract, contract.reference.as_deref()),
            contract.period,
            money(&contract.untaxed)
        );
        if let Some(invoice) = &contract.draft_invoice {
            println!("  draft invoice {invoice} is already written for this month");
        }
        for issue in &contract.blockers {
            println!(
                "  blocker {}: {} (fix: {})",
                issue.code, issue.message, issue.fix
            );
        }
        for issue in &contract.warnings {
            println!("  warning {}: {}", issue.code, issue.message);
        }
    }
    let ready = report.iter().filter(|c| c.ready).count();
    println!("{ready} ready, {} blocked", report.len() - ready);
    Ok(ExitCode::SUCCESS)
}

async fn draft(args: BillingArgs) -> anyhow::Result<ExitCode> {
    let (engine, selection) = prepare(&args).await?;
    let context = CommandContext::new(Actor::system("billing"));
    let report = engine.draft_invoices(selection, context).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for outcome in &report.outcomes {
        match outcome {
            DraftOutcome::Created(d) | DraftOutcome::Existing(d) => {
                let verb = if matches!(outcome, DraftOutcome::Created(_)) {
                    "drafted"
                } else {
                    "already drafted"
                };
                println!(
                    "{} {verb}: invoice {}, untaxed {}, tax {}, total {}",
                    label(&d.contract, d.reference.as_deref()),
                    d.invoice,
                    money(&d.untaxed),
                    money(&d.tax),
                    money(&d.total)
                );
            }
            DraftOutcome::Blocked(v) => {
                let codes: Vec<&str> = v.blockers.iter().map(|b| b.code.as_str()).collect();
                println!(
                    "{} blocked: {}",
                    label(&v.contract, v.reference.as_deref()),
                    codes.join(", ")
                );
            }
        }
    }
    println!(
        "{} drafted, {} already drafted, {} blocked for {}",
        report.created, report.existing, report.blocked, report.period
    );
    Ok(ExitCode::SUCCESS)
}

async fn reconcile(args: BillingArgs) -> anyhow::Result<ExitCode> {
    let (engine, selection) = prepare(&args).await?;
    let report = engine.billing_reconciliation(selection).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_contract_summaries(&report.contracts);
    for contract in &report.contracts {
        for entry in contract.open_entries() {
            println!(
                "{} {} {}: {} ({})",
                label(&contract.contract, contract.reference.as_deref()),
                entry.source.kind,
                entry.source.id,
                entry.status,
                entry.reason
            );
        }
    }
    for (status, count) in &report.statuses {
        println!("{status}: {count}");
    }
    let verdict = if report.reconciled {
        "every item is settled"
    } else {
        "some items need attention"
    };
    println!("{}: {verdict}", report.period);
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per contract: whether it is reconciled and its entries counted by status,
/// followed by a blank line when there is any contract.
fn print_contract_summaries(contracts: &[steward_billing::reconcile::Reconciliation]) {
    for contract in contracts {
        let mut counts = std::collections::BTreeMap::new();
        for entry in &contract.entries {
            *counts.entry(entry.status).or_insert(0_usize) += 1;
        }
        let counts: Vec<String> = counts
            .iter()
            .map(|(status, count)| format!("{status} {count}"))
            .collect();
        let counts = if counts.is_empty() {
            "no items".to_string()
        } else {
            counts.join(", ")
        };
        let verdict = if contract.is_reconciled() {
            "reconciled"
        } else {
            "not reconciled"
        };
        println!(
            "{}: {verdict} ({counts})",
            label(&contract.contract, contract.reference.as_deref())
        );
    }
    if !contracts.is_empty() {
        println!();
    }
}

async fn compare_odoo(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(period) = &args.period {
        anyhow::bail!(
            "compare-odoo takes no --period ({period}): {COMPARE_ALL_TIME}; drop --period, and \
             use `steward billing reconcile --period {period}` for one month"
        );
    }
    let engine = open_existing(&args.store).await?;
    let rows = engine
        .compare_odoo()
        .await
        .context("cannot compare the quantities with Odoo's")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text =
        |d: Option<rust_decimal::Decimal>| d.map_or("-".into(), |d| d.normalize().to_string());
    for row in &rows {
        println!(
            "{} line {} {}: delivered {} (Odoo {}), invoiced {} (Odoo {})",
            row.order.as_deref().unwrap_or(&row.contract),
            row.odoo_line,
            row.name,
            row.steward_delivered.normalize(),
            text(row.odoo_delivered),
            row.steward_invoiced.normalize(),
            text(row.odoo_invoiced)
        );
        println!("  delivered: {}", row.delivered_explanation);
        println!("  invoiced: {}", row.invoiced_explanation);
    }
    let invoiced = rows.iter().filter(|r| r.invoiced_in_odoo).count();
    println!(
        "{} lines synced from Odoo, {invoiced} of them invoiced in Odoo",
        rows.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the database of a billing command, which only ever works on a firm already loaded.
async fn open_existing(
    store: &ExistingStoreArgs,
) -> anyhow::Result<std::sync::Arc<steward_engine::Engine>> {
    open_engine(&store.existing()?).await
}
