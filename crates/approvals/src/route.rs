//! Routing: from a policy's steps to the people who decide them, with segregation of duties,
//! authority limits, escalation up the management chain and delegation while someone is
//! away. The directory of people is passed in; nothing here reads a store.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use steward_domain::calendar::Calendar;
use steward_rules::duration::{Offset, Unit};

use crate::policy::{ApprovalConfig, Approver, Limit, Policy};

/// Most levels walked up a management chain, which also stops a cycle of managers.
pub const MAX_CHAIN: usize = 12;

/// An employee, with the data routing uses.
#[derive(Clone, Debug, Default)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub manager: Option<String>,
    pub active: bool,
    /// Days the person is away, first and last day included.
    pub away: Vec<(NaiveDate, NaiveDate)>,
    /// Who decides for the person while they are away.
    pub delegate: Option<String>,
    pub calendar: Option<Calendar>,
    /// Job title, which authority members may name instead of the person.
    pub title: Option<String>,
}

impl Person {
    pub fn is_away(&self, day: NaiveDate) -> bool {
        self.away
            .iter()
            .any(|(from, to)| *from <= day && day <= *to)
    }

    /// True when `key` is the person's id, name, e-mail or job title, ignoring case.
    pub fn answers_to(&self, key: &str) -> bool {
        let key = key.trim();
        self.id == key
            || self.name.eq_ignore_ascii_case(key)
            || [&self.email, &self.title]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(key)))
    }
}

/// The employees routing can look up.
pub trait Directory {
    fn person(&self, id: &str) -> Option<Person>;
    /// Finds every employee whose id, name, e-mail or job title is `key`.
    fn find(&self, key: &str) -> Vec<Person>;
}

/// The request being approved, with the data routing uses.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub kind: String,
    pub requester: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
}

/// An approver resolved for one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Assignment {
    /// The one person who decides, when the step names one.
    pub approver: Option<String>,
    /// Everyone who may decide a role step.
    pub candidates: Vec<String>,
    /// The approver the step was delegated from, while that person is away.
    pub delegated_from: Option<String>,
    /// The rule that produced the assignment, such as `manager` or `role:finance`.
    pub rule: String,
    /// Reasons each candidate was passed over, and where the step went instead.
    pub notes: Vec<String>,
}

impl Assignment {
    pub fn is_empty(&self) -> bool {
        self.approver.is_none() && self.candidates.is_empty()
    }

    /// Everyone who may decide: the approver or the candidates.
    pub fn deciders(&self) -> Vec<String> {
        match &self.approver {
            Some(a) => vec![a.clone()],
            None => self.candidates.clone(),
        }
    }
}

/// Looks people up and checks their authority.
pub struct Router<'a> {
    pub config: &'a ApprovalConfig,
    pub directory: &'a dyn Directory,
    pub today: NaiveDate,
}

impl Router<'_> {
    /// Returns the limit `person` has when acting in `role`: their own limit when the authority sets
    /// one, or else the role's.
    pub fn limit(&self, person: &Person, role: Option<&str>) -> Option<Limit> {
        let authority = &self.config.authority;
        let own = authority
            .people
            .iter()
            .find(|(key, _)| person.answers_to(key))
            .map(|(_, limit)| limit.clone());
        if own.is_some() {
            return own;
        }
        let acting = role
            .and_then(|r| authority.roles.get(r))
            .map(|r| r.limit.clone());
        let held = authority
            .roles
            .values()
            .filter(|r| r.members.iter().any(|m| person.answers_to(m)))
            .map(|r| r.limit.clone())
            .reduce(Limit::max);
        match (acting, held) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks whether `person` may decide `request` in `role`, and returns the reason when not.
    pub fn eligible(
        &self,
        person: &Person,
        role: Option<&str>,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
    ) -> Result<(), String> {
        if request.requester.as_deref() == Some(person.id.as_str()) {
            return Err(format!(
                "{} is the requester, and nobody approves their own request",
                person.name
            ));
        }
        if excluded.contains(&person.id) {
            return Err(format!(
                "{} already decides another step of this request",
                person.name
            ));
        }
        if !person.active {
            return Err(format!("{} is no longer active", person.name));
        }
        if let (Some(amount), Some(currency)) = (request.amount, request.currency.as_deref()) {
            match self.limit(person, role) {
                Some(limit) => limit
                    .covers(amount, currency)
                    .map_err(|why| format!("{} has {why}", person.name))?,
                None => {
                    return Err(format!(
                        "{} has no authority limit, so may not approve an amount",
                        person.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Returns the members of `role` in the authority that the directory finds.
    pub fn members(&self, role: &str) -> Vec<Person> {
        let Some(role) = self.config.authority.roles.get(role) else {
            return Vec::new();
        };
        let mut people: Vec<Person> = role
            .members
            .iter()
            .flat_map(|m| self.directory.find(m))
            .filter(|p| p.active)
            .collect();
        people.sort_by(|a, b| a.id.cmp(&b.id));
        people.dedup_by(|a, b| a.id == b.id);
        people
    }

    /// Resolves who decides a step of `approver`, passing over people who may not decide
    /// and ending at the policy's fallback.
    pub fn assign(
        &self,
        policy: &Policy,
        approver: &Approver,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
    ) -> Assignment {
        let mut assignment = self.assign_one(approver, request, excluded);
        if assignment.is_empty()
            && let Some(fallback) = &policy.fallback
            && fallback != approver
        {
            let mut next = self.assign_one(fallback, request, excluded);
            let mut notes = std::mem::take(&mut assignment.notes);
            notes.push(format!(
                "no one could decide as {approver}; escalated to the policy's fallback, {fallback}"
            ));
            notes.append(&mut next.notes);
            next.notes = notes;
            assignment = next;
        }
        if assignment.is_empty() {
            assignment.notes.push(format!(
                "nobody can decide this step; add someone with the authority to policy `{}` or its fallback",
                policy.id
            ));
        }
        self.delegate(assignment, request, excluded)
    }

    fn assign_one(
        &self,
        approver: &Approver,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
    ) -> Assignment {
        let mut assignment = Assignment {
            rule: approver.to_rule(),
            ..Assignment::default()
        };
        match approver {
            Approver::Manager | Approver::ManagerOfManager => {
                let requester = request
                    .requester
                    .as_deref()
                    .and_then(|id| self.directory.person(id));
                let Some(requester) = requester else {
                    assignment
                        .notes
                        .push("the request has no requester, so it has no manager".into());
                    return assignment;
                };
                let mut start = self.manager_of(&requester, &mut assignment.notes);
                if *approver == Approver::ManagerOfManager {
                    start = start.and_then(|m| self.manager_of(&m, &mut assignment.notes));
                }
                if let Some(found) =
                    self.up_the_chain(start, request, excluded, &mut assignment.notes)
                {
                    assignment.approver = Some(found.id);
                }
            }
            Approver::Role(role) => {
                let members = self.members(role);
                if members.is_empty() {
                    assignment
                        .notes
                        .push(format!("role `{role}` has no member that Steward knows"));
                }
                for member in members {
                    match self.eligible(&member, Some(role), request, excluded) {
                        Ok(()) => assignment.candidates.push(member.id),
                        Err(why) => assignment.notes.push(why),
                    }
                }
            }
            Approver::Person(key) => match self.directory.find(key).as_slice() {
                [person] => match self.eligible(person, None, request, excluded) {
                    Ok(()) => assignment.approver = Some(person.id.clone()),
                    Err(why) => assignment.notes.push(why),
                },
                [] => assignment
                    .notes
                    .push(format!("no employee answers to `{key}`")),
                several => assignment.notes.push(format!(
                    "{} employees answer to `{key}`; name one by e-mail or id in the policy",
                    several.len()
                )),
            },
        }
        assignment
    }

    /// Returns the manager of `person`, noting when there is none or when it is themselves.
    fn manager_of(&self, person: &Person, notes: &mut Vec<String>) -> Option<Person> {
        match person.manager.as_deref() {
            None => {
                notes.push(format!("{} has no manager", person.name));
                None
            }
            Some(id) if id == person.id => {
                notes.push(format!("{} is their own manager", person.name));
                None
            }
            Some(id) => {
                let manager = self.directory.person(id);
                if manager.is_none() {
                    notes.push(format!("the manager of {} is not in Steward", person.name));
                }
                manager
            }
        }
    }

    /// Walks up from `start` to the first person who may decide.
    fn up_the_chain(
        &self,
        start: Option<Person>,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
        notes: &mut Vec<String>,
    ) -> Option<Person> {
        let mut current = start;
        let mut seen = BTreeSet::new();
        while let Some(person) = current {
            if !seen.insert(person.id.clone()) || seen.len() > MAX_CHAIN {
                notes.push(format!("the management chain loops at {}", person.name));
                return None;
            }
            match self.eligible(&person, Some("manager"), request, excluded) {
                Ok(()) => return Some(person),
                Err(why) => {
                    notes.push(format!("{why}; going up to the next level"));
                    current = self.manager_of(&person, notes);
                }
            }
        }
        None
    }

    /// Hands the step to the approver's delegate while the approver is away.
    fn delegate(
        &self,
        mut assignment: Assignment,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
    ) -> Assignment {
        let Some(approver) = assignment
            .approver
            .as_deref()
            .and_then(|id| self.directory.person(id))
        else {
            return assignment;
        };
        if !approver.is_away(self.today) {
            return assignment;
        }
        let Some(delegate) = approver
            .delegate
            .as_deref()
            .and_then(|id| self.directory.person(id))
        else {
            assignment.notes.push(format!(
                "{} is away and has named no delegate; the step waits for them",
                approver.name
            ));
            return assignment;
        };
        let role = assignment.rule.strip_prefix("role:").or(Some("manager"));
        match self.eligible(&delegate, role, request, excluded) {
            Ok(()) => {
                assignment.notes.push(format!(
                    "{} is away; delegated to {}",
                    approver.name, delegate.name
                ));
                assignment.delegated_from = Some(approver.id);
                assignment.approver = Some(delegate.id);
            }
            Err(why) => assignment.notes.push(format!(
                "{} is away, but their delegate cannot decide: {why}",
                approver.name
            )),
        }
        assignment
    }

    /// Returns the next level above a step's approver, for escalation after its deadline: the
    /// approver's manager chain, or the policy's fallback.
    pub fn escalate(
        &self,
        policy: &Policy,
        current: &Assignment,
        request: &RequestInfo,
        excluded: &BTreeSet<String>,
    ) -> Assignment {
        let mut assignment = Assignment {
            rule: current.rule.clone(),
            ..Assignment::default()
        };
        let above = current
            .delegated_from
            .as_deref()
            .or(current.approver.as_deref())
            .and_then(|id| self.directory.person(id));
        if let Some(person) = above {
            let start = self.manager_of(&person, &mut assignment.notes);
            if let Some(found) = self.up_the_chain(start, request, excluded, &mut assignment.notes)
            {
                assignment.notes.push(format!(
                    "escalated from {} to their manager {}",
                    person.name, found.name
                ));
                assignment.approver = Some(found.id);
                assignment.rule = "manager".into();
                return self.delegate(assignment, request, excluded);
            }
        }
        if let Some(fallback) = &policy.fallback {
            let mut next = self.assign_one(fallback, request, excluded);
            next.candidates.retain(|c| !current.deciders().contains(c));
            if next
                .approver
                .as_ref()
                .is_some_and(|a| current.deciders().contains(a))
            {
                next.approver = None;
            }
            if !next.is_empty() {
                let mut notes = assignment.notes;
                notes.push(format!("escalated to the policy's fallback, {fallback}"));
                notes.append(&mut next.notes);
                next.notes = notes;
                return self.delegate(next, request, excluded);
            }
            assignment.notes.append(&mut next.notes);
        }
        assignment
            .notes
            .push("there is no level above; the step stays with its approver".into());
        assignment
    }
}

/// Adds `offset` to `from`: calendar time, or working days of `calendar` keeping the time of
/// day. Without a calendar, working days are Monday to Friday.
pub fn add_offset(
    from: DateTime<Utc>,
    offset: Offset,
    calendar: Option<&Calendar>,
) -> DateTime<Utc> {
    if let Some(duration) = offset.as_duration() {
        return from + duration;
    }
    debug_assert_eq!(offset.unit, Unit::WorkingDays);
    let day = from.date_naive();
    let target = match calendar {
        Some(calendar) => calendar.add_working_days(day, offset.amount),
        None => Some(add_weekdays(day, offset.amount)),
    }
    .unwrap_or(day + Duration::days(offset.amount));
    let time: NaiveTime = from.time();
    Utc.from_utc_datetime(&target.and_time(time))
}

fn add_weekdays(from: NaiveDate, days: i64) -> NaiveDate {
    use chrono::Datelike;
    let step = if days >= 0 { 1 } else { -1 };
    let mut day = from;
    let mut left = days.unsigned_abs();
    while left > 0 {
        day += Duration::days(step);
        if day.weekday().num_days_from_monday() < 5 {
            left -= 1;
        }
    }
    day
}

/// Subtracts `offset` from `deadline`, for reminders.
pub fn before(
    deadline: DateTime<Utc>,
    offset: Offset,
    calendar: Option<&Calendar>,
) -> DateTime<Utc> {
    add_offset(
        deadline,
        Offset {
            amount: -offset.amount,
            unit: offset.unit,
        },
        calendar,
    )
}
