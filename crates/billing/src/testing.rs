//! Builders for the unit tests: a firm in Italy billing a contract in euros.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;
use steward_domain::{Currency, Kind, Money, RecordRef};

use crate::input::{
    BillableItem, BillingDocument, BillingInput, BillingModel, Client, Contract, ContractLine,
    DocumentState, EntryState, ItemKind, MilestoneState, MoveType, Period,
};
use crate::quantity::Source;
use crate::rates::RateCard;
use crate::rules::BillingRules;
use crate::tax::TaxTable;

pub fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap()
}

/// One contract's data for November 2026, owned so that tests can change any part.
pub struct Fixture {
    pub contract: Contract,
    pub lines: Vec<ContractLine>,
    pub client: Client,
    pub period: Period,
    pub issue_date: NaiveDate,
    pub items: Vec<BillableItem>,
    pub documents: Vec<BillingDocument>,
    pub taxes: TaxTable,
    pub rules: BillingRules,
}

impl Fixture {
    /// Builds a contract in `code` for an Italian business client, with the rate card
    /// Consultant 120, Senior 150 and employee e-ada 175, and no lines.
    pub fn new(code: &str) -> Fixture {
        let currency = currency(code);
        let rate_card = RateCard::from_json(
            &json!({
                "roles": {"Consultant": "120", "Senior": "150"},
                "people": {"e-ada": "175"}
            }),
            currency,
        )
        .unwrap();
        Fixture {
            contract: Contract {
                id: "k1".into(),
                reference: None,
                start_date: None,
                currency,
                rate_card,
                cap: None,
                purchase_order: None,
            },
            lines: Vec::new(),
            client: Client {
                id: "c1".into(),
                country: Some("IT".into()),
                is_business: true,
            },
            period: Period::new(day("2026-11-01"), day("2026-11-30")).unwrap(),
            issue_date: day("2026-12-01"),
            items: Vec::new(),
            documents: Vec::new(),
            taxes: TaxTable::from_json(&json!({
                "firm_country": "IT",
                "countries": {
                    "IT": {"eu": true, "default": "22", "categories": {"training": "10"}},
                    "DE": {"eu": true, "default": "19"},
                    "JP": {"eu": false, "default": "10"}
                }
            }))
            .unwrap(),
            rules: BillingRules::default(),
        }
    }

    pub fn input(&self) -> BillingInput<'_> {
        BillingInput {
            contract: &self.contract,
            lines: &self.lines,
            client: &self.client,
            period: self.period,
            issue_date: self.issue_date,
            items: &self.items,
            documents: &self.documents,
            taxes: &self.taxes,
            rules: &self.rules,
        }
    }

    /// Adds a contract line and returns it for further settings.
    pub fn line(&mut self, id: &str, model: BillingModel) -> &mut ContractLine {
        self.lines
            .push(ContractLine::new(id, format!("Line {id}"), model));
        self.lines.last_mut().unwrap()
    }

    /// Adds a timesheet entry on line `line`, approved and billable.
    pub fn time(
        &mut self,
        id: &str,
        date: &str,
        employee: &str,
        role: &str,
        hours: Decimal,
        line: &str,
    ) {
        self.items.push(BillableItem {
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
        });
    }

    /// Adds an approved billable expense in the contract's currency.
    pub fn expense(&mut self, id: &str, date: &str, category: &str, amount: Decimal) {
        let amount = Money::new(amount, self.contract.currency).unwrap();
        self.items.push(BillableItem {
            id: id.into(),
            date: day(date),
            contract_line: None,
            project: Some("p1".into()),
            description: None,
            kind: ItemKind::Expense {
                category: category.into(),
                amount,
                billable: true,
                state: EntryState::Approved,
            },
        });
    }

    /// Adds an accepted milestone on `line` with a fixed amount or a percentage.
    pub fn milestone(
        &mut self,
        id: &str,
        date: &str,
        line: Option<&str>,
        amount: Option<Decimal>,
        percentage: Option<Decimal>,
    ) {
        let currency = self.contract.currency;
        self.items.push(BillableItem {
            id: id.into(),
            date: day(date),
            contract_line: line.map(str::to_string),
            project: Some("p1".into()),
            description: Some(format!("Phase {id}")),
            kind: ItemKind::Milestone {
                amount: amount.map(|a| Money::new(a, currency).unwrap()),
                percentage,
                state: MilestoneState::Accepted,
            },
        });
    }

    /// Sets the state of the time entry or expense `id`.
    pub fn set_entry_state(&mut self, id: &str, new_state: EntryState) {
        let item = self.items.iter_mut().find(|i| i.id == id).unwrap();
        match &mut item.kind {
            ItemKind::Time { state, .. } | ItemKind::Expense { state, .. } => *state = new_state,
            ItemKind::Milestone { .. } => panic!("{id} is a milestone"),
        }
    }

    /// Sets the state of the milestone `id`.
    pub fn set_milestone_state(&mut self, id: &str, new_state: MilestoneState) {
        let item = self.items.iter_mut().find(|i| i.id == id).unwrap();
        match &mut item.kind {
            ItemKind::Milestone { state, .. } => *state = new_state,
            _ => panic!("{id} is not a milestone"),
        }
    }

    /// Adds an issued invoice of `untaxed` billing `sources`.
    pub fn invoiced(&mut self, id: &str, date: &str, untaxed: Decimal, sources: Vec<Source>) {
        self.documents
            .push(document(id, MoveType::Invoice, date, untaxed, sources));
    }

    /// Adds an issued credit note returning `sources`.
    pub fn credited(&mut self, id: &str, date: &str, untaxed: Decimal, sources: Vec<Source>) {
        self.documents
            .push(document(id, MoveType::CreditNote, date, untaxed, sources));
    }
}

pub fn document(
    id: &str,
    move_type: MoveType,
    date: &str,
    untaxed: Decimal,
    sources: Vec<Source>,
) -> BillingDocument {
    BillingDocument {
        id: id.into(),
        move_type,
        state: DocumentState::Released,
        issue_date: Some(day(date)),
        untaxed,
        purchase_order: None,
        sources,
    }
}

pub fn source(kind: Kind, id: &str, quantity: Decimal) -> Source {
    Source::new(RecordRef::new(kind, id), quantity)
}
