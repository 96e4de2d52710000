//! Exact billing arithmetic: billable quantities, rate cards, taxes, invoice drafts, the
//! billing-readiness gate and the reconciliation report.
//!
//! Everything here is a pure function of plain input structs. Nothing reads the store, a clock
//! or the network. The caller gathers one contract's data for one billing period into a
//! [`BillingInput`] and passes it to:
//!
//! - [`readiness::check`] to learn whether the contract can be invoiced, and if not, every
//!   reason why, each naming the records and the fix;
//! - [`invoice::draft`] to draft the invoice from the ready items;
//! - [`reconcile::reconcile`] to list every item of the period with how it was billed.
//!
//! The firm's tax table and default rounding come from the `billing` section of the rules
//! folder, read by [`settings::load_dir`], the only function here that reads files.
//!
//! Three ideas carry the crate:
//!
//! - **Sources.** Every invoice line lists the records it bills as [`Source`]s (kind, id and
//!   quantity). The [`quantity::Ledger`] sums them over issued invoices and credit notes, so the
//!   quantity still to bill for a record is its delivered quantity minus what was invoiced plus
//!   what was credited, kept between zero and the delivered quantity.
//! - **Issues.** Anything that keeps an item or a contract from being billed is an [`Issue`]
//!   with a code, the records it concerns, a message and a fix. Readiness turns them into
//!   blockers, and an approved override turns blockers into warnings.
//! - **Exact money.** Amounts are [`rust_decimal::Decimal`], never floating point. They are
//!   rounded half away from zero to the currency's ISO 4217 minor unit only where they are
//!   written on an invoice, by the document's [`Rounding`] policy.

mod input;
mod issue;

pub mod invoice;
pub mod quantity;
pub mod rates;
pub mod readiness;
pub mod reconcile;
pub mod rules;
pub mod settings;
pub mod tax;
mod yaml;

#[cfg(test)]
mod testing;

pub use input::{
    BillableItem, BillingDocument, BillingInput, BillingModel, Cadence, Client, Contract,
    ContractLine, DocumentState, EntryState, Installment, ItemKind, MilestoneState, MoveType,
    Period, PurchaseOrder,
};
pub use invoice::{Draft, DraftError, DraftLine, LineKind, Rounding};
pub use issue::{InputError, Issue, IssueCode};
pub use quantity::{Ledger, Position, Source};
pub use rates::{Rate, RateBasis, RateCard};
pub use readiness::Readiness;
pub use reconcile::{Reconciliation, Status};
pub use rules::{BillingRules, GroupBy};
pub use settings::BillingSettings;
pub use tax::{TaxRate, TaxTable};
