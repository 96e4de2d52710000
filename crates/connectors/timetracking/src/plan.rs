//! Turning accepted rows into commands. Every command is validated against the domain rules
//! before anything is written, so a row that would fail is rejected with its reason and the
//! rows that are written all pass.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use steward_domain::command::{ExternalKey, ExternalRef};
use steward_domain::plan::{Stamp, plan_create, plan_update};
use steward_domain::value::format_instant;
use steward_domain::{Command, DomainError, Kind, new_id};
use steward_store::{ReadTx, StoreError};

use crate::entry::{Entry, Part, find_overlaps};
use crate::parse;
use crate::report::{
    CreatedClient, CreatedPerson, CreatedProject, ImportReport, RejectedRow, SplitEntry,
};
use crate::resolve::{Directory, Target, linked};
use crate::{SYSTEM, TIME_ENTRY_MODEL, context};

/// The purpose of a command, so its outcome can be reported against the right row. Created
/// records are named by their position in the report's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Client(usize),
    Person(usize),
    Project(usize),
    Part { entry: usize, part: usize },
}

/// The expected effect of writing a timesheet entry, judged against the stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Create,
    Update,
    Unchanged,
}

/// The commands of an import and the report of what they are expected to do.
pub struct ImportPlan {
    pub commands: Vec<Command>,
    pub origins: Vec<Origin>,
    /// The accepted entries, in file order.
    pub entries: Vec<Entry>,
    /// Per accepted entry, per part.
    pub expected: Vec<Vec<Expected>>,
    pub report: ImportReport,
}

struct NewPerson {
    external: ExternalKey,
    name: String,
    email: String,
}

struct NewClient {
    external: ExternalKey,
    name: String,
}

struct NewProject {
    external: ExternalKey,
    name: String,
    client_name: String,
    client: Option<Target>,
}

/// Records the import creates, each once, in the order rows first name them.
#[derive(Default)]
struct NewRecords {
    people: Vec<NewPerson>,
    clients: Vec<NewClient>,
    projects: Vec<NewProject>,
    index: HashMap<ExternalKey, usize>,
}

impl NewRecords {
    fn note_person(&mut self, target: &Target, name: &str, email: &str) {
        if let Target::New(external) = target
            && !self.index.contains_key(external)
        {
            self.index.insert(external.clone(), self.people.len());
            self.people.push(NewPerson {
                external: external.clone(),
                name: if name.is_empty() { email } else { name }.to_string(),
                email: email.to_string(),
            });
        }
    }

    fn note_client(&mut self, target: Option<&Target>, name: &str) {
        if let Some(Target::New(external)) = target
            && !self.index.contains_key(external)
        {
            self.index.insert(external.clone(), self.clients.len());
            self.clients.push(NewClient {
                external: external.clone(),
                name: name.to_string(),
            });
        }
    }

    fn note_project(
        &mut self,
        target: Option<&Target>,
        name: &str,
        client_name: &str,
        client: Option<&Target>,
    ) {
        if let Some(Target::New(external)) = target
            && !self.index.contains_key(external)
        {
            self.index.insert(external.clone(), self.projects.len());
            self.projects.push(NewProject {
                external: external.clone(),
                name: name.to_string(),
                client_name: client_name.to_string(),
                client: client.cloned(),
            });
        }
    }
}

/// The records one row points at.
struct Targets {
    person: Target,
    client: Option<Target>,
    project: Option<Target>,
}

/// Why a record the import would create is invalid: (column, value, reason).
type Failure = (&'static str, String, String);

/// Fields, attributes and external references of one command. References to records the
/// import creates are resolved inside the write through their external keys.
struct Prepared {
    fields: Map<String, Value>,
    attributes: Map<String, Value>,
    refs: Vec<(String, Option<ExternalRef>)>,
    /// `fields` with a placeholder id for each external reference, for validation.
    checked: Map<String, Value>,
}

impl Prepared {
    fn new() -> Self {
        Prepared {
            fields: Map::new(),
            attributes: Map::new(),
            refs: Vec::new(),
            checked: Map::new(),
        }
    }

    fn set(&mut self, field: &str, value: Value) {
        self.fields.insert(field.into(), value.clone());
        self.checked.insert(field.into(), value);
    }

    fn reference(&mut self, field: &str, target: &Target, placeholder: &str) {
        match target {
            Target::Existing(id) => self.set(field, Value::String(id.clone())),
            Target::New(external) => {
                self.refs
                    .push((field.into(), Some(ExternalRef::One(external.clone()))));
                self.checked
                    .insert(field.into(), Value::String(placeholder.into()));
            }
        }
    }

    fn upsert(self, kind: Kind, external: ExternalKey, state: Option<&str>) -> Command {
        Command::Upsert {
            kind,
            external,
            source_version: None,
            state: state.map(str::to_string),
            fields: self.fields,
            attributes: self.attributes,
            external_refs: self.refs,
        }
    }
}

/// Returns the CSV column that contains the value behind a field of a command.
fn column_of(kind: Kind, field: &str) -> &'static str {
    match (kind, field) {
        (Kind::Employee, "email") => parse::EMAIL,
        (Kind::Employee, _) | (_, "employee") => parse::USER,
        (Kind::Client, _) => parse::CLIENT,
        (Kind::Project, _) | (_, "project") => parse::PROJECT,
        (_, "hours") => parse::DURATION,
        (_, "notes") => parse::DESCRIPTION,
        (_, "billable") => parse::BILLABLE,
        (_, "started_at") => parse::START_TIME,
        (_, "ended_at") => parse::END_TIME,
        _ => parse::START_DATE,
    }
}

fn describe(kind: Kind, error: DomainError) -> Failure {
    match error {
        DomainError::Validation { errors, .. } if !errors.is_empty() => {
            let first = &errors[0];
            let value = match &first.value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let reasons: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            (column_of(kind, &first.field), value, reasons.join("; "))
        }
        other => (column_of(kind, ""), String::new(), other.to_string()),
    }
}

/// Plans the commands for the accepted entries and moves rows that would fail into the
/// report's rejected list.
pub fn plan_import(
    tx: &dyn ReadTx,
    entries: Vec<Entry>,
    mut report: ImportReport,
    now: DateTime<Utc>,
) -> Result<ImportPlan, StoreError> {
    let stamp = Stamp {
        event_id: new_id(),
        correlation: new_id(),
        now,
    };
    let context = context();
    let placeholder = new_id();
    let mut directory = Directory::load(tx)?;

    // Resolve what each row points at.
    let mut new_records = NewRecords::default();
    let mut resolved: Vec<(Entry, Targets)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let row = &entry.row;
        let person = match directory.person(tx, &entry.person_key, &row.user, &row.email)? {
            Ok(target) => target,
            Err(reason) => {
                report.rejected.push(RejectedRow {
                    line: row.line,
                    column: Some(parse::USER.into()),
                    value: row.user.clone(),
                    reason,
                });
                continue;
            }
        };
        let client = directory.client(tx, &row.client)?;
        let project = directory.project(tx, &row.project, &row.client, client.as_ref())?;
        new_records.note_person(&person, &row.user, &row.email);
        new_records.note_client(client.as_ref(), &row.client);
        new_records.note_project(project.as_ref(), &row.project, &row.client, client.as_ref());
        resolved.push((
            entry,
            Targets {
                person,
                client,
                project,
            },
        ));
    }

    // Validate the records the import would create.
    let mut failures: HashMap<ExternalKey, Failure> = HashMap::new();
    let mut check_new = |kind: Kind, external: &ExternalKey, prepared: &Prepared| {
        let outcome = plan_create(
            kind,
            placeholder.clone(),
            Some(new_record_state(kind)),
            &prepared.checked,
            &prepared.attributes,
            &context,
            &stamp,
        );
        if let Err(error) = outcome {
            failures.insert(external.clone(), describe(kind, error));
        }
    };
    for person in &new_records.people {
        check_new(Kind::Employee, &person.external, &person_fields(person));
    }
    for client in &new_records.clients {
        check_new(Kind::Client, &client.external, &client_fields(client));
    }
    for project in &new_records.projects {
        check_new(
            Kind::Project,
            &project.external,
            &project_fields(project, &placeholder),
        );
    }

    // Validate every entry against what is stored, and keep the rows that pass whole.
    let mut accepted = Vec::new();
    let mut accepted_targets = Vec::new();
    let mut expected = Vec::new();
    let mut entry_commands = Vec::new();
    'rows: for (entry, targets) in resolved {
        let failed = [
            Some(&targets.person),
            targets.client.as_ref(),
            targets.project.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|target| match target {
            Target::New(external) => failures.get(external),
            Target::Existing(_) => None,
        });
        if let Some((column, value, reason)) = failed {
            report.rejected.push(RejectedRow {
                line: entry.row.line,
                column: Some(column.to_string()),
                value: value.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        let mut row_expected = Vec::new();
        let mut row_commands = Vec::new();
        for part in &entry.parts {
            let prepared = timesheet_fields(&entry, part, &targets, &placeholder);
            let external = ExternalKey::new(SYSTEM, TIME_ENTRY_MODEL, &part.external_id);
            let current = match linked(tx, &external, Kind::Timesheet)? {
                Some(id) => tx.record(Kind::Timesheet, &id)?,
                None => None,
            };
            let outcome = match &current {
                Some(current) => plan_update(
                    current,
                    &prepared.checked,
                    &prepared.attributes,
                    None,
                    None,
                    &context,
                    &stamp,
                )
                .map(|planned| match planned {
                    Some(_) => Expected::Update,
                    None => Expected::Unchanged,
                }),
                None => plan_create(
                    Kind::Timesheet,
                    placeholder.clone(),
                    None,
                    &prepared.checked,
                    &prepared.attributes,
                    &context,
                    &stamp,
                )
                .map(|_| Expected::Create),
            };
            match outcome {
                Ok(expectation) => {
                    row_expected.push(expectation);
                    row_commands.push(prepared.upsert(Kind::Timesheet, external, None));
                }
                Err(error) => {
                    let (column, value, reason) = describe(Kind::Timesheet, error);
                    report.rejected.push(RejectedRow {
                        line: entry.row.line,
                        column: Some(column.to_string()),
                        value,
                        reason,
                    });
                    continue 'rows;
                }
            }
        }
        expected.push(row_expected);
        entry_commands.push(row_commands);
        accepted_targets.push(targets);
        accepted.push(entry);
    }

    // Only records that an accepted row points at are created.
    let needed: HashSet<&ExternalKey> = accepted_targets
        .iter()
        .flat_map(|t| [Some(&t.person), t.client.as_ref(), t.project.as_ref()])
        .flatten()
        .filter_map(|target| match target {
            Target::New(external) => Some(external),
            Target::Existing(_) => None,
        })
        .collect();
    // A project the import creates may point at a client it creates.
    let needed: HashSet<ExternalKey> = needed
        .iter()
        .map(|k| (*k).clone())
        .chain(
            new_records
                .projects
                .iter()
                .filter(|p| needed.contains(&p.external))
                .filter_map(|p| match &p.client {
                    Some(Target::New(client)) => Some(client.clone()),
                    _ => None,
                }),
        )
        .collect();

    let mut commands = Vec::new();
    let mut origins = Vec::new();
    for client in &new_records.clients {
        if needed.contains(&client.external) {
            let command = client_fields(client).upsert(
                Kind::Client,
                client.external.clone(),
                Some(new_record_state(Kind::Client)),
            );
            commands.push(command);
            origins.push(Origin::Client(report.clients_created.len()));
            report.clients_created.push(CreatedClient {
                id: None,
                name: client.name.clone(),
            });
        }
    }
    for person in &new_records.people {
        if needed.contains(&person.external) {
            let command = person_fields(person).upsert(
                Kind::Employee,
                person.external.clone(),
                Some(new_record_state(Kind::Employee)),
            );
            commands.push(command);
            origins.push(Origin::Person(report.people_created.len()));
            report.people_created.push(CreatedPerson {
                id: None,
                name: person.name.clone(),
                email: Some(person.email.clone()).filter(|e| !e.is_empty()),
            });
        }
    }
    for project in &new_records.projects {
        if needed.contains(&project.external) {
            let command = project_fields(project, &placeholder).upsert(
                Kind::Project,
                project.external.clone(),
                Some(new_record_state(Kind::Project)),
            );
            commands.push(command);
            origins.push(Origin::Project(report.projects_created.len()));
            report.projects_created.push(CreatedProject {
                id: None,
                name: project.name.clone(),
                client: Some(project.client_name.clone()).filter(|c| !c.is_empty()),
            });
        }
    }
    for (entry_index, row_commands) in entry_commands.into_iter().enumerate() {
        for (part_index, command) in row_commands.into_iter().enumerate() {
            commands.push(command);
            origins.push(Origin::Part {
                entry: entry_index,
                part: part_index,
            });
        }
    }

    report.rejected.sort_by_key(|r| r.line);
    report.rows_rejected = report.rejected.len();
    report.hours = accepted.iter().map(|e| e.hours).sum();
    report.overlaps = find_overlaps(&accepted);
    report.split_entries = accepted
        .iter()
        .filter(|e| e.parts.len() > 1)
        .map(|e| SplitEntry {
            line: e.row.line,
            days: e.parts.iter().map(|p| p.date).collect(),
        })
        .collect();
    Ok(ImportPlan {
        commands,
        origins,
        entries: accepted,
        expected,
        report,
    })
}

/// Returns the state a record created by the import starts in. The import issues commands for these
/// records only when it found none, so the state never overwrites a later decision.
fn new_record_state(kind: Kind) -> &'static str {
    match kind {
        Kind::Project => "active",
        _ => kind.schema().default_state(),
    }
}

fn person_fields(person: &NewPerson) -> Prepared {
    let mut prepared = Prepared::new();
    prepared.set("name", json!(person.name));
    if !person.email.is_empty() {
        prepared.set("email", json!(person.email));
    }
    prepared
}

fn client_fields(client: &NewClient) -> Prepared {
    let mut prepared = Prepared::new();
    prepared.set("name", json!(client.name));
    prepared
}

fn project_fields(project: &NewProject, placeholder: &str) -> Prepared {
    let mut prepared = Prepared::new();
    prepared.set("name", json!(project.name));
    if let Some(client) = &project.client {
        prepared.reference("client", client, placeholder);
    }
    prepared
}

fn timesheet_fields(entry: &Entry, part: &Part, targets: &Targets, placeholder: &str) -> Prepared {
    let row = &entry.row;
    let mut prepared = Prepared::new();
    prepared.reference("employee", &targets.person, placeholder);
    if let Some(project) = &targets.project {
        prepared.reference("project", project, placeholder);
    }
    prepared.set("date", json!(part.date.format("%Y-%m-%d").to_string()));
    prepared.set("hours", json!(part.hours.normalize().to_string()));
    prepared.set("billable", json!(row.billable));
    prepared.set("started_at", json!(format_instant(part.start)));
    prepared.set("ended_at", json!(format_instant(part.end)));
    if !row.description.is_empty() {
        prepared.set("notes", json!(row.description));
    }
    // Null removes a value an earlier import stored, and is dropped on create.
    let task = Some(row.task.clone()).filter(|t| !t.is_empty());
    let tags = Some(&row.tags).filter(|t| !t.is_empty());
    prepared.attributes.insert("toggl_task".into(), json!(task));
    prepared.attributes.insert("toggl_tags".into(), json!(tags));
    prepared
}
