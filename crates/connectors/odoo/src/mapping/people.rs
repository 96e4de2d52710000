//! Work calendars, employees and leaves.

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use steward_domain::Kind;
use steward_domain::plan::WEEKDAYS;

use super::{Lookups, MapResult, Upsert, key, map_state};
use crate::client::Row;
use crate::convert::{RowView, decimal_value, hours, money_value};
use crate::models::{ATTENDANCE, CALENDAR, HR_EMPLOYEE};

fn active_state(view: &RowView) -> Result<&'static str, String> {
    Ok(if view.boolean("active")? {
        "active"
    } else {
        "inactive"
    })
}

/// Sums the attendance hours of each weekday, keyed `mon` to `sun`. Section lines
/// (`display_type` set) carry no hours. A two-week calendar lists both weeks, so its sums are
/// halved to an average week.
pub(crate) fn week_hours(attendances: &[&Row]) -> Result<Map<String, Value>, String> {
    let mut totals = [Decimal::ZERO; 7];
    let mut two_weeks = false;
    for row in attendances {
        let line = RowView::new(ATTENDANCE, row);
        if line.text("display_type")?.is_some() {
            continue;
        }
        let day = line.text("dayofweek")?.unwrap_or_default();
        let index = day
            .parse::<usize>()
            .ok()
            .filter(|i| *i < 7)
            .ok_or_else(|| {
                format!(
                    "{ATTENDANCE} {}: `dayofweek` is `{day}`, expected 0 (Monday) to 6 (Sunday)",
                    line.id()
                )
            })?;
        if line.text("week_type")?.is_some() {
            two_weeks = true;
        }
        totals[index] += line.number_or_zero("duration_hours")?;
    }
    let mut week = Map::new();
    for (day, total) in WEEKDAYS.iter().zip(totals) {
        let total = if two_weeks {
            total / Decimal::TWO
        } else {
            total
        };
        week.insert(day.to_string(), decimal_value(hours(total)));
    }
    Ok(week)
}

/// `resource.calendar` and its attendance lines → `work_calendar`.
pub(crate) fn calendar(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(CALENDAR, row);
    let mut upsert = Upsert::of(Kind::WorkCalendar, &view);
    upsert
        .state(active_state(&view)?)
        .set("name", view.required_text("name")?)
        .set_opt("timezone", view.text("tz")?)
        .set_opt(
            "hours_per_day",
            view.number("hours_per_day")?
                .map(|h| decimal_value(hours(h))),
        )
        .set("week_hours", week_hours(&lookups.attendances(view.id()))?);
    Ok(vec![upsert.build()])
}

/// Returns the short name of a department: its own name, else the last part of the display name
/// `Management / Sales`.
fn department(view: &RowView, lookups: &Lookups) -> Result<Option<String>, String> {
    let Some((id, display)) = view.many2one("department_id")? else {
        return Ok(None);
    };
    Ok(lookups
        .department_name(id)
        .or_else(|| display.rsplit(" / ").next().map(str::to_string)))
}

/// `hr.employee` → `employee`. The manager is a reference to another employee, so an employee
/// read before their manager is resolved by the sync's second pass.
pub(crate) fn employee(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(HR_EMPLOYEE, row);
    let currency = view.currency("currency_id")?;
    let cost_rate = match (view.number("hourly_cost")?, currency) {
        (Some(rate), Some(currency)) => Some(money_value(rate, currency)),
        _ => None,
    };
    let user = view.many2one_id("user_id")?;
    let mut upsert = Upsert::of(Kind::Employee, &view);
    upsert
        .state(active_state(&view)?)
        .set("name", view.required_text("name")?)
        .set_opt("email", view.text("work_email")?)
        .set_opt("role", view.text("job_title")?)
        .set_opt("department", department(&view, lookups)?)
        .set_opt("timezone", view.text("tz")?)
        .set_opt("currency", currency.map(|c| c.code()))
        .set_opt("cost_rate", cost_rate)
        .set_opt("user_login", user.and_then(|u| lookups.user_login(u)))
        .reference(
            "manager",
            view.many2one_id("parent_id")?
                .map(|id| key(HR_EMPLOYEE, id)),
        )
        .reference(
            "calendar",
            view.many2one_id("resource_calendar_id")?
                .map(|id| key(CALENDAR, id)),
        );
    Ok(vec![upsert.build()])
}

const LEAVE_STATES: &[(&str, &str)] = &[
    ("draft", "requested"),
    ("confirm", "requested"),
    ("validate1", "requested"),
    ("validate", "approved"),
    ("refuse", "refused"),
    ("cancel", "cancelled"),
];

/// `hr.leave` → `leave`. Leaves given to a whole company, department or tag have no employee;
/// Odoo also creates one leave per employee for them, so they are not mirrored.
pub(crate) fn leave(row: &Row) -> MapResult {
    let view = RowView::new(crate::models::HR_LEAVE, row);
    let Some(employee) = view.many2one_id("employee_id")? else {
        return Ok(Vec::new());
    };
    let mut upsert = Upsert::of(Kind::Leave, &view);
    upsert
        .state(map_state(&view, "state", LEAVE_STATES)?)
        .set_opt("start_date", view.date("request_date_from")?)
        .set_opt("end_date", view.date("request_date_to")?)
        .set_opt("leave_type", view.many2one_name("holiday_status_id")?)
        .set_opt(
            "hours",
            view.number("number_of_hours")?
                .map(|h| decimal_value(hours(h))),
        )
        .set_opt("days", view.number("number_of_days")?.map(decimal_value))
        .set_opt("reason", view.text("name")?)
        .reference("employee", Some(key(HR_EMPLOYEE, employee)));
    Ok(vec![upsert.build()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(values: Value) -> Vec<Row> {
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    }

    fn line(id: i64, day: &str, hours: f64, display: Value, week: Value) -> Value {
        json!({"id": id, "dayofweek": day, "duration_hours": hours,
            "display_type": display, "week_type": week})
    }

    #[test]
    fn week_hours_sum_per_weekday() {
        let lines = rows(json!([
            line(1, "0", 4.0, json!(false), json!(false)),
            line(2, "0", 0.0, json!(false), json!(false)),
            line(3, "0", 3.6000000000000014, json!(false), json!(false)),
            line(4, "4", 4.0, json!(false), json!(false)),
            line(5, "2", 9.0, json!("line_section"), json!(false)),
        ]));
        let refs: Vec<&Row> = lines.iter().collect();
        let week = week_hours(&refs).unwrap();
        assert_eq!(week["mon"], json!("7.6"));
        assert_eq!(week["wed"], json!("0"), "section lines carry no hours");
        assert_eq!(week["fri"], json!("4"));
        assert_eq!(week["sun"], json!("0"));
        assert_eq!(week.len(), 7);
    }

    #[test]
    fn two_week_calendars_average_the_weeks() {
        let lines = rows(json!([
            line(1, "1", 8.0, json!(false), json!("0")),
            line(2, "1", 4.0, json!(false), json!("1")),
        ]));
        let refs: Vec<&Row> = lines.iter().collect();
        assert_eq!(week_hours(&refs).unwrap()["tue"], json!("6"));
    }

    #[test]
    fn unknown_weekday_names_the_line() {
        let lines = rows(json!([line(9, "7", 1.0, json!(false), json!(false))]));
        let refs: Vec<&Row> = lines.iter().collect();
        let error = week_hours(&refs).unwrap_err();
        assert!(error.contains("resource.calendar.attendance 9"), "{error}");
    }

    #[test]
    fn leave_states_follow_odoo() {
        let row = json!({"id": 6, "employee_id": [14, "Anita Oliver"], "state": "validate1",
            "request_date_from": "2026-12-07", "request_date_to": "2026-12-09",
            "holiday_status_id": [1, "Paid Time Off"], "number_of_hours": 24.0,
            "number_of_days": 3.0, "name": "Trip", "write_date": "2026-12-04 15:24:00"});
        let commands = leave(row.as_object().unwrap()).unwrap();
        let steward_domain::Command::Upsert { state, fields, .. } = &commands[0] else {
            panic!("expected an upsert");
        };
        assert_eq!(state.as_deref(), Some("requested"));
        assert_eq!(fields["leave_type"], json!("Paid Time Off"));
        assert_eq!(fields["hours"], json!("24"));
    }
}
