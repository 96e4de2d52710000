//! Projects, milestones and tasks.

use rust_decimal::Decimal;
use steward_domain::Kind;

use super::{CONTRACT_MODEL, Lookups, MapResult, Upsert, key};
use crate::client::Row;
use crate::convert::{RowView, decimal_value, hours};
use crate::models::{CALENDAR, MILESTONE, PROJECT, SALE_ORDER_LINE, TASK};

/// Returns the project state from Odoo's latest project update. The statuses `on_hold` and
/// `done` have their own states, and every other status is an active project.
fn project_state(view: &RowView) -> Result<&'static str, String> {
    Ok(match view.text("last_update_status")?.as_deref() {
        Some("on_hold") => "on_hold",
        Some("done") => "closed",
        _ => "active",
    })
}

/// `project.project` → `project`.
pub(crate) fn project(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(PROJECT, row);
    let budget_hours = view
        .number("allocated_hours")?
        .filter(|h| *h > Decimal::ZERO)
        .map(|h| decimal_value(hours(h)));
    let mut upsert = Upsert::of(Kind::Project, &view);
    upsert
        .state(project_state(&view)?)
        .set("name", view.required_text("name")?)
        .set_opt("currency", view.currency("currency_id")?.map(|c| c.code()))
        .set_opt("budget_hours", budget_hours)
        .set_opt("start_date", view.date("date_start")?)
        .set_opt("end_date", view.date("date")?)
        .set("billable", view.boolean("allow_billable")?)
        .reference(
            "client",
            view.many2one_id("partner_id")?
                .map(|partner| lookups.client_key(partner)),
        )
        .reference(
            "contract",
            view.many2one_id("sale_order_id")?
                .map(|order| key(CONTRACT_MODEL, order)),
        )
        .reference(
            "owner",
            view.many2one_id("user_id")?
                .map(|user| lookups.user_key(user)),
        )
        .reference(
            "calendar",
            view.many2one_id("resource_calendar_id")?
                .map(|id| key(CALENDAR, id)),
        );
    Ok(vec![upsert.build()])
}

/// `project.milestone` → `milestone`; a reached milestone is `reached` on its reached date.
pub(crate) fn milestone(row: &Row) -> MapResult {
    let view = RowView::new(MILESTONE, row);
    let reached = view.boolean("is_reached")?;
    let percentage = view
        .number("quantity_percentage")?
        .map(|share| decimal_value(share * Decimal::ONE_HUNDRED));
    let mut upsert = Upsert::of(Kind::Milestone, &view);
    upsert
        .state(if reached { "reached" } else { "planned" })
        .set("name", view.required_text("name")?)
        .set_opt("deadline", view.date("deadline")?)
        .set_opt("percentage", percentage)
        .set_opt(
            "reached_on",
            if reached {
                view.date("reached_date")?
            } else {
                None
            },
        )
        .reference(
            "project",
            view.many2one_id("project_id")?.map(|id| key(PROJECT, id)),
        )
        .reference(
            "contract_line",
            view.many2one_id("sale_line_id")?
                .map(|id| key(SALE_ORDER_LINE, id)),
        );
    Ok(vec![upsert.build()])
}

/// Odoo 17 task states: `1_done` and `1_canceled` are closed; the open states
/// (`01_in_progress`, `02_changes_requested`, `03_approved`, `04_waiting_normal`) are work in
/// progress.
fn task_state(view: &RowView) -> Result<&'static str, String> {
    Ok(match view.text("state")?.as_deref() {
        Some("1_done") => "done",
        Some("1_canceled") => "cancelled",
        _ => "in_progress",
    })
}

/// `project.task` → `task`; assignees are the employees of the assigned users.
pub(crate) fn task(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(TASK, row);
    let assignees = view
        .ids("user_ids")?
        .into_iter()
        .map(|user| lookups.user_key(user))
        .collect();
    let priority = if view.text("priority")?.as_deref() == Some("1") {
        "high"
    } else {
        "normal"
    };
    let mut upsert = Upsert::of(Kind::Task, &view);
    upsert
        .state(task_state(&view)?)
        .set("name", view.required_text("name")?)
        .set("priority", priority)
        .set_opt("stage", view.many2one_name("stage_id")?)
        .set_opt("deadline", view.datetime_day("date_deadline")?)
        .set_opt(
            "planned_hours",
            view.number("allocated_hours")?
                .map(|h| decimal_value(hours(h))),
        )
        .reference(
            "project",
            view.many2one_id("project_id")?.map(|id| key(PROJECT, id)),
        )
        .references("assignees", assignees)
        .reference(
            "milestone",
            view.many2one_id("milestone_id")?
                .map(|id| key(MILESTONE, id)),
        )
        .reference(
            "contract_line",
            view.many2one_id("sale_line_id")?
                .map(|id| key(SALE_ORDER_LINE, id)),
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
    fn reached_milestone_keeps_its_share() {
        let row = json!({"id": 5, "name": "Cabinets", "project_id": [8, "AGR"],
            "deadline": false, "is_reached": true, "reached_date": "2026-12-04",
            "sale_line_id": [48, "S00021 - Kitchen Assembly"], "quantity_percentage": 0.25,
            "write_date": "2026-12-04 15:24:14"});
        let (state, fields) = parts(milestone(row.as_object().unwrap()).unwrap());
        assert_eq!(state.as_deref(), Some("reached"));
        assert_eq!(fields["percentage"], json!("25"));
        assert_eq!(fields["reached_on"], json!("2026-12-04"));
    }

    #[test]
    fn task_state_and_priority_map() {
        let base = json!({"id": 1, "name": "Office planning", "project_id": [1, "Office"],
            "stage_id": [3, "Done"], "priority": "1", "user_ids": [], "milestone_id": false,
            "sale_line_id": false, "allocated_hours": 20.0,
            "date_deadline": "2026-12-24 00:00:00", "write_date": "2026-12-04 15:24:13"});
        for (odoo, steward) in [
            ("1_done", "done"),
            ("1_canceled", "cancelled"),
            ("01_in_progress", "in_progress"),
            ("02_changes_requested", "in_progress"),
        ] {
            let mut row = base.as_object().unwrap().clone();
            row.insert("state".into(), json!(odoo));
            let (state, fields) = parts(task(&row, &Lookups::default()).unwrap());
            assert_eq!(state.as_deref(), Some(steward), "{odoo}");
            assert_eq!(fields["priority"], json!("high"));
            assert_eq!(fields["stage"], json!("Done"));
            assert_eq!(fields["deadline"], json!("2026-12-24"));
        }
    }
}
