//! Partners: clients and their contacts.

use steward_domain::Kind;

use super::{Lookups, MapResult, Upsert, key};
use crate::client::Row;
use crate::convert::RowView;
use crate::models::RES_PARTNER;

/// The attribute that marks the partner of the firm itself.
pub const OWN_COMPANY: &str = "own_company";

/// The kind of record a partner is mirrored as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PartnerRole {
    /// A company, or a person without a parent company.
    Client,
    /// A person at a client.
    Contact,
    /// A person who is only an employee's work contact; Steward has the employee.
    EmployeeContact,
}

pub(crate) fn role(view: &RowView) -> Result<PartnerRole, String> {
    let is_company = view.boolean("is_company")?;
    if !is_company && view.many2one_id("parent_id")?.is_some() {
        return Ok(PartnerRole::Contact);
    }
    if !is_company && !view.ids("employee_ids")?.is_empty() {
        return Ok(PartnerRole::EmployeeContact);
    }
    Ok(PartnerRole::Client)
}

/// `res.partner` → `client` or `contact`. Employees' own work contacts are not mirrored.
pub(crate) fn partner(row: &Row, lookups: &Lookups) -> MapResult {
    let view = RowView::new(RES_PARTNER, row);
    let state = if view.boolean("active")? {
        "active"
    } else {
        "inactive"
    };
    let phone = view.text("phone")?.or(view.text("mobile")?);
    match role(&view)? {
        PartnerRole::EmployeeContact => Ok(Vec::new()),
        PartnerRole::Contact => {
            let client = view
                .many2one_id("commercial_partner_id")?
                .filter(|id| *id != view.id())
                .or(view.many2one_id("parent_id")?);
            let mut upsert = Upsert::of(Kind::Contact, &view);
            upsert
                .state(state)
                .set("name", view.required_text("name")?)
                .set_opt("email", view.text("email")?)
                .set_opt("phone", phone)
                .reference("client", client.map(|id| key(RES_PARTNER, id)));
            Ok(vec![upsert.build()])
        }
        PartnerRole::Client => {
            let name = view.required_text("name")?;
            let mut upsert = Upsert::of(Kind::Client, &view);
            upsert
                .state(state)
                .set("name", name.clone())
                .set("is_company", view.boolean("is_company")?)
                .set_opt("vat", view.text("vat")?)
                .set_opt("email", view.text("email")?)
                .set_opt("phone", phone)
                .set_opt("city", view.text("city")?)
                .set_opt(
                    "payment_terms",
                    view.many2one_name("property_payment_term_id")?,
                )
                .reference(
                    "account_leader",
                    view.many2one_id("user_id")?
                        .map(|user| lookups.user_key(user)),
                );
            // Only known when employees were read in this sync; otherwise the stored flag stays.
            if let Some(own) = lookups.own_company_names() {
                let is_own = view.boolean("is_company")? && own.contains(&name);
                upsert.attribute(
                    OWN_COMPANY,
                    if is_own {
                        true.into()
                    } else {
                        serde_json::Value::Null
                    },
                );
            }
            Ok(vec![upsert.build()])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn row(value: Value) -> Row {
        value.as_object().unwrap().clone()
    }

    fn partner_row(id: i64, name: &str, company: bool, parent: Value, employees: Value) -> Row {
        row(
            json!({"id": id, "name": name, "is_company": company, "parent_id": parent,
            "commercial_partner_id": [if parent.is_array() { parent[0].as_i64().unwrap() } else { id }, name],
            "employee_ids": employees, "active": true, "phone": false, "mobile": "+1 555",
            "email": false, "vat": false, "city": false, "property_payment_term_id": false,
            "user_id": false, "write_date": "2026-12-04 15:23:31"}),
        )
    }

    fn lookups_with_employee_company(company: &str) -> Lookups {
        let mut rows = BTreeMap::new();
        let employee = row(json!({"id": 1, "company_id": [1, company], "user_id": false}));
        rows.insert(crate::models::HR_EMPLOYEE, BTreeMap::from([(1, employee)]));
        Lookups::new(rows)
    }

    fn upsert_parts(
        commands: &[steward_domain::Command],
    ) -> (Kind, serde_json::Map<String, Value>) {
        match &commands[0] {
            steward_domain::Command::Upsert {
                kind, attributes, ..
            } => (*kind, attributes.clone()),
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    #[test]
    fn roles_follow_company_and_parent() {
        let company = partner_row(9, "Wood Corner", true, json!(false), json!([]));
        let contact = partner_row(
            16,
            "Willie Burke",
            false,
            json!([9, "Wood Corner"]),
            json!([]),
        );
        let person = partner_row(8, "Joel Willis", false, json!(false), json!([]));
        let worker = partner_row(41, "Jeffrey Kelly", false, json!(false), json!([2]));
        let role_of = |r: &Row| role(&RowView::new(RES_PARTNER, r)).unwrap();
        assert_eq!(role_of(&company), PartnerRole::Client);
        assert_eq!(role_of(&contact), PartnerRole::Contact);
        assert_eq!(role_of(&person), PartnerRole::Client);
        assert_eq!(role_of(&worker), PartnerRole::EmployeeContact);
        assert!(partner(&worker, &Lookups::default()).unwrap().is_empty());
    }

    #[test]
    fn own_company_is_flagged() {
        let own = partner_row(1, "YourCompany", true, json!(false), json!([]));
        let lookups = lookups_with_employee_company("YourCompany");
        let (kind, attributes) = upsert_parts(&partner(&own, &lookups).unwrap());
        assert_eq!(kind, Kind::Client);
        assert_eq!(attributes[OWN_COMPANY], json!(true));

        let other = partner_row(9, "Wood Corner", true, json!(false), json!([]));
        let (_, attributes) = upsert_parts(&partner(&other, &lookups).unwrap());
        assert_eq!(attributes[OWN_COMPANY], Value::Null);

        let (_, attributes) = upsert_parts(&partner(&own, &Lookups::default()).unwrap());
        assert!(
            !attributes.contains_key(OWN_COMPANY),
            "unknown without employees"
        );
    }
}
