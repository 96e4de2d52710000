use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use steward_domain::{Kind, Money, RecordRef};

use super::*;
use crate::input::{BillingModel, Cadence, EntryState, Installment, ItemKind, MilestoneState};
use crate::issue::IssueCode;
use crate::rules::GroupBy;
use crate::testing::{Fixture, currency, day, source};

fn quantities(draft: &Draft) -> Vec<Decimal> {
    draft.lines.iter().map(|l| l.quantity).collect()
}

fn prices(draft: &Draft) -> Vec<Decimal> {
    draft.lines.iter().map(|l| l.unit_price.amount).collect()
}

fn sources(line: &DraftLine) -> Vec<(String, Decimal)> {
    line.sources
        .iter()
        .map(|s| (s.id.clone(), s.quantity))
        .collect()
}

fn codes(error: &DraftError) -> Vec<IssueCode> {
    error.issues.iter().map(|i| i.code).collect()
}

fn assert_lines_sum_to_document(draft: &Draft) {
    let subtotal: Decimal = draft.lines.iter().map(|l| l.subtotal.amount).sum();
    let tax: Decimal = draft.lines.iter().map(|l| l.tax.amount).sum();
    let total: Decimal = draft.lines.iter().map(|l| l.total.amount).sum();
    assert_eq!(subtotal, draft.untaxed.amount);
    assert_eq!(tax, draft.tax.amount);
    assert_eq!(total, draft.total.amount);
}

#[test]
fn time_is_grouped_per_line_and_rate() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials).unit_price = Some(dec!(100));
    firm.time("t1", "2026-11-02", "e-ada", "Consultant", dec!(2), "tm");
    firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(3), "tm");
    firm.time("t3", "2026-11-04", "e-cy", "Consultant", dec!(1.5), "tm");
    firm.time("t4", "2026-11-05", "e-dan", "Intern", dec!(1), "tm");

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(prices(&draft), vec![dec!(100), dec!(120), dec!(175)]);
    assert_eq!(quantities(&draft), vec![dec!(1), dec!(4.5), dec!(2)]);
    assert_eq!(
        sources(&draft.lines[1]),
        vec![("t2".into(), dec!(3)), ("t3".into(), dec!(1.5))]
    );
    assert_eq!(draft.lines[1].description, "Line tm at 120.00 EUR per hour");
    assert_eq!(draft.lines[1].kind, LineKind::Time);
    assert_eq!(draft.lines[1].tax_rate, dec!(22));
    assert_eq!(draft.untaxed.amount, dec!(990.00));
    assert_eq!(draft.total.amount, dec!(1207.80));
    assert_lines_sum_to_document(&draft);
}

#[test]
fn discounted_line_total_follows_rounding() {
    let mut firm = Fixture::new("EUR");
    let line = firm.line("tm", BillingModel::TimeAndMaterials);
    line.unit_price = Some(dec!(348.35));
    line.discount = dec!(4);
    line.tax_rate = Some(dec!(22));
    firm.time("t1", "2026-11-02", "e-zed", "Analyst", dec!(16), "tm");

    firm.rules.rounding = Rounding::PerDocument;
    let per_document = draft(&firm.input()).unwrap();
    assert_eq!(per_document.rounding, Rounding::PerDocument);
    assert_eq!(per_document.total.amount.to_string(), "6527.80");
    assert_eq!(per_document.lines[0].total.amount.to_string(), "6527.80");

    firm.rules.rounding = Rounding::PerLine;
    let per_line = draft(&firm.input()).unwrap();
    assert_eq!(per_line.rounding, Rounding::PerLine);
    assert_eq!(per_line.total.amount.to_string(), "6527.81");
    assert_eq!(per_line.lines[0].subtotal.amount, dec!(5350.66));
    assert_eq!(per_line.lines[0].tax.amount, dec!(1177.15));
}

#[test]
fn yen_draft_has_whole_amounts() {
    let mut firm = Fixture::new("JPY");
    firm.client.country = Some("JP".into());
    firm.line("tm", BillingModel::TimeAndMaterials).unit_price = Some(dec!(12345));
    firm.time("t1", "2026-11-02", "e-zed", "Analyst", dec!(1.5), "tm");
    firm.time("t2", "2026-11-03", "e-zed", "Analyst", dec!(2.25), "tm");
    firm.expense("x1", "2026-11-04", "Travel", dec!(3300));

    for rounding in [Rounding::PerLine, Rounding::PerDocument] {
        firm.rules.rounding = rounding;
        let draft = draft(&firm.input()).unwrap();
        // 3.75 h × 12345 = 46293.75, and tax is 10 % of it and of the 3300 of travel.
        assert_eq!(draft.lines[0].subtotal.amount.to_string(), "46294");
        assert_eq!(draft.untaxed.amount.to_string(), "49594");
        assert_eq!(draft.tax.amount.to_string(), "4959");
        assert_eq!(draft.total.amount.to_string(), "54553");
        for line in &draft.lines {
            assert_eq!(line.total.amount.scale(), 0, "{rounding:?}: {line:?}");
            assert_eq!(line.unit_price.amount.scale(), 0);
        }
        assert_lines_sum_to_document(&draft);
    }
}

#[test]
fn group_by_project_splits_time_lines() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(3), "tm");
    firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(2), "tm");
    firm.items[1].project = Some("p2".into());
    firm.rules.group_by = GroupBy::Project;

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(quantities(&draft), vec![dec!(3), dec!(2)]);
    assert_eq!(
        draft.lines[1].description,
        "Line tm at 120.00 EUR per hour (project p2)"
    );
}

#[test]
fn missing_rate_fails_the_draft() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-11-02", "e-bob", "Intern", dec!(3), "tm");
    firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(2), "tm");

    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::MissingRate]);
    let issue = &error.issues[0];
    assert_eq!(
        issue.message,
        "1 timesheet entries (3 h) of employee e-bob (role `Intern`) on contract line tm have \
         no rate"
    );
    assert!(
        issue
            .fix
            .contains("`Intern` under `roles` in the rate card of contract k1")
    );
    assert!(issue.concerns(&RecordRef::new(Kind::Timesheet, "t1")));
    assert!(!issue.concerns(&RecordRef::new(Kind::Timesheet, "t2")));
}

#[test]
fn fixed_fee_bills_each_installment_once() {
    let mut firm = Fixture::new("EUR");
    let installment = |due: &str, amount: Decimal| Installment {
        due_on: day(due),
        amount,
        description: None,
    };
    firm.line(
        "ff",
        BillingModel::FixedFee {
            schedule: vec![
                installment("2026-11-15", dec!(3000)),
                installment("2026-10-15", dec!(3000)),
                installment("2026-12-15", dec!(4000)),
            ],
        },
    );
    let both = draft(&firm.input()).unwrap();
    assert_eq!(prices(&both), vec![dec!(3000), dec!(3000)]);
    assert_eq!(
        both.lines[0].description,
        "Line ff: installment due 2026-10-15"
    );

    firm.invoiced(
        "inv-10",
        "2026-10-31",
        dec!(3000),
        vec![source(Kind::ContractLine, "ff", dec!(1))],
    );
    let november = draft(&firm.input()).unwrap();
    assert_eq!(november.lines.len(), 1);
    assert_eq!(
        november.lines[0].description,
        "Line ff: installment due 2026-11-15"
    );
    assert_eq!(sources(&november.lines[0]), vec![("ff".into(), dec!(1))]);
}

#[test]
fn milestones_bill_amount_or_percentage_once_accepted() {
    let mut firm = Fixture::new("EUR");
    let line = firm.line("ms", BillingModel::Milestone);
    line.quantity = Some(dec!(2));
    line.unit_price = Some(dec!(10000));
    firm.milestone("m1", "2026-11-10", Some("ms"), Some(dec!(5000)), None);
    firm.milestone("m2", "2026-11-20", Some("ms"), None, Some(dec!(30)));
    firm.milestone("m3", "2026-11-25", Some("ms"), Some(dec!(9000)), None);
    firm.set_milestone_state("m3", MilestoneState::Reached);

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(prices(&draft), vec![dec!(5000), dec!(6000)]);
    assert_eq!(draft.lines[1].description, "Line ms: milestone Phase m2");
    assert_eq!(sources(&draft.lines[1]), vec![("m2".into(), dec!(1))]);
}

#[test]
fn retainer_bills_each_started_period_once() {
    let mut firm = Fixture::new("EUR");
    firm.line(
        "rt",
        BillingModel::Retainer {
            starts_on: day("2026-10-01"),
            ends_on: None,
            cadence: Cadence::Monthly,
        },
    )
    .unit_price = Some(dec!(2500));
    assert_eq!(draft(&firm.input()).unwrap().lines.len(), 2);

    firm.invoiced(
        "inv-10",
        "2026-10-01",
        dec!(2500),
        vec![source(Kind::ContractLine, "rt", dec!(1))],
    );
    let november = draft(&firm.input()).unwrap();
    assert_eq!(prices(&november), vec![dec!(2500)]);
    assert_eq!(
        november.lines[0].description,
        "Line rt: 2026-11-01 to 2026-11-30"
    );
}

#[test]
fn prepaid_hours_draw_down_then_overage() {
    let mut firm = Fixture::new("EUR");
    let line = firm.line(
        "pp",
        BillingModel::PrepaidHours {
            overage_rate: Some(dec!(140)),
            drawn_before: dec!(30),
        },
    );
    line.quantity = Some(dec!(40));
    line.unit_price = Some(dec!(100));
    firm.time("t2", "2026-11-10", "e-bob", "Consultant", dec!(8), "pp");
    firm.time("t1", "2026-11-03", "e-bob", "Consultant", dec!(6), "pp");

    let draft = draft(&firm.input()).unwrap();
    let kinds: Vec<LineKind> = draft.lines.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LineKind::PrepaidBlock,
            LineKind::PrepaidDrawdown,
            LineKind::PrepaidOverage
        ]
    );
    assert_eq!(quantities(&draft), vec![dec!(40), dec!(10), dec!(4)]);
    assert_eq!(prices(&draft), vec![dec!(100), dec!(0), dec!(140)]);
    assert_eq!(
        sources(&draft.lines[1]),
        vec![("t1".into(), dec!(6)), ("t2".into(), dec!(4))]
    );
    assert_eq!(sources(&draft.lines[2]), vec![("t2".into(), dec!(4))]);
    let usage = &draft.prepaid[0];
    assert_eq!(usage.drawn_now, dec!(10));
    assert_eq!(usage.remaining, dec!(0));
    assert_eq!(usage.overage_hours, dec!(4));
    assert_eq!(draft.untaxed.amount, dec!(4560.00));
}

#[test]
fn prepaid_overage_without_rate_is_reported() {
    let mut firm = Fixture::new("EUR");
    firm.line(
        "pp",
        BillingModel::PrepaidHours {
            overage_rate: None,
            drawn_before: dec!(38),
        },
    )
    .quantity = Some(dec!(40));
    firm.time("t1", "2026-11-03", "e-bob", "Consultant", dec!(5), "pp");

    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::MissingRate]);
    assert!(
        error.issues[0]
            .message
            .starts_with("3 h of 1 timesheet entries go beyond the 40 h prepaid block")
    );
    assert_eq!(
        error.issues[0].fix,
        "set the overage rate of contract line pp"
    );
}

#[test]
fn expenses_rebill_at_cost_plus_markup() {
    let mut firm = Fixture::new("EUR");
    firm.rules.expense_markup = dec!(10);
    firm.expense("x1", "2026-11-02", "Travel", dec!(100));
    firm.expense("x2", "2026-11-03", "Travel", dec!(50.55));
    firm.expense("x3", "2026-11-04", "Meals", dec!(20));

    let draft = draft(&firm.input()).unwrap();
    let descriptions: Vec<&str> = draft.lines.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(
        descriptions,
        vec![
            "Meals expenses at cost plus 10%",
            "Travel expenses at cost plus 10%"
        ]
    );
    // 150.55 plus 10 % is 165.605, rounded half away from zero.
    assert_eq!(prices(&draft), vec![dec!(22.00), dec!(165.61)]);
    assert_eq!(
        sources(&draft.lines[1]),
        vec![("x1".into(), dec!(1)), ("x2".into(), dec!(1))]
    );
    assert_eq!(draft.lines[1].contract_line, None);
}

#[test]
fn foreign_currency_expense_is_reported() {
    let mut firm = Fixture::new("EUR");
    firm.expense("x1", "2026-11-02", "Travel", dec!(100));
    if let ItemKind::Expense { amount, .. } = &mut firm.items[0].kind {
        *amount = Money::new(dec!(80), currency("USD")).unwrap();
    }
    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::CurrencyMismatch]);
    assert_eq!(
        error.issues[0].message,
        "1 approved billable expense in USD (80.00 USD) cannot be rebilled on contract k1, \
         which bills in EUR"
    );
}

#[test]
fn manual_line_bills_the_remainder() {
    let mut firm = Fixture::new("EUR");
    firm.line("mn", BillingModel::Manual { delivered: dec!(8) })
        .unit_price = Some(dec!(90));
    firm.invoiced(
        "inv-10",
        "2026-10-31",
        dec!(450),
        vec![source(Kind::ContractLine, "mn", dec!(5))],
    );

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(quantities(&draft), vec![dec!(3)]);
    assert_eq!(draft.lines[0].subtotal.amount, dec!(270.00));
    assert_eq!(sources(&draft.lines[0]), vec![("mn".into(), dec!(3))]);
}

#[test]
fn credited_hours_are_drafted_again() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-10-20", "e-bob", "Consultant", dec!(4.5), "tm");
    firm.time("t2", "2026-10-21", "e-bob", "Consultant", dec!(3.5), "tm");
    firm.time("t3", "2026-11-02", "e-bob", "Consultant", dec!(1), "tm");
    firm.set_entry_state("t1", EntryState::Invoiced);
    firm.set_entry_state("t2", EntryState::Invoiced);
    firm.invoiced(
        "inv-10",
        "2026-10-31",
        dec!(960),
        vec![
            source(Kind::Timesheet, "t1", dec!(4.5)),
            source(Kind::Timesheet, "t2", dec!(3.5)),
        ],
    );
    firm.credited(
        "cn-1",
        "2026-11-05",
        dec!(-420),
        vec![source(Kind::Timesheet, "t2", dec!(-3.5))],
    );

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(quantities(&draft), vec![dec!(4.5)]);
    assert_eq!(
        sources(&draft.lines[0]),
        vec![("t2".into(), dec!(3.5)), ("t3".into(), dec!(1))]
    );
}

#[test]
fn eu_business_abroad_gets_reverse_charge() {
    let mut firm = Fixture::new("EUR");
    firm.client.country = Some("DE".into());
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");

    let business = draft(&firm.input()).unwrap();
    assert_eq!(business.lines[0].tax_rate, dec!(0));
    assert!(business.lines[0].reverse_charge);
    assert_eq!(business.tax.amount, dec!(0.00));
    assert!(business.notes[0].starts_with("Reverse charge"));

    firm.client.is_business = false;
    let consumer = draft(&firm.input()).unwrap();
    assert_eq!(consumer.lines[0].tax_rate, dec!(19));
    assert!(consumer.notes.is_empty());
}

#[test]
fn unknown_tax_country_fails_the_draft() {
    let mut firm = Fixture::new("EUR");
    firm.client.country = Some("BR".into());
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");

    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::TaxUnavailable]);
    assert_eq!(
        error.to_string(),
        "cannot draft the invoice: the tax table has no rates for country `BR` of client c1 \
         (fix: add a `BR` entry with its default rate to the tax table, or correct the \
         client's country)"
    );
}

#[test]
fn items_not_ready_are_left_out() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.line("mn", BillingModel::Manual { delivered: dec!(0) });
    firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(2), "tm");
    firm.set_entry_state("t1", EntryState::Submitted);
    firm.time("t2", "2026-12-01", "e-bob", "Consultant", dec!(2), "tm");
    firm.time("t3", "2026-11-03", "e-bob", "Consultant", dec!(2), "tm");
    if let ItemKind::Time { billable, .. } = &mut firm.items[2].kind {
        *billable = false;
    }
    // Time on a manual line is covered by the line's price.
    firm.time("t4", "2026-11-04", "e-bob", "Consultant", dec!(2), "mn");

    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::NothingToBill]);
    assert_eq!(
        error.issues[0].message,
        "contract k1 has nothing ready to bill up to 2026-11-30"
    );
}

#[test]
fn fixed_fee_without_schedule_is_incomplete() {
    let mut firm = Fixture::new("EUR");
    firm.line(
        "ff",
        BillingModel::FixedFee {
            schedule: Vec::new(),
        },
    );
    let error = draft(&firm.input()).unwrap_err();
    assert_eq!(codes(&error), vec![IssueCode::IncompleteLine]);
    assert_eq!(
        error.issues[0].message,
        "fixed-fee contract line ff has no schedule of amounts"
    );
}

#[test]
fn entry_invoiced_elsewhere_is_not_drafted() {
    let mut firm = Fixture::new("EUR");
    firm.line("tm", BillingModel::TimeAndMaterials);
    firm.time("t1", "2026-11-02", "e-bob", "Consultant", dec!(4), "tm");
    firm.time("t2", "2026-11-03", "e-bob", "Consultant", dec!(2), "tm");
    // Marked invoiced, as a mirror of time that the ERP billed, with no invoice here.
    firm.set_entry_state("t1", EntryState::Invoiced);

    let draft = draft(&firm.input()).unwrap();
    assert_eq!(quantities(&draft), vec![dec!(2)]);
    assert_eq!(sources(&draft.lines[0]), vec![("t2".into(), dec!(2))]);

    let report = crate::reconcile::reconcile(&firm.input());
    let entry = report
        .entry(&RecordRef::new(Kind::Timesheet, "t1"))
        .unwrap();
    assert_eq!(entry.status, crate::reconcile::Status::Invoiced);
    assert!(
        entry.reason.contains("billed outside Steward"),
        "{}",
        entry.reason
    );
}
