//! Margin and account health from the stored records: each running project's hours, cost,
//! budget and progress, open milestones and open support tickets, checked by
//! `steward_controls::health`.
//!
//! Support tickets are `ticket` records with an `sla_due_at` deadline.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use steward_controls::health::{
    self, Accountable, OpenMilestone, OpenTicket, ProjectHealth, TaskState,
};
use steward_controls::settings::ControlSettings;
use steward_controls::{BUDGET_BURN, MARGIN_LOW, MILESTONE_OVERDUE, SLA_BREACH};
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, Record};
use steward_store::{AggregateQuery, ReadTx, StoreError};

/// Timesheet states whose hours cost the firm; rejected entries do not.
pub(crate) const COSTED: &[&str] = &["draft", "submitted", "approved", "invoiced", "written_off"];

/// Names and cost rates of people, and account leaders of clients.
struct Directory {
    people: HashMap<String, Record>,
    clients: HashMap<String, Record>,
}

impl Directory {
    fn load(tx: &dyn ReadTx) -> Result<Directory, StoreError> {
        let mut people = HashMap::new();
        tx.scan_records(Kind::Employee, &mut |record| {
            people.insert(record.id.clone(), record);
            Ok(true)
        })?;
        let mut clients = HashMap::new();
        tx.scan_records(Kind::Client, &mut |record| {
            clients.insert(record.id.clone(), record);
            Ok(true)
        })?;
        Ok(Directory { people, clients })
    }

    fn person(&self, id: Option<&str>, capacity: &str) -> Option<Accountable> {
        let id = id?;
        let name = self.people.get(id).map(Record::title);
        Some(Accountable::new(id, name, capacity))
    }

    fn manager_of(&self, project: &Record) -> Option<Accountable> {
        self.person(project.ref_id("owner"), "project manager")
    }

    fn account_leader_of(&self, client: Option<&str>) -> Option<Accountable> {
        let client = self.clients.get(client?)?;
        self.person(client.ref_id("account_leader"), "account leader")
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// Hours per project and person.
fn hours_by_project(
    tx: &dyn ReadTx,
) -> Result<HashMap<String, Vec<(Option<String>, Decimal)>>, StoreError> {
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["project".into(), "employee".into()],
        sum: Some("hours".into()),
        states: COSTED.iter().map(|s| s.to_string()).collect(),
        min_sum: None,
        range: None,
    })?;
    let mut hours: HashMap<String, Vec<(Option<String>, Decimal)>> = HashMap::new();
    for row in rows {
        if let Some(project) = text(&row.keys[0]) {
            hours
                .entry(project)
                .or_default()
                .push((text(&row.keys[1]), row.sum));
        }
    }
    Ok(hours)
}

/// Non-billable approved expenses per project and currency: billable ones are charged on.
fn expenses_by_project(tx: &dyn ReadTx) -> Result<HashMap<(String, String), Decimal>, StoreError> {
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Expense),
        group_by: vec!["project".into(), "currency".into(), "billable".into()],
        sum: Some("amount".into()),
        states: vec!["approved".into(), "invoiced".into()],
        min_sum: None,
        range: None,
    })?;
    let mut costs = HashMap::new();
    for row in rows {
        if row.keys[2].as_bool() == Some(true) {
            continue;
        }
        if let (Some(project), Some(currency)) = (text(&row.keys[0]), text(&row.keys[1])) {
            *costs.entry((project, currency)).or_default() += row.sum;
        }
    }
    Ok(costs)
}

/// Tasks and milestones per project, and the milestones still planned.
struct Work {
    tasks: HashMap<String, Vec<TaskState>>,
    milestones: HashMap<String, (usize, usize)>,
    open_milestones: Vec<Record>,
}

fn load_work(tx: &dyn ReadTx) -> Result<Work, StoreError> {
    let mut work = Work {
        tasks: HashMap::new(),
        milestones: HashMap::new(),
        open_milestones: Vec::new(),
    };
    tx.scan_records(Kind::Task, &mut |record| {
        if let Some(project) = record.ref_id("project") {
            work.tasks
                .entry(project.to_string())
                .or_default()
                .push(TaskState {
                    planned_hours: record.decimal("planned_hours"),
                    done: record.state == "done",
                    cancelled: record.state == "cancelled",
                });
        }
        Ok(true)
    })?;
    tx.scan_records(Kind::Milestone, &mut |record| {
        if let Some(project) = record.ref_id("project") {
            let counts = work.milestones.entry(project.to_string()).or_default();
            counts.1 += 1;
            if record.state != "planned" {
                counts.0 += 1;
            }
        }
        if record.state == "planned" && record.date("deadline").is_some() {
            work.open_milestones.push(record);
        }
        Ok(true)
    })?;
    Ok(work)
}

fn project_health(
    project: &Record,
    directory: &Directory,
    hours: &[(Option<String>, Decimal)],
    expenses: &HashMap<(String, String), Decimal>,
    work: &Work,
    today: chrono::NaiveDate,
) -> ProjectHealth {
    let currency = project.text("currency").map(str::to_string);
    let mut total = Decimal::ZERO;
    let mut cost = Decimal::ZERO;
    let mut without_cost = Decimal::ZERO;
    for (employee, logged) in hours {
        total += *logged;
        let rate = employee
            .as_deref()
            .and_then(|e| directory.people.get(e))
            .filter(|p| p.text("currency").map(str::to_string) == currency)
            .and_then(|p| p.decimal("cost_rate"));
        match rate {
            Some(rate) => cost += rate * *logged,
            None => without_cost += *logged,
        }
    }
    if let Some(currency) = &currency {
        cost += expenses
            .get(&(project.id.clone(), currency.clone()))
            .copied()
            .unwrap_or_default();
    }
    let tasks = work
        .tasks
        .get(&project.id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let milestones = work
        .milestones
        .get(&project.id)
        .copied()
        .unwrap_or_default();
    ProjectHealth {
        id: project.id.clone(),
        name: project.title(),
        state: project.state.clone(),
        currency,
        budget: project.decimal("budget"),
        budget_hours: project.decimal("budget_hours"),
        hours: total,
        cost,
        hours_without_cost: without_cost,
        progress: health::progress(
            tasks,
            milestones,
            (project.date("start_date"), project.date("end_date")),
            today,
        ),
        manager: directory.manager_of(project),
        account_leader: directory.account_leader_of(project.ref_id("client")),
    }
}

/// Runs the four health controls; a control switched off returns no findings, so its open
/// findings resolve.
pub fn check(
    tx: &dyn ReadTx,
    settings: &ControlSettings,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Vec<RaisedFinding>)>, StoreError> {
    let today = now.date_naive();
    let directory = Directory::load(tx)?;
    let hours = hours_by_project(tx)?;
    let expenses = expenses_by_project(tx)?;
    let work = load_work(tx)?;

    let mut projects = HashMap::new();
    tx.scan_records(Kind::Project, &mut |record| {
        projects.insert(record.id.clone(), record);
        Ok(true)
    })?;
    let mut running: Vec<ProjectHealth> = projects
        .values()
        .filter(|p| matches!(p.state.as_str(), "active" | "on_hold"))
        .map(|p| {
            let logged = hours.get(&p.id).map(Vec::as_slice).unwrap_or(&[]);
            project_health(p, &directory, logged, &expenses, &work, today)
        })
        .collect();
    running.sort_by(|a, b| a.id.cmp(&b.id));

    let milestones: Vec<OpenMilestone> = work
        .open_milestones
        .iter()
        .filter_map(|m| {
            let project = projects.get(m.ref_id("project")?)?;
            if matches!(project.state.as_str(), "closed" | "cancelled") {
                return None;
            }
            Some(OpenMilestone {
                id: m.id.clone(),
                name: m.title(),
                project: project.id.clone(),
                project_name: project.title(),
                deadline: m.date("deadline")?,
                amount: m.text("amount").map(str::to_string),
                currency: m.text("currency").map(str::to_string),
                manager: directory.manager_of(project),
            })
        })
        .collect();

    let mut tickets = Vec::new();
    tx.scan_records(Kind::Ticket, &mut |record| {
        if !matches!(record.state.as_str(), "open" | "in_progress") {
            return Ok(true);
        }
        let Some(sla_due_at) = record.datetime("sla_due_at") else {
            return Ok(true);
        };
        let project = record.ref_id("project").and_then(|p| projects.get(p));
        let client = record
            .ref_id("client")
            .or(project.and_then(|p| p.ref_id("client")));
        let accountable = project
            .and_then(|p| directory.manager_of(p))
            .or_else(|| directory.account_leader_of(client))
            .or_else(|| directory.person(record.ref_id("assignee"), "assignee"));
        tickets.push(OpenTicket {
            id: record.id.clone(),
            title: record.title(),
            priority: record.text("priority").map(str::to_string),
            sla_due_at,
            project_name: project.map(Record::title),
            client_name: client
                .and_then(|c| directory.clients.get(c))
                .map(Record::title),
            accountable,
        });
        Ok(true)
    })?;

    let health = &settings.health;
    let only_if_on = |control: &'static str, findings: Vec<RaisedFinding>| {
        let findings = if settings.is_on(control) {
            findings
        } else {
            Vec::new()
        };
        (control, findings)
    };
    Ok(vec![
        only_if_on(BUDGET_BURN, health::budget_burn(&running, health)),
        only_if_on(MARGIN_LOW, health::margin_low(&running, health)),
        only_if_on(
            MILESTONE_OVERDUE,
            health::milestones_overdue(&milestones, health, today),
        ),
        only_if_on(SLA_BREACH, health::sla_breaches(&tickets, now)),
    ])
}
