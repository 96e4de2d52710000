//! Shared set-up of the Odoo connector tests: the captured Odoo session served by the replay
//! server on loopback, and an engine on a real SQLite file.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use steward_domain::{Kind, SystemClock};
use steward_engine::{Engine, EngineConfig};
use steward_odoo::{OdooConfig, SyncOptions};
use steward_odoo_replay::Replay;
use steward_store::Store;
use steward_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

/// Returns the folder of shared test data: `STEWARD_SHARED_DATA`, or the nearest `shared/data` above
/// this crate.
pub fn shared_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("STEWARD_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/data"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../../../../shared/data"))
}

pub fn capture_dir() -> PathBuf {
    shared_data().join("odoo17-jsonrpc")
}

/// Starts the replay server on 127.0.0.1 at a free port.
pub async fn start_replay() -> (Replay, String) {
    let replay = Replay::load(&capture_dir()).expect("the Odoo capture loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(replay.clone().serve(listener));
    (replay, url)
}

pub fn config(url: &str) -> OdooConfig {
    OdooConfig {
        url: url.to_string(),
        db: "steward_demo".into(),
        login: "admin".into(),
        password: "admin".into(),
    }
}

pub fn options() -> SyncOptions {
    SyncOptions {
        progress: false,
        ..SyncOptions::default()
    }
}

pub struct Harness {
    pub engine: Arc<Engine>,
    pub replay: Replay,
    pub config: OdooConfig,
    _dir: tempfile::TempDir,
}

pub async fn harness() -> Harness {
    let (replay, url) = start_replay().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("steward.db"), SqliteOptions::default()).unwrap();
    let engine = Engine::new(store, Arc::new(SystemClock), EngineConfig::default());
    Harness {
        engine,
        replay,
        config: config(&url),
        _dir: dir,
    }
}

impl Harness {
    pub fn store(&self) -> &dyn Store {
        self.engine.store().as_ref()
    }

    pub fn count(&self, kind: Kind) -> u64 {
        steward_store::read(self.store(), |tx| tx.count_records(kind, None)).unwrap()
    }

    pub fn events(&self) -> u64 {
        steward_store::read(self.store(), |tx| tx.count_events()).unwrap()
    }

    pub fn cursor(&self, model: &str) -> Option<String> {
        steward_store::read(self.store(), |tx| tx.sync_cursor("odoo", model)).unwrap()
    }

    /// Returns the Steward record mirrored from an Odoo record.
    pub fn mirrored(&self, model: &str, id: i64) -> Option<steward_domain::Record> {
        let key = steward_odoo::key(model, id);
        steward_store::read(self.store(), |tx| {
            let Some(link) = tx.external_link(&key)? else {
                return Ok(None);
            };
            tx.record(link.record.kind, &link.record.id)
        })
        .unwrap()
    }
}
