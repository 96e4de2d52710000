//! The Odoo server's address, login and timeouts.

use std::fmt;
use std::time::Duration;

/// The Odoo server and account to sync from.
#[derive(Clone, PartialEq, Eq)]
pub struct OdooConfig {
    /// Base address of the Odoo server, such as `https://odoo.example.com`; the client posts to
    /// `<url>/jsonrpc`.
    pub url: String,
    /// Name of the Odoo database.
    pub db: String,
    /// Login of the Odoo user, such as `admin` or an e-mail address.
    pub login: String,
    /// The user's password or one of the user's API keys.
    pub password: String,
}

impl fmt::Debug for OdooConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OdooConfig")
            .field("url", &self.url)
            .field("db", &self.db)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Timeouts of the HTTP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Maximum wait for the TCP and TLS connection.
    pub connect: Duration,
    /// Maximum wait for one whole request, from sending to the last byte of the response.
    pub request: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect and 120 s per request: a page of 100 rows takes well under a second on
    /// a healthy server, so the request limit only catches a server that hangs.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = OdooConfig {
            url: "http://127.0.0.1:8069".into(),
            db: "steward_demo".into(),
            login: "admin".into(),
            password: "s3cret-api-key".into(),
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("steward_demo"), "{printed}");
    }
}
