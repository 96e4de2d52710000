//! The handoff of deals synced from Odoo when no project template covers them: the sync says
//! which deals got no project and why, nothing goes to the dead-letter queue, and installing a
//! template later hands the deals off.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, all, shared_data, steward};

/// Runs the sync with info logs and returns its exit code, stdout and stderr.
fn sync(odoo: &str, database: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["sync", "odoo", "--url", odoo, "--db", "steward_demo"])
        .args([
            "--login",
            "admin",
            "--password",
            "admin",
            "--database",
            database,
        ])
        .env("STEWARD_LOG", "info")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Returns the `open=` and `new=` numbers of the last "controls ran" log line.
fn controls_log(stderr: &str) -> (String, String) {
    let line = stderr
        .lines()
        .rfind(|line| line.contains("controls ran"))
        .unwrap_or_else(|| panic!("no controls log line in {stderr}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_string()
    };
    (field("open="), field("new="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncovered_deals_are_reported_not_dead() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();

    // Without a rules folder no template exists: S00004 and S00020 have no Odoo project.
    for run in ["first", "second"] {
        let (code, stdout, stderr) = sync(&odoo, &database);
        assert_eq!(code, 0, "{run} sync: {stderr}");
        assert!(
            stdout.contains("2 won deals were not handed off to delivery:"),
            "{run} sync: {stdout}"
        );
        for deal in ["S00004", "S00020"] {
            let expected = format!(
                "  Deal {deal} has no project because no project template covers its service line `(none)`"
            );
            assert!(stdout.contains(&expected), "{run} sync: {stdout}");
        }
        // The log line and the summary state the same numbers.
        let (open, new) = controls_log(&stderr);
        let summary = format!("controls: {open} open findings ({new} new)");
        assert!(
            stdout.contains(&summary),
            "{run} sync: {summary} in {stdout}"
        );
    }

    let (code, stdout, stderr) = steward(&["dead-letters", "list", "--database", &database]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("0 dead letters"), "{stdout}");
    let (_, stdout, _) = steward(&[
        "findings",
        "--control",
        "handoff_no_template",
        "--database",
        &database,
    ]);
    assert!(stdout.contains("2 open findings"), "{stdout}");

    // A default template installed later hands both deals off.
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("templates.yaml"),
        "templates:\n  - service_line: Consulting\n    default: true\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--rules", rules.to_str().unwrap()]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let projects = all(&server, "projects").await;
        let handed_off: Vec<&str> = projects
            .iter()
            .filter(|p| p["opportunity"].is_string() && p["name"].is_string())
            .filter_map(|p| p["name"].as_str())
            .filter(|name| name.contains("S00004") || name.contains("S00020"))
            .collect();
        if handed_off.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deals were not handed off after the template was installed: {projects:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = all(&server, "dead-letters").await;
    assert!(dead.is_empty(), "{dead:?}");
}
