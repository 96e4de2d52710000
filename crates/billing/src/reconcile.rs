//! The reconciliation report: how each billable item of a period was billed.
//!
//! [`reconcile`] lists the items dated in the period, earlier items that still have something
//! to bill or were billed twice, and the contract lines billed by their own quantity (fixed
//! fee, retainer, prepaid block, manual). Each entry has its quantities from the
//! [`Ledger`], the documents that trace to it, and one [`Status`] with a sentence that gives
//! the reason. An item is settled when it was invoiced exactly once (net of credit notes, the
//! invoiced quantity equals the delivered one), is not billable, or is not due yet. Every
//! other status is something for finance to act on.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use steward_domain::{Kind, RecordRef};

use crate::input::{BillableItem, BillingInput, ContractLine, ItemKind, MilestoneState, Period};
use crate::issue::{Issue, IssueCode};
use crate::quantity::{Ledger, Position, SourceHistory, billed_elsewhere};
use crate::readiness::{Readiness, check_with_ledger};

/// The billing state of an entry at the end of the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Invoiced in full and no more: net of credit notes, the invoiced quantity equals the
    /// delivered quantity.
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
    /// Ready with nothing blocking it, so the next draft bills it.
    ReadyToBill,
    /// Invoiced more than delivered, net of credit notes.
    InvoicedTwice,
    /// Credit notes returned more than was invoiced when they were issued.
    OverCredited,
    /// Invoiced although not billable.
    InvoicedNotBillable,
}

impl Status {
    /// Returns the snake_case name used in JSON and in the CLI's text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Invoiced => "invoiced",
            Status::NotBillable => "not_billable",
            Status::NotDue => "not_due",
            Status::NotApproved => "not_approved",
            Status::NotAccepted => "not_accepted",
            Status::InDraft => "in_draft",
            Status::Unpriced => "unpriced",
            Status::OverCap => "over_cap",
            Status::Blocked => "blocked",
            Status::CreditedNotRebilled => "credited_not_rebilled",
            Status::ReadyToBill => "ready_to_bill",
            Status::InvoicedTwice => "invoiced_twice",
            Status::OverCredited => "over_credited",
            Status::InvoicedNotBillable => "invoiced_not_billable",
        }
    }

    /// True when nothing remains to do: invoiced once, not billable, or not due.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Status::Invoiced | Status::NotBillable | Status::NotDue
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source record and how it was billed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub source: RecordRef,
    /// The item's date, `None` for contract lines.
    pub date: Option<NaiveDate>,
    pub delivered: Decimal,
    pub invoiced: Decimal,
    pub credited: Decimal,
    /// The quantity still to bill.
    pub unbilled: Decimal,
    pub status: Status,
    /// Sentence giving the reason for the status, naming the documents or the blocker.
    pub reason: String,
    pub invoices: Vec<String>,
    pub credit_notes: Vec<String>,
    pub drafts: Vec<String>,
}

/// The report for one contract and period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reconciliation {
    pub contract: String,
    /// Number in the source system, such as the Odoo sale order number.
    pub reference: Option<String>,
    pub period: Period,
    pub entries: Vec<Entry>,
}

impl Reconciliation {
    /// Returns the entries that need attention: every status except the settled ones.
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
        let position = ledger.item_position(item);
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
        reference: input.contract.reference.clone(),
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
    if billed_elsewhere(item, history) {
        return (
            Status::Invoiced,
            "marked invoiced, with no invoice of the contract billing it: billed outside \
             Steward, such as in the system it is mirrored from; move it back to approved \
             if it was never billed"
                .to_string(),
        );
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

/// Classifies a source with nothing left to bill.
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

/// Classifies an item whose record is not ready to bill.
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

/// Classifies a ready source with something left to bill.
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
            1 => " (and 1 more reason)".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{BillingModel, DocumentState, EntryState, Installment};
    use crate::testing::{Fixture, day, source};
    use rust_decimal_macros::dec;

    fn timesheet(id: &str) -> RecordRef {
        RecordRef::new(Kind::Timesheet, id)
    }

    #[test]
    fn status_names_match_the_json() {
        let statuses = [
            Status::Invoiced,
            Status::NotBillable,
            Status::NotDue,
            Status::NotApproved,
            Status::NotAccepted,
            Status::InDraft,
            Status::Unpriced,
            Status::OverCap,
            Status::Blocked,
            Status::CreditedNotRebilled,
            Status::ReadyToBill,
            Status::InvoicedTwice,
            Status::OverCredited,
            Status::InvoicedNotBillable,
        ];
        for status in statuses {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json.as_str(), Some(status.as_str()), "{status:?}");
            assert_eq!(status.to_string(), status.as_str(), "{status:?}");
        }
    }

    fn status_of(report: &Reconciliation, source: &RecordRef) -> Status {
        report
            .entry(source)
            .unwrap_or_else(|| panic!("{source} is not in the report"))
            .status
    }

    fn firm() -> Fixture {
        let mut firm = Fixture::new("EUR");
        firm.line("tm", BillingModel::TimeAndMaterials);
        firm
    }

    #[test]
    fn invoiced_once_is_settled() {
        let mut firm = firm();
        firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
        firm.set_entry_state("t1", EntryState::Invoiced);
        firm.invoiced(
            "inv-11",
            "2026-11-30",
            dec!(240),
            vec![source(Kind::Timesheet, "t1", dec!(2))],
        );
        let report = reconcile(&firm.input());
        let entry = report.entry(&timesheet("t1")).unwrap();
        assert_eq!(entry.status, Status::Invoiced);
        assert_eq!(entry.reason, "invoiced once on inv-11");
        assert_eq!(entry.invoices, vec!["inv-11".to_string()]);
        assert!(report.is_reconciled());
    }

    #[test]
    fn waiting_items_give_their_state() {
        let mut firm = firm();
        firm.line("mn", BillingModel::Manual { delivered: dec!(0) });
        firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
        firm.set_entry_state("t1", EntryState::Submitted);
        firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(2), "tm");
        if let ItemKind::Time { billable, .. } = &mut firm.items[1].kind {
            *billable = false;
        }
        firm.time("t3", "2026-11-04", "e-bob", "Consultant", dec!(2), "mn");
        firm.milestone("m1", "2026-11-10", Some("tm"), Some(dec!(500)), None);
        firm.set_milestone_state("m1", MilestoneState::Reached);
        firm.milestone("m2", "2026-11-12", Some("tm"), Some(dec!(500)), None);
        firm.set_milestone_state("m2", MilestoneState::Planned);

        let report = reconcile(&firm.input());
        let milestone = |id: &str| RecordRef::new(Kind::Milestone, id);
        assert_eq!(status_of(&report, &timesheet("t1")), Status::NotApproved);
        assert_eq!(
            report.entry(&timesheet("t1")).unwrap().reason,
            "submitted, not approved"
        );
        assert_eq!(status_of(&report, &timesheet("t2")), Status::NotBillable);
        assert_eq!(status_of(&report, &timesheet("t3")), Status::NotBillable);
        assert_eq!(
            report.entry(&timesheet("t3")).unwrap().reason,
            "covered by the manual price of contract line mn"
        );
        assert_eq!(status_of(&report, &milestone("m1")), Status::NotAccepted);
        assert_eq!(status_of(&report, &milestone("m2")), Status::NotDue);
        let line = RecordRef::new(Kind::ContractLine, "mn");
        assert_eq!(status_of(&report, &line), Status::NotDue);
        assert_eq!(report.open_entries().count(), 2);
    }

    #[test]
    fn ready_items_explain_what_remains() {
        let mut firm = firm();
        firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
        firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(3), "tm");
        firm.time("t3", "2026-11-04", "e-bob", "Consultant", dec!(1), "tm");
        firm.time("t4", "2026-11-05", "e-bob", "Consultant", dec!(4), "tm");
        firm.invoiced(
            "inv-1",
            "2026-11-10",
            dec!(600),
            vec![
                source(Kind::Timesheet, "t2", dec!(3)),
                source(Kind::Timesheet, "t3", dec!(1)),
            ],
        );
        firm.invoiced(
            "inv-2",
            "2026-11-11",
            dec!(120),
            vec![source(Kind::Timesheet, "t3", dec!(1))],
        );
        firm.credited(
            "cn-1",
            "2026-11-12",
            dec!(-360),
            vec![source(Kind::Timesheet, "t2", dec!(3))],
        );
        firm.invoiced(
            "draft-3",
            "2026-11-30",
            dec!(480),
            vec![source(Kind::Timesheet, "t4", dec!(4))],
        );
        firm.documents[3].state = DocumentState::Draft;

        let report = reconcile(&firm.input());
        assert_eq!(status_of(&report, &timesheet("t1")), Status::ReadyToBill);
        assert_eq!(
            status_of(&report, &timesheet("t2")),
            Status::CreditedNotRebilled
        );
        assert_eq!(
            report.entry(&timesheet("t2")).unwrap().reason,
            "3 credited on cn-1 and not invoiced again; the next draft bills 3"
        );
        assert_eq!(status_of(&report, &timesheet("t3")), Status::InvoicedTwice);
        assert_eq!(
            report.entry(&timesheet("t3")).unwrap().reason,
            "invoiced 2 net of credit notes against 1 delivered, 1 too much, on inv-1, inv-2"
        );
        assert_eq!(status_of(&report, &timesheet("t4")), Status::InDraft);
        assert_eq!(report.count(Status::InvoicedTwice), 1);
        assert!(!report.is_reconciled());
    }

    #[test]
    fn gate_blockers_explain_ready_items() {
        let mut firm = firm();
        firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
        firm.time("t2", "2026-11-03", "e-cy", "Intern", dec!(1), "tm");
        firm.contract.cap = Some(dec!(100));

        let report = reconcile(&firm.input());
        assert_eq!(status_of(&report, &timesheet("t1")), Status::OverCap);
        assert!(
            report
                .entry(&timesheet("t1"))
                .unwrap()
                .reason
                .contains("over its cap of 100.00 EUR")
        );
        let unpriced = report.entry(&timesheet("t2")).unwrap();
        assert_eq!(unpriced.status, Status::Unpriced);
        assert!(
            unpriced.reason.contains("have no rate"),
            "{}",
            unpriced.reason
        );

        firm.contract.cap = None;
        firm.rules.min_invoice_amount = Some(dec!(1000));
        firm.items.pop();
        let report = reconcile(&firm.input());
        let blocked = report.entry(&timesheet("t1")).unwrap();
        assert_eq!(blocked.status, Status::Blocked);
        assert!(
            blocked
                .reason
                .starts_with("the contract's billing gate is closed: the draft's 240.00 EUR")
        );
    }

    #[test]
    fn fixed_fee_line_is_reconciled_by_installments() {
        let mut firm = firm();
        firm.line(
            "ff",
            BillingModel::FixedFee {
                schedule: vec![Installment {
                    due_on: day("2026-11-15"),
                    amount: dec!(3000),
                    description: None,
                }],
            },
        );
        let line = RecordRef::new(Kind::ContractLine, "ff");
        let report = reconcile(&firm.input());
        assert_eq!(status_of(&report, &line), Status::ReadyToBill);

        firm.invoiced(
            "inv-11",
            "2026-11-30",
            dec!(3000),
            vec![source(Kind::ContractLine, "ff", dec!(1))],
        );
        let report = reconcile(&firm.input());
        assert_eq!(status_of(&report, &line), Status::Invoiced);
        assert!(report.is_reconciled());
    }

    #[test]
    fn earlier_items_appear_only_while_open() {
        let mut firm = firm();
        firm.time("t1", "2026-10-02", "e-bob", "Consultant", dec!(2), "tm");
        firm.time("t2", "2026-10-03", "e-bob", "Consultant", dec!(1), "tm");
        firm.invoiced(
            "inv-10",
            "2026-10-31",
            dec!(240),
            vec![source(Kind::Timesheet, "t1", dec!(2))],
        );
        let report = reconcile(&firm.input());
        assert!(report.entry(&timesheet("t1")).is_none());
        assert_eq!(status_of(&report, &timesheet("t2")), Status::ReadyToBill);
    }
}
