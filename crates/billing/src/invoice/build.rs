//! Turns ready items and contract-line terms into priced invoice lines, collecting every
//! problem on the way instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use steward_domain::{Currency, Kind, Money, RecordRef};

use super::totals::{LineAmounts, compute_totals};
use super::{Draft, DraftLine, LineKind, PrepaidUsage};
use crate::input::{
    BillableItem, BillingInput, BillingModel, Cadence, ContractLine, Installment, ItemKind,
};
use crate::issue::{Issue, IssueCode};
use crate::quantity::{Ledger, Source};
use crate::rules::GroupBy;
use crate::tax::{DEFAULT_CATEGORY, EXPENSE_CATEGORY, TaxRate};

/// The draft when anything could be billed, and the problems with what could not.
pub(crate) struct Outcome {
    pub draft: Option<Draft>,
    pub issues: Vec<Issue>,
}

/// Drafts what `input` has ready. [`super::draft`] lists what each model bills.
pub(crate) fn build(input: &BillingInput, ledger: &Ledger) -> Outcome {
    let mut builder = Builder {
        input,
        ledger,
        currency: input.contract.currency,
        lines: Vec::new(),
        issues: Vec::new(),
        prepaid: Vec::new(),
    };
    let routed = builder.route();

    for line in input.lines {
        let Some(tax) = builder.line_tax(line) else {
            continue;
        };
        let time = routed
            .time
            .get(line.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        match &line.model {
            BillingModel::TimeAndMaterials => builder.time_lines(line, tax, time),
            BillingModel::FixedFee { schedule } => builder.installment_lines(line, tax, schedule),
            BillingModel::Retainer {
                starts_on,
                ends_on,
                cadence,
            } => builder.retainer_lines(line, tax, *starts_on, *ends_on, *cadence),
            BillingModel::PrepaidHours {
                overage_rate,
                drawn_before,
            } => builder.prepaid_lines(line, tax, *overage_rate, *drawn_before, time),
            BillingModel::Manual { delivered } => builder.manual_line(line, tax, *delivered),
            BillingModel::Milestone => {}
        }
        if let Some(milestones) = routed.milestones.get(line.id.as_str()) {
            builder.milestone_lines(Some(line), tax, milestones);
        }
    }
    if !routed.unlined_milestones.is_empty()
        && let Some(tax) = builder.table_tax(DEFAULT_CATEGORY)
    {
        builder.milestone_lines(None, tax, &routed.unlined_milestones);
    }
    builder.expense_lines(&routed.expenses);
    builder.finish()
}

/// Builds the issue raised when the period ends before the contract's start date, so none of
/// its days are the contract's to bill. Returns `None` when the contract has started by then
/// or its start date is unknown.
pub(crate) fn before_contract_start(input: &BillingInput) -> Option<Issue> {
    let start = input.contract.start_date?;
    if input.period.end() >= start {
        return None;
    }
    let first_month = start.format("%Y-%m");
    Some(Issue::new(
        IssueCode::BeforeContractStart,
        vec![input.contract.record()],
        format!(
            "contract {} starts on {start}, after the period {}, so it has nothing to bill in it",
            input.contract.label(),
            input.period
        ),
        format!("bill the contract from its first month, {first_month}, on"),
    ))
}

/// Builds the issue raised when nothing in the period is left to bill.
pub(crate) fn nothing_to_bill(input: &BillingInput) -> Issue {
    Issue::new(
        IssueCode::NothingToBill,
        vec![input.contract.record()],
        format!(
            "contract {} has nothing ready to bill up to {}",
            input.contract.label(),
            input.period.end()
        ),
        "approve the period's time and expenses, record milestone acceptances, or wait for \
         the next installment or period",
    )
}

/// A ready item and the quantity of it still to bill.
struct Ready<'a> {
    item: &'a BillableItem,
    quantity: Decimal,
}

/// Ready items sorted by what bills them.
#[derive(Default)]
struct Routed<'a> {
    /// Time on lines billed by the hour, by contract line id.
    time: HashMap<&'a str, Vec<Ready<'a>>>,
    /// Milestones by contract line id.
    milestones: HashMap<&'a str, Vec<Ready<'a>>>,
    /// Milestones with a fixed amount and no contract line.
    unlined_milestones: Vec<Ready<'a>>,
    expenses: Vec<Ready<'a>>,
}

/// An invoice line before rounding.
struct PendingLine {
    kind: LineKind,
    description: String,
    contract_line: Option<String>,
    service: Option<String>,
    unit: Option<String>,
    quantity: Decimal,
    unit_price: Decimal,
    discount: Decimal,
    tax: TaxRate,
    sources: Vec<Source>,
}

impl PendingLine {
    /// Starts a line drawn from `line`, with its discount, service and unit.
    fn on(line: &ContractLine, kind: LineKind, tax: TaxRate) -> PendingLine {
        PendingLine {
            kind,
            description: line.name.clone(),
            contract_line: Some(line.id.clone()),
            service: line.service.clone(),
            unit: line.unit.clone(),
            quantity: Decimal::ONE,
            unit_price: Decimal::ZERO,
            discount: line.discount,
            tax,
            sources: Vec::new(),
        }
    }
}

struct Builder<'a> {
    input: &'a BillingInput<'a>,
    ledger: &'a Ledger,
    currency: Currency,
    lines: Vec<PendingLine>,
    issues: Vec<Issue>,
    prepaid: Vec<PrepaidUsage>,
}

impl<'a> Builder<'a> {
    fn money(&self, amount: Decimal) -> Money {
        Money::round(amount, self.currency)
    }

    fn push_issue(&mut self, issue: Issue) {
        if !self.issues.contains(&issue) {
            self.issues.push(issue);
        }
    }

    /// Sorts the ready items with a quantity left to bill, reporting items whose contract
    /// line is missing or unknown and expenses in another currency.
    fn route(&mut self) -> Routed<'a> {
        let input = self.input;
        let lines: HashMap<&str, &ContractLine> =
            input.lines.iter().map(|l| (l.id.as_str(), l)).collect();
        let mut routed = Routed::default();
        let mut unlined_time: Vec<&BillableItem> = Vec::new();
        let mut unknown_lines: BTreeMap<&str, Vec<&BillableItem>> = BTreeMap::new();
        let mut foreign_expenses: BTreeMap<&'static str, Vec<&BillableItem>> = BTreeMap::new();

        for item in input.items {
            if item.date > input.period.end() || !item.is_billable() || !item.is_ready() {
                continue;
            }
            let quantity = self.ledger.item_position(item).billable();
            if quantity.is_zero() {
                continue;
            }
            let ready = Ready { item, quantity };
            let line = item.contract_line.as_deref().map(|id| (id, lines.get(id)));
            match (&item.kind, line) {
                (ItemKind::Expense { amount, .. }, _) if amount.currency != self.currency => {
                    foreign_expenses
                        .entry(amount.currency.code())
                        .or_default()
                        .push(item);
                }
                (ItemKind::Expense { .. }, _) => routed.expenses.push(ready),
                (ItemKind::Time { .. }, None) => unlined_time.push(item),
                (
                    ItemKind::Milestone {
                        amount: Some(_), ..
                    },
                    None,
                ) => {
                    routed.unlined_milestones.push(ready);
                }
                (ItemKind::Milestone { .. }, None) => self.milestone_without_line(item),
                (_, Some((id, None))) => unknown_lines.entry(id).or_default().push(item),
                (ItemKind::Time { .. }, Some((_, Some(line)))) => {
                    if line.bills_time() {
                        routed.time.entry(line.id.as_str()).or_default().push(ready);
                    }
                }
                (ItemKind::Milestone { .. }, Some((_, Some(line)))) => {
                    routed
                        .milestones
                        .entry(line.id.as_str())
                        .or_default()
                        .push(ready);
                }
            }
        }

        if !unlined_time.is_empty() {
            self.time_without_line(&unlined_time);
        }
        for (line, items) in unknown_lines {
            self.unknown_line(line, &items);
        }
        for (code, items) in foreign_expenses {
            if let Some(currency) = Currency::from_code(code) {
                self.foreign_expenses(currency, &items);
            }
        }
        routed
    }

    fn time_without_line(&mut self, entries: &[&BillableItem]) {
        let hours: Decimal = entries.iter().map(|e| e.delivered()).sum();
        self.push_issue(Issue::new(
            IssueCode::MissingContractLine,
            entries.iter().map(|e| e.record()).collect(),
            format!(
                "{} approved billable timesheet entries ({} h) name no contract line, so their \
                 rate is unknown",
                entries.len(),
                hours.normalize()
            ),
            "set each entry's contract line, or its task's, to the line the time bills to",
        ));
    }

    fn milestone_without_line(&mut self, milestone: &BillableItem) {
        self.push_issue(Issue::new(
            IssueCode::MissingContractLine,
            vec![milestone.record()],
            format!(
                "milestone {} has no fixed amount and names no contract line to take a \
                 percentage of",
                milestone.id
            ),
            "set the milestone's contract line, or give it a fixed amount",
        ));
    }

    fn unknown_line(&mut self, line: &str, items: &[&BillableItem]) {
        let contract = self.input.contract.label();
        self.push_issue(Issue::new(
            IssueCode::UnknownContractLine,
            items.iter().map(|i| i.record()).collect(),
            format!(
                "{} items name contract line {line}, which is not a line of contract {contract}",
                items.len()
            ),
            format!("correct the items' contract line, or add line {line} to contract {contract}"),
        ));
    }

    fn foreign_expenses(&mut self, currency: Currency, expenses: &[&BillableItem]) {
        let total: Decimal = expenses
            .iter()
            .filter_map(|e| match &e.kind {
                ItemKind::Expense { amount, .. } => Some(amount.amount),
                _ => None,
            })
            .sum();
        self.push_issue(Issue::new(
            IssueCode::CurrencyMismatch,
            expenses.iter().map(|e| e.record()).collect(),
            format!(
                "{} in {currency} ({}) cannot be rebilled on contract {}, which bills in {}",
                match expenses.len() {
                    1 => "1 approved billable expense".to_string(),
                    n => format!("{n} approved billable expenses"),
                },
                Money::round(total, currency),
                self.input.contract.label(),
                self.currency
            ),
            format!(
                "record the expenses' amounts converted to {}",
                self.currency
            ),
        ));
    }

    /// Finds the tax rate of lines drawn from `line`: the line's own rate, else the tax
    /// table's. Reports the problem and returns `None` when the table has no rate.
    fn line_tax(&mut self, line: &ContractLine) -> Option<TaxRate> {
        if let Some(percent) = line.tax_rate {
            return Some(TaxRate::standard(percent));
        }
        self.table_tax(line.tax_category.as_deref().unwrap_or(DEFAULT_CATEGORY))
    }

    fn table_tax(&mut self, category: &str) -> Option<TaxRate> {
        match self.input.taxes.rate(self.input.client, category) {
            Ok(rate) => Some(rate),
            Err(error) => {
                let client = RecordRef::new(Kind::Client, self.input.client.id.clone());
                self.push_issue(Issue::new(
                    IssueCode::TaxUnavailable,
                    vec![client],
                    error.message(),
                    error.fix(),
                ));
                None
            }
        }
    }

    /// Checks that `amount` can be a unit price in the contract's currency, reporting it as
    /// `label` with `records` when it cannot.
    fn valid_price(&mut self, amount: Decimal, label: &str, records: &[RecordRef]) -> bool {
        let problem = if amount < Decimal::ZERO {
            "is negative"
        } else if Money::new(amount, self.currency).is_err() {
            "is finer than the currency's minor unit"
        } else {
            return true;
        };
        let currency = self.currency;
        self.push_issue(Issue::new(
            IssueCode::InvalidAmount,
            records.to_vec(),
            format!("{label} of {amount} {currency} {problem}"),
            format!(
                "correct it to a non-negative amount with at most {} decimals",
                currency.minor_units()
            ),
        ));
        false
    }

    /// Time and materials: hours × rate, one line per rate and group.
    fn time_lines(&mut self, line: &ContractLine, tax: TaxRate, entries: &[Ready]) {
        let card = &self.input.contract.rate_card;
        let group_by = self.input.rules.group_by;
        let mut groups: BTreeMap<(String, Decimal), (Decimal, Vec<Source>)> = BTreeMap::new();
        let mut unpriced: BTreeMap<(&str, Option<&str>), Vec<&Ready>> = BTreeMap::new();

        for entry in entries {
            let ItemKind::Time { employee, role, .. } = &entry.item.kind else {
                continue;
            };
            match card.resolve(employee, role.as_deref(), line.unit_price) {
                Ok(rate) => {
                    let label = match group_by {
                        GroupBy::ContractLine => String::new(),
                        GroupBy::Project => entry.item.project.clone().unwrap_or_default(),
                        GroupBy::Employee => employee.clone(),
                    };
                    let group = groups.entry((label, rate.amount)).or_default();
                    group.0 += entry.quantity;
                    group
                        .1
                        .push(Source::new(entry.item.record(), entry.quantity));
                }
                Err(_) => {
                    let key = (employee.as_str(), role.as_deref());
                    unpriced.entry(key).or_default().push(entry);
                }
            }
        }

        for ((employee, role), entries) in unpriced {
            self.missing_time_rate(line, employee, role, &entries);
        }
        for ((label, rate), (hours, sources)) in groups {
            let records: Vec<RecordRef> = sources.iter().map(Source::record).collect();
            if !self.valid_price(rate, &format!("the hourly rate on {}", line.name), &records) {
                continue;
            }
            let mut description = format!("{} at {} per hour", line.name, self.money(rate));
            match group_by {
                GroupBy::ContractLine => {}
                GroupBy::Project if label.is_empty() => description.push_str(" (no project)"),
                GroupBy::Project => description.push_str(&format!(" (project {label})")),
                GroupBy::Employee => description.push_str(&format!(" (employee {label})")),
            }
            self.lines.push(PendingLine {
                description,
                quantity: hours,
                unit_price: rate,
                sources,
                ..PendingLine::on(line, LineKind::Time, tax)
            });
        }
    }

    fn missing_time_rate(
        &mut self,
        line: &ContractLine,
        employee: &str,
        role: Option<&str>,
        entries: &[&Ready],
    ) {
        let hours: Decimal = entries.iter().map(|e| e.quantity).sum();
        let contract = self.input.contract.label();
        let mut records: Vec<RecordRef> = entries.iter().map(|e| e.item.record()).collect();
        records.push(line.record());
        let person = match role {
            Some(role) => format!("employee {employee} (role `{role}`)"),
            None => format!("employee {employee} (no role)"),
        };
        let fix = match role {
            Some(role) => format!(
                "add `{employee}` under `people` or `{role}` under `roles` in the rate card of \
                 contract {contract}, or set a unit price on contract line {}",
                line.id
            ),
            None => format!(
                "add `{employee}` under `people` in the rate card of contract {contract}, give \
                 the entries a role, or set a unit price on contract line {}",
                line.id
            ),
        };
        self.push_issue(Issue::new(
            IssueCode::MissingRate,
            records,
            format!(
                "{} timesheet entries ({} h) of {person} on contract line {} have no rate",
                entries.len(),
                hours.normalize(),
                line.id
            ),
            fix,
        ));
    }

    /// Fixed fee: each installment due by the period's end that is not billed yet. Earlier
    /// installments are taken as billed first.
    fn installment_lines(&mut self, line: &ContractLine, tax: TaxRate, schedule: &[Installment]) {
        if schedule.is_empty() {
            self.incomplete(
                line,
                format!(
                    "fixed-fee contract line {} has no schedule of amounts",
                    line.id
                ),
                "add the installments, each with a due date and an amount, to the line's schedule",
            );
            return;
        }
        let mut due: Vec<&Installment> = schedule
            .iter()
            .filter(|i| i.due_on <= self.input.period.end())
            .collect();
        due.sort_by_key(|i| i.due_on);
        let position = self
            .ledger
            .position(&line.record(), Decimal::from(due.len()));
        let unbilled = whole_units(position.billable()).min(due.len());

        for installment in &due[due.len() - unbilled..] {
            let label = format!(
                "the installment of {} due {}",
                line.name, installment.due_on
            );
            if !self.valid_price(installment.amount, &label, &[line.record()]) {
                continue;
            }
            let description = installment.description.clone().unwrap_or_else(|| {
                format!("{}: installment due {}", line.name, installment.due_on)
            });
            self.lines.push(PendingLine {
                description,
                unit_price: installment.amount,
                sources: vec![Source::new(line.record(), Decimal::ONE)],
                ..PendingLine::on(line, LineKind::FixedFee, tax)
            });
        }
    }

    /// Retainer: each period started by the period's end that is not billed yet.
    fn retainer_lines(
        &mut self,
        line: &ContractLine,
        tax: TaxRate,
        starts_on: NaiveDate,
        ends_on: Option<NaiveDate>,
        cadence: Cadence,
    ) {
        let Some(price) = line.unit_price else {
            self.incomplete(
                line,
                format!("retainer contract line {} has no unit price", line.id),
                "set the line's unit price to the amount billed each period",
            );
            return;
        };
        if !self.valid_price(
            price,
            &format!("the unit price of {}", line.name),
            &[line.record()],
        ) {
            return;
        }
        let starts = cadence.period_starts(starts_on, ends_on, self.input.period.end());
        let position = self
            .ledger
            .position(&line.record(), Decimal::from(starts.len()));
        let unbilled = whole_units(position.billable()).min(starts.len());

        let first_unbilled = starts.len() - unbilled;
        for (index, start) in starts.iter().enumerate().skip(first_unbilled) {
            let period_index = u32::try_from(index).unwrap_or(u32::MAX);
            let description = match cadence.period_end(starts_on, period_index) {
                Some(end) => format!("{}: {start} to {end}", line.name),
                None => format!("{}: from {start}", line.name),
            };
            self.lines.push(PendingLine {
                description,
                unit_price: price,
                sources: vec![Source::new(line.record(), Decimal::ONE)],
                ..PendingLine::on(line, LineKind::Retainer, tax)
            });
        }
    }

    /// Prepaid hours: the block while unbilled, then the drawdown and the overage. Entries
    /// draw the block in date order.
    fn prepaid_lines(
        &mut self,
        line: &ContractLine,
        tax: TaxRate,
        overage_rate: Option<Decimal>,
        drawn_before: Decimal,
        entries: &[Ready],
    ) {
        let Some(block) = line.quantity.filter(|q| *q > Decimal::ZERO) else {
            self.incomplete(
                line,
                format!("prepaid-hours contract line {} has no block size", line.id),
                "set the line's quantity to the hours of the prepaid block",
            );
            return;
        };
        self.prepaid_block(line, tax, block);

        let mut ordered: Vec<&Ready> = entries.iter().collect();
        ordered.sort_by(|a, b| (a.item.date, &a.item.id).cmp(&(b.item.date, &b.item.id)));
        let mut remaining = (block - drawn_before).max(Decimal::ZERO);
        let (mut drawn, mut drawn_hours) = (Vec::new(), Decimal::ZERO);
        let (mut over, mut over_hours) = (Vec::new(), Decimal::ZERO);
        for entry in ordered {
            let draw = entry.quantity.min(remaining);
            remaining -= draw;
            let beyond = entry.quantity - draw;
            if !draw.is_zero() {
                drawn.push(Source::new(entry.item.record(), draw));
                drawn_hours += draw;
            }
            if !beyond.is_zero() {
                over.push(Source::new(entry.item.record(), beyond));
                over_hours += beyond;
            }
        }

        if !drawn_hours.is_zero() {
            self.lines.push(PendingLine {
                description: format!(
                    "{}: {} h drawn from the prepaid block, {} h of {} h left",
                    line.name,
                    drawn_hours.normalize(),
                    remaining.normalize(),
                    block.normalize()
                ),
                quantity: drawn_hours,
                sources: drawn,
                ..PendingLine::on(line, LineKind::PrepaidDrawdown, tax)
            });
        }
        if !over_hours.is_zero() {
            self.overage_line(line, tax, block, overage_rate, over_hours, over);
        }
        self.prepaid.push(PrepaidUsage {
            contract_line: line.id.clone(),
            block_hours: block,
            drawn_before,
            drawn_now: drawn_hours,
            remaining,
            overage_hours: over_hours,
        });
    }

    fn prepaid_block(&mut self, line: &ContractLine, tax: TaxRate, block: Decimal) {
        let Some(price) = line.unit_price else {
            return;
        };
        let unbilled = self.ledger.position(&line.record(), block).billable();
        let label = format!("the hourly price of the prepaid block of {}", line.name);
        if unbilled.is_zero() || !self.valid_price(price, &label, &[line.record()]) {
            return;
        }
        self.lines.push(PendingLine {
            description: format!("{}: prepaid block of {} h", line.name, block.normalize()),
            quantity: unbilled,
            unit_price: price,
            sources: vec![Source::new(line.record(), unbilled)],
            ..PendingLine::on(line, LineKind::PrepaidBlock, tax)
        });
    }

    fn overage_line(
        &mut self,
        line: &ContractLine,
        tax: TaxRate,
        block: Decimal,
        overage_rate: Option<Decimal>,
        hours: Decimal,
        sources: Vec<Source>,
    ) {
        let mut records: Vec<RecordRef> = sources.iter().map(Source::record).collect();
        records.push(line.record());
        let Some(rate) = overage_rate else {
            self.push_issue(Issue::new(
                IssueCode::MissingRate,
                records,
                format!(
                    "{} h of {} timesheet entries go beyond the {} h prepaid block of contract \
                     line {}, which has no overage rate",
                    hours.normalize(),
                    sources.len(),
                    block.normalize(),
                    line.id
                ),
                format!("set the overage rate of contract line {}", line.id),
            ));
            return;
        };
        if !self.valid_price(
            rate,
            &format!("the overage rate of {}", line.name),
            &records,
        ) {
            return;
        }
        self.lines.push(PendingLine {
            description: format!(
                "{}: {} h beyond the prepaid block of {} h, at {} per hour",
                line.name,
                hours.normalize(),
                block.normalize(),
                self.money(rate)
            ),
            quantity: hours,
            unit_price: rate,
            sources,
            ..PendingLine::on(line, LineKind::PrepaidOverage, tax)
        });
    }

    /// Manual: the delivered quantity not billed yet, at the unit price.
    fn manual_line(&mut self, line: &ContractLine, tax: TaxRate, delivered: Decimal) {
        let unbilled = self.ledger.position(&line.record(), delivered).billable();
        if unbilled.is_zero() {
            return;
        }
        let Some(price) = line.unit_price else {
            self.push_issue(Issue::new(
                IssueCode::MissingRate,
                vec![line.record()],
                format!(
                    "contract line {} has {} {} delivered and not billed, but no unit price",
                    line.id,
                    unbilled.normalize(),
                    line.unit.as_deref().unwrap_or("units")
                ),
                format!("set the unit price of contract line {}", line.id),
            ));
            return;
        };
        if !self.valid_price(
            price,
            &format!("the unit price of {}", line.name),
            &[line.record()],
        ) {
            return;
        }
        self.lines.push(PendingLine {
            quantity: unbilled,
            unit_price: price,
            sources: vec![Source::new(line.record(), unbilled)],
            ..PendingLine::on(line, LineKind::Manual, tax)
        });
    }

    /// Milestones: a fixed amount, or a percentage of the line's quantity × unit price.
    fn milestone_lines(&mut self, line: Option<&ContractLine>, tax: TaxRate, milestones: &[Ready]) {
        for entry in milestones {
            let Some(price) = self.milestone_price(line, entry.item) else {
                continue;
            };
            let record = entry.item.record();
            let label = format!("the amount of milestone {}", entry.item.id);
            if !self.valid_price(price, &label, std::slice::from_ref(&record)) {
                continue;
            }
            let name = entry.item.description.as_deref().unwrap_or(&entry.item.id);
            let mut pending = match line {
                Some(line) => PendingLine::on(line, LineKind::Milestone, tax),
                None => PendingLine {
                    kind: LineKind::Milestone,
                    description: String::new(),
                    contract_line: None,
                    service: None,
                    unit: None,
                    quantity: Decimal::ONE,
                    unit_price: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax,
                    sources: Vec::new(),
                },
            };
            pending.description = match line {
                Some(line) => format!("{}: milestone {name}", line.name),
                None => format!("Milestone {name}"),
            };
            pending.quantity = entry.quantity;
            pending.unit_price = price;
            pending.sources = vec![Source::new(record, entry.quantity)];
            self.lines.push(pending);
        }
    }

    fn milestone_price(
        &mut self,
        line: Option<&ContractLine>,
        item: &BillableItem,
    ) -> Option<Decimal> {
        let ItemKind::Milestone {
            amount, percentage, ..
        } = &item.kind
        else {
            return None;
        };
        if let Some(amount) = amount {
            if amount.currency == self.currency {
                return Some(amount.amount);
            }
            self.push_issue(Issue::new(
                IssueCode::CurrencyMismatch,
                vec![item.record()],
                format!(
                    "milestone {} is {amount} but contract {} bills in {}",
                    item.id,
                    self.input.contract.label(),
                    self.currency
                ),
                format!("give the milestone its amount in {}", self.currency),
            ));
            return None;
        }
        let (Some(percentage), Some(line)) = (percentage, line) else {
            self.push_issue(Issue::new(
                IssueCode::IncompleteLine,
                vec![item.record()],
                format!(
                    "milestone {} has neither an amount nor a percentage",
                    item.id
                ),
                "set the milestone's amount, or its percentage of the contract line",
            ));
            return None;
        };
        let Some(unit_price) = line.unit_price else {
            self.push_issue(Issue::new(
                IssueCode::IncompleteLine,
                vec![item.record(), line.record()],
                format!(
                    "milestone {} is {}% of contract line {}, which has no unit price",
                    item.id,
                    percentage.normalize(),
                    line.id
                ),
                "set the line's unit price and quantity, or give the milestone a fixed amount",
            ));
            return None;
        };
        let line_total = unit_price * line.quantity.unwrap_or(Decimal::ONE);
        Some(
            self.money(line_total * percentage / Decimal::ONE_HUNDRED)
                .amount,
        )
    }

    /// Rebillable expenses: one line per category (and project under `group_by: project`),
    /// at cost plus the markup.
    fn expense_lines(&mut self, expenses: &[Ready]) {
        if expenses.is_empty() {
            return;
        }
        let Some(tax) = self.table_tax(EXPENSE_CATEGORY) else {
            return;
        };
        let by_project = self.input.rules.group_by == GroupBy::Project;
        let mut groups: BTreeMap<(&str, &str), (Decimal, Vec<Source>)> = BTreeMap::new();
        for entry in expenses {
            let ItemKind::Expense {
                category, amount, ..
            } = &entry.item.kind
            else {
                continue;
            };
            let project = match (&entry.item.project, by_project) {
                (Some(project), true) => project.as_str(),
                _ => "",
            };
            let group = groups.entry((category.as_str(), project)).or_default();
            group.0 += entry.quantity * amount.amount;
            group
                .1
                .push(Source::new(entry.item.record(), entry.quantity));
        }

        let markup = self.input.rules.expense_markup;
        for ((category, project), (cost, sources)) in groups {
            // The marked-up cost becomes the line's unit price, so it is rounded to the minor
            // unit here, before the document's rounding policy applies.
            let price = self
                .money(cost + cost * markup / Decimal::ONE_HUNDRED)
                .amount;
            let mut description = if markup.is_zero() {
                format!("{category} expenses at cost")
            } else {
                format!("{category} expenses at cost plus {}%", markup.normalize())
            };
            if !project.is_empty() {
                description.push_str(&format!(" (project {project})"));
            }
            self.lines.push(PendingLine {
                kind: LineKind::Expense,
                description,
                contract_line: None,
                service: None,
                unit: None,
                quantity: Decimal::ONE,
                unit_price: price,
                discount: Decimal::ZERO,
                tax,
                sources,
            });
        }
    }

    fn incomplete(&mut self, line: &ContractLine, message: String, fix: &str) {
        self.push_issue(Issue::new(
            IssueCode::IncompleteLine,
            vec![line.record()],
            message,
            fix,
        ));
    }

    /// Rounds the lines by the rules' policy and assembles the draft.
    fn finish(self) -> Outcome {
        if self.lines.is_empty() {
            return Outcome {
                draft: None,
                issues: self.issues,
            };
        }
        let input = self.input;
        let rounding = input.rules.rounding;
        let amounts: Vec<LineAmounts> = self
            .lines
            .iter()
            .map(|line| LineAmounts {
                quantity: line.quantity,
                unit_price: line.unit_price,
                discount: line.discount,
                tax_rate: line.tax.percent,
            })
            .collect();
        let totals = compute_totals(&amounts, self.currency, rounding);

        let mut notes = Vec::new();
        if self.lines.iter().any(|line| line.tax.reverse_charge) {
            notes.push(
                "Reverse charge: the client accounts for the VAT on these services (Council \
                 Directive 2006/112/EC, Article 196)"
                    .to_string(),
            );
        }
        let lines = self
            .lines
            .into_iter()
            .zip(totals.lines)
            .map(|(line, amounts)| DraftLine {
                kind: line.kind,
                description: line.description,
                contract_line: line.contract_line,
                service: line.service,
                unit: line.unit,
                quantity: line.quantity,
                unit_price: Money::round(line.unit_price, self.currency),
                discount: line.discount,
                tax_rate: line.tax.percent,
                reverse_charge: line.tax.reverse_charge,
                subtotal: amounts.subtotal,
                tax: amounts.tax,
                total: amounts.total,
                sources: line.sources,
            })
            .collect();
        let draft = Draft {
            contract: input.contract.id.clone(),
            client: input.client.id.clone(),
            currency: self.currency,
            period: input.period,
            issue_date: input.issue_date,
            rounding,
            lines,
            untaxed: totals.untaxed,
            tax: totals.tax,
            total: totals.total,
            notes,
            prepaid: self.prepaid,
        };
        Outcome {
            draft: Some(draft),
            issues: self.issues,
        }
    }
}

/// Counts the whole units in a non-negative quantity, such as installments or retainer
/// periods.
fn whole_units(quantity: Decimal) -> usize {
    quantity.trunc().to_usize().unwrap_or(0)
}
