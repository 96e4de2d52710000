//! Benchmarks that need a whole engine or the real disk: the durable pipeline on SQLite and
//! the cost of one disk flush. The `steward-bench` binary runs them and prints one JSON line
//! each; the tests run small versions to keep them working.

pub mod billing;
pub mod fsync;
pub mod pipeline;
