//! Steward's delivered and invoiced quantities beside Odoo's, for the contract lines mirrored
//! from Odoo sale order lines.
//!
//! Odoo reports `qty_delivered` and `qty_invoiced` on each sale order line, in the line's unit
//! of measure; the sync stores them on the contract line. Steward counts the same things from
//! its own records: the hours of the time entries on the line (or the line's own delivered
//! quantity for the models that do not bill time), and the quantities of the released or paid
//! invoice lines on it, net of credit notes. Each row explains every difference in words.

use rust_decimal::Decimal;
use serde::Serialize;
use steward_billing::BillingModel;
use steward_domain::{Kind, Record};
use steward_store::ReadTx;

use super::index::Index;
use super::load;
use crate::EngineError;

/// Odoo's model of sale order lines, as the sync records it in external links.
const SALE_ORDER_LINE: &str = "sale.order.line";

/// One mirrored sale order line with both sides' quantities.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRow {
    pub contract: String,
    /// The sale order number, such as `S00021`.
    pub order: Option<String>,
    pub contract_line: String,
    /// The sale order line id in Odoo.
    pub odoo_line: String,
    pub name: String,
    pub billing_model: String,
    pub unit: Option<String>,
    /// Hours of time entries on the line that are not rejected, in any other state.
    pub steward_hours: Decimal,
    /// Steward's delivered quantity in the line's unit: the hours for lines billed by the
    /// hour, else the line's own delivered quantity by its billing model.
    pub steward_delivered: Decimal,
    /// Quantity on released or paid invoice lines, net of credit notes.
    pub steward_invoiced: Decimal,
    pub odoo_delivered: Option<Decimal>,
    pub odoo_invoiced: Option<Decimal>,
    /// True when Odoo has invoiced some of the line.
    pub invoiced_in_odoo: bool,
    /// One sentence per quantity: why the two sides agree or differ.
    pub delivered_explanation: String,
    pub invoiced_explanation: String,
}

/// Compares every contract line mirrored from an Odoo sale order line, in contract order.
pub fn compare(
    tx: &dyn ReadTx,
    today: chrono::NaiveDate,
) -> Result<Vec<ComparisonRow>, EngineError> {
    let settings = super::stored_settings(tx)?;
    let mut index = Index::firm(tx)?;
    let contracts = index.contracts().to_vec();
    let mut rows = Vec::new();
    for contract in &contracts {
        index.read_entries(tx, &contract.id)?;
        let books = load::load(&index, contract, &settings);
        for record in &books.line_records {
            let link = tx
                .external_links_of(&record.reference())?
                .into_iter()
                .find(|l| l.system == "odoo" && l.model == SALE_ORDER_LINE);
            let Some(link) = link else {
                continue;
            };
            rows.push(row(
                &index,
                &books,
                contract,
                record,
                link.external_id,
                today,
            ));
        }
    }
    Ok(rows)
}

fn row(
    index: &Index,
    books: &load::Books,
    contract: &Record,
    record: &Record,
    odoo_line: String,
    today: chrono::NaiveDate,
) -> ComparisonRow {
    let line = books.lines.iter().find(|l| l.id == record.id);
    let hourly = line.is_some_and(|l| l.bills_time());
    let steward_hours: Decimal = index
        .items_of_line(&record.id)
        .filter(|r| r.kind == Kind::Timesheet && r.state != "rejected")
        .filter_map(|r| r.decimal("hours"))
        .sum();
    let steward_delivered = match line {
        // Odoo counts the hours used on a prepaid block too, not the block sold.
        Some(_) if hourly => steward_hours,
        Some(l) => own_delivered(index, l, today),
        None => Decimal::ZERO,
    };
    let steward_invoiced = invoiced(index, &record.id);
    let odoo_delivered = record.decimal("qty_delivered");
    let odoo_invoiced = record.decimal("qty_invoiced");
    let unit = record.text("unit").map(String::from);
    let model = record.text("billing_model").unwrap_or("time_and_materials");
    ComparisonRow {
        contract: contract.id.clone(),
        order: contract.text("reference").map(String::from),
        contract_line: record.id.clone(),
        odoo_line,
        name: record.text("name").unwrap_or(&record.id).to_string(),
        billing_model: model.to_string(),
        delivered_explanation: explain_delivered(
            model,
            hourly,
            unit.as_deref(),
            steward_hours,
            steward_delivered,
            odoo_delivered,
        ),
        invoiced_explanation: explain_invoiced(steward_invoiced, odoo_invoiced),
        unit,
        steward_hours,
        steward_delivered,
        steward_invoiced,
        odoo_delivered,
        odoo_invoiced,
        invoiced_in_odoo: odoo_invoiced.is_some_and(|q| q > Decimal::ZERO),
    }
}

/// Delivered quantity of a line that does not bill time: reached or accepted milestones as a
/// share of the line's quantity, else the billing model's own count.
fn own_delivered(
    index: &Index,
    line: &steward_billing::ContractLine,
    today: chrono::NaiveDate,
) -> Decimal {
    if matches!(line.model, BillingModel::Milestone) {
        let quantity = line.quantity.unwrap_or(Decimal::ONE);
        return index
            .items_of_line(&line.id)
            .filter(|r| r.kind == Kind::Milestone)
            .filter(|r| matches!(r.state.as_str(), "reached" | "accepted" | "invoiced"))
            .map(|r| match r.decimal("percentage") {
                Some(percent) => quantity * percent / Decimal::ONE_HUNDRED,
                None => Decimal::ONE,
            })
            .sum();
    }
    line.own_delivered(today).unwrap_or_default()
}

/// Sums the quantities of released or paid invoice lines on the contract line. Credit note
/// lines are stored negative, so the sum is net.
fn invoiced(index: &Index, contract_line: &str) -> Decimal {
    let mut total = Decimal::ZERO;
    for invoice in index.invoices_of_line(contract_line) {
        let Some(record) = index.invoice(invoice) else {
            continue;
        };
        if !matches!(record.state.as_str(), "released" | "paid") {
            continue;
        }
        let credit = record.text("move_type") == Some("credit_note");
        for line in index.invoice_lines(invoice) {
            if line.ref_id("contract_line") != Some(contract_line) {
                continue;
            }
            let quantity = line.decimal("quantity").unwrap_or_default();
            total += if credit { -quantity.abs() } else { quantity };
        }
    }
    total
}

fn hours_text(hours: Decimal) -> String {
    format!("{} h", hours.normalize())
}

fn explain_delivered(
    model: &str,
    hourly: bool,
    unit: Option<&str>,
    hours: Decimal,
    steward: Decimal,
    odoo: Option<Decimal>,
) -> String {
    let Some(odoo) = odoo else {
        return "Odoo reported no delivered quantity for this line".into();
    };
    let in_hours = unit.is_none_or(|u| u.eq_ignore_ascii_case("hours"));
    if hourly && !in_hours {
        return format!(
            "different unit: Odoo counts the line in {}, Steward counts {} of time",
            unit.unwrap_or("another unit"),
            hours_text(hours)
        );
    }
    let difference = steward - odoo;
    let time = if hourly || hours.is_zero() {
        String::new()
    } else {
        format!(
            "; the {} logged on it are covered by the line's price and not delivered units",
            hours_text(hours)
        )
    };
    if difference.is_zero() {
        return format!("same delivered quantity{time}");
    }
    if hourly {
        return if difference < Decimal::ZERO {
            format!(
                "time not synced: Odoo counts {} more on this line, from timesheets outside \
                 the sync window or not readable by it",
                hours_text(-difference)
            )
        } else {
            format!(
                "Steward counts {} more: time entered in Steward or moved to this line after \
                 Odoo's last report",
                hours_text(difference)
            )
        };
    }
    match model {
        "milestone" => format!(
            "milestone line: Odoo delivers {} by the milestones reached, Steward {} by the \
             milestones reached or accepted with their share of the line{time}",
            odoo.normalize(),
            steward.normalize()
        ),
        "manual" => format!(
            "manual line: the delivered quantity is entered by hand, {} in Odoo and {} in \
             Steward{time}",
            odoo.normalize(),
            steward.normalize()
        ),
        _ => format!(
            "{} line: Steward delivers {} by its terms (installments or periods due), Odoo \
             reports {}{time}",
            model.replace('_', " "),
            steward.normalize(),
            odoo.normalize()
        ),
    }
}

fn explain_invoiced(steward: Decimal, odoo: Option<Decimal>) -> String {
    let odoo = odoo.unwrap_or_default();
    let difference = steward - odoo;
    if difference.is_zero() {
        return if odoo.is_zero() {
            "not invoiced on either side".into()
        } else {
            "same invoiced quantity".into()
        };
    }
    if difference < Decimal::ZERO {
        format!(
            "Odoo invoiced {} more: on invoices the sync did not read, such as ones issued \
             before the sync window, or on Odoo drafts, which Odoo counts and Steward counts \
             only once released",
            (-difference).normalize()
        )
    } else {
        format!(
            "Steward invoiced {} more: Steward's released invoices are not written back to \
             Odoo",
            difference.normalize()
        )
    }
}
