//! Helpers shared by the tests that run the `steward` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "stw_cli_test_admin_token_0123456789";

/// The folder of real inputs: `STEWARD_SHARED_DATA`, or the nearest `shared/data` above the
/// crate.
pub fn shared_data() -> PathBuf {
    if let Ok(dir) = std::env::var("STEWARD_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/data");
        if candidate.is_dir() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "no shared/data folder above the crate; set STEWARD_SHARED_DATA"
        );
    }
}

/// Runs the binary to completion and returns its exit code, stdout and stderr.
pub fn steward(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("STEWARD_LOG", "warn")
        .env("STEWARD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `steward serve` on `dir/firm.db` and waits until it answers.
    pub async fn start(dir: &Path, extra: &[&str]) -> Server {
        // The workspace builds reqwest without a default TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--database")
            .arg(dir.join("firm.db"))
            .args(extra)
            .env("STEWARD_ADMIN_TOKEN", TOKEN)
            .env("STEWARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(response) = server
                .client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                && response.status().is_success()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Reads every page of a list such as `timesheets` or `findings?state=open`.
pub async fn all(server: &Server, list: &str) -> Vec<Value> {
    let separator = if list.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/{list}{separator}limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = server.get(&path).await;
        items.extend(
            page["items"]
                .as_array()
                .unwrap_or_else(|| panic!("{page}"))
                .iter()
                .cloned(),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}
