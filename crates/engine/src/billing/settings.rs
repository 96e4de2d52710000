//! The firm's billing settings as stored in the database, one version per change.

use chrono::{DateTime, Utc};
use steward_billing::BillingSettings;
use steward_domain::DomainError;
use steward_store::{BillingSettingsVersion, ReadTx, WriteTx};

use crate::EngineError;

/// Reads the newest stored settings, or the defaults (no tax table, per-line rounding) when
/// none were installed.
pub fn stored_settings(tx: &dyn ReadTx) -> Result<BillingSettings, EngineError> {
    let Some(version) = tx.billing_settings()? else {
        return Ok(BillingSettings::default());
    };
    BillingSettings::from_json(&version.definition, version.origin.clone()).map_err(|error| {
        DomainError::Invalid(format!(
            "stored billing settings version {} cannot be read: {error}; install the \
             rules folder's `billing` section again",
            version.version
        ))
        .into()
    })
}

/// Stores `settings` as a new version unless the newest version is the same. Returns the
/// version in force afterwards.
pub fn install_settings(
    tx: &mut dyn WriteTx,
    settings: &BillingSettings,
    now: DateTime<Utc>,
) -> Result<i64, EngineError> {
    let hash = settings.hash();
    let current = tx.billing_settings()?;
    if let Some(current) = &current
        && current.hash == hash
    {
        return Ok(current.version);
    }
    let version = current.map_or(1, |c| c.version + 1);
    tx.insert_billing_settings(&BillingSettingsVersion {
        version,
        hash,
        definition: settings.to_json(),
        origin: settings.origin.clone(),
        created_at: now,
    })?;
    Ok(version)
}
