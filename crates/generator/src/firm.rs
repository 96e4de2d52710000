//! The plan of the firm's standing records: calendars, people and their manager tree, clients,
//! contracts, projects, allocations and leaves, with the people and days that carry the
//! planted exceptions. The plan contains no timesheets or expenses; those are generated day by
//! day from it.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate};
use rand::RngExt;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use steward_domain::{Currency, new_id};

use crate::calendar::WorkCalendar;
use crate::config::FirmConfig;
use crate::names;

/// A job title, which is also the billing role on rate cards.
pub struct Role {
    pub name: &'static str,
    pub department: &'static str,
    /// Hourly list rate and cost in euros.
    pub rate_eur: u32,
    pub cost_eur: u32,
}

pub const ROLES: &[Role] = &[
    Role {
        name: "Managing Partner",
        department: "Management",
        rate_eur: 250,
        cost_eur: 150,
    },
    Role {
        name: "Director",
        department: "Management",
        rate_eur: 200,
        cost_eur: 110,
    },
    Role {
        name: "Manager",
        department: "Delivery",
        rate_eur: 160,
        cost_eur: 85,
    },
    Role {
        name: "Senior Consultant",
        department: "Consulting",
        rate_eur: 130,
        cost_eur: 70,
    },
    Role {
        name: "Consultant",
        department: "Consulting",
        rate_eur: 105,
        cost_eur: 55,
    },
    Role {
        name: "Analyst",
        department: "Consulting",
        rate_eur: 80,
        cost_eur: 40,
    },
];

const PARTNER: usize = 0;
const DIRECTOR: usize = 1;
const MANAGER: usize = 2;

/// Contract billing models, in the order the first projects use them. The last project is the
/// closed one, billed by time, so a firm with eight projects or more has every model.
pub const MODELS: &[&str] = &[
    "time_and_materials",
    "fixed_fee",
    "milestone",
    "retainer",
    "prepaid_hours",
    "manual",
    "mixed",
];

/// Returns how many units of `currency` one euro buys, for rates and amounts. The factors
/// are round planning figures, not market rates.
pub fn per_euro(currency: Currency) -> Decimal {
    match currency.code() {
        "USD" => Decimal::new(110, 2),
        "GBP" => Decimal::new(85, 2),
        "CHF" => Decimal::new(95, 2),
        "JPY" => Decimal::from(160),
        _ => Decimal::ONE,
    }
}

pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: usize,
    pub manager: Option<usize>,
    /// The approver of this person's time and expenses: the manager, or for the managing
    /// partner, the first director.
    pub approver: usize,
    pub calendar: usize,
    pub country: &'static str,
    pub skills: Vec<&'static str>,
    /// Hourly cost in euros.
    pub cost_eur: u32,
    /// People who track time with a timer get `started_at` and `ended_at` on every entry.
    pub timer: bool,
    /// Share of their time, in percent, logged on the internal project.
    pub internal_percent: u32,
    pub allocations: Vec<Allocation>,
    pub leaves: Vec<Leave>,
}

/// A block of leave between two working days, both included.
pub struct Leave {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub sick: bool,
}

impl Person {
    pub fn on_leave(&self, day: NaiveDate) -> bool {
        self.leaves
            .iter()
            .any(|leave| leave.first <= day && day <= leave.last)
    }

    pub fn role(&self) -> &'static Role {
        &ROLES[self.role]
    }
}

pub struct Allocation {
    pub id: String,
    pub project: usize,
    pub hours_per_week: u32,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

pub struct Client {
    pub id: String,
    pub name: String,
    pub country: &'static str,
    pub city: &'static str,
    pub currency: Currency,
    pub account_leader: usize,
}

pub struct Project {
    pub id: String,
    pub name: String,
    /// `None` for the internal project.
    pub client: Option<usize>,
    pub contract_id: Option<String>,
    pub model: &'static str,
    pub currency: Currency,
    pub owner: usize,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub state: &'static str,
    pub service_line: &'static str,
    /// The contract line time bills to; `None` when time on the project is not billed by
    /// the hour.
    pub billable_line: Option<String>,
    pub task_ids: Vec<String>,
    pub task_names: Vec<&'static str>,
}

impl Project {
    pub fn is_active_on(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }
}

/// The people and days that carry the planted exceptions.
pub struct Plants {
    /// A person who logs 26 hours on one day in two entries.
    pub long_day: (usize, NaiveDate),
    /// A person who logs 14 hours on one day, over their 8-hour calendar.
    pub over_calendar: (usize, NaiveDate),
    /// A person whose two timer entries on one day overlap.
    pub overlap: (usize, NaiveDate),
    /// A person who is their own manager and submits time.
    pub own_manager: usize,
    /// A manager who approves their own expense on that day.
    pub self_approver: (usize, NaiveDate),
    /// Days the managing partner, who has no manager, submits expenses.
    pub partner_expense_days: Vec<NaiveDate>,
    /// The project closed mid-period, and who logs time on it after it closed.
    pub closed_project: usize,
    pub closed_person: usize,
    pub closed_days: Vec<NaiveDate>,
}

pub struct Firm {
    pub calendars: Vec<WorkCalendar>,
    pub people: Vec<Person>,
    pub clients: Vec<Client>,
    /// Client projects first, then the internal project.
    pub projects: Vec<Project>,
    pub internal_project: usize,
    pub plants: Plants,
}

pub const FULL_TIME: usize = 0;
pub const PART_TIME: usize = 1;

/// Plans the firm. Every random choice comes from `rng`, in a fixed order.
pub fn plan(config: &FirmConfig, rng: &mut ChaCha8Rng) -> Firm {
    let (first_year, last_year) = (config.start.year() - 1, config.end.year() + 1);
    let calendars = vec![
        WorkCalendar::new(
            new_id(),
            "Full time 40 hours/week",
            [8, 8, 8, 8, 8, 0, 0],
            first_year,
            last_year,
        ),
        WorkCalendar::new(
            new_id(),
            "Part time 32 hours/week",
            [8, 8, 8, 8, 0, 0, 0],
            first_year,
            last_year,
        ),
    ];
    let mut people = plan_people(config, rng);
    let clients = plan_clients(config, &people, rng);
    let mut projects = plan_projects(config, &clients, &people, rng);
    let internal_project = projects.len() - 1;
    let closed_project = internal_project - 1;

    // The planted people are five distinct staff members, and a manager approves their own
    // expense.
    let mut staff: Vec<usize> = (0..people.len())
        .filter(|i| people[*i].role > MANAGER)
        .collect();
    staff.shuffle(rng);
    let [long_day, over_calendar, own_manager, overlap, closed_person] =
        [staff[0], staff[1], staff[2], staff[3], staff[4]];
    for index in [long_day, over_calendar, overlap, closed_person] {
        people[index].calendar = FULL_TIME;
        people[index].timer = false;
    }
    people[overlap].timer = true;
    people[own_manager].manager = Some(own_manager);
    people[own_manager].approver = own_manager;
    let managers: Vec<usize> = (0..people.len())
        .filter(|i| people[*i].role == MANAGER)
        .collect();
    let self_approver = *managers.choose(rng).expect("a firm has managers");

    plan_allocations(
        config,
        &mut people,
        &projects,
        closed_person,
        closed_project,
        rng,
    );
    for person in &mut people {
        person.leaves = plan_leaves(config, &calendars[person.calendar], rng);
    }
    assign_tasks(&mut projects, rng);

    let approved_window = |day: NaiveDate| day <= config.end - Duration::days(14);
    let submitted_window = |day: NaiveDate| {
        day > config.end - Duration::days(14) && day <= config.end - Duration::days(5)
    };
    let works = |person: &Person, day: NaiveDate| {
        calendars[person.calendar].scheduled(day) > 0 && !person.on_leave(day)
    };
    let days = config.working_days();
    let mut pick_day = |person: usize, window: &dyn Fn(NaiveDate) -> bool, taken: &[NaiveDate]| {
        let open: Vec<NaiveDate> = days
            .iter()
            .copied()
            .filter(|d| window(*d) && !taken.contains(d))
            .collect();
        let worked: Vec<NaiveDate> = open
            .iter()
            .copied()
            .filter(|d| works(&people[person], *d))
            .collect();
        // A window of leave and holidays only still takes the planted record.
        let candidates = if worked.is_empty() { open } else { worked };
        *candidates
            .choose(rng)
            .expect("a period of 20 working days or more has working days in each window")
    };
    let long_day_date = pick_day(long_day, &approved_window, &[]);
    let over_calendar_date = pick_day(over_calendar, &approved_window, &[]);
    let overlap_date = pick_day(overlap, &approved_window, &[]);
    let self_approval_date = pick_day(self_approver, &approved_window, &[]);
    let first_expense = pick_day(0, &submitted_window, &[]);
    let second_expense = pick_day(0, &submitted_window, &[first_expense]);
    let closed_end = projects[closed_project].end;
    let closed_days: Vec<NaiveDate> = days
        .iter()
        .copied()
        .filter(|d| *d > closed_end + Duration::days(2) && works(&people[closed_person], *d))
        .take(2)
        .collect();

    Firm {
        calendars,
        people,
        clients,
        projects,
        internal_project,
        plants: Plants {
            long_day: (long_day, long_day_date),
            over_calendar: (over_calendar, over_calendar_date),
            overlap: (overlap, overlap_date),
            own_manager,
            self_approver: (self_approver, self_approval_date),
            partner_expense_days: vec![first_expense, second_expense],
            closed_project,
            closed_person,
            closed_days,
        },
    }
}

/// Draws distinct full names; past the combinations of the lists, a middle initial keeps
/// names unique.
fn unique_names(count: usize, rng: &mut ChaCha8Rng) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::with_capacity(count);
    while names.len() < count {
        let first = *names::FIRST_NAMES.choose(rng).expect("names exist");
        let last = *names::LAST_NAMES.choose(rng).expect("names exist");
        let mut full = format!("{first} {last}");
        let mut local = format!("{first}.{last}");
        if seen.contains(&full) {
            let initial = char::from(b'A' + rng.random_range(0..26u8));
            full = format!("{first} {initial}. {last}");
            local = format!("{first}.{initial}.{last}");
        }
        if seen.insert(full.clone()) {
            let email = format!("{}@{}", email_local_part(&local), names::FIRM_DOMAIN);
            names.push((full, email));
        }
    }
    names
}

/// Lower-cases a name, drops the accents of the letters in the name lists and keeps ASCII
/// letters, digits and dots, so `Gaëlle.De Smet` becomes `gaelle.desmet`.
fn email_local_part(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            other => other,
        })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect()
}

/// Plans the manager tree: the managing partner at the top, directors under the partner,
/// managers under directors and staff under managers.
fn plan_people(config: &FirmConfig, rng: &mut ChaCha8Rng) -> Vec<Person> {
    let total = config.people;
    let directors = (total / 12).max(2);
    let managers = (total / 5).max(2);
    let names = unique_names(total, rng);
    let mut people = Vec::with_capacity(total);
    for (index, (name, email)) in names.into_iter().enumerate() {
        let (role, manager) = if index == 0 {
            (PARTNER, None)
        } else if index <= directors {
            (DIRECTOR, Some(0))
        } else if index <= directors + managers {
            (MANAGER, Some(rng.random_range(1..=directors)))
        } else {
            let role = match rng.random_range(0..100) {
                0..35 => 3,
                35..80 => 4,
                _ => 5,
            };
            (
                role,
                Some(rng.random_range(directors + 1..=directors + managers)),
            )
        };
        let skill_count = rng.random_range(2..=4);
        let mut skills: Vec<&'static str> =
            names::SKILLS.sample(rng, skill_count).copied().collect();
        skills.sort_unstable();
        let calendar = if role > MANAGER && rng.random_range(0..100) < 20 {
            PART_TIME
        } else {
            FULL_TIME
        };
        let country = match rng.random_range(0..100) {
            0..80 => "BE",
            80..90 => "NL",
            _ => "FR",
        };
        let base = ROLES[role].cost_eur;
        let cost_eur = base - base / 10 + rng.random_range(0..=base / 5);
        people.push(Person {
            id: new_id(),
            name,
            email,
            role,
            manager,
            approver: manager.unwrap_or(1),
            calendar,
            country,
            skills,
            cost_eur,
            timer: role > MANAGER && rng.random_range(0..100) < 20,
            internal_percent: match role {
                PARTNER => 100,
                DIRECTOR => 50,
                MANAGER => 25,
                _ => 10,
            },
            allocations: Vec::new(),
            leaves: Vec::new(),
        });
    }
    people
}

fn plan_clients(config: &FirmConfig, people: &[Person], rng: &mut ChaCha8Rng) -> Vec<Client> {
    let directors: Vec<usize> = (0..people.len())
        .filter(|i| people[*i].role == DIRECTOR)
        .collect();
    let mut seen = BTreeSet::new();
    let mut clients = Vec::with_capacity(config.clients);
    for index in 0..config.clients {
        let mut name = format!(
            "{} {}",
            names::CLIENT_PREFIXES.choose(rng).expect("prefixes exist"),
            names::CLIENT_SUFFIXES.choose(rng).expect("suffixes exist")
        );
        if !seen.insert(name.clone()) {
            name = format!("{name} {}", index + 1);
            seen.insert(name.clone());
        }
        // The first client is local; the others are spread over the locations.
        let (country, currency, city) = if index == 0 {
            names::CLIENT_LOCATIONS[0]
        } else {
            *names::CLIENT_LOCATIONS
                .choose(rng)
                .expect("locations exist")
        };
        clients.push(Client {
            id: new_id(),
            name,
            country,
            city,
            currency: Currency::from_code(currency).expect("listed currencies exist"),
            account_leader: directors[index % directors.len()],
        });
    }
    clients
}

fn plan_projects(
    config: &FirmConfig,
    clients: &[Client],
    people: &[Person],
    rng: &mut ChaCha8Rng,
) -> Vec<Project> {
    let managers: Vec<usize> = (0..people.len())
        .filter(|i| people[*i].role == MANAGER)
        .collect();
    let period = (config.end - config.start).num_days();
    let mut models: Vec<&'static str> = MODELS.to_vec();
    models.shuffle(rng);
    let mut seen = BTreeSet::new();
    let mut projects = Vec::with_capacity(config.projects + 1);
    for index in 0..config.projects {
        let client = index % clients.len();
        let closed = index == config.projects - 1;
        let model = if closed {
            "time_and_materials"
        } else if index < models.len() {
            models[index]
        } else {
            match rng.random_range(0..100) {
                0..50 => "time_and_materials",
                50..65 => "fixed_fee",
                65..80 => "milestone",
                80..90 => "retainer",
                _ => "prepaid_hours",
            }
        };
        let prefix = clients[client].name.split(' ').next().unwrap_or("Client");
        let topic = names::PROJECT_TOPICS.choose(rng).expect("topics exist");
        let mut name = format!("{prefix} {topic}");
        if !seen.insert(name.clone()) {
            name = format!("{name} {}", index + 1);
            seen.insert(name.clone());
        }
        let (start, end, state) = if closed {
            let closing = config.start + Duration::days(period * 2 / 5);
            (config.start - Duration::days(90), closing, "closed")
        } else if rng.random_range(0..100) < 75 {
            let start = config.start - Duration::days(rng.random_range(10..120));
            (
                start,
                config.end + Duration::days(rng.random_range(20..200)),
                "active",
            )
        } else {
            let start = config.start + Duration::days(rng.random_range(0..=period / 3));
            (
                start,
                config.end + Duration::days(rng.random_range(20..200)),
                "active",
            )
        };
        projects.push(Project {
            id: new_id(),
            name,
            client: Some(client),
            contract_id: Some(new_id()),
            model,
            currency: clients[client].currency,
            owner: managers[index % managers.len()],
            start,
            end,
            state,
            service_line: names::SERVICE_LINES
                .choose(rng)
                .expect("service lines exist"),
            billable_line: None,
            task_ids: Vec::new(),
            task_names: Vec::new(),
        });
    }
    projects.push(Project {
        id: new_id(),
        name: "Internal".into(),
        client: None,
        contract_id: None,
        model: "internal",
        currency: config.currency,
        owner: 0,
        start: config.start - Duration::days(365),
        end: config.end + Duration::days(365),
        state: "active",
        service_line: "Internal",
        billable_line: None,
        task_ids: Vec::new(),
        task_names: Vec::new(),
    });
    projects
}

/// Books each person on one or two client projects. The person planted on the closed project
/// is booked on it and on a second project that continues after it closed.
fn plan_allocations(
    config: &FirmConfig,
    people: &mut [Person],
    projects: &[Project],
    closed_person: usize,
    closed_project: usize,
    rng: &mut ChaCha8Rng,
) {
    let client_projects = projects.len() - 1;
    let open_projects: Vec<usize> = (0..client_projects)
        .filter(|p| *p != closed_project)
        .collect();
    let mut order: Vec<usize> = (0..client_projects).collect();
    order.shuffle(rng);
    let mut next = 0;
    for (index, person) in people.iter_mut().enumerate() {
        let week = if person.calendar == PART_TIME { 32 } else { 40 };
        let billable_hours = week * (100 - person.internal_percent) / 100;
        if billable_hours == 0 {
            continue;
        }
        let primary = if index == closed_person {
            closed_project
        } else {
            let project = order[next % order.len()];
            next += 1;
            project
        };
        let mut bookings = vec![primary];
        if primary == closed_project || rng.random_range(0..100) < 40 {
            let second = *open_projects
                .iter()
                .filter(|p| **p != primary)
                .collect::<Vec<_>>()
                .choose(rng)
                .copied()
                .unwrap_or(&primary);
            if second != primary {
                bookings.push(second);
            }
        }
        let share = billable_hours / bookings.len() as u32;
        let allocations = bookings
            .into_iter()
            .map(|project| Allocation {
                id: new_id(),
                project,
                hours_per_week: share.max(1),
                start: projects[project].start.max(config.start),
                end: projects[project].end,
            })
            .collect();
        person.allocations = allocations;
    }
}

/// Plans one leave block per 60 working days on average, each of one to five working days.
/// Blocks never overlap, and about one in five is sick leave.
fn plan_leaves(config: &FirmConfig, calendar: &WorkCalendar, rng: &mut ChaCha8Rng) -> Vec<Leave> {
    let days: Vec<NaiveDate> = config
        .working_days()
        .into_iter()
        .chain(crate::config::working_days(
            config.end + Duration::days(1),
            config.end + Duration::days(30),
        ))
        .filter(|d| calendar.scheduled(*d) > 0)
        .collect();
    let expected = (days.len() / 60).max(1);
    let blocks = rng.random_range(0..=expected * 2);
    let mut leaves: Vec<Leave> = Vec::new();
    for _ in 0..blocks {
        let first = rng.random_range(0..days.len());
        let length = rng.random_range(1..=5usize);
        let last = (first + length - 1).min(days.len() - 1);
        let sick = rng.random_range(0..5) == 0;
        let (first, last) = (days[first], days[last]);
        if leaves.iter().all(|l| last < l.first || first > l.last) {
            leaves.push(Leave { first, last, sick });
        }
    }
    leaves.sort_by_key(|l| l.first);
    leaves
}

/// Gives each project three to five tasks.
fn assign_tasks(projects: &mut [Project], rng: &mut ChaCha8Rng) {
    for project in projects.iter_mut() {
        let names: Vec<&'static str> = if project.client.is_none() {
            names::INTERNAL_TASKS.to_vec()
        } else {
            let count = rng.random_range(3..=5);
            let mut picked: Vec<&'static str> = names::TASKS.sample(rng, count).copied().collect();
            picked.sort_by_key(|name| names::TASKS.iter().position(|t| t == name));
            picked
        };
        project.task_ids = names.iter().map(|_| new_id()).collect();
        project.task_names = names;
    }
}

/// Returns the mean list rate in whole euros of the given roles, for budgets; a consultant's
/// rate when the list is empty.
pub fn mean_rate(roles: &[usize]) -> u32 {
    if roles.is_empty() {
        return ROLES[4].rate_eur;
    }
    let total: u32 = roles.iter().map(|r| ROLES[*r].rate_eur).sum();
    total / roles.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_local_part_drops_accents() {
        assert_eq!(email_local_part("Gaëlle.De Smet"), "gaelle.desmet");
        assert_eq!(email_local_part("Zoë.Müller"), "zoe.muller");
        assert_eq!(email_local_part("Chloé.K.El Amrani"), "chloe.k.elamrani");
    }
}
