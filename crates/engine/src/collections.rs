//! Collections: gathers unpaid customer invoices, raises `collections_overdue`, and plans the
//! step of the stage each one reached: a payment reminder to the client's billing contact, or
//! an escalation to the client's account leader.
//!
//! A reminder to the client goes out as the business event `invoice.payment_reminder`, which
//! a rule's `webhook` action (or an n8n workflow behind it) turns into mail; the account
//! leader, or finance when the client has none, gets an in-app notification that it was
//! sent. An escalation emits `invoice.collection_escalated`. Both events join the invoice's
//! history.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use steward_controls::COLLECTIONS_OVERDUE;
use steward_controls::collections::{OpenInvoice, StageDue, collections_overdue, stages_due};
use steward_controls::settings::{CollectionStep, FirmSettings};
use steward_domain::finding::RaisedFinding;
use steward_domain::{Kind, Record, RecordRef};
use steward_store::{ReadTx, StoreError};

use crate::steps::{ControlStep, Notice};

/// Payment states in which nothing is left to collect.
const SETTLED: &[&str] = &["paid", "in_payment", "reversed"];

/// The role that hears of collection steps on clients with no account leader.
const FALLBACK_ROLE: &str = "finance";

/// Who a client's reminders go to and who answers for the client.
struct ClientContacts {
    name: String,
    to_name: Option<String>,
    to_email: Option<String>,
    account_leader: Option<String>,
}

fn client_contacts(tx: &dyn ReadTx, invoice: &Record) -> Result<ClientContacts, StoreError> {
    let client = match invoice.ref_id("client") {
        Some(id) => tx.record(Kind::Client, id)?,
        None => None,
    };
    let Some(client) = client else {
        return Ok(ClientContacts {
            name: "an unknown client".into(),
            to_name: None,
            to_email: None,
            account_leader: None,
        });
    };
    let contact = match client.ref_id("billing_contact") {
        Some(id) => tx.record(Kind::Contact, id)?,
        None => None,
    };
    let (to_name, to_email) = match &contact {
        Some(c) if c.text("email").is_some() => {
            (Some(c.title()), c.text("email").map(str::to_string))
        }
        _ => (
            Some(client.title()),
            client.text("email").map(str::to_string),
        ),
    };
    Ok(ClientContacts {
        name: client.title(),
        to_name,
        to_email,
        account_leader: client.ref_id("account_leader").map(str::to_string),
    })
}

fn open_invoice(record: &Record, client_name: String) -> Option<OpenInvoice> {
    if record.text("move_type") == Some("credit_note") {
        return None;
    }
    if record.state != "released" {
        return None;
    }
    if record
        .text("payment_state")
        .is_some_and(|s| SETTLED.contains(&s))
    {
        return None;
    }
    let due = record.date("due_date")?;
    let residual = record
        .decimal("residual")
        .or_else(|| record.decimal("total"))?;
    Some(OpenInvoice {
        id: record.id.clone(),
        number: record
            .text("number")
            .map(str::to_string)
            .unwrap_or_else(|| record.id.clone()),
        client: record.ref_id("client").map(str::to_string),
        client_name,
        due,
        residual,
        currency: record.text("currency").unwrap_or("").to_string(),
    })
}

/// Raises `collections_overdue` and plans the stage steps due at `now`.
pub(crate) fn check(
    tx: &dyn ReadTx,
    settings: &FirmSettings,
    now: DateTime<Utc>,
) -> Result<(Vec<RaisedFinding>, Vec<ControlStep>), StoreError> {
    let collections = &settings.controls.collections;
    if !settings.controls.is_on(COLLECTIONS_OVERDUE) {
        return Ok((Vec::new(), Vec::new()));
    }
    let zone = Tz::from_str(&collections.timezone).unwrap_or(Tz::UTC);
    let mut invoices = Vec::new();
    let mut contacts = Vec::new();
    let mut records = Vec::new();
    tx.scan_records(Kind::Invoice, &mut |record| {
        records.push(record);
        Ok(true)
    })?;
    for record in records {
        if open_invoice(&record, String::new()).is_none() {
            continue;
        }
        let client = client_contacts(tx, &record)?;
        if let Some(invoice) = open_invoice(&record, client.name.clone()) {
            invoices.push(invoice);
            contacts.push(client);
        }
    }
    let stages = stages_due(collections, zone, now, &invoices);
    let today = now.with_timezone(&zone).date_naive();
    let findings = collections_overdue(today, &invoices, &stages);
    let steps = stages
        .iter()
        .filter_map(|stage| {
            let index = invoices.iter().position(|i| i.id == stage.invoice.id)?;
            Some(step_for(stage, &contacts[index]))
        })
        .collect();
    Ok((findings, steps))
}

fn step_for(stage: &StageDue, client: &ClientContacts) -> ControlStep {
    let invoice = &stage.invoice;
    let amount = format!("{} {}", invoice.residual.normalize(), invoice.currency);
    let data = json!({
        "invoice": invoice.id,
        "number": invoice.number,
        "client": invoice.client,
        "client_name": client.name,
        "to": { "name": client.to_name, "email": client.to_email },
        "account_leader": client.account_leader,
        "due_date": invoice.due,
        "days_overdue": stage.days_overdue,
        "residual": invoice.residual.normalize().to_string(),
        "currency": invoice.currency,
        "stage": stage.stage,
        "action": stage.step.as_str(),
        "stage_at": stage.at,
        "earlier_stages_not_run": stage.passed_over,
    });
    let notify = |message: String| Notice {
        recipient: client.account_leader.clone(),
        role: client
            .account_leader
            .is_none()
            .then(|| FALLBACK_ROLE.to_string()),
        message,
    };
    let (event, message) = match stage.step {
        CollectionStep::Remind => {
            let to = match (&client.to_name, &client.to_email) {
                (Some(name), Some(email)) => format!("{name} <{email}>"),
                (Some(name), None) => format!("{name} (no e-mail address on file)"),
                (None, Some(email)) => email.clone(),
                (None, None) => "nobody: the client has no billing contact".into(),
            };
            (
                "invoice.payment_reminder",
                format!(
                    "Payment reminder {} for invoice {} ({amount}, {} days overdue) sent to {to}",
                    stage.stage, invoice.number, stage.days_overdue
                ),
            )
        }
        CollectionStep::Escalate => (
            "invoice.collection_escalated",
            format!(
                "Invoice {} to {} is {} days overdue with {amount} unpaid; follow up with the client",
                invoice.number, client.name, stage.days_overdue
            ),
        ),
    };
    ControlStep {
        key: stage.key(),
        control: COLLECTIONS_OVERDUE,
        event: event.into(),
        record: RecordRef::new(Kind::Invoice, invoice.id.clone()),
        notices: vec![notify(message)],
        data,
    }
}
