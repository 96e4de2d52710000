//! The storage interface of Steward: read and write transactions over records, the event log,
//! rule versions, rule runs, jobs, findings and tokens.
//!
//! This crate knows no SQL. Each backend crate implements [`ReadTx`], [`WriteTx`] and [`Store`]
//! and runs the behavioural suite in [`suite`] against itself.
//!
//! Writes are closures that a backend runs inside a transaction. A backend may run several
//! closures in one transaction (group commit). A closure that returns an error leaves no trace,
//! the others in its group are unaffected, and nobody hears of a success before the
//! transaction that holds it has committed. To get there cheaply a backend may run a closure
//! more than once (after another closure of its group failed halfway), so a write closure
//! must have no effect outside the transaction it is given.

mod error;
mod rows;
pub mod schedule;
pub mod suite;
mod tx;
pub mod webhooks;

use std::any::Any;
use std::sync::Arc;

pub use error::StoreError;
pub use rows::*;
pub use tx::{ReadTx, WriteTx};

/// The result of one write closure: whether its savepoint is kept, and its boxed value.
pub type WriteOutput = (bool, Box<dyn Any + Send>);

/// A unit of work for the writer. It may run more than once; only the run whose transaction
/// commits counts.
pub struct WriteWork {
    pub run: Box<dyn FnMut(&mut dyn WriteTx) -> WriteOutput + Send>,
    pub reply: tokio::sync::oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
}

pub trait Store: Send + Sync + 'static {
    /// Runs `f` against a consistent snapshot of committed data.
    fn read_with(
        &self,
        f: &mut dyn FnMut(&dyn ReadTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Queues a write; its reply arrives after the transaction that holds it commits.
    fn submit(&self, work: WriteWork);

    /// A receiver that changes after every commit that wrote rows, so workers wake when new
    /// jobs may exist and an idle engine sleeps.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;

    /// A short name such as `sqlite`, for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// Runs a read closure and returns its value.
pub fn read<T>(
    store: &dyn Store,
    f: impl FnOnce(&dyn ReadTx) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut f = Some(f);
    let mut out = None;
    store.read_with(&mut |tx| {
        let f = f.take().expect("a read closure runs once");
        out = Some(f(tx)?);
        Ok(())
    })?;
    Ok(out.expect("the read closure ran"))
}

/// Runs a read on the blocking thread pool, for async callers.
pub async fn read_async<T, F>(store: Arc<dyn Store>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&dyn ReadTx) -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || read(store.as_ref(), f))
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
}

fn package<T, E, F>(f: F) -> (WriteWork, tokio::sync::oneshot::Receiver<WriteReply>)
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnMut(&mut dyn WriteTx) -> Result<T, E> + Send + 'static,
{
    let (reply, receiver) = tokio::sync::oneshot::channel();
    let mut f = f;
    let run = Box::new(move |tx: &mut dyn WriteTx| {
        let result = f(tx);
        let keep = result.is_ok();
        (keep, Box::new(result) as Box<dyn Any + Send>)
    });
    (WriteWork { run, reply }, receiver)
}

type WriteReply = Result<Box<dyn Any + Send>, StoreError>;

fn unpack<T: 'static, E: From<StoreError> + 'static>(
    reply: Result<WriteReply, tokio::sync::oneshot::error::RecvError>,
) -> Result<T, E> {
    match reply {
        Ok(Ok(boxed)) => *boxed
            .downcast::<Result<T, E>>()
            .expect("a write returns its own type"),
        Ok(Err(error)) => Err(E::from(error)),
        Err(_) => Err(E::from(StoreError::Closed)),
    }
}

/// Runs a write closure in a transaction and waits for the commit, from async code.
pub async fn write<T, E, F>(store: &dyn Store, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&mut dyn WriteTx) -> Result<T, E> + Send + 'static,
{
    submit_write(store, f).await
}

/// Queues a write at once and returns a future of its committed result. Queuing several
/// writes before awaiting any lets the backend commit them together.
pub fn submit_write<T, E, F>(
    store: &dyn Store,
    f: F,
) -> impl std::future::Future<Output = Result<T, E>> + Send + 'static
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&mut dyn WriteTx) -> Result<T, E> + Send + 'static,
{
    let (work, receiver) = package(f);
    store.submit(work);
    async move { unpack(receiver.await) }
}

/// Runs a write closure in a transaction and blocks until the commit.
pub fn write_blocking<T, E, F>(store: &dyn Store, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&mut dyn WriteTx) -> Result<T, E> + Send + 'static,
{
    let (work, receiver) = package(f);
    store.submit(work);
    unpack(receiver.blocking_recv())
}
