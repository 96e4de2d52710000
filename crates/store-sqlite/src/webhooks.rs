//! The webhook tables on SQLite.

use steward_store::webhooks::{WebhookRead, WebhookWrite};

use crate::conn::Conn;

impl WebhookRead for Conn<'_> {}

impl WebhookWrite for Conn<'_> {}
