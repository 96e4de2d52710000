//! `steward sync odoo` against a loopback Odoo that answers from the captured demo firm, then
//! the API over what was synced and the findings the controls raise on it.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{Server, all, shared_data, steward};

/// Serves the captured Odoo 17 demo firm on a loopback port and returns its URL.
async fn serve_replay() -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.serve(listener));
    odoo
}

/// Builds the arguments of `steward sync odoo --json` from `odoo` into `database`.
fn sync_args<'a>(odoo: &'a str, database: &'a str) -> [&'a str; 13] {
    [
        "sync",
        "odoo",
        "--url",
        odoo,
        "--db",
        "steward_demo",
        "--login",
        "admin",
        "--password",
        "admin",
        "--database",
        database,
        "--json",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_odoo_firm_is_served_by_the_api() {
    let odoo = serve_replay().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let database = database.to_str().unwrap().to_string();
    let sync = sync_args(&odoo, &database);
    let (code, stdout, stderr) = steward(&sync);
    assert_eq!(code, 0, "{stderr}");
    let first: Value = serde_json::from_str(&stdout).unwrap();
    // The starter controls of the foundation, by name; the delivery, time and billing
    // controls add their own findings on top.
    let open = &first["controls"]["open"];
    assert_eq!(open["daily_hours"], 12, "{open}");
    assert_eq!(open["approver_missing"], 1, "{open}");
    assert_eq!(open["self_approval"], 0, "{open}");
    assert_eq!(open["overlapping_entries"], 0, "{open}");
    assert_eq!(open["time_on_closed_or_missing_project"], 0, "{open}");
    let total: u64 = open
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    // A controls job queued by the sync's changes may run before the sync's own run on a busy
    // machine; the findings are then open already, and the sync's run opens fewer of them.
    let opened = first["controls"]["opened"].as_u64().unwrap();
    assert!(opened <= total, "{}", first["controls"]);
    assert!(total > 0, "{}", first["controls"]);

    let (code, stdout, stderr) = steward(&sync);
    assert_eq!(code, 0, "{stderr}");
    let second: Value = serde_json::from_str(&stdout).unwrap();
    for model in second["sync"]["models"].as_array().unwrap() {
        assert_eq!(model["created"], 0, "{model}");
        assert_eq!(model["updated"], 0, "{model}");
    }

    let server = Server::start(dir.path(), &[]).await;
    let events_before = all(&server, "events").await.len();
    let count = |items: &Vec<Value>| items.len();
    assert_eq!(count(&all(&server, "timesheets").await), 532);
    assert_eq!(count(&all(&server, "employees").await), 20);
    assert_eq!(count(&all(&server, "tasks").await), 64);
    assert_eq!(count(&all(&server, "expenses").await), 16);

    let deals = all(&server, "opportunities").await;
    let numbers: Vec<&str> = deals
        .iter()
        .map(|d| d["reference"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 23);
    for n in 1..=23 {
        assert!(
            numbers.contains(&format!("S{n:05}").as_str()),
            "S{n:05} is missing"
        );
    }
    let contracts: BTreeMap<String, String> = all(&server, "contracts")
        .await
        .iter()
        .map(|c| {
            (
                c["reference"].as_str().unwrap().to_string(),
                c["billing_model"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("S00002", "time_and_materials"),
        ("S00003", "mixed"),
        ("S00004", "time_and_materials"),
        ("S00020", "time_and_materials"),
        ("S00021", "mixed"),
        ("S00022", "mixed"),
        ("S00023", "mixed"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        contracts, expected,
        "orders with service lines are contracts"
    );

    let findings: Vec<String> = all(&server, "findings?state=open")
        .await
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "Mitchell Admin logged 20 hours on Thursday 2026-11-26",
        "Mitchell Admin logged 20 hours on Friday 2026-12-04",
        "Randall Lewis logged 16 hours on Tuesday 2026-12-01",
        "Mitchell Admin has no manager, so nobody can approve their",
    ] {
        assert!(
            findings.iter().any(|f| f.starts_with(expected)),
            "no finding starts with {expected:?}: {findings:#?}"
        );
    }
    let admin = findings
        .iter()
        .find(|f| f.starts_with("Mitchell Admin has no manager"))
        .unwrap();
    assert!(admin.contains("4 expenses (2909.60 USD)"), "{admin}");
    assert_eq!(
        all(&server, "events").await.len(),
        events_before,
        "serving appends nothing"
    );
    drop(server);

    // The cursor query returns the rows written in the cursor's second again, which here are
    // all the timesheet lines. A sync that finds them unchanged appends no event.
    let (code, stdout, stderr) = steward(&sync);
    assert_eq!(code, 0, "{stderr}");
    let third: Value = serde_json::from_str(&stdout).unwrap();
    let models = third["sync"]["models"].as_array().unwrap();
    let timesheets = models
        .iter()
        .find(|m| m["model"] == "account.analytic.line")
        .unwrap();
    assert_eq!(timesheets["read"], 532, "{timesheets}");
    assert_eq!(timesheets["unchanged"], 532, "{timesheets}");
    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(
        all(&server, "events").await.len(),
        events_before,
        "a sync without changes appends nothing"
    );
}

/// Returns the instant a control last checked, from the `last_seen` of its open findings.
fn checked_at(findings: &[Value], control: &str) -> Option<DateTime<Utc>> {
    findings
        .iter()
        .filter(|f| f["control"] == control)
        .map(|f| f["last_seen"].as_str().unwrap().parse().unwrap())
        .max()
}

fn date_of(value: &Value) -> NaiveDate {
    value.as_str().unwrap().parse().unwrap()
}

fn decimal_of(value: &Value) -> Decimal {
    value.as_str().unwrap().parse().unwrap()
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn iso_week(day: NaiveDate) -> String {
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Lists the weeks the default `payroll` cut-off looks at `now`, by Monday, with true for a
/// closed week. Its escalation runs on Mondays at 10:00 UTC and closes the week before, which is
/// reviewed with the three weeks before it. Its reminder runs on Fridays at 14:00 UTC and
/// keeps that week open until the escalation that closes it.
fn payroll_weeks(now: DateTime<Utc>) -> Vec<(NaiveDate, bool)> {
    let at = |day: NaiveDate, hour: u32| day.and_hms_opt(hour, 0, 0).unwrap().and_utc();
    let mut escalated = monday_of(now.date_naive());
    if at(escalated, 10) > now {
        escalated -= Duration::weeks(1);
    }
    let mut weeks: Vec<(NaiveDate, bool)> = (1..=4)
        .map(|n| (escalated - Duration::weeks(n), true))
        .collect();
    let today = now.date_naive();
    let since_friday = (i64::from(today.weekday().num_days_from_monday()) - 4).rem_euclid(7);
    let mut reminded = today - Duration::days(since_friday);
    if at(reminded, 14) > now {
        reminded -= Duration::weeks(1);
    }
    let open = monday_of(reminded);
    if now < at(open + Duration::weeks(1), 10) {
        weeks.push((open, false));
    }
    weeks
}

/// Returns the hours an employee's calendar schedules on `day`. A public holiday has none, and
/// an employee without a calendar works 8 hours on weekdays.
fn scheduled(calendar: Option<&Value>, day: NaiveDate) -> Decimal {
    let weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [day.weekday().num_days_from_monday() as usize];
    let Some(calendar) = calendar else {
        return if day.weekday().num_days_from_monday() < 5 {
            Decimal::from(8)
        } else {
            Decimal::ZERO
        };
    };
    let holiday = calendar["holidays"]
        .as_array()
        .is_some_and(|days| days.iter().any(|h| h["date"] == day.to_string()));
    if holiday {
        return Decimal::ZERO;
    }
    match calendar["week_hours"].get(weekday) {
        Some(hours) => decimal_of(hours),
        None if day.weekday().num_days_from_monday() < 5 => decimal_of(&calendar["hours_per_day"]),
        None => Decimal::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_controls_flag_the_synced_records() {
    let odoo = serve_replay().await;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db").to_str().unwrap().to_string();
    let (code, stdout, stderr) = steward(&sync_args(&odoo, &database));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let open = &report["controls"]["open"];

    // The findings of the sync's own run, read before a server runs the controls again.
    let (code, stdout, stderr) = steward(&["findings", "--json", "--database", &database]);
    assert_eq!(code, 0, "{stderr}");
    let findings: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let of = |control: &str| -> Vec<&Value> {
        findings
            .iter()
            .filter(|f| f["control"] == control)
            .collect()
    };
    for (control, count) in open.as_object().unwrap() {
        assert_eq!(
            of(control).len() as u64,
            count.as_u64().unwrap(),
            "{control}"
        );
    }
    // Several controls compare dates with the day they ran. The time and collection controls
    // run with `daily_hours`, and the delivery controls with `budget_burn`. Both of those
    // always raise findings on this firm, so their `last_seen` gives the instant of each run.
    let time_run = checked_at(&findings, "daily_hours").expect("daily_hours findings");
    let delivery_run = checked_at(&findings, "budget_burn").expect("budget_burn findings");

    let server = Server::start(dir.path(), &[]).await;
    let employees = all(&server, "employees").await;
    let name_of = |id: &Value| -> String {
        employees
            .iter()
            .find(|e| e["id"] == *id)
            .unwrap_or_else(|| panic!("no employee {id}"))["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let timesheets = all(&server, "timesheets").await;
    let logged_states = ["draft", "submitted", "approved", "invoiced"];

    // budget_burn: three projects whose hours run ahead of their done tasks. Their hours and
    // tasks do not change with the day, so the messages are exact.
    let mut burn: Vec<(String, String)> = of("budget_burn")
        .iter()
        .map(|f| {
            (
                f["message"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    burn.sort();
    let expected_burn: Vec<(String, String)> = [
        ("AGR - S00021 - Sales Order has used 335.29 % of its budget (285 of 85 budgeted hours) at 0 % progress by planned hours of done tasks, 335.29 points ahead of the 15 allowed", "error"),
        ("DECO - S00023 - Sales Order has used 36 % of its budget (9 of 25 budgeted hours) at 0 % progress by planned hours of done tasks, 36 points ahead of the 15 allowed", "warning"),
        ("DPC - S00022 - Sales Order has used 87.18 % of its budget (34 of 39 budgeted hours) at 0 % progress by planned hours of done tasks, 87.18 points ahead of the 15 allowed", "warning"),
    ]
    .into_iter()
    .map(|(m, s)| (m.to_string(), s.to_string()))
    .collect();
    assert_eq!(burn, expected_burn);

    // entry_validity: every logged entry dated after the latest allowed day, which is one day
    // after today in the time zone furthest ahead (UTC+14), and no other entry.
    let latest = (time_run + Duration::hours(14)).date_naive() + Duration::days(1);
    let mut future: Vec<&str> = timesheets
        .iter()
        .filter(|t| logged_states.contains(&t["state"].as_str().unwrap()))
        .filter(|t| date_of(&t["date"]) > latest)
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    future.sort();
    let mut flagged: Vec<&str> = of("entry_validity")
        .iter()
        .map(|f| f["record"]["id"].as_str().unwrap())
        .collect();
    flagged.sort();
    assert_eq!(flagged, future, "entries after {latest}");
    for finding in of("entry_validity") {
        let entry = timesheets
            .iter()
            .find(|t| t["id"] == finding["record"]["id"])
            .unwrap();
        let date = entry["date"].as_str().unwrap();
        assert_eq!(
            finding["message"],
            format!(
                "The timesheet entry of {} on {date} has a date in the future ({date}, later than {latest}); correct it in its source system",
                name_of(&entry["employee"])
            )
        );
        assert_eq!(finding["severity"], "error", "{finding}");
    }

    // collections_overdue: every released customer invoice with an amount unpaid after its
    // due date. INV/2026/00001 fell due on 2026-11-19, before the capture was taken.
    let today = time_run.date_naive();
    let invoices = all(&server, "invoices").await;
    let mut overdue: Vec<&str> = invoices
        .iter()
        .filter(|i| i["state"] == "released" && i["move_type"] != "credit_note")
        .filter(|i| {
            !["paid", "in_payment", "reversed"].contains(&i["payment_state"].as_str().unwrap_or(""))
        })
        .filter(|i| decimal_of(&i["residual"]) > Decimal::ZERO)
        .filter(|i| date_of(&i["due_date"]) < today)
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    overdue.sort();
    let mut flagged: Vec<&str> = of("collections_overdue")
        .iter()
        .map(|f| f["record"]["id"].as_str().unwrap())
        .collect();
    flagged.sort();
    assert_eq!(flagged, overdue, "invoices due before {today}");
    let first = of("collections_overdue")
        .into_iter()
        .find(|f| f["evidence"]["number"] == "INV/2026/00001")
        .expect("INV/2026/00001 is overdue");
    let days = (today - date_of(&json!("2026-11-19"))).num_days();
    let message = first["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Invoice INV/2026/00001 to Deco Addict has 36512.5 USD unpaid, {days} days after its due date 2026-11-19"
        )),
        "{message}"
    );
    assert_eq!(first["evidence"]["days_overdue"], days, "{first}");

    // milestone_overdue: every planned milestone of a live project past its deadline, with
    // no grace by default.
    let today = delivery_run.date_naive();
    let projects = all(&server, "projects").await;
    let live = |id: &Value| {
        projects
            .iter()
            .find(|p| p["id"] == *id)
            .is_some_and(|p| !["closed", "cancelled"].contains(&p["state"].as_str().unwrap()))
    };
    let milestones = all(&server, "milestones").await;
    let mut late: Vec<&str> = milestones
        .iter()
        .filter(|m| m["state"] == "planned" && live(&m["project"]))
        .filter(|m| m["deadline"].is_string() && date_of(&m["deadline"]) < today)
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    late.sort();
    let mut flagged: Vec<&str> = of("milestone_overdue")
        .iter()
        .map(|f| f["record"]["id"].as_str().unwrap())
        .collect();
    flagged.sort();
    assert_eq!(flagged, late, "milestones due before {today}");
    let preparation = of("milestone_overdue")
        .into_iter()
        .find(|f| {
            f["message"].as_str().unwrap().starts_with(
                "Milestone Preparation and Delivery Phase of AGR - S00021 - Sales Order",
            )
        })
        .expect("the preparation milestone of S00021 is overdue");
    let days = (today - date_of(&json!("2026-11-30"))).num_days();
    assert_eq!(
        preparation["message"],
        format!(
            "Milestone Preparation and Delivery Phase of AGR - S00021 - Sales Order was due on 2026-11-30 and is {days} days late"
        )
    );

    // handoff_overdue: of the won and signed deals, only S00020 and S00004 have no project,
    // because no template covers them. The others have active projects, which counts as
    // kicked off. Kickoff is due 10 working days after winning: by 2026-11-18 for S00020,
    // won on 2026-11-04, and by 2026-12-18 for S00004, won on 2026-12-04.
    let mut handoff: Vec<&str> = of("handoff_overdue")
        .iter()
        .map(|f| f["evidence"]["deal_name"].as_str().unwrap())
        .collect();
    handoff.sort();
    let mut expected_handoff = vec!["S00020"];
    if date_of(&json!("2026-12-18")) < today {
        expected_handoff.insert(0, "S00004");
    }
    assert_eq!(handoff, expected_handoff, "deals due before {today}");
    let s00020 = of("handoff_overdue")
        .into_iter()
        .find(|f| f["evidence"]["deal_name"] == "S00020")
        .unwrap();
    assert_eq!(
        s00020["message"],
        "Deal S00020 was won on 2026-11-04 and no project exists; kickoff was due by 2026-11-18, 10 working days after winning"
    );
    assert_eq!(s00020["evidence"]["accountable"]["name"], "Mitchell Admin");

    // timesheet_incomplete: for each active person and each week the cut-off looks at, the
    // calendar's hours less approved leave against the hours logged, from the synced
    // records. A one-day leave shorter than the day takes only its hours.
    let run = checked_at(&findings, "timesheet_incomplete").unwrap_or(time_run);
    let weeks = payroll_weeks(run);
    let calendars = all(&server, "work-calendars").await;
    let leaves: Vec<Value> = all(&server, "leaves?state=approved").await;
    let mut expected_keys = Vec::new();
    let mut expected_hours = BTreeMap::new();
    for employee in employees.iter().filter(|e| e["state"] == "active") {
        let id = employee["id"].as_str().unwrap();
        let calendar = calendars.iter().find(|c| c["id"] == employee["calendar"]);
        for (monday, closed) in &weeks {
            let days: Vec<NaiveDate> = (0..7).map(|n| *monday + Duration::days(n)).collect();
            let mut expected = Decimal::ZERO;
            for day in &days {
                let hours = scheduled(calendar, *day);
                let away = leaves
                    .iter()
                    .filter(|l| l["employee"] == id)
                    .filter(|l| {
                        date_of(&l["start_date"]) <= *day && *day <= date_of(&l["end_date"])
                    })
                    .map(|l| {
                        let single = l["start_date"] == l["end_date"];
                        match l["hours"].as_str().map(|h| h.parse::<Decimal>().unwrap()) {
                            Some(taken) if single && taken < hours => taken,
                            _ => hours,
                        }
                    })
                    .max()
                    .unwrap_or(Decimal::ZERO);
                expected += hours - away;
            }
            let logged: Decimal = timesheets
                .iter()
                .filter(|t| t["employee"] == id)
                .filter(|t| logged_states.contains(&t["state"].as_str().unwrap()))
                .filter(|t| days.contains(&date_of(&t["date"])))
                .map(|t| decimal_of(&t["hours"]))
                .sum();
            if !expected.is_zero() && logged < expected {
                let key = format!("timesheet_incomplete/payroll/{}/{id}", iso_week(*monday));
                expected_hours.insert(key.clone(), (expected, logged, *closed));
                expected_keys.push(key);
            }
        }
    }
    expected_keys.sort();
    let mut keys: Vec<&str> = of("timesheet_incomplete")
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, expected_keys, "incomplete weeks at {run}: {weeks:?}");
    for finding in of("timesheet_incomplete") {
        let (expected, logged, closed) = expected_hours[finding["key"].as_str().unwrap()];
        let evidence = &finding["evidence"];
        assert_eq!(
            decimal_of(&evidence["expected_hours"]),
            expected,
            "{finding}"
        );
        assert_eq!(decimal_of(&evidence["logged_hours"]), logged, "{finding}");
        assert_eq!(
            decimal_of(&evidence["missing_hours"]),
            expected - logged,
            "{finding}"
        );
        assert_eq!(evidence["closed"], closed, "{finding}");
        let severity = if closed { "error" } else { "warning" };
        assert_eq!(finding["severity"], severity, "{finding}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_first_sync_leaves_no_database() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let odoo = format!("http://{}", listener.local_addr().unwrap());
    let replay = steward_odoo_replay::Replay::load(&shared_data().join("odoo17-jsonrpc")).unwrap();
    tokio::spawn(replay.clone().serve(listener));
    let closed = {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", unused.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("firm.db");
    let path = database.to_str().unwrap();

    // A wrong password, a wrong Odoo database and a closed port fail at the login.
    let cases = [
        (odoo.as_str(), "steward_demo", "wrong", "rejected the login"),
        (odoo.as_str(), "no_such_db", "admin", "no_such_db"),
        (closed.as_str(), "steward_demo", "admin", closed.as_str()),
    ];
    for (url, db, password, expected) in cases {
        let (code, _, stderr) = steward(&[
            "sync",
            "odoo",
            "--url",
            url,
            "--db",
            db,
            "--login",
            "admin",
            "--password",
            password,
            "--database",
            path,
        ]);
        assert_eq!(code, 1, "{url} {db} {password}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(&expected.to_lowercase()),
            "{url} {db} {password}: {stderr}"
        );
        assert!(!database.exists(), "{url} {db} {password} left {path}");
    }

    // A read that fails after the login, before anything is written, removes the new file.
    replay.inject_fault(
        "res.partner",
        steward_odoo_replay::Fault::Http {
            status: 500,
            body: "Internal Server Error".into(),
        },
    );
    let (code, _, stderr) = steward(&sync_args(&odoo, path));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the sync from"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "the failed sync left {left:?}");

    // Once Odoo answers, the same path gets the firm.
    replay.clear_faults();
    let (code, _, stderr) = steward(&sync_args(&odoo, path));
    assert_eq!(code, 0, "{stderr}");
    assert!(database.exists());
}
