//! Approval policies: the file format and its checker, routing by decision table, segregation
//! of duties, escalation and delegation, and the backlog and turnaround metrics.
//!
//! Nothing in this crate does IO except [`load_dir`], which reads policy files. The engine
//! passes the people it knows through [`route::Directory`]; routing and deciding work on what
//! that lookup returns.

pub mod check;
pub mod decide;
pub mod metrics;
pub mod policy;
pub mod route;
pub mod spec;

pub use check::compile_sources;
pub use decide::{Decision, Permitted, Progress, Refusal, StepView, Verdict};
pub use policy::{ApprovalConfig, Approver, Authority, Hit, Limit, Order, Policy};
pub use route::{Assignment, Directory, Person, RequestInfo, Router};

use std::path::Path;

use steward_rules::Diagnostic;

/// Reads every `.yaml` and `.yml` file under `dir` and compiles its policies and authority.
pub fn load_dir(dir: &Path) -> Result<ApprovalConfig, Vec<Diagnostic>> {
    let sources = steward_rules::check::read_sources(dir)?;
    let (config, diagnostics) = compile_sources(&sources);
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        Err(diagnostics)
    }
}
