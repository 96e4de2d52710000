//! The Toggl import end to end on a real SQLite file, with a real Toggl export and hand-written
//! malformed ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, json};
use steward_domain::{Actor, Command, CommandContext, Kind, Record, SystemClock};
use steward_engine::{Engine, EngineConfig};
use steward_store::{RecordQuery, Store, read};
use steward_store_sqlite::{SqliteOptions, SqliteStore};
use steward_timetracking::{ImportError, ImportReport, Overlap, TogglOptions, import_toggl};

/// Returns the folder of real input files: `STEWARD_SHARED_DATA`, else the shared folder beside the
/// repository.
fn shared_data() -> PathBuf {
    match std::env::var_os("STEWARD_SHARED_DATA") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data"),
    }
}

fn toggl_file() -> PathBuf {
    shared_data().join("timetracking/tuttle_test_time_tracking_toggl.csv")
}

const HEADER: &str = "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,\
                      End date,End time,Duration,Tags";

struct Harness {
    engine: Arc<Engine>,
    dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let engine = Engine::new(store, Arc::new(SystemClock), EngineConfig::default());
    Harness { engine, dir }
}

impl Harness {
    fn write_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn import(&self, path: &Path) -> ImportReport {
        import_toggl(&self.engine, path, TogglOptions::default())
            .await
            .unwrap()
    }

    fn count(&self, kind: Kind) -> u64 {
        read(self.engine.store().as_ref(), move |tx| {
            tx.count_records(kind, None)
        })
        .unwrap()
    }

    fn events(&self) -> u64 {
        read(self.engine.store().as_ref(), |tx| tx.count_events()).unwrap()
    }

    fn records(&self, kind: Kind) -> Vec<Record> {
        read(self.engine.store().as_ref(), move |tx| {
            let page = tx.records(&RecordQuery {
                kind: Some(kind),
                limit: 1000,
                ..Default::default()
            })?;
            Ok(page.items)
        })
        .unwrap()
    }

    fn timesheet(&self, notes: &str, date: &str) -> Record {
        let matches: Vec<Record> = self
            .records(Kind::Timesheet)
            .into_iter()
            .filter(|r| r.text("notes") == Some(notes) && r.text("date") == Some(date))
            .collect();
        assert_eq!(matches.len(), 1, "entries `{notes}` on {date}");
        matches.into_iter().next().unwrap()
    }
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[tokio::test]
async fn real_export_imports_every_row() {
    let h = harness();
    let report = h.import(&toggl_file()).await;

    assert_eq!(report.rows_read, 29);
    assert_eq!(report.rows_imported, 29);
    assert_eq!(report.rows_rejected, 0, "{:?}", report.rejected);
    assert_eq!(report.entries_created, 29);
    assert!(report.split_entries.is_empty());
    assert_eq!(report.encoding, "UTF-8");
    assert_eq!(report.source, "tuttle_test_time_tracking_toggl.csv");
    assert_eq!(h.count(Kind::Timesheet), 29);

    assert_eq!(report.people_created.len(), 1);
    assert_eq!(report.people_created[0].name, "Harry");
    assert_eq!(
        report.people_created[0].email.as_deref(),
        Some("harry@tuttle.com")
    );
    let clients: Vec<&str> = report
        .clients_created
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(clients, vec!["Sam Lowry"]);
    let projects: Vec<&str> = report
        .projects_created
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(projects, vec!["#HeatingRepair", "orga"]);
    assert_eq!(h.count(Kind::Employee), 1);
    assert_eq!(h.count(Kind::Client), 1);
    assert_eq!(h.count(Kind::Project), 2);

    // The durations add up to 42 h 20 min.
    assert_eq!(report.hours.to_string(), "42.3333");
    let harry = report.people_created[0].id.clone().unwrap();
    for record in h.records(Kind::Timesheet) {
        assert_eq!(record.state, "draft");
        assert_eq!(record.ref_id("employee"), Some(harry.as_str()));
        assert_eq!(record.bool("billable"), Some(false));
        assert!(record.ref_id("project").is_some());
    }
}

#[tokio::test]
async fn twelve_hour_duration_is_twenty_minutes() {
    let h = harness();
    h.import(&toggl_file()).await;
    let notes = "Mehr source laws zu change laws beschaffen und manuell testen";
    let entries: Vec<Record> = h
        .records(Kind::Timesheet)
        .into_iter()
        .filter(|r| r.text("notes") == Some(notes) && r.text("date") == Some("2022-01-19"))
        .collect();
    let twenty = entries
        .iter()
        .find(|r| r.text("started_at") == Some("2022-01-19T18:15:49Z"))
        .expect("the entry of line 12");
    assert_eq!(twenty.text("hours"), Some("0.3333"));
    assert_eq!(twenty.text("ended_at"), Some("2022-01-19T18:35:49Z"));
    let thirty = entries
        .iter()
        .find(|r| r.text("started_at") == Some("2022-01-19T22:00:00Z"))
        .expect("the entry of line 13");
    assert_eq!(thirty.text("hours"), Some("0.5"));

    let one_hour_five = h.timesheet("LiP remote", "2022-01-14");
    assert_eq!(one_hour_five.text("hours"), Some("2.0833"));
}

#[tokio::test]
async fn real_export_overlaps_are_reported() {
    let h = harness();
    let report = h.import(&toggl_file()).await;
    let overlap = |first_line, second_line, seconds| Overlap {
        person: "harry@tuttle.com".into(),
        first_line,
        second_line,
        seconds,
    };
    assert_eq!(
        report.overlaps,
        vec![
            overlap(11, 14, 20),
            overlap(16, 17, 10),
            overlap(20, 21, 20),
            overlap(22, 23, 29),
            overlap(23, 24, 15),
        ]
    );
}

#[tokio::test]
async fn second_import_changes_nothing() {
    let h = harness();
    h.import(&toggl_file()).await;
    let events = h.events();
    let timesheets = h.count(Kind::Timesheet);

    let again = h.import(&toggl_file()).await;
    assert_eq!(again.rows_read, 29);
    assert_eq!(again.rows_unchanged, 29);
    assert_eq!(again.rows_imported, 0);
    assert_eq!(again.entries_created, 0);
    assert_eq!(again.entries_updated, 0);
    assert!(again.people_created.is_empty());
    assert!(again.clients_created.is_empty());
    assert!(again.projects_created.is_empty());
    assert_eq!(h.events(), events);
    assert_eq!(h.count(Kind::Timesheet), timesheets);
    assert_eq!(h.count(Kind::Employee), 1);
}

#[tokio::test]
async fn utf16_export_matches_utf8_import() {
    let h = harness();
    h.import(&toggl_file()).await;
    let events = h.events();

    // Files saved on Windows may end their lines with CRLF.
    let text = std::fs::read_to_string(toggl_file())
        .unwrap()
        .replace('\n', "\r\n");
    let path = h.write_file("toggl-utf16.csv", &utf16le_with_bom(&text));
    let report = h.import(&path).await;
    assert_eq!(report.encoding, "UTF-16LE");
    assert_eq!(report.rows_read, 29);
    assert_eq!(report.rows_unchanged, 29);
    assert_eq!(h.events(), events);
}

#[tokio::test]
async fn malformed_rows_are_rejected_alone() {
    let h = harness();
    let csv = format!(
        "{HEADER}\n\
         Ann,ann@example.com,Acme,Audit,,Good row,Yes,2024-03-04,09:00:00,2024-03-04,10:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme,Audit,,Bad duration,Yes,2024-03-04,10:00:00,2024-03-04,11:00:00,1 hour,\n\
         Ann,ann@example.com,Acme,Audit,,Ends early,Yes,2024-03-04,15:00:00,2024-03-04,14:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme,Audit,,Bad date,Yes,2024-02-30,09:00:00,2024-02-30,10:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme,Audit,,Bad time,Yes,2024-03-05,25:00:00,2024-03-05,26:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme,Audit,,Bad flag,Perhaps,2024-03-05,09:00:00,2024-03-05,10:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme,Audit,,Good row,Yes,2024-03-04,09:00:00,2024-03-04,10:00:00,01:00:00,\n\
         Ann,ann@example.com,Acme\n"
    );
    let path = h.write_file("malformed.csv", csv.as_bytes());
    let report = h.import(&path).await;

    assert_eq!(report.rows_read, 8);
    assert_eq!(report.rows_imported, 1);
    assert_eq!(report.rows_rejected, 7);
    let rejected: Vec<(u64, Option<&str>, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.column.as_deref(), r.value.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (3, Some("Duration"), "1 hour"),
            (4, Some("End time"), "2024-03-04 14:00:00"),
            (5, Some("Start date"), "2024-02-30"),
            (6, Some("Start time"), "25:00:00"),
            (7, Some("Billable"), "Perhaps"),
            (8, None, ""),
            (9, None, "Ann,ann@example.com,Acme"),
        ]
    );
    assert!(report.rejected[0].reason.contains("not a duration"));
    assert!(report.rejected[1].reason.contains("ends before it starts"));
    assert!(report.rejected[5].reason.contains("repeats line 2"));
    assert!(report.rejected[6].reason.contains("3 fields"));
    assert_eq!(h.count(Kind::Timesheet), 1);
    let good = h.timesheet("Good row", "2024-03-04");
    assert_eq!(good.bool("billable"), Some(true));
    assert_eq!(good.text("hours"), Some("1"));
}

#[tokio::test]
async fn missing_columns_reject_the_file() {
    let h = harness();
    let path = h.write_file(
        "clockify.csv",
        b"Project,Client,Description,Start Date,Duration (h)\nAudit,Acme,Work,2024-03-04,1.00\n",
    );
    let error = import_toggl(&h.engine, &path, TogglOptions::default())
        .await
        .unwrap_err();
    let ImportError::MissingColumns { missing, .. } = &error else {
        panic!("expected missing columns, got {error:?}");
    };
    assert_eq!(
        missing,
        &vec![
            "User",
            "Email",
            "Billable",
            "Start time",
            "End date",
            "End time",
            "Duration"
        ]
    );
    let message = error.to_string();
    assert!(
        message.contains("not a Toggl Track detailed export"),
        "{message}"
    );
    assert!(message.contains("User, Email, Billable"), "{message}");
    assert_eq!(h.events(), 0);
}

#[tokio::test]
async fn bom_24_hour_and_quoted_rows() {
    let h = harness();
    let csv = format!(
        "\u{feff}{HEADER}\n\
         Bea,bea@example.com,Acme,Audit,Fieldwork,\"Interviews, notes\nand follow-up\",Yes,\
         2024-03-04,13:05:00,2024-03-04,14:35:30,01:30:30,\"onsite, travel\"\n\
         Bea,bea@example.com,Acme,Audit,,Night release,No,2024-03-04,22:30:00,2024-03-05,\
         01:15:00,02:45:00,\n"
    );
    let path = h.write_file("bom.csv", csv.as_bytes());
    let options = TogglOptions {
        timezone: chrono_tz::Europe::Brussels,
        ..TogglOptions::default()
    };
    let report = import_toggl(&h.engine, &path, options).await.unwrap();
    assert_eq!(report.encoding, "UTF-8 with byte-order mark");
    assert_eq!(report.rows_imported, 2, "{:?}", report.rejected);
    assert_eq!(report.entries_created, 3);
    assert_eq!(report.split_entries.len(), 1);
    assert_eq!(report.split_entries[0].line, 4);

    let quoted = h.timesheet("Interviews, notes\nand follow-up", "2024-03-04");
    assert_eq!(quoted.text("hours"), Some("1.5083"));
    assert_eq!(quoted.text("started_at"), Some("2024-03-04T12:05:00Z"));
    assert_eq!(quoted.attributes["toggl_task"], json!("Fieldwork"));
    assert_eq!(quoted.attributes["toggl_tags"], json!(["onsite", "travel"]));

    let before = h.timesheet("Night release", "2024-03-04");
    let after = h.timesheet("Night release", "2024-03-05");
    assert_eq!(before.text("hours"), Some("1.5"));
    assert_eq!(after.text("hours"), Some("1.25"));
    assert_eq!(before.text("ended_at"), Some("2024-03-04T23:00:00Z"));
    assert_eq!(after.text("started_at"), Some("2024-03-04T23:00:00Z"));
}

#[tokio::test]
async fn existing_employee_is_found_by_email() {
    let h = harness();
    let mut fields = Map::new();
    fields.insert("name".into(), json!("Harry Tuttle"));
    fields.insert("email".into(), json!("Harry@Tuttle.com"));
    let outcome = h
        .engine
        .execute(
            Command::create(Kind::Employee, fields),
            CommandContext::new(Actor::user("tester")),
        )
        .await
        .unwrap();
    let harry = outcome.record.unwrap().id;

    let report = h.import(&toggl_file()).await;
    assert!(report.people_created.is_empty());
    assert_eq!(h.count(Kind::Employee), 1);
    for record in h.records(Kind::Timesheet) {
        assert_eq!(record.ref_id("employee"), Some(harry.as_str()));
    }
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let h = harness();
    let options = TogglOptions {
        dry_run: true,
        ..TogglOptions::default()
    };
    let report = import_toggl(&h.engine, &toggl_file(), options)
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.entries_created, 29);
    assert_eq!(report.people_created.len(), 1);
    assert_eq!(report.people_created[0].id, None);
    assert_eq!(h.events(), 0);
    assert_eq!(h.count(Kind::Timesheet), 0);
}

#[tokio::test]
async fn report_serializes_to_json() {
    let h = harness();
    let report = h.import(&toggl_file()).await;
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["rows_read"], json!(29));
    assert_eq!(value["overlaps"][0]["seconds"], json!(20));
    assert_eq!(value["hours"], json!("42.3333"));
}

#[tokio::test]
async fn invalid_row_creates_nothing_it_names() {
    let h = harness();
    let long_description = "x".repeat(10_001);
    let csv = format!(
        "{HEADER}\n\
         Ann,ann@example.com,Acme,Audit,,Kick-off,Yes,2024-03-04,09:00:00,2024-03-04,10:00:00,01:00:00,\n\
         Zed,zed@example.com,Globex,Migration,,{long_description},No,2024-03-04,09:00:00,2024-03-04,10:00:00,01:00:00,\n"
    );
    let path = h.write_file("long.csv", csv.as_bytes());
    let report = h.import(&path).await;

    assert_eq!(report.rows_imported, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 3);
    assert_eq!(report.rejected[0].column.as_deref(), Some("Description"));
    assert!(report.rejected[0].reason.contains("longer than 10000"));
    let people: Vec<&str> = report
        .people_created
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(people, vec!["Ann"]);
    assert_eq!(h.count(Kind::Employee), 1);
    assert_eq!(h.count(Kind::Client), 1);
    assert_eq!(h.count(Kind::Project), 1);
}

#[tokio::test]
async fn semicolon_export_is_read() {
    let h = harness();
    let csv = format!(
        "{}\nAnn;ann@example.com;Acme;Audit;;Review;No;2024-03-04;09:00;2024-03-04;09:45;0,75;\n",
        HEADER.replace(',', ";")
    );
    let path = h.write_file("semicolon.csv", csv.as_bytes());
    let report = h.import(&path).await;
    assert_eq!(report.rows_imported, 1, "{:?}", report.rejected);
    assert_eq!(
        h.timesheet("Review", "2024-03-04").text("hours"),
        Some("0.75")
    );
}

#[tokio::test]
async fn row_without_email_finds_the_person_by_name() {
    let h = harness();
    let csv = format!(
        "{HEADER}\nHarry,harry@example.com,ACME,Audit,,Fieldwork,Yes,2026-11-02,09:00:00,2026-11-02,10:00:00,01:00:00,\nHarry,,ACME,Audit,,Report,Yes,2026-11-03,09:00:00,2026-11-03,11:00:00,02:00:00,\n"
    );
    let path = h.write_file("harry.csv", csv.as_bytes());
    let report = h.import(&path).await;
    assert_eq!(report.rows_rejected, 0, "{:?}", report.rejected);
    assert_eq!(
        report.people_created.len(),
        1,
        "{:?}",
        report.people_created
    );
    assert_eq!(h.count(Kind::Employee), 1);
}
