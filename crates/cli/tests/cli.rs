//! The one-shot commands, run as a user runs them.

use std::process::Command;

fn steward(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("STEWARD_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn examples() -> String {
    format!("{}/../../rules/examples", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn rules_check_accepts_the_examples() {
    let (code, stdout, stderr) = steward(&["rules", "check", &examples()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("rules in"), "{stdout}");
    assert!(
        stdout.contains("expense-approval: expense entered state submitted"),
        "{stdout}"
    );
    assert!(stdout.contains("5 approval policies are valid"), "{stdout}");
}

#[test]
fn rules_check_reports_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "rules:\n  - id: broken\n    trigger: { on: state, record: expense, state: paid }\n    actions:\n      - update: { fields: { amount: lots } }\n",
    )
    .unwrap();
    let (code, stdout, _) = steward(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let file = dir.path().join("broken.yaml").display().to_string();
    assert!(stdout.contains(&format!("{file}:3:")), "{stdout}");
    assert!(
        stdout.contains("`paid` is not a state of expense; states are draft, submitted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`amount`: `lots` is not a decimal number"),
        "{stdout}"
    );
    assert!(stdout.contains("2 errors"), "{stdout}");
}

#[test]
fn broken_billing_section_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("billing.yaml"),
        "billing:\n  firm_country: IT\n  rounding: per_invoice\n  reverse_charge: maybe\n  \
         taxes:\n    IT: { eu: true, default: twenty }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("controls.yaml"),
        "controls:\n  staffing:\n    bench_below: fifty\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let billing = dir.path().join("billing.yaml").display().to_string();
    let controls = dir.path().join("controls.yaml").display().to_string();
    let expected = [
        format!(
            "{billing}:3:13: `billing.rounding` is `per_invoice`; write per_line or per_document"
        ),
        format!(
            "{billing}:4:19: `billing.reverse_charge` is `maybe`, not a boolean; write true or false"
        ),
        format!("{billing}:6:30: `billing.taxes.IT.default` is `twenty`, not a number"),
        format!("{controls}:3:18: `bench_below` is `fifty`, not a number"),
    ];

    let (code, stdout, _) = steward(&["rules", "check", folder]);
    assert_eq!(code, 1, "{stdout}");
    for line in &expected {
        assert!(
            stdout.contains(line.as_str()),
            "{line} is missing from {stdout}"
        );
    }
    assert!(stdout.contains("4 errors"), "{stdout}");

    // `serve` lists every problem of the folder before it installs anything or listens.
    let database = dir.path().join("firm.db").display().to_string();
    let (code, _, stderr) = steward(&[
        "serve",
        "--rules",
        folder,
        "--database",
        &database,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the rules folder"), "{stderr}");
    for line in &expected {
        assert!(
            stderr.contains(line.as_str()),
            "{line} is missing from {stderr}"
        );
    }

    // The billing commands read the billing section only, and list all of its problems.
    let (code, _, stderr) = steward(&[
        "billing",
        "readiness",
        "--rules",
        folder,
        "--database",
        &database,
    ]);
    assert_eq!(code, 1, "{stderr}");
    for line in &expected[..3] {
        assert!(
            stderr.contains(line.as_str()),
            "{line} is missing from {stderr}"
        );
    }
}

#[test]
fn billing_rejects_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("misspelled.db");
    let path = database.display().to_string();
    for command in ["readiness", "draft", "reconcile", "compare-odoo"] {
        let (code, _, stderr) = steward(&["billing", command, "--database", &path]);
        assert_eq!(code, 1, "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("database {path} not found")),
            "{command}: {stderr}"
        );
    }
    assert!(!database.exists());
}

#[test]
fn billing_help_says_the_database_must_exist() {
    for command in ["readiness", "draft", "reconcile", "compare-odoo"] {
        let (code, stdout, stderr) = steward(&["billing", command, "--help"]);
        assert_eq!(code, 0, "{command}: {stderr}");
        assert!(
            !stdout.contains("created when missing"),
            "{command}: {stdout}"
        );
        assert!(
            stdout.contains("SQLite database file; it must exist"),
            "{command}: {stdout}"
        );
        assert!(stdout.contains("`steward generate`"), "{command}: {stdout}");
    }
}

#[test]
fn compare_odoo_explains_it_has_no_period() {
    let (code, stdout, _) = steward(&["billing", "compare-odoo", "--help"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("covers all time"), "{stdout}");
    assert!(stdout.contains("totals to date"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let path = database.display().to_string();
    let (code, _, stderr) = steward(&[
        "billing",
        "compare-odoo",
        "--period",
        "2026-11",
        "--database",
        &path,
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("compare-odoo takes no --period (2026-11)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`steward billing reconcile --period 2026-11`"),
        "{stderr}"
    );
    assert!(
        !database.exists(),
        "the rejected command opened no database"
    );
}

#[test]
fn rules_check_rejects_an_unknown_role() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - id: tell\n    trigger: { on: create, record: expense }\n    actions:\n      \
         - notify: { message: New expense, role: finanse }\n      - notify: { message: Legal, \
         role: legal }\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let file = dir.path().join("rules.yaml").display().to_string();
    let (code, stdout, _) = steward(&["rules", "check", folder]);
    assert_eq!(code, 1, "{stdout}");
    let built_in = "admin, operations, finance, delivery_manager, employee, auditor, integration";
    for (line, role) in [(5, "finanse"), (6, "legal")] {
        let expected = format!("{file}:{line}:");
        assert!(stdout.contains(&expected), "{expected} in {stdout}");
        let message = format!("role `{role}` is not defined; use one of {built_in}, or declare it");
        assert!(stdout.contains(&message), "{message} in {stdout}");
    }
    assert!(stdout.contains("2 errors"), "{stdout}");

    // A role the approval authority declares is known.
    std::fs::write(
        dir.path().join("authority.yaml"),
        "authority:\n  currency: EUR\n  roles:\n    legal: { limit: unlimited }\n",
    )
    .unwrap();
    let (code, stdout, _) = steward(&["rules", "check", folder]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("role `finanse` is not defined"), "{stdout}");
    assert!(
        stdout.contains(&format!("{built_in}, legal, or declare")),
        "{stdout}"
    );
    assert!(!stdout.contains("role `legal`"), "{stdout}");
    assert!(stdout.contains("1 error"), "{stdout}");
}

#[test]
fn rules_check_rejects_a_missing_folder() {
    let (code, _, stderr) = steward(&["rules", "check", "/nonexistent/rules"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("/nonexistent/rules is not a folder"),
        "{stderr}"
    );
}

#[test]
fn tokens_are_created_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("t.db");
    let database = database.to_str().unwrap();
    let (code, stdout, stderr) = steward(&[
        "tokens",
        "create",
        "n8n",
        "--role",
        "integration",
        "--database",
        database,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.trim().starts_with("stw_"));
    let (code, _, stderr) = steward(&[
        "tokens",
        "create",
        "n8n",
        "--role",
        "integration",
        "--database",
        database,
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("a token named `n8n` already exists"),
        "{stderr}"
    );
    let (_, stdout, _) = steward(&["tokens", "list", "--database", database]);
    assert!(
        stdout.contains("n8n") && stdout.contains("integration") && !stdout.contains("stw_"),
        "{stdout}"
    );
    let (code, _, stderr) = steward(&[
        "tokens",
        "create",
        "x",
        "--role",
        "root",
        "--database",
        database,
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("`root` is not a role"), "{stderr}");
}

#[test]
fn rules_simulate_reports_over_history() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("demo.db");
    let database = database.to_str().unwrap();
    let (code, _, stderr) = steward(&["generate", "--database", database]);
    assert_eq!(code, 0, "{stderr}");
    let file = format!("{}/expenses.yaml", examples());
    let (code, stdout, stderr) = steward(&[
        "rules",
        "simulate",
        &file,
        "--since",
        "2026-01-01",
        "--database",
        database,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let review = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "receipt-missing")
        .unwrap();
    assert!(review["matched"].as_u64().unwrap() > 0, "{review}");
    assert!(review["would_run"].as_u64().unwrap() <= review["matched"].as_u64().unwrap());
    assert!(
        review["installed"].is_null(),
        "the rules are not installed in this database"
    );
    let (code, stdout, _) = steward(&[
        "rules",
        "simulate",
        &file,
        "--since",
        "yesterday",
        "--database",
        database,
    ]);
    assert_eq!(code, 1, "{stdout}");
}

#[test]
fn missing_rules_folder_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("no-such-rules");
    let folder = folder.to_str().unwrap();
    let database = dir.path().join("firm.db");
    let database = database.to_str().unwrap();
    let runs: [&[&str]; 2] = [
        &[
            "serve",
            "--rules",
            folder,
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            "billing",
            "readiness",
            "--rules",
            folder,
            "--database",
            database,
        ],
    ];
    for args in runs {
        let (code, _, stderr) = steward(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("the rules folder {folder} does not exist")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("leave out --rules"), "{args:?}: {stderr}");
        assert!(!stderr.contains(":0:0"), "{args:?}: {stderr}");
        assert!(!stderr.contains("billing"), "{args:?}: {stderr}");
    }
    assert!(
        !std::path::Path::new(database).exists(),
        "a start that failed on its rules folder created the database"
    );
}

#[test]
fn inspecting_commands_need_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let missing = missing.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["findings"],
        &["controls", "run"],
        &["dead-letters", "list"],
        &["tokens", "list"],
        &["tokens", "revoke", "01JD0000000000000000000000"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--database", missing]);
        let (code, stdout, stderr) = steward(&args);
        assert_eq!(code, 1, "{command:?}: {stdout}");
        assert!(
            stderr.contains(&format!("database {missing} not found")),
            "{command:?}: {stderr}"
        );
        assert!(
            !dir.path().join("nope.db").exists(),
            "{command:?} created the database"
        );
    }

    let folder = dir.path().to_str().unwrap();
    let (code, _, stderr) = steward(&["findings", "--database", folder]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is a folder"), "{stderr}");
}

#[test]
fn replay_checks_its_folder_first() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("capture");
    let (code, stdout, stderr) = steward(&[
        "odoo-replay",
        "--data",
        missing.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        !stderr.contains("answering"),
        "no banner before the check: {stderr}"
    );

    let file = dir.path().join("capture.json");
    std::fs::write(&file, "{}").unwrap();
    let (code, _, stderr) = steward(&[
        "odoo-replay",
        "--data",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is a file, not a folder"), "{stderr}");
}

#[test]
fn serve_names_a_missing_folder_and_a_bad_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("missing").join("firm.db");
    let (code, _, stderr) = steward(&[
        "serve",
        "--database",
        nested.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("does not exist; create it first"),
        "{stderr}"
    );
    assert!(!stderr.contains("lock file"), "{stderr}");

    let database = dir.path().join("firm.db");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["serve", "--database", database.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env("STEWARD_LOG", "warn")
        .env("STEWARD_ADMIN_TOKEN", "abc")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("STEWARD_ADMIN_TOKEN"), "{stderr}");
    assert!(stderr.contains("at least 20 characters"), "{stderr}");
}

#[test]
fn serve_on_a_taken_port_creates_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let database = dir.path().join("firm.db");
    let (code, _, stderr) = steward(&[
        "serve",
        "--database",
        database.to_str().unwrap(),
        "--listen",
        &address,
    ]);
    assert_eq!(code, 1, "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}
