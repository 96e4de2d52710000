//! Outbound and inbound webhooks, and the HTTP client of `http` rule actions.
