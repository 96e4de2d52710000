//! Storage of webhooks: outbound endpoints and their deliveries, inbound endpoints, their
//! receipts and rejections.

use crate::error::StoreError;

/// Webhook reads, reached through [`crate::ReadTx::webhooks`].
pub trait WebhookRead {
    /// Placeholder so the trait is not empty while the webhook storage is built.
    fn webhook_tables_ready(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Webhook writes, reached through [`crate::WriteTx::webhooks_mut`].
pub trait WebhookWrite: WebhookRead {}
