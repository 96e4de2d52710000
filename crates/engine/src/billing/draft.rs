//! Writing invoice drafts for the ready contracts of a month.
//!
//! The readiness of every contract is computed on a read snapshot. The drafts are then
//! written in groups, each group in one write transaction through the command path. A
//! contract is drafted at most once per month: before writing, the transaction compares
//! the contract's stored invoices with those of the snapshot, and when they differ (another
//! run drafted it meanwhile, or an invoice was released) it reads the contract again and
//! checks it anew. A draft already written for the month is returned, not written again, and
//! a draft of another month blocks a new one until it is released or cancelled, because
//! drafts count for nothing in the billed quantities until they are released.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_billing::readiness::Readiness;
use steward_billing::{Draft, Issue};
use steward_domain::{Command, CommandContext, Kind, Money, Record};
use steward_store::{ReadTx, WriteTx};

use super::assess::{ContractReadiness, Overrides, assess};
use super::index::{Index, all_records, by_field};
use super::walk::{in_read, map_books};
use super::{BillingPeriod, Selection, load, stored_settings};
use crate::EngineError;
use crate::pipeline::{Env, apply};

/// Contracts drafted in one write transaction.
const GROUP: usize = 200;

/// One draft invoice, written by this run or found from an earlier one.
#[derive(Clone, Debug, Serialize)]
pub struct DraftedInvoice {
    pub contract: String,
    pub reference: Option<String>,
    pub invoice: String,
    pub currency: String,
    pub untaxed: Option<Money>,
    pub tax: Option<Money>,
    pub total: Option<Money>,
    pub rounding: Option<String>,
    pub lines: usize,
    pub override_request: Option<String>,
    /// Blockers the approved override lifted, as recorded in the invoice's
    /// `billing_warnings` attribute.
    pub warnings: Value,
}

/// What the run did for one contract.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DraftOutcome {
    /// A new draft invoice was written.
    Created(DraftedInvoice),
    /// A draft for the month existed already and was left as it was.
    Existing(DraftedInvoice),
    /// The contract is not ready; nothing was written.
    Blocked(ContractReadiness),
}

/// The result of one draft run.
#[derive(Clone, Debug, Serialize)]
pub struct DraftReport {
    pub period: String,
    pub created: usize,
    pub existing: usize,
    pub blocked: usize,
    pub outcomes: Vec<DraftOutcome>,
}

/// A ready contract waiting to be written, with the invoices the snapshot saw.
#[derive(Clone)]
struct Candidate {
    contract: Record,
    invoices: Vec<(String, i64)>,
    view: ContractReadiness,
    draft: Draft,
    warnings: Vec<Issue>,
    override_request: Option<String>,
}

/// Returns the (id, version) pairs of the invoices whose `contract` names `contract`.
fn stored_invoices(tx: &dyn ReadTx, contract: &str) -> Result<Vec<(String, i64)>, EngineError> {
    let mut invoices: Vec<(String, i64)> =
        all_records(tx, by_field(Kind::Invoice, "contract", contract))?
            .into_iter()
            .map(|r| (r.id, r.version))
            .collect();
    invoices.sort();
    Ok(invoices)
}

fn existing(view: &ContractReadiness, invoice: &Record) -> DraftedInvoice {
    DraftedInvoice {
        contract: view.contract.clone(),
        reference: view.reference.clone(),
        invoice: invoice.id.clone(),
        currency: invoice
            .text("currency")
            .unwrap_or(&view.currency)
            .to_string(),
        untaxed: invoice.money("untaxed"),
        tax: invoice.money("tax"),
        total: invoice.money("total"),
        rounding: invoice.text("rounding").map(String::from),
        lines: 0,
        override_request: invoice.ref_id("override_request").map(String::from),
        warnings: invoice
            .attributes
            .get("billing_warnings")
            .cloned()
            .unwrap_or_else(|| json!([])),
    }
}

/// Sorts one contract's assessment into an outcome now, or a candidate to write.
fn classify(
    books: &load::Books,
    period: BillingPeriod,
    today: NaiveDate,
    overrides: &Overrides,
) -> Result<Candidate, DraftOutcome> {
    let (view, readiness) = assess(books, period, today, overrides);
    if let Some(id) = &view.draft_invoice {
        let invoice = books
            .document_records
            .iter()
            .find(|d| &d.id == id)
            .expect("the draft invoice is one of the contract's documents");
        return Err(DraftOutcome::Existing(existing(&view, invoice)));
    }
    let Readiness {
        ready,
        draft,
        warnings,
        override_request,
        ..
    } = readiness;
    match (ready, draft) {
        (true, Some(draft)) => {
            let mut invoices: Vec<(String, i64)> = books
                .document_records
                .iter()
                .filter(|d| d.ref_id("contract") == Some(books.contract.id.as_str()))
                .map(|d| (d.id.clone(), d.version))
                .collect();
            invoices.sort();
            Ok(Candidate {
                contract: books.record.clone(),
                invoices,
                view,
                draft,
                warnings,
                override_request,
            })
        }
        _ => Err(DraftOutcome::Blocked(view)),
    }
}

/// Rejects a month that starts after `today`: its time and expenses are not yet recorded,
/// so a draft would bill an incomplete month.
fn reject_future(period: &BillingPeriod, today: NaiveDate) -> Result<(), EngineError> {
    if period.start <= today {
        return Ok(());
    }
    let current = BillingPeriod::of(today).label();
    Err(steward_domain::DomainError::Invalid(format!(
        "billing period {} has not started yet (the current month is {current}); draft \
         invoices for {current} or an earlier month",
        period.label()
    ))
    .into())
}

pub(super) async fn draft_invoices(
    engine: &Arc<crate::Engine>,
    selection: Selection,
    context: CommandContext,
) -> Result<DraftReport, EngineError> {
    let today = engine.clock.now().date_naive();
    let period = selection.period;
    reject_future(&period, today)?;
    let store = Arc::clone(&engine.store);
    let (mut outcomes, candidates) =
        tokio::task::spawn_blocking(move || snapshot(store.as_ref(), &selection, today))
            .await
            .map_err(|e| EngineError::Rule(format!("the draft task failed: {e}")))??;

    let mut slots: Vec<Option<DraftOutcome>> = Vec::new();
    let mut groups = Vec::new();
    for chunk in candidates.chunks(GROUP) {
        let chunk: Vec<Candidate> = chunk.to_vec();
        let context = context.clone();
        let rules = engine.rules();
        let approvals = engine.approvals();
        let config = engine.config.clone();
        let clock = Arc::clone(&engine.clock);
        groups.push(steward_store::submit_write(
            engine.store.as_ref(),
            move |tx| {
                let env = Env {
                    rules: &rules,
                    config: &config,
                    approvals: &approvals,
                    now: clock.now(),
                };
                write_group(tx, &env, &chunk, period, today, &context)
            },
        ));
    }
    for group in groups {
        let written: Vec<DraftOutcome> = group.await?;
        slots.extend(written.into_iter().map(Some));
    }
    outcomes.extend(slots.into_iter().flatten());
    outcomes.sort_by(|a, b| contract_of(a).cmp(contract_of(b)));

    let count = |f: fn(&DraftOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    Ok(DraftReport {
        period: period.label(),
        created: count(|o| matches!(o, DraftOutcome::Created(_))),
        existing: count(|o| matches!(o, DraftOutcome::Existing(_))),
        blocked: count(|o| matches!(o, DraftOutcome::Blocked(_))),
        outcomes,
    })
}

fn contract_of(outcome: &DraftOutcome) -> &str {
    match outcome {
        DraftOutcome::Created(d) | DraftOutcome::Existing(d) => &d.contract,
        DraftOutcome::Blocked(v) => &v.contract,
    }
}

/// Assesses every selected contract; see [`super::walk`] for how the reads are shared.
fn snapshot(
    store: &dyn steward_store::Store,
    selection: &Selection,
    today: NaiveDate,
) -> Result<(Vec<DraftOutcome>, Vec<Candidate>), EngineError> {
    let (settings, overrides) =
        in_read(store, |tx| Ok((stored_settings(tx)?, Overrides::read(tx)?)))?;
    let assessed = map_books(store, selection, &settings, &|_, books| {
        Ok(classify(&books, selection.period, today, &overrides))
    })?;
    let mut outcomes = Vec::new();
    let mut candidates = Vec::new();
    for result in assessed {
        match result {
            Ok(candidate) => candidates.push(candidate),
            Err(outcome) => outcomes.push(outcome),
        }
    }
    Ok((outcomes, candidates))
}

/// Writes the drafts of one group, checking each contract again when its invoices changed
/// since the snapshot.
fn write_group(
    tx: &mut dyn WriteTx,
    env: &Env,
    candidates: &[Candidate],
    period: BillingPeriod,
    today: NaiveDate,
    context: &CommandContext,
) -> Result<Vec<DraftOutcome>, EngineError> {
    let mut outcomes = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let current = stored_invoices(tx, &candidate.contract.id)?;
        let candidate = if current == candidate.invoices {
            candidate.clone()
        } else {
            let settings = stored_settings(tx)?;
            let index = Index::for_contract(tx, candidate.contract.clone())?;
            let overrides = Overrides::read(tx)?;
            let Some(contract) = index.contracts().first() else {
                continue;
            };
            let books = load::load(&index, contract, &settings);
            match classify(&books, period, today, &overrides) {
                Ok(fresh) => fresh,
                Err(outcome) => {
                    outcomes.push(outcome);
                    continue;
                }
            }
        };
        outcomes.push(DraftOutcome::Created(write_draft(
            tx, env, &candidate, context,
        )?));
    }
    Ok(outcomes)
}

fn money_value(money: &Money) -> Value {
    Value::String(money.amount.to_string())
}

/// Writes one draft invoice and its lines.
fn write_draft(
    tx: &mut dyn WriteTx,
    env: &Env,
    candidate: &Candidate,
    context: &CommandContext,
) -> Result<DraftedInvoice, EngineError> {
    let draft = &candidate.draft;
    let mut fields = Map::new();
    fields.insert("client".into(), json!(draft.client));
    fields.insert("currency".into(), json!(draft.currency.code()));
    fields.insert("move_type".into(), json!("invoice"));
    fields.insert("contract".into(), json!(draft.contract));
    fields.insert("issue_date".into(), json!(draft.issue_date));
    fields.insert("period_start".into(), json!(draft.period.start()));
    fields.insert("period_end".into(), json!(draft.period.end()));
    fields.insert("rounding".into(), json!(draft.rounding.as_str()));
    fields.insert("untaxed".into(), money_value(&draft.untaxed));
    fields.insert("tax".into(), money_value(&draft.tax));
    fields.insert("total".into(), money_value(&draft.total));
    fields.insert("residual".into(), money_value(&draft.total));
    fields.insert("payment_state".into(), json!("not_paid"));
    if let Some(po) = candidate.contract.text("po_number") {
        fields.insert("po_number".into(), json!(po));
    }
    if !draft.notes.is_empty() {
        fields.insert("notes".into(), json!(draft.notes.join("\n")));
    }
    if let Some(request) = &candidate.override_request {
        fields.insert("override_request".into(), json!(request));
    }
    let mut attributes = Map::new();
    if !candidate.warnings.is_empty() {
        attributes.insert("billing_warnings".into(), json!(candidate.warnings));
    }
    if !draft.prepaid.is_empty() {
        attributes.insert("prepaid".into(), json!(draft.prepaid));
    }
    let invoice = apply(
        tx,
        env,
        Command::Create {
            kind: Kind::Invoice,
            id: None,
            state: Some("draft".into()),
            fields,
            attributes,
        },
        context.clone(),
    )?
    .record
    .expect("a create leaves a record");

    for line in &draft.lines {
        let mut fields = Map::new();
        fields.insert("invoice".into(), json!(invoice.id));
        fields.insert("description".into(), json!(line.description));
        fields.insert("quantity".into(), json!(line.quantity.to_string()));
        fields.insert("currency".into(), json!(draft.currency.code()));
        fields.insert("unit_price".into(), money_value(&line.unit_price));
        fields.insert("discount".into(), json!(line.discount.to_string()));
        fields.insert("tax_rate".into(), json!(line.tax_rate.to_string()));
        fields.insert("subtotal".into(), money_value(&line.subtotal));
        fields.insert("tax".into(), money_value(&line.tax));
        fields.insert("total".into(), money_value(&line.total));
        fields.insert("sources".into(), json!(line.sources));
        for (name, value) in [
            ("contract_line", &line.contract_line),
            ("service", &line.service),
            ("unit", &line.unit),
        ] {
            if let Some(value) = value {
                fields.insert(name.into(), json!(value));
            }
        }
        let mut attributes = Map::new();
        attributes.insert("line_kind".into(), json!(line.kind));
        if line.reverse_charge {
            attributes.insert("reverse_charge".into(), json!(true));
        }
        apply(
            tx,
            env,
            Command::Create {
                kind: Kind::InvoiceLine,
                id: None,
                state: Some("active".into()),
                fields,
                attributes,
            },
            context.clone(),
        )?;
    }

    Ok(DraftedInvoice {
        contract: candidate.view.contract.clone(),
        reference: candidate.view.reference.clone(),
        invoice: invoice.id.clone(),
        currency: draft.currency.code().to_string(),
        untaxed: Some(draft.untaxed),
        tax: Some(draft.tax),
        total: Some(draft.total),
        rounding: Some(draft.rounding.as_str().to_string()),
        lines: draft.lines.len(),
        override_request: candidate.override_request.clone(),
        warnings: json!(candidate.warnings),
    })
}
