//! Client billing rules: a small JSON vocabulary checked by the readiness gate and used when
//! drafting.
//!
//! Clients and contracts both have a `billing_rules` field. A contract's rule replaces the
//! client's rule of the same name. Every key is optional:
//!
//! | key | value | effect |
//! |---|---|---|
//! | `requires_po` | `true` or `false` | the gate blocks a contract with no purchase-order number |
//! | `min_invoice_amount` | decimal, contract currency | the gate blocks a draft whose untaxed amount is lower |
//! | `max_hours_per_line` | decimal hours | the gate blocks a draft with a time line of more hours |
//! | `group_by` | `contract_line`, `project` or `employee` | how time lines are split beyond contract line and rate (default `contract_line`) |
//! | `rounding` | `per_line` or `per_document` | the draft's rounding policy (default `per_line`) |
//! | `expense_markup` | decimal percent | added to rebilled expenses (default 0) |
//!
//! Example: `{"requires_po": true, "min_invoice_amount": "500", "max_hours_per_line": "200",
//! "group_by": "project"}`. An unknown key is an error, so a misspelt rule is never ignored.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::invoice::Rounding;
use crate::issue::InputError;

const KNOWN_RULES: &str =
    "requires_po, min_invoice_amount, max_hours_per_line, group_by, rounding, expense_markup";

/// Split of time lines beyond contract line and rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One line per contract line and rate.
    #[default]
    ContractLine,
    /// One line per contract line, rate and project.
    Project,
    /// One line per contract line, rate and employee.
    Employee,
}

/// The billing rules in force for one contract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BillingRules {
    pub requires_po: bool,
    /// Minimum untaxed amount of an invoice, in the contract's currency.
    pub min_invoice_amount: Option<Decimal>,
    /// Maximum hours on one time line.
    pub max_hours_per_line: Option<Decimal>,
    pub group_by: GroupBy,
    pub rounding: Rounding,
    /// Percent added to rebilled expenses.
    pub expense_markup: Decimal,
}

impl BillingRules {
    /// Reads the client's rules and then the contract's, which replace the client's rule by
    /// rule. Either may be `None` or `null`.
    pub fn from_json(
        client: Option<&Value>,
        contract: Option<&Value>,
    ) -> Result<BillingRules, InputError> {
        BillingRules::from_json_over(BillingRules::default(), client, contract)
    }

    /// Reads the client's and the contract's rules over `defaults`, such as the firm's
    /// default rounding policy: a rule neither of them names keeps its default.
    pub fn from_json_over(
        defaults: BillingRules,
        client: Option<&Value>,
        contract: Option<&Value>,
    ) -> Result<BillingRules, InputError> {
        let mut rules = defaults;
        for (owner, value) in [("client", client), ("contract", contract)] {
            let Some(value) = value.filter(|v| !v.is_null()) else {
                continue;
            };
            let Some(entries) = value.as_object() else {
                return Err(invalid(
                    owner,
                    "expected an object such as {\"requires_po\": true}",
                ));
            };
            rules.apply(owner, entries)?;
        }
        Ok(rules)
    }

    fn apply(&mut self, owner: &str, entries: &Map<String, Value>) -> Result<(), InputError> {
        for (key, value) in entries {
            match key.as_str() {
                "requires_po" => {
                    self.requires_po = value.as_bool().ok_or_else(|| {
                        invalid(
                            owner,
                            format!("`requires_po` is {value}; write true or false"),
                        )
                    })?;
                }
                "min_invoice_amount" => {
                    self.min_invoice_amount = Some(non_negative(owner, key, value)?);
                }
                "max_hours_per_line" => {
                    self.max_hours_per_line = Some(non_negative(owner, key, value)?);
                }
                "expense_markup" => self.expense_markup = non_negative(owner, key, value)?,
                "group_by" => {
                    self.group_by = match value.as_str() {
                        Some("contract_line") => GroupBy::ContractLine,
                        Some("project") => GroupBy::Project,
                        Some("employee") => GroupBy::Employee,
                        _ => {
                            return Err(invalid(
                                owner,
                                format!(
                                    "`group_by` is {value}; write \"contract_line\", \
                                     \"project\" or \"employee\""
                                ),
                            ));
                        }
                    };
                }
                "rounding" => {
                    self.rounding = value.as_str().and_then(Rounding::parse).ok_or_else(|| {
                        invalid(
                            owner,
                            format!(
                                "`rounding` is {value}; write \"per_line\" or \"per_document\""
                            ),
                        )
                    })?;
                }
                unknown => {
                    return Err(invalid(
                        owner,
                        format!("unknown rule `{unknown}`; the known rules are {KNOWN_RULES}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn non_negative(owner: &str, key: &str, value: &Value) -> Result<Decimal, InputError> {
    let number = steward_domain::value::decimal(value)
        .map_err(|problem| invalid(owner, format!("`{key}`: {problem}")))?;
    if number < Decimal::ZERO {
        return Err(invalid(
            owner,
            format!("`{key}` is {number}; it cannot be negative"),
        ));
    }
    Ok(number)
}

fn invalid(owner: &str, message: impl Into<String>) -> InputError {
    InputError::new(format!("{owner} billing rules"), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn contract_rules_replace_client_rules() {
        let client = json!({
            "requires_po": true,
            "min_invoice_amount": "500",
            "max_hours_per_line": "200",
            "group_by": "project"
        });
        let contract = json!({"min_invoice_amount": 250, "rounding": "per_document"});
        let rules = BillingRules::from_json(Some(&client), Some(&contract)).unwrap();
        assert!(rules.requires_po);
        assert_eq!(rules.min_invoice_amount, Some(dec!(250)));
        assert_eq!(rules.max_hours_per_line, Some(dec!(200)));
        assert_eq!(rules.group_by, GroupBy::Project);
        assert_eq!(rules.rounding, Rounding::PerDocument);
        assert_eq!(rules.expense_markup, dec!(0));
    }

    #[test]
    fn firm_defaults_hold_until_a_rule_names_them() {
        let defaults = BillingRules {
            rounding: Rounding::PerDocument,
            ..BillingRules::default()
        };
        let kept = BillingRules::from_json_over(defaults.clone(), None, None).unwrap();
        assert_eq!(kept.rounding, Rounding::PerDocument);
        let contract = json!({"rounding": "per_line"});
        let named = BillingRules::from_json_over(defaults, None, Some(&contract)).unwrap();
        assert_eq!(named.rounding, Rounding::PerLine);
    }

    #[test]
    fn missing_rules_are_the_defaults() {
        let rules = BillingRules::from_json(None, Some(&Value::Null)).unwrap();
        assert_eq!(rules, BillingRules::default());
        assert_eq!(rules.rounding, Rounding::PerLine);
    }

    #[test]
    fn invalid_rules_name_the_rule_and_fix() {
        let cases = [
            (
                json!({"require_po": true}),
                "invalid client billing rules: unknown rule `require_po`; the known rules are",
            ),
            (json!({"requires_po": "yes"}), "write true or false"),
            (json!({"min_invoice_amount": "-1"}), "cannot be negative"),
            (json!({"group_by": "month"}), "`group_by` is \"month\""),
            (
                json!({"rounding": "per_invoice"}),
                "write \"per_line\" or \"per_document\"",
            ),
            (json!("strict"), "expected an object"),
        ];
        for (value, expected) in cases {
            let error = BillingRules::from_json(Some(&value), None).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "`{error}` does not mention {expected}"
            );
        }
    }
}
