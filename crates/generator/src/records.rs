//! Writing the firm's standing records: calendars, employees, clients, contracts and their
//! lines, projects, milestones, tasks, allocations and leaves.

use chrono::{Duration, NaiveDate};
use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use steward_domain::{Currency, Kind, Money, new_id};

use crate::GenerateError;
use crate::calendar::TIMEZONE;
use crate::config::FirmConfig;
use crate::firm::{FULL_TIME, Firm, Project, ROLES, mean_rate, per_euro};
use crate::names;
use crate::writer::Writer;

/// Builds a field map from pairs, leaving out nulls.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// Converts euros to `currency` at the minor unit.
pub fn money(euros: Decimal, currency: Currency) -> Decimal {
    Money::round(euros * per_euro(currency), currency).amount
}

/// Converts an hourly rate in euros to whole units of `currency`, as rate cards show them.
fn rate(euros: u32, currency: Currency) -> Decimal {
    (Decimal::from(euros) * per_euro(currency)).round()
}

fn date(day: NaiveDate) -> Value {
    json!(day.format("%Y-%m-%d").to_string())
}

/// Returns true for billing models that bill time by the hour.
pub fn bills_time(model: &str) -> bool {
    matches!(
        model,
        "time_and_materials" | "retainer" | "prepaid_hours" | "mixed"
    )
}

/// Writes every standing record of the firm and records the contract line each project's
/// time bills to.
pub async fn write_firm(
    firm: &mut Firm,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    for calendar in &firm.calendars {
        writer
            .create(
                Kind::WorkCalendar,
                &calendar.id,
                "active",
                calendar.fields(),
            )
            .await?;
    }
    write_people(firm, config, writer).await?;
    write_clients(firm, writer, rng).await?;
    for index in 0..firm.projects.len() {
        write_project(firm, index, config, writer, rng).await?;
    }
    write_allocations(firm, config, writer, rng).await?;
    write_leaves(firm, config, writer).await
}

async fn write_people(
    firm: &Firm,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
) -> Result<(), GenerateError> {
    for person in &firm.people {
        let role = person.role();
        let manager = person.manager.map(|m| firm.people[m].id.clone());
        let login = person.email.split('@').next().unwrap_or_default();
        let record = fields([
            ("name", json!(person.name)),
            ("email", json!(person.email)),
            ("manager", json!(manager)),
            ("role", json!(role.name)),
            ("department", json!(role.department)),
            ("skills", json!(person.skills)),
            ("currency", json!(config.currency.code())),
            (
                "cost_rate",
                json!(money(Decimal::from(person.cost_eur), config.currency).to_string()),
            ),
            ("country", json!(person.country)),
            ("calendar", json!(firm.calendars[person.calendar].id)),
            ("timezone", json!(TIMEZONE.name())),
            ("user_login", json!(login)),
        ]);
        writer
            .create(Kind::Employee, &person.id, "active", record)
            .await?;
    }
    Ok(())
}

async fn write_clients(
    firm: &Firm,
    writer: &mut Writer<'_>,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    for client in &firm.clients {
        let slug: String = client
            .name
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let record = fields([
            ("name", json!(client.name)),
            ("is_company", json!(true)),
            ("country", json!(client.country)),
            ("currency", json!(client.currency.code())),
            (
                "vat",
                json!(format!(
                    "{}{:010}",
                    client.country,
                    rng.random_range(0..10_000_000_000u64)
                )),
            ),
            ("email", json!(format!("accounts@{slug}.example"))),
            ("city", json!(client.city)),
            (
                "account_leader",
                json!(firm.people[client.account_leader].id),
            ),
            ("payment_terms", json!("30 days")),
        ]);
        writer
            .create(Kind::Client, &client.id, "active", record)
            .await?;
    }
    Ok(())
}

/// Hours of the people booked on a project per week, and their roles.
fn team(firm: &Firm, project: usize) -> (u32, Vec<usize>, Vec<usize>) {
    let mut hours = 0;
    let mut roles = Vec::new();
    let mut members = Vec::new();
    for (index, person) in firm.people.iter().enumerate() {
        for allocation in person.allocations.iter().filter(|a| a.project == project) {
            hours += allocation.hours_per_week;
            roles.push(person.role);
            members.push(index);
        }
    }
    (hours, roles, members)
}

/// A contract line to write: name, billing model, quantity, unit and unit price.
struct Line {
    id: String,
    name: &'static str,
    model: &'static str,
    quantity: Decimal,
    unit: &'static str,
    unit_price: Decimal,
}

/// Splits a contract's value into lines for its billing model.
fn contract_lines(
    model: &'static str,
    budget: Decimal,
    hours: Decimal,
    hourly: Decimal,
    months: i64,
    currency: Currency,
) -> Vec<Line> {
    let line = |name, model, quantity: Decimal, unit, unit_price| Line {
        id: new_id(),
        name,
        model,
        quantity,
        unit,
        unit_price,
    };
    let one = Decimal::ONE;
    match model {
        "time_and_materials" => vec![line("Consulting services", model, hours, "Hours", hourly)],
        "fixed_fee" => vec![line("Fixed-fee delivery", model, one, "Units", budget)],
        "milestone" => vec![line("Milestone payments", model, one, "Units", budget)],
        "retainer" => {
            let monthly = Money::round(budget / Decimal::from(months.max(1)), currency).amount;
            vec![line(
                "Monthly retainer",
                model,
                Decimal::from(months.max(1)),
                "Months",
                monthly,
            )]
        }
        "prepaid_hours" => vec![line("Prepaid hours", model, hours, "Hours", hourly)],
        "manual" => vec![line(
            "Managed service units",
            model,
            Decimal::from(12),
            "Units",
            Money::round(budget / Decimal::from(12), currency).amount,
        )],
        _ => {
            let fixed = Money::round(budget * Decimal::new(4, 1), currency).amount;
            let time_hours = (hours * Decimal::new(6, 1)).round();
            vec![
                line(
                    "Consulting services",
                    "time_and_materials",
                    time_hours,
                    "Hours",
                    hourly,
                ),
                line("Fixed-fee delivery", "fixed_fee", one, "Units", fixed),
            ]
        }
    }
}

async fn write_project(
    firm: &mut Firm,
    index: usize,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    let (weekly_hours, roles, members) = team(firm, index);
    let project = &firm.projects[index];
    let currency = project.currency;
    let weeks = ((project.end - project.start).num_days() / 7).clamp(4, 52);
    let months = (weeks / 4).max(1);
    // The budget covers the team's booked hours with a tenth of slack, rounded down to ten
    // hours and at least 80.
    let booked = i64::from(weekly_hours.max(8)) * weeks;
    let hours = Decimal::from((booked * 11 / 10 / 10 * 10).max(80));
    let hourly = rate(mean_rate(&roles), currency);
    let budget = Money::round(hours * hourly, currency).amount;
    let billable_time = bills_time(project.model);

    let mut lines = Vec::new();
    if let (Some(client), Some(contract_id)) = (project.client, &project.contract_id) {
        let client = &firm.clients[client];
        lines = contract_lines(project.model, budget, hours, hourly, months, currency);
        let mut rate_card = Map::new();
        let card: Map<String, Value> = ROLES
            .iter()
            .map(|role| {
                (
                    role.name.to_string(),
                    json!(rate(role.rate_eur, currency).to_string()),
                )
            })
            .collect();
        rate_card.insert("roles".into(), Value::Object(card));
        if let Some(first) = members.first().filter(|_| rng.random_range(0..100) < 30) {
            let person = &firm.people[*first];
            let negotiated = rate(person.role().rate_eur * 9 / 10, currency);
            rate_card.insert(
                "people".into(),
                json!({ person.id.clone(): negotiated.to_string() }),
            );
        }
        let with_po = rng.random_range(0..100) < 50;
        let model = project.model;
        let period = match model {
            "milestone" => "milestone",
            "fixed_fee" => "completion",
            _ => "monthly",
        };
        let record = fields([
            ("name", json!(format!("{} statement of work", project.name))),
            ("client", json!(client.id)),
            ("billing_model", json!(model)),
            ("currency", json!(currency.code())),
            ("reference", json!(format!("SO{:05}", index + 1))),
            ("amount", json!(budget.to_string())),
            (
                "cap",
                json!((model == "time_and_materials").then(|| {
                    Money::round(budget * Decimal::new(11, 1), currency)
                        .amount
                        .to_string()
                })),
            ),
            ("rate_card", Value::Object(rate_card)),
            ("payment_terms", json!("30 days")),
            (
                "terms",
                json!(if rng.random_range(0..100) < 85 {
                    "standard"
                } else {
                    "non_standard"
                }),
            ),
            ("subcontractors", json!(rng.random_range(0..100) < 10)),
            (
                "po_number",
                json!(with_po.then(|| format!("PO-{}-{:04}", client.country, index + 1))),
            ),
            ("po_amount", json!(with_po.then(|| budget.to_string()))),
            (
                "po_valid_until",
                json!(with_po.then(|| project.end.to_string())),
            ),
            ("billing_period", json!(period)),
            ("start_date", date(project.start)),
            ("end_date", date(project.end)),
            ("owner", json!(firm.people[project.owner].id)),
            ("service_line", json!(project.service_line)),
        ]);
        let state = if project.state == "closed" {
            "closed"
        } else {
            "active"
        };
        writer
            .create(Kind::Contract, contract_id, state, record)
            .await?;
    }

    let record = fields([
        ("name", json!(project.name)),
        (
            "client",
            json!(project.client.map(|c| firm.clients[c].id.clone())),
        ),
        ("contract", json!(project.contract_id)),
        ("owner", json!(firm.people[project.owner].id)),
        ("currency", json!(currency.code())),
        ("budget", json!(project.client.map(|_| budget.to_string()))),
        (
            "budget_hours",
            json!(project.client.map(|_| hours.to_string())),
        ),
        ("start_date", date(project.start)),
        ("end_date", date(project.end)),
        ("service_line", json!(project.service_line)),
        ("billable", json!(billable_time)),
        ("calendar", json!(firm.calendars[FULL_TIME].id)),
    ]);
    writer
        .create(Kind::Project, &project.id, project.state, record)
        .await?;

    let tax_rate = match project.client.map(|c| firm.clients[c].country) {
        Some("BE") => "21",
        _ => "0",
    };
    let line_state = if project.state == "closed" {
        "closed"
    } else {
        "open"
    };
    for line in &lines {
        let record = fields([
            ("contract", json!(project.contract_id)),
            ("name", json!(line.name)),
            ("billing_model", json!(line.model)),
            ("currency", json!(currency.code())),
            ("quantity", json!(line.quantity.to_string())),
            ("unit", json!(line.unit)),
            ("unit_price", json!(line.unit_price.to_string())),
            ("tax_rate", json!(tax_rate)),
            ("project", json!(project.id)),
        ]);
        writer
            .create(Kind::ContractLine, &line.id, line_state, record)
            .await?;
    }
    let billable_line = lines
        .iter()
        .find(|l| billable_time && bills_time(l.model))
        .map(|l| l.id.clone());
    let milestone_line = lines
        .iter()
        .find(|l| matches!(l.model, "milestone" | "fixed_fee"));
    let milestones = match milestone_line {
        Some(line) => write_milestones(project, line, config, writer).await?,
        None => Vec::new(),
    };

    let assignees: Vec<String> = members.iter().map(|m| firm.people[*m].id.clone()).collect();
    for (position, (task_id, name)) in project.task_ids.iter().zip(&project.task_names).enumerate()
    {
        let last = position + 1 == project.task_ids.len();
        let state = if project.state == "closed" || (position == 0 && project.start < config.start)
        {
            "done"
        } else if last {
            "open"
        } else {
            "in_progress"
        };
        let deadline = project.start
            + Duration::days(
                (project.end - project.start).num_days() * (position as i64 + 1)
                    / project.task_ids.len() as i64,
            );
        let record = fields([
            ("name", json!(name)),
            ("project", json!(project.id)),
            ("assignees", json!(assignees)),
            ("milestone", json!(milestones.get(position))),
            (
                "contract_line",
                json!(
                    billable_line
                        .clone()
                        .or_else(|| lines.first().map(|l| l.id.clone()))
                ),
            ),
            ("deadline", date(deadline)),
            ("planned_hours", json!(rng.random_range(4..=40u32) * 10)),
            ("stage", json!(state.replace('_', " "))),
            (
                "priority",
                json!(if rng.random_range(0..100) < 15 {
                    "high"
                } else {
                    "normal"
                }),
            ),
        ]);
        writer.create(Kind::Task, task_id, state, record).await?;
    }
    firm.projects[index].billable_line = billable_line;
    Ok(())
}

/// Writes three milestones worth 30, 40 and 30 percent of a fixed-price line, due at a third,
/// two thirds and the end of the project. Returns their ids.
async fn write_milestones(
    project: &Project,
    line: &Line,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
) -> Result<Vec<String>, GenerateError> {
    let total = line.unit_price * line.quantity;
    let span = (project.end - project.start).num_days();
    let mut ids = Vec::new();
    let mut assigned = Decimal::ZERO;
    for (position, (name, percent)) in [
        ("Phase 1 sign-off", 30),
        ("Phase 2 delivery", 40),
        ("Final acceptance", 30),
    ]
    .into_iter()
    .enumerate()
    {
        let amount = if position == 2 {
            total - assigned
        } else {
            Money::round(total * Decimal::new(percent, 2), project.currency).amount
        };
        assigned += amount;
        let deadline = project.start + Duration::days(span * (position as i64 + 1) / 3);
        let (state, reached, accepted) = if deadline < config.end - Duration::days(30) {
            (
                "accepted",
                Some(deadline),
                Some(deadline + Duration::days(5)),
            )
        } else if deadline < config.end {
            ("reached", Some(deadline), None)
        } else {
            ("planned", None, None)
        };
        let id = new_id();
        let record = fields([
            ("name", json!(name)),
            ("project", json!(project.id)),
            ("deadline", date(deadline)),
            ("contract_line", json!(line.id)),
            ("currency", json!(project.currency.code())),
            ("amount", json!(amount.to_string())),
            ("percentage", json!(percent.to_string())),
            ("reached_on", json!(reached.map(|d| d.to_string()))),
            ("accepted_on", json!(accepted.map(|d| d.to_string()))),
        ]);
        writer.create(Kind::Milestone, &id, state, record).await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn write_allocations(
    firm: &Firm,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    for person in &firm.people {
        for allocation in &person.allocations {
            let project = &firm.projects[allocation.project];
            let state = if project.state == "closed" {
                "ended"
            } else {
                "confirmed"
            };
            let record = fields([
                ("project", json!(project.id)),
                ("employee", json!(person.id)),
                ("role", json!(person.role().name)),
                ("required_skills", json!(person.skills[..2])),
                (
                    "hours_per_week",
                    json!(allocation.hours_per_week.to_string()),
                ),
                ("start_date", date(allocation.start)),
                ("end_date", date(allocation.end)),
            ]);
            writer
                .create(Kind::Allocation, &allocation.id, state, record)
                .await?;
        }
    }
    // Every fifth active client project has an open role, with no one booked yet.
    let client_projects = firm
        .projects
        .iter()
        .filter(|p| p.client.is_some() && p.state == "active");
    for project in client_projects.step_by(5) {
        let skills: Vec<&str> = names::SKILLS.sample(rng, 2).copied().collect();
        let record = fields([
            ("project", json!(project.id)),
            ("role", json!("Senior Consultant")),
            ("required_skills", json!(skills)),
            ("hours_per_week", json!("16")),
            ("start_date", date(config.end + Duration::days(7))),
            ("end_date", date(project.end)),
        ]);
        writer
            .create(Kind::Allocation, &new_id(), "planned", record)
            .await?;
    }
    Ok(())
}

async fn write_leaves(
    firm: &Firm,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
) -> Result<(), GenerateError> {
    for person in &firm.people {
        let calendar = &firm.calendars[person.calendar];
        for leave in &person.leaves {
            let scheduled: Vec<u32> = leave
                .first
                .iter_days()
                .take_while(|d| *d <= leave.last)
                .map(|d| calendar.scheduled(d))
                .filter(|h| *h > 0)
                .collect();
            let (leave_type, reason) = if leave.sick {
                ("Sick Time Off", "Sick leave")
            } else {
                ("Paid Time Off", "Holiday")
            };
            let record = fields([
                ("employee", json!(person.id)),
                ("start_date", date(leave.first)),
                ("end_date", date(leave.last)),
                ("leave_type", json!(leave_type)),
                ("hours", json!(scheduled.iter().sum::<u32>().to_string())),
                ("days", json!(scheduled.len().to_string())),
                ("reason", json!(reason)),
            ]);
            let state = if leave.last <= config.end {
                "approved"
            } else {
                "requested"
            };
            writer.create(Kind::Leave, &new_id(), state, record).await?;
        }
    }
    Ok(())
}
