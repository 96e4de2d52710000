//! Time and expenses, day by day. Each day has its own random stream seeded from the firm's
//! seed and the date, and its records go to the writer as they are made, so memory stays
//! flat however long the period.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use indicatif::ProgressBar;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::value::format_instant;
use steward_domain::{Currency, Kind, new_id};

use crate::GenerateError;
use crate::calendar::TIMEZONE;
use crate::config::FirmConfig;
use crate::firm::{Firm, Person};
use crate::names;
use crate::records::{fields, money};
use crate::writer::Writer;

/// Ids of the planted records, filled in as the days are written.
#[derive(Default)]
pub struct PlantedIds {
    pub long_day: Vec<String>,
    pub over_calendar: Vec<String>,
    pub overlap: Vec<String>,
    pub closed_project: Vec<String>,
    pub partner_expenses: Vec<String>,
    pub self_approved_expense: Vec<String>,
}

/// Totals of what the days wrote.
#[derive(Default)]
pub struct Totals {
    pub hours: Decimal,
    pub planted: PlantedIds,
}

/// One timesheet entry to write.
struct Entry<'a> {
    project: usize,
    minutes: u32,
    notes: &'a str,
    /// Local start and end for people who use a timer.
    timer: Option<(NaiveTime, NaiveTime)>,
    /// A state that overrides the one the date gives.
    state: Option<&'static str>,
}

/// Expense categories: name, range in euros, and whether the cost is rebilled to clients.
const CATEGORIES: &[(&str, u32, u32, bool)] = &[
    ("Travel", 20, 400, true),
    ("Meals", 10, 80, true),
    ("Accommodation", 80, 250, true),
    ("Mileage", 15, 120, true),
    ("Software", 10, 200, false),
    ("Training", 100, 900, false),
];

/// Chance, in percent, that a person files an expense on a working day.
const EXPENSE_PERCENT: u32 = 4;

/// Mixes the firm's seed with a day (SplitMix64), so each day draws from its own stream.
fn day_seed(seed: u64, day: NaiveDate) -> u64 {
    let mut z = seed ^ (day.num_days_from_ce() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns the state of an entry of `day`. Entries two weeks old or older are approved, and
/// about one in fifty of them rejected. Younger entries are submitted, except that some of
/// the last four days' entries are still drafts.
fn state_for(day: NaiveDate, end: NaiveDate, rng: &mut ChaCha8Rng) -> &'static str {
    let age = (end - day).num_days();
    if age >= 14 {
        if rng.random_range(0..100) < 2 {
            "rejected"
        } else {
            "approved"
        }
    } else if age >= 5 || rng.random_range(0..100) < 60 {
        "submitted"
    } else {
        "draft"
    }
}

/// Writes the time and expenses of every working day.
pub async fn write_days(
    firm: &Firm,
    config: &FirmConfig,
    writer: &mut Writer<'_>,
    progress: &ProgressBar,
) -> Result<Totals, GenerateError> {
    let mut totals = Totals::default();
    for day in config.working_days() {
        let mut rng = ChaCha8Rng::seed_from_u64(day_seed(config.seed, day));
        for index in 0..firm.people.len() {
            write_person_day(firm, config, index, day, &mut rng, writer, &mut totals).await?;
        }
        progress.inc(1);
    }
    Ok(totals)
}

async fn write_person_day(
    firm: &Firm,
    config: &FirmConfig,
    index: usize,
    day: NaiveDate,
    rng: &mut ChaCha8Rng,
    writer: &mut Writer<'_>,
    totals: &mut Totals,
) -> Result<(), GenerateError> {
    let person = &firm.people[index];
    let plants = &firm.plants;
    let scheduled = firm.calendars[person.calendar].scheduled(day);
    let working = scheduled > 0 && !person.on_leave(day);
    let time = |hour, minute| NaiveTime::from_hms_opt(hour, minute, 0).expect("a valid time");
    let primary = active_projects(firm, person, day)
        .first()
        .copied()
        .unwrap_or(firm.internal_project);

    if plants.long_day == (index, day) {
        // Two entries of 13 hours each: 26 hours in one day.
        let entries = [
            planted(primary, 13 * 60, "Data centre migration cut-over"),
            planted(primary, 13 * 60, "Cut-over continued overnight"),
        ];
        let ids = write_entries(firm, config, index, day, &entries, rng, writer, totals).await?;
        totals.planted.long_day = ids;
    } else if plants.over_calendar == (index, day) {
        // 14 hours against an 8-hour calendar.
        let entries = [
            planted(primary, 8 * 60, "Proposal for the tender"),
            planted(primary, 6 * 60, "Proposal for the tender, final review"),
        ];
        let ids = write_entries(firm, config, index, day, &entries, rng, writer, totals).await?;
        totals.planted.over_calendar = ids;
    } else if plants.overlap == (index, day) {
        // Two timer entries of four hours that overlap by 30 minutes.
        let entries = [
            Entry {
                timer: Some((time(9, 0), time(13, 0))),
                ..planted(primary, 4 * 60, "Client workshop")
            },
            Entry {
                timer: Some((time(12, 30), time(16, 30))),
                ..planted(primary, 4 * 60, "Workshop follow-up")
            },
        ];
        let ids = write_entries(firm, config, index, day, &entries, rng, writer, totals).await?;
        totals.planted.overlap = ids;
    } else if index == plants.closed_person && plants.closed_days.contains(&day) {
        // Three hours on the closed project, the rest on the project that goes on.
        let state = if (config.end - day).num_days() >= 14 {
            "approved"
        } else {
            "submitted"
        };
        let entries = [
            Entry {
                state: Some(state),
                ..planted(plants.closed_project, 3 * 60, "Final report corrections")
            },
            Entry {
                state: None,
                ..planted(primary, 5 * 60, "Design review")
            },
        ];
        let ids = write_entries(firm, config, index, day, &entries, rng, writer, totals).await?;
        totals.planted.closed_project.push(ids[0].clone());
    } else if working {
        let entries = plan_entries(firm, person, day, scheduled, rng);
        write_entries(firm, config, index, day, &entries, rng, writer, totals).await?;
    }

    if working && rng.random_range(0..100) < EXPENSE_PERCENT {
        let expense = plan_expense(firm, config, person, day, rng);
        write_expense(firm, config, index, day, expense, rng, writer).await?;
    }
    if index == 0 && plants.partner_expense_days.contains(&day) {
        let expense = PlannedExpense {
            state: Some("submitted"),
            ..fixed_expense(
                config,
                "Travel",
                "Flight to a client steering committee",
                420,
            )
        };
        let id = write_expense(firm, config, index, day, expense, rng, writer).await?;
        totals.planted.partner_expenses.push(id);
    }
    if plants.self_approver == (index, day) {
        let expense = PlannedExpense {
            state: Some("approved"),
            approved_by_self: true,
            ..fixed_expense(config, "Training", "Conference ticket", 650)
        };
        let id = write_expense(firm, config, index, day, expense, rng, writer).await?;
        totals.planted.self_approved_expense.push(id);
    }
    Ok(())
}

/// Builds a planted entry. Planted days lie two weeks or more before the end, where time is
/// approved. The state is fixed so that no planted entry is drawn as rejected.
fn planted(project: usize, minutes: u32, notes: &str) -> Entry<'_> {
    Entry {
        project,
        minutes,
        notes,
        timer: None,
        state: Some("approved"),
    }
}

/// Returns the client projects a person is booked on that day, main booking first.
fn active_projects(firm: &Firm, person: &Person, day: NaiveDate) -> Vec<usize> {
    person
        .allocations
        .iter()
        .filter(|a| a.start <= day && day <= a.end && firm.projects[a.project].is_active_on(day))
        .map(|a| a.project)
        .collect()
}

/// Plans a normal day: the calendar's hours, or up to an hour less, in one to three entries
/// of whole quarter hours on the person's projects and the internal project.
fn plan_entries<'a>(
    firm: &'a Firm,
    person: &Person,
    day: NaiveDate,
    scheduled: u32,
    rng: &mut ChaCha8Rng,
) -> Vec<Entry<'a>> {
    let mut quarters = scheduled * 4;
    if rng.random_range(0..100) >= 85 {
        quarters -= rng.random_range(1..=4);
    }
    let count = match rng.random_range(0..100) {
        0..20 => 1,
        20..70 => 2,
        _ => 3,
    };
    let bookings: Vec<(usize, u32)> = person
        .allocations
        .iter()
        .filter(|a| a.start <= day && day <= a.end && firm.projects[a.project].is_active_on(day))
        .map(|a| (a.project, a.hours_per_week))
        .collect();

    let mut entries = Vec::with_capacity(count);
    let mut remaining = quarters;
    for position in 0..count {
        let left = (count - position - 1) as u32;
        let size = if left == 0 {
            remaining
        } else {
            // Leave at least an hour for each later entry.
            let max = remaining.saturating_sub(left * 4).max(4);
            rng.random_range(4..=max)
        };
        remaining -= size.min(remaining);
        let internal = bookings.is_empty() || rng.random_range(0..100) < person.internal_percent;
        let project = if internal {
            firm.internal_project
        } else {
            bookings
                .choose_weighted(rng, |(_, hours)| *hours)
                .map(|(project, _)| *project)
                .unwrap_or(firm.internal_project)
        };
        let notes = if internal {
            *names::INTERNAL_TASKS.choose(rng).expect("tasks exist")
        } else {
            *names::NOTES.choose(rng).expect("notes exist")
        };
        entries.push(Entry {
            project,
            minutes: size * 15,
            notes,
            timer: None,
            state: None,
        });
        if remaining == 0 {
            break;
        }
    }
    if person.timer {
        lay_out_timer(&mut entries, rng);
    }
    entries
}

/// Gives entries consecutive timer times from about 9:00, with one lunch break after four
/// hours, so no two entries of a person overlap.
fn lay_out_timer(entries: &mut [Entry<'_>], rng: &mut ChaCha8Rng) {
    let day_start = 9 * 60 + rng.random_range(0..=3) * 15;
    let mut cursor = day_start;
    let mut lunch = false;
    for entry in entries.iter_mut() {
        let start = cursor;
        let end = start + entry.minutes;
        let clock = |minutes: u32| {
            NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).expect("within the day")
        };
        entry.timer = Some((clock(start), clock(end)));
        cursor = end + rng.random_range(0..=1) * 5;
        if !lunch && cursor - day_start >= 4 * 60 {
            cursor += rng.random_range(2..=4) * 15;
            lunch = true;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_entries(
    firm: &Firm,
    config: &FirmConfig,
    index: usize,
    day: NaiveDate,
    entries: &[Entry<'_>],
    rng: &mut ChaCha8Rng,
    writer: &mut Writer<'_>,
    totals: &mut Totals,
) -> Result<Vec<String>, GenerateError> {
    let person = &firm.people[index];
    let own_manager = firm.plants.own_manager == index;
    let mut ids = Vec::with_capacity(entries.len());
    for entry in entries {
        let project = &firm.projects[entry.project];
        let closed_before = project.state == "closed" && day <= project.end;
        let mut state = entry
            .state
            .unwrap_or_else(|| state_for(day, config.end, rng));
        if closed_before && entry.state.is_none() {
            // The closed project's time was billed before it closed.
            state = "invoiced";
        }
        if own_manager && matches!(state, "approved" | "rejected") {
            // Only the person could approve it, so it stays submitted.
            state = "submitted";
        }
        let submitted_by = (state != "draft").then(|| person.id.clone());
        let approved_by = matches!(state, "approved" | "invoiced")
            .then(|| firm.people[person.approver].id.clone());
        let task = project.task_ids.choose(rng).expect("projects have tasks");
        let hours = Decimal::from(entry.minutes) / Decimal::from(60);
        let (started_at, ended_at) = match entry.timer {
            Some((start, end)) => (Some(instant(day, start)), Some(instant(day, end))),
            None => (None, None),
        };
        let record = fields([
            ("employee", json!(person.id)),
            ("date", json!(day.to_string())),
            ("hours", json!(hours.normalize().to_string())),
            ("project", json!(project.id)),
            ("task", json!(task)),
            ("contract_line", json!(project.billable_line)),
            ("billable", json!(project.billable_line.is_some())),
            ("role", json!(person.role().name)),
            ("notes", json!(entry.notes)),
            ("started_at", json!(started_at)),
            ("ended_at", json!(ended_at)),
            ("submitted_by", json!(submitted_by)),
            ("approved_by", json!(approved_by)),
        ]);
        let id = new_id();
        writer.create(Kind::Timesheet, &id, state, record).await?;
        totals.hours += hours;
        ids.push(id);
    }
    Ok(ids)
}

/// Converts a local time of the firm's time zone on `day` to a stored instant.
fn instant(day: NaiveDate, time: NaiveTime) -> String {
    let local = day.and_time(time);
    let at = TIMEZONE
        .from_local_datetime(&local)
        .earliest()
        .expect("Brussels changes its clocks at night, never during office hours");
    format_instant(at.with_timezone(&Utc))
}

struct PlannedExpense {
    category: &'static str,
    description: String,
    project: Option<usize>,
    currency: Currency,
    country: &'static str,
    amount: Decimal,
    rebilled: bool,
    receipt: bool,
    state: Option<&'static str>,
    approved_by_self: bool,
}

/// Builds an expense of a fixed amount in euros paid at home, for the planted records.
fn fixed_expense(
    config: &FirmConfig,
    category: &'static str,
    description: &str,
    euros: u32,
) -> PlannedExpense {
    PlannedExpense {
        category,
        description: description.to_string(),
        project: None,
        currency: config.currency,
        country: "BE",
        amount: money(Decimal::from(euros), config.currency),
        rebilled: false,
        receipt: true,
        state: None,
        approved_by_self: false,
    }
}

fn plan_expense(
    firm: &Firm,
    config: &FirmConfig,
    person: &Person,
    day: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> PlannedExpense {
    let (category, low, high, rebillable) = *CATEGORIES.choose(rng).expect("categories exist");
    let project = active_projects(firm, person, day).choose(rng).copied();
    let client = project
        .and_then(|p| firm.projects[p].client)
        .map(|c| &firm.clients[c]);
    let abroad = client.filter(|_| rebillable && rng.random_range(0..100) < 50);
    let (currency, country) = match abroad {
        Some(client) => (client.currency, client.country),
        None => (config.currency, "BE"),
    };
    let cents = rng.random_range(low * 100..=high * 100);
    let euros = Decimal::new(i64::from(cents), 2);
    let city = client.map_or("Brussels", |c| c.city);
    let description = match category {
        "Travel" => format!("Train to {city}"),
        "Meals" => "Lunch with the client team".to_string(),
        "Accommodation" => format!("Hotel in {city}"),
        "Mileage" => format!("Car travel to {city}"),
        "Software" => "Licence for a diagramming tool".to_string(),
        _ => "Certification exam".to_string(),
    };
    PlannedExpense {
        category,
        description,
        project,
        currency,
        country,
        amount: money(euros, currency),
        rebilled: rebillable && client.is_some(),
        // Small amounts sometimes come without a receipt.
        receipt: cents >= 2500 || rng.random_range(0..100) < 80,
        state: None,
        approved_by_self: false,
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_expense(
    firm: &Firm,
    config: &FirmConfig,
    index: usize,
    day: NaiveDate,
    expense: PlannedExpense,
    rng: &mut ChaCha8Rng,
    writer: &mut Writer<'_>,
) -> Result<String, GenerateError> {
    let person = &firm.people[index];
    let mut state = expense
        .state
        .unwrap_or_else(|| state_for(day, config.end, rng));
    if firm.plants.own_manager == index && matches!(state, "approved" | "rejected") {
        state = "submitted";
    }
    let submitted_by = (state != "draft").then(|| person.id.clone());
    let approver = if expense.approved_by_self {
        index
    } else {
        person.approver
    };
    let approved_by = (state == "approved").then(|| firm.people[approver].id.clone());
    let receipt = expense.receipt.then(|| {
        format!(
            "sha256:{:016x}{:016x}",
            rng.random::<u64>(),
            rng.random::<u64>()
        )
    });
    let record = fields([
        ("employee", json!(person.id)),
        ("date", json!(day.to_string())),
        ("category", json!(expense.category)),
        ("currency", json!(expense.currency.code())),
        ("amount", json!(expense.amount.to_string())),
        ("description", json!(expense.description)),
        (
            "project",
            json!(expense.project.map(|p| firm.projects[p].id.clone())),
        ),
        ("country", json!(expense.country)),
        ("receipt", json!(receipt)),
        ("billable", json!(expense.rebilled)),
        ("policy_result", json!("within_policy")),
        ("submitted_by", json!(submitted_by)),
        ("approved_by", json!(approved_by)),
    ]);
    let id = new_id();
    writer.create(Kind::Expense, &id, state, record).await?;
    Ok(id)
}
