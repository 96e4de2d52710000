//! Rule versions: each distinct definition of a rule is stored once with a version number,
//! and the engine runs the newest version of every rule that is neither retired nor disabled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use steward_rules::{Rule, RuleSet, compile_rule_text};
use steward_store::{RuleVersion, StoreError};

use crate::Engine;
use crate::error::EngineError;

/// The effect of installing rules on one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleChange {
    pub rule_id: String,
    pub version: i64,
    /// `added`, `changed`, `unchanged` or `retired`.
    pub change: &'static str,
}

impl Engine {
    /// Installs the rules read from files: new or changed definitions get a new version, and
    /// rules that came from files but are no longer in them are retired.
    pub async fn install_file_rules(
        self: &Arc<Self>,
        rules: Vec<Rule>,
    ) -> Result<Vec<RuleChange>, EngineError> {
        let now = self.clock.now();
        let changes = steward_store::write(self.store.as_ref(), move |tx| {
            let versions = tx.rule_versions()?;
            let latest = latest_versions(&versions);
            let mut changes = Vec::new();
            let mut present = BTreeSet::new();
            for rule in &rules {
                present.insert(rule.id.clone());
                changes.push(store_version(tx, &latest, rule, now)?);
            }
            for (id, version) in &latest {
                if version.origin.starts_with("file:")
                    && version.retired_at.is_none()
                    && !present.contains(id)
                {
                    tx.retire_rule(id, now)?;
                    changes.push(RuleChange {
                        rule_id: id.clone(),
                        version: version.version,
                        change: "retired",
                    });
                }
            }
            Ok::<_, StoreError>(changes)
        })
        .await?;
        self.reload_rules().await?;
        Ok(changes)
    }

    /// Installs one rule sent through the API.
    pub async fn install_rule(self: &Arc<Self>, rule: Rule) -> Result<RuleChange, EngineError> {
        let now = self.clock.now();
        let change = steward_store::write(self.store.as_ref(), move |tx| {
            let versions = tx.rule_versions()?;
            store_version(tx, &latest_versions(&versions), &rule, now)
        })
        .await?;
        self.reload_rules().await?;
        Ok(change)
    }

    /// Retires a rule so that it no longer runs; its versions and runs stay for the record.
    pub async fn retire_rule(self: &Arc<Self>, rule_id: &str) -> Result<bool, EngineError> {
        let now = self.clock.now();
        let id = rule_id.to_string();
        let retired = steward_store::write(self.store.as_ref(), move |tx| {
            let versions = tx.rule_versions()?;
            let active = latest_versions(&versions)
                .get(&id)
                .is_some_and(|v| v.retired_at.is_none());
            if active {
                tx.retire_rule(&id, now)?;
            }
            Ok::<_, StoreError>(active)
        })
        .await?;
        self.reload_rules().await?;
        Ok(retired)
    }

    /// Compiles the newest active version of every rule from the store and makes it the set
    /// that new events are matched against.
    pub async fn reload_rules(self: &Arc<Self>) -> Result<usize, EngineError> {
        let versions =
            steward_store::read_async(Arc::clone(&self.store), |tx| tx.rule_versions()).await?;
        let mut rules = Vec::new();
        for version in latest_versions(&versions).into_values() {
            if version.retired_at.is_some() {
                continue;
            }
            let text = version.definition.to_string();
            let mut rule = compile_rule_text(&text, &version.origin).map_err(|diagnostics| {
                let messages: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
                EngineError::Rule(format!(
                    "stored version {} of rule {} no longer compiles: {}",
                    version.version,
                    version.rule_id,
                    messages.join("; ")
                ))
            })?;
            rule.version = version.version;
            rule.origin = version.origin.clone();
            rules.push(rule);
        }
        let set = RuleSet::new(rules);
        let count = set.len();
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        tracing::info!(rules = count, "rules loaded");
        Ok(count)
    }
}

fn latest_versions(versions: &[RuleVersion]) -> BTreeMap<String, RuleVersion> {
    let mut latest: BTreeMap<String, RuleVersion> = BTreeMap::new();
    for version in versions {
        let newer = latest
            .get(&version.rule_id)
            .is_none_or(|v| v.version < version.version);
        if newer {
            latest.insert(version.rule_id.clone(), version.clone());
        }
    }
    latest
}

fn store_version(
    tx: &mut dyn steward_store::WriteTx,
    latest: &BTreeMap<String, RuleVersion>,
    rule: &Rule,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RuleChange, StoreError> {
    let previous = latest.get(&rule.id);
    if let Some(previous) = previous.filter(|v| v.hash == rule.hash && v.retired_at.is_none()) {
        return Ok(RuleChange {
            rule_id: rule.id.clone(),
            version: previous.version,
            change: "unchanged",
        });
    }
    let version = previous.map_or(1, |v| v.version + 1);
    tx.insert_rule_version(&RuleVersion {
        rule_id: rule.id.clone(),
        version,
        hash: rule.hash.clone(),
        definition: rule.definition.clone(),
        origin: rule.origin.clone(),
        enabled: rule.enabled,
        created_at: now,
        retired_at: None,
    })?;
    let change = if previous.is_some() {
        "changed"
    } else {
        "added"
    };
    Ok(RuleChange {
        rule_id: rule.id.clone(),
        version,
        change,
    })
}
