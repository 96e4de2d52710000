//! Margin and account health: budget burn against progress, projected margin under the
//! firm's threshold, milestones past their deadline and support tickets past their SLA.
//!
//! Every finding names its accountable person in `evidence.accountable`: the project manager
//! (the project's owner) for burn and milestones, the client's account leader for margin,
//! and for tickets the owner of the ticket's project, else the client's account leader.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use serde_json::{Value, json};
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::settings::HealthSettings;
use crate::{BUDGET_BURN, MARGIN_LOW, MILESTONE_OVERDUE, SLA_BREACH};

/// A person a finding alerts, with the capacity in which they answer for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accountable {
    pub employee: String,
    pub name: Option<String>,
    /// `project manager`, `account leader` or `assignee`.
    #[serde(rename = "as")]
    pub capacity: String,
}

impl Accountable {
    pub fn new(employee: &str, name: Option<String>, capacity: &str) -> Accountable {
        Accountable {
            employee: employee.to_string(),
            name,
            capacity: capacity.to_string(),
        }
    }
}

fn accountable_json(person: Option<&Accountable>) -> Value {
    person.map_or(Value::Null, |p| json!(p))
}

/// How far a project is, and what that was measured on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// From 0 to 100.
    pub percent: Decimal,
    /// `planned hours of done tasks`, `done tasks`, `reached milestones` or `time elapsed`.
    pub basis: String,
}

/// One task as progress counts it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskState {
    pub planned_hours: Option<Decimal>,
    pub done: bool,
    pub cancelled: bool,
}

fn round2(value: Decimal) -> Decimal {
    value
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn share(part: Decimal, whole: Decimal) -> Decimal {
    round2(part * Decimal::ONE_HUNDRED / whole)
}

/// Measures progress on the first basis the project has: planned hours of done tasks, else
/// the share of done tasks, else of reached milestones, else the share of the planned
/// schedule that has elapsed by `today`. Cancelled tasks do not count.
pub fn progress(
    tasks: &[TaskState],
    milestones_reached: (usize, usize),
    schedule: (Option<NaiveDate>, Option<NaiveDate>),
    today: NaiveDate,
) -> Option<Progress> {
    let live: Vec<&TaskState> = tasks.iter().filter(|t| !t.cancelled).collect();
    let planned: Decimal = live.iter().filter_map(|t| t.planned_hours).sum();
    if !planned.is_zero() {
        let done: Decimal = live
            .iter()
            .filter(|t| t.done)
            .filter_map(|t| t.planned_hours)
            .sum();
        return Some(Progress {
            percent: share(done, planned),
            basis: "planned hours of done tasks".into(),
        });
    }
    if !live.is_empty() {
        let done = live.iter().filter(|t| t.done).count();
        return Some(Progress {
            percent: share(Decimal::from(done), Decimal::from(live.len())),
            basis: "done tasks".into(),
        });
    }
    let (reached, milestones) = milestones_reached;
    if milestones > 0 {
        return Some(Progress {
            percent: share(Decimal::from(reached), Decimal::from(milestones)),
            basis: "reached milestones".into(),
        });
    }
    let (Some(start), Some(end)) = schedule else {
        return None;
    };
    if end <= start {
        return None;
    }
    let elapsed = (today - start)
        .num_days()
        .clamp(0, (end - start).num_days());
    Some(Progress {
        percent: share(
            Decimal::from(elapsed),
            Decimal::from((end - start).num_days()),
        ),
        basis: "time elapsed".into(),
    })
}

/// What health knows about one project.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectHealth {
    pub id: String,
    pub name: String,
    pub state: String,
    pub currency: Option<String>,
    pub budget: Option<Decimal>,
    pub budget_hours: Option<Decimal>,
    /// Hours logged on the project, rejected entries left out.
    pub hours: Decimal,
    /// Cost so far in the project's currency: hours at each person's cost rate, plus
    /// non-billable approved expenses.
    pub cost: Decimal,
    /// Hours whose person has no cost rate in the project's currency, so `cost` leaves them
    /// out.
    pub hours_without_cost: Decimal,
    pub progress: Option<Progress>,
    /// The project manager.
    pub manager: Option<Accountable>,
    /// The client's account leader.
    pub account_leader: Option<Accountable>,
}

/// How much of its budget a project has used, in percent, and on what.
fn burn(project: &ProjectHealth) -> Option<(Decimal, &'static str)> {
    if let Some(budget) = project.budget.filter(|b| *b > Decimal::ZERO)
        && project.hours_without_cost.is_zero()
        && !project.cost.is_zero()
    {
        return Some((share(project.cost, budget), "cost"));
    }
    let hours = project.budget_hours.filter(|h| *h > Decimal::ZERO)?;
    Some((share(project.hours, hours), "hours"))
}

fn is_running(project: &ProjectHealth) -> bool {
    matches!(project.state.as_str(), "active" | "on_hold")
}

/// Active projects whose budget burn runs ahead of their progress by more than
/// `burn_ahead_by` percentage points. Burn is cost against the money budget when every hour
/// has a cost rate in the project's currency, else hours against the budgeted hours. A
/// project that has used its whole budget before it is done is an error.
pub fn budget_burn(projects: &[ProjectHealth], settings: &HealthSettings) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for project in projects.iter().filter(|p| is_running(p)) {
        let (Some((burned, basis)), Some(progress)) = (burn(project), &project.progress) else {
            continue;
        };
        let ahead = burned - progress.percent;
        if ahead <= settings.burn_ahead_by {
            continue;
        }
        let spent = match basis {
            "cost" => format!(
                "{} of {} {}",
                round2(project.cost),
                project.budget.unwrap_or_default(),
                project.currency.as_deref().unwrap_or("")
            ),
            _ => format!(
                "{} of {} budgeted hours",
                round2(project.hours),
                project.budget_hours.unwrap_or_default()
            ),
        };
        let overrun = burned >= Decimal::ONE_HUNDRED && progress.percent < Decimal::ONE_HUNDRED;
        findings.push(RaisedFinding {
            key: format!("{BUDGET_BURN}/{}", project.id),
            control: BUDGET_BURN.into(),
            severity: if overrun {
                Severity::Error
            } else {
                Severity::Warning
            },
            record: Some(RecordRef::new(Kind::Project, project.id.clone())),
            message: format!(
                "{} has used {burned} % of its budget ({spent}) at {} % progress by {}, {} points ahead of the {} allowed",
                project.name,
                progress.percent,
                progress.basis,
                round2(ahead),
                settings.burn_ahead_by
            ),
            evidence: json!({
                "project": project.id,
                "project_name": project.name,
                "burn_percent": burned.to_string(),
                "burn_basis": basis,
                "progress_percent": progress.percent.to_string(),
                "progress_basis": progress.basis,
                "ahead_by": round2(ahead).to_string(),
                "threshold_points": settings.burn_ahead_by.to_string(),
                "hours": project.hours.to_string(),
                "budget_hours": project.budget_hours.map(|h| h.to_string()),
                "cost": round2(project.cost).to_string(),
                "budget": project.budget.map(|b| b.to_string()),
                "currency": project.currency,
                "accountable": accountable_json(project.manager.as_ref()),
            }),
        });
    }
    findings
}

/// Smallest progress, in percent, at which the margin is projected from progress; below it,
/// the margin is the budget against the cost so far, because a projection from a few hours
/// of a large project says little.
pub const PROJECTION_FROM: Decimal = Decimal::TEN;

/// Active projects whose margin falls under `margin_below` percent. The margin is the budget
/// against the projected cost at completion: the cost so far divided by progress, from
/// [`PROJECTION_FROM`] percent of progress on, and the cost so far before that. Projects
/// without a money budget, or with hours that have no cost rate in the project's currency,
/// are left out because their cost is unknown.
pub fn margin_low(projects: &[ProjectHealth], settings: &HealthSettings) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for project in projects.iter().filter(|p| is_running(p)) {
        let Some(budget) = project.budget.filter(|b| *b > Decimal::ZERO) else {
            continue;
        };
        if !project.hours_without_cost.is_zero() || project.cost.is_zero() {
            continue;
        }
        let progress = project
            .progress
            .as_ref()
            .map(|p| p.percent)
            .unwrap_or_default();
        let projected = if progress >= PROJECTION_FROM {
            project.cost * Decimal::ONE_HUNDRED / progress
        } else {
            project.cost
        };
        let margin = share(budget - projected, budget);
        if margin >= settings.margin_below {
            continue;
        }
        let accountable = project.account_leader.as_ref().or(project.manager.as_ref());
        let currency = project.currency.as_deref().unwrap_or("");
        findings.push(RaisedFinding {
            key: format!("{MARGIN_LOW}/{}", project.id),
            control: MARGIN_LOW.into(),
            severity: if margin < Decimal::ZERO {
                Severity::Error
            } else {
                Severity::Warning
            },
            record: Some(RecordRef::new(Kind::Project, project.id.clone())),
            message: format!(
                "{} is heading for a {margin} % margin, under the {} % floor: {} {currency} projected cost against a {budget} {currency} budget",
                project.name,
                settings.margin_below,
                round2(projected),
            ),
            evidence: json!({
                "project": project.id,
                "project_name": project.name,
                "margin_percent": margin.to_string(),
                "threshold_percent": settings.margin_below.to_string(),
                "budget": budget.to_string(),
                "cost_to_date": round2(project.cost).to_string(),
                "projected_cost": round2(projected).to_string(),
                "progress_percent": progress.to_string(),
                "progress_basis": project.progress.as_ref().map(|p| p.basis.clone()),
                "currency": project.currency,
                "accountable": accountable_json(accountable),
            }),
        });
    }
    findings
}

/// A milestone not yet reached.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenMilestone {
    pub id: String,
    pub name: String,
    pub project: String,
    pub project_name: String,
    pub deadline: NaiveDate,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub manager: Option<Accountable>,
}

/// Milestones still `planned` more than `milestone_grace` after their deadline.
pub fn milestones_overdue(
    milestones: &[OpenMilestone],
    settings: &HealthSettings,
    today: NaiveDate,
) -> Vec<RaisedFinding> {
    milestones
        .iter()
        .filter(|m| settings.milestone_grace.add_to(m.deadline, None) < today)
        .map(|m| {
            let late = (today - m.deadline).num_days();
            RaisedFinding {
                key: format!("{MILESTONE_OVERDUE}/{}", m.id),
                control: MILESTONE_OVERDUE.into(),
                severity: Severity::Warning,
                record: Some(RecordRef::new(Kind::Milestone, m.id.clone())),
                message: format!(
                    "Milestone {} of {} was due on {} and is {late} {} late",
                    m.name,
                    m.project_name,
                    m.deadline,
                    if late == 1 { "day" } else { "days" }
                ),
                evidence: json!({
                    "milestone": m.id,
                    "project": m.project,
                    "project_name": m.project_name,
                    "deadline": m.deadline,
                    "days_late": late,
                    "grace": settings.milestone_grace,
                    "amount": m.amount,
                    "currency": m.currency,
                    "accountable": accountable_json(m.manager.as_ref()),
                }),
            }
        })
        .collect()
}

/// A support ticket that is not resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenTicket {
    pub id: String,
    pub title: String,
    pub priority: Option<String>,
    pub sla_due_at: DateTime<Utc>,
    pub project_name: Option<String>,
    pub client_name: Option<String>,
    pub accountable: Option<Accountable>,
}

/// Open tickets past their SLA deadline. Tickets resolved late raise nothing: the breach is
/// over and stays on the ticket's record.
pub fn sla_breaches(tickets: &[OpenTicket], now: DateTime<Utc>) -> Vec<RaisedFinding> {
    tickets
        .iter()
        .filter(|t| t.sla_due_at < now)
        .map(|t| {
            let hours = round2(
                Decimal::from((now - t.sla_due_at).num_minutes()) / Decimal::from(60),
            );
            let whose = match (&t.client_name, &t.project_name) {
                (Some(client), _) => format!(" of {client}"),
                (None, Some(project)) => format!(" on {project}"),
                _ => String::new(),
            };
            RaisedFinding {
                key: format!("{SLA_BREACH}/{}", t.id),
                control: SLA_BREACH.into(),
                severity: Severity::Error,
                record: Some(RecordRef::new(Kind::Ticket, t.id.clone())),
                message: format!(
                    "Ticket {}{whose} missed its SLA at {} and is still open, {hours} h past the deadline",
                    t.title,
                    t.sla_due_at.format("%Y-%m-%d %H:%M UTC"),
                ),
                evidence: json!({
                    "ticket": t.id,
                    "priority": t.priority,
                    "sla_due_at": t.sla_due_at,
                    "hours_past": hours.to_string(),
                    "accountable": accountable_json(t.accountable.as_ref()),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn project(cost: Decimal, hours: Decimal, progress: Decimal) -> ProjectHealth {
        ProjectHealth {
            id: "p1".into(),
            name: "Audit 2026".into(),
            state: "active".into(),
            currency: Some("EUR".into()),
            budget: Some(dec!(10000)),
            budget_hours: Some(dec!(100)),
            hours,
            cost,
            hours_without_cost: Decimal::ZERO,
            progress: Some(Progress {
                percent: progress,
                basis: "done tasks".into(),
            }),
            manager: Some(Accountable::new(
                "pm",
                Some("Pat".into()),
                "project manager",
            )),
            account_leader: Some(Accountable::new("al", None, "account leader")),
        }
    }

    #[test]
    fn progress_prefers_planned_hours_then_tasks_then_milestones_then_time() {
        let task = |hours: Option<Decimal>, done: bool| TaskState {
            planned_hours: hours,
            done,
            cancelled: false,
        };
        let today = day("2026-12-10");
        let by_hours = progress(
            &[task(Some(dec!(30)), true), task(Some(dec!(10)), false)],
            (0, 0),
            (None, None),
            today,
        )
        .unwrap();
        assert_eq!(by_hours.percent, dec!(75));
        let by_count = progress(
            &[task(None, true), task(None, false)],
            (0, 0),
            (None, None),
            today,
        )
        .unwrap();
        assert_eq!(
            (by_count.percent, by_count.basis.as_str()),
            (dec!(50), "done tasks")
        );
        let by_milestones = progress(&[], (1, 4), (None, None), today).unwrap();
        assert_eq!(by_milestones.percent, dec!(25));
        let by_time = progress(
            &[],
            (0, 0),
            (Some(day("2026-12-01")), Some(day("2026-12-21"))),
            today,
        )
        .unwrap();
        assert_eq!(
            (by_time.percent, by_time.basis.as_str()),
            (dec!(45), "time elapsed")
        );
        assert!(progress(&[], (0, 0), (None, None), today).is_none());
    }

    #[test]
    fn burn_ahead_of_progress_is_found() {
        let settings = HealthSettings::default();
        let on_track = project(dec!(4000), dec!(40), dec!(40));
        assert!(budget_burn(&[on_track], &settings).is_empty());
        let ahead = project(dec!(6000), dec!(60), dec!(40));
        let findings = budget_burn(&[ahead], &settings);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(
            findings[0].message,
            "Audit 2026 has used 60 % of its budget (6000 of 10000 EUR) at 40 % progress by done tasks, 20 points ahead of the 15 allowed"
        );
        assert_eq!(findings[0].evidence["accountable"]["employee"], "pm");
        let overrun = project(dec!(10500), dec!(105), dec!(80));
        assert_eq!(
            budget_burn(&[overrun], &settings)[0].severity,
            Severity::Error
        );
    }

    #[test]
    fn burn_counts_hours_when_a_cost_rate_is_missing() {
        let mut partial = project(dec!(1000), dec!(70), dec!(40));
        partial.hours_without_cost = dec!(50);
        let findings = budget_burn(&[partial], &HealthSettings::default());
        assert_eq!(findings[0].evidence["burn_basis"], "hours");
        assert_eq!(findings[0].evidence["burn_percent"], "70");
    }

    #[test]
    fn margin_is_projected_from_progress() {
        let settings = HealthSettings::default();
        // 4,500 spent at half way projects 9,000 against 10,000: a 10 % margin.
        let thin = project(dec!(4500), dec!(45), dec!(50));
        let findings = margin_low(&[thin], &settings);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].evidence["margin_percent"], "10");
        assert_eq!(findings[0].evidence["accountable"]["employee"], "al");
        assert_eq!(findings[0].severity, Severity::Warning);
        let healthy = project(dec!(3000), dec!(30), dec!(50));
        assert!(margin_low(&[healthy], &settings).is_empty());
        // Under 10 % progress the cost so far is the projection.
        let early = project(dec!(500), dec!(5), dec!(2));
        assert!(margin_low(&[early], &settings).is_empty());
        let losing = project(dec!(8000), dec!(80), dec!(50));
        assert_eq!(
            margin_low(&[losing], &settings)[0].severity,
            Severity::Error
        );
    }

    #[test]
    fn milestones_and_tickets_past_their_deadline_are_found() {
        let settings = HealthSettings::default();
        let milestone = OpenMilestone {
            id: "m1".into(),
            name: "Fieldwork done".into(),
            project: "p1".into(),
            project_name: "Audit 2026".into(),
            deadline: day("2026-12-01"),
            amount: None,
            currency: None,
            manager: Some(Accountable::new("pm", None, "project manager")),
        };
        assert!(milestones_overdue(&[milestone.clone()], &settings, day("2026-12-01")).is_empty());
        let late = milestones_overdue(&[milestone], &settings, day("2026-12-04"));
        assert_eq!(
            late[0].message,
            "Milestone Fieldwork done of Audit 2026 was due on 2026-12-01 and is 3 days late"
        );

        let ticket = OpenTicket {
            id: "t1".into(),
            title: "VPN down".into(),
            priority: Some("urgent".into()),
            sla_due_at: "2026-12-04T08:00:00Z".parse().unwrap(),
            project_name: Some("Managed IT".into()),
            client_name: None,
            accountable: None,
        };
        let now: DateTime<Utc> = "2026-12-04T10:30:00Z".parse().unwrap();
        let breaches = sla_breaches(&[ticket.clone()], now);
        assert_eq!(breaches[0].evidence["hours_past"], "2.5");
        assert!(sla_breaches(&[ticket], "2026-12-04T07:00:00Z".parse().unwrap()).is_empty());
    }
}
