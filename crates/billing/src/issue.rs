//! Problems that keep an item or a contract from being billed, and invalid configuration.

use std::fmt;

use serde::Serialize;
use steward_domain::RecordRef;

/// The kind of an [`Issue`], stable for API clients and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// Billable time or an expense that is still a draft, submitted or rejected.
    NotApproved,
    /// A milestone reached but not yet accepted by the client.
    NotAccepted,
    /// Time, or a milestone priced by percentage, that names no contract line.
    MissingContractLine,
    /// An item that names a contract line missing from the input.
    UnknownContractLine,
    /// Time or a quantity with no rate: no person rate, role rate, unit price or overage rate.
    MissingRate,
    /// A contract line whose terms lack what its billing model needs, such as a schedule.
    IncompleteLine,
    /// A price or amount that is negative or finer than the currency's minor unit.
    InvalidAmount,
    /// An expense or milestone in another currency than the contract's.
    CurrencyMismatch,
    /// No tax rate can be found for the client.
    TaxUnavailable,
    /// Nothing in the period is ready to bill.
    NothingToBill,
    /// The draft would take the contract's invoiced total over its cap.
    CapExceeded,
    /// The client's billing rules require a purchase order and the contract has none.
    PurchaseOrderMissing,
    /// The purchase order's validity ended before the invoice's issue date.
    PurchaseOrderExpired,
    /// The draft would take the purchase order's invoiced total over its amount.
    PurchaseOrderExceeded,
    /// The draft's untaxed amount is below the client's minimum invoice amount.
    BelowMinimumAmount,
    /// A line bills more hours than the client's rules allow on one line.
    TooManyHoursOnLine,
    /// The contract's or client's terms cannot be read, such as a malformed rate card,
    /// billing rules or fixed-fee schedule.
    InvalidTerms,
    /// A draft invoice of the contract is not released or cancelled yet, so a new draft
    /// would bill the same items again.
    DraftPending,
    /// The period ends before the contract starts, so nothing in it belongs to the contract.
    BeforeContractStart,
}

impl IssueCode {
    /// Returns the snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::NotApproved => "not_approved",
            IssueCode::NotAccepted => "not_accepted",
            IssueCode::MissingContractLine => "missing_contract_line",
            IssueCode::UnknownContractLine => "unknown_contract_line",
            IssueCode::MissingRate => "missing_rate",
            IssueCode::IncompleteLine => "incomplete_line",
            IssueCode::InvalidAmount => "invalid_amount",
            IssueCode::CurrencyMismatch => "currency_mismatch",
            IssueCode::TaxUnavailable => "tax_unavailable",
            IssueCode::NothingToBill => "nothing_to_bill",
            IssueCode::CapExceeded => "cap_exceeded",
            IssueCode::PurchaseOrderMissing => "purchase_order_missing",
            IssueCode::PurchaseOrderExpired => "purchase_order_expired",
            IssueCode::PurchaseOrderExceeded => "purchase_order_exceeded",
            IssueCode::BelowMinimumAmount => "below_minimum_amount",
            IssueCode::TooManyHoursOnLine => "too_many_hours_on_line",
            IssueCode::InvalidTerms => "invalid_terms",
            IssueCode::DraftPending => "draft_pending",
            IssueCode::BeforeContractStart => "before_contract_start",
        }
    }

    /// Returns false for problems that an override cannot lift: with no tax rate, nothing
    /// ready or unreadable terms there is no draft to release, a pending draft would be
    /// billed twice, and a month before the contract's start is not the contract's to bill.
    pub fn overridable(self) -> bool {
        !matches!(
            self,
            IssueCode::TaxUnavailable
                | IssueCode::NothingToBill
                | IssueCode::InvalidTerms
                | IssueCode::DraftPending
                | IssueCode::BeforeContractStart
        )
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with the records it concerns, what is wrong and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub code: IssueCode,
    /// The records to open to fix the problem, such as the unapproved timesheet entries.
    pub records: Vec<RecordRef>,
    /// Description of the problem, naming the records and the amounts involved.
    pub message: String,
    /// Action that resolves the problem.
    pub fix: String,
}

impl Issue {
    pub fn new(
        code: IssueCode,
        records: Vec<RecordRef>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Issue {
        Issue {
            code,
            records,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// True when the issue names `record`.
    pub fn concerns(&self, record: &RecordRef) -> bool {
        self.records.contains(record)
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (fix: {})", self.message, self.fix)
    }
}

/// Invalid configuration or input, such as a malformed rate card or tax table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Input being read, such as `rate card` or `billing rules`.
    pub subject: String,
    /// Problem with the input and how to write it instead.
    pub message: String,
}

impl InputError {
    pub fn new(subject: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            subject: subject.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.subject, self.message)
    }
}

impl std::error::Error for InputError {}
