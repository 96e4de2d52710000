//! The plain data billing reads: one contract with its lines and client, the billable items, and
//! the invoices and credit notes already written, gathered by the caller for one billing period.

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use steward_domain::{Currency, Kind, Money, RecordRef};

use crate::issue::InputError;
use crate::quantity::Source;
use crate::rates::RateCard;
use crate::rules::BillingRules;
use crate::tax::TaxTable;

/// A billing period from `start` to `end`, both days included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Period {
    start: NaiveDate,
    end: NaiveDate,
}

impl Period {
    /// Builds a period, rejecting one that ends before it starts.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, InputError> {
        if end < start {
            return Err(InputError::new(
                "billing period",
                format!("it ends on {end}, before it starts on {start}; swap the two dates"),
            ));
        }
        Ok(Period { start, end })
    }

    pub fn start(self) -> NaiveDate {
        self.start
    }

    pub fn end(self) -> NaiveDate {
        self.end
    }

    pub fn contains(self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.start, self.end)
    }
}

/// Everything billing needs about one contract and one period. Every function of this crate
/// that drafts, gates or reconciles takes this struct.
#[derive(Clone, Copy, Debug)]
pub struct BillingInput<'a> {
    pub contract: &'a Contract,
    pub lines: &'a [ContractLine],
    pub client: &'a Client,
    pub period: Period,
    /// The day the invoice would be issued, checked against the purchase order's validity.
    pub issue_date: NaiveDate,
    /// Time, expenses and milestones of the contract up to the period's end, in any state.
    /// Items from earlier periods that still have a quantity to bill, such as credited hours,
    /// belong here too: the draft bills every ready item dated on or before the period's end.
    pub items: &'a [BillableItem],
    /// The contract's invoices and credit notes in any state. Only released and paid ones
    /// count as billed. Drafts are reported and cancelled ones ignored.
    pub documents: &'a [BillingDocument],
    pub taxes: &'a TaxTable,
    /// The client's billing rules, merged with the contract's.
    pub rules: &'a BillingRules,
}

/// The contract terms billing reads. Amounts are in the contract's currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    pub id: String,
    /// Number in the source system, such as the Odoo sale order number `S00004`.
    pub reference: Option<String>,
    /// First day of the contract's work, when known.
    pub start_date: Option<NaiveDate>,
    pub currency: Currency,
    pub rate_card: RateCard,
    /// Not-to-exceed amount before tax, over every invoice of the contract net of credit notes.
    pub cap: Option<Decimal>,
    pub purchase_order: Option<PurchaseOrder>,
}

impl Contract {
    pub fn record(&self) -> RecordRef {
        RecordRef::new(Kind::Contract, self.id.clone())
    }

    /// Returns how messages name the contract: its reference followed by its id in
    /// parentheses, or its id alone.
    pub fn label(&self) -> String {
        match &self.reference {
            Some(reference) => format!("{reference} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

/// The client's purchase order that invoices are billed against.
#[derive(Clone, Debug, PartialEq)]
pub struct PurchaseOrder {
    pub number: String,
    /// Amount before tax, consumed by the documents that name this number.
    pub amount: Option<Decimal>,
    /// Last day an invoice may be issued against it.
    pub valid_until: Option<NaiveDate>,
}

/// The billed client, as far as taxes are concerned.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    pub id: String,
    /// ISO 3166-1 alpha-2 code of the billing address, such as `DE`.
    pub country: Option<String>,
    /// True for an organisation, which can account for VAT under the reverse charge.
    pub is_business: bool,
}

/// One sold service of the contract. Amounts are in the contract's currency.
#[derive(Clone, Debug, PartialEq)]
pub struct ContractLine {
    pub id: String,
    pub name: String,
    pub model: BillingModel,
    /// Quantity ordered. For prepaid hours it is the size of the block in hours.
    pub quantity: Option<Decimal>,
    /// Unit of measure written on invoice lines, such as `Hours`.
    pub unit: Option<String>,
    /// Price per unit: the fallback hourly rate of time and materials, the price per period
    /// of a retainer, the price per hour of a prepaid block, the price of a manual unit.
    pub unit_price: Option<Decimal>,
    /// Discount in percent applied to every invoice line drawn from this contract line.
    pub discount: Decimal,
    /// Tax rate in percent. When set, it is used instead of the tax table.
    pub tax_rate: Option<Decimal>,
    /// Service category looked up in the tax table, [`crate::tax::DEFAULT_CATEGORY`] when unset.
    pub tax_category: Option<String>,
    pub service: Option<String>,
}

impl ContractLine {
    /// Builds a line with no price, no discount and no tax settings.
    pub fn new(id: impl Into<String>, name: impl Into<String>, model: BillingModel) -> Self {
        ContractLine {
            id: id.into(),
            name: name.into(),
            model,
            quantity: None,
            unit: None,
            unit_price: None,
            discount: Decimal::ZERO,
            tax_rate: None,
            tax_category: None,
            service: None,
        }
    }

    pub fn record(&self) -> RecordRef {
        RecordRef::new(Kind::ContractLine, self.id.clone())
    }

    /// Returns the quantity delivered on the line itself by `day`, for the models that bill the
    /// line rather than time or milestones. That is the number of installments due (fixed
    /// fee) or periods started (retainer), the block's hours (prepaid hours, when the block
    /// has a price) or the manual quantity. It is `None` for the other models.
    pub fn own_delivered(&self, day: NaiveDate) -> Option<Decimal> {
        match &self.model {
            BillingModel::FixedFee { schedule } => {
                let due = schedule.iter().filter(|i| i.due_on <= day).count();
                Some(Decimal::from(due))
            }
            BillingModel::Retainer {
                starts_on,
                ends_on,
                cadence,
            } => {
                let starts = cadence.period_starts(*starts_on, *ends_on, day);
                Some(Decimal::from(starts.len()))
            }
            BillingModel::PrepaidHours { .. } => {
                self.unit_price?;
                Some(self.quantity.unwrap_or_default())
            }
            BillingModel::Manual { delivered } => Some(*delivered),
            BillingModel::TimeAndMaterials | BillingModel::Milestone => None,
        }
    }

    /// True when time on this line is billed by the hour, as opposed to being covered by a
    /// fixed price.
    pub fn bills_time(&self) -> bool {
        matches!(
            self.model,
            BillingModel::TimeAndMaterials | BillingModel::PrepaidHours { .. }
        )
    }
}

/// Billing model of a contract line, with the terms the model needs.
#[derive(Clone, Debug, PartialEq)]
pub enum BillingModel {
    /// Approved hours times the rate from the rate card or the line's unit price.
    TimeAndMaterials,
    /// Fixed amounts billed as each installment of the schedule falls due.
    FixedFee { schedule: Vec<Installment> },
    /// Milestones billed once the client accepted them. The line only prices percentages.
    Milestone,
    /// The line's unit price billed once per period, in advance: a period is billable once
    /// it has started. `ends_on` is the last day a period may start.
    Retainer {
        starts_on: NaiveDate,
        ends_on: Option<NaiveDate>,
        cadence: Cadence,
    },
    /// A block of `quantity` hours, billed up front at the unit price per hour when the line
    /// has one. Time draws the block down at no charge, and hours beyond it are billed at
    /// `overage_rate`. `drawn_before` is the hours earlier invoices drew from the block.
    PrepaidHours {
        overage_rate: Option<Decimal>,
        drawn_before: Decimal,
    },
    /// A quantity delivered, entered by hand, billed at the unit price.
    Manual { delivered: Decimal },
}

impl BillingModel {
    /// Returns the name used by contract line records, such as `time_and_materials`.
    pub fn name(&self) -> &'static str {
        match self {
            BillingModel::TimeAndMaterials => "time_and_materials",
            BillingModel::FixedFee { .. } => "fixed_fee",
            BillingModel::Milestone => "milestone",
            BillingModel::Retainer { .. } => "retainer",
            BillingModel::PrepaidHours { .. } => "prepaid_hours",
            BillingModel::Manual { .. } => "manual",
        }
    }
}

/// One amount of a fixed-fee schedule, billable from its due date on.
#[derive(Clone, Debug, PartialEq)]
pub struct Installment {
    pub due_on: NaiveDate,
    pub amount: Decimal,
    /// Text for the invoice line. When unset, the line's name and the due date are used.
    pub description: Option<String>,
}

/// How often a retainer bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

impl Cadence {
    /// Computes the start of period `index`, counted from `first`. Months are added to `first`
    /// itself, so a retainer starting on the 31st bills on the last day of shorter months.
    fn period_start(self, first: NaiveDate, index: u32) -> Option<NaiveDate> {
        match self {
            Cadence::Weekly => first.checked_add_days(chrono::Days::new(7 * u64::from(index))),
            Cadence::Monthly => first.checked_add_months(Months::new(index)),
            Cadence::Quarterly => first.checked_add_months(Months::new(3 * index)),
            Cadence::Yearly => first.checked_add_months(Months::new(12 * index)),
        }
    }

    /// Lists the start of every period that begins by `day`, and by `last_start` when set.
    pub(crate) fn period_starts(
        self,
        first: NaiveDate,
        last_start: Option<NaiveDate>,
        day: NaiveDate,
    ) -> Vec<NaiveDate> {
        let until = last_start.map_or(day, |last| last.min(day));
        let mut starts = Vec::new();
        let mut index = 0;
        while let Some(start) = self.period_start(first, index) {
            if start > until {
                break;
            }
            starts.push(start);
            index += 1;
        }
        starts
    }

    /// Computes the last day of period `index`.
    pub(crate) fn period_end(self, first: NaiveDate, index: u32) -> Option<NaiveDate> {
        self.period_start(first, index + 1)?.pred_opt()
    }
}

/// A timesheet entry, expense or milestone that may be billed.
#[derive(Clone, Debug, PartialEq)]
pub struct BillableItem {
    pub id: String,
    /// Day worked, day of the expense, or day the milestone was accepted (reached when not
    /// accepted yet).
    pub date: NaiveDate,
    pub contract_line: Option<String>,
    pub project: Option<String>,
    pub description: Option<String>,
    pub kind: ItemKind,
}

/// Kind of work an item delivered, with the state of its record.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    Time {
        employee: String,
        /// Billing role looked up in the rate card.
        role: Option<String>,
        hours: Decimal,
        billable: bool,
        state: EntryState,
    },
    Expense {
        category: String,
        /// Amount paid, rebilled as recorded (taxes included).
        amount: Money,
        billable: bool,
        state: EntryState,
    },
    Milestone {
        /// Fixed amount billed on acceptance.
        amount: Option<Money>,
        /// Share of the contract line's total (quantity times unit price), in percent. Used
        /// when `amount` is unset.
        percentage: Option<Decimal>,
        state: MilestoneState,
    },
}

impl BillableItem {
    pub fn record(&self) -> RecordRef {
        let kind = match self.kind {
            ItemKind::Time { .. } => Kind::Timesheet,
            ItemKind::Expense { .. } => Kind::Expense,
            ItemKind::Milestone { .. } => Kind::Milestone,
        };
        RecordRef::new(kind, self.id.clone())
    }

    /// Returns the quantity delivered in the source's unit: hours for time, 1 for a whole
    /// expense or milestone.
    pub fn delivered(&self) -> Decimal {
        match &self.kind {
            ItemKind::Time { hours, .. } => *hours,
            ItemKind::Expense { .. } | ItemKind::Milestone { .. } => Decimal::ONE,
        }
    }

    /// False when the record is marked not billable. Milestones are always billable.
    pub fn is_billable(&self) -> bool {
        match &self.kind {
            ItemKind::Time { billable, .. } | ItemKind::Expense { billable, .. } => *billable,
            ItemKind::Milestone { .. } => true,
        }
    }

    /// True when the record's state allows billing: approved time and expenses, accepted
    /// milestones, and records already invoiced (a credit note may have returned them).
    pub fn is_ready(&self) -> bool {
        match &self.kind {
            ItemKind::Time { state, .. } | ItemKind::Expense { state, .. } => {
                matches!(state, EntryState::Approved | EntryState::Invoiced)
            }
            ItemKind::Milestone { state, .. } => {
                matches!(state, MilestoneState::Accepted | MilestoneState::Invoiced)
            }
        }
    }

    /// Returns the state of the item's record, as its record kind names it.
    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            ItemKind::Time { state, .. } | ItemKind::Expense { state, .. } => state.as_str(),
            ItemKind::Milestone { state, .. } => state.as_str(),
        }
    }
}

/// States of timesheet entries and expenses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Invoiced,
}

impl EntryState {
    pub fn parse(state: &str) -> Option<EntryState> {
        match state {
            "draft" => Some(EntryState::Draft),
            "submitted" => Some(EntryState::Submitted),
            "approved" => Some(EntryState::Approved),
            "rejected" => Some(EntryState::Rejected),
            "invoiced" => Some(EntryState::Invoiced),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Draft => "draft",
            EntryState::Submitted => "submitted",
            EntryState::Approved => "approved",
            EntryState::Rejected => "rejected",
            EntryState::Invoiced => "invoiced",
        }
    }
}

/// States of milestones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneState {
    Planned,
    Reached,
    Accepted,
    Invoiced,
}

impl MilestoneState {
    pub fn parse(state: &str) -> Option<MilestoneState> {
        match state {
            "planned" => Some(MilestoneState::Planned),
            "reached" => Some(MilestoneState::Reached),
            "accepted" => Some(MilestoneState::Accepted),
            "invoiced" => Some(MilestoneState::Invoiced),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MilestoneState::Planned => "planned",
            MilestoneState::Reached => "reached",
            MilestoneState::Accepted => "accepted",
            MilestoneState::Invoiced => "invoiced",
        }
    }
}

/// An invoice or credit note of the contract, reduced to what billing counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BillingDocument {
    pub id: String,
    pub move_type: MoveType,
    pub state: DocumentState,
    /// Orders the documents when credit notes are matched against invoices. Documents with
    /// no date come last, in input order.
    pub issue_date: Option<NaiveDate>,
    /// Amount before tax, counted against the cap and the purchase order. Credit notes may
    /// give it with either sign, because its magnitude is subtracted.
    #[serde(with = "rust_decimal::serde::str")]
    pub untaxed: Decimal,
    pub purchase_order: Option<String>,
    /// The sources of all the document's lines.
    pub sources: Vec<Source>,
}

impl BillingDocument {
    /// Returns the untaxed amount this document adds to the contract's billed total: positive
    /// for an issued invoice, negative for an issued credit note, zero otherwise.
    pub fn billed_amount(&self) -> Decimal {
        if !self.state.is_issued() {
            return Decimal::ZERO;
        }
        match self.move_type {
            MoveType::Invoice => self.untaxed,
            MoveType::CreditNote => -self.untaxed.abs(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveType {
    Invoice,
    CreditNote,
}

/// States of invoices and credit notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentState {
    Draft,
    PendingApproval,
    Released,
    Paid,
    Cancelled,
}

impl DocumentState {
    pub fn parse(state: &str) -> Option<DocumentState> {
        match state {
            "draft" => Some(DocumentState::Draft),
            "pending_approval" => Some(DocumentState::PendingApproval),
            "released" => Some(DocumentState::Released),
            "paid" => Some(DocumentState::Paid),
            "cancelled" => Some(DocumentState::Cancelled),
            _ => None,
        }
    }

    /// True for released and paid documents, the only ones that count as billed.
    pub fn is_issued(self) -> bool {
        matches!(self, DocumentState::Released | DocumentState::Paid)
    }

    /// True for drafts and drafts awaiting release approval.
    pub fn is_draft(self) -> bool {
        matches!(self, DocumentState::Draft | DocumentState::PendingApproval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn period_rejects_end_before_start() {
        let error = Period::new(day("2026-11-30"), day("2026-11-01")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid billing period: it ends on 2026-11-01, before it starts on 2026-11-30; \
             swap the two dates"
        );
        let period = Period::new(day("2026-11-01"), day("2026-11-30")).unwrap();
        assert!(period.contains(day("2026-11-30")));
        assert!(!period.contains(day("2026-12-01")));
    }

    #[test]
    fn monthly_retainer_keeps_the_end_of_month() {
        let starts = Cadence::Monthly.period_starts(day("2026-01-31"), None, day("2026-04-30"));
        assert_eq!(
            starts,
            vec![
                day("2026-01-31"),
                day("2026-02-28"),
                day("2026-03-31"),
                day("2026-04-30")
            ]
        );
        assert_eq!(
            Cadence::Monthly.period_end(day("2026-01-31"), 0),
            Some(day("2026-02-27"))
        );
    }

    #[test]
    fn retainer_stops_at_its_last_start() {
        let starts = Cadence::Quarterly.period_starts(
            day("2026-01-01"),
            Some(day("2026-06-30")),
            day("2026-12-31"),
        );
        assert_eq!(starts, vec![day("2026-01-01"), day("2026-04-01")]);
        let weekly = Cadence::Weekly.period_starts(day("2026-11-02"), None, day("2026-11-15"));
        assert_eq!(weekly.len(), 2);
    }

    #[test]
    fn fixed_fee_counts_installments_due() {
        let installment = |due: &str| Installment {
            due_on: day(due),
            amount: Decimal::from(1000),
            description: None,
        };
        let line = ContractLine::new(
            "l1",
            "Design",
            BillingModel::FixedFee {
                schedule: vec![installment("2026-10-15"), installment("2026-11-15")],
            },
        );
        assert_eq!(line.own_delivered(day("2026-10-31")), Some(Decimal::ONE));
        assert_eq!(line.own_delivered(day("2026-11-15")), Some(Decimal::TWO));
        let time = ContractLine::new("l2", "Support", BillingModel::TimeAndMaterials);
        assert_eq!(time.own_delivered(day("2026-11-15")), None);
    }

    #[test]
    fn credit_note_amount_counts_negative() {
        let document = |move_type, state, untaxed| BillingDocument {
            id: "d".into(),
            move_type,
            state,
            issue_date: None,
            untaxed,
            purchase_order: None,
            sources: Vec::new(),
        };
        let credit = document(
            MoveType::CreditNote,
            DocumentState::Released,
            Decimal::from(-200),
        );
        assert_eq!(credit.billed_amount(), Decimal::from(-200));
        let positive = document(
            MoveType::CreditNote,
            DocumentState::Paid,
            Decimal::from(200),
        );
        assert_eq!(positive.billed_amount(), Decimal::from(-200));
        let draft = document(MoveType::Invoice, DocumentState::Draft, Decimal::from(500));
        assert_eq!(draft.billed_amount(), Decimal::ZERO);
    }
}
