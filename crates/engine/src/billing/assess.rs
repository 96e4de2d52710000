//! The readiness of one contract for one month, with the store's facts the billing crate
//! cannot see: approved overrides and draft invoices already written.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;
use steward_billing::readiness::{Readiness, check_with};
use steward_billing::{Issue, IssueCode};
use steward_domain::{Kind, Money, Record};
use steward_store::{ReadTx, RecordQuery, StoreError};

use super::BillingPeriod;
use super::load::Books;

/// The approved `billing_override` requests, by contract and month.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    approved: HashMap<(String, String), String>,
}

impl Overrides {
    /// Reads every approved billing override.
    pub fn read(tx: &dyn ReadTx) -> Result<Overrides, StoreError> {
        let mut overrides = Overrides::default();
        let mut after = None;
        loop {
            let page = tx.records(&RecordQuery {
                kind: Some(Kind::ApprovalRequest),
                state: Some("approved".into()),
                fields: vec![(
                    "request_kind".into(),
                    Value::String("billing_override".into()),
                )],
                after: after.clone(),
                limit: steward_store::MAX_PAGE,
                ..RecordQuery::default()
            })?;
            for request in &page.items {
                overrides.add(request);
            }
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => return Ok(overrides),
            }
        }
    }

    fn add(&mut self, request: &Record) {
        let contract = (request.text("subject_kind") == Some("contract"))
            .then(|| request.text("subject_id"))
            .flatten();
        if let (Some(contract), Some(period)) = (contract, request.text("period")) {
            self.approved.insert(
                (contract.to_string(), period.to_string()),
                request.id.clone(),
            );
        }
    }

    /// Returns the approved override of `contract` for `period`, if any.
    pub fn get(&self, contract: &str, period: &BillingPeriod) -> Option<&str> {
        self.approved
            .get(&(contract.to_string(), period.label()))
            .map(String::as_str)
    }
}

/// One contract's readiness for one month, as the API and the CLI show it.
#[derive(Clone, Debug, Serialize)]
pub struct ContractReadiness {
    pub contract: String,
    pub name: Option<String>,
    /// Number in the source system, such as a sale order number.
    pub reference: Option<String>,
    pub client: Option<String>,
    pub currency: String,
    pub period: String,
    pub ready: bool,
    pub blockers: Vec<Issue>,
    /// Blockers lifted by the approved override, recorded on the draft.
    pub warnings: Vec<Issue>,
    pub override_request: Option<String>,
    /// The draft invoice already written for this month, which a new draft run returns
    /// instead of billing the same items again.
    pub draft_invoice: Option<String>,
    /// Amounts of the invoice the ready items would make, present when something can be
    /// priced.
    pub untaxed: Option<Money>,
    pub tax: Option<Money>,
    pub total: Option<Money>,
    pub lines: usize,
}

/// Returns the draft invoices of the contract that wait for release, split into the one
/// written for `period` (if any) and those of other months.
fn pending_drafts<'a>(
    books: &'a Books,
    period: &BillingPeriod,
) -> (Option<&'a Record>, Vec<&'a Record>) {
    let mut same = None;
    let mut others = Vec::new();
    for draft in books.pending_drafts() {
        let covers = draft.date("period_start") == Some(period.start)
            && draft.date("period_end") == Some(period.end);
        if covers && same.is_none() {
            same = Some(draft);
        } else {
            others.push(draft);
        }
    }
    (same, others)
}

/// Builds the `draft_pending` blocker for drafts of months other than `period`, naming each
/// draft's month and whether it comes before or after `period`.
fn draft_pending(drafts: &[&Record], period: &BillingPeriod) -> Issue {
    let mut described = Vec::new();
    let mut months = Vec::new();
    for draft in drafts {
        let start = draft.date("period_start");
        let month = start
            .map(|day| BillingPeriod::of(day).label())
            .unwrap_or_else(|| "an unknown month".to_string());
        let order = match start {
            Some(day) if day < period.start => "before",
            Some(day) if day > period.end => "after",
            _ => "overlapping",
        };
        described.push(format!(
            "{} for {month} ({} to {}, {order} {})",
            draft.id,
            draft.text("period_start").unwrap_or("?"),
            draft.text("period_end").unwrap_or("?"),
            period.label()
        ));
        if !months.contains(&month) {
            months.push(month);
        }
    }
    let message = match described.as_slice() {
        [one] => format!("draft invoice {one} waits for release"),
        many => format!(
            "{} draft invoices of other months wait for release: {}",
            many.len(),
            many.join(", ")
        ),
    };
    let fix = match drafts.len() {
        1 => format!(
            "release or cancel the draft of {} first, so that its items are not billed twice",
            months.join(", ")
        ),
        _ => format!(
            "release or cancel the drafts of {} first, so that their items are not billed twice",
            months.join(", ")
        ),
    };
    Issue::new(
        IssueCode::DraftPending,
        drafts.iter().map(|d| d.reference()).collect(),
        message,
        fix,
    )
}

/// Checks one contract's readiness. Returns the verdict shown to people and the billing
/// crate's readiness, whose draft the caller writes when the contract is ready.
pub fn assess(
    books: &Books,
    period: BillingPeriod,
    issue_date: NaiveDate,
    overrides: &Overrides,
) -> (ContractReadiness, Readiness) {
    let (existing, others) = pending_drafts(books, &period);
    let mut extra = super::problems_as_issues(books);
    if !others.is_empty() {
        extra.push(draft_pending(&others, &period));
    }
    let override_request = overrides.get(&books.contract.id, &period);
    let input = books.input(period.period(), issue_date);
    let readiness = check_with(&input, override_request, extra);
    let draft = readiness.draft.as_ref();
    let view = ContractReadiness {
        contract: books.contract.id.clone(),
        name: books.record.text("name").map(String::from),
        reference: books.record.text("reference").map(String::from),
        client: books.record.ref_id("client").map(String::from),
        currency: books.contract.currency.code().to_string(),
        period: period.label(),
        ready: readiness.ready,
        blockers: readiness.blockers.clone(),
        warnings: readiness.warnings.clone(),
        override_request: readiness.override_request.clone(),
        draft_invoice: existing.map(|d| d.id.clone()),
        untaxed: draft.map(|d| d.untaxed),
        tax: draft.map(|d| d.tax),
        total: draft.map(|d| d.total),
        lines: draft.map_or(0, |d| d.lines.len()),
    };
    (view, readiness)
}
