//! Metric names of webhooks, each with its unit in the name and its labels.

/// Counter, labels `endpoint`, `outcome` (`succeeded`, `retrying`, `dead`, `skipped`):
/// outbound delivery attempts by how they ended.
pub const DELIVERIES: &str = "steward_webhook_deliveries_total";
/// Histogram in seconds, label `endpoint`: duration of outbound attempts.
pub const DELIVERY_DURATION: &str = "steward_webhook_delivery_duration_seconds";
/// Counter, labels `endpoint`, `outcome` (`accepted`, `repeated`): inbound deliveries
/// that got a 2xx response.
pub const RECEIPTS: &str = "steward_webhook_receipts_total";
/// Counter, labels `endpoint`, `reason`: inbound deliveries rejected. Deliveries to an
/// unknown endpoint count under `endpoint="unknown"`, so senders cannot add label values.
pub const REJECTIONS: &str = "steward_webhook_rejections_total";
