//! The embedded SQLite store.
//!
//! One writer thread owns the only write connection. Writes queue on a channel; the writer
//! takes every queued write (up to [`SqliteOptions::max_batch`]), runs each inside its own
//! savepoint of one `BEGIN IMMEDIATE` transaction, commits once, and only then answers each
//! caller. A commit costs one disk flush whatever the batch size, which is how the store keeps
//! thousands of durable writes per second. Reads use a small pool of connections, each read
//! inside its own transaction so that it sees one snapshot.

mod codec;
mod conn;
mod functions;
mod migrations;
mod schedule;
mod webhooks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use steward_store::{ReadTx, Store, StoreError, WriteTx, WriteWork};

pub use migrations::latest_version as schema_version;

/// How hard SQLite works to keep committed data across crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is flushed to disk before it is acknowledged, so a
    /// power loss keeps every acknowledged write.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits reach the operating system but are flushed only at WAL
    /// checkpoints. A process crash loses nothing; a power loss or kernel crash can lose the
    /// most recent acknowledged commits, never the database's consistency.
    Normal,
}

impl Durability {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "full" => Some(Durability::Full),
            "normal" => Some(Durability::Normal),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Most writes grouped into one transaction.
    pub max_batch: usize,
    /// Page cache of the writing connection, in KiB. Each reading connection gets an eighth:
    /// reads touch few pages more than once, the operating system caches the file, and up to
    /// a dozen readers may be open at once.
    pub cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            max_batch: 1024,
            cache_kib: 16 * 1024,
        }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Option<Sender<WriteWork>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    commits: tokio::sync::watch::Receiver<u64>,
}

/// Readers kept open between reads.
const IDLE_READERS: usize = 8;

pub(crate) fn sql_error(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl SqliteStore {
    /// Opens or creates the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Arc<Self>, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(folder) = path.parent()
            && !folder.as_os_str().is_empty()
            && !folder.is_dir()
        {
            return Err(StoreError::Backend(format!(
                "cannot open database {}: the folder {} does not exist; create it first or \
                 choose a database path in an existing folder",
                path.display(),
                folder.display()
            )));
        }
        let mut conn = Connection::open(&path).map_err(|e| {
            StoreError::Backend(format!("cannot open database {}: {e}", path.display()))
        })?;
        configure(&conn, &options)?;
        migrations::migrate(&mut conn)?;

        let (sender, receiver) = channel();
        let (commit_sender, commits) = tokio::sync::watch::channel(0u64);
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("steward-sqlite-writer".into())
            .spawn(move || writer_loop(conn, receiver, commit_sender, max_batch))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;

        Ok(Arc::new(SqliteStore {
            path,
            options,
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(thread)),
            readers: Mutex::new(Vec::new()),
            commits,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting writes and waits for queued ones to commit.
    pub fn close(&self) {
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }

    fn reader(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_error)?;
        functions::register(&conn)?;
        conn.pragma_update(None, "cache_size", -(i64::from(self.options.cache_kib) / 8))
            .map_err(sql_error)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    functions::register(conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "the database cannot use write-ahead logging (journal mode is {mode}); put it on a \
             local file system"
        )));
    }
    conn.pragma_update(None, "synchronous", options.durability.pragma())
        .map_err(sql_error)?;
    conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))
        .map_err(sql_error)?;
    // Sorts and groupings larger than the page cache spill to temporary files: grouping a
    // million time entries by person and day must not hold them all in memory.
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(sql_error)?;
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(sql_error)?;
    Ok(())
}

impl Store for SqliteStore {
    fn read_with(
        &self,
        f: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let conn = self.reader()?;
        run_cached(&conn, "BEGIN")?;
        let result = f(&conn::Conn::new(&conn));
        let end = run_cached(&conn, "COMMIT");
        self.return_reader(conn);
        result.and(end)
    }

    fn submit(&self, work: WriteWork) {
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match sender {
            Some(sender) => {
                if let Err(rejected) = sender.send(work) {
                    let _ = rejected.0.reply.send(Err(StoreError::Closed));
                }
            }
            None => {
                let _ = work.reply.send(Err(StoreError::Closed));
            }
        }
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.clone()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

fn writer_loop(
    mut conn: Connection,
    receiver: Receiver<WriteWork>,
    commits: tokio::sync::watch::Sender<u64>,
    max_batch: usize,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch, &commits);
    }
    // Every sender is gone: fold the WAL back into the main file before the process exits.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

fn run_batch(
    conn: &mut Connection,
    mut batch: Vec<WriteWork>,
    commits: &tokio::sync::watch::Sender<u64>,
) {
    let changes_before = conn.total_changes();
    // Fast path: no savepoints. A write that fails before writing anything leaves nothing to
    // undo; only a write that fails halfway sends the group down the slow path.
    let outcomes = match run_group(conn, &mut batch, false) {
        Some(outcomes) => outcomes,
        None => {
            let _ = run_cached(conn, "ROLLBACK");
            match run_group(conn, &mut batch, true) {
                Some(outcomes) => outcomes,
                None => unreachable!("with savepoints a failed write never aborts the group"),
            }
        }
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(error) => {
            for work in batch {
                let _ = work.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    match run_cached(conn, "COMMIT") {
        Ok(()) => {
            // Waking the watchers after a group that wrote no row would wake the scheduler
            // after its own empty claim, again and again, so an idle server would never sleep.
            // Rows undone by a savepoint still count, which at worst wakes a watcher for nothing.
            if conn.total_changes() != changes_before {
                commits.send_modify(|count| *count += 1);
            }
            for (work, outcome) in batch.into_iter().zip(outcomes) {
                let _ = work.reply.send(outcome);
            }
        }
        Err(error) => {
            let _ = run_cached(conn, "ROLLBACK");
            for work in batch {
                let _ = work.reply.send(Err(error.clone()));
            }
        }
    }
}

type Outcomes = Vec<Result<Box<dyn std::any::Any + Send>, StoreError>>;

/// Runs every write of a group in one open transaction. Returns `None` when a write failed
/// after writing, which only happens without savepoints, so the caller rolls back and runs
/// the group again with them.
fn run_group(
    conn: &mut Connection,
    batch: &mut [WriteWork],
    savepoints: bool,
) -> Option<Result<Outcomes, StoreError>> {
    if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
        return Some(Err(error));
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for work in batch.iter_mut() {
        let outcome = if savepoints {
            run_with_savepoint(conn, &mut work.run)
        } else {
            run_plain(conn, &mut work.run)?
        };
        outcomes.push(outcome);
    }
    Some(Ok(outcomes))
}

type Run = Box<dyn FnMut(&mut dyn WriteTx) -> steward_store::WriteOutput + Send>;

/// Runs one write without a savepoint; `None` when it failed after writing.
fn run_plain(
    conn: &mut Connection,
    run: &mut Run,
) -> Option<Result<Box<dyn std::any::Any + Send>, StoreError>> {
    let mut tx = conn::Conn::new(conn);
    match catch_unwind(AssertUnwindSafe(|| run(&mut tx))) {
        Ok((true, value)) => Some(Ok(value)),
        Ok((false, value)) if tx.write_count() == 0 => Some(Ok(value)),
        _ => None,
    }
}

/// Runs one write inside a savepoint, keeping its changes only when it succeeded.
fn run_with_savepoint(
    conn: &mut Connection,
    run: &mut Run,
) -> Result<Box<dyn std::any::Any + Send>, StoreError> {
    run_cached(conn, "SAVEPOINT work")?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = conn::Conn::new(conn);
        run(&mut tx)
    }));
    match outcome {
        Ok((true, value)) => {
            run_cached(conn, "RELEASE work")?;
            Ok(value)
        }
        Ok((false, value)) => {
            run_cached(conn, "ROLLBACK TO work")?;
            run_cached(conn, "RELEASE work")?;
            Ok(value)
        }
        Err(panic) => {
            let _ = run_cached(conn, "ROLLBACK TO work");
            let _ = run_cached(conn, "RELEASE work");
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(StoreError::Backend(format!(
                "a write panicked and was rolled back: {message}"
            )))
        }
    }
}

/// Runs a statement through the statement cache; transaction control runs for every write,
/// so parsing it each time would cost more than the work it frames.
pub(crate) fn run_cached(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
        .map_err(sql_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behavioural_suite_passes() {
        let dir = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        steward_store::suite::run_all(&|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let store: Arc<dyn Store> = SqliteStore::open(
                dir.path().join(format!("suite-{n}.db")),
                SqliteOptions::default(),
            )
            .unwrap();
            store
        });
    }

    #[test]
    fn missing_folder_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("firm.db");
        let Err(error) = SqliteStore::open(&path, SqliteOptions::default()) else {
            panic!("a database in a missing folder opened");
        };
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "the folder {} does not exist",
                dir.path().join("nope").display()
            )),
            "{message}"
        );
        assert!(message.contains("create it first"), "{message}");
        assert!(!dir.path().join("nope").exists());
    }

    /// Returns SQLite's plan for a record query, one line per step.
    fn plan(conn: &Connection, query: &steward_store::RecordQuery) -> String {
        let (sql, values) = conn::record_query(query, 100).unwrap();
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps = statement
            .query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        steps.join("; ")
    }

    #[test]
    fn billing_reads_time_from_the_index_alone() {
        use serde_json::{Value, json};
        use steward_domain::Kind;
        use steward_store::{RecordQuery, TIME_ENTRY_FIELDS};
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(dir.path().join("plan.db"), SqliteOptions::default()).unwrap();
        let conn = Connection::open(store.path()).unwrap();
        let projection: Vec<String> = TIME_ENTRY_FIELDS.iter().map(|f| f.to_string()).collect();

        let by_line = RecordQuery {
            kind: Some(Kind::Timesheet),
            fields: vec![("contract_line".into(), json!("line-1"))],
            only_fields: projection.clone(),
            after: Some("01J".into()),
            ..RecordQuery::default()
        };
        let steps = plan(&conn, &by_line);
        assert!(
            steps.contains("COVERING INDEX records_by_contract_line"),
            "{steps}"
        );
        assert!(!steps.contains("TEMP B-TREE"), "{steps}");

        let unlined = RecordQuery {
            kind: Some(Kind::Timesheet),
            fields: vec![
                ("project".into(), json!("project-1")),
                ("contract_line".into(), Value::Null),
            ],
            only_fields: projection,
            ..RecordQuery::default()
        };
        let steps = plan(&conn, &unlined);
        assert!(
            steps.contains("COVERING INDEX records_unlined_by_project"),
            "{steps}"
        );

        // A whole record by a reference still goes through that reference's index.
        let by_employee = RecordQuery {
            kind: Some(Kind::Leave),
            fields: vec![("employee".into(), json!("e-1"))],
            ..RecordQuery::default()
        };
        let steps = plan(&conn, &by_employee);
        assert!(steps.contains("INDEX records_by_employee"), "{steps}");

        // A person's day, read for every new time entry, is one range of that index, not
        // every entry the person logged.
        let day = RecordQuery {
            kind: Some(Kind::Timesheet),
            fields: vec![
                ("employee".into(), json!("e-1")),
                ("date".into(), json!("2026-12-01")),
            ],
            ..RecordQuery::default()
        };
        let steps = plan(&conn, &day);
        assert!(
            steps.contains("records_by_employee (kind=? AND <expr>=? AND <expr>=?)"),
            "the date is a key of the search: {steps}"
        );
    }

    #[test]
    fn reopening_keeps_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.db");
        drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let version: i64 = {
            let conn = Connection::open(store.path()).unwrap();
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version as usize, schema_version());
    }
}
