//! Gathers one contract's billing data from the store into the plain input of
//! `steward-billing`: its lines and client, the time, expenses and milestones they bill, and
//! the invoices and credit notes already written, with the sources of their lines.
//!
//! An item belongs to the contract of its contract line. Time and milestones without a
//! contract line, and expenses, belong to the contract of their project: a project whose
//! `contract` names it, or that one of its lines names.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::index::Index;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;
use steward_billing::quantity::Source;
use steward_billing::{
    BillableItem, BillingDocument, BillingInput, BillingModel, BillingRules, BillingSettings,
    Cadence, Client, Contract, ContractLine, DocumentState, EntryState, InputError, Installment,
    ItemKind, MilestoneState, MoveType, Period, PurchaseOrder, RateCard, TaxTable,
};
use steward_domain::{Kind, Money, Record};

/// Contract states whose work is billed; draft and cancelled contracts bill nothing, and a
/// suspended one waits until it is resumed.
pub const BILLED_STATES: &[&str] = &["active", "closed"];

/// One contract's data, owned, ready to lend to the billing functions.
pub struct Books {
    pub record: Record,
    pub client_record: Option<Record>,
    pub contract: Contract,
    pub lines: Vec<ContractLine>,
    pub line_records: Vec<Record>,
    pub client: Client,
    pub items: Vec<BillableItem>,
    pub documents: Vec<BillingDocument>,
    /// The invoices and credit notes of the contract, as stored.
    pub document_records: Vec<Record>,
    pub rules: BillingRules,
    pub taxes: TaxTable,
    /// Timesheet entries and expenses written off, which are not billable.
    pub written_off: BTreeSet<String>,
    /// Terms that could not be read; the contract cannot be billed until they are fixed.
    pub problems: Vec<InputError>,
}

impl Books {
    pub fn input(&self, period: Period, issue_date: NaiveDate) -> BillingInput<'_> {
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

    /// Returns the contract's invoices that wait for release: drafts and drafts pending
    /// approval.
    pub fn pending_drafts(&self) -> Vec<&Record> {
        self.document_records
            .iter()
            .filter(|d| matches!(d.state.as_str(), "draft" | "pending_approval"))
            .collect()
    }
}

/// Builds the books of `contract` from the records in `index`.
pub fn load(index: &Index, contract: &Record, settings: &BillingSettings) -> Books {
    let mut problems = Vec::new();
    let client_record = contract
        .ref_id("client")
        .and_then(|id| index.client(id))
        .cloned();
    let line_records = index.lines(&contract.id).to_vec();
    let mut projects: BTreeSet<&str> = index
        .projects(&contract.id)
        .iter()
        .map(String::as_str)
        .collect();
    projects.extend(line_records.iter().filter_map(|l| l.ref_id("project")));

    let mut item_records: BTreeMap<&str, &Record> = BTreeMap::new();
    for line in &line_records {
        for record in index.items_of_line(&line.id) {
            item_records.insert(&record.id, record);
        }
    }
    for project in &projects {
        for record in index.items_of_project(project) {
            item_records.insert(&record.id, record);
        }
    }

    let currency = match contract.currency("currency") {
        Some(currency) => currency,
        None => {
            problems.push(InputError::new(
                "contract",
                format!(
                    "contract {} has no valid currency; set its `currency` to an ISO 4217 code",
                    super::contract_label(contract)
                ),
            ));
            steward_domain::Currency::from_code("EUR").expect("EUR is a currency")
        }
    };
    let rate_card =
        RateCard::from_json(contract.get("rate_card").unwrap_or(&Value::Null), currency)
            .unwrap_or_else(|error| {
                problems.push(error);
                RateCard::default()
            });
    let rules = BillingRules::from_json_over(
        settings.default_rules(),
        client_record.as_ref().and_then(|c| c.get("billing_rules")),
        contract.get("billing_rules"),
    )
    .unwrap_or_else(|error| {
        problems.push(error);
        settings.default_rules()
    });

    let mut items = Vec::with_capacity(item_records.len());
    let mut written_off = BTreeSet::new();
    for record in item_records.values() {
        if record.state == "written_off" {
            written_off.insert(record.id.clone());
        }
        if let Some(item) = item(index, record, &rate_card) {
            items.push(item);
        }
    }

    let (document_records, mut documents) = documents(index, &contract.id, &line_records);
    trace_marked_entries(index, &item_records, &mut documents);

    let mut lines = Vec::with_capacity(line_records.len());
    for record in &line_records {
        match line(record, contract, &documents, &item_records) {
            Ok(line) => lines.push(line),
            Err(error) => problems.push(error),
        }
    }

    let client = Client {
        id: contract.ref_id("client").unwrap_or_default().to_string(),
        country: client_record
            .as_ref()
            .and_then(|c| c.text("country"))
            .map(str::to_string),
        is_business: client_record
            .as_ref()
            .and_then(|c| c.bool("is_company"))
            .unwrap_or(false),
    };
    let purchase_order = contract.text("po_number").map(|number| PurchaseOrder {
        number: number.to_string(),
        amount: contract.decimal("po_amount"),
        valid_until: contract.date("po_valid_until"),
    });
    Books {
        contract: Contract {
            id: contract.id.clone(),
            reference: contract.text("reference").map(String::from),
            start_date: contract.date("start_date"),
            currency,
            rate_card,
            cap: contract.decimal("cap"),
            purchase_order,
        },
        record: contract.clone(),
        client_record,
        lines,
        line_records,
        client,
        items,
        documents,
        document_records,
        rules,
        taxes: settings.taxes.clone(),
        written_off,
        problems,
    }
}

/// Turns a timesheet entry, expense or milestone into a billable item. Entries in a state
/// billing does not know are left out; written-off entries count as not billable.
fn item(index: &Index, record: &Record, rate_card: &RateCard) -> Option<BillableItem> {
    let contract_line = record.ref_id("contract_line").map(str::to_string);
    let project = record.ref_id("project").map(str::to_string);
    let written_off = record.state == "written_off";
    let entry_state = if written_off {
        Some(EntryState::Approved)
    } else {
        EntryState::parse(&record.state)
    };
    let kind = match record.kind {
        Kind::Timesheet => {
            let (Some(state), Some(employee), Some(hours)) = (
                entry_state,
                record.ref_id("employee"),
                record.decimal("hours"),
            ) else {
                return None;
            };
            // A role written on the entry wins; the employee's role is read only when the
            // rate card could use it.
            let role = match record.text("role") {
                Some(role) => Some(role.to_string()),
                None if !rate_card.roles.is_empty() => index.role(employee).map(String::from),
                None => None,
            };
            // An entry that does not say whether it is billable is billable when it names
            // the contract line it bills.
            let billable = record.bool("billable").unwrap_or(contract_line.is_some());
            ItemKind::Time {
                employee: employee.to_string(),
                role,
                hours,
                billable: billable && !written_off,
                state,
            }
        }
        Kind::Expense => {
            let (Some(state), Some(amount)) = (entry_state, record.money("amount")) else {
                return None;
            };
            ItemKind::Expense {
                category: record.text("category").unwrap_or("Other").to_string(),
                amount,
                billable: record.bool("billable") == Some(true) && !written_off,
                state,
            }
        }
        Kind::Milestone => {
            let state = MilestoneState::parse(&record.state)?;
            ItemKind::Milestone {
                amount: record.money("amount"),
                percentage: record.decimal("percentage"),
                state,
            }
        }
        _ => return None,
    };
    let date = match record.kind {
        Kind::Milestone => record
            .date("accepted_on")
            .or(record.date("reached_on"))
            .or(record.date("deadline")),
        _ => record.date("date"),
    }
    .unwrap_or_else(|| record.created_at.date_naive());
    let description = match record.kind {
        Kind::Timesheet => record.text("notes"),
        Kind::Expense => record.text("description"),
        _ => record.text("name"),
    };
    Some(BillableItem {
        id: record.id.clone(),
        date,
        contract_line,
        project,
        description: description.map(str::to_string),
        kind,
    })
}

/// Reads the contract's invoices and credit notes: those whose `contract` names it, and
/// those with a line on one of its contract lines. Returns the records and their billing view.
fn documents(
    index: &Index,
    contract: &str,
    lines: &[Record],
) -> (Vec<Record>, Vec<BillingDocument>) {
    let mut ids: BTreeSet<&str> = index
        .invoices_of_contract(contract)
        .iter()
        .map(String::as_str)
        .collect();
    for line in lines {
        ids.extend(index.invoices_of_line(&line.id).iter().map(String::as_str));
    }
    let line_models: HashMap<&str, &str> = lines
        .iter()
        .map(|l| (l.id.as_str(), l.text("billing_model").unwrap_or("")))
        .collect();
    let mut records = Vec::with_capacity(ids.len());
    let mut documents = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(invoice) = index.invoice(id) else {
            continue;
        };
        let sources = document_sources(index, invoice, index.invoice_lines(id), &line_models);
        documents.push(billing_document(invoice, sources));
        records.push(invoice.clone());
    }
    (records, documents)
}

/// Converts an invoice record to what billing counts.
pub fn billing_document(invoice: &Record, sources: Vec<Source>) -> BillingDocument {
    let move_type = match invoice.text("move_type") {
        Some("credit_note") => MoveType::CreditNote,
        _ => MoveType::Invoice,
    };
    BillingDocument {
        id: invoice.id.clone(),
        move_type,
        state: DocumentState::parse(&invoice.state).unwrap_or(DocumentState::Draft),
        issue_date: invoice.date("issue_date"),
        untaxed: invoice.decimal("untaxed").unwrap_or_default(),
        purchase_order: invoice.text("po_number").map(str::to_string),
        sources,
    }
}

/// Reads the `sources` of an invoice line.
pub fn line_sources(line: &Record) -> Vec<Source> {
    line.get("sources")
        .cloned()
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default()
}

/// Collects the sources of a document's lines. A line mirrored from another system has no
/// `sources`, so they are inferred from its contract line: the time entries that name the
/// invoice for a line billed by the hour, else the contract line's own quantity.
fn document_sources(
    index: &Index,
    invoice: &Record,
    invoice_lines: &[Record],
    line_models: &HashMap<&str, &str>,
) -> Vec<Source> {
    let mut sources = Vec::new();
    let credit = invoice.text("move_type") == Some("credit_note");
    for line in invoice_lines {
        if line.get("sources").is_some() {
            sources.extend(line_sources(line));
            continue;
        }
        let Some(contract_line) = line.ref_id("contract_line") else {
            continue;
        };
        let Some(model) = line_models.get(contract_line) else {
            continue;
        };
        let quantity = line.decimal("quantity").unwrap_or_default().abs();
        let by_the_hour = matches!(*model, "time_and_materials" | "prepaid_hours");
        if !by_the_hour {
            let record = steward_domain::RecordRef::new(Kind::ContractLine, contract_line);
            sources.push(Source::new(record, quantity));
            continue;
        }
        // NOTE: a mirrored credit note on hourly time returns the hours of the entries its
        // reversed invoice billed, earliest first, up to its own quantity; the source system
        // does not say which entries it meant.
        let billed_by = match (credit, invoice.ref_id("reverses")) {
            (false, _) => invoice.id.as_str(),
            (true, Some(reversed)) => reversed,
            (true, None) => continue,
        };
        let mut entries: Vec<&Record> = index
            .entries_of_invoice(billed_by)
            .iter()
            .filter(|e| e.ref_id("contract_line") == Some(contract_line))
            .collect();
        entries.sort_by_key(|e| (e.date("date"), e.id.clone()));
        let mut left = quantity;
        for entry in entries {
            let hours = entry.decimal("hours").unwrap_or_default().min(left);
            if hours <= Decimal::ZERO {
                break;
            }
            left -= hours;
            sources.push(Source::new(entry.reference(), hours));
        }
    }
    sources
}

/// Counts an entry whose `invoice` names an issued document that traces nothing to it as
/// invoiced in full on that document, as a source system that marks billed time reports.
fn trace_marked_entries(
    index: &Index,
    items: &BTreeMap<&str, &Record>,
    documents: &mut Vec<BillingDocument>,
) {
    let traced: BTreeSet<(Kind, String)> = documents
        .iter()
        .flat_map(|d| d.sources.iter().map(|s| (s.kind, s.id.clone())))
        .collect();
    for record in items.values() {
        let Some(invoice) = record.ref_id("invoice") else {
            continue;
        };
        if traced.contains(&(record.kind, record.id.clone())) {
            continue;
        }
        let quantity = match record.kind {
            Kind::Timesheet => record.decimal("hours").unwrap_or_default(),
            _ => Decimal::ONE,
        };
        let position = match documents.iter().position(|d| d.id == invoice) {
            Some(position) => position,
            None => {
                let Some(found) = index.invoice(invoice) else {
                    continue;
                };
                documents.push(billing_document(found, Vec::new()));
                documents.len() - 1
            }
        };
        if documents[position].move_type == MoveType::Invoice {
            documents[position]
                .sources
                .push(Source::new(record.reference(), quantity));
        }
    }
}

/// Converts a contract line record, with defaults from the contract for the terms it
/// leaves out.
fn line(
    record: &Record,
    contract: &Record,
    documents: &[BillingDocument],
    items: &BTreeMap<&str, &Record>,
) -> Result<ContractLine, InputError> {
    let subject = format!("contract line {}", record.id);
    let invalid = |message: String| InputError::new(subject.clone(), message);
    let model = match record.text("billing_model").unwrap_or("time_and_materials") {
        "time_and_materials" => BillingModel::TimeAndMaterials,
        "milestone" => BillingModel::Milestone,
        "manual" => BillingModel::Manual {
            delivered: record.decimal("qty_delivered").unwrap_or_default(),
        },
        "fixed_fee" => BillingModel::FixedFee {
            schedule: schedule(record, contract, items).map_err(invalid)?,
        },
        "retainer" => {
            let starts_on = record
                .date("retainer_start")
                .or(contract.date("start_date"))
                .ok_or_else(|| {
                    invalid(
                        "the retainer has no first period; set the line's `retainer_start` or \
                         the contract's `start_date`"
                            .into(),
                    )
                })?;
            let cadence = match record.text("cadence").unwrap_or("monthly") {
                "weekly" => Cadence::Weekly,
                "quarterly" => Cadence::Quarterly,
                "yearly" => Cadence::Yearly,
                _ => Cadence::Monthly,
            };
            BillingModel::Retainer {
                starts_on,
                ends_on: record.date("retainer_end").or(contract.date("end_date")),
                cadence,
            }
        }
        "prepaid_hours" => BillingModel::PrepaidHours {
            overage_rate: record.decimal("overage_rate"),
            drawn_before: drawn_before(record, documents, items),
        },
        other => {
            return Err(invalid(format!(
                "billing model `{other}` is unknown; use one of {}",
                steward_domain::kinds::LINE_BILLING_MODELS.join(", ")
            )));
        }
    };
    Ok(ContractLine {
        id: record.id.clone(),
        name: record.text("name").unwrap_or(&record.id).to_string(),
        model,
        quantity: record.decimal("quantity"),
        unit: record.text("unit").map(str::to_string),
        unit_price: record.decimal("unit_price"),
        discount: record.decimal("discount").unwrap_or_default(),
        tax_rate: record.decimal("tax_rate"),
        tax_category: record.text("tax_category").map(str::to_string),
        service: record.ref_id("service").map(str::to_string),
    })
}

/// Reads a fixed-fee line's schedule. A line with no schedule that milestones name is
/// billed through its milestones. Any other line with no schedule bills its whole price
/// (quantity × unit price) once, on the contract's end date.
fn schedule(
    record: &Record,
    contract: &Record,
    items: &BTreeMap<&str, &Record>,
) -> Result<Vec<Installment>, String> {
    if let Some(value) = record.get("schedule") {
        return parse_schedule(value);
    }
    let has_milestones = items
        .values()
        .any(|i| i.kind == Kind::Milestone && i.ref_id("contract_line") == Some(&record.id));
    if has_milestones {
        return Ok(Vec::new());
    }
    let (Some(price), Some(due_on)) = (record.decimal("unit_price"), contract.date("end_date"))
    else {
        return Ok(Vec::new());
    };
    let quantity = record.decimal("quantity").unwrap_or(Decimal::ONE);
    Ok(vec![Installment {
        due_on,
        amount: price * quantity,
        description: None,
    }])
}

fn parse_schedule(value: &Value) -> Result<Vec<Installment>, String> {
    let example = "[{\"due_on\": \"2026-11-15\", \"amount\": \"3000\"}]";
    let Some(entries) = value.as_array() else {
        return Err(format!("`schedule` must be a list such as {example}"));
    };
    let mut schedule = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("`schedule[{index}]`");
        let due_on = entry
            .get("due_on")
            .and_then(Value::as_str)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(|| format!("{at} needs `due_on` as a date such as \"2026-11-15\""))?;
        let amount = entry
            .get("amount")
            .ok_or_else(|| format!("{at} needs an `amount`, such as \"3000\""))
            .and_then(|a| steward_domain::value::decimal(a).map_err(|e| format!("{at}: {e}")))?;
        schedule.push(Installment {
            due_on,
            amount,
            description: entry
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    Ok(schedule)
}

/// Hours that issued documents already drew from a prepaid block: the time of the line
/// billed net of credit notes, up to the block. Drawdown fills the block before overage, so
/// the first hours billed are the block's.
fn drawn_before(
    record: &Record,
    documents: &[BillingDocument],
    items: &BTreeMap<&str, &Record>,
) -> Decimal {
    let ledger = steward_billing::Ledger::from_documents(documents);
    let billed: Decimal = items
        .values()
        .filter(|i| i.kind == Kind::Timesheet && i.ref_id("contract_line") == Some(&record.id))
        .map(|i| {
            let delivered = i.decimal("hours").unwrap_or_default();
            ledger.position(&i.reference(), delivered).net_invoiced()
        })
        .sum();
    let block = record.decimal("quantity").unwrap_or_default();
    billed.max(Decimal::ZERO).min(block)
}

/// Returns the money amount of `amount` in `currency`, rounded to its minor unit.
pub fn money(amount: Decimal, currency: steward_domain::Currency) -> Money {
    Money::round(amount, currency)
}
