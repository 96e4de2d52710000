//! Services, sale orders (opportunities and contracts) and their service lines.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use steward_domain::Kind;

use super::{CONTRACT_MODEL, Lookups, MapResult, Upsert, key, map_state};
use crate::client::Row;
use crate::convert::{RowView, decimal_value, money_value, tax_rate};
use crate::models::{PRODUCT, PROJECT, SALE_ORDER, SALE_ORDER_LINE, TASK};

/// Returns the billing model of a service product. A milestone service type comes before the
/// service policy. Prepaid services count as prepaid hours when sold by the hour, and as a
/// fixed fee otherwise.
pub(crate) fn billing_model(product: &RowView) -> Result<&'static str, String> {
    if product.text("service_type")?.as_deref() == Some("milestones") {
        return Ok("milestone");
    }
    let policy = product.text("service_policy")?;
    match policy.as_deref() {
        Some("delivered_timesheet") => Ok("time_and_materials"),
        Some("delivered_manual") => Ok("manual"),
        Some("ordered_prepaid") => {
            let unit = product.many2one_name("uom_id")?.unwrap_or_default();
            let hourly = matches!(unit.to_ascii_lowercase().as_str(), "hours" | "hour");
            Ok(if hourly { "prepaid_hours" } else { "fixed_fee" })
        }
        other => Err(format!(
            "{PRODUCT} {}: `service_policy` is {}, so its billing model is unknown; set the \
             product's invoicing policy in Odoo",
            product.id(),
            other.map_or("empty".to_string(), |p| format!("`{p}`"))
        )),
    }
}

/// `product.product` (services) → `service`.
pub(crate) fn service(row: &Row) -> MapResult {
    let view = RowView::new(PRODUCT, row);
    let currency = view.currency("currency_id")?;
    let list_price = match (view.number("list_price")?, currency) {
        (Some(price), Some(currency)) => Some(money_value(price, currency)),
        _ => None,
    };
    let mut upsert = Upsert::of(Kind::Service, &view);
    upsert
        .state(if view.boolean("active")? {
            "active"
        } else {
            "inactive"
        })
        .set("name", view.required_text("name")?)
        .set_opt("code", view.text("default_code")?)
        .set_opt("billing_model", billing_model(&view).ok())
        .set_opt("unit", view.many2one_name("uom_id")?)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("list_price", list_price)
        .set("can_be_expensed", view.boolean("can_be_expensed")?);
    Ok(vec![upsert.build()])
}

/// Returns true for a line that Steward mirrors as a contract line: a service sold, not a
/// section, note or down payment.
pub(crate) fn is_service_line(line: &RowView) -> Result<bool, String> {
    Ok(line.boolean("is_service")?
        && !line.boolean("is_downpayment")?
        && line.text("display_type")?.is_none())
}

/// Returns the billing model of a service line, from its product.
fn line_billing_model(line: &RowView, lookups: &Lookups) -> Result<&'static str, String> {
    let Some(product) = line.many2one_id("product_id")? else {
        return Err(format!(
            "{SALE_ORDER_LINE} {}: the service line has no product, so its billing model is \
             unknown",
            line.id()
        ));
    };
    let Some(row) = lookups.product(product) else {
        return Err(format!(
            "{SALE_ORDER_LINE} {}: its product {product} was not read as an active service, so \
             its billing model is unknown; reactivate the product in Odoo or check its type",
            line.id()
        ));
    };
    billing_model(&RowView::new(PRODUCT, row))
}

/// Returns the billing model and untaxed amount of the contract an order's lines make: the
/// lines' common billing model, or `mixed`, and the sum of their subtotals. Returns `None` when
/// the order sells no service.
pub(crate) fn contract_terms(
    lines: &[&Row],
    lookups: &Lookups,
) -> Result<Option<(&'static str, Decimal)>, String> {
    let mut models = BTreeSet::new();
    let mut total = Decimal::ZERO;
    for line in lines {
        let line = RowView::new(SALE_ORDER_LINE, line);
        if !is_service_line(&line)? {
            continue;
        }
        models.insert(line_billing_model(&line, lookups)?);
        total += line.number_or_zero("price_subtotal")?;
    }
    let model = match models.len() {
        0 => return Ok(None),
        1 => models.into_iter().next().unwrap_or("mixed"),
        _ => "mixed",
    };
    Ok(Some((model, total)))
}

const OPPORTUNITY_STATES: &[(&str, &str)] = &[
    ("draft", "proposal"),
    ("sent", "negotiation"),
    ("sale", "won"),
    ("done", "won"),
    ("cancel", "lost"),
];

const CONTRACT_STATES: &[(&str, &str)] = &[
    ("draft", "draft"),
    ("sent", "draft"),
    ("sale", "active"),
    ("done", "active"),
    ("cancel", "cancelled"),
];

/// `sale.order` → `opportunity`, and also → `contract` when it sells at least one service.
pub(crate) fn order(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(SALE_ORDER, row);
    let name = view.required_text("name")?;
    let currency = view.currency("currency_id")?;
    let client = view
        .many2one_id("partner_id")?
        .map(|partner| lookups.client_key(partner));
    let owner = view
        .many2one_id("user_id")?
        .map(|user| lookups.user_key(user));
    let payment_terms = view.many2one_name("payment_term_id")?;
    let stage = map_state(&view, "state", OPPORTUNITY_STATES)?;
    let won_at = if stage == "won" {
        view.datetime("date_order")?
    } else {
        None
    };
    let amount = |value: Option<Decimal>| match (value, currency) {
        (Some(amount), Some(currency)) => Some(money_value(amount, currency)),
        _ => None,
    };

    let mut opportunity = Upsert::of(Kind::Opportunity, &view);
    opportunity
        .state(stage)
        .set("name", name.clone())
        .set("reference", name.clone())
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("amount", amount(view.number("amount_untaxed")?))
        .set_opt("payment_terms", payment_terms.clone())
        .set_opt("close_date", won_at.as_ref().map(|at| at[..10].to_string()))
        .set_opt("won_at", won_at.clone())
        .reference("client", client.clone())
        .reference("owner", owner.clone());
    let mut commands = vec![opportunity.build()];

    let Some((billing_model, total)) = contract_terms(&lookups.order_lines(view.id()), lookups)?
    else {
        return Ok(commands);
    };
    let mut contract = Upsert::keyed(
        Kind::Contract,
        key(CONTRACT_MODEL, view.id()),
        view.write_date(),
    );
    // Odoo sets `date_order` to the confirmation instant when an order is confirmed, which is
    // when its contract starts; a quotation has no start yet.
    let start_date = won_at.as_ref().map(|at| at[..10].to_string());
    contract
        .state(map_state(&view, "state", CONTRACT_STATES)?)
        .set_opt("start_date", start_date)
        .set("name", name.clone())
        .set("reference", name)
        .set("billing_model", billing_model)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("amount", amount(Some(total)))
        .set_opt("payment_terms", payment_terms)
        .set_opt("po_number", view.text("client_order_ref")?)
        .reference("client", client)
        .reference("owner", owner)
        .reference("opportunity", Some(key(SALE_ORDER, view.id())));
    commands.push(contract.build());
    Ok(commands)
}

/// `sale.order.line` → `contract_line`, for service lines only.
pub(crate) fn order_line(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(SALE_ORDER_LINE, row);
    if !is_service_line(&view)? {
        return Ok(Vec::new());
    }
    let Some(order) = view.many2one_id("order_id")? else {
        return Err(format!(
            "{SALE_ORDER_LINE} {}: the line has no order",
            view.id()
        ));
    };
    let currency = view.currency("currency_id")?;
    let name = match view.text("name")? {
        Some(name) => name,
        None => view.many2one_name("product_id")?.unwrap_or_default(),
    };
    let subtotal = view.number_or_zero("price_subtotal")?;
    let tax = view.number_or_zero("price_tax")?;
    let state = if view.text("state")?.as_deref() == Some("cancel") {
        "cancelled"
    } else {
        "open"
    };
    let mut upsert = Upsert::of(Kind::ContractLine, &view);
    upsert
        .state(state)
        .set("name", name)
        .set("billing_model", line_billing_model(&view, lookups)?)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt(
            "unit_price",
            view.number("price_unit")?
                .zip(currency)
                .map(|(price, currency)| money_value(price, currency)),
        )
        .set_opt(
            "quantity",
            view.number("product_uom_qty")?.map(decimal_value),
        )
        .set_opt("unit", view.many2one_name("product_uom")?)
        .set_opt("discount", view.number("discount")?.map(decimal_value))
        .set_opt("tax_rate", tax_rate(subtotal, tax).map(decimal_value))
        .set_opt(
            "qty_delivered",
            view.number("qty_delivered")?.map(decimal_value),
        )
        .set_opt(
            "qty_invoiced",
            view.number("qty_invoiced")?.map(decimal_value),
        )
        .reference("contract", Some(key(CONTRACT_MODEL, order)))
        .reference(
            "service",
            view.many2one_id("product_id")?.map(|id| key(PRODUCT, id)),
        )
        .reference(
            "project",
            view.many2one_id("project_id")?.map(|id| key(PROJECT, id)),
        )
        .reference("task", view.many2one_id("task_id")?.map(|id| key(TASK, id)));
    Ok(vec![upsert.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn product(service_type: &str, policy: Value, unit: &str) -> Row {
        json!({"id": 50, "service_type": service_type, "service_policy": policy,
            "uom_id": [1, unit]})
        .as_object()
        .unwrap()
        .clone()
    }

    fn model_of(row: &Row) -> Result<&'static str, String> {
        billing_model(&RowView::new(PRODUCT, row))
    }

    #[test]
    fn billing_models_follow_the_product() {
        let cases = [
            (
                product("milestones", json!("ordered_prepaid"), "Units"),
                "milestone",
            ),
            (
                product("timesheet", json!("delivered_timesheet"), "Hours"),
                "time_and_materials",
            ),
            (
                product("manual", json!("delivered_manual"), "Units"),
                "manual",
            ),
            (
                product("timesheet", json!("ordered_prepaid"), "Hours"),
                "prepaid_hours",
            ),
            (
                product("timesheet", json!("ordered_prepaid"), "Units"),
                "fixed_fee",
            ),
        ];
        for (row, expected) in cases {
            assert_eq!(model_of(&row), Ok(expected), "{row:?}");
        }
        let error = model_of(&product("timesheet", json!(false), "Units")).unwrap_err();
        assert!(error.contains("product.product 50"), "{error}");
    }

    fn line(id: i64, product: i64, service: bool, subtotal: f64) -> Row {
        json!({"id": id, "product_id": [product, "p"], "is_service": service,
            "is_downpayment": false, "display_type": false, "price_subtotal": subtotal})
        .as_object()
        .unwrap()
        .clone()
    }

    fn lookups_with_products() -> Lookups {
        let hourly = product("timesheet", json!("delivered_timesheet"), "Hours");
        let mut fixed = product("timesheet", json!("ordered_prepaid"), "Units");
        fixed.insert("id".into(), json!(44));
        let rows = std::collections::BTreeMap::from([(
            PRODUCT,
            std::collections::BTreeMap::from([(50, hourly), (44, fixed)]),
        )]);
        Lookups::new(rows)
    }

    #[test]
    fn contract_terms_use_service_lines() {
        let lookups = lookups_with_products();
        let goods = line(1, 5, false, 70.0);
        let hours = line(2, 50, true, 307.5);
        let deposit = line(3, 44, true, 750.0);

        let terms = contract_terms(&[&goods, &hours], &lookups).unwrap();
        assert_eq!(
            terms,
            Some(("time_and_materials", "307.5".parse().unwrap()))
        );

        let terms = contract_terms(&[&goods, &hours, &deposit], &lookups).unwrap();
        assert_eq!(terms, Some(("mixed", "1057.5".parse().unwrap())));

        assert_eq!(contract_terms(&[&goods], &lookups).unwrap(), None);
    }
}
