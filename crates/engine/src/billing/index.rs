//! The records billing reads, indexed by the references that tie them to a contract.
//!
//! An [`Index`] is filled either with the firm's records ([`Index::firm`]: one pass over each
//! kind except time entries and expenses) or with one contract's records
//! ([`Index::for_contract`], through indexed queries). Time entries and expenses are the bulk
//! of a firm's records: a firm of 2,000 people logs about a million a year. So the firm's
//! index reads them one contract at a time ([`Index::read_entries`]), and memory contains one
//! contract's entries, never the firm's. The loader builds each contract's books from the index alone,
//! so one code path serves a single contract and the whole firm.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use steward_domain::{Kind, Record};
use steward_store::{ReadTx, RecordQuery, StoreError};

/// Billing's records, grouped by the fields the loader follows: the firm's records, shared,
/// and the time entries and expenses of the contract read last.
pub struct Index {
    firm: Arc<Firm>,
    /// The time entries and expenses read last, those of one contract: time by its line,
    /// and expenses and time without a line by project.
    entries_by_line: HashMap<String, Vec<Record>>,
    entries_by_project: HashMap<String, Vec<Record>>,
    /// Timesheet entries by the invoice that their `invoice` field names.
    entries_by_invoice: HashMap<String, Vec<Record>>,
}

/// The records billing reads besides time entries and expenses. They change rarely and are
/// read by every contract's books, so workers whose transactions see the same records share
/// one copy.
#[derive(Default)]
pub struct Firm {
    /// In id order.
    contracts: Vec<Record>,
    clients: HashMap<String, Record>,
    /// Billing role of each employee, for rate cards by role.
    roles: HashMap<String, Option<String>>,
    lines_by_contract: HashMap<String, Vec<Record>>,
    projects_by_contract: HashMap<String, Vec<String>>,
    /// Milestones that name a contract line.
    items_by_line: HashMap<String, Vec<Record>>,
    /// Milestones without a contract line.
    items_by_project: HashMap<String, Vec<Record>>,
    invoices: HashMap<String, Record>,
    invoices_by_contract: HashMap<String, Vec<String>>,
    invoice_lines_by_invoice: HashMap<String, Vec<Record>>,
    invoices_by_contract_line: HashMap<String, Vec<String>>,
}

pub(crate) use crate::controls::all_records;

/// Builds a query for records of `kind` whose `field` equals `value`.
pub fn by_field(kind: Kind, field: &str, value: &str) -> RecordQuery {
    RecordQuery {
        kind: Some(kind),
        fields: vec![(field.to_string(), Value::String(value.to_string()))],
        ..RecordQuery::default()
    }
}

/// Builds a query for the time entries whose `field` equals `value`, read with the fields
/// billing needs. With `without_line`, entries that name a contract line are left out:
/// those belong to the contract of their line.
fn time_query(field: &str, value: &str, without_line: bool) -> RecordQuery {
    let mut query = by_field(Kind::Timesheet, field, value);
    if without_line {
        query.fields.push(("contract_line".into(), Value::Null));
    }
    query.only_fields = steward_store::TIME_ENTRY_FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect();
    query
}

impl Firm {
    /// Reads every contract, client, employee role, contract line, project, milestone,
    /// invoice and invoice line of the store, one scan per kind.
    pub fn read(tx: &dyn ReadTx) -> Result<Firm, StoreError> {
        let mut index = Firm::default();
        tx.scan_records(Kind::Contract, &mut |r| {
            index.contracts.push(r);
            Ok(true)
        })?;
        tx.scan_records(Kind::Client, &mut |r| {
            index.clients.insert(r.id.clone(), r);
            Ok(true)
        })?;
        tx.scan_records(Kind::Employee, &mut |r| {
            index.add_employee(&r);
            Ok(true)
        })?;
        tx.scan_records(Kind::ContractLine, &mut |r| {
            index.add_line(r);
            Ok(true)
        })?;
        tx.scan_records(Kind::Project, &mut |r| {
            index.add_project(&r);
            Ok(true)
        })?;
        tx.scan_records(Kind::Milestone, &mut |r| {
            index.add_item(r);
            Ok(true)
        })?;
        tx.scan_records(Kind::Invoice, &mut |r| {
            index.add_invoice(r);
            Ok(true)
        })?;
        tx.scan_records(Kind::InvoiceLine, &mut |r| {
            index.add_invoice_line(r);
            Ok(true)
        })?;
        Ok(index)
    }
}

impl Index {
    /// Reads the firm's records; time entries and expenses are read per contract with
    /// [`Index::read_entries`].
    pub fn firm(tx: &dyn ReadTx) -> Result<Index, StoreError> {
        Ok(Index::sharing(Arc::new(Firm::read(tx)?)))
    }

    /// Returns an index over firm records read before, with no entries read yet.
    pub fn sharing(firm: Arc<Firm>) -> Index {
        Index {
            firm,
            entries_by_line: HashMap::new(),
            entries_by_project: HashMap::new(),
            entries_by_invoice: HashMap::new(),
        }
    }

    /// Replaces the time entries and expenses in the index with those of `contract`: the
    /// time that names one of its lines, the time without a line on one of its projects,
    /// and the expenses of its projects.
    pub fn read_entries(&mut self, tx: &dyn ReadTx, contract: &str) -> Result<(), StoreError> {
        self.entries_by_line.clear();
        self.entries_by_project.clear();
        self.entries_by_invoice.clear();
        let lines: Vec<String> = self.lines(contract).iter().map(|l| l.id.clone()).collect();
        let mut projects: Vec<String> = self.projects(contract).to_vec();
        projects.extend(
            self.lines(contract)
                .iter()
                .filter_map(|l| l.ref_id("project").map(String::from)),
        );
        projects.sort();
        projects.dedup();
        for line in &lines {
            for entry in all_records(tx, time_query("contract_line", line, false))? {
                self.add_time(entry);
            }
        }
        for project in &projects {
            for entry in all_records(tx, time_query("project", project, true))? {
                self.add_time(entry);
            }
            for expense in all_records(tx, by_field(Kind::Expense, "project", project))? {
                self.add_expense(expense);
            }
        }
        Ok(())
    }

    /// Reads the records of one contract through indexed queries.
    pub fn for_contract(tx: &dyn ReadTx, contract: Record) -> Result<Index, StoreError> {
        let mut firm = Firm::default();
        if let Some(client) = contract.ref_id("client")
            && let Some(record) = tx.record(Kind::Client, client)?
        {
            firm.clients.insert(record.id.clone(), record);
        }
        let lines = all_records(tx, by_field(Kind::ContractLine, "contract", &contract.id))?;
        let line_ids: Vec<String> = lines.iter().map(|l| l.id.clone()).collect();
        let mut projects: Vec<String> =
            all_records(tx, by_field(Kind::Project, "contract", &contract.id))?
                .into_iter()
                .map(|p| p.id)
                .collect();
        projects.extend(
            lines
                .iter()
                .filter_map(|l| l.ref_id("project").map(String::from)),
        );
        projects.sort();
        projects.dedup();

        let mut items: HashMap<String, Record> = HashMap::new();
        for line in &line_ids {
            for record in all_records(tx, by_field(Kind::Milestone, "contract_line", line))? {
                items.insert(record.id.clone(), record);
            }
        }
        for project in &projects {
            for record in all_records(tx, by_field(Kind::Milestone, "project", project))? {
                items.insert(record.id.clone(), record);
            }
        }
        for line in lines {
            firm.add_line(line);
        }
        firm.projects_by_contract
            .insert(contract.id.clone(), projects);
        let mut index = Index::sharing(Arc::new(firm));
        index.read_entries(tx, &contract.id)?;

        let mut employees: Vec<String> = index
            .entries_by_line
            .values()
            .chain(index.entries_by_project.values())
            .flatten()
            .filter_map(|r| r.ref_id("employee").map(String::from))
            .collect();
        employees.sort();
        employees.dedup();
        // Entries may name an invoice that traces nothing to them, such as a mirrored one.
        let named: Vec<String> = items
            .values()
            .chain(index.entries_by_line.values().flatten())
            .chain(index.entries_by_project.values().flatten())
            .filter_map(|r| r.ref_id("invoice").map(String::from))
            .collect();
        let firm = Arc::get_mut(&mut index.firm).expect("the index is not shared yet");
        for employee in employees {
            if let Some(record) = tx.record(Kind::Employee, &employee)? {
                firm.add_employee(&record);
            }
        }

        let mut invoices: HashMap<String, Record> =
            all_records(tx, by_field(Kind::Invoice, "contract", &contract.id))?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
        let mut invoice_lines = Vec::new();
        for line in &line_ids {
            for invoice_line in all_records(tx, by_field(Kind::InvoiceLine, "contract_line", line))?
            {
                if let Some(id) = invoice_line.ref_id("invoice")
                    && !invoices.contains_key(id)
                    && let Some(invoice) = tx.record(Kind::Invoice, id)?
                {
                    invoices.insert(invoice.id.clone(), invoice);
                }
                invoice_lines.push(invoice_line);
            }
        }
        for id in named {
            if !invoices.contains_key(&id)
                && let Some(invoice) = tx.record(Kind::Invoice, &id)?
            {
                invoices.insert(invoice.id.clone(), invoice);
            }
        }
        for invoice in invoices.keys() {
            for line in all_records(tx, by_field(Kind::InvoiceLine, "invoice", invoice))? {
                invoice_lines.push(line);
            }
        }
        invoice_lines.sort_by(|a, b| a.id.cmp(&b.id));
        invoice_lines.dedup_by(|a, b| a.id == b.id);

        let mut items: Vec<Record> = items.into_values().collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        for item in items {
            firm.add_item(item);
        }
        let mut invoices: Vec<Record> = invoices.into_values().collect();
        invoices.sort_by(|a, b| a.id.cmp(&b.id));
        for invoice in invoices {
            firm.add_invoice(invoice);
        }
        for line in invoice_lines {
            firm.add_invoice_line(line);
        }
        firm.contracts.push(contract);
        Ok(index)
    }

    /// Files an expense under its project; an expense is billed on its project's contract.
    fn add_expense(&mut self, expense: Record) {
        if let Some(project) = expense.ref_id("project") {
            self.entries_by_project
                .entry(project.to_string())
                .or_default()
                .push(expense);
        }
    }

    /// Files a time entry under its line, else its project, and under the invoice it names.
    fn add_time(&mut self, entry: Record) {
        if let Some(invoice) = entry.ref_id("invoice") {
            self.entries_by_invoice
                .entry(invoice.to_string())
                .or_default()
                .push(entry.clone());
        }
        let line = entry.ref_id("contract_line").map(String::from);
        match (line, entry.ref_id("project").map(String::from)) {
            (Some(line), _) => self.entries_by_line.entry(line).or_default().push(entry),
            (None, Some(project)) => self
                .entries_by_project
                .entry(project)
                .or_default()
                .push(entry),
            (None, None) => {}
        }
    }

    /// Returns every contract the index read, in id order.
    pub fn contracts(&self) -> &[Record] {
        &self.firm.contracts
    }

    /// Returns the contract `id`; the contracts are kept in id order.
    pub fn contract(&self, id: &str) -> Option<&Record> {
        self.firm
            .contracts
            .binary_search_by(|c| c.id.as_str().cmp(id))
            .ok()
            .map(|at| &self.firm.contracts[at])
    }

    pub fn client(&self, id: &str) -> Option<&Record> {
        self.firm.clients.get(id)
    }

    pub fn role(&self, employee: &str) -> Option<&str> {
        self.firm.roles.get(employee).and_then(|r| r.as_deref())
    }

    pub fn lines(&self, contract: &str) -> &[Record] {
        self.firm
            .lines_by_contract
            .get(contract)
            .map_or(&[], Vec::as_slice)
    }

    pub fn projects(&self, contract: &str) -> &[String] {
        self.firm
            .projects_by_contract
            .get(contract)
            .map_or(&[], Vec::as_slice)
    }

    /// Returns the milestones of `line` and the time entries read for it.
    pub fn items_of_line(&self, line: &str) -> impl Iterator<Item = &Record> {
        let items = self
            .firm
            .items_by_line
            .get(line)
            .map_or(&[][..], Vec::as_slice);
        let time = self
            .entries_by_line
            .get(line)
            .map_or(&[][..], Vec::as_slice);
        items.iter().chain(time)
    }

    /// Returns the line-less milestones of `project`, and the expenses and line-less time
    /// entries read for it.
    pub fn items_of_project(&self, project: &str) -> impl Iterator<Item = &Record> {
        let items = self
            .firm
            .items_by_project
            .get(project)
            .map_or(&[][..], Vec::as_slice);
        let time = self
            .entries_by_project
            .get(project)
            .map_or(&[][..], Vec::as_slice);
        items.iter().chain(time)
    }

    pub fn invoice(&self, id: &str) -> Option<&Record> {
        self.firm.invoices.get(id)
    }

    pub fn invoices_of_contract(&self, contract: &str) -> &[String] {
        self.firm
            .invoices_by_contract
            .get(contract)
            .map_or(&[], Vec::as_slice)
    }

    pub fn invoices_of_line(&self, line: &str) -> &[String] {
        self.firm
            .invoices_by_contract_line
            .get(line)
            .map_or(&[], Vec::as_slice)
    }

    pub fn invoice_lines(&self, invoice: &str) -> &[Record] {
        self.firm
            .invoice_lines_by_invoice
            .get(invoice)
            .map_or(&[], Vec::as_slice)
    }

    pub fn entries_of_invoice(&self, invoice: &str) -> &[Record] {
        self.entries_by_invoice
            .get(invoice)
            .map_or(&[], Vec::as_slice)
    }

    /// Returns every contract's invoices, for reports over the whole firm.
    pub fn all_invoices(&self) -> impl Iterator<Item = &Record> {
        self.firm.invoices.values()
    }
}

impl Firm {
    /// Returns every contract, in id order.
    pub fn contracts(&self) -> &[Record] {
        &self.contracts
    }

    fn add_employee(&mut self, employee: &Record) {
        let role = employee.text("role").map(String::from);
        self.roles.insert(employee.id.clone(), role);
    }

    fn add_line(&mut self, line: Record) {
        if let Some(contract) = line.ref_id("contract") {
            let contract = contract.to_string();
            self.lines_by_contract
                .entry(contract)
                .or_default()
                .push(line);
        }
    }

    fn add_project(&mut self, project: &Record) {
        if let Some(contract) = project.ref_id("contract") {
            self.projects_by_contract
                .entry(contract.to_string())
                .or_default()
                .push(project.id.clone());
        }
    }

    /// Files a milestone under its line, else its project.
    fn add_item(&mut self, item: Record) {
        let line = item.ref_id("contract_line").map(String::from);
        match (line, item.ref_id("project").map(String::from)) {
            (Some(line), _) => self.items_by_line.entry(line).or_default().push(item),
            (None, Some(project)) => self.items_by_project.entry(project).or_default().push(item),
            (None, None) => {}
        }
    }

    fn add_invoice(&mut self, invoice: Record) {
        if let Some(contract) = invoice.ref_id("contract") {
            self.invoices_by_contract
                .entry(contract.to_string())
                .or_default()
                .push(invoice.id.clone());
        }
        self.invoices.insert(invoice.id.clone(), invoice);
    }

    fn add_invoice_line(&mut self, line: Record) {
        let Some(invoice) = line.ref_id("invoice").map(String::from) else {
            return;
        };
        if let Some(contract_line) = line.ref_id("contract_line") {
            let ids = self
                .invoices_by_contract_line
                .entry(contract_line.to_string())
                .or_default();
            if !ids.contains(&invoice) {
                ids.push(invoice.clone());
            }
        }
        self.invoice_lines_by_invoice
            .entry(invoice)
            .or_default()
            .push(line);
    }
}
