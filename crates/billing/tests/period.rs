//! One contract through a whole billing period. October was invoiced and partly credited. In
//! November the gate blocks on unapproved work until it is approved. Then the invoice is
//! drafted for every billing model and released, and the period reconciles with nothing
//! billed twice.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use steward_billing::{
    BillableItem, BillingDocument, BillingInput, BillingModel, BillingRules, Cadence, Client,
    Contract, ContractLine, DocumentState, Draft, EntryState, Installment, IssueCode, ItemKind,
    LineKind, MilestoneState, MoveType, Period, PurchaseOrder, RateCard, Rounding, Source, Status,
    TaxTable, invoice, readiness, reconcile,
};
use steward_domain::{Currency, Kind, Money, RecordRef};

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn eur() -> Currency {
    Currency::from_code("EUR").unwrap()
}

fn source(kind: Kind, id: &str, quantity: Decimal) -> Source {
    Source::new(RecordRef::new(kind, id), quantity)
}

/// Everything the caller gathers for one contract, owned by the test.
struct Books {
    contract: Contract,
    lines: Vec<ContractLine>,
    client: Client,
    items: Vec<BillableItem>,
    documents: Vec<BillingDocument>,
    taxes: TaxTable,
    rules: BillingRules,
}

impl Books {
    fn input(&self, period: Period, issue_date: NaiveDate) -> BillingInput<'_> {
        BillingInput {
            contract: &self.contract,
            lines: &self.lines,
            client: &self.client,
            period,
            issue_date,
            items: &self.items,
            documents: &self.documents,
            taxes: &self.taxes,
            rules: &self.rules,
        }
    }

    fn set_state(&mut self, id: &str, new_state: EntryState) {
        let item = self.items.iter_mut().find(|i| i.id == id).unwrap();
        if let ItemKind::Time { state, .. } | ItemKind::Expense { state, .. } = &mut item.kind {
            *state = new_state;
        }
    }

    fn accept(&mut self, id: &str) {
        let item = self.items.iter_mut().find(|i| i.id == id).unwrap();
        if let ItemKind::Milestone { state, .. } = &mut item.kind {
            *state = MilestoneState::Accepted;
        }
    }

    /// Records the draft as a released invoice and marks what it billed as invoiced, as the
    /// engine will once finance releases it.
    fn release(&mut self, id: &str, draft: &Draft) {
        let sources: Vec<Source> = draft
            .lines
            .iter()
            .flat_map(|line| line.sources.clone())
            .collect();
        for billed in &sources {
            if let Some(item) = self.items.iter_mut().find(|i| i.id == billed.id) {
                match &mut item.kind {
                    ItemKind::Time { state, .. } | ItemKind::Expense { state, .. } => {
                        *state = EntryState::Invoiced;
                    }
                    ItemKind::Milestone { state, .. } => *state = MilestoneState::Invoiced,
                }
            }
        }
        self.documents.push(BillingDocument {
            id: id.into(),
            move_type: MoveType::Invoice,
            state: DocumentState::Released,
            issue_date: Some(draft.issue_date),
            untaxed: draft.untaxed.amount,
            purchase_order: Some("PO-1".into()),
            sources,
        });
    }
}

fn time(
    id: &str,
    date: &str,
    employee: &str,
    role: &str,
    hours: Decimal,
    line: &str,
) -> BillableItem {
    BillableItem {
        id: id.into(),
        date: day(date),
        contract_line: Some(line.into()),
        project: Some("p1".into()),
        description: None,
        kind: ItemKind::Time {
            employee: employee.into(),
            role: Some(role.into()),
            hours,
            billable: true,
            state: EntryState::Approved,
        },
    }
}

fn expense(id: &str, date: &str, category: &str, amount: Decimal, billable: bool) -> BillableItem {
    BillableItem {
        id: id.into(),
        date: day(date),
        contract_line: None,
        project: Some("p1".into()),
        description: None,
        kind: ItemKind::Expense {
            category: category.into(),
            amount: Money::new(amount, eur()).unwrap(),
            billable,
            state: EntryState::Approved,
        },
    }
}

fn milestone(
    id: &str,
    date: &str,
    amount: Option<Decimal>,
    percentage: Option<Decimal>,
) -> BillableItem {
    BillableItem {
        id: id.into(),
        date: day(date),
        contract_line: Some("l-ms".into()),
        project: Some("p1".into()),
        description: Some(format!("acceptance {id}")),
        kind: ItemKind::Milestone {
            amount: amount.map(|a| Money::new(a, eur()).unwrap()),
            percentage,
            state: MilestoneState::Accepted,
        },
    }
}

/// Builds one contract line per billing model.
fn lines() -> Vec<ContractLine> {
    let mut consulting = ContractLine::new("l-tm", "Consulting", BillingModel::TimeAndMaterials);
    consulting.unit_price = Some(dec!(110));

    let installment = |due: &str, amount: Decimal| Installment {
        due_on: day(due),
        amount,
        description: None,
    };
    let design = ContractLine::new(
        "l-ff",
        "Design",
        BillingModel::FixedFee {
            schedule: vec![
                installment("2026-10-15", dec!(4000)),
                installment("2026-11-15", dec!(4000)),
                installment("2026-12-15", dec!(2000)),
            ],
        },
    );

    let mut delivery = ContractLine::new("l-ms", "Delivery", BillingModel::Milestone);
    delivery.quantity = Some(dec!(1));
    delivery.unit_price = Some(dec!(20000));

    let mut support = ContractLine::new(
        "l-rt",
        "Support",
        BillingModel::Retainer {
            starts_on: day("2026-10-01"),
            ends_on: None,
            cadence: Cadence::Monthly,
        },
    );
    support.unit_price = Some(dec!(1500));

    let mut advisory = ContractLine::new(
        "l-pp",
        "Advisory",
        BillingModel::PrepaidHours {
            overage_rate: Some(dec!(150)),
            drawn_before: dec!(12),
        },
    );
    advisory.quantity = Some(dec!(20));
    advisory.unit_price = Some(dec!(130));

    let mut licences = ContractLine::new(
        "l-mn",
        "Licences",
        BillingModel::Manual { delivered: dec!(8) },
    );
    licences.unit_price = Some(dec!(45));

    vec![consulting, design, delivery, support, advisory, licences]
}

fn books() -> Books {
    let rate_card = RateCard::from_json(
        &json!({"roles": {"Consultant": "120"}, "people": {"e-ada": "175"}}),
        eur(),
    )
    .unwrap();
    let taxes = TaxTable::from_json(&json!({
        "firm_country": "IT",
        "countries": {"IT": {"eu": true, "default": "22"}, "DE": {"eu": true, "default": "19"}}
    }))
    .unwrap();
    let rules = BillingRules::from_json(
        Some(&json!({
            "requires_po": true,
            "min_invoice_amount": "500",
            "max_hours_per_line": "200",
            "group_by": "project"
        })),
        Some(&json!({"rounding": "per_document", "expense_markup": "5"})),
    )
    .unwrap();

    let mut o2 = time("o2", "2026-10-21", "e-bob", "Consultant", dec!(3.5), "l-tm");
    if let ItemKind::Time { state, .. } = &mut o2.kind {
        *state = EntryState::Invoiced;
    }
    let mut n3 = time("n3", "2026-11-05", "e-bob", "Consultant", dec!(4), "l-tm");
    n3.project = Some("p2".into());
    let mut n6 = time("n6", "2026-11-20", "e-bob", "Consultant", dec!(3), "l-tm");
    if let ItemKind::Time { state, .. } = &mut n6.kind {
        *state = EntryState::Submitted;
    }
    let mut m2 = milestone("m2", "2026-11-28", Some(dec!(3000)), None);
    if let ItemKind::Milestone { state, .. } = &mut m2.kind {
        *state = MilestoneState::Reached;
    }
    let items = vec![
        time("o1", "2026-10-20", "e-bob", "Consultant", dec!(4.5), "l-tm"),
        o2,
        time("o3", "2026-10-22", "e-bob", "Consultant", dec!(12), "l-pp"),
        time("n1", "2026-11-02", "e-ada", "Consultant", dec!(6), "l-tm"),
        time("n2", "2026-11-03", "e-bob", "Consultant", dec!(8), "l-tm"),
        n3,
        time("n4", "2026-11-06", "e-cy", "Analyst", dec!(2), "l-tm"),
        time("n5", "2026-11-09", "e-bob", "Consultant", dec!(10), "l-pp"),
        n6,
        milestone("m1", "2026-11-25", None, Some(dec!(25))),
        m2,
        expense("x1", "2026-11-10", "Travel", dec!(240), true),
        expense("x2", "2026-11-11", "Travel", dec!(60), true),
        expense("x3", "2026-11-12", "Meals", dec!(35.50), true),
        expense("x4", "2026-11-13", "Meals", dec!(18), false),
    ];

    // October's invoice billed o1, o2, the first installment and retainer period, the
    // prepaid block with 12 hours drawn, and 5 licences. A credit note then returned o2.
    let october = BillingDocument {
        id: "inv-10".into(),
        move_type: MoveType::Invoice,
        state: DocumentState::Released,
        issue_date: Some(day("2026-10-31")),
        untaxed: dec!(9285),
        purchase_order: Some("PO-1".into()),
        sources: vec![
            source(Kind::Timesheet, "o1", dec!(4.5)),
            source(Kind::Timesheet, "o2", dec!(3.5)),
            source(Kind::Timesheet, "o3", dec!(12)),
            source(Kind::ContractLine, "l-ff", dec!(1)),
            source(Kind::ContractLine, "l-rt", dec!(1)),
            source(Kind::ContractLine, "l-pp", dec!(20)),
            source(Kind::ContractLine, "l-mn", dec!(5)),
        ],
    };
    let credit = BillingDocument {
        id: "cn-10".into(),
        move_type: MoveType::CreditNote,
        state: DocumentState::Released,
        issue_date: Some(day("2026-11-05")),
        untaxed: dec!(-420),
        purchase_order: Some("PO-1".into()),
        sources: vec![source(Kind::Timesheet, "o2", dec!(-3.5))],
    };

    Books {
        contract: Contract {
            id: "k-acme".into(),
            reference: None,
            start_date: None,
            currency: eur(),
            rate_card,
            cap: Some(dec!(60000)),
            purchase_order: Some(PurchaseOrder {
                number: "PO-1".into(),
                amount: Some(dec!(50000)),
                valid_until: Some(day("2026-12-31")),
            }),
        },
        lines: lines(),
        client: Client {
            id: "c-acme".into(),
            country: Some("IT".into()),
            is_business: true,
        },
        items,
        documents: vec![october, credit],
        taxes,
        rules,
    }
}

fn line_summary(draft: &Draft) -> Vec<(LineKind, String, Decimal, Decimal)> {
    draft
        .lines
        .iter()
        .map(|l| {
            (
                l.kind,
                l.description.clone(),
                l.quantity,
                l.unit_price.amount,
            )
        })
        .collect()
}

#[test]
fn november_is_gated_drafted_released_and_reconciled() {
    let mut books = books();
    let november = Period::new(day("2026-11-01"), day("2026-11-30")).unwrap();
    let issue_date = day("2026-12-01");

    // The gate first blocks on the submitted entry and the unaccepted milestone.
    let gate = readiness::check(&books.input(november, issue_date), None);
    assert!(!gate.ready);
    let codes: Vec<IssueCode> = gate.blockers.iter().map(|b| b.code).collect();
    assert_eq!(codes, vec![IssueCode::NotApproved, IssueCode::NotAccepted]);
    assert_eq!(
        gate.blockers[0].records,
        vec![RecordRef::new(Kind::Timesheet, "n6")]
    );
    let report = reconcile::reconcile(&books.input(november, issue_date));
    let status = |report: &steward_billing::Reconciliation, kind, id: &str| {
        report.entry(&RecordRef::new(kind, id)).map(|e| e.status)
    };
    assert_eq!(
        status(&report, Kind::Timesheet, "n6"),
        Some(Status::NotApproved)
    );
    assert_eq!(
        status(&report, Kind::Milestone, "m2"),
        Some(Status::NotAccepted)
    );
    assert_eq!(
        status(&report, Kind::Timesheet, "n1"),
        Some(Status::Blocked)
    );
    assert_eq!(
        status(&report, Kind::Timesheet, "o2"),
        Some(Status::Blocked),
        "the credited October entry is listed while it waits to be billed again"
    );
    assert_eq!(
        status(&report, Kind::Timesheet, "o1"),
        None,
        "settled in October"
    );

    // Approval and acceptance open the gate.
    books.set_state("n6", EntryState::Approved);
    books.accept("m2");
    let gate = readiness::check(&books.input(november, issue_date), None);
    assert!(gate.ready, "{:?}", gate.blockers);
    let draft = invoice::draft(&books.input(november, issue_date)).unwrap();
    assert_eq!(Some(&draft), gate.draft.as_ref());
    assert_eq!(draft.rounding, Rounding::PerDocument);

    let expected = vec![
        (
            LineKind::Time,
            "Consulting at 110.00 EUR per hour (project p1)",
            dec!(2),
            dec!(110),
        ),
        (
            LineKind::Time,
            "Consulting at 120.00 EUR per hour (project p1)",
            dec!(14.5),
            dec!(120),
        ),
        (
            LineKind::Time,
            "Consulting at 175.00 EUR per hour (project p1)",
            dec!(6),
            dec!(175),
        ),
        (
            LineKind::Time,
            "Consulting at 120.00 EUR per hour (project p2)",
            dec!(4),
            dec!(120),
        ),
        (
            LineKind::FixedFee,
            "Design: installment due 2026-11-15",
            dec!(1),
            dec!(4000),
        ),
        (
            LineKind::Milestone,
            "Delivery: milestone acceptance m1",
            dec!(1),
            dec!(5000),
        ),
        (
            LineKind::Milestone,
            "Delivery: milestone acceptance m2",
            dec!(1),
            dec!(3000),
        ),
        (
            LineKind::Retainer,
            "Support: 2026-11-01 to 2026-11-30",
            dec!(1),
            dec!(1500),
        ),
        (
            LineKind::PrepaidDrawdown,
            "Advisory: 8 h drawn from the prepaid block, 0 h of 20 h left",
            dec!(8),
            dec!(0),
        ),
        (
            LineKind::PrepaidOverage,
            "Advisory: 2 h beyond the prepaid block of 20 h, at 150.00 EUR per hour",
            dec!(2),
            dec!(150),
        ),
        (LineKind::Manual, "Licences", dec!(3), dec!(45)),
        (
            LineKind::Expense,
            "Meals expenses at cost plus 5% (project p1)",
            dec!(1),
            dec!(37.28),
        ),
        (
            LineKind::Expense,
            "Travel expenses at cost plus 5% (project p1)",
            dec!(1),
            dec!(315),
        ),
    ];
    let expected: Vec<(LineKind, String, Decimal, Decimal)> = expected
        .into_iter()
        .map(|(kind, text, quantity, price)| (kind, text.to_string(), quantity, price))
        .collect();
    assert_eq!(line_summary(&draft), expected);

    // The re-billed credited hours and the late-approved entry are on the p1 line at 120.
    let sources_json = serde_json::to_value(&draft.lines[1].sources).unwrap();
    assert_eq!(
        sources_json,
        json!([
            {"kind": "timesheet", "id": "o2", "quantity": "3.5"},
            {"kind": "timesheet", "id": "n2", "quantity": "8"},
            {"kind": "timesheet", "id": "n6", "quantity": "3"}
        ])
    );
    // The marked-up meals price is a unit price, so it is rounded first (37.275 to 37.28);
    // tax is 22 % of the untaxed 17777.28, 3911.0016.
    assert_eq!(draft.untaxed.amount.to_string(), "17777.28");
    assert_eq!(draft.tax.amount.to_string(), "3911.00");
    assert_eq!(draft.total.amount.to_string(), "21688.28");
    let line_totals: Decimal = draft.lines.iter().map(|l| l.total.amount).sum();
    assert_eq!(line_totals, draft.total.amount);
    assert_eq!(draft.prepaid[0].overage_hours, dec!(2));

    // Released, the period reconciles: every item invoiced once or not billable.
    books.release("inv-11", &draft);
    let report = reconcile::reconcile(&books.input(november, issue_date));
    let open: Vec<_> = report.open_entries().collect();
    assert!(open.is_empty(), "{open:#?}");
    assert_eq!(
        status(&report, Kind::Expense, "x4"),
        Some(Status::NotBillable)
    );
    assert_eq!(
        status(&report, Kind::Timesheet, "n6"),
        Some(Status::Invoiced)
    );
    assert_eq!(
        status(&report, Kind::ContractLine, "l-mn"),
        Some(Status::Invoiced)
    );
    assert_eq!(
        status(&report, Kind::ContractLine, "l-pp"),
        Some(Status::Invoiced)
    );

    // Nothing can be billed twice: the same period now has nothing left.
    let again = invoice::draft(&books.input(november, issue_date)).unwrap_err();
    let codes: Vec<IssueCode> = again.issues.iter().map(|i| i.code).collect();
    assert_eq!(codes, vec![IssueCode::NothingToBill]);

    // December bills only what fell due in December, and the gate finds the purchase order
    // expired by the January issue date.
    let december = Period::new(day("2026-12-01"), day("2026-12-31")).unwrap();
    let january = day("2027-01-04");
    let next = invoice::draft(&books.input(december, january)).unwrap();
    let descriptions: Vec<&str> = next.lines.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(
        descriptions,
        vec![
            "Design: installment due 2026-12-15",
            "Support: 2026-12-01 to 2026-12-31"
        ]
    );
    let gate = readiness::check(&books.input(december, january), None);
    let codes: Vec<IssueCode> = gate.blockers.iter().map(|b| b.code).collect();
    assert_eq!(codes, vec![IssueCode::PurchaseOrderExpired]);
}
