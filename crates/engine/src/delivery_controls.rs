//! The delivery controls: handoff deadlines, staffing, and margin and account health. They
//! run after the starter controls, in a transaction of their own, and every finding they
//! open alerts its accountable person with an in-app notification.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use steward_domain::finding::{Finding, RaisedFinding};
use steward_domain::{Actor, Command, CommandContext, Kind};
use steward_store::{StoreError, WriteTx};

use crate::Engine;
use crate::controls::ControlsReport;
use crate::error::EngineError;
use crate::metric_names;
use crate::pipeline::{Env, apply};

/// The system actor of the delivery controls' writes.
const ACTOR: &str = "controls";

impl Engine {
    /// Runs the delivery controls and adds their counts to `report`.
    pub(crate) async fn run_delivery_controls(
        self: &Arc<Self>,
        report: &mut ControlsReport,
    ) -> Result<(), EngineError> {
        let settings = self.firm_settings();
        let now = self.clock.now();
        let results = steward_store::read_async(Arc::clone(&self.store), move |tx| {
            let today = now.date_naive();
            let mut results = crate::handoff::check_overdue(tx, &settings, today)?;
            results.extend(crate::staffing::check(tx, &settings.controls, today)?);
            results.extend(crate::health::check(tx, &settings.controls, now)?);
            Ok::<_, StoreError>(results)
        })
        .await?;
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let added = steward_store::write(self.store.as_ref(), move |tx| {
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let mut added = ControlsReport::default();
            for (control, findings) in &results {
                store_findings(tx, &env, control, findings, &mut added)?;
            }
            Ok::<_, EngineError>(added)
        })
        .await?;
        report.opened += added.opened;
        report.resolved += added.resolved;
        report.open.extend(added.open);
        Ok(())
    }
}

/// Raises `findings` of one control, resolves its others, and alerts the accountable person
/// of each finding that opened.
fn store_findings(
    tx: &mut dyn WriteTx,
    env: &Env,
    control: &str,
    findings: &[RaisedFinding],
    report: &mut ControlsReport,
) -> Result<(), EngineError> {
    let keys: Vec<String> = findings.iter().map(|f| f.key.clone()).collect();
    for finding in findings {
        let (stored, opened) = tx.raise_finding(finding, env.now)?;
        if !opened {
            continue;
        }
        report.opened += 1;
        metrics::counter!(metric_names::FINDINGS_OPENED,
            "control" => stored.control.clone(), "severity" => stored.severity.as_str())
        .increment(1);
        let data = json!({
            "finding": stored.id,
            "control": stored.control,
            "severity": stored.severity,
            "message": stored.message,
            "accountable": stored.evidence.get("accountable"),
        });
        let command = Command::Emit {
            name: "finding.opened".into(),
            record: stored.record.clone(),
            data,
        };
        apply(tx, env, command, CommandContext::new(Actor::system(ACTOR)))?;
        alert_accountable(tx, env, &stored)?;
    }
    report.resolved += tx.resolve_findings(control, &keys, env.now)?;
    report.open.insert(control.to_string(), findings.len());
    Ok(())
}

/// Sends an in-app notification about `finding` to the employee its evidence names as
/// accountable, when that employee exists.
fn alert_accountable(
    tx: &mut dyn WriteTx,
    env: &Env,
    finding: &Finding,
) -> Result<(), EngineError> {
    let Some(employee) = finding
        .evidence
        .pointer("/accountable/employee")
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    if !tx.record_exists(Kind::Employee, employee)? {
        tracing::warn!(finding = %finding.id, %employee, "the accountable person of a finding is not an employee; nobody was notified");
        return Ok(());
    }
    let mut fields = Map::new();
    fields.insert("message".into(), json!(finding.message));
    fields.insert("recipient".into(), json!(employee));
    fields.insert("channel".into(), json!("in_app"));
    if let Some(record) = &finding.record {
        fields.insert("subject_kind".into(), json!(record.kind.name()));
        fields.insert("subject_id".into(), json!(record.id));
    }
    let mut attributes = Map::new();
    attributes.insert("finding".into(), json!(finding.id));
    attributes.insert("control".into(), json!(finding.control));
    attributes.insert("severity".into(), json!(finding.severity));
    apply(
        tx,
        env,
        Command::Create {
            kind: Kind::Notification,
            id: None,
            state: None,
            fields,
            attributes,
        },
        CommandContext::new(Actor::system(ACTOR)),
    )?;
    Ok(())
}
