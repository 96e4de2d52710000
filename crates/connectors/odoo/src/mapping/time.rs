//! Timesheet lines and expenses.

use steward_domain::Kind;
use steward_engine::pipeline::SOURCE_STATE;

use super::{MapResult, Upsert, key, map_state};
use crate::client::Row;
use crate::convert::{RowView, decimal_value, hours, money_value};
use crate::models::{
    ACCOUNT_MOVE, HR_EMPLOYEE, HR_EXPENSE, PROJECT, SALE_ORDER_LINE, TASK, TIMESHEET,
};

/// `account.analytic.line` with a project → `timesheet`. Odoo 17 Community has no timesheet
/// validation, so uninvoiced time is `submitted` and awaits approval in Steward; invoiced
/// time is `invoiced`.
///
/// Odoo's state is also sent as the `source_state` attribute, so the engine moves an existing
/// entry to it only when it differs from the one the previous sync sent. A line Odoo invoices,
/// or whose invoice Odoo removes, follows Odoo. A line whose invoice status did not change in
/// Odoo keeps the state Steward gave it (approved, rejected, invoiced or written off), even
/// when its hours or other fields change and are updated.
pub(crate) fn timesheet(row: &Row) -> MapResult {
    let view = RowView::new(TIMESHEET, row);
    let Some(employee) = view.many2one_id("employee_id")? else {
        return Err(format!(
            "{TIMESHEET} {}: the line has no employee; set one in Odoo",
            view.id()
        ));
    };
    let billable = view
        .text("timesheet_invoice_type")?
        .is_some_and(|kind| kind.starts_with("billable"));
    let invoice = view.many2one_id("timesheet_invoice_id")?;
    let state = if invoice.is_some() {
        "invoiced"
    } else {
        "submitted"
    };
    let mut upsert = Upsert::of(Kind::Timesheet, &view);
    upsert
        .state(state)
        .attribute(SOURCE_STATE, state)
        .set_opt("date", view.date("date")?)
        .set_opt(
            "hours",
            view.number("unit_amount")?.map(|h| decimal_value(hours(h))),
        )
        .set("billable", billable)
        .set_opt("notes", view.text("name")?)
        .reference("employee", Some(key(HR_EMPLOYEE, employee)))
        .reference(
            "project",
            view.many2one_id("project_id")?.map(|id| key(PROJECT, id)),
        )
        .reference("task", view.many2one_id("task_id")?.map(|id| key(TASK, id)))
        .reference(
            "contract_line",
            view.many2one_id("so_line")?
                .map(|id| key(SALE_ORDER_LINE, id)),
        )
        .reference("invoice", invoice.map(|id| key(ACCOUNT_MOVE, id)));
    Ok(vec![upsert.build()])
}

/// Returns the product name without its internal reference: `[FOOD] Meals` → `Meals`.
pub(crate) fn category(product: &str) -> String {
    let trimmed = product.trim();
    match trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
    {
        Some((_, name)) if !name.trim().is_empty() => name.trim().to_string(),
        _ => trimmed.to_string(),
    }
}

const EXPENSE_STATES: &[(&str, &str)] = &[
    ("draft", "draft"),
    ("reported", "submitted"),
    ("submitted", "submitted"),
    ("approved", "approved"),
    ("done", "approved"),
    ("refused", "rejected"),
];

/// `hr.expense` → `expense`; billable when it is rebilled on a sale order.
///
/// Like a timesheet line, an existing expense moves to the state mapped from Odoo's `state`
/// only when that mapped state differs from the one the previous sync sent. So an approval
/// made in Steward stays until Odoo's own workflow moves the expense, such as a refusal in
/// Odoo, and Odoo's `done` after `approved` maps to `approved` both times and moves nothing.
pub(crate) fn expense(row: &Row) -> MapResult {
    let view = RowView::new(HR_EXPENSE, row);
    let Some(employee) = view.many2one_id("employee_id")? else {
        return Err(format!(
            "{HR_EXPENSE} {}: the expense has no employee; set one in Odoo",
            view.id()
        ));
    };
    let currency = view.currency("currency_id")?;
    let amount = view
        .number("total_amount_currency")?
        .zip(currency)
        .map(|(amount, currency)| money_value(amount, currency));
    let state = map_state(&view, "state", EXPENSE_STATES)?;
    let mut upsert = Upsert::of(Kind::Expense, &view);
    upsert
        .state(state)
        .attribute(SOURCE_STATE, state)
        .set_opt("date", view.date("date")?)
        .set_opt(
            "category",
            view.many2one_name("product_id")?.map(|p| category(&p)),
        )
        .set_opt("description", view.text("name")?)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("amount", amount)
        .set("billable", view.many2one_id("sale_order_id")?.is_some())
        .reference("employee", Some(key(HR_EMPLOYEE, employee)));
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
    fn category_drops_the_code() {
        assert_eq!(category("[EXP_GEN] Others"), "Others");
        assert_eq!(
            category("[TRANS & ACC] Travel & Accommodation"),
            "Travel & Accommodation"
        );
        assert_eq!(category("Mileage"), "Mileage");
        assert_eq!(category("[ODD]"), "[ODD]");
    }

    #[test]
    fn timesheet_billable_and_state() {
        let row = json!({"id": 9, "name": "Design", "date": "2026-11-26", "unit_amount": 8.0,
            "employee_id": [1, "Mitchell Admin"], "project_id": [8, "AGR"], "task_id": false,
            "so_line": [47, "Senior Architect"], "timesheet_invoice_type": "billable_time",
            "timesheet_invoice_id": false, "write_date": "2026-12-04 15:24:14"});
        let (state, fields) = parts(timesheet(row.as_object().unwrap()).unwrap());
        assert_eq!(state.as_deref(), Some("submitted"));
        assert_eq!(fields["billable"], json!(true));
        assert_eq!(fields["hours"], json!("8"));

        let mut invoiced = row.as_object().unwrap().clone();
        invoiced.insert("timesheet_invoice_id".into(), json!([4, "INV/2026/00001"]));
        invoiced.insert("timesheet_invoice_type".into(), json!("non_billable"));
        let (state, fields) = parts(timesheet(&invoiced).unwrap());
        assert_eq!(state.as_deref(), Some("invoiced"));
        assert_eq!(fields["billable"], json!(false));
    }

    #[test]
    fn expense_states_map() {
        for (odoo, steward) in [
            ("draft", "draft"),
            ("reported", "submitted"),
            ("done", "approved"),
            ("refused", "rejected"),
        ] {
            let row = json!({"id": 5, "name": "Travel by Air", "employee_id": [1, "Mitchell Admin"],
                "product_id": [37, "[TRANS & ACC] Travel & Accommodation"], "date": "2026-12-12",
                "total_amount_currency": 700.0, "currency_id": [1, "USD"], "state": odoo,
                "sale_order_id": false, "write_date": "2026-12-04 15:24:00"});
            let (state, fields) = parts(expense(row.as_object().unwrap()).unwrap());
            assert_eq!(state.as_deref(), Some(steward), "{odoo}");
            assert_eq!(fields["amount"], json!("700.00"));
            assert_eq!(fields["category"], json!("Travel & Accommodation"));
        }
    }
}
