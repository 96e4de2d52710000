//! Invoice drafts from ready items, for every billing model.
//!
//! [`draft`] bills everything in a [`BillingInput`] that is ready and still has a quantity to
//! bill by the [`Ledger`](crate::quantity::Ledger), dated on or before the period's end:
//!
//! | model | invoice lines |
//! |---|---|
//! | time and materials | hours × rate, one line per contract line and rate (and per project or employee under the `group_by` rule) |
//! | fixed fee | one line per installment of the schedule that fell due and is not billed yet |
//! | milestone | one line per accepted milestone: its amount, or its percentage of the contract line's quantity × unit price |
//! | retainer | one line per period started and not billed yet, at the line's unit price |
//! | prepaid hours | the block at the line's unit price per hour while unbilled, a zero-priced drawdown line for time within the block, and an overage line for time beyond it at the overage rate |
//! | manual | the delivered quantity not billed yet, at the line's unit price |
//! | rebillable expenses | one line per expense category at cost, plus the `expense_markup` rule |
//!
//! Time on fixed-fee, milestone, retainer or manual lines is covered by their price and is not
//! billed by the hour. Every line lists the records it bills as [`Source`]s. A line's discount
//! is the contract line's and its tax rate is the contract line's `tax_rate`, else the tax
//! table's rate for the client and the line's category. Totals follow the document's
//! [`Rounding`] policy, described in [`compute_totals`].

mod build;
#[cfg(test)]
mod tests;
mod totals;

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use steward_domain::{Currency, Money};

use crate::input::{BillingInput, Period};
use crate::issue::Issue;
use crate::quantity::{Ledger, Source};

pub(crate) use build::{before_contract_start, build, nothing_to_bill};
pub use totals::{DocumentTotals, LineAmounts, LineTotals, compute_totals};

/// Rounding policy of a document, recorded on the invoice: where amounts are rounded to the
/// currency's minor unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Each line is rounded, and the document sums the rounded lines.
    #[default]
    PerLine,
    /// The document's amounts are rounded once, and the lines are adjusted to sum to them.
    PerDocument,
}

impl Rounding {
    pub fn parse(name: &str) -> Option<Rounding> {
        match name {
            "per_line" => Some(Rounding::PerLine),
            "per_document" => Some(Rounding::PerDocument),
            _ => None,
        }
    }

    /// Returns the name stored in the invoice's `rounding` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::PerLine => "per_line",
            Rounding::PerDocument => "per_document",
        }
    }
}

/// Kind of charge an invoice line bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Time,
    FixedFee,
    Milestone,
    Retainer,
    /// The purchase of a prepaid block of hours.
    PrepaidBlock,
    /// Time drawn from a prepaid block, at no charge.
    PrepaidDrawdown,
    /// Time beyond a prepaid block, at the overage rate.
    PrepaidOverage,
    Manual,
    Expense,
}

impl LineKind {
    /// True for lines whose quantity is hours of time.
    pub fn bills_hours(self) -> bool {
        matches!(
            self,
            LineKind::Time | LineKind::PrepaidDrawdown | LineKind::PrepaidOverage
        )
    }
}

/// One drafted invoice line, with the fields of an `invoice_line` record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DraftLine {
    pub kind: LineKind,
    pub description: String,
    pub contract_line: Option<String>,
    pub service: Option<String>,
    pub unit: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Money,
    /// Discount in percent.
    pub discount: Decimal,
    /// Tax rate in percent, 0 under the reverse charge.
    pub tax_rate: Decimal,
    pub reverse_charge: bool,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub sources: Vec<Source>,
}

/// State of a prepaid block after the draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrepaidUsage {
    pub contract_line: String,
    pub block_hours: Decimal,
    /// Hours drawn by earlier invoices.
    pub drawn_before: Decimal,
    /// Hours this draft draws from the block.
    pub drawn_now: Decimal,
    /// Hours left in the block after this draft.
    pub remaining: Decimal,
    /// Hours beyond the block, billed at the overage rate.
    pub overage_hours: Decimal,
}

/// A drafted invoice: its lines, totals and the policy that rounded them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Draft {
    pub contract: String,
    pub client: String,
    pub currency: Currency,
    pub period: Period,
    pub issue_date: NaiveDate,
    pub rounding: Rounding,
    pub lines: Vec<DraftLine>,
    pub untaxed: Money,
    pub tax: Money,
    pub total: Money,
    /// Mentions the invoice must carry, such as the reverse charge.
    pub notes: Vec<String>,
    pub prepaid: Vec<PrepaidUsage>,
}

/// The problems that keep an invoice from being drafted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftError {
    pub issues: Vec<Issue>,
}

impl fmt::Display for DraftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot draft the invoice")?;
        for (index, issue) in self.issues.iter().enumerate() {
            let separator = if index == 0 { ": " } else { "; " };
            write!(f, "{separator}{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DraftError {}

/// Drafts the invoice for `input`: every ready item and every line term due by the period's
/// end, less what issued documents already billed.
///
/// Fails with every problem found when any ready item cannot be priced: no rate, no contract
/// line, another currency, incomplete line terms or no tax rate. So nothing is silently left
/// out or priced at zero. It also fails when nothing is left to bill. Items that are not
/// ready (not approved, not accepted, not billable) are not billed and do not fail the
/// draft, because the readiness gate reports them.
pub fn draft(input: &BillingInput) -> Result<Draft, DraftError> {
    let ledger = Ledger::from_documents(input.documents);
    let outcome = build(input, &ledger);
    if !outcome.issues.is_empty() {
        return Err(DraftError {
            issues: outcome.issues,
        });
    }
    outcome.draft.ok_or_else(|| DraftError {
        issues: vec![before_contract_start(input).unwrap_or_else(|| nothing_to_bill(input))],
    })
}
