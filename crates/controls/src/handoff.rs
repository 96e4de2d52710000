//! The handoff deadline: a deal won and signed must reach its project's kickoff within the
//! firm's window, counted from the instant it was won.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::health::Accountable;
use crate::settings::HandoffSettings;
use crate::{HANDOFF_NO_TEMPLATE, HANDOFF_OVERDUE};

/// The project a deal's handoff produced or adopted.
#[derive(Clone, Debug, PartialEq)]
pub struct HandedOffProject {
    pub id: String,
    pub name: String,
    pub state: String,
    pub kickoff_at: Option<DateTime<Utc>>,
}

impl HandedOffProject {
    /// Kicked off: a kickoff was stamped, or the project is running or over.
    pub fn kicked_off(&self) -> bool {
        self.kickoff_at.is_some() || matches!(self.state.as_str(), "active" | "on_hold" | "closed")
    }
}

/// A won and signed deal with its project, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct WonDeal {
    pub id: String,
    pub name: String,
    pub won_at: DateTime<Utc>,
    pub project: Option<HandedOffProject>,
    /// The delivery owner: the project's manager, else the contract's or the deal's owner.
    pub accountable: Option<Accountable>,
    /// The service line, `(none)` when unset, of a deal with no project that no project
    /// template covers, so its handoff created none.
    pub uncovered_service_line: Option<String>,
}

/// Deals won more than `kickoff_within` ago whose project has not kicked off, or that have
/// no project. Working days count Monday to Friday.
pub fn handoff_overdue(
    deals: &[WonDeal],
    settings: &HandoffSettings,
    today: NaiveDate,
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for deal in deals {
        if deal
            .project
            .as_ref()
            .is_some_and(HandedOffProject::kicked_off)
        {
            continue;
        }
        let won = deal.won_at.date_naive();
        let deadline = settings.kickoff_within.add_to(won, None);
        if deadline >= today {
            continue;
        }
        let waiting = match &deal.project {
            Some(project) => format!("project {} has not kicked off", project.name),
            None => "no project exists".to_string(),
        };
        findings.push(RaisedFinding {
            key: format!("{HANDOFF_OVERDUE}/{}", deal.id),
            control: HANDOFF_OVERDUE.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Opportunity, deal.id.clone())),
            message: format!(
                "Deal {} was won on {won} and {waiting}; kickoff was due by {deadline}, {} after winning",
                deal.name, settings.kickoff_within
            ),
            evidence: json!({
                "deal": deal.id,
                "deal_name": deal.name,
                "won_at": deal.won_at,
                "kickoff_due": deadline,
                "window": settings.kickoff_within,
                "project": deal.project.as_ref().map(|p| &p.id),
                "project_state": deal.project.as_ref().map(|p| &p.state),
                "accountable": deal.accountable,
            }),
        });
    }
    findings
}

/// Finds the deals with no project because no project template covers their service line.
/// They are raised at once, because waiting for the kickoff deadline changes nothing.
pub fn handoff_no_template(deals: &[WonDeal]) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for deal in deals.iter().filter(|deal| deal.project.is_none()) {
        let Some(service_line) = &deal.uncovered_service_line else {
            continue;
        };
        findings.push(RaisedFinding {
            key: format!("{HANDOFF_NO_TEMPLATE}/{}", deal.id),
            control: HANDOFF_NO_TEMPLATE.into(),
            severity: Severity::Warning,
            record: Some(RecordRef::new(Kind::Opportunity, deal.id.clone())),
            message: format!(
                "Deal {} has no project because no project template covers its service line \
                 `{service_line}`; add a template for it under `templates:` in the rules folder \
                 (or mark one `default: true`) and install the folder, which hands the deal off \
                 again, or create its project with `opportunity` set to the deal",
                deal.name
            ),
            evidence: json!({
                "deal": deal.id,
                "deal_name": deal.name,
                "won_at": deal.won_at,
                "service_line": service_line,
                "accountable": deal.accountable,
            }),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deal(project: Option<HandedOffProject>) -> WonDeal {
        WonDeal {
            id: "d1".into(),
            name: "Audit FY26".into(),
            won_at: "2026-11-20T15:00:00Z".parse().unwrap(),
            project,
            accountable: Some(Accountable::new("owner", None, "delivery owner")),
            uncovered_service_line: None,
        }
    }

    #[test]
    fn deal_without_template_is_raised_at_once() {
        let uncovered = WonDeal {
            uncovered_service_line: Some("(none)".into()),
            ..deal(None)
        };
        let findings = handoff_no_template(&[uncovered.clone(), deal(None)]);
        assert_eq!(findings.len(), 1, "only the uncovered deal: {findings:?}");
        let finding = &findings[0];
        assert_eq!(finding.key, "handoff_no_template/d1");
        assert!(
            finding.message.starts_with(
                "Deal Audit FY26 has no project because no project template covers its service line `(none)`"
            ),
            "{}",
            finding.message
        );
        assert_eq!(finding.evidence["service_line"], "(none)");

        let planned = HandedOffProject {
            id: "p1".into(),
            name: "Audit".into(),
            state: "planned".into(),
            kickoff_at: None,
        };
        let with_project = WonDeal {
            project: Some(planned),
            ..uncovered
        };
        assert!(handoff_no_template(&[with_project]).is_empty());
    }

    #[test]
    fn overdue_after_the_window_until_kickoff() {
        let settings = HandoffSettings::default();
        // Ten working days after Friday 20 November is Friday 4 December.
        let on_time = handoff_overdue(&[deal(None)], &settings, "2026-12-04".parse().unwrap());
        assert!(on_time.is_empty());
        let late = handoff_overdue(&[deal(None)], &settings, "2026-12-07".parse().unwrap());
        assert_eq!(
            late[0].message,
            "Deal Audit FY26 was won on 2026-11-20 and no project exists; kickoff was due by 2026-12-04, 10 working days after winning"
        );
        let planned = HandedOffProject {
            id: "p1".into(),
            name: "Audit".into(),
            state: "planned".into(),
            kickoff_at: None,
        };
        let waiting = handoff_overdue(
            &[deal(Some(planned.clone()))],
            &settings,
            "2026-12-07".parse().unwrap(),
        );
        assert_eq!(waiting.len(), 1);
        let kicked = HandedOffProject {
            kickoff_at: Some("2026-12-01T09:00:00Z".parse().unwrap()),
            ..planned
        };
        let done = handoff_overdue(
            &[deal(Some(kicked))],
            &settings,
            "2026-12-07".parse().unwrap(),
        );
        assert!(done.is_empty());
    }
}
