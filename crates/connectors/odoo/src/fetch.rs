//! Reading Odoo: keyset pages by id, incremental reads by `write_date`, and the extra rows an
//! incremental read needs to remap records that depend on changed ones.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::client::{OdooClient, Row};
use crate::convert::RowView;
use crate::error::OdooError;
use crate::mapping::sales::is_service_line;
use crate::models::{
    ATTENDANCE, CALENDAR, HR_DEPARTMENT, HR_EMPLOYEE, MODELS, ModelSpec, PRODUCT, PROJECT,
    RES_PARTNER, RES_USERS, SALE_ORDER, SALE_ORDER_LINE, TASK, spec,
};
use crate::progress::Progress;

/// Rows per page of each `search_read`.
pub(crate) const PAGE_SIZE: usize = 100;

/// Everything one sync read.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub rows: BTreeMap<&'static str, BTreeMap<i64, Row>>,
    /// Ids of the rows to mirror, per model; the other rows are only looked up.
    pub to_map: BTreeMap<&'static str, BTreeSet<i64>>,
    /// The latest `write_date` among the rows the model's cursor query returned.
    pub latest: BTreeMap<&'static str, String>,
    /// Rows read per model, including lookups.
    pub read: BTreeMap<&'static str, usize>,
}

impl Snapshot {
    fn add(&mut self, model: &'static str, rows: Vec<Row>, mirror: bool) {
        *self.read.entry(model).or_default() += rows.len();
        let stored = self.rows.entry(model).or_default();
        for row in rows {
            let id = row.get("id").and_then(Value::as_i64).unwrap_or_default();
            if mirror {
                self.to_map.entry(model).or_default().insert(id);
            }
            stored.insert(id, row);
        }
    }

    fn mirrored(&self, model: &str) -> Vec<RowView<'_>> {
        let (Some(rows), Some(ids)) = (self.rows.get(model), self.to_map.get(model)) else {
            return Vec::new();
        };
        let model = spec(model).name;
        ids.iter()
            .filter_map(|id| rows.get(id))
            .map(|row| RowView::new(model, row))
            .collect()
    }

    /// Returns the ids in `field` (a many2one or a list) of the rows of `model` being mirrored.
    fn referenced(&self, model: &str, field: &str) -> BTreeSet<i64> {
        let mut ids = BTreeSet::new();
        for view in self.mirrored(model) {
            if let Ok(Some(id)) = view.many2one_id(field) {
                ids.insert(id);
            } else if let Ok(list) = view.ids(field) {
                ids.extend(list);
            }
        }
        ids
    }
}

/// Joins leaves with OR: `[leaf]` for one leaf, `["|", a, b]` for two, nothing for none.
fn any_of(leaves: Vec<Value>) -> Vec<Value> {
    let mut domain = Vec::new();
    for _ in 1..leaves.len() {
        domain.push(json!("|"));
    }
    domain.extend(leaves);
    domain
}

fn ids_in(field: &str, ids: &BTreeSet<i64>) -> Value {
    json!([field, "in", ids.iter().collect::<Vec<_>>()])
}

/// Returns `domain` narrowed to the rows of `model` that are not mirrored yet, so a dependant
/// read does not fetch again the rows that the model's cursor query already returned.
fn excluding_mirrored(snapshot: &Snapshot, model: &str, mut domain: Vec<Value>) -> Vec<Value> {
    if let Some(ids) = snapshot.to_map.get(model).filter(|ids| !ids.is_empty()) {
        domain.push(json!(["id", "not in", ids.iter().collect::<Vec<_>>()]));
    }
    domain
}

pub(crate) struct Fetcher<'a> {
    pub client: &'a OdooClient,
    pub progress: &'a Progress,
}

impl Fetcher<'_> {
    /// Reads every row matching the base domain and `extra`, 100 at a time ordered by id, each
    /// page continuing after the last id of the previous one.
    pub async fn read_all(
        &self,
        model: &ModelSpec,
        extra: &[Value],
    ) -> Result<Vec<Row>, OdooError> {
        let bar = self.progress.bar(model.name);
        let mut rows = Vec::new();
        let mut last = 0_i64;
        loop {
            let mut domain = model.base_domain();
            domain.extend(extra.iter().cloned());
            domain.push(json!(["id", ">", last]));
            let page = self
                .client
                .search_read(
                    model.name,
                    &domain,
                    model.fields,
                    Some("id asc"),
                    Some(PAGE_SIZE),
                )
                .await?;
            let full = page.len() >= PAGE_SIZE;
            for row in &page {
                let id = row.get("id").and_then(Value::as_i64).unwrap_or_default();
                if id <= last {
                    return Err(OdooError::UnexpectedResult {
                        call: format!("{}.search_read", model.name),
                        expected: format!("ids in ascending order after {last}"),
                        got: format!("id {id}"),
                    });
                }
                last = id;
            }
            bar.inc(page.len() as u64);
            tracing::debug!(
                model = model.name,
                rows = page.len(),
                last_id = last,
                "read a page"
            );
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
    }

    /// Reads the rows of `ids` that the snapshot lacks, within the model's base domain.
    async fn ensure(
        &self,
        snapshot: &mut Snapshot,
        model: &'static str,
        ids: BTreeSet<i64>,
    ) -> Result<(), OdooError> {
        let known = snapshot.rows.get(model);
        let missing: BTreeSet<i64> = ids
            .into_iter()
            .filter(|id| known.is_none_or(|rows| !rows.contains_key(id)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = self
            .read_all(spec(model), &[ids_in("id", &missing)])
            .await?;
        snapshot.add(model, rows, false);
        Ok(())
    }

    /// Reads every model: all rows, or those written at or after the model's cursor.
    pub async fn snapshot(
        &self,
        cursors: &BTreeMap<&'static str, Option<String>>,
    ) -> Result<Snapshot, OdooError> {
        let mut snapshot = Snapshot::default();
        for model in MODELS {
            let since = cursors.get(model.name).cloned().flatten();
            // `>=` because a cursor held back to a failed row's `write_date` must read that
            // row again, and because Odoo returns `write_date` to the second, so a row written
            // later in the cursor's second shows the same value. The rows of that second are
            // read again, and those that did not change append no event.
            let extra: Vec<Value> = since
                .iter()
                .map(|cursor| json!(["write_date", ">=", cursor]))
                .collect();
            let rows = self.read_all(model, &extra).await?;
            if let Some(latest) = rows
                .iter()
                .filter_map(|row| row.get("write_date").and_then(Value::as_str))
                .max()
            {
                snapshot.latest.insert(model.name, latest.to_string());
            }
            snapshot.add(model.name, rows, true);
        }
        if cursors.values().any(Option::is_some) {
            self.add_dependants(&mut snapshot).await?;
        }
        Ok(snapshot)
    }

    /// Adds, after an incremental read, the rows needed to remap records whose inputs changed:
    /// a calendar with its lines, employees of changed departments and users, and orders with
    /// all their lines. Then it reads the rows the mapping looks values up in.
    ///
    /// NOTE: a change to a partner's parent, or to a product's invoicing policy, reaches the
    /// orders and lines that use them only when those change too or on a full sync.
    async fn add_dependants(&self, snapshot: &mut Snapshot) -> Result<(), OdooError> {
        let mut calendars = snapshot.referenced(ATTENDANCE, "calendar_id");
        calendars.extend(snapshot.to_map.get(CALENDAR).into_iter().flatten());
        if !calendars.is_empty() {
            self.ensure(snapshot, CALENDAR, calendars.clone()).await?;
            snapshot
                .to_map
                .entry(CALENDAR)
                .or_default()
                .extend(&calendars);
            let domain = excluding_mirrored(
                snapshot,
                ATTENDANCE,
                vec![ids_in("calendar_id", &calendars)],
            );
            let lines = self.read_all(spec(ATTENDANCE), &domain).await?;
            snapshot.add(ATTENDANCE, lines, false);
        }

        let mut leaves = Vec::new();
        for (model, field) in [(HR_DEPARTMENT, "department_id"), (RES_USERS, "user_id")] {
            if let Some(ids) = snapshot.to_map.get(model).filter(|ids| !ids.is_empty()) {
                leaves.push(ids_in(field, ids));
            }
        }
        if !leaves.is_empty() {
            let domain = excluding_mirrored(snapshot, HR_EMPLOYEE, any_of(leaves));
            let employees = self.read_all(spec(HR_EMPLOYEE), &domain).await?;
            snapshot.add(HR_EMPLOYEE, employees, true);
        }

        let mut orders = snapshot.referenced(SALE_ORDER_LINE, "order_id");
        orders.extend(snapshot.to_map.get(SALE_ORDER).into_iter().flatten());
        if !orders.is_empty() {
            self.ensure(snapshot, SALE_ORDER, orders.clone()).await?;
            snapshot
                .to_map
                .entry(SALE_ORDER)
                .or_default()
                .extend(&orders);
            let domain =
                excluding_mirrored(snapshot, SALE_ORDER_LINE, vec![ids_in("order_id", &orders)]);
            let lines = self.read_all(spec(SALE_ORDER_LINE), &domain).await?;
            snapshot.add(SALE_ORDER_LINE, lines, true);
        }

        let departments = snapshot.referenced(HR_EMPLOYEE, "department_id");
        self.ensure(snapshot, HR_DEPARTMENT, departments).await?;

        let mut partners = snapshot.referenced(SALE_ORDER, "partner_id");
        partners.extend(snapshot.referenced(PROJECT, "partner_id"));
        self.ensure(snapshot, RES_PARTNER, partners).await?;

        let mut users = snapshot.referenced(HR_EMPLOYEE, "user_id");
        for (model, field) in [
            (SALE_ORDER, "user_id"),
            (PROJECT, "user_id"),
            (TASK, "user_ids"),
            (RES_PARTNER, "user_id"),
        ] {
            users.extend(snapshot.referenced(model, field));
        }
        self.ensure(snapshot, RES_USERS, users).await?;

        let products: BTreeSet<i64> = snapshot
            .mirrored(SALE_ORDER_LINE)
            .into_iter()
            .filter(|line| is_service_line(line).unwrap_or(false))
            .filter_map(|line| line.many2one_id("product_id").ok().flatten())
            .collect();
        self.ensure(snapshot, PRODUCT, products).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_joins_leaves_with_or() {
        assert_eq!(any_of(vec![]), Vec::<Value>::new());
        assert_eq!(
            any_of(vec![json!(["a", "=", 1])]),
            vec![json!(["a", "=", 1])]
        );
        assert_eq!(
            any_of(vec![
                json!(["a", "=", 1]),
                json!(["b", "=", 2]),
                json!(["c", "=", 3])
            ]),
            vec![
                json!("|"),
                json!("|"),
                json!(["a", "=", 1]),
                json!(["b", "=", 2]),
                json!(["c", "=", 3])
            ]
        );
    }
}
