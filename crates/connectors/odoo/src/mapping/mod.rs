//! Mapping Odoo records to Steward upsert commands, one module per group of models. The
//! functions are pure: they read rows and the lookups gathered by the fetch, and return
//! commands or a message that names the record and the value at fault.

pub(crate) mod invoices;
pub(crate) mod partners;
pub(crate) mod people;
pub(crate) mod projects;
pub(crate) mod sales;
pub(crate) mod time;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use steward_domain::command::{ExternalKey, ExternalRef};
use steward_domain::{Command, Kind};

use crate::client::Row;
use crate::convert::RowView;
use crate::models::{
    ATTENDANCE, HR_DEPARTMENT, HR_EMPLOYEE, PRODUCT, RES_PARTNER, RES_USERS, SALE_ORDER_LINE,
};

/// The external system name on every link the connector writes.
pub const SYSTEM: &str = "odoo";

/// The model name on the links of contracts. A sale order becomes an opportunity, linked under
/// `sale.order`, and a contract when it sells services, linked under this name, because one
/// external key links one record.
pub const CONTRACT_MODEL: &str = "sale.order#contract";

/// Returns the key of an Odoo record.
pub fn key(model: &str, id: i64) -> ExternalKey {
    ExternalKey::new(SYSTEM, model, id)
}

/// The commands one Odoo record maps to: none for a record Steward does not mirror, such as a
/// goods line, or a message naming the value that could not be mapped.
pub(crate) type MapResult = Result<Vec<Command>, String>;

/// An upsert being assembled. Every mapped field is always sent, empty ones as null, so a value
/// cleared in Odoo is cleared in Steward too.
pub(crate) struct Upsert {
    kind: Kind,
    external: ExternalKey,
    source_version: Option<String>,
    state: Option<String>,
    fields: Map<String, Value>,
    attributes: Map<String, Value>,
    refs: Vec<(String, Option<ExternalRef>)>,
}

impl Upsert {
    /// Starts an upsert of the record mirrored from `view`, versioned by its `write_date`.
    pub fn of(kind: Kind, view: &RowView) -> Upsert {
        Upsert::keyed(kind, key(view.model, view.id()), view.write_date())
    }

    pub fn keyed(kind: Kind, external: ExternalKey, source_version: Option<String>) -> Upsert {
        Upsert {
            kind,
            external,
            source_version,
            state: None,
            fields: Map::new(),
            attributes: Map::new(),
            refs: Vec::new(),
        }
    }

    pub fn state(&mut self, state: &str) -> &mut Self {
        self.state = Some(state.to_string());
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    /// Sets a field, or clears it when `value` is `None`.
    pub fn set_opt<T: Into<Value>>(&mut self, name: &str, value: Option<T>) -> &mut Self {
        self.fields
            .insert(name.to_string(), value.map_or(Value::Null, Into::into));
        self
    }

    pub fn attribute(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }

    /// Adds a reference that is resolved through the link of `target`. `None` clears it.
    pub fn reference(&mut self, name: &str, target: Option<ExternalKey>) -> &mut Self {
        self.refs
            .push((name.to_string(), target.map(ExternalRef::One)));
        self
    }

    pub fn references(&mut self, name: &str, targets: Vec<ExternalKey>) -> &mut Self {
        self.refs
            .push((name.to_string(), Some(ExternalRef::Many(targets))));
        self
    }

    pub fn build(self) -> Command {
        Command::Upsert {
            kind: self.kind,
            external: self.external,
            source_version: self.source_version,
            state: self.state,
            fields: self.fields,
            attributes: self.attributes,
            external_refs: self.refs,
        }
    }
}

/// Every row the fetch gathered, by model and id: the rows to mirror and the rows read only to
/// look values up, such as department names.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lookups {
    rows: BTreeMap<&'static str, BTreeMap<i64, Row>>,
    lines_by_order: BTreeMap<i64, Vec<i64>>,
    attendances_by_calendar: BTreeMap<i64, Vec<i64>>,
    employee_by_user: BTreeMap<i64, i64>,
}

/// Groups the ids of `model`'s rows by the many2one `field`.
fn group_by(
    rows: &BTreeMap<&'static str, BTreeMap<i64, Row>>,
    model: &'static str,
    field: &str,
) -> BTreeMap<i64, Vec<i64>> {
    let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, row) in rows.get(model).into_iter().flatten() {
        if let Ok(Some(parent)) = RowView::new(model, row).many2one_id(field) {
            groups.entry(parent).or_default().push(*id);
        }
    }
    groups
}

impl Lookups {
    pub fn new(rows: BTreeMap<&'static str, BTreeMap<i64, Row>>) -> Lookups {
        let lines_by_order = group_by(&rows, SALE_ORDER_LINE, "order_id");
        let attendances_by_calendar = group_by(&rows, ATTENDANCE, "calendar_id");
        let mut employee_by_user = BTreeMap::new();
        for (user, employees) in group_by(&rows, HR_EMPLOYEE, "user_id") {
            employee_by_user.insert(user, employees[0]);
        }
        for (id, row) in rows.get(RES_USERS).into_iter().flatten() {
            if let Some(first) = RowView::new(RES_USERS, row)
                .ids("employee_ids")
                .ok()
                .and_then(|ids| ids.first().copied())
            {
                employee_by_user.insert(*id, first);
            }
        }
        Lookups {
            rows,
            lines_by_order,
            attendances_by_calendar,
            employee_by_user,
        }
    }

    pub fn row(&self, model: &str, id: i64) -> Option<&Row> {
        self.rows.get(model)?.get(&id)
    }

    pub fn rows_of(&self, model: &str) -> impl Iterator<Item = &Row> {
        self.rows
            .get(model)
            .into_iter()
            .flat_map(|rows| rows.values())
    }

    /// Returns the employee of an Odoo user: the first of the user's `employee_ids`, or else the
    /// employee whose `user_id` is the user.
    pub fn employee_of_user(&self, user: i64) -> Option<i64> {
        self.employee_by_user.get(&user).copied()
    }

    /// Returns the key of the employee record of an Odoo user, or of the user itself when the user has
    /// no employee, which then stays listed as unresolved.
    pub fn user_key(&self, user: i64) -> ExternalKey {
        match self.employee_of_user(user) {
            Some(employee) => key(HR_EMPLOYEE, employee),
            None => key(RES_USERS, user),
        }
    }

    pub fn user_login(&self, user: i64) -> Option<String> {
        let row = self.row(RES_USERS, user)?;
        RowView::new(RES_USERS, row).text("login").ok().flatten()
    }

    pub fn department_name(&self, department: i64) -> Option<String> {
        let row = self.row(HR_DEPARTMENT, department)?;
        RowView::new(HR_DEPARTMENT, row).text("name").ok().flatten()
    }

    /// Returns the key of the Steward client of a partner: the partner's commercial partner, which is
    /// the partner itself for a company or a person without a parent.
    pub fn client_key(&self, partner: i64) -> ExternalKey {
        let commercial = self
            .row(RES_PARTNER, partner)
            .and_then(|row| {
                RowView::new(RES_PARTNER, row)
                    .many2one_id("commercial_partner_id")
                    .ok()
            })
            .flatten();
        key(RES_PARTNER, commercial.unwrap_or(partner))
    }

    pub fn product(&self, id: i64) -> Option<&Row> {
        self.row(PRODUCT, id)
    }

    /// Returns the attendance lines of a calendar, in id order.
    pub fn attendances(&self, calendar: i64) -> Vec<&Row> {
        self.rows_by_ids(ATTENDANCE, self.attendances_by_calendar.get(&calendar))
    }

    /// Returns the lines of a sale order, in id order.
    pub fn order_lines(&self, order: i64) -> Vec<&Row> {
        self.rows_by_ids(SALE_ORDER_LINE, self.lines_by_order.get(&order))
    }

    fn rows_by_ids(&self, model: &str, ids: Option<&Vec<i64>>) -> Vec<&Row> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.row(model, *id))
            .collect()
    }

    /// Returns the names of the companies the employees work for, which name the firm's own
    /// partner. Returns `None` when no employee was read, because the own company is unknown
    /// then.
    pub fn own_company_names(&self) -> Option<BTreeSet<String>> {
        let names: BTreeSet<String> = self
            .rows_of(HR_EMPLOYEE)
            .filter_map(|row| {
                RowView::new(HR_EMPLOYEE, row)
                    .many2one_name("company_id")
                    .ok()
            })
            .flatten()
            .collect();
        if names.is_empty() { None } else { Some(names) }
    }
}

/// Reads a selection value and maps it, naming the allowed values when it is unknown.
pub(crate) fn map_state(
    view: &RowView,
    field: &str,
    table: &[(&str, &'static str)],
) -> Result<&'static str, String> {
    let value = view.text(field)?.unwrap_or_default();
    table
        .iter()
        .find(|(from, _)| *from == value)
        .map(|(_, to)| *to)
        .ok_or_else(|| {
            let known: Vec<&str> = table.iter().map(|(from, _)| *from).collect();
            format!(
                "{} {}: `{field}` is `{value}`, which Steward does not map; known values are {}",
                view.model,
                view.id(),
                known.join(", ")
            )
        })
}
