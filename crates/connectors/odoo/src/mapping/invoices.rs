//! Customer invoices, credit notes and their product lines.

use rust_decimal::Decimal;
use steward_domain::Kind;

use super::{MapResult, Upsert, key, map_state};
use crate::client::Row;
use crate::convert::{RowView, decimal_value, money_value, tax_rate};
use crate::models::{ACCOUNT_MOVE, ACCOUNT_MOVE_LINE, PRODUCT, RES_PARTNER, SALE_ORDER_LINE};

const MOVE_TYPES: &[(&str, &str)] = &[("out_invoice", "invoice"), ("out_refund", "credit_note")];

const PAYMENT_STATES: &[&str] = &["not_paid", "in_payment", "partial", "paid", "reversed"];

/// `account.move` → `invoice`. A posted move is `released`, or `paid` once its payment state
/// is `paid`.
pub(crate) fn invoice(row: &Row) -> MapResult {
    let view = RowView::new(ACCOUNT_MOVE, row);
    let move_type = map_state(&view, "move_type", MOVE_TYPES)?;
    // Odoo's `invoicing_legacy` marks moves from before its accounting was installed and has
    // no Steward equivalent.
    let payment_state = view
        .text("payment_state")?
        .filter(|p| PAYMENT_STATES.contains(&p.as_str()));
    let state = match view.text("state")?.as_deref() {
        Some("posted") if payment_state.as_deref() == Some("paid") => "paid",
        Some("posted") => "released",
        Some("draft") => "draft",
        Some("cancel") => "cancelled",
        other => {
            return Err(format!(
                "{ACCOUNT_MOVE} {}: `state` is {}, expected draft, posted or cancel",
                view.id(),
                other.map_or("empty".to_string(), |s| format!("`{s}`"))
            ));
        }
    };

    let currency = view.currency("currency_id")?;
    let amount = |field: &str| -> Result<Option<serde_json::Value>, String> {
        Ok(view
            .number(field)?
            .zip(currency)
            .map(|(amount, currency)| money_value(amount, currency)))
    };
    // Drafts are numbered `/` until they are posted.
    let number = view.text("name")?.filter(|n| n != "/");

    let mut upsert = Upsert::of(Kind::Invoice, &view);
    upsert
        .state(state)
        .set("move_type", move_type)
        .set_opt("number", number)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("issue_date", view.date("invoice_date")?)
        .set_opt("due_date", view.date("invoice_date_due")?)
        .set_opt("untaxed", amount("amount_untaxed")?)
        .set_opt("tax", amount("amount_tax")?)
        .set_opt("total", amount("amount_total")?)
        .set_opt("residual", amount("amount_residual")?)
        .set_opt("payment_state", payment_state)
        .reference(
            "client",
            view.many2one_id("commercial_partner_id")?
                .map(|id| key(RES_PARTNER, id)),
        )
        .reference(
            "reverses",
            view.many2one_id("reversed_entry_id")?
                .map(|id| key(ACCOUNT_MOVE, id)),
        );
    Ok(vec![upsert.build()])
}

/// `account.move.line` (product lines) → `invoice_line`. Odoo keeps quantities positive on
/// credit notes, but Steward stores them negative, and the line amounts too.
pub(crate) fn invoice_line(row: &Row) -> MapResult {
    let view = RowView::new(ACCOUNT_MOVE_LINE, row);
    let Some(invoice) = view.many2one_id("move_id")? else {
        return Err(format!(
            "{ACCOUNT_MOVE_LINE} {}: the line has no invoice",
            view.id()
        ));
    };
    let sign = if view.text("move_type")?.as_deref() == Some("out_refund") {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };

    let currency = view.currency("currency_id")?;
    let money = |amount: Decimal| currency.map(|currency| money_value(amount, currency));
    let subtotal = view.number_or_zero("price_subtotal")?;
    let total = view.number_or_zero("price_total")?;
    let description = match view.text("name")? {
        Some(name) => name,
        None => view
            .many2one_name("product_id")?
            .unwrap_or_else(|| "/".to_string()),
    };
    // NOTE: Steward traces a line to one contract line, so a line that bills several sale lines
    // keeps only the first.
    let sale_line = view.ids("sale_line_ids")?.first().copied();

    let mut upsert = Upsert::of(Kind::InvoiceLine, &view);
    upsert
        .state("active")
        .set("description", description)
        .set_opt(
            "quantity",
            view.number("quantity")?.map(|q| decimal_value(q * sign)),
        )
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("unit_price", view.number("price_unit")?.and_then(&money))
        .set_opt("unit", view.many2one_name("product_uom_id")?)
        .set_opt("discount", view.number("discount")?.map(decimal_value))
        .set_opt(
            "tax_rate",
            tax_rate(subtotal, total - subtotal).map(decimal_value),
        )
        .set_opt("subtotal", money(subtotal * sign))
        .set_opt("tax", money((total - subtotal) * sign))
        .set_opt("total", money(total * sign))
        .reference("invoice", Some(key(ACCOUNT_MOVE, invoice)))
        .reference(
            "service",
            view.many2one_id("product_id")?.map(|id| key(PRODUCT, id)),
        )
        .reference(
            "contract_line",
            sale_line.map(|id| key(SALE_ORDER_LINE, id)),
        );
    Ok(vec![upsert.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use steward_domain::Command;

    fn parts(commands: Vec<Command>) -> (Option<String>, serde_json::Map<String, Value>) {
        match commands.into_iter().next() {
            Some(Command::Upsert { state, fields, .. }) => (state, fields),
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    #[test]
    fn credit_note_lines_are_negative() {
        let row = json!({"id": 16, "move_id": [8, "RINV/2026/00001"], "move_type": "out_refund",
            "name": "Four Person Desk", "product_id": [33, "[FURN_8220] Four Person Desk"],
            "product_uom_id": [1, "Units"], "quantity": 5.0, "price_unit": 2350.0,
            "discount": 0.0, "price_subtotal": 11750.0, "price_total": 13512.5,
            "currency_id": [1, "USD"], "sale_line_ids": [], "write_date": "2026-12-04 15:24:00"});
        let (state, fields) = parts(invoice_line(row.as_object().unwrap()).unwrap());
        assert_eq!(state.as_deref(), Some("active"));
        assert_eq!(fields["quantity"], json!("-5"));
        assert_eq!(fields["unit_price"], json!("2350.00"));
        assert_eq!(fields["subtotal"], json!("-11750.00"));
        assert_eq!(fields["tax"], json!("-1762.50"));
        assert_eq!(fields["tax_rate"], json!("15"));
    }

    #[test]
    fn posted_paid_invoice_is_paid() {
        let row = json!({"id": 1, "name": "INV/2026/00002", "move_type": "out_invoice",
            "state": "posted", "payment_state": "paid", "currency_id": [1, "USD"],
            "invoice_date": "2026-12-01", "invoice_date_due": "2027-01-31",
            "amount_untaxed": 31750.0, "amount_tax": 4762.5, "amount_total": 36512.5,
            "amount_residual": 0.0, "commercial_partner_id": [14, "Azure Interior"],
            "reversed_entry_id": false, "write_date": "2026-12-04 15:24:00"});
        let (state, fields) = parts(invoice(row.as_object().unwrap()).unwrap());
        assert_eq!(state.as_deref(), Some("paid"));
        assert_eq!(fields["move_type"], json!("invoice"));
        assert_eq!(fields["total"], json!("36512.50"));
    }
}
