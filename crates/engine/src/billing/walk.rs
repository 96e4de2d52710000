//! Walking the books of many contracts: the whole firm's readiness, drafts, reconciliation and
//! KPIs all build every billed contract's books and look at each in turn.
//!
//! A firm of 2,000 people logs about a million time entries a year, which neither fit in a
//! small server's memory as records nor need to: each contract is billed from its own
//! entries. So the walk reads the firm's other records once ([`Firm`]) and a contract's time
//! entries and expenses just before its books are built ([`Index::read_entries`]), which
//! keeps one contract's entries in memory per worker.
//!
//! The contracts are shared among worker threads, one per core up to [`MAX_WORKERS`], each
//! in its own read transaction. A worker takes [`BLOCK`] contracts at a time, so a worker
//! slowed by a large contract takes fewer blocks. Each contract's books come from one
//! snapshot of the records and are consistent: a worker shares the firm's records read
//! first only when its transaction sees the same newest event, and reads its own otherwise.
//! Two contracts may be read a moment apart, which is safe because no result compares
//! contracts, and a draft is checked again inside the write that stores it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use steward_billing::BillingSettings;
use steward_store::{ReadTx, Store};

use super::index::{Firm, Index};
use super::{Selection, load, read_index, selected};
use crate::EngineError;

/// Contracts a worker takes at a time.
const BLOCK: usize = 16;

/// Upper bound of worker threads; more than this contend on the database file.
const MAX_WORKERS: usize = 4;

/// Runs `f` in one read transaction and returns its result.
pub(crate) fn in_read<T>(
    store: &dyn Store,
    f: impl FnOnce(&dyn ReadTx) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let mut outcome = None;
    steward_store::read(store, |tx| {
        outcome = Some(f(tx));
        Ok(())
    })?;
    outcome.expect("the read ran")
}

/// Builds the books of every contract `selection` covers, passes each to `visit`, and
/// returns the results in contract id order.
pub(crate) fn map_books<T: Send>(
    store: &dyn Store,
    selection: &Selection,
    settings: &BillingSettings,
    visit: &(dyn Fn(&Index, load::Books) -> Result<T, EngineError> + Sync),
) -> Result<Vec<T>, EngineError> {
    if selection.contract.is_some() {
        return in_read(store, |tx| {
            let index = read_index(tx, selection)?;
            selected(&index, selection)?
                .into_iter()
                .map(|contract| visit(&index, load::load(&index, contract, settings)))
                .collect()
        });
    }
    let (ids, firm, seen) = in_read(store, |tx| {
        let seen = tx.last_event_seq()?;
        let firm = Arc::new(Firm::read(tx)?);
        let ids: Vec<String> = firm
            .contracts()
            .iter()
            .filter(|c| load::BILLED_STATES.contains(&c.state.as_str()))
            .map(|c| c.id.clone())
            .collect();
        Ok((ids, firm, seen))
    })?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
        .min(ids.len().div_ceil(BLOCK))
        .max(1);

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(ids.len()));
    let work = || -> Result<(), EngineError> {
        let outcome = in_read(store, |tx| {
            // A worker whose transaction sees the records the firm was read from shares
            // that copy; after a change in between, it reads its own.
            let mut index = if tx.last_event_seq()? == seen {
                Index::sharing(Arc::clone(&firm))
            } else {
                Index::firm(tx)?
            };
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = next.fetch_add(BLOCK, Ordering::Relaxed);
                if start >= ids.len() {
                    break;
                }
                for (position, id) in ids.iter().enumerate().skip(start).take(BLOCK) {
                    // A contract deleted since the listing has nothing to bill.
                    let Some(contract) = index.contract(id).cloned() else {
                        continue;
                    };
                    index.read_entries(tx, id)?;
                    let books = load::load(&index, &contract, settings);
                    done.push((position, visit(&index, books)?));
                }
            }
            results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(done);
            Ok(())
        });
        if outcome.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        outcome
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut outcome = work();
        for helper in helpers {
            let joined = helper.join().unwrap_or_else(|_| {
                Err(EngineError::Rule(
                    "a billing worker stopped unexpectedly".into(),
                ))
            });
            if outcome.is_ok() {
                outcome = joined;
            }
        }
        outcome
    })?;

    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(position, _)| *position);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}
