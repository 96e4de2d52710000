//! Staffing: each person's capacity week by week from their work calendar, public holidays
//! and leaves, against the hours their allocations book; overbooked people, people on the
//! bench, open roles and skill mismatches; and candidates for an open role, ranked with the
//! reasons for their rank.
//!
//! Weeks are ISO weeks from Monday to Sunday. An allocation books its `hours_per_week` in
//! every week it spans, pro rata to the share of the person's normal week that falls inside
//! its dates; public holidays and leaves lower the capacity, not the booking, so a week with
//! a holiday shows the booking the project expects against the time the person has.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use serde_json::json;
use steward_domain::calendar::Calendar;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::settings::{StaffingSettings, weekdays_calendar};
use crate::{
    STAFFING_BENCH, STAFFING_OVERBOOKED, STAFFING_SKILL_MISMATCH, STAFFING_UNSTAFFED_ROLE,
};

/// A person as staffing sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    pub manager: Option<String>,
    pub role: Option<String>,
    pub skills: Vec<String>,
    pub cost_rate: Option<Decimal>,
    pub currency: Option<String>,
    /// The person's calendar; a standard 40-hour week when `None`.
    pub calendar: Option<Calendar>,
}

/// An approved leave of one person, both days included.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaveSpan {
    pub employee: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// Working hours the leave takes; when below the scheduled hours of its days (a half
    /// day), each day loses the same share.
    pub hours: Option<Decimal>,
}

/// An allocation: a person, or an open role, booked on a project.
#[derive(Clone, Debug, PartialEq)]
pub struct Booking {
    pub id: String,
    pub project: String,
    pub project_name: String,
    /// The project's owner, who answers for its roles.
    pub project_owner: Option<String>,
    pub employee: Option<String>,
    pub role: Option<String>,
    pub required_skills: Vec<String>,
    pub hours_per_week: Decimal,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
    /// `planned` or `confirmed`; ended allocations are left out by the caller.
    pub state: String,
}

/// What staffing is computed over.
#[derive(Clone, Debug, Default)]
pub struct StaffingInput {
    pub people: Vec<StaffMember>,
    pub leaves: Vec<LeaveSpan>,
    pub bookings: Vec<Booking>,
}

/// One person's week.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonWeek {
    /// ISO week, such as `2026-W50`.
    pub week: String,
    pub monday: NaiveDate,
    /// Hours the calendar schedules in the week, less holidays and leave.
    pub capacity: Decimal,
    /// Hours the person's allocations book in the week.
    pub booked: Decimal,
    /// Booked hours as a percentage of capacity; `None` when the week has no capacity.
    pub load: Option<Decimal>,
    /// Public holidays and leave days in the week.
    pub absences: Vec<String>,
    /// Booked hours per allocation id.
    pub allocations: BTreeMap<String, Decimal>,
}

impl PersonWeek {
    fn free(&self) -> Decimal {
        (self.capacity - self.booked).max(Decimal::ZERO)
    }
}

/// One person over the weeks looked at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonPlan {
    pub employee: String,
    pub name: String,
    pub weeks: Vec<PersonWeek>,
}

/// Returns the Monday of the ISO week of `day`.
pub fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday() as i64)
}

/// Returns the ISO week label of `day`, such as `2026-W50`.
pub fn iso_week(day: NaiveDate) -> String {
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

fn round2(value: Decimal) -> Decimal {
    value
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn percent(part: Decimal, whole: Decimal) -> Option<Decimal> {
    (!whole.is_zero()).then(|| round2(part * Decimal::ONE_HUNDRED / whole))
}

fn weekday_hours(calendar: &Calendar, day: NaiveDate) -> Decimal {
    calendar.week[day.weekday().num_days_from_monday() as usize]
}

/// Builds each person's plan for `weeks` weeks from the week of `from`.
pub fn plan(input: &StaffingInput, from: NaiveDate, weeks: u32) -> Vec<PersonPlan> {
    let first = monday_of(from);
    let mondays: Vec<NaiveDate> = (0..weeks as i64)
        .map(|n| first + Duration::weeks(n))
        .collect();
    let mut leaves: HashMap<&str, Vec<&LeaveSpan>> = HashMap::new();
    for leave in &input.leaves {
        leaves
            .entry(leave.employee.as_str())
            .or_default()
            .push(leave);
    }
    let mut bookings: HashMap<&str, Vec<&Booking>> = HashMap::new();
    for booking in &input.bookings {
        if let Some(employee) = &booking.employee {
            bookings.entry(employee.as_str()).or_default().push(booking);
        }
    }
    let standard = weekdays_calendar();
    let mut plans: Vec<PersonPlan> = input
        .people
        .iter()
        .map(|person| {
            let calendar = person.calendar.as_ref().unwrap_or(&standard);
            let own_leaves = leaves
                .get(person.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let own_bookings = bookings
                .get(person.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            PersonPlan {
                employee: person.id.clone(),
                name: person.name.clone(),
                weeks: mondays
                    .iter()
                    .map(|monday| week_of(calendar, own_leaves, own_bookings, *monday))
                    .collect(),
            }
        })
        .collect();
    plans.sort_by(|a, b| (&a.name, &a.employee).cmp(&(&b.name, &b.employee)));
    plans
}

fn week_of(
    calendar: &Calendar,
    leaves: &[&LeaveSpan],
    bookings: &[&Booking],
    monday: NaiveDate,
) -> PersonWeek {
    let days: Vec<NaiveDate> = (0..7).map(|n| monday + Duration::days(n)).collect();
    let mut capacity = Decimal::ZERO;
    let mut absences = Vec::new();
    for day in &days {
        let scheduled = calendar.scheduled(*day);
        if let Some(name) = calendar.holidays.get(day)
            && !weekday_hours(calendar, *day).is_zero()
        {
            absences.push(format!("{day} {name}"));
        }
        let away = leave_share(calendar, leaves, *day);
        if !away.is_zero() && !scheduled.is_zero() {
            absences.push(format!("{day} leave"));
        }
        capacity += scheduled * (Decimal::ONE - away);
    }
    let normal_week: Decimal = days.iter().map(|d| weekday_hours(calendar, *d)).sum();
    let mut booked = Decimal::ZERO;
    let mut allocations = BTreeMap::new();
    for booking in bookings {
        let inside: Decimal = days
            .iter()
            .filter(|d| **d >= booking.start && booking.end.is_none_or(|end| **d <= end))
            .map(|d| weekday_hours(calendar, *d))
            .sum();
        if inside.is_zero() || normal_week.is_zero() {
            continue;
        }
        let hours = round2(booking.hours_per_week * inside / normal_week);
        booked += hours;
        allocations.insert(booking.id.clone(), hours);
    }
    let capacity = round2(capacity);
    PersonWeek {
        week: iso_week(monday),
        monday,
        capacity,
        booked,
        load: percent(booked, capacity),
        absences,
        allocations,
    }
}

/// The share of `day` a person is away, from 0 to 1.
fn leave_share(calendar: &Calendar, leaves: &[&LeaveSpan], day: NaiveDate) -> Decimal {
    let mut share = Decimal::ZERO;
    for leave in leaves.iter().filter(|l| l.first <= day && day <= l.last) {
        let part = match leave.hours {
            Some(hours) => {
                let scheduled: Decimal = leave
                    .first
                    .iter_days()
                    .take_while(|d| *d <= leave.last)
                    .map(|d| calendar.scheduled(d))
                    .sum();
                if scheduled.is_zero() || hours >= scheduled {
                    Decimal::ONE
                } else {
                    hours / scheduled
                }
            }
            None => Decimal::ONE,
        };
        share += part;
    }
    share.min(Decimal::ONE)
}

fn names(people: &[StaffMember]) -> HashMap<&str, &StaffMember> {
    people.iter().map(|p| (p.id.as_str(), p)).collect()
}

fn accountable(
    id: Option<&str>,
    people: &HashMap<&str, &StaffMember>,
    role: &str,
) -> serde_json::Value {
    match id {
        Some(id) => json!({
            "employee": id,
            "name": people.get(id).map(|p| p.name.clone()),
            "as": role,
        }),
        None => serde_json::Value::Null,
    }
}

/// Overbooked people: one finding per person, about the worst week of those looked at.
/// Above `exception_above` the finding is an error, because confirming more needs an
/// approved staffing exception.
pub fn overbooked(
    input: &StaffingInput,
    plans: &[PersonPlan],
    settings: &StaffingSettings,
) -> Vec<RaisedFinding> {
    let people = names(&input.people);
    let mut findings = Vec::new();
    for plan in plans {
        let over: Vec<&PersonWeek> = plan
            .weeks
            .iter()
            .filter(|w| {
                w.booked > Decimal::ZERO
                    && w.load.is_none_or(|load| load > settings.overbooked_above)
            })
            .collect();
        let Some(worst) = over
            .iter()
            .max_by_key(|w| (w.load.is_none(), w.load.unwrap_or_default(), w.booked))
        else {
            continue;
        };
        let person = people.get(plan.employee.as_str());
        let manager = person.and_then(|p| p.manager.as_deref());
        let exception = worst
            .load
            .is_none_or(|load| load > settings.exception_above);
        let describe = match worst.load {
            Some(load) => format!(
                "{} h in week {}, {load} % of {} h capacity",
                worst.booked, worst.week, worst.capacity
            ),
            None => format!(
                "{} h in week {}, which has no capacity ({})",
                worst.booked,
                worst.week,
                worst.absences.join(", ")
            ),
        };
        findings.push(RaisedFinding {
            key: format!("{STAFFING_OVERBOOKED}/{}", plan.employee),
            control: STAFFING_OVERBOOKED.into(),
            severity: if exception {
                Severity::Error
            } else {
                Severity::Warning
            },
            record: Some(RecordRef::new(Kind::Employee, plan.employee.clone())),
            message: format!(
                "{} is booked {describe}; {} of the {} weeks looked at are over {} %",
                plan.name,
                over.len(),
                plan.weeks.len(),
                settings.overbooked_above
            ),
            evidence: json!({
                "employee": plan.employee,
                "employee_name": plan.name,
                "accountable": accountable(manager, &people, "manager"),
                "threshold_percent": settings.overbooked_above.to_string(),
                "exception_percent": settings.exception_above.to_string(),
                "weeks": over,
                "capacity_query": format!("/api/v1/staffing/capacity?from={}&weeks={}", plan.weeks.first().map(|w| w.monday.to_string()).unwrap_or_default(), plan.weeks.len()),
            }),
        });
    }
    findings
}

/// People booked below `bench_below` percent of their capacity on average over the weeks
/// looked at. Nobody is on the bench in a firm that books no one: with no allocation at all,
/// staffing is not planned in Steward and this control raises nothing.
pub fn bench(
    input: &StaffingInput,
    plans: &[PersonPlan],
    settings: &StaffingSettings,
) -> Vec<RaisedFinding> {
    if !input.bookings.iter().any(|b| b.employee.is_some()) {
        return Vec::new();
    }
    let people = names(&input.people);
    let mut findings = Vec::new();
    for plan in plans {
        let capacity: Decimal = plan.weeks.iter().map(|w| w.capacity).sum();
        let booked: Decimal = plan.weeks.iter().map(|w| w.booked).sum();
        let Some(load) = percent(booked, capacity) else {
            continue;
        };
        if load >= settings.bench_below {
            continue;
        }
        let manager = people
            .get(plan.employee.as_str())
            .and_then(|p| p.manager.as_deref());
        let weeks = plan.weeks.len();
        findings.push(RaisedFinding {
            key: format!("{STAFFING_BENCH}/{}", plan.employee),
            control: STAFFING_BENCH.into(),
            severity: Severity::Info,
            record: Some(RecordRef::new(Kind::Employee, plan.employee.clone())),
            message: format!(
                "{} is booked {booked} of {capacity} h over the next {weeks} weeks, {load} % of capacity, below the bench line of {} %",
                plan.name, settings.bench_below
            ),
            evidence: json!({
                "employee": plan.employee,
                "employee_name": plan.name,
                "accountable": accountable(manager, &people, "manager"),
                "booked": booked.to_string(),
                "capacity": capacity.to_string(),
                "load_percent": load.to_string(),
                "threshold_percent": settings.bench_below.to_string(),
                "weeks": plan.weeks,
            }),
        });
    }
    findings
}

/// Open roles (allocations with no person) that have started or start within
/// `unstaffed_within` of `today` and have not ended.
pub fn unstaffed_roles(
    input: &StaffingInput,
    settings: &StaffingSettings,
    today: NaiveDate,
) -> Vec<RaisedFinding> {
    let people = names(&input.people);
    let horizon = settings.unstaffed_within.add_to(today, None);
    let mut findings = Vec::new();
    for booking in &input.bookings {
        if booking.employee.is_some()
            || booking.start > horizon
            || booking.end.is_some_and(|end| end < today)
        {
            continue;
        }
        let role = booking.role.as_deref().unwrap_or("a role");
        let started = booking.start <= today;
        let when = if started {
            format!("started on {}", booking.start)
        } else {
            format!("starts on {}", booking.start)
        };
        findings.push(RaisedFinding {
            key: format!("{STAFFING_UNSTAFFED_ROLE}/{}", booking.id),
            control: STAFFING_UNSTAFFED_ROLE.into(),
            severity: if started {
                Severity::Error
            } else {
                Severity::Warning
            },
            record: Some(RecordRef::new(Kind::Allocation, booking.id.clone())),
            message: format!(
                "{role} on {} ({} h a week) {when} and nobody is allocated",
                booking.project_name, booking.hours_per_week
            ),
            evidence: json!({
                "allocation": booking.id,
                "project": booking.project,
                "project_name": booking.project_name,
                "role": booking.role,
                "required_skills": booking.required_skills,
                "hours_per_week": booking.hours_per_week.to_string(),
                "start_date": booking.start,
                "end_date": booking.end,
                "accountable": accountable(booking.project_owner.as_deref(), &people, "project owner"),
                "candidates_query": format!("/api/v1/staffing/roles/{}/candidates", booking.id),
            }),
        });
    }
    findings
}

fn normalized(skill: &str) -> String {
    skill.trim().to_lowercase()
}

fn missing_skills(person: &StaffMember, required: &[String]) -> Vec<String> {
    let has: Vec<String> = person.skills.iter().map(|s| normalized(s)).collect();
    required
        .iter()
        .filter(|s| !has.contains(&normalized(s)))
        .cloned()
        .collect()
}

/// People allocated to a role whose required skills they lack, on allocations that have not
/// ended by `today`.
pub fn skill_mismatches(input: &StaffingInput, today: NaiveDate) -> Vec<RaisedFinding> {
    let people = names(&input.people);
    let mut findings = Vec::new();
    for booking in &input.bookings {
        let Some(employee) = booking.employee.as_deref() else {
            continue;
        };
        let Some(person) = people.get(employee) else {
            continue;
        };
        if booking.end.is_some_and(|end| end < today) {
            continue;
        }
        let missing = missing_skills(person, &booking.required_skills);
        if missing.is_empty() {
            continue;
        }
        findings.push(RaisedFinding {
            key: format!("{STAFFING_SKILL_MISMATCH}/{}", booking.id),
            control: STAFFING_SKILL_MISMATCH.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Allocation, booking.id.clone())),
            message: format!(
                "{} is allocated as {} on {} without {}",
                person.name,
                booking.role.as_deref().unwrap_or("a role"),
                booking.project_name,
                missing.join(", ")
            ),
            evidence: json!({
                "allocation": booking.id,
                "employee": employee,
                "employee_name": person.name,
                "project": booking.project,
                "required_skills": booking.required_skills,
                "skills": person.skills,
                "missing": missing,
                "accountable": accountable(booking.project_owner.as_deref(), &people, "project owner"),
            }),
        });
    }
    findings
}

/// The highest load of `employee` in the weeks an allocation spans, counting the
/// allocation itself: (week, booked hours, capacity, load in percent or `None` without
/// capacity). `bookings` holds the person's other allocations; weeks before `from` are
/// left out.
pub fn peak_load(
    person: &StaffMember,
    leaves: &[LeaveSpan],
    bookings: &[Booking],
    allocation: &Booking,
    from: NaiveDate,
) -> Option<PersonWeek> {
    let start = allocation.start.max(from);
    let end = allocation.end.unwrap_or(start + Duration::weeks(12));
    if end < start {
        return None;
    }
    let weeks = ((monday_of(end) - monday_of(start)).num_days() / 7 + 1).min(52) as u32;
    let mut all: Vec<Booking> = bookings
        .iter()
        .filter(|b| b.id != allocation.id)
        .cloned()
        .collect();
    all.push(allocation.clone());
    let input = StaffingInput {
        people: vec![person.clone()],
        leaves: leaves.to_vec(),
        bookings: all,
    };
    plan(&input, start, weeks)
        .into_iter()
        .next()?
        .weeks
        .into_iter()
        .max_by_key(|w| {
            (
                w.load.is_none() && w.booked > Decimal::ZERO,
                w.load.unwrap_or_default(),
            )
        })
}

/// A person proposed for an open role.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub rank: usize,
    pub employee: String,
    pub name: String,
    pub role: Option<String>,
    /// From 0 to 100: skills weigh 45, availability 35, cost 10 and the same role 10.
    pub score: Decimal,
    /// Share of the required skills the person has, from 0 to 1.
    pub skills: Decimal,
    pub missing_skills: Vec<String>,
    /// Share of the role's hours the person has free over its weeks, from 0 to 1.
    pub availability: Decimal,
    pub free_hours: Decimal,
    pub needed_hours: Decimal,
    pub cost_rate: Option<String>,
    pub currency: Option<String>,
    /// Why the person has this rank, one sentence per factor.
    pub reasons: Vec<String>,
}

const SKILL_WEIGHT: i64 = 45;
const AVAILABILITY_WEIGHT: i64 = 35;
const COST_WEIGHT: i64 = 10;
const ROLE_WEIGHT: i64 = 10;
/// Weeks of a role looked at when ranking; a longer role is judged on its first weeks.
pub const CANDIDATE_WEEKS: u32 = 12;

/// Ranks the people in `input` for the open role `role`, best first. Availability counts the
/// role's weeks from the later of its start and `today`, at most [`CANDIDATE_WEEKS`]. Cost
/// ranks people against the others who are paid in the same currency; people without a cost
/// rate get half the cost weight.
pub fn candidates(input: &StaffingInput, role: &Booking, today: NaiveDate) -> Vec<Candidate> {
    let start = role.start.max(today);
    let end = role
        .end
        .unwrap_or(start + Duration::weeks(CANDIDATE_WEEKS as i64));
    let weeks = if end < start {
        1
    } else {
        (((monday_of(end) - monday_of(start)).num_days() / 7) + 1).clamp(1, CANDIDATE_WEEKS as i64)
            as u32
    };
    let others = StaffingInput {
        people: input.people.clone(),
        leaves: input.leaves.clone(),
        bookings: input
            .bookings
            .iter()
            .filter(|b| b.id != role.id)
            .cloned()
            .collect(),
    };
    let plans: HashMap<String, PersonPlan> = plan(&others, start, weeks)
        .into_iter()
        .map(|p| (p.employee.clone(), p))
        .collect();
    let cheapest_first = cost_order(&input.people);
    let mut list: Vec<Candidate> = input
        .people
        .iter()
        .map(|person| {
            let plan = &plans[&person.id];
            candidate(person, plan, role, start, &cheapest_first)
        })
        .collect();
    list.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.employee.cmp(&b.employee))
    });
    for (index, candidate) in list.iter_mut().enumerate() {
        candidate.rank = index + 1;
    }
    list
}

/// Per currency, the people with a cost rate from the cheapest.
fn cost_order(people: &[StaffMember]) -> HashMap<String, Vec<(Decimal, String)>> {
    let mut order: HashMap<String, Vec<(Decimal, String)>> = HashMap::new();
    for person in people {
        if let (Some(rate), Some(currency)) = (person.cost_rate, &person.currency) {
            order
                .entry(currency.clone())
                .or_default()
                .push((rate, person.id.clone()));
        }
    }
    for list in order.values_mut() {
        list.sort();
    }
    order
}

fn candidate(
    person: &StaffMember,
    plan: &PersonPlan,
    role: &Booking,
    start: NaiveDate,
    cheapest_first: &HashMap<String, Vec<(Decimal, String)>>,
) -> Candidate {
    let mut reasons = Vec::new();

    let missing = missing_skills(person, &role.required_skills);
    let required = role.required_skills.len();
    let skills = if required == 0 {
        Decimal::ONE
    } else {
        Decimal::from((required - missing.len()) as i64) / Decimal::from(required as i64)
    };
    reasons.push(if required == 0 {
        "the role asks for no skills".to_string()
    } else if missing.is_empty() {
        format!(
            "has all {required} required skills ({})",
            role.required_skills.join(", ")
        )
    } else {
        format!(
            "has {} of {required} required skills; lacks {}",
            required - missing.len(),
            missing.join(", ")
        )
    });

    let (needed, free) = needed_and_free(plan, role, start);
    let availability = if needed.is_zero() {
        Decimal::ONE
    } else {
        (free / needed).min(Decimal::ONE)
    };
    let short_weeks = plan
        .weeks
        .iter()
        .filter(|w| w.free() < role_hours(role, w, start))
        .count();
    reasons.push(format!(
        "free for {} of the {} h the role needs over {} weeks{}",
        round2(free),
        round2(needed),
        plan.weeks.len(),
        if short_weeks > 0 {
            format!(", short in {short_weeks} of them")
        } else {
            String::new()
        }
    ));

    let (cost, cost_reason) = match (person.cost_rate, &person.currency) {
        (Some(rate), Some(currency)) => {
            let list = &cheapest_first[currency];
            let position = list
                .iter()
                .position(|(_, id)| *id == person.id)
                .unwrap_or(0);
            let score = if list.len() <= 1 {
                Decimal::ONE
            } else {
                Decimal::ONE
                    - Decimal::from(position as i64) / Decimal::from((list.len() - 1) as i64)
            };
            (
                score,
                format!(
                    "costs {} {currency} an hour, number {} from the cheapest of {}",
                    rate.normalize(),
                    position + 1,
                    list.len()
                ),
            )
        }
        _ => (
            Decimal::new(5, 1),
            "has no cost rate, so cost counts as average".to_string(),
        ),
    };
    reasons.push(cost_reason);

    let same_role = match (&role.role, &person.role) {
        (Some(wanted), Some(has)) => wanted.trim().eq_ignore_ascii_case(has.trim()),
        _ => false,
    };
    if let Some(wanted) = &role.role {
        reasons.push(if same_role {
            format!("already works as {wanted}")
        } else {
            format!(
                "works as {}, not {wanted}",
                person.role.as_deref().unwrap_or("no stated role")
            )
        });
    }

    let score = skills * Decimal::from(SKILL_WEIGHT)
        + availability * Decimal::from(AVAILABILITY_WEIGHT)
        + cost * Decimal::from(COST_WEIGHT)
        + if same_role {
            Decimal::from(ROLE_WEIGHT)
        } else {
            Decimal::ZERO
        };
    Candidate {
        rank: 0,
        employee: person.id.clone(),
        name: person.name.clone(),
        role: person.role.clone(),
        score: score.round_dp(1).normalize(),
        skills: skills.round_dp(2).normalize(),
        missing_skills: missing,
        availability: availability.round_dp(2).normalize(),
        free_hours: round2(free),
        needed_hours: round2(needed),
        cost_rate: person.cost_rate.map(|r| r.to_string()),
        currency: person.currency.clone(),
        reasons,
    }
}

/// Hours the role books in one week of the person's plan, pro rata to the days it covers.
fn role_hours(role: &Booking, week: &PersonWeek, start: NaiveDate) -> Decimal {
    let days = (0..7)
        .map(|n| week.monday + Duration::days(n))
        .filter(|d| d.weekday() != Weekday::Sat && d.weekday() != Weekday::Sun)
        .filter(|d| *d >= start && role.end.is_none_or(|end| *d <= end))
        .count();
    role.hours_per_week * Decimal::from(days as i64) / Decimal::from(5)
}

fn needed_and_free(plan: &PersonPlan, role: &Booking, start: NaiveDate) -> (Decimal, Decimal) {
    let mut needed = Decimal::ZERO;
    let mut free = Decimal::ZERO;
    for week in &plan.weeks {
        let hours = role_hours(role, week, start);
        needed += hours;
        free += week.free().min(hours);
    }
    (needed, free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn calendar() -> Calendar {
        let mut calendar = weekdays_calendar();
        calendar
            .holidays
            .insert(day("2026-12-25"), "Christmas".to_string());
        calendar
    }

    fn person(id: &str, skills: &[&str], cost: Option<Decimal>, role: &str) -> StaffMember {
        StaffMember {
            id: id.into(),
            name: format!("Person {id}"),
            manager: Some("boss".into()),
            role: Some(role.into()),
            skills: skills.iter().map(|s| s.to_string()).collect(),
            cost_rate: cost,
            currency: cost.map(|_| "EUR".to_string()),
            calendar: Some(calendar()),
        }
    }

    fn booking(
        id: &str,
        employee: Option<&str>,
        hours: Decimal,
        start: &str,
        end: &str,
    ) -> Booking {
        Booking {
            id: id.into(),
            project: "p1".into(),
            project_name: "Data platform".into(),
            project_owner: Some("owner".into()),
            employee: employee.map(String::from),
            role: Some("Consultant".into()),
            required_skills: vec!["python".into(), "sql".into()],
            hours_per_week: hours,
            start: day(start),
            end: Some(day(end)),
            state: "confirmed".into(),
        }
    }

    #[test]
    fn capacity_loses_holidays_and_leave() {
        let input = StaffingInput {
            people: vec![person("a", &[], None, "Consultant")],
            leaves: vec![LeaveSpan {
                employee: "a".into(),
                first: day("2026-12-21"),
                last: day("2026-12-22"),
                hours: Some(dec!(12)),
            }],
            bookings: vec![booking(
                "b1",
                Some("a"),
                dec!(40),
                "2026-12-14",
                "2026-12-31",
            )],
        };
        let plans = plan(&input, day("2026-12-16"), 3);
        let weeks = &plans[0].weeks;
        assert_eq!(weeks[0].week, "2026-W51");
        assert_eq!(weeks[0].capacity, dec!(40));
        assert_eq!(weeks[0].load, Some(dec!(100)));
        // Christmas takes 8 hours, and 12 of the 16 scheduled leave hours take 75 % of two days.
        assert_eq!(weeks[1].capacity, dec!(20));
        assert_eq!(weeks[1].booked, dec!(40));
        assert_eq!(weeks[1].load, Some(dec!(200)));
        assert_eq!(weeks[1].absences.len(), 3, "{:?}", weeks[1].absences);
        // The allocation ends on Thursday 31 December: four of five days.
        assert_eq!(weeks[2].booked, dec!(32));
    }

    #[test]
    fn overbooking_bench_roles_and_skills_are_found() {
        let settings = StaffingSettings::default();
        let input = StaffingInput {
            people: vec![
                person("busy", &["python"], Some(dec!(70)), "Consultant"),
                person("idle", &["python", "sql"], Some(dec!(55)), "Consultant"),
            ],
            leaves: vec![],
            bookings: vec![
                booking("b1", Some("busy"), dec!(32), "2026-12-07", "2027-01-31"),
                booking("b2", Some("busy"), dec!(24), "2026-12-14", "2027-01-31"),
                booking("b3", Some("idle"), dec!(8), "2026-12-07", "2027-01-31"),
                booking("open", None, dec!(16), "2026-12-21", "2027-01-31"),
                booking("later", None, dec!(16), "2027-03-01", "2027-03-31"),
            ],
        };
        let today = day("2026-12-07");
        let plans = plan(&input, today, 4);
        let over = overbooked(&input, &plans, &settings);
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].severity, Severity::Error);
        assert_eq!(
            over[0].message,
            "Person busy is booked 56 h in week 2026-W52, 175 % of 32 h capacity; 3 of the 4 weeks looked at are over 100 %"
        );
        assert_eq!(over[0].evidence["accountable"]["employee"], "boss");

        let benched = bench(&input, &plans, &settings);
        assert_eq!(benched.len(), 1);
        assert_eq!(benched[0].key, "staffing_bench/idle");

        let roles = unstaffed_roles(&input, &settings, today);
        let keys: Vec<&str> = roles.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, vec!["staffing_unstaffed_role/open"]);
        assert_eq!(roles[0].severity, Severity::Warning);
        assert_eq!(roles[0].evidence["accountable"]["as"], "project owner");

        let mismatches = skill_mismatches(&input, today);
        assert_eq!(mismatches.len(), 2, "busy lacks sql on b1 and b2");
        assert_eq!(
            mismatches[0].message,
            "Person busy is allocated as Consultant on Data platform without sql"
        );
    }

    #[test]
    fn candidates_are_ranked_with_reasons() {
        let input = StaffingInput {
            people: vec![
                person(
                    "expert",
                    &["Python", "SQL"],
                    Some(dec!(90)),
                    "Senior Consultant",
                ),
                person("junior", &["python"], Some(dec!(40)), "Consultant"),
                person("free", &["python", "sql"], Some(dec!(60)), "Consultant"),
            ],
            leaves: vec![],
            bookings: vec![
                booking("b1", Some("expert"), dec!(40), "2026-12-07", "2027-01-31"),
                booking("open", None, dec!(16), "2026-12-07", "2026-12-20"),
            ],
        };
        let role = input.bookings[1].clone();
        let ranked = candidates(&input, &role, day("2026-12-07"));
        let order: Vec<&str> = ranked.iter().map(|c| c.employee.as_str()).collect();
        assert_eq!(order, vec!["free", "junior", "expert"]);
        let free = &ranked[0];
        assert_eq!(free.rank, 1);
        assert_eq!(free.score, dec!(95));
        assert_eq!(free.needed_hours, dec!(32));
        assert_eq!(
            free.reasons,
            vec![
                "has all 2 required skills (python, sql)",
                "free for 32 of the 32 h the role needs over 2 weeks",
                "costs 60 EUR an hour, number 2 from the cheapest of 3",
                "already works as Consultant",
            ]
        );
        let expert = &ranked[2];
        assert_eq!(expert.availability, dec!(0));
        assert!(
            expert.reasons[1].ends_with("short in 2 of them"),
            "{:?}",
            expert.reasons
        );
        assert_eq!(ranked[1].missing_skills, vec!["sql"]);
    }

    #[test]
    fn peak_load_counts_the_new_allocation() {
        let member = person("a", &[], None, "Consultant");
        let existing = vec![booking(
            "b1",
            Some("a"),
            dec!(32),
            "2026-12-07",
            "2027-01-31",
        )];
        let mut new = booking("b2", Some("a"), dec!(16), "2026-12-21", "2027-01-10");
        new.state = "planned".into();
        let peak = peak_load(&member, &[], &existing, &new, day("2026-12-07")).unwrap();
        assert_eq!(peak.week, "2026-W52");
        assert_eq!(peak.booked, dec!(48));
        assert_eq!(peak.load, Some(dec!(150)));
    }
}
