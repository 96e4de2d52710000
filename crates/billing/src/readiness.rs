//! The billing-readiness gate for one contract and one billing period.
//!
//! [`check`] drafts the invoice from the ready items and lists every reason the contract
//! cannot be invoiced yet, each an [`Issue`] naming the records and the fix:
//!
//! - billable time and expenses dated up to the period's end that are not approved. Only time
//!   on lines billed by the hour counts, because a fixed price covers the other time;
//! - milestones reached but not accepted;
//! - everything the draft could not price ([`crate::invoice::draft`] lists the cases);
//! - a cap or purchase order without headroom for the draft's untaxed amount, counting the
//!   issued invoices net of credit notes, and a purchase order expired by the issue date;
//! - failed client billing rules ([`crate::rules`]).
//!
//! An approved override (a `billing_override` approval request, decided elsewhere) turns the
//! blockers into warnings and records the request. It cannot lift a problem that leaves no
//! invoice to issue ([`IssueCode::overridable`]), and it never bills what is not ready:
//! unapproved time stays out of the draft.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use steward_domain::{Money, RecordRef};

use crate::input::{BillableItem, BillingInput, ItemKind, MilestoneState, Period};
use crate::invoice::{Draft, before_contract_start, build, nothing_to_bill};
use crate::issue::{Issue, IssueCode};
use crate::quantity::Ledger;

/// The gate's verdict for one contract and period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    pub contract: String,
    pub period: Period,
    /// True when no blocker remains, by itself or thanks to the override.
    pub ready: bool,
    /// The approval request whose override turned blockers into warnings.
    pub override_request: Option<String>,
    pub blockers: Vec<Issue>,
    /// Blockers lifted by the override, recorded so the invoice shows what was waived.
    pub warnings: Vec<Issue>,
    /// The invoice drafted from the ready items, with the amounts the limits were checked
    /// against. It is present when blocked too, to show the amounts, so issue it only when
    /// `ready` is true.
    pub draft: Option<Draft>,
}

/// Checks whether the contract in `input` can be invoiced for its period.
/// `override_request` is the id of an approved `billing_override` request, if any.
pub fn check(input: &BillingInput, override_request: Option<&str>) -> Readiness {
    check_with(input, override_request, Vec::new())
}

/// Checks like [`check`], with `extra` blockers the caller found outside the input, such as
/// a draft invoice still pending. The override lifts those too when their code allows it.
pub fn check_with(
    input: &BillingInput,
    override_request: Option<&str>,
    extra: Vec<Issue>,
) -> Readiness {
    let ledger = Ledger::from_documents(input.documents);
    let mut readiness = check_with_ledger(input, &ledger, None);
    readiness.blockers.extend(extra);
    lift(&mut readiness, override_request);
    readiness
}

/// [`check`] on a ledger the caller already built from `input.documents`.
pub(crate) fn check_with_ledger(
    input: &BillingInput,
    ledger: &Ledger,
    override_request: Option<&str>,
) -> Readiness {
    let mut blockers = unapproved_items(input, ledger);
    let outcome = build(input, ledger);
    blockers.extend(outcome.issues);
    if input.rules.requires_po && input.contract.purchase_order.is_none() {
        blockers.push(purchase_order_missing(input));
    }
    // A contract that has not started yet has nothing to bill for a plain reason, which
    // replaces the generic advice of `nothing_to_bill`.
    let not_started = before_contract_start(input);
    match &outcome.draft {
        Some(draft) => blockers.extend(limits(input, draft)),
        None if not_started.is_none() => blockers.push(nothing_to_bill(input)),
        None => {}
    }
    blockers.extend(not_started);

    let mut readiness = Readiness {
        contract: input.contract.id.clone(),
        period: input.period,
        ready: false,
        override_request: None,
        blockers,
        warnings: Vec::new(),
        draft: outcome.draft,
    };
    lift(&mut readiness, override_request);
    readiness
}

/// Turns the overridable blockers into warnings when an override is approved, and sets
/// `ready`.
fn lift(readiness: &mut Readiness, override_request: Option<&str>) {
    if let Some(request) = override_request {
        let blockers = std::mem::take(&mut readiness.blockers);
        let (lifted, kept): (Vec<Issue>, Vec<Issue>) =
            blockers.into_iter().partition(|b| b.code.overridable());
        readiness.warnings.extend(lifted);
        readiness.blockers = kept;
        readiness.override_request = Some(request.to_string());
    }
    readiness.ready = readiness.blockers.is_empty();
}

/// Billable items up to the period's end that wait for approval or acceptance, grouped by
/// kind and state so that a large backlog is one reason per state.
fn unapproved_items(input: &BillingInput, ledger: &Ledger) -> Vec<Issue> {
    let lines: BTreeMap<&str, bool> = input
        .lines
        .iter()
        .map(|line| (line.id.as_str(), line.bills_time()))
        .collect();
    let mut waiting: BTreeMap<(&'static str, &'static str), Vec<&BillableItem>> = BTreeMap::new();
    let mut issues = Vec::new();

    for item in input.items {
        if item.date > input.period.end() || !item.is_billable() || item.is_ready() {
            continue;
        }
        let unbilled = ledger.item_position(item).billable();
        if unbilled.is_zero() {
            continue;
        }
        match &item.kind {
            ItemKind::Time { .. } => {
                let line = item.contract_line.as_deref().and_then(|id| lines.get(id));
                if line == Some(&false) {
                    continue;
                }
                waiting
                    .entry(("time", item.state_name()))
                    .or_default()
                    .push(item);
            }
            ItemKind::Expense { .. } => {
                waiting
                    .entry(("expense", item.state_name()))
                    .or_default()
                    .push(item);
            }
            ItemKind::Milestone { state, .. } => {
                if *state == MilestoneState::Reached {
                    issues.push(milestone_not_accepted(item));
                }
            }
        }
    }

    let mut grouped: Vec<Issue> = waiting
        .into_iter()
        .map(|((kind, state), items)| not_approved(kind, state, &items))
        .collect();
    grouped.extend(issues);
    grouped
}

fn not_approved(kind: &str, state: &str, items: &[&BillableItem]) -> Issue {
    let one = items.len() == 1;
    let subject = match kind {
        "time" => {
            let hours: Decimal = items.iter().map(|i| i.delivered()).sum();
            let noun = if one { "entry" } else { "entries" };
            format!(
                "{} billable timesheet {noun} ({} h)",
                items.len(),
                hours.normalize()
            )
        }
        _ => {
            let noun = if one { "expense" } else { "expenses" };
            format!("{} billable {noun}", items.len())
        }
    };
    let (status, fix) = match (state, one) {
        ("draft", true) => (
            "is still a draft",
            "ask its author to submit it for approval, or mark it not billable",
        ),
        ("draft", false) => (
            "are still drafts",
            "ask their authors to submit them for approval, or mark them not billable",
        ),
        ("rejected", true) => (
            "was rejected",
            "have its author correct and resubmit it, or mark it not billable",
        ),
        ("rejected", false) => (
            "were rejected",
            "have their authors correct and resubmit them, or mark them not billable",
        ),
        (_, true) => (
            "is submitted but not approved",
            "have its approver decide on it before the invoice is drafted",
        ),
        (_, false) => (
            "are submitted but not approved",
            "have their approvers decide on them before the invoice is drafted",
        ),
    };
    Issue::new(
        IssueCode::NotApproved,
        items.iter().map(|i| i.record()).collect(),
        format!("{subject} {status}"),
        fix,
    )
}

fn milestone_not_accepted(milestone: &BillableItem) -> Issue {
    let name = milestone.description.as_deref().unwrap_or(&milestone.id);
    Issue::new(
        IssueCode::NotAccepted,
        vec![milestone.record()],
        format!(
            "milestone {} ({name}) was reached on {} but the client has not accepted it",
            milestone.id, milestone.date
        ),
        "record the client's acceptance on the milestone, or bill it in a later period",
    )
}

fn purchase_order_missing(input: &BillingInput) -> Issue {
    Issue::new(
        IssueCode::PurchaseOrderMissing,
        vec![input.contract.record()],
        format!(
            "the client's billing rules require a purchase order, and contract {} has none",
            input.contract.label()
        ),
        "record the client's purchase-order number on the contract",
    )
}

/// Checks the cap, the purchase order and the client rules that depend on the draft.
fn limits(input: &BillingInput, draft: &Draft) -> Vec<Issue> {
    let mut issues = Vec::new();
    let contract = input.contract;
    let currency = contract.currency;
    let money = |amount: Decimal| Money::round(amount, currency);
    let amount = draft.untaxed.amount;

    if let Some(cap) = contract.cap {
        let billed: Decimal = input.documents.iter().map(|d| d.billed_amount()).sum();
        let after = billed + amount;
        if after > cap {
            issues.push(Issue::new(
                IssueCode::CapExceeded,
                vec![contract.record()],
                format!(
                    "the draft's {} before tax would bring contract {} to {} invoiced, {} over \
                     its cap of {}",
                    money(amount),
                    contract.label(),
                    money(after),
                    money(after - cap),
                    money(cap)
                ),
                "raise the contract's cap with the client's agreement, or have a billing \
                 override approved",
            ));
        }
    }

    if let Some(order) = &contract.purchase_order {
        if let Some(valid_until) = order.valid_until
            && input.issue_date > valid_until
        {
            issues.push(Issue::new(
                IssueCode::PurchaseOrderExpired,
                vec![contract.record()],
                format!(
                    "purchase order {} of contract {} expired on {valid_until}, before the \
                     issue date {}",
                    order.number,
                    contract.label(),
                    input.issue_date
                ),
                "ask the client for a new or extended purchase order and record its number and \
                 validity on the contract",
            ));
        }
        if let Some(limit) = order.amount {
            let consumed: Decimal = input
                .documents
                .iter()
                .filter(|d| d.purchase_order.as_deref() == Some(order.number.as_str()))
                .map(|d| d.billed_amount())
                .sum();
            let after = consumed + amount;
            if after > limit {
                issues.push(Issue::new(
                    IssueCode::PurchaseOrderExceeded,
                    vec![contract.record()],
                    format!(
                        "the draft's {} before tax would bring purchase order {} to {} \
                         invoiced, {} over its amount of {}",
                        money(amount),
                        order.number,
                        money(after),
                        money(after - limit),
                        money(limit)
                    ),
                    "ask the client to raise the purchase order's amount, or have a billing \
                     override approved",
                ));
            }
        }
    }

    issues.extend(rule_failures(input, draft));
    issues
}

fn rule_failures(input: &BillingInput, draft: &Draft) -> Vec<Issue> {
    let mut issues = Vec::new();
    let contract = input.contract;
    if let Some(minimum) = input.rules.min_invoice_amount
        && draft.untaxed.amount < minimum
    {
        issues.push(Issue::new(
            IssueCode::BelowMinimumAmount,
            vec![contract.record()],
            format!(
                "the draft's {} before tax is below the client's minimum invoice amount of {}",
                draft.untaxed,
                Money::round(minimum, contract.currency)
            ),
            "bill it together with a later period, or have a billing override approved",
        ));
    }
    if let Some(maximum) = input.rules.max_hours_per_line {
        for line in &draft.lines {
            if !line.kind.bills_hours() || line.quantity <= maximum {
                continue;
            }
            let mut records: Vec<RecordRef> = line.sources.iter().map(|s| s.record()).collect();
            if let Some(id) = &line.contract_line {
                records.push(RecordRef::new(
                    steward_domain::Kind::ContractLine,
                    id.clone(),
                ));
            }
            issues.push(Issue::new(
                IssueCode::TooManyHoursOnLine,
                records,
                format!(
                    "invoice line `{}` bills {} h, more than the client's maximum of {} h per \
                     line",
                    line.description,
                    line.quantity.normalize(),
                    maximum.normalize()
                ),
                "split the time by project or employee with the `group_by` billing rule, or \
                 agree a higher `max_hours_per_line` with the client",
            ));
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MoveType;
    use crate::input::{BillingModel, EntryState, PurchaseOrder};
    use crate::testing::{Fixture, day, document, source};
    use rust_decimal_macros::dec;
    use steward_domain::Kind;

    fn codes(issues: &[Issue]) -> Vec<IssueCode> {
        issues.iter().map(|i| i.code).collect()
    }

    /// Builds a time-and-materials contract with 2 approved hours at 120 (240.00 EUR).
    fn firm() -> Fixture {
        let mut firm = Fixture::new("EUR");
        firm.line("tm", BillingModel::TimeAndMaterials);
        firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
        firm
    }

    #[test]
    fn approved_period_is_ready() {
        let firm = firm();
        let readiness = check(&firm.input(), None);
        assert!(readiness.ready, "{:?}", readiness.blockers);
        assert!(readiness.blockers.is_empty());
        assert!(readiness.warnings.is_empty());
        assert_eq!(readiness.draft.unwrap().untaxed.amount, dec!(240.00));
    }

    #[test]
    fn unapproved_items_block_with_their_records() {
        let mut firm = firm();
        firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(1.5), "tm");
        firm.time("t3", "2026-11-04", "e-bob", "Consultant", dec!(2), "tm");
        firm.set_entry_state("t2", EntryState::Submitted);
        firm.set_entry_state("t3", EntryState::Submitted);
        firm.expense("x1", "2026-11-05", "Travel", dec!(80));
        firm.set_entry_state("x1", EntryState::Rejected);
        firm.milestone("m1", "2026-11-20", Some("tm"), Some(dec!(1000)), None);
        firm.set_milestone_state("m1", MilestoneState::Reached);

        let readiness = check(&firm.input(), None);
        assert!(!readiness.ready);
        assert_eq!(
            codes(&readiness.blockers),
            vec![
                IssueCode::NotApproved,
                IssueCode::NotApproved,
                IssueCode::NotAccepted
            ]
        );
        let expense = &readiness.blockers[0];
        assert_eq!(expense.message, "1 billable expense was rejected");
        assert!(expense.fix.contains("correct and resubmit"));
        let time = &readiness.blockers[1];
        assert_eq!(
            time.message,
            "2 billable timesheet entries (3.5 h) are submitted but not approved"
        );
        assert_eq!(
            time.records,
            vec![
                RecordRef::new(Kind::Timesheet, "t2"),
                RecordRef::new(Kind::Timesheet, "t3")
            ]
        );
        assert_eq!(
            readiness.blockers[2].message,
            "milestone m1 (Phase m1) was reached on 2026-11-20 but the client has not accepted it"
        );
        let draft = readiness.draft.expect("the approved hours are drafted");
        assert_eq!(draft.lines[0].quantity, dec!(2));
    }

    #[test]
    fn covered_time_does_not_block() {
        let mut firm = firm();
        firm.line("mn", BillingModel::Manual { delivered: dec!(0) });
        firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(3), "mn");
        firm.set_entry_state("t2", EntryState::Draft);
        let readiness = check(&firm.input(), None);
        assert!(readiness.ready, "{:?}", readiness.blockers);
    }

    #[test]
    fn cap_without_headroom_blocks() {
        let mut firm = firm();
        firm.contract.cap = Some(dec!(1000));
        firm.invoiced("inv-9", "2026-09-30", dec!(900), Vec::new());
        firm.credited("cn-1", "2026-10-05", dec!(-100), Vec::new());
        firm.documents.push(document(
            "inv-10",
            MoveType::Invoice,
            "2026-10-31",
            dec!(5000),
            Vec::new(),
        ));
        firm.documents[2].state = crate::input::DocumentState::Cancelled;

        let readiness = check(&firm.input(), None);
        assert_eq!(codes(&readiness.blockers), vec![IssueCode::CapExceeded]);
        assert_eq!(
            readiness.blockers[0].message,
            "the draft's 240.00 EUR before tax would bring contract k1 to 1040.00 EUR \
             invoiced, 40.00 EUR over its cap of 1000.00 EUR"
        );

        firm.contract.cap = Some(dec!(1040));
        assert!(
            check(&firm.input(), None).ready,
            "exactly at the cap is allowed"
        );
    }

    #[test]
    fn purchase_order_expired_and_exhausted() {
        let mut firm = firm();
        firm.contract.purchase_order = Some(PurchaseOrder {
            number: "PO-7".into(),
            amount: Some(dec!(500)),
            valid_until: Some(day("2026-11-30")),
        });
        firm.invoiced("inv-9", "2026-10-31", dec!(400), Vec::new());
        firm.documents[0].purchase_order = Some("PO-7".into());
        firm.invoiced("inv-8", "2026-09-30", dec!(900), Vec::new());

        let readiness = check(&firm.input(), None);
        assert_eq!(
            codes(&readiness.blockers),
            vec![
                IssueCode::PurchaseOrderExpired,
                IssueCode::PurchaseOrderExceeded
            ]
        );
        assert_eq!(
            readiness.blockers[0].message,
            "purchase order PO-7 of contract k1 expired on 2026-11-30, before the issue date \
             2026-12-01"
        );
        assert!(
            readiness.blockers[1]
                .message
                .contains("bring purchase order PO-7 to 640.00 EUR invoiced, 140.00 EUR over")
        );
    }

    #[test]
    fn client_rules_are_checked() {
        let mut firm = firm();
        firm.rules.requires_po = true;
        firm.rules.min_invoice_amount = Some(dec!(500));
        firm.rules.max_hours_per_line = Some(dec!(1.5));

        let readiness = check(&firm.input(), None);
        assert_eq!(
            codes(&readiness.blockers),
            vec![
                IssueCode::PurchaseOrderMissing,
                IssueCode::BelowMinimumAmount,
                IssueCode::TooManyHoursOnLine
            ]
        );
        assert_eq!(
            readiness.blockers[1].message,
            "the draft's 240.00 EUR before tax is below the client's minimum invoice amount of \
             500.00 EUR"
        );
        assert_eq!(
            readiness.blockers[2].message,
            "invoice line `Line tm at 120.00 EUR per hour` bills 2 h, more than the client's \
             maximum of 1.5 h per line"
        );
    }

    #[test]
    fn missing_rate_blocks() {
        let mut firm = firm();
        firm.time("t2", "2026-11-03", "e-cy", "Intern", dec!(1), "tm");
        let readiness = check(&firm.input(), None);
        assert_eq!(codes(&readiness.blockers), vec![IssueCode::MissingRate]);
        assert!(readiness.blockers[0].concerns(&RecordRef::new(Kind::Timesheet, "t2")));
        let draft = readiness.draft.unwrap();
        assert_eq!(draft.lines.len(), 1, "the priced hours are still drafted");
    }

    #[test]
    fn override_turns_blockers_into_warnings() {
        let mut firm = firm();
        firm.contract.cap = Some(dec!(100));
        firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(5), "tm");
        firm.set_entry_state("t2", EntryState::Submitted);

        let blocked = check(&firm.input(), None);
        assert_eq!(
            codes(&blocked.blockers),
            vec![IssueCode::NotApproved, IssueCode::CapExceeded]
        );

        let overridden = check(&firm.input(), Some("ar-42"));
        assert!(overridden.ready);
        assert!(overridden.blockers.is_empty());
        assert_eq!(overridden.warnings, blocked.blockers);
        assert_eq!(overridden.override_request.as_deref(), Some("ar-42"));
        let draft = overridden.draft.unwrap();
        assert_eq!(
            draft.lines[0].quantity,
            dec!(2),
            "the override does not bill unapproved time"
        );
    }

    #[test]
    fn override_cannot_lift_nothing_to_bill() {
        let mut firm = firm();
        firm.set_entry_state("t1", EntryState::Submitted);
        let readiness = check(&firm.input(), Some("ar-42"));
        assert!(!readiness.ready);
        assert_eq!(codes(&readiness.blockers), vec![IssueCode::NothingToBill]);
        assert_eq!(codes(&readiness.warnings), vec![IssueCode::NotApproved]);
        assert!(readiness.draft.is_none());
    }

    #[test]
    fn contract_starting_later_says_when() {
        let mut firm = firm();
        firm.contract.reference = Some("S00004".into());
        firm.contract.start_date = Some(day("2026-12-04"));
        firm.set_entry_state("t1", EntryState::Submitted);
        let readiness = check(&firm.input(), None);
        assert_eq!(
            codes(&readiness.blockers),
            vec![IssueCode::NotApproved, IssueCode::BeforeContractStart]
        );
        let blocker = &readiness.blockers[1];
        assert_eq!(
            blocker.message,
            "contract S00004 (k1) starts on 2026-12-04, after the period 2026-11-01 to \
             2026-11-30, so it has nothing to bill in it"
        );
        assert_eq!(
            blocker.fix,
            "bill the contract from its first month, 2026-12, on"
        );

        firm.contract.start_date = Some(day("2026-11-30"));
        assert_eq!(
            codes(&check(&firm.input(), None).blockers),
            vec![IssueCode::NotApproved, IssueCode::NothingToBill],
            "a contract that starts within the period gets the usual advice"
        );
    }

    #[test]
    fn extra_blockers_join_the_gate() {
        let firm = firm();
        let pending = Issue::new(
            IssueCode::DraftPending,
            vec![RecordRef::new(Kind::Invoice, "inv-7")],
            "draft invoice inv-7 is not released yet",
            "release or cancel it",
        );
        let readiness = check_with(&firm.input(), None, vec![pending.clone()]);
        assert!(!readiness.ready);
        assert_eq!(readiness.blockers, vec![pending.clone()]);

        let overridden = check_with(&firm.input(), Some("ar-1"), vec![pending.clone()]);
        assert!(!overridden.ready, "an override cannot lift a pending draft");
        assert_eq!(overridden.blockers, vec![pending]);
        assert!(overridden.warnings.is_empty());
    }

    #[test]
    fn credited_hours_make_the_contract_ready_again() {
        let mut firm = firm();
        firm.set_entry_state("t1", EntryState::Invoiced);
        firm.invoiced(
            "inv-10",
            "2026-11-10",
            dec!(240),
            vec![source(Kind::Timesheet, "t1", dec!(2))],
        );
        assert_eq!(
            codes(&check(&firm.input(), None).blockers),
            vec![IssueCode::NothingToBill]
        );
        firm.credited(
            "cn-1",
            "2026-11-12",
            dec!(-240),
            vec![source(Kind::Timesheet, "t1", dec!(-2))],
        );
        assert!(check(&firm.input(), None).ready);
    }
}
