//! Deciding a step: who may, and what the decision changes. The first decision wins; a later
//! one is a conflict and changes nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::route::{Assignment, Person, RequestInfo, Router};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "approve" | "approved" => Some(Verdict::Approve),
            "reject" | "rejected" => Some(Verdict::Reject),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// One person's decision on a step, as kept on the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    pub verdict: Verdict,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The approver the decider stood in for while they were away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// A step, with the data a decision needs.
#[derive(Clone, Debug)]
pub struct StepView {
    pub id: String,
    pub stage: u32,
    pub state: String,
    pub assignment: Assignment,
    pub approvals_needed: u32,
    pub decisions: Vec<Decision>,
}

impl StepView {
    /// True for steps that still count towards their stage.
    fn counts(&self) -> bool {
        !matches!(self.state.as_str(), "escalated" | "skipped")
    }
}

/// The reason a decision was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request or step is already decided; the decision changes nothing.
    Conflict(String),
    /// The person may not decide this step.
    Forbidden(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Conflict(m) | Refusal::Forbidden(m) => f.write_str(m),
        }
    }
}

/// The step a decider may decide, and whom they stand in for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permitted {
    pub step: usize,
    pub on_behalf_of: Option<String>,
}

/// Checks that `decider` may decide a pending step of the request: the one named by `requested_step`,
/// or the one waiting for them.
pub fn check(
    router: &Router,
    request: &RequestInfo,
    request_state: &str,
    steps: &[StepView],
    requested_step: Option<&str>,
    decider: &Person,
) -> Result<Permitted, Refusal> {
    if request_state != "pending" {
        let last = steps
            .iter()
            .flat_map(|s| s.decisions.iter())
            .max_by_key(|d| d.at);
        let by = last
            .map(|d| format!(" by {} at {}", name_of(router, &d.by), d.at.to_rfc3339()))
            .unwrap_or_default();
        return Err(Refusal::Conflict(format!(
            "the request is already {request_state}{by}; a later decision changes nothing"
        )));
    }
    if request.requester.as_deref() == Some(decider.id.as_str()) {
        return Err(Refusal::Forbidden(format!(
            "{} made this request, and nobody approves their own request",
            decider.name
        )));
    }
    let decided_elsewhere = |index: usize| {
        steps.iter().enumerate().any(|(i, s)| {
            i != index && s.counts() && s.decisions.iter().any(|d| d.by == decider.id)
        })
    };
    let candidates: Vec<usize> = match requested_step {
        Some(id) => {
            let Some(index) = steps.iter().position(|s| s.id == id) else {
                return Err(Refusal::Forbidden(format!(
                    "the request has no step {id}; list its steps to find the one to decide"
                )));
            };
            vec![index]
        }
        None => (0..steps.len())
            .filter(|&i| steps[i].state == "pending")
            .collect(),
    };
    let mut reasons = Vec::new();
    for index in candidates {
        let step = &steps[index];
        if step.state != "pending" {
            let by = step
                .decisions
                .last()
                .map(|d| format!(" by {}", name_of(router, &d.by)))
                .unwrap_or_default();
            let state = match step.state.as_str() {
                "waiting" => "not open yet; it waits for the steps before it".to_string(),
                other => format!("already {other}{by}"),
            };
            return Err(if step.state == "waiting" {
                Refusal::Forbidden(format!("step {} is {state}", step.id))
            } else {
                Refusal::Conflict(format!("step {} is {state}", step.id))
            });
        }
        if step.decisions.iter().any(|d| d.by == decider.id) {
            return Err(Refusal::Conflict(format!(
                "{} already decided step {}; a second decision changes nothing",
                decider.name, step.id
            )));
        }
        if decided_elsewhere(index) {
            reasons.push(format!(
                "{} already decided another step of this request, and nobody decides two steps of one request",
                decider.name
            ));
            continue;
        }
        match may_decide(router, request, steps, step, decider) {
            Ok(on_behalf_of) => {
                return Ok(Permitted {
                    step: index,
                    on_behalf_of,
                });
            }
            Err(why) => reasons.push(why),
        }
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "no step of this request waits for {}",
            decider.name
        ));
    }
    Err(Refusal::Forbidden(reasons.join("; ")))
}

/// Checks whether `decider` may decide `step` now: as its approver, as the delegate of an approver
/// who is away, or as an eligible member of its role.
fn may_decide(
    router: &Router,
    request: &RequestInfo,
    steps: &[StepView],
    step: &StepView,
    decider: &Person,
) -> Result<Option<String>, String> {
    let others: BTreeSet<String> = steps
        .iter()
        .filter(|s| s.id != step.id && s.counts())
        .flat_map(|s| s.decisions.iter().map(|d| d.by.clone()))
        .collect();
    let role = step.assignment.rule.strip_prefix("role:");
    let acting = role.or(Some("manager"));
    if let Some(approver) = &step.assignment.approver {
        if *approver == decider.id {
            router.eligible(decider, acting, request, &others)?;
            return Ok(None);
        }
        let Some(person) = router.directory.person(approver) else {
            return Err(format!(
                "step {} waits for {approver}, not for {}",
                step.id, decider.name
            ));
        };
        if person.delegate.as_deref() == Some(decider.id.as_str()) && person.is_away(router.today) {
            router.eligible(decider, acting, request, &others)?;
            return Ok(Some(person.id));
        }
        return Err(format!(
            "step {} waits for {}; {} is neither them nor their delegate while they are away",
            step.id, person.name, decider.name
        ));
    }
    let Some(role) = role else {
        return Err(format!("step {} has nobody who may decide it", step.id));
    };
    if !router.members(role).iter().any(|m| m.id == decider.id) {
        return Err(format!(
            "step {} needs a member of role `{role}`, and {} is not one",
            step.id, decider.name
        ));
    }
    router.eligible(decider, Some(role), request, &others)?;
    Ok(None)
}

fn name_of(router: &Router, id: &str) -> String {
    router
        .directory
        .person(id)
        .map(|p| p.name)
        .unwrap_or_else(|| id.to_string())
}

/// The changes a decision makes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The decided step's new state, when the decision completes it.
    pub step_state: Option<&'static str>,
    /// Steps that open now, by index.
    pub open: Vec<usize>,
    /// Steps no longer needed, by index.
    pub skip: Vec<usize>,
    /// The request's new state, when the decision completes it.
    pub request_state: Option<&'static str>,
}

/// Works out what follows when `decision` is added to step `index`.
pub fn progress(steps: &[StepView], index: usize, verdict: Verdict) -> Progress {
    let mut result = Progress::default();
    if verdict == Verdict::Reject {
        result.step_state = Some("rejected");
        result.request_state = Some("rejected");
        result.skip = (0..steps.len())
            .filter(|&i| i != index && matches!(steps[i].state.as_str(), "waiting" | "pending"))
            .collect();
        return result;
    }
    let step = &steps[index];
    let approvals = step
        .decisions
        .iter()
        .filter(|d| d.verdict == Verdict::Approve)
        .count() as u32
        + 1;
    if approvals < step.approvals_needed {
        return result;
    }
    result.step_state = Some("approved");
    let stage_done = steps
        .iter()
        .enumerate()
        .all(|(i, s)| i == index || !s.counts() || s.stage != step.stage || s.state == "approved");
    if !stage_done {
        return result;
    }
    let next_stage = steps
        .iter()
        .filter(|s| s.state == "waiting" && s.stage > step.stage)
        .map(|s| s.stage)
        .min();
    match next_stage {
        Some(stage) => {
            result.open = (0..steps.len())
                .filter(|&i| steps[i].state == "waiting" && steps[i].stage == stage)
                .collect();
        }
        None => result.request_state = Some("approved"),
    }
    result
}
