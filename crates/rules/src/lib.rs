//! Automation rules: the file format, expressions, the context rules see, trigger matching,
//! condition evaluation with its inputs, action resolution, and the checker behind
//! `steward rules check`.
//!
//! Nothing in this crate does IO except [`check::load_dir`], which reads rule files. The
//! engine loads related records through the lookup it passes to [`context::build`]; evaluation
//! itself works on the built context only.

pub mod bench;
pub mod check;
pub mod context;
pub mod duration;
pub mod eval;
pub mod expr;
pub mod rule;
pub mod spec;
pub mod time;

pub use check::{
    Diagnostic, compile_api_text, compile_rule_text, compile_sources, compile_sources_with_roles,
    load_dir, load_dir_with_roles,
};
pub use rule::{Action, Effect, ResolvedAction, Rule, RuleSet, Trigger};
pub use zen_expression::variable::Variable;
pub use zen_expression::vm::VM;
