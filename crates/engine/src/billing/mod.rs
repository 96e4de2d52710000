//! Billing on stored records: the readiness gate per contract and month, invoice drafts from
//! ready items, the reconciliation report, the billing overrides and the firm's KPIs.
//!
//! The arithmetic lives in `steward-billing`, which does no IO. This module gathers each
//! contract's books from the store ([`index`], [`load`]), passes them to that crate, and
//! writes the drafts it returns as `invoice` and `invoice_line` records through the command
//! path, so every draft has its events like any other change.
//!
//! A billing period is a calendar month, written `YYYY-MM`. Only active and closed contracts
//! are billed ([`load::BILLED_STATES`]).

mod assess;
mod draft;
pub mod index;
pub mod kpis;
pub mod load;
pub mod odoo;
mod settings;
mod walk;

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use steward_billing::reconcile::Reconciliation;
use steward_billing::{Issue, Period};
use steward_domain::{CommandContext, DomainError, Kind, Money};

pub use assess::{ContractReadiness, Overrides};
pub use draft::{DraftOutcome, DraftReport, DraftedInvoice};
pub use settings::{install_settings, stored_settings};

use crate::EngineError;
use index::Index;

/// A billing period: one calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BillingPeriod {
    /// First day of the month.
    pub start: NaiveDate,
    /// Last day of the month.
    pub end: NaiveDate,
}

impl BillingPeriod {
    /// Parses a month written `YYYY-MM`, such as `2026-11`.
    pub fn parse(text: &str) -> Result<BillingPeriod, DomainError> {
        let invalid = || {
            DomainError::Invalid(format!(
                "billing period `{text}` is not a month; write it as YYYY-MM, such as 2026-11"
            ))
        };
        let (year, month) = text.trim().split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let month: u32 = month.parse().map_err(|_| invalid())?;
        let start = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(invalid)?;
        let end = start
            .checked_add_months(chrono::Months::new(1))
            .and_then(|d| d.pred_opt())
            .ok_or_else(invalid)?;
        Ok(BillingPeriod { start, end })
    }

    /// Returns the month of `day`.
    pub fn of(day: NaiveDate) -> BillingPeriod {
        let label = format!("{:04}-{:02}", day.year(), day.month());
        BillingPeriod::parse(&label).expect("a day's month is a valid period")
    }

    /// Returns the month as `YYYY-MM`.
    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.start.year(), self.start.month())
    }

    pub fn period(&self) -> Period {
        Period::new(self.start, self.end).expect("a month starts before it ends")
    }
}

/// The contracts and the month that a billing command covers.
#[derive(Clone, Debug)]
pub struct Selection {
    pub period: BillingPeriod,
    /// One contract; every billed contract when `None`.
    pub contract: Option<String>,
}

/// The reconciliation of one month: one report per contract and the count of entries by
/// status over all of them.
#[derive(Clone, Debug, Serialize)]
pub struct ReconciliationReport {
    pub period: String,
    pub contracts: Vec<Reconciliation>,
    /// Entries by status name, such as `invoiced` or `not_approved`.
    pub statuses: std::collections::BTreeMap<String, usize>,
    /// True when every entry of every contract is settled: invoiced exactly once, not
    /// billable or not due.
    pub reconciled: bool,
}

/// Checks the month of a `billing_override` request, which must be about a contract and
/// name the month whose blockers it lifts. Returns that month, or `None` for requests of
/// other kinds, which take no month.
pub(crate) fn override_period(
    spec: &crate::approvals::OpenRequest,
    subject: Option<&steward_domain::Record>,
) -> Result<Option<String>, EngineError> {
    if spec.kind != "billing_override" {
        return match &spec.period {
            Some(period) => Err(DomainError::Invalid(format!(
                "`period` {period} applies only to billing_override requests; leave it out"
            ))
            .into()),
            None => Ok(None),
        };
    }
    if subject.is_none_or(|s| s.kind != Kind::Contract) {
        return Err(DomainError::Invalid(
            "a billing override is about one contract; set `subject` to \
             {\"kind\": \"contract\", \"id\": \"<contract id>\"}"
                .into(),
        )
        .into());
    }
    let Some(period) = &spec.period else {
        return Err(DomainError::Invalid(
            "a billing override needs `period`, the month whose blockers it lifts, such as \
             2026-11"
                .into(),
        )
        .into());
    };
    Ok(Some(BillingPeriod::parse(period)?.label()))
}

/// Turns terms the loader could not read into blockers that no override lifts.
fn problems_as_issues(books: &load::Books) -> Vec<Issue> {
    books
        .problems
        .iter()
        .map(|problem| {
            Issue::new(
                steward_billing::IssueCode::InvalidTerms,
                vec![books.record.reference()],
                problem.to_string(),
                "correct the contract's or client's terms named in the message",
            )
        })
        .collect()
}

/// Returns the contracts of `index` that `selection` covers, failing when a named contract
/// does not exist or is not billed.
pub(crate) fn selected<'a>(
    index: &'a Index,
    selection: &Selection,
) -> Result<Vec<&'a steward_domain::Record>, DomainError> {
    match &selection.contract {
        Some(key) => {
            let contract = index
                .contracts()
                .iter()
                .find(|c| &c.id == key)
                .or_else(|| {
                    index
                        .contracts()
                        .iter()
                        .find(|c| c.text("reference") == Some(key.as_str()))
                })
                .ok_or_else(|| contract_not_found(key))?;
            if !load::BILLED_STATES.contains(&contract.state.as_str()) {
                return Err(DomainError::Invalid(format!(
                    "contract {} is {}; only active or closed contracts are billed, so \
                     activate it first",
                    contract_label(contract),
                    contract.state
                )));
            }
            Ok(vec![contract])
        }
        None => Ok(index
            .contracts()
            .iter()
            .filter(|c| load::BILLED_STATES.contains(&c.state.as_str()))
            .collect()),
    }
}

/// Reads the index that `selection` needs: one contract's records, or the whole firm's.
pub(crate) fn read_index(
    tx: &dyn steward_store::ReadTx,
    selection: &Selection,
) -> Result<Index, EngineError> {
    match &selection.contract {
        Some(key) => {
            let contract = find_contract(tx, key)?;
            Ok(Index::for_contract(tx, contract)?)
        }
        None => Ok(Index::firm(tx)?),
    }
}

/// Finds the contract that `key` names: by id, or else by its `reference`, such as the
/// number of the Odoo sale order it mirrors.
pub fn find_contract(
    tx: &dyn steward_store::ReadTx,
    key: &str,
) -> Result<steward_domain::Record, EngineError> {
    if let Some(contract) = tx.record(Kind::Contract, key)? {
        return Ok(contract);
    }
    let mut query = index::by_field(Kind::Contract, "reference", key);
    query.limit = 10;
    let matches = tx.records(&query)?.items;
    match matches.as_slice() {
        [] => Err(contract_not_found(key).into()),
        [contract] => Ok(contract.clone()),
        several => {
            let ids: Vec<&str> = several.iter().map(|c| c.id.as_str()).collect();
            Err(DomainError::Invalid(format!(
                "reference {key} names several contracts ({}); pass the id of one of them",
                ids.join(", ")
            ))
            .into())
        }
    }
}

/// Builds the error for a contract key that is neither an id nor a reference.
fn contract_not_found(key: &str) -> DomainError {
    DomainError::NotFound {
        kind: Kind::Contract,
        id: key.to_string(),
    }
}

/// Returns how messages name a contract: its reference followed by its id, or its id alone.
pub fn contract_label(contract: &steward_domain::Record) -> String {
    match contract.text("reference") {
        Some(reference) => format!("{reference} ({})", contract.id),
        None => contract.id.clone(),
    }
}

/// Sums money by currency, for totals over contracts billed in several currencies.
pub fn sum_by_currency<'a>(
    amounts: impl Iterator<Item = &'a Money>,
) -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
    let mut sums = std::collections::BTreeMap::new();
    for money in amounts {
        *sums
            .entry(money.currency.code().to_string())
            .or_insert(rust_decimal::Decimal::ZERO) += money.amount;
    }
    sums
}

impl crate::Engine {
    /// Checks the readiness of every contract `selection` covers, in contract id order.
    pub async fn billing_readiness(
        self: &Arc<Self>,
        selection: Selection,
    ) -> Result<Vec<ContractReadiness>, EngineError> {
        let today = self.clock.now().date_naive();
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || readiness(store.as_ref(), &selection, today))
            .await
            .map_err(|e| EngineError::Rule(format!("the readiness task failed: {e}")))?
    }

    /// Builds the reconciliation report of `selection`'s month.
    pub async fn billing_reconciliation(
        self: &Arc<Self>,
        selection: Selection,
    ) -> Result<ReconciliationReport, EngineError> {
        let today = self.clock.now().date_naive();
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || reconciliation(store.as_ref(), &selection, today))
            .await
            .map_err(|e| EngineError::Rule(format!("the reconciliation task failed: {e}")))?
    }

    /// Computes the firm's KPIs for `period`.
    pub async fn billing_kpis(
        self: &Arc<Self>,
        period: BillingPeriod,
    ) -> Result<kpis::Kpis, EngineError> {
        let now = self.clock.now();
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || kpis::compute(store.as_ref(), period, now))
            .await
            .map_err(|e| EngineError::Rule(format!("the KPI task failed: {e}")))?
    }

    /// Compares Steward's quantities with Odoo's on every line mirrored from Odoo.
    pub async fn compare_odoo(self: &Arc<Self>) -> Result<Vec<odoo::ComparisonRow>, EngineError> {
        let today = self.clock.now().date_naive();
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            walk::in_read(store.as_ref(), |tx| odoo::compare(tx, today))
        })
        .await
        .map_err(|e| EngineError::Rule(format!("the comparison task failed: {e}")))?
    }

    /// Stores the billing settings of the rules folder as a new version when they changed.
    pub async fn install_billing_settings(
        self: &Arc<Self>,
        settings: steward_billing::BillingSettings,
    ) -> Result<i64, EngineError> {
        let clock = Arc::clone(&self.clock);
        steward_store::write(self.store.as_ref(), move |tx| {
            install_settings(tx, &settings, clock.now())
        })
        .await
    }

    /// Drafts invoices for the ready contracts of `selection`; see [`draft`] for the rules
    /// that keep a second run from billing anything twice.
    pub async fn draft_invoices(
        self: &Arc<Self>,
        selection: Selection,
        context: CommandContext,
    ) -> Result<DraftReport, EngineError> {
        draft::draft_invoices(self, selection, context).await
    }
}

/// Checks the readiness of every contract `selection` covers.
pub fn readiness(
    store: &dyn steward_store::Store,
    selection: &Selection,
    today: NaiveDate,
) -> Result<Vec<ContractReadiness>, EngineError> {
    let (settings, overrides) =
        walk::in_read(store, |tx| Ok((stored_settings(tx)?, Overrides::read(tx)?)))?;
    walk::map_books(store, selection, &settings, &|_, books| {
        Ok(assess::assess(&books, selection.period, today, &overrides).0)
    })
}

/// Builds the reconciliation report of every contract `selection` covers.
pub fn reconciliation(
    store: &dyn steward_store::Store,
    selection: &Selection,
    today: NaiveDate,
) -> Result<ReconciliationReport, EngineError> {
    let settings = walk::in_read(store, stored_settings)?;
    let reports = walk::map_books(store, selection, &settings, &|_, books| {
        let input = books.input(selection.period.period(), today);
        Ok(steward_billing::reconcile::reconcile(&input))
    })?;
    let mut statuses = std::collections::BTreeMap::new();
    for report in &reports {
        for entry in &report.entries {
            *statuses
                .entry(entry.status.as_str().to_string())
                .or_insert(0) += 1;
        }
    }
    let reconciled = reports.iter().all(Reconciliation::is_reconciled);
    Ok(ReconciliationReport {
        period: selection.period.label(),
        contracts: reports,
        statuses,
        reconciled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_parses_a_month() {
        let period = BillingPeriod::parse("2026-02").unwrap();
        assert_eq!(period.start.to_string(), "2026-02-01");
        assert_eq!(period.end.to_string(), "2026-02-28");
        assert_eq!(period.label(), "2026-02");
    }

    #[test]
    fn period_rejects_other_forms() {
        for text in [
            "2026-13",
            "2026-1",
            "26-01",
            "2026/01",
            "november",
            "2026-11-01",
        ] {
            let error = BillingPeriod::parse(text).unwrap_err().to_string();
            assert!(error.contains("YYYY-MM"), "{text}: {error}");
        }
    }
}
