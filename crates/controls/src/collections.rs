//! Collections: for each unpaid customer invoice past its due date, the stage of the firm's
//! schedule that has come, and the `collections_overdue` finding.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, RecordRef, Severity};

use crate::COLLECTIONS_OVERDUE;
use crate::settings::{CollectionSettings, CollectionStep};

/// An unpaid customer invoice.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenInvoice {
    pub id: String,
    pub number: String,
    pub client: Option<String>,
    pub client_name: String,
    pub due: NaiveDate,
    /// Amount still to be paid.
    pub residual: Decimal,
    pub currency: String,
}

/// The stage an overdue invoice has reached.
#[derive(Clone, Debug, PartialEq)]
pub struct StageDue {
    pub invoice: OpenInvoice,
    /// Position of the stage in the schedule, from 1.
    pub stage: usize,
    pub step: CollectionStep,
    /// When the stage came: its day at the settings' local time.
    pub at: DateTime<Utc>,
    pub days_overdue: i64,
    /// Earlier stages whose time also passed; only the latest stage runs.
    pub passed_over: Vec<usize>,
}

impl StageDue {
    /// The key of the stage's step, which runs once per invoice and stage.
    pub fn key(&self) -> String {
        format!(
            "{COLLECTIONS_OVERDUE}/{}/stage-{}",
            self.invoice.id, self.stage
        )
    }
}

/// Finds the latest stage whose instant has come for each invoice. A stage's instant is its
/// day (the due date plus the stage's `after`) at `settings.at` in `tz`.
pub fn stages_due(
    settings: &CollectionSettings,
    tz: Tz,
    now: DateTime<Utc>,
    invoices: &[OpenInvoice],
) -> Vec<StageDue> {
    let at = NaiveTime::parse_from_str(&settings.at, "%H:%M").unwrap_or(NaiveTime::MIN);
    let today = now.with_timezone(&tz).date_naive();
    let mut due = Vec::new();
    for invoice in invoices.iter().filter(|i| i.residual > Decimal::ZERO) {
        let mut reached: Vec<(usize, CollectionStep, DateTime<Utc>)> = Vec::new();
        for (index, stage) in settings.schedule.iter().enumerate() {
            let day = stage.after.add_to(invoice.due, None);
            let instant = steward_rules::time::local_instant(tz, day.and_time(at));
            if instant <= now {
                reached.push((index + 1, stage.step, instant));
            }
        }
        let Some((stage, step, instant)) = reached.pop() else {
            continue;
        };
        due.push(StageDue {
            invoice: invoice.clone(),
            stage,
            step,
            at: instant,
            days_overdue: (today - invoice.due).num_days(),
            passed_over: reached.iter().map(|(s, ..)| *s).collect(),
        });
    }
    due
}

/// Raises a finding for each unpaid invoice past its due date, with the stage it reached.
pub fn collections_overdue(
    today: NaiveDate,
    invoices: &[OpenInvoice],
    stages: &[StageDue],
) -> Vec<RaisedFinding> {
    let mut findings = Vec::new();
    for invoice in invoices
        .iter()
        .filter(|i| i.residual > Decimal::ZERO && i.due < today)
    {
        let days = (today - invoice.due).num_days();
        let days_text = match days {
            1 => "1 day".to_string(),
            n => format!("{n} days"),
        };
        let stage = stages.iter().find(|s| s.invoice.id == invoice.id);
        let severity = match stage.map(|s| s.step) {
            Some(CollectionStep::Escalate) => Severity::Error,
            _ => Severity::Warning,
        };
        let reached = match stage {
            Some(s) => format!("; stage {} ({}) reached", s.stage, s.step.as_str()),
            None => String::new(),
        };
        findings.push(RaisedFinding {
            key: format!("{COLLECTIONS_OVERDUE}/{}", invoice.id),
            control: COLLECTIONS_OVERDUE.into(),
            severity,
            record: Some(RecordRef::new(Kind::Invoice, invoice.id.clone())),
            message: format!(
                "Invoice {} to {} has {} {} unpaid, {days_text} after its due date {}{reached}",
                invoice.number,
                invoice.client_name,
                invoice.residual.normalize(),
                invoice.currency,
                invoice.due
            ),
            evidence: json!({
                "invoice": invoice.id,
                "number": invoice.number,
                "client": invoice.client,
                "due_date": invoice.due,
                "days_overdue": days,
                "residual": invoice.residual.normalize().to_string(),
                "currency": invoice.currency,
                "stage": stage.map(|s| s.stage),
                "step": stage.map(|s| s.step.as_str()),
            }),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(due: &str, residual: i64) -> OpenInvoice {
        OpenInvoice {
            id: "inv".into(),
            number: "INV/1".into(),
            client: None,
            client_name: "Acme".into(),
            due: due.parse().unwrap(),
            residual: Decimal::from(residual),
            currency: "EUR".into(),
        }
    }

    #[test]
    fn only_the_latest_stage_runs() {
        let settings = CollectionSettings::default();
        let tz: Tz = "Europe/Brussels".parse().unwrap();
        let now: DateTime<Utc> = "2026-12-20T09:00:00Z".parse().unwrap();
        let due = stages_due(&settings, tz, now, &[invoice("2026-12-01", 100)]);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].stage, 2);
        assert_eq!(due[0].passed_over, vec![1]);
        assert_eq!(due[0].days_overdue, 19);
        let paid = stages_due(&settings, tz, now, &[invoice("2026-12-01", 0)]);
        assert!(paid.is_empty());
    }

    #[test]
    fn a_stage_waits_for_its_local_time() {
        let settings = CollectionSettings::default();
        let tz: Tz = "Europe/Brussels".parse().unwrap();
        let early: DateTime<Utc> = "2026-12-02T07:59:00Z".parse().unwrap();
        assert!(stages_due(&settings, tz, early, &[invoice("2026-12-01", 5)]).is_empty());
        let on_time: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
        assert_eq!(
            stages_due(&settings, tz, on_time, &[invoice("2026-12-01", 5)]).len(),
            1
        );
    }
}
