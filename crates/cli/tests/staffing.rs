//! The staffing API of `steward serve` over loopback HTTP on a real SQLite file: weekly
//! capacity less a public holiday and an approved leave, an overbooked person, and the ranked
//! candidates for an open role with the reason for each rank.
//!
//! The staffing controls look at the weeks from today and rank candidates from today, so the
//! firm is planned in the weeks after the current one. The holiday and the leave fall in the
//! next week and the overbooking in the week after. The open role spans that week and the
//! one after it.

mod common;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Server, TOKEN};

/// Sends `body` to `path` with the admin token and returns the status and the JSON response.
async fn post(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client
        .post(format!("{}{path}", server.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Creates a record in `collection` and returns its id.
async fn create(server: &Server, collection: &str, body: Value) -> String {
    let (status, record) = post(server, &format!("/api/v1/{collection}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{collection}: {record}");
    record["id"].as_str().unwrap().to_string()
}

/// Sends a GET with `token` and returns the status and the JSON response.
async fn get_as(server: &Server, path: &str, token: &str) -> (StatusCode, Value) {
    let response = server
        .client
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn iso_week(day: NaiveDate) -> String {
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Finds the week of `monday` in one person's row of the capacity response.
fn week_of<'a>(capacity: &'a Value, employee: &str, monday: NaiveDate) -> &'a Value {
    let person = capacity["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["employee"] == employee)
        .unwrap_or_else(|| panic!("no capacity row for {employee}: {capacity}"));
    person["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["monday"] == monday.to_string())
        .unwrap_or_else(|| panic!("no week of {monday} for {employee}: {person}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staffing_capacity_overbooking_and_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;

    let this_week = monday_of(Utc::now().date_naive());
    let holiday_week = this_week + Duration::weeks(1);
    let busy_week = this_week + Duration::weeks(2);
    let following_week = this_week + Duration::weeks(3);
    let day = |monday: NaiveDate, offset: i64| monday + Duration::days(offset);
    let holiday = day(holiday_week, 2);

    let calendar = create(
        &server,
        "work-calendars",
        json!({
            "name": "Office 40 hours",
            "hours_per_day": "8",
            "week_hours": {"mon": "8", "tue": "8", "wed": "8", "thu": "8", "fri": "8", "sat": "0", "sun": "0"},
            "holidays": [{"date": holiday.to_string(), "name": "Founders Day"}],
        }),
    )
    .await;
    let person = |name: &str, role: &str, skills: &[&str], rate: Option<&str>| {
        let mut body = json!({
            "name": name,
            "role": role,
            "skills": skills,
            "calendar": calendar,
        });
        if let Some(rate) = rate {
            body["currency"] = json!("EUR");
            body["cost_rate"] = json!(rate);
        }
        body
    };
    let mara = create(
        &server,
        "employees",
        person("Mara Lead", "Engagement Manager", &[], None),
    )
    .await;
    let with_manager = |mut body: Value| {
        body["manager"] = json!(mara);
        body
    };
    let ana = create(
        &server,
        "employees",
        with_manager(person(
            "Ana Silva",
            "Consultant",
            &["Python", "SQL", "dbt"],
            Some("60"),
        )),
    )
    .await;
    let ben = create(
        &server,
        "employees",
        with_manager(person(
            "Ben Ortiz",
            "Consultant",
            &["python", "sql"],
            Some("50"),
        )),
    )
    .await;
    let cleo = create(
        &server,
        "employees",
        with_manager(person(
            "Cleo Park",
            "Senior Consultant",
            &["python"],
            Some("90"),
        )),
    )
    .await;
    let dan = create(
        &server,
        "employees",
        with_manager(person(
            "Dan Moreau",
            "Consultant",
            &["python", "sql"],
            Some("40"),
        )),
    )
    .await;

    // Ana's approved leave takes Thursday and Friday of the holiday week. Cleo's leave in the same days
    // is only requested, so it takes nothing.
    let leave = |employee: &str| {
        json!({
            "employee": employee,
            "start_date": day(holiday_week, 3).to_string(),
            "end_date": day(holiday_week, 4).to_string(),
            "hours": "16",
            "leave_type": "Paid Time Off",
        })
    };
    let ana_leave = create(&server, "leaves", leave(&ana)).await;
    let (status, approved) = post(
        &server,
        &format!("/api/v1/leaves/{ana_leave}/transition"),
        json!({"state": "approved"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "approved", "{approved}");
    create(&server, "leaves", leave(&cleo)).await;

    let project = |name: &str| json!({"name": name, "state": "active", "owner": mara});
    let ledger = create(&server, "projects", project("Ledger migration")).await;
    let platform = create(&server, "projects", project("Data platform")).await;
    let allocation = |project: &str,
                      employee: Option<&str>,
                      hours: &str,
                      first: NaiveDate,
                      last: NaiveDate,
                      state: &str| {
        json!({
            "project": project,
            "employee": employee,
            "role": "Consultant",
            "required_skills": ["python", "sql"],
            "hours_per_week": hours,
            "start_date": first.to_string(),
            "end_date": last.to_string(),
            "state": state,
        })
    };
    // Ben: 32 h a week on the ledger from the holiday week to the following week, and 24 h
    // more on the platform in the busy week alone, which books him 56 of his 40 hours there.
    let ben_ledger = create(
        &server,
        "allocations",
        allocation(
            &ledger,
            Some(&ben),
            "32",
            holiday_week,
            day(following_week, 4),
            "confirmed",
        ),
    )
    .await;
    let ben_platform = create(
        &server,
        "allocations",
        allocation(
            &platform,
            Some(&ben),
            "24",
            busy_week,
            day(busy_week, 4),
            "planned",
        ),
    )
    .await;
    // Dan is booked full, 40 of 40 hours, in the busy week and the following one.
    create(
        &server,
        "allocations",
        allocation(
            &ledger,
            Some(&dan),
            "40",
            busy_week,
            day(following_week, 4),
            "confirmed",
        ),
    )
    .await;
    let role = create(
        &server,
        "allocations",
        allocation(
            &platform,
            None,
            "16",
            busy_week,
            day(following_week, 4),
            "planned",
        ),
    )
    .await;

    // Capacity, asked from the Wednesday of the holiday week: the response starts on its Monday.
    let capacity = server
        .get(&format!("/api/v1/staffing/capacity?from={holiday}&weeks=3"))
        .await;
    assert_eq!(capacity["from"], holiday_week.to_string(), "{capacity}");
    assert_eq!(capacity["weeks"], 3, "{capacity}");
    assert_eq!(capacity["items"].as_array().unwrap().len(), 5, "{capacity}");

    let ana_h = week_of(&capacity, &ana, holiday_week);
    assert_eq!(ana_h["week"], iso_week(holiday_week), "{ana_h}");
    // 40 hours less 8 for the holiday and 16 for the two days of leave.
    assert_eq!(ana_h["capacity"], "16", "{ana_h}");
    assert_eq!(ana_h["booked"], "0", "{ana_h}");
    assert_eq!(ana_h["free"], "16", "{ana_h}");
    assert_eq!(
        ana_h["absences"],
        json!([
            format!("{holiday} Founders Day"),
            format!("{} leave", day(holiday_week, 3)),
            format!("{} leave", day(holiday_week, 4)),
        ]),
        "{ana_h}"
    );
    let ana_o = week_of(&capacity, &ana, busy_week);
    assert_eq!(ana_o["capacity"], "40", "{ana_o}");
    assert_eq!(ana_o["absences"], json!([]), "{ana_o}");

    let cleo_h = week_of(&capacity, &cleo, holiday_week);
    assert_eq!(
        cleo_h["capacity"], "32",
        "a requested leave takes no capacity: {cleo_h}"
    );
    assert_eq!(
        cleo_h["absences"],
        json!([format!("{holiday} Founders Day")]),
        "{cleo_h}"
    );

    let ben_h = week_of(&capacity, &ben, holiday_week);
    assert_eq!(ben_h["capacity"], "32", "{ben_h}");
    assert_eq!(ben_h["booked"], "32", "{ben_h}");
    assert_eq!(ben_h["load_percent"], "100", "{ben_h}");
    let ben_o = week_of(&capacity, &ben, busy_week);
    assert_eq!(ben_o["capacity"], "40", "{ben_o}");
    assert_eq!(ben_o["booked"], "56", "{ben_o}");
    assert_eq!(ben_o["free"], "0", "{ben_o}");
    assert_eq!(ben_o["load_percent"], "140", "{ben_o}");
    assert_eq!(
        ben_o["allocations"],
        json!({ben_ledger.clone(): "32", ben_platform.clone(): "24"}),
        "{ben_o}"
    );
    let ben_p = week_of(&capacity, &ben, following_week);
    assert_eq!(ben_p["booked"], "32", "{ben_p}");
    assert_eq!(ben_p["free"], "8", "{ben_p}");

    let dan_o = week_of(&capacity, &dan, busy_week);
    assert_eq!(dan_o["booked"], "40", "{dan_o}");
    assert_eq!(dan_o["load_percent"], "100", "{dan_o}");

    // The controls report Ben, and only Ben, as overbooked, about the busy week.
    let (status, report) = post(&server, "/api/v1/controls/run", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["open"]["staffing_overbooked"], 1,
        "{}",
        report["open"]
    );
    let overbooked = common::all(&server, "findings?state=open&control=staffing_overbooked").await;
    assert_eq!(overbooked.len(), 1, "{overbooked:#?}");
    let finding = &overbooked[0];
    assert_eq!(finding["record"]["id"], ben.as_str(), "{finding}");
    assert_eq!(
        finding["severity"], "error",
        "140 % is over the 120 % exception line"
    );
    assert_eq!(
        finding["message"],
        format!(
            "Ben Ortiz is booked 56 h in week {}, 140 % of 40 h capacity; 1 of the 4 weeks looked at are over 100 %",
            iso_week(busy_week)
        )
    );
    assert_eq!(
        finding["evidence"]["accountable"]["employee"],
        mara.as_str(),
        "{finding}"
    );
    let weeks = finding["evidence"]["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 1, "{finding}");
    assert_eq!(weeks[0]["monday"], busy_week.to_string(), "{finding}");

    let unstaffed = common::all(
        &server,
        "findings?state=open&control=staffing_unstaffed_role",
    )
    .await;
    assert_eq!(unstaffed.len(), 1, "{unstaffed:#?}");
    assert_eq!(
        unstaffed[0]["message"],
        format!(
            "Consultant on Data platform (16 h a week) starts on {busy_week} and nobody is allocated"
        )
    );
    assert_eq!(
        unstaffed[0]["evidence"]["candidates_query"],
        format!("/api/v1/staffing/roles/{role}/candidates")
    );

    // Candidates for the open role: 16 h a week over the busy and the following week, 32 h
    // in all.
    let ranked = server
        .get(&format!("/api/v1/staffing/roles/{role}/candidates"))
        .await;
    assert_eq!(ranked["allocation"], role.as_str(), "{ranked}");
    assert_eq!(ranked["project"], platform.as_str(), "{ranked}");
    assert_eq!(ranked["project_name"], "Data platform", "{ranked}");
    assert_eq!(ranked["required_skills"], json!(["python", "sql"]));
    assert_eq!(ranked["hours_per_week"], "16");
    assert_eq!(ranked["allocated"], Value::Null);
    let candidates = ranked["candidates"].as_array().unwrap();
    let order: Vec<&str> = candidates
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Ana has every skill and all the time, though she costs more than Ben and Dan. Ben is
    // free for 8 of the 32 hours. Dan is free for none but is the cheapest. Cleo lacks SQL
    // and is the most expensive, and Mara has no skill the role needs.
    assert_eq!(
        order,
        vec![
            "Ana Silva",
            "Ben Ortiz",
            "Dan Moreau",
            "Cleo Park",
            "Mara Lead"
        ],
        "{ranked}"
    );
    let expected: [(&str, &str, Vec<String>); 5] = [
        (
            "Ana Silva",
            "93.3",
            vec![
                "has all 2 required skills (python, sql)".into(),
                "free for 32 of the 32 h the role needs over 2 weeks".into(),
                "costs 60 EUR an hour, number 3 from the cheapest of 4".into(),
                "already works as Consultant".into(),
            ],
        ),
        (
            "Ben Ortiz",
            "70.4",
            vec![
                "has all 2 required skills (python, sql)".into(),
                "free for 8 of the 32 h the role needs over 2 weeks, short in 2 of them".into(),
                "costs 50 EUR an hour, number 2 from the cheapest of 4".into(),
                "already works as Consultant".into(),
            ],
        ),
        (
            "Dan Moreau",
            "65",
            vec![
                "has all 2 required skills (python, sql)".into(),
                "free for 0 of the 32 h the role needs over 2 weeks, short in 2 of them".into(),
                "costs 40 EUR an hour, number 1 from the cheapest of 4".into(),
                "already works as Consultant".into(),
            ],
        ),
        (
            "Cleo Park",
            "57.5",
            vec![
                "has 1 of 2 required skills; lacks sql".into(),
                "free for 32 of the 32 h the role needs over 2 weeks".into(),
                "costs 90 EUR an hour, number 4 from the cheapest of 4".into(),
                "works as Senior Consultant, not Consultant".into(),
            ],
        ),
        (
            "Mara Lead",
            "40",
            vec![
                "has 0 of 2 required skills; lacks python, sql".into(),
                "free for 32 of the 32 h the role needs over 2 weeks".into(),
                "has no cost rate, so cost counts as average".into(),
                "works as Engagement Manager, not Consultant".into(),
            ],
        ),
    ];
    for (index, (name, score, reasons)) in expected.iter().enumerate() {
        let candidate = &candidates[index];
        assert_eq!(candidate["name"], *name, "{candidate}");
        assert_eq!(candidate["rank"], index + 1, "{candidate}");
        assert_eq!(candidate["score"], *score, "{candidate}");
        assert_eq!(candidate["reasons"], json!(reasons), "{candidate}");
    }
    assert_eq!(candidates[0]["needed_hours"], "32", "{}", candidates[0]);
    assert_eq!(candidates[1]["free_hours"], "8", "{}", candidates[1]);
    assert_eq!(candidates[1]["availability"], "0.25", "{}", candidates[1]);
    assert_eq!(
        candidates[3]["missing_skills"],
        json!(["sql"]),
        "{}",
        candidates[3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staffing_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;

    // A well-formed allocation id that names nothing.
    let unknown = "01J00000000000000000000000";
    let (status, body) = get_as(
        &server,
        &format!("/api/v1/staffing/roles/{unknown}/candidates"),
        TOKEN,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(
        body["error"]["message"],
        format!("allocation {unknown} not found")
    );

    for (query, field, value) in [
        ("from=2026-13-45", "from", "2026-13-45"),
        ("from=07/12/2026", "from", "07/12/2026"),
        ("from=2026-12-07&weeks=0", "weeks", "0"),
        ("from=2026-12-07&weeks=53", "weeks", "53"),
        ("weeks=four", "weeks", "four"),
    ] {
        let path = format!("/api/v1/staffing/capacity?{query}");
        let (status, body) = get_as(&server, &path, TOKEN).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let error = &body["error"];
        assert_eq!(error["code"], "invalid_request", "{query}: {body}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid parameter {field}={value}: ")),
            "{query}: {message}"
        );
        assert_eq!(error["details"][0]["field"], field, "{query}: {body}");
        assert_eq!(error["details"][0]["value"], value, "{query}: {body}");
    }
    let (status, body) = get_as(&server, "/api/v1/staffing/capacity?from=2026-13-45", TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("YYYY-MM-DD"),
        "the message shows the expected form: {body}"
    );

    let (status, body) = get_as(&server, "/api/v1/staffing/capacity?start=2026-12-07", TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Employees may not read everyone's bookings.
    let (status, token) = post(
        &server,
        "/api/v1/tokens",
        json!({"name": "employee-reader", "role": "employee"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let secret = token["secret"].as_str().unwrap();
    let (status, body) = get_as(&server, "/api/v1/staffing/capacity", secret).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
