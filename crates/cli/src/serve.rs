//! `steward serve`: the API server and its workers over one database.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use steward_domain::Kind;
use steward_engine::Engine;
use steward_http::AppState;
use tokio::sync::watch;

use crate::StoreArgs;
use steward_engine::EngineConfig;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Address to listen on. Keep it on loopback unless a proxy with TLS is in front.
    #[arg(long, env = "STEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Folder of rule files to install at start; rules removed from it are retired.
    #[arg(long, env = "STEWARD_RULES")]
    rules: Option<PathBuf>,

    /// Fill an empty database with a generated sample firm and the example rules first.
    #[arg(long)]
    demo: bool,

    /// Worker tasks that run jobs.
    #[arg(long, default_value_t = 2)]
    workers: usize,

    /// Run rule actions that touch only Steward's records in the transaction of their event
    /// (`true`), or always through the job queue (`false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    inline_actions: bool,
}

/// The example rules shipped in the repository, installed by `--demo`.
const EXAMPLE_RULES: &[(&str, &str)] = &[
    (
        "rules/examples/approvals.yaml",
        include_str!("../../../rules/examples/approvals.yaml"),
    ),
    (
        "rules/examples/controls.yaml",
        include_str!("../../../rules/examples/controls.yaml"),
    ),
    (
        "rules/examples/expenses.yaml",
        include_str!("../../../rules/examples/expenses.yaml"),
    ),
    (
        "rules/examples/sales.yaml",
        include_str!("../../../rules/examples/sales.yaml"),
    ),
    (
        "rules/examples/time.yaml",
        include_str!("../../../rules/examples/time.yaml"),
    ),
    (
        "rules/examples/templates.yaml",
        include_str!("../../../rules/examples/templates.yaml"),
    ),
    (
        "rules/examples/billing.yaml",
        include_str!("../../../rules/examples/billing.yaml"),
    ),
];

/// Holds an exclusive lock beside the database, so two servers never share one SQLite file.
fn lock_database(database: &Path) -> anyhow::Result<File> {
    if let Some(folder) = database.parent()
        && !folder.as_os_str().is_empty()
        && !folder.is_dir()
    {
        bail!(
            "cannot open database {}: the folder {} does not exist; create it first or choose \
             a database path in an existing folder",
            database.display(),
            folder.display()
        );
    }
    let path = PathBuf::from(format!("{}.lock", database.display()));
    let file = File::create(&path)
        .with_context(|| format!("cannot create the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another steward server is using {}; stop it or pass another --database",
            database.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.rules {
        check_rules_folder(dir)?;
    }
    // The address is taken first, so that a port in use fails before any file is created.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| listen_error(args.listen, error))?;
    let _lock = lock_database(&args.store.database)?;
    let config = EngineConfig {
        inline_jobs: args.inline_actions,
        ..EngineConfig::default()
    };
    let engine = crate::commands::open_engine_with(&args.store, config).await?;
    engine.recover().await?;
    let webhooks = crate::webhooks::install(&engine, &args.store.database)?;

    if let Some(dir) = &args.rules {
        // Every section is checked before any fails, so one start lists all of the folder's
        // problems, as `steward rules check` does.
        let approvals = steward_approvals::load_dir(dir);
        let rules = load_rules(dir, approvals.as_ref().ok());
        let (rules, approvals, settings, billing) = match (
            rules,
            approvals,
            steward_controls::load_dir(dir),
            steward_billing::settings::load_dir(dir),
        ) {
            (Ok(rules), Ok(approvals), Ok(settings), Ok(billing)) => {
                (rules, approvals, settings, billing)
            }
            (rules, approvals, settings, billing) => {
                let mut diagnostics = rules.err().unwrap_or_default();
                diagnostics.extend(approvals.err().unwrap_or_default());
                diagnostics.extend(settings.err().unwrap_or_default());
                diagnostics.extend(billing.err().unwrap_or_default());
                diagnostics.sort();
                diagnostics.dedup();
                return Err(folder_errors(
                    "the rules folder {} has errors",
                    dir,
                    &diagnostics,
                ));
            }
        };
        let changes = engine.install_file_rules(rules).await?;
        for change in changes.iter().filter(|c| c.change != "unchanged") {
            tracing::info!(rule = %change.rule_id, version = change.version, change = change.change, "rule installed");
        }
        for change in engine.install_policies(approvals).await? {
            if change.change != "unchanged" {
                tracing::info!(policy = %change.policy_id, version = change.version, change = change.change, "approval policy installed");
            }
        }
        let origin = Some(dir.display().to_string());
        let change = engine.install_control_settings(settings, origin).await?;
        tracing::info!(
            version = change.version,
            change = change.change,
            "control settings installed"
        );
        let version = engine.install_billing_settings(billing).await?;
        tracing::info!(version, "billing settings installed");
    }

    if args.demo {
        fill_demo(&engine, args.rules.is_none()).await?;
    }
    // The cut-offs and collection times of the settings in force become schedules.
    engine.install_control_schedules().await?;

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let mut state = AppState::new(Arc::clone(&engine));
    state.metrics = Some(Arc::new(move || recorder.render()));
    state.webhooks = Some(webhooks);

    let address = listener.local_addr()?;

    // Only now that the address is ours: a start that fails earlier must not use up the
    // one showing of a generated token.
    let admin = std::env::var("STEWARD_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let given = admin.is_some();
    let generated =
        steward_http::auth::ensure_admin_token(engine.store().clone(), admin, chrono::Utc::now())
            .await
            .map_err(|error| match given {
                true => anyhow::anyhow!("the token in STEWARD_ADMIN_TOKEN is invalid: {error}"),
                false => anyhow::Error::msg(error),
            })?;

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..args.workers.max(1) {
        workers.push(tokio::spawn(
            Arc::clone(&engine).run_worker(stopped.clone()),
        ));
    }
    workers.push(tokio::spawn(
        Arc::clone(&engine).run_scheduler(stopped.clone()),
    ));

    eprintln!(
        "steward is serving {} on http://{address}",
        args.store.database.display()
    );
    eprintln!("  API: http://{address}/api/v1   OpenAPI: http://{address}/api/v1/openapi.json");
    if let Some(secret) = generated {
        eprintln!("  first admin token (shown once, store it now): {secret}");
        eprintln!(
            "  lost it? `steward tokens create <name> --role admin --database <file>` makes another"
        );
    }
    tracing::info!(%address, workers = args.workers, "server started");

    steward_http::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("shutting down: finishing running jobs");
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    tracing::info!("server stopped");
    Ok(ExitCode::SUCCESS)
}

/// Fills an empty database with the sample firm, installs the example rules when no rule
/// folder was given, and runs the controls so that findings are waiting.
async fn fill_demo(engine: &Arc<Engine>, install_examples: bool) -> anyhow::Result<()> {
    if install_examples {
        let sources: Vec<(String, String)> = EXAMPLE_RULES
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        let (rules, diagnostics) = steward_rules::compile_sources(&sources);
        if let Some(first) = diagnostics.first() {
            bail!("the bundled example rules do not compile: {first}");
        }
        let (approvals, diagnostics) = steward_approvals::compile_sources(&sources);
        if let Some(first) = diagnostics.first() {
            bail!("the bundled approval policies do not compile: {first}");
        }
        let (settings, diagnostics) = steward_controls::compile_sources(&sources);
        if let Some(first) = diagnostics.first() {
            bail!("the bundled control settings do not compile: {first}");
        }
        let (billing, diagnostics) = steward_billing::settings::compile_sources(&sources);
        if let Some(first) = diagnostics.first() {
            bail!("the bundled billing settings do not compile: {first}");
        }
        engine.install_file_rules(rules).await?;
        engine.install_policies(approvals).await?;
        engine
            .install_control_settings(settings, Some("rules/examples".into()))
            .await?;
        engine.install_billing_settings(billing).await?;
    }
    let people = steward_store::read_async(engine.store().clone(), |tx| {
        tx.count_records(Kind::Employee, None)
    })
    .await?;
    if people > 0 {
        tracing::info!(
            people,
            "the database already holds a firm; --demo adds nothing"
        );
        return Ok(());
    }
    crate::demo::generate(engine).await?;
    let report = engine.run_controls().await?;
    engine.drain().await?;
    let open: usize = report.open.values().sum();
    eprintln!("demo firm generated; the controls opened {open} findings: GET /api/v1/findings");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// Lists the diagnostics of one section of a rules folder as one error, under `heading`
/// with `{}` in place of the folder, such as "the rules in {} have errors".
/// Loads the rules of a folder. With the folder's approval policies, a role that an
/// `activity` or `notify` action names must be a built-in role or one their authority
/// declares. Without them, because they have errors of their own, roles are not checked.
pub(crate) fn load_rules(
    dir: &std::path::Path,
    approvals: Option<&steward_approvals::ApprovalConfig>,
) -> Result<Vec<steward_rules::Rule>, Vec<steward_rules::Diagnostic>> {
    let Some(approvals) = approvals else {
        return steward_rules::load_dir(dir);
    };
    let mut roles: Vec<String> = steward_domain::roles::BUILT_IN
        .iter()
        .map(|role| role.to_string())
        .collect();
    for role in approvals.authority.roles.keys() {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    steward_rules::load_dir_with_roles(dir, &roles)
}

/// Rejects a `--rules` path that is not a folder, before the folder's sections would each
/// report it as an error of their own, or the database is created for nothing.
pub(crate) fn check_rules_folder(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        bail!(
            "the rules folder {} is a file, not a folder; pass the folder that holds the rule \
             files, such as rules/examples",
            dir.display()
        );
    }
    bail!(
        "the rules folder {} does not exist; pass the folder that holds the rule files, such as \
         rules/examples, or leave out --rules",
        dir.display()
    )
}

pub(crate) fn folder_errors(
    heading: &str,
    dir: &std::path::Path,
    diagnostics: &[steward_rules::Diagnostic],
) -> anyhow::Error {
    let heading = heading.replace("{}", &dir.display().to_string());
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("{heading}:\n{}", lines.join("\n"))
}

/// Explains a failed bind with the usual causes and what to do about each.
pub(crate) fn listen_error(address: std::net::SocketAddr, error: std::io::Error) -> anyhow::Error {
    let fix = match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process already listens there; stop it or choose another address with --listen"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface of this machine has that address; use 127.0.0.1 or one of its own addresses"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need extra privileges; choose a port of 1024 or more with --listen"
        }
        _ => "check the address given with --listen",
    };
    anyhow::anyhow!("cannot listen on {address}: {error}; {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_port_names_the_fix() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = std::net::TcpListener::bind(address).unwrap_err();
        let message = listen_error(address, error).to_string();
        assert!(message.contains(&address.to_string()), "{message}");
        assert!(
            message.contains("choose another address with --listen"),
            "{message}"
        );
    }
}
