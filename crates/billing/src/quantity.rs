//! The billable-quantity ledger: how much of each source record is still to bill.
//!
//! A source is a record an invoice line bills: a timesheet entry (in hours), an expense or a
//! milestone (1 for the whole record). A contract line is a source too when its own quantity
//! is billed: fixed-fee installments, retainer periods, a prepaid block's hours, manual
//! quantities.
//! For each source the ledger sums, over the contract's issued documents:
//!
//! - **invoiced**: the quantities that released or paid invoices' lines trace to it;
//! - **credited**: the quantities that released or paid credit notes' lines trace to it.
//!
//! The quantity still to bill is `delivered − invoiced + credited`, kept between zero and the
//! delivered quantity. A credit note returns hours to be billed again, so it never blocks a
//! genuine remainder. It can only return what was billed before it: credit notes are matched
//! against invoices in issue-date order, and any quantity beyond what is outstanding at that
//! point is kept apart as over-credited instead of being made billable. So the same hours are
//! never billed twice, even when two credit notes reverse the same invoice.
//!
//! A credit note that gives money back without returning hours, such as a goodwill discount
//! or a write-off, should trace no quantities, so that the hours stay billed.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use steward_domain::{Kind, RecordRef};

use crate::input::{BillableItem, BillingDocument, MoveType};

/// One record an invoice line bills, as stored in `INVOICE_LINE.sources`:
/// `{"kind": "timesheet", "id": "…", "quantity": "4.5"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    pub kind: Kind,
    pub id: String,
    /// Quantity in the source's own unit: hours for a timesheet entry, 1 for a whole expense,
    /// milestone, installment or retainer period, the line's unit for other contract-line
    /// quantities. On a credit note it may be written with either sign.
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
}

impl Source {
    pub fn new(record: RecordRef, quantity: Decimal) -> Source {
        Source {
            kind: record.kind,
            id: record.id,
            quantity,
        }
    }

    pub fn record(&self) -> RecordRef {
        RecordRef::new(self.kind, self.id.clone())
    }
}

/// Returns true for an item marked `invoiced` that no document of the contract traces to.
pub fn billed_elsewhere(item: &BillableItem, history: Option<&SourceHistory>) -> bool {
    item.state_name() == "invoiced" && history.is_none()
}

/// Quantities and documents of the contract that trace to one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceHistory {
    /// Sum over issued invoices.
    pub invoiced: Decimal,
    /// Sum over issued credit notes, up to what was outstanding when each was issued.
    pub credited: Decimal,
    /// Credited quantity beyond what was outstanding, which does not make anything billable.
    pub over_credited: Decimal,
    /// Ids of issued invoices tracing to the source, in ledger order.
    pub invoices: Vec<String>,
    /// Ids of issued credit notes tracing to the source, in ledger order.
    pub credit_notes: Vec<String>,
    /// Ids of draft or pending invoices tracing to the source, which count for nothing yet.
    pub drafts: Vec<String>,
}

/// The state of one source: delivered, invoiced and credited quantities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub delivered: Decimal,
    pub invoiced: Decimal,
    pub credited: Decimal,
    pub over_credited: Decimal,
}

impl Position {
    /// Returns the quantity still to bill: `delivered − invoiced + credited`, at least zero and
    /// at most the delivered quantity.
    pub fn billable(&self) -> Decimal {
        let delivered = self.delivered.max(Decimal::ZERO);
        let remainder = self.delivered - self.invoiced + self.credited;
        remainder.max(Decimal::ZERO).min(delivered)
    }

    /// Returns the quantity billed beyond what was delivered, net of credits. It is positive for
    /// a source invoiced twice, or whose delivered quantity shrank after invoicing.
    pub fn over_invoiced(&self) -> Decimal {
        (self.invoiced - self.credited - self.delivered).max(Decimal::ZERO)
    }

    /// Returns the quantity billed net of credits.
    pub fn net_invoiced(&self) -> Decimal {
        self.invoiced - self.credited
    }
}

/// Invoiced and credited quantities per source, over one contract's documents.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    histories: HashMap<RecordRef, SourceHistory>,
}

impl Ledger {
    /// Sums the sources of issued documents. Credit notes are matched in issue-date order
    /// (documents without a date last, then input order), each returning at most what its
    /// source had outstanding. Drafts are only listed and cancelled documents ignored.
    pub fn from_documents(documents: &[BillingDocument]) -> Ledger {
        let mut ordered: Vec<&BillingDocument> = documents.iter().collect();
        ordered.sort_by_key(|d| (d.issue_date.is_none(), d.issue_date));

        let mut histories: HashMap<RecordRef, SourceHistory> = HashMap::new();
        for document in ordered {
            for source in &document.sources {
                let history = histories.entry(source.record()).or_default();
                if document.state.is_draft() {
                    push_once(&mut history.drafts, &document.id);
                    continue;
                }
                if !document.state.is_issued() {
                    continue;
                }
                match document.move_type {
                    MoveType::Invoice => {
                        history.invoiced += source.quantity;
                        push_once(&mut history.invoices, &document.id);
                    }
                    MoveType::CreditNote => {
                        let requested = source.quantity.abs();
                        let outstanding = (history.invoiced - history.credited).max(Decimal::ZERO);
                        let applied = requested.min(outstanding);
                        history.credited += applied;
                        history.over_credited += requested - applied;
                        push_once(&mut history.credit_notes, &document.id);
                    }
                }
            }
        }
        Ledger { histories }
    }

    /// Computes the position of a billable item. An item in state `invoiced` that no document
    /// of the contract traces to was billed outside Steward, such as by the system it is
    /// mirrored from, so its whole delivered quantity counts as invoiced and is not billed again.
    pub fn item_position(&self, item: &BillableItem) -> Position {
        let record = item.record();
        let position = self.position(&record, item.delivered());
        if billed_elsewhere(item, self.history(&record)) {
            return Position {
                invoiced: position.delivered.max(Decimal::ZERO),
                ..position
            };
        }
        position
    }

    /// Computes the position of `source` given its delivered quantity. A source that no
    /// document traces to has nothing invoiced or credited.
    pub fn position(&self, source: &RecordRef, delivered: Decimal) -> Position {
        match self.histories.get(source) {
            Some(history) => Position {
                delivered,
                invoiced: history.invoiced,
                credited: history.credited,
                over_credited: history.over_credited,
            },
            None => Position {
                delivered,
                ..Position::default()
            },
        }
    }

    /// Returns the documents that trace to `source`, if any.
    pub fn history(&self, source: &RecordRef) -> Option<&SourceHistory> {
        self.histories.get(source)
    }
}

fn push_once(ids: &mut Vec<String>, id: &str) {
    if !ids.iter().any(|known| known == id) {
        ids.push(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::DocumentState;
    use chrono::NaiveDate;
    use rust_decimal_macros::dec;

    fn timesheet(id: &str) -> RecordRef {
        RecordRef::new(Kind::Timesheet, id)
    }

    fn document(
        id: &str,
        move_type: MoveType,
        state: DocumentState,
        date: &str,
        sources: &[(&RecordRef, Decimal)],
    ) -> BillingDocument {
        BillingDocument {
            id: id.into(),
            move_type,
            state,
            issue_date: Some(date.parse::<NaiveDate>().unwrap()),
            untaxed: Decimal::ZERO,
            purchase_order: None,
            sources: sources
                .iter()
                .map(|(record, quantity)| Source::new((*record).clone(), *quantity))
                .collect(),
        }
    }

    fn invoice(id: &str, date: &str, sources: &[(&RecordRef, Decimal)]) -> BillingDocument {
        document(
            id,
            MoveType::Invoice,
            DocumentState::Released,
            date,
            sources,
        )
    }

    fn credit_note(id: &str, date: &str, sources: &[(&RecordRef, Decimal)]) -> BillingDocument {
        document(
            id,
            MoveType::CreditNote,
            DocumentState::Released,
            date,
            sources,
        )
    }

    fn billable(ledger: &Ledger, deliveries: &[(&RecordRef, Decimal)]) -> Decimal {
        deliveries
            .iter()
            .map(|(record, delivered)| ledger.position(record, *delivered).billable())
            .sum()
    }

    #[test]
    fn credited_hours_are_billed_again_once() {
        let (first, second, third) = (timesheet("t1"), timesheet("t2"), timesheet("t3"));
        let mut documents = vec![invoice(
            "inv-1",
            "2026-10-31",
            &[(&first, dec!(4.5)), (&second, dec!(3.5))],
        )];
        documents.push(credit_note("cn-1", "2026-11-05", &[(&second, dec!(-3.5))]));
        let ledger = Ledger::from_documents(&documents);
        let deliveries = [(&first, dec!(4.5)), (&second, dec!(3.5)), (&third, dec!(1))];
        assert_eq!(billable(&ledger, &deliveries), dec!(4.5));
        assert_eq!(ledger.position(&first, dec!(4.5)).billable(), dec!(0));
        assert_eq!(ledger.position(&second, dec!(3.5)).billable(), dec!(3.5));

        documents.push(invoice(
            "inv-2",
            "2026-11-30",
            &[(&second, dec!(3.5)), (&third, dec!(1))],
        ));
        let ledger = Ledger::from_documents(&documents);
        assert_eq!(
            billable(&ledger, &deliveries),
            dec!(0),
            "after the second invoice nothing is left to bill"
        );
    }

    #[test]
    fn partial_invoice_leaves_the_remainder() {
        let line = RecordRef::new(Kind::ContractLine, "l1");
        let ledger = Ledger::from_documents(&[invoice("inv-1", "2026-10-31", &[(&line, dec!(5))])]);
        let position = ledger.position(&line, dec!(8));
        assert_eq!(position.billable(), dec!(3));

        let ledger = Ledger::from_documents(&[
            invoice("inv-1", "2026-10-31", &[(&line, dec!(5))]),
            invoice("inv-2", "2026-11-30", &[(&line, dec!(3))]),
        ]);
        assert_eq!(ledger.position(&line, dec!(8)).billable(), dec!(0));
    }

    #[test]
    fn duplicate_credit_notes_return_hours_once() {
        let entry = timesheet("t1");
        let documents = vec![
            invoice("inv-1", "2026-10-31", &[(&entry, dec!(6))]),
            credit_note("cn-1", "2026-11-02", &[(&entry, dec!(6))]),
            credit_note("cn-2", "2026-11-03", &[(&entry, dec!(6))]),
            invoice("inv-2", "2026-11-30", &[(&entry, dec!(6))]),
        ];
        let ledger = Ledger::from_documents(&documents);
        let position = ledger.position(&entry, dec!(6));
        assert_eq!(position.credited, dec!(6));
        assert_eq!(position.over_credited, dec!(6));
        assert_eq!(
            position.billable(),
            dec!(0),
            "the second credit note must not reopen hours already billed again"
        );
    }

    #[test]
    fn credit_before_invoice_returns_nothing() {
        let entry = timesheet("t1");
        let documents = vec![
            invoice("inv-1", "2026-11-30", &[(&entry, dec!(2))]),
            credit_note("cn-1", "2026-11-01", &[(&entry, dec!(2))]),
        ];
        let ledger = Ledger::from_documents(&documents);
        let position = ledger.position(&entry, dec!(2));
        assert_eq!(position.credited, dec!(0));
        assert_eq!(position.over_credited, dec!(2));
        assert_eq!(position.billable(), dec!(0));
    }

    #[test]
    fn billable_stays_within_delivered() {
        let entry = timesheet("t1");
        let ledger =
            Ledger::from_documents(&[invoice("inv-1", "2026-10-31", &[(&entry, dec!(8))])]);
        let shrunk = ledger.position(&entry, dec!(6));
        assert_eq!(shrunk.billable(), dec!(0), "never below zero");
        assert_eq!(shrunk.over_invoiced(), dec!(2));
        let fresh = Ledger::default().position(&entry, dec!(3));
        assert_eq!(fresh.billable(), dec!(3), "never above delivered");
        let negative = Ledger::default().position(&entry, dec!(-1));
        assert_eq!(negative.billable(), dec!(0));
    }

    #[test]
    fn drafts_and_cancelled_documents_bill_nothing() {
        let entry = timesheet("t1");
        let documents = vec![
            document(
                "draft-1",
                MoveType::Invoice,
                DocumentState::Draft,
                "2026-11-30",
                &[(&entry, dec!(4))],
            ),
            document(
                "void-1",
                MoveType::Invoice,
                DocumentState::Cancelled,
                "2026-11-30",
                &[(&entry, dec!(4))],
            ),
        ];
        let ledger = Ledger::from_documents(&documents);
        assert_eq!(ledger.position(&entry, dec!(4)).billable(), dec!(4));
        let history = ledger.history(&entry).unwrap();
        assert_eq!(history.drafts, vec!["draft-1".to_string()]);
        assert!(history.invoices.is_empty());
    }

    #[test]
    fn source_serializes_like_invoice_line_sources() {
        let source = Source::new(timesheet("t1"), dec!(4.5));
        let json = serde_json::to_value(&source).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "timesheet", "id": "t1", "quantity": "4.5"})
        );
        let back: Source = serde_json::from_value(json).unwrap();
        assert_eq!(back, source);
    }
}
