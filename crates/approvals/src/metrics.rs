//! Backlog and turnaround of approvals, per policy, step and approver.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// One step as the metrics see it.
#[derive(Clone, Debug)]
pub struct StepFact {
    pub policy: String,
    pub step: String,
    /// Who decided, or for an open step who it waits for (`role:finance` for a role).
    pub approver: String,
    pub state: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// One request as the metrics see it.
#[derive(Clone, Debug)]
pub struct RequestFact {
    pub policy: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Open requests by how long they have waited.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Backlog {
    pub open: u64,
    pub under_1_day: u64,
    pub from_1_to_3_days: u64,
    pub from_3_to_7_days: u64,
    pub over_7_days: u64,
    /// Age of the oldest open item, in hours.
    pub oldest_hours: Option<Decimal>,
}

impl Backlog {
    fn add(&mut self, age_hours: Decimal) {
        self.open += 1;
        let days = age_hours / Decimal::from(24);
        if days < Decimal::ONE {
            self.under_1_day += 1;
        } else if days < Decimal::from(3) {
            self.from_1_to_3_days += 1;
        } else if days < Decimal::from(7) {
            self.from_3_to_7_days += 1;
        } else {
            self.over_7_days += 1;
        }
        self.oldest_hours = Some(self.oldest_hours.map_or(age_hours, |o| o.max(age_hours)));
    }
}

/// Time from opening to decision, in hours.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Turnaround {
    pub decided: u64,
    pub median_hours: Option<Decimal>,
    pub p90_hours: Option<Decimal>,
}

fn turnaround(mut hours: Vec<Decimal>) -> Turnaround {
    hours.sort();
    Turnaround {
        decided: hours.len() as u64,
        median_hours: percentile(&hours, 50),
        p90_hours: percentile(&hours, 90),
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Decimal], p: u32) -> Option<Decimal> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Group {
    pub backlog: Backlog,
    pub turnaround: Turnaround,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub requests: Group,
    pub by_policy: BTreeMap<String, Group>,
    /// Keyed by `policy / step`.
    pub by_step: BTreeMap<String, Group>,
    pub by_approver: BTreeMap<String, Group>,
}

fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Decimal {
    let seconds = (to - from).num_seconds().max(0);
    (Decimal::from(seconds) / Decimal::from(3600)).round_dp(2)
}

/// Computes backlog at `now` and turnaround of decided items. Requests count per policy;
/// steps count per step and per approver.
pub fn compute(requests: &[RequestFact], steps: &[StepFact], now: DateTime<Utc>) -> Metrics {
    let mut metrics = Metrics::default();
    let mut request_hours: Vec<Decimal> = Vec::new();
    let mut policy_hours: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for request in requests {
        let group = metrics.by_policy.entry(request.policy.clone()).or_default();
        match (request.state.as_str(), request.decided_at) {
            ("pending", _) => {
                let age = hours_between(request.created_at, now);
                metrics.requests.backlog.add(age);
                group.backlog.add(age);
            }
            ("approved" | "rejected", Some(decided)) => {
                let hours = hours_between(request.created_at, decided);
                request_hours.push(hours);
                policy_hours
                    .entry(request.policy.clone())
                    .or_default()
                    .push(hours);
            }
            _ => {}
        }
    }
    metrics.requests.turnaround = turnaround(request_hours);
    for (policy, hours) in policy_hours {
        metrics.by_policy.entry(policy).or_default().turnaround = turnaround(hours);
    }
    let mut step_hours: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    let mut approver_hours: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for step in steps {
        let key = format!("{} / {}", step.policy, step.step);
        let Some(opened) = step.opened_at else {
            continue;
        };
        match (step.state.as_str(), step.decided_at) {
            ("pending", _) => {
                let age = hours_between(opened, now);
                metrics.by_step.entry(key).or_default().backlog.add(age);
                metrics
                    .by_approver
                    .entry(step.approver.clone())
                    .or_default()
                    .backlog
                    .add(age);
            }
            ("approved" | "rejected", Some(decided)) => {
                let hours = hours_between(opened, decided);
                step_hours.entry(key).or_default().push(hours);
                approver_hours
                    .entry(step.approver.clone())
                    .or_default()
                    .push(hours);
            }
            _ => {}
        }
    }
    for (key, hours) in step_hours {
        metrics.by_step.entry(key).or_default().turnaround = turnaround(hours);
    }
    for (key, hours) in approver_hours {
        metrics.by_approver.entry(key).or_default().turnaround = turnaround(hours);
    }
    metrics
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Decimal> = (1..=10).map(Decimal::from).collect();
        assert_eq!(percentile(&values, 50), Some(dec!(5)));
        assert_eq!(percentile(&values, 90), Some(dec!(9)));
        assert_eq!(percentile(&values[..1], 90), Some(dec!(1)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn backlog_ages_and_turnaround_by_policy_step_and_approver() {
        let requests = vec![
            RequestFact {
                policy: "expenses".into(),
                state: "pending".into(),
                created_at: at(1, 8),
                decided_at: None,
            },
            RequestFact {
                policy: "expenses".into(),
                state: "approved".into(),
                created_at: at(1, 8),
                decided_at: Some(at(1, 20)),
            },
            RequestFact {
                policy: "expenses".into(),
                state: "rejected".into(),
                created_at: at(2, 8),
                decided_at: Some(at(4, 8)),
            },
        ];
        let steps = vec![
            StepFact {
                policy: "expenses".into(),
                step: "manager".into(),
                approver: "ann".into(),
                state: "approved".into(),
                opened_at: Some(at(1, 8)),
                decided_at: Some(at(1, 20)),
            },
            StepFact {
                policy: "expenses".into(),
                step: "manager".into(),
                approver: "ann".into(),
                state: "pending".into(),
                opened_at: Some(at(1, 8)),
                decided_at: None,
            },
        ];
        let metrics = compute(&requests, &steps, at(9, 8));
        assert_eq!(metrics.requests.backlog.open, 1);
        assert_eq!(metrics.requests.backlog.over_7_days, 1);
        assert_eq!(metrics.requests.backlog.oldest_hours, Some(dec!(192)));
        assert_eq!(metrics.requests.turnaround.decided, 2);
        assert_eq!(metrics.requests.turnaround.median_hours, Some(dec!(12)));
        assert_eq!(metrics.requests.turnaround.p90_hours, Some(dec!(48)));
        let step = &metrics.by_step["expenses / manager"];
        assert_eq!(step.backlog.open, 1);
        assert_eq!(step.turnaround.median_hours, Some(dec!(12)));
        assert_eq!(metrics.by_approver["ann"].turnaround.decided, 1);
    }
}
