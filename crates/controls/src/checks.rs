use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::{
    APPROVER_MISSING, DAILY_HOURS, OVERLAPPING_ENTRIES, PROJECT_TIME, People, SELF_APPROVAL,
};

/// Hours one person logged on one day, over all their entries.
#[derive(Clone, Debug, PartialEq)]
pub struct DayTotal {
    pub employee: String,
    pub date: NaiveDate,
    pub hours: Decimal,
    pub entries: u64,
}

fn person_name(people: &People, id: &str) -> String {
    people
        .get(id)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("employee {id}"))
}

fn employee_ref(id: &str) -> Option<RecordRef> {
    Some(RecordRef::new(Kind::Employee, id))
}

/// A day over 24 hours is an error; a day over the person's calendar is a warning. On a day
/// the calendar schedules no work (a weekend or a holiday), the calendar's normal day length
/// is the limit, so weekend work alone raises nothing.
pub fn daily_hours(people: &People, days: &[DayTotal]) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for day in days {
        let name = person_name(people, &day.employee);
        let calendar = people.get(&day.employee).and_then(|p| p.calendar.as_ref());
        let limit = match calendar {
            Some(c) if c.scheduled(day.date).is_zero() => c.hours_per_day,
            Some(c) => c.scheduled(day.date),
            None => Decimal::from(8),
        };
        let calendar_name = calendar
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "a standard 8-hour day".into());
        let weekday = day.date.format("%A");
        let (severity, message) = if day.hours > Decimal::from(24) {
            (
                Severity::Error,
                format!(
                    "{name} logged {} hours on {weekday} {}, more than the 24 hours of a day",
                    day.hours.normalize(),
                    day.date
                ),
            )
        } else if day.hours > limit {
            (
                Severity::Warning,
                format!(
                    "{name} logged {} hours on {weekday} {}, over the {} hours of {calendar_name}",
                    day.hours.normalize(),
                    day.date,
                    limit.normalize()
                ),
            )
        } else {
            continue;
        };
        findings.push(RaisedFinding {
            key: format!("{DAILY_HOURS}/{}/{}", day.employee, day.date),
            control: DAILY_HOURS.into(),
            severity,
            record: employee_ref(&day.employee),
            message,
            evidence: json!({
                "employee": day.employee,
                "employee_name": name,
                "date": day.date,
                "hours": day.hours.normalize().to_string(),
                "limit": limit.normalize().to_string(),
                "calendar": calendar.map(|c| c.name.clone()),
                "entries": day.entries,
                "entries_query": format!("/api/v1/timesheets?employee={}&date={}", day.employee, day.date),
            }),
        });
    }
    findings
}

/// Time or expenses of one person that wait for approval.
#[derive(Clone, Debug, PartialEq)]
pub struct Awaiting {
    pub employee: String,
    pub kind: Kind,
    pub count: u64,
    /// Hours for timesheets; amount per currency for expenses.
    pub hours: Decimal,
    pub amounts: BTreeMap<String, Decimal>,
}

/// Work awaiting approval from a person with no manager, or who is their own manager, has
/// nobody to approve it.
pub fn approver_missing(people: &People, awaiting: &[Awaiting]) -> Vec<RaisedFinding> {
    let mut by_person: BTreeMap<&str, Vec<&Awaiting>> = BTreeMap::new();
    for item in awaiting.iter().filter(|a| a.count > 0) {
        by_person
            .entry(item.employee.as_str())
            .or_default()
            .push(item);
    }
    let mut findings = Vec::new();
    for (employee, items) in by_person {
        let Some(person) = people.get(employee) else {
            continue;
        };
        let reason = match &person.manager {
            None => "has no manager",
            Some(manager) if manager == employee => "is their own manager",
            Some(_) => continue,
        };
        let parts: Vec<String> = items.iter().map(|item| describe_awaiting(item)).collect();
        findings.push(RaisedFinding {
            key: format!("{APPROVER_MISSING}/{employee}"),
            control: APPROVER_MISSING.into(),
            severity: Severity::Warning,
            record: employee_ref(employee),
            message: format!(
                "{} {reason}, so nobody can approve their {} awaiting approval",
                person.name,
                parts.join(" and ")
            ),
            evidence: json!({
                "employee": employee,
                "employee_name": person.name,
                "manager": person.manager,
                "awaiting": items.iter().map(|item| json!({
                    "kind": item.kind.name(),
                    "count": item.count,
                    "hours": item.hours.normalize().to_string(),
                    "amounts": item.amounts.iter().map(|(c, a)| (c.clone(), a.to_string())).collect::<BTreeMap<_, _>>(),
                    "query": format!("/api/v1/{}?employee={employee}&state=submitted", item.kind.plural()),
                })).collect::<Vec<_>>(),
            }),
        });
    }
    findings
}

fn describe_awaiting(item: &Awaiting) -> String {
    match item.kind {
        Kind::Timesheet => format!(
            "{} timesheet {} ({} h)",
            item.count,
            if item.count == 1 { "entry" } else { "entries" },
            item.hours.normalize()
        ),
        _ => {
            let amounts: Vec<String> = item
                .amounts
                .iter()
                .map(|(c, a)| format!("{a} {c}"))
                .collect();
            format!(
                "{} {} ({})",
                item.count,
                if item.count == 1 {
                    "expense"
                } else {
                    "expenses"
                },
                amounts.join(", ")
            )
        }
    }
}

/// An approved timesheet entry or expense and who approved it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovedEntry {
    pub record: RecordRef,
    pub employee: String,
    pub submitted_by: Option<String>,
    pub approved_by: String,
    pub date: Option<NaiveDate>,
}

/// Nobody approves what they submitted. Without a recorded submitter, the employee the entry
/// belongs to is taken as the submitter.
pub fn self_approval(people: &People, approved: &[ApprovedEntry]) -> Vec<RaisedFinding> {
    approved
        .iter()
        .filter(|a| a.submitted_by.as_deref().unwrap_or(&a.employee) == a.approved_by)
        .map(|a| {
            let name = person_name(people, &a.approved_by);
            let label = a.record.kind.schema().label;
            let date = a.date.map(|d| format!(" of {d}")).unwrap_or_default();
            RaisedFinding {
                key: format!("{SELF_APPROVAL}/{}/{}", a.record.kind, a.record.id),
                control: SELF_APPROVAL.into(),
                severity: Severity::Error,
                record: Some(a.record.clone()),
                message: format!("{name} approved their own {label}{date}"),
                evidence: json!({
                    "record": a.record,
                    "employee": a.employee,
                    "submitted_by": a.submitted_by,
                    "approved_by": a.approved_by,
                    "approver_name": name,
                }),
            }
        })
        .collect()
}

/// Open time grouped by the project it was logged on.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectTime {
    /// The project id, or `None` when the entries name no project.
    pub project: Option<String>,
    /// A project reference that could not be resolved, such as `odoo project.project 6`.
    pub unresolved: Option<String>,
    pub hours: Decimal,
    pub entries: u64,
}

/// The state and name of a project, or `None` when the id names no stored project.
pub type ProjectLookup<'a> = dyn Fn(&str) -> Option<(String, String)> + 'a;

/// Time not yet invoiced that sits on a closed, cancelled or missing project cannot be billed
/// or costed until someone moves it.
pub fn time_on_closed_or_missing_project(
    groups: &[ProjectTime],
    project: &ProjectLookup,
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for group in groups.iter().filter(|g| g.entries > 0) {
        let hours = group.hours.normalize();
        let (key, record, severity, message) = match (&group.project, &group.unresolved) {
            (Some(id), _) => match project(id) {
                Some((state, name)) if state == "closed" || state == "cancelled" => (
                    format!("{PROJECT_TIME}/{id}"),
                    Some(RecordRef::new(Kind::Project, id.clone())),
                    Severity::Warning,
                    format!(
                        "{hours} h in {} open entries are logged on project {name}, which is {state}",
                        group.entries
                    ),
                ),
                Some(_) => continue,
                None => (
                    format!("{PROJECT_TIME}/{id}"),
                    None,
                    Severity::Error,
                    format!(
                        "{hours} h in {} entries name project {id}, which does not exist",
                        group.entries
                    ),
                ),
            },
            (None, Some(unresolved)) => (
                format!("{PROJECT_TIME}/unresolved/{unresolved}"),
                None,
                Severity::Warning,
                format!(
                    "{hours} h in {} entries are logged on {unresolved}, a project that was not \
                     synced (archived or not readable)",
                    group.entries
                ),
            ),
            (None, None) => (
                format!("{PROJECT_TIME}/none"),
                None,
                Severity::Warning,
                format!(
                    "{hours} h in {} open entries name no project",
                    group.entries
                ),
            ),
        };
        findings.push(RaisedFinding {
            key,
            control: PROJECT_TIME.into(),
            severity,
            record,
            message,
            evidence: json!({
                "project": group.project,
                "unresolved": group.unresolved,
                "hours": hours.to_string(),
                "entries": group.entries,
            }),
        });
    }
    findings
}

/// A timesheet entry with a start and an end, from a timer.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEntry {
    pub id: String,
    pub employee: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Overlaps shorter than this are timer rounding and raise an info finding only.
pub const OVERLAP_TOLERANCE_SECONDS: i64 = 60;

/// Entries of one person whose times overlap may count the same time twice.
pub fn overlapping_entries(people: &People, mut entries: Vec<TimedEntry>) -> Vec<RaisedFinding> {
    entries.sort_by(|a, b| (&a.employee, a.start, &a.id).cmp(&(&b.employee, b.start, &b.id)));
    let mut findings = Vec::new();
    for pair in entries.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        if first.employee != second.employee || second.start >= first.end {
            continue;
        }
        let overlap = (first.end.min(second.end) - second.start).num_seconds();
        let severity = if overlap < OVERLAP_TOLERANCE_SECONDS {
            Severity::Info
        } else {
            Severity::Warning
        };
        let name = person_name(people, &first.employee);
        findings.push(RaisedFinding {
            key: format!("{OVERLAPPING_ENTRIES}/{}/{}", first.id, second.id),
            control: OVERLAPPING_ENTRIES.into(),
            severity,
            record: Some(RecordRef::new(Kind::Timesheet, second.id.clone())),
            message: format!(
                "{name} has two entries overlapping by {}, from {} to {}",
                describe_seconds(overlap),
                second.start.format("%Y-%m-%d %H:%M:%S"),
                first.end.min(second.end).format("%H:%M:%S")
            ),
            evidence: json!({
                "employee": first.employee,
                "first": {"id": first.id, "start": first.start, "end": first.end},
                "second": {"id": second.id, "start": second.start, "end": second.end},
                "overlap_seconds": overlap,
            }),
        });
    }
    findings
}

fn describe_seconds(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 && s % 60 == 0 => format!("{} min", s / 60),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Calendar, Person};
    use rust_decimal_macros::dec;

    fn people() -> People {
        let week = [
            dec!(8),
            dec!(8),
            dec!(8),
            dec!(8),
            dec!(8),
            dec!(0),
            dec!(0),
        ];
        let calendar = Calendar {
            name: "Standard 40 hours/week".into(),
            week,
            hours_per_day: dec!(8),
            holidays: [(
                NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
                "Christmas".to_string(),
            )]
            .into(),
        };
        let person = |id: &str, name: &str, manager: Option<&str>| {
            (
                id.to_string(),
                Person {
                    id: id.into(),
                    name: name.into(),
                    manager: manager.map(str::to_string),
                    calendar: Some(calendar.clone()),
                },
            )
        };
        [
            person("admin", "Mitchell Admin", None),
            person("marc", "Marc Demo", Some("admin")),
            person("self", "Sam Self", Some("self")),
        ]
        .into()
    }

    fn day(employee: &str, date: &str, hours: Decimal) -> DayTotal {
        DayTotal {
            employee: employee.into(),
            date: date.parse().unwrap(),
            hours,
            entries: 2,
        }
    }

    #[test]
    fn daily_hours_warns_over_calendar_and_errs_over_a_day() {
        let findings = daily_hours(
            &people(),
            &[
                day("admin", "2026-11-26", dec!(20)),
                day("marc", "2026-11-27", dec!(8)),
                day("marc", "2026-11-28", dec!(6)),
                day("marc", "2026-11-29", dec!(9)),
                day("marc", "2026-12-25", dec!(9)),
                day("marc", "2026-12-01", dec!(25)),
            ],
        );
        let summary: Vec<(Severity, &str)> = findings
            .iter()
            .map(|f| (f.severity, f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Severity::Warning,
                    "Mitchell Admin logged 20 hours on Thursday 2026-11-26, over the 8 hours of Standard 40 hours/week"
                ),
                (
                    Severity::Warning,
                    "Marc Demo logged 9 hours on Sunday 2026-11-29, over the 8 hours of Standard 40 hours/week"
                ),
                (
                    Severity::Warning,
                    "Marc Demo logged 9 hours on Friday 2026-12-25, over the 8 hours of Standard 40 hours/week"
                ),
                (
                    Severity::Error,
                    "Marc Demo logged 25 hours on Tuesday 2026-12-01, more than the 24 hours of a day"
                ),
            ]
        );
        assert_eq!(findings[0].key, "daily_hours/admin/2026-11-26");
    }

    #[test]
    fn approver_missing_names_people_without_a_manager() {
        let awaiting = vec![
            Awaiting {
                employee: "admin".into(),
                kind: Kind::Expense,
                count: 4,
                hours: dec!(0),
                amounts: [("USD".to_string(), dec!(2909.60))].into(),
            },
            Awaiting {
                employee: "admin".into(),
                kind: Kind::Timesheet,
                count: 1,
                hours: dec!(7.5),
                amounts: Default::default(),
            },
            Awaiting {
                employee: "marc".into(),
                kind: Kind::Expense,
                count: 2,
                hours: dec!(0),
                amounts: Default::default(),
            },
            Awaiting {
                employee: "self".into(),
                kind: Kind::Timesheet,
                count: 3,
                hours: dec!(12),
                amounts: Default::default(),
            },
        ];
        let findings = approver_missing(&people(), &awaiting);
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Mitchell Admin has no manager, so nobody can approve their 4 expenses (2909.60 USD) and 1 timesheet entry (7.5 h) awaiting approval",
                "Sam Self is their own manager, so nobody can approve their 3 timesheet entries (12 h) awaiting approval",
            ]
        );
    }

    #[test]
    fn self_approval_is_an_error() {
        let entry = |id: &str, submitted: Option<&str>, approver: &str| ApprovedEntry {
            record: RecordRef::new(Kind::Expense, id),
            employee: "marc".into(),
            submitted_by: submitted.map(str::to_string),
            approved_by: approver.into(),
            date: None,
        };
        let findings = self_approval(
            &people(),
            &[
                entry("e1", None, "marc"),
                entry("e2", Some("admin"), "admin"),
                entry("e3", Some("marc"), "admin"),
            ],
        );
        let ids: Vec<&str> = findings
            .iter()
            .map(|f| f.record.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(ids, vec!["e1", "e2"]);
        assert_eq!(
            findings[1].message,
            "Mitchell Admin approved their own expense"
        );
    }

    #[test]
    fn project_time_flags_closed_missing_and_unresolved() {
        let groups = vec![
            ProjectTime {
                project: Some("open".into()),
                unresolved: None,
                hours: dec!(5),
                entries: 1,
            },
            ProjectTime {
                project: Some("done".into()),
                unresolved: None,
                hours: dec!(3),
                entries: 2,
            },
            ProjectTime {
                project: Some("gone".into()),
                unresolved: None,
                hours: dec!(1),
                entries: 1,
            },
            ProjectTime {
                project: None,
                unresolved: Some("odoo project.project 6".into()),
                hours: dec!(2),
                entries: 1,
            },
            ProjectTime {
                project: None,
                unresolved: None,
                hours: dec!(4),
                entries: 3,
            },
        ];
        let lookup = |id: &str| match id {
            "open" => Some(("active".to_string(), "Office Design".to_string())),
            "done" => Some(("closed".to_string(), "Old Project".to_string())),
            _ => None,
        };
        let findings = time_on_closed_or_missing_project(&groups, &lookup);
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "3 h in 2 open entries are logged on project Old Project, which is closed",
                "1 h in 1 entries name project gone, which does not exist",
                "2 h in 1 entries are logged on odoo project.project 6, a project that was not synced (archived or not readable)",
                "4 h in 3 open entries name no project",
            ]
        );
    }

    #[test]
    fn overlaps_are_found_per_person() {
        let at = |s: &str| format!("2026-12-01T{s}Z").parse::<DateTime<Utc>>().unwrap();
        let entry = |id: &str, employee: &str, start: &str, end: &str| TimedEntry {
            id: id.into(),
            employee: employee.into(),
            start: at(start),
            end: at(end),
        };
        let findings = overlapping_entries(
            &people(),
            vec![
                entry("a", "marc", "09:00:00", "10:00:03"),
                entry("b", "marc", "10:00:00", "11:00:00"),
                entry("c", "marc", "10:30:00", "12:00:00"),
                entry("d", "admin", "10:30:00", "12:00:00"),
                entry("e", "marc", "12:00:00", "13:00:00"),
            ],
        );
        let summary: Vec<(Severity, &str)> = findings
            .iter()
            .map(|f| (f.severity, f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Severity::Info,
                    "Marc Demo has two entries overlapping by 3 s, from 2026-12-01 10:00:00 to 10:00:03"
                ),
                (
                    Severity::Warning,
                    "Marc Demo has two entries overlapping by 30 min, from 2026-12-01 10:30:00 to 11:00:00"
                ),
            ]
        );
    }
}
