//! The schedules that run the controls at the firm's timesheet cut-offs and at the daily
//! time of collection steps. They are built-in rules made from the control settings, so the
//! scheduler runs them durably: an occurrence missed while the server was down runs once at
//! the next start, and each occurrence runs once even with several processes.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveTime;
use chrono::Timelike;
use steward_controls::settings::FirmSettings;
use steward_controls::{COLLECTIONS_OVERDUE, TIMESHEET_INCOMPLETE};

use crate::error::EngineError;
use crate::{Engine, RuleChange};

/// The origin of the built-in control schedules among the installed rules.
pub const ORIGIN: &str = "builtin:controls";

fn schedule_rule(id: &str, name: &str, cron: &str, timezone: &str, control: &str) -> String {
    format!(
        "  - id: {id}\n    name: \"{name}\"\n    trigger: {{ on: schedule, cron: \"{cron}\", timezone: \"{timezone}\", catch_up: once, overlap: skip }}\n    actions:\n      - control: {{ name: {control} }}\n"
    )
}

/// Writes the schedule rules of `settings` as a rule file: one per cut-off reminder and
/// escalation, and one daily run of the collection stages.
pub fn schedule_rules(settings: &FirmSettings) -> String {
    let controls = &settings.controls;
    let mut text = String::from("rules:\n");
    if controls.is_on(TIMESHEET_INCOMPLETE) {
        let zone = &controls.timesheets.timezone;
        for cutoff in &controls.timesheets.cutoffs {
            if let Some(remind) = &cutoff.remind {
                text.push_str(&schedule_rule(
                    &format!("timesheet-cutoff-{}-remind", cutoff.name.replace('_', "-")),
                    &format!(
                        "Remind people of incomplete time before the {} cut-off",
                        cutoff.name
                    ),
                    remind,
                    zone,
                    TIMESHEET_INCOMPLETE,
                ));
            }
            text.push_str(&schedule_rule(
                &format!(
                    "timesheet-cutoff-{}-escalate",
                    cutoff.name.replace('_', "-")
                ),
                &format!("Escalate incomplete time at the {} cut-off", cutoff.name),
                &cutoff.escalate,
                zone,
                TIMESHEET_INCOMPLETE,
            ));
        }
    }
    if controls.is_on(COLLECTIONS_OVERDUE) {
        let at =
            NaiveTime::parse_from_str(&controls.collections.at, "%H:%M").unwrap_or(NaiveTime::MIN);
        text.push_str(&schedule_rule(
            "collections-daily",
            "Run the collection stages of unpaid invoices",
            &format!("{} {} * * *", at.minute(), at.hour()),
            &controls.collections.timezone,
            COLLECTIONS_OVERDUE,
        ));
    }
    text
}

impl Engine {
    /// Installs the schedule rules of the newest installed control settings and retires those
    /// the settings no longer ask for.
    pub async fn install_control_schedules(
        self: &Arc<Self>,
    ) -> Result<Vec<RuleChange>, EngineError> {
        let (settings, _) =
            steward_store::read_async(Arc::clone(&self.store), crate::steps::stored_settings)
                .await?;
        let text = schedule_rules(&settings);
        let none_wanted = text.trim_end() == "rules:";
        let compiled = if none_wanted {
            Ok(Vec::new())
        } else {
            steward_rules::compile_api_text(&text, ORIGIN)
        };
        let rules = compiled.map_err(|diagnostics| {
            EngineError::Rule(format!(
                "the control schedules do not compile: {}",
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        let wanted: BTreeSet<String> = rules.iter().map(|r| r.id.clone()).collect();
        let mut changes = Vec::new();
        for rule in rules {
            changes.push(self.install_rule(rule).await?);
        }
        let installed =
            steward_store::read_async(Arc::clone(&self.store), |tx| tx.rule_versions()).await?;
        let stale: BTreeSet<String> = installed
            .iter()
            .filter(|v| v.origin == ORIGIN && !wanted.contains(&v.rule_id))
            .map(|v| v.rule_id.clone())
            .collect();
        for id in stale {
            if self.retire_rule(&id).await? {
                changes.push(RuleChange {
                    rule_id: id,
                    version: 0,
                    change: "retired",
                });
            }
        }
        Ok(changes)
    }
}
