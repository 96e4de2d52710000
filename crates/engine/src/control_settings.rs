//! The firm's control settings and project templates in force: installed as a new version
//! when the rules folder changes them, and loaded by every process on the database.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use steward_controls::FirmSettings;
use steward_store::ControlSettingsVersion;

use crate::Engine;
use crate::error::EngineError;
use crate::pipeline::Env;

/// The effect of installing control settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingsChange {
    pub version: i64,
    /// `added`, `changed` or `unchanged`.
    pub change: &'static str,
}

fn hex_hash(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

impl Engine {
    /// Returns the control settings and project templates in force.
    pub fn firm_settings(&self) -> Arc<FirmSettings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set_firm_settings(&self, settings: FirmSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }

    /// Stores `settings` as a new version when they differ from the newest stored one, and
    /// puts them in force.
    pub async fn install_control_settings(
        self: &Arc<Self>,
        settings: FirmSettings,
        origin: Option<String>,
    ) -> Result<SettingsChange, EngineError> {
        let definition = serde_json::to_value(&settings).map_err(|e| {
            EngineError::Rule(format!("the control settings do not serialize: {e}"))
        })?;
        let hash = hex_hash(&definition);
        let now = self.clock.now();
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let installed = Arc::new(settings);
        let in_write = Arc::clone(&installed);
        // The settings are in force before the write commits, so that a worker that claims a
        // handoff queued by the write hands the deal off with the new templates.
        let previous = self.firm_settings();
        self.set_firm_settings((*installed).clone());
        let written = steward_store::write(self.store.as_ref(), move |tx| {
            let latest = tx.control_settings()?;
            if let Some(latest) = &latest
                && latest.hash == hash
            {
                return Ok::<_, EngineError>((
                    SettingsChange {
                        version: latest.version,
                        change: "unchanged",
                    },
                    0,
                ));
            }
            let version = latest.as_ref().map_or(1, |v| v.version + 1);
            tx.insert_control_settings(&ControlSettingsVersion {
                version,
                hash: hash.clone(),
                definition: definition.clone(),
                origin: origin.clone(),
                created_at: now,
            })?;
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            let queued = crate::handoff::queue_newly_covered(tx, &env, &in_write, version)?;
            let change = SettingsChange {
                version,
                change: if latest.is_some() { "changed" } else { "added" },
            };
            Ok((change, queued))
        })
        .await;
        let (change, queued) = match written {
            Ok(written) => written,
            Err(error) => {
                self.set_firm_settings((*previous).clone());
                return Err(error);
            }
        };
        if queued > 0 {
            tracing::info!(
                version = change.version,
                deals = queued,
                "handoff queued again for deals that a new template covers"
            );
        }
        Ok(change)
    }

    /// Loads the newest stored control settings; the defaults when none were installed.
    pub async fn reload_control_settings(self: &Arc<Self>) -> Result<i64, EngineError> {
        let stored =
            steward_store::read_async(Arc::clone(&self.store), |tx| tx.control_settings()).await?;
        let Some(stored) = stored else {
            self.set_firm_settings(FirmSettings::default());
            return Ok(0);
        };
        match serde_json::from_value::<FirmSettings>(stored.definition) {
            Ok(settings) => {
                tracing::info!(
                    version = stored.version,
                    templates = settings.templates.len(),
                    "control settings loaded"
                );
                self.set_firm_settings(settings);
                Ok(stored.version)
            }
            Err(error) => Err(EngineError::Rule(format!(
                "stored control settings version {} cannot be read ({error}); install the rules folder again with `steward serve --rules DIR`",
                stored.version
            ))),
        }
    }
}
