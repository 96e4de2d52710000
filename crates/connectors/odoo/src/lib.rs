//! The Odoo connector: a client for Odoo 17's JSON-RPC external API and a sync that mirrors
//! the firm's Odoo records into Steward.
//!
//! [`sync`] reads every model in [`models::MODELS`] with its explicit field list, 100 rows at a
//! time by ascending id, and from the second run on only the rows written at or after each
//! model's stored `write_date` cursor. It maps them to upsert commands and writes them through
//! [`steward_engine::Engine::execute_all`] as the integration actor `odoo`, so a record is
//! created once, updated only when it really changes, and every change is an event.
//!
//! ```no_run
//! # async fn run(engine: std::sync::Arc<steward_engine::Engine>) -> Result<(), steward_odoo::SyncError> {
//! let config = steward_odoo::OdooConfig {
//!     url: "http://127.0.0.1:8069".into(),
//!     db: "steward_demo".into(),
//!     login: "admin".into(),
//!     password: "admin".into(),
//! };
//! let report = steward_odoo::sync(&engine, &config, &steward_odoo::SyncOptions::default()).await?;
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! # Ok(()) }
//! ```

mod client;
mod config;
mod convert;
mod error;
mod fetch;
pub(crate) mod mapping;
pub mod models;
mod progress;
mod report;
mod sync;

pub use client::{OdooClient, Row};
pub use config::{OdooConfig, Timeouts};
pub use error::{CallContext, OdooError, map_rpc_error};
pub use mapping::partners::OWN_COMPANY;
pub use mapping::{CONTRACT_MODEL, SYSTEM, key};
pub use report::{ModelReport, RowFailure, SyncReport};
pub use sync::{SyncError, SyncOptions, sync, sync_with_client};
