//! The reconciliation report: how each billable item of a period was billed.
//!
//! [`reconcile`] lists the items dated in the period, earlier items that still have something
//! to bill or were billed twice, and the contract lines billed by their own quantity (fixed
//! fee, retainer, prepaid block, manual). Each entry has its quantities from the
//! [`Ledger`], the documents that trace to it, and one [`Status`] with a sentence that says
//! why. An item is settled when it was invoiced exactly once (net of credit notes, the
//! invoiced quantity equals the delivered one), is not billable, or is not due yet. Every
//! other status is something for finance to act on.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use steward_domain::{Kind, RecordRef};

use crate::input::{BillableItem, BillingInput, ContractLine, ItemKind, MilestoneState, Period};
use crate::issue::{Issue, IssueCode};
use crate::quantity::{Ledger, Position, SourceHistory};
use crate::readiness::{Readiness, check_with_ledger};

/// How an item stands at the end of the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Invoiced exactly once, net of credit notes.
    Invoiced,
    /// Marked not billable, or covered by the fixed price of its contract line.
    NotBillable,
    /// Nothing due yet: a planned milestone, or no installment or period started.
    NotDue,
    /// Time or an expense still a draft, submitted or rejected.
    NotApproved,
    /// A milestone reached but not accepted.
    NotAccepted,
    /// On a draft invoice that is not released yet.
    InDraft,
    /// Ready, but cannot be priced: no rate, no contract line, another currency.
    Unpriced,
    /// Ready, but the contract's cap has no headroom for the draft.
    OverCap,
    /// Ready, but the contract's billing gate is closed for another reason.
    Blocked,
    /// Credited, billable again, and not invoiced again yet.
    CreditedNotRebilled,
    /// Ready and nothing blocks it; the next draft bills it.
    ReadyToBill,
    /// Invoiced more than delivered, net of credit notes.
    InvoicedTwice,
    /// Credit notes returned more than was invoiced when they were issued.
    OverCredited,
    /// Invoiced although not billable.
    InvoicedNotBillable,
}

impl Status {
    /// True when nothing remains to do: invoiced once, not billable, or not due.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Status::Invoiced | Status::NotBillable | Status::NotDue
        )
    }
}

/// One source record and how it was billed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub source: RecordRef,
    /// The item's date; `None` for contract lines.
    pub date: Option<NaiveDate>,
    pub delivered: Decimal,
    pub invoiced: Decimal,
    pub credited: Decimal,
    /// The quantity still to bill.
    pub unbilled: Decimal,
    pub status: Status,
    /// Why the entry has its status, naming the documents or the blocking reason.
    pub reason: String,
    pub invoices: Vec<String>,
    pub credit_notes: Vec<String>,
    pub drafts: Vec<String>,
}

/// The report for one contract and period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reconciliation {
    pub contract: String,
    pub period: Period,
    pub entries: Vec<Entry>,
}

impl Reconciliation {
    /// The entries that need attention: every status except the settled ones.
    pub fn open_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.status.is_settled())
    }

    /// True when every entry is settled.
    pub fn is_reconciled(&self) -> bool {
        self.open_entries().next().is_none()
    }

    pub fn count(&self, status: Status) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }

    pub fn entry(&self, source: &RecordRef) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.source == source)
    }
}

/// Builds the reconciliation report for the contract and period of `input`.
pub fn reconcile(input: &BillingInput) -> Reconciliation {
    let ledger = Ledger::from_documents(input.documents);
    let gate = check_with_ledger(input, &ledger, None);
    let period = input.period;
    let mut entries = Vec::new();

    for item in input.items {
        if item.date > period.end() {
            continue;
        }
        let record = item.record();
        let position = ledger.position(&record, item.delivered());
        let earlier_and_settled = item.date < period.start()
            && position.billable().is_zero()
            && position.over_invoiced().is_zero();
        if earlier_and_settled {
            continue;
        }
        let history = ledger.history(&record);
        let (status, reason) = item_status(input, &gate, item, &position, history);
        entries.push(entry(
            record,
            Some(item.date),
            position,
            history,
            status,
            reason,
        ));
    }

    for line in input.lines {
        let Some(delivered) = line.own_delivered(period.end()) else {
            continue;
        };
        let record = line.record();
        let position = ledger.position(&record, delivered);
        let history = ledger.history(&record);
        let (status, reason) = line_status(input, &gate, line, &position, history);
        entries.push(entry(record, None, position, history, status, reason));
    }

    Reconciliation {
        contract: input.contract.id.clone(),
        period,
        entries,
    }
}

fn entry(
    source: RecordRef,
    date: Option<NaiveDate>,
    position: Position,
    history: Option<&SourceHistory>,
    status: Status,
    reason: String,
) -> Entry {
    let documents = |pick: fn(&SourceHistory) -> &Vec<String>| {
        history.map(|h| pick(h).clone()).unwrap_or_default()
    };
    Entry {
        source,
        date,
        delivered: position.delivered,
        invoiced: position.invoiced,
        credited: position.credited,
        unbilled: position.billable(),
        status,
        reason,
        invoices: documents(|h| &h.invoices),
        credit_notes: documents(|h| &h.credit_notes),
        drafts: documents(|h| &h.drafts),
    }
}

fn item_status(
    input: &BillingInput,
    gate: &Readiness,
    item: &BillableItem,
    position: &Position,
    history: Option<&SourceHistory>,
) -> (Status, String) {
    if let Some(twice) = over_invoiced(position, history) {
        return twice;
    }
    let covering_line = match &item.kind {
        ItemKind::Time { .. } => item
            .contract_line
            .as_deref()
            .and_then(|id| input.lines.iter().find(|line| line.id == id))
            .filter(|line| !line.bills_time()),
        _ => None,
    };
    let not_billable = if !item.is_billable() {
        Some("marked not billable".to_string())
    } else {
        covering_line.map(|line| {
            format!(
                "covered by the {} price of contract line {}",
                line.model.name(),
                line.id
            )
        })
    };
    if let Some(why) = not_billable {
        if position.net_invoiced() > Decimal::ZERO {
            let on = documents(history, |h| &h.invoices);
            return (
                Status::InvoicedNotBillable,
                format!("{why}, yet invoiced on {on}"),
            );
        }
        return (Status::NotBillable, why);
    }
    if position.billable().is_zero() {
        return settled(position, history);
    }
    if !item.is_ready() {
        return waiting(item);
    }
    open_status(gate, &item.record(), position, history)
}

fn line_status(
    input: &BillingInput,
    gate: &Readiness,
    line: &ContractLine,
    position: &Position,
    history: Option<&SourceHistory>,
) -> (Status, String) {
    if let Some(twice) = over_invoiced(position, history) {
        return twice;
    }
    if position.billable().is_zero() {
        if position.delivered <= Decimal::ZERO {
            let end = input.period.end();
            return (
                Status::NotDue,
                format!("nothing of this {} line is due by {end}", line.model.name()),
            );
        }
        return settled(position, history);
    }
    open_status(gate, &line.record(), position, history)
}

fn over_invoiced(position: &Position, history: Option<&SourceHistory>) -> Option<(Status, String)> {
    let excess = position.over_invoiced();
    if excess.is_zero() {
        return None;
    }
    Some((
        Status::InvoicedTwice,
        format!(
            "invoiced {} net of credit notes against {} delivered, {} too much, on {}",
            position.net_invoiced().normalize(),
            position.delivered.normalize(),
            excess.normalize(),
            documents(history, |h| &h.invoices)
        ),
    ))
}

/// The status of a source with nothing left to bill.
fn settled(position: &Position, history: Option<&SourceHistory>) -> (Status, String) {
    if position.over_credited > Decimal::ZERO {
        return (
            Status::OverCredited,
            format!(
                "credit notes {} returned {} more than was invoiced when they were issued",
                documents(history, |h| &h.credit_notes),
                position.over_credited.normalize()
            ),
        );
    }
    if position.delivered <= Decimal::ZERO {
        return (Status::NotBillable, "nothing delivered".to_string());
    }
    (
        Status::Invoiced,
        format!("invoiced once on {}", documents(history, |h| &h.invoices)),
    )
}

/// The status of an item whose record is not ready to bill.
fn waiting(item: &BillableItem) -> (Status, String) {
    match &item.kind {
        ItemKind::Milestone {
            state: MilestoneState::Planned,
            ..
        } => (Status::NotDue, "planned, not reached yet".to_string()),
        ItemKind::Milestone { .. } => (
            Status::NotAccepted,
            format!("reached on {} but not accepted by the client", item.date),
        ),
        ItemKind::Time { .. } | ItemKind::Expense { .. } => (
            Status::NotApproved,
            format!("{}, not approved", item.state_name()),
        ),
    }
}

/// The status of a ready source with something left to bill.
fn open_status(
    gate: &Readiness,
    record: &RecordRef,
    position: &Position,
    history: Option<&SourceHistory>,
) -> (Status, String) {
    let unbilled = position.billable().normalize();
    let credited = if position.credited > Decimal::ZERO {
        format!(
            "; {} was credited on {}",
            position.credited.normalize(),
            documents(history, |h| &h.credit_notes)
        )
    } else {
        String::new()
    };
    if let Some(drafts) = history.filter(|h| !h.drafts.is_empty()) {
        return (
            Status::InDraft,
            format!(
                "{unbilled} on draft invoice {}, not released yet",
                drafts.drafts.join(", ")
            ),
        );
    }
    if let Some(issue) = gate.blockers.iter().find(|i| prices_out(i, record)) {
        return (Status::Unpriced, issue.to_string());
    }
    if let Some(cap) = gate
        .blockers
        .iter()
        .find(|i| i.code == IssueCode::CapExceeded)
    {
        return (Status::OverCap, format!("{}{credited}", cap.message));
    }
    if let Some(first) = gate.blockers.first() {
        let more = match gate.blockers.len() - 1 {
            0 => String::new(),
            others => format!(" (and {others} more reasons)"),
        };
        return (
            Status::Blocked,
            format!(
                "the contract's billing gate is closed: {}{more}{credited}",
                first.message
            ),
        );
    }
    if position.credited > Decimal::ZERO {
        return (
            Status::CreditedNotRebilled,
            format!(
                "{} credited on {} and not invoiced again; the next draft bills {unbilled}",
                position.credited.normalize(),
                documents(history, |h| &h.credit_notes)
            ),
        );
    }
    (
        Status::ReadyToBill,
        format!("ready; the next draft bills {unbilled}"),
    )
}

/// True when `issue` keeps `record` from being priced. An issue about a contract line's
/// entries also names the line, so a line counts only when the issue names it alone.
fn prices_out(issue: &Issue, record: &RecordRef) -> bool {
    let pricing = matches!(
        issue.code,
        IssueCode::MissingRate
            | IssueCode::MissingContractLine
            | IssueCode::UnknownContractLine
            | IssueCode::CurrencyMismatch
            | IssueCode::IncompleteLine
            | IssueCode::InvalidAmount
    );
    let alone = record.kind != Kind::ContractLine || issue.records.len() == 1;
    pricing && alone && issue.concerns(record)
}

fn documents(history: Option<&SourceHistory>, pick: fn(&SourceHistory) -> &Vec<String>) -> String {
    match history.map(pick) {
        Some(ids) if !ids.is_empty() => ids.join(", "),
        _ => "no document".to_string(),
    }
}
