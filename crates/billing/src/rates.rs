//! Rate cards: hourly rates by person and by role, in the contract's currency.
//!
//! A contract's `rate_card` field is `{"roles": {role: rate}, "people": {employee_id: rate}}`
//! with rates as decimal strings. An entry's rate is the person's rate when the card has one,
//! else the rate of the entry's role, else the contract line's unit price. An entry with none
//! of them has no rate and is reported, never priced at zero. A rate of zero written in the
//! card is a price like any other.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use steward_domain::{Currency, Money};

use crate::issue::InputError;

/// Hourly rates of one contract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateCard {
    /// Rate per billing role, such as `Senior Consultant`.
    pub roles: BTreeMap<String, Decimal>,
    /// Rate per employee id, which beats the person's role.
    pub people: BTreeMap<String, Decimal>,
}

/// Origin of a rate: the person, the role or the contract line's unit price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateBasis {
    Person,
    Role,
    UnitPrice,
}

/// An hourly rate and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub amount: Decimal,
    pub basis: RateBasis,
}

/// No rate applies to a person's time: the card lists neither the person nor the role, and the
/// contract line has no unit price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRate {
    pub employee: String,
    pub role: Option<String>,
}

impl fmt::Display for MissingRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Some(role) => write!(
                f,
                "no rate for employee {} or role `{role}`; add one of them to the rate card, \
                 or set the contract line's unit price",
                self.employee
            ),
            None => write!(
                f,
                "no rate for employee {}, who has no billing role; add the person to the rate \
                 card, give the entry a role, or set the contract line's unit price",
                self.employee
            ),
        }
    }
}

impl std::error::Error for MissingRate {}

impl RateCard {
    /// Reads a contract's `rate_card` JSON. A missing card (`null`) is empty. Rates must be
    /// non-negative decimals no finer than the currency's minor unit, because they become
    /// unit prices on invoice lines.
    pub fn from_json(value: &Value, currency: Currency) -> Result<RateCard, InputError> {
        let mut card = RateCard::default();
        if value.is_null() {
            return Ok(card);
        }
        let Some(sections) = value.as_object() else {
            return Err(invalid(
                "expected an object such as {\"roles\": {\"Consultant\": \"120\"}, \
                 \"people\": {\"<employee id>\": \"150\"}}",
            ));
        };
        for (section, rates) in sections {
            let target = match section.as_str() {
                "roles" => &mut card.roles,
                "people" => &mut card.people,
                other => {
                    return Err(invalid(format!(
                        "unknown section `{other}`; a rate card has only `roles` and `people`"
                    )));
                }
            };
            let Some(rates) = rates.as_object() else {
                return Err(invalid(format!(
                    "`{section}` must map names to rates, such as {{\"Consultant\": \"120\"}}"
                )));
            };
            for (name, rate) in rates {
                let path = format!("{section}.{name}");
                target.insert(name.clone(), parse_rate(&path, rate, currency)?);
            }
        }
        Ok(card)
    }

    /// Finds the rate of `employee`'s time: the person's rate, else `role`'s rate, else
    /// `unit_price`.
    pub fn resolve(
        &self,
        employee: &str,
        role: Option<&str>,
        unit_price: Option<Decimal>,
    ) -> Result<Rate, MissingRate> {
        if let Some(amount) = self.people.get(employee) {
            return Ok(Rate {
                amount: *amount,
                basis: RateBasis::Person,
            });
        }
        if let Some(amount) = role.and_then(|r| self.roles.get(r)) {
            return Ok(Rate {
                amount: *amount,
                basis: RateBasis::Role,
            });
        }
        match unit_price {
            Some(amount) => Ok(Rate {
                amount,
                basis: RateBasis::UnitPrice,
            }),
            None => Err(MissingRate {
                employee: employee.to_string(),
                role: role.map(str::to_string),
            }),
        }
    }
}

fn parse_rate(path: &str, value: &Value, currency: Currency) -> Result<Decimal, InputError> {
    let amount = steward_domain::value::decimal(value)
        .map_err(|problem| invalid(format!("`{path}`: {problem}")))?;
    if amount < Decimal::ZERO {
        return Err(invalid(format!(
            "`{path}` is {amount}; rates cannot be negative"
        )));
    }
    Money::new(amount, currency).map_err(|error| invalid(format!("`{path}`: {error}")))?;
    Ok(amount)
}

fn invalid(message: impl Into<String>) -> InputError {
    InputError::new("rate card", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    fn card() -> RateCard {
        RateCard::from_json(
            &json!({
                "roles": {"Consultant": "120", "Senior": "150.50"},
                "people": {"e-ada": "175", "e-free": "0"}
            }),
            eur(),
        )
        .unwrap()
    }

    #[test]
    fn person_beats_role_beats_unit_price() {
        let card = card();
        let person = card
            .resolve("e-ada", Some("Consultant"), Some(dec!(90)))
            .unwrap();
        assert_eq!(person.amount, dec!(175));
        assert_eq!(person.basis, RateBasis::Person);

        let role = card
            .resolve("e-bob", Some("Senior"), Some(dec!(90)))
            .unwrap();
        assert_eq!(role.amount, dec!(150.50));
        assert_eq!(role.basis, RateBasis::Role);

        let fallback = card
            .resolve("e-bob", Some("Intern"), Some(dec!(90)))
            .unwrap();
        assert_eq!(fallback.amount, dec!(90));
        assert_eq!(fallback.basis, RateBasis::UnitPrice);
    }

    #[test]
    fn zero_in_the_card_is_a_rate() {
        let rate = card().resolve("e-free", None, None).unwrap();
        assert_eq!(rate.amount, dec!(0));
        assert_eq!(rate.basis, RateBasis::Person);
    }

    #[test]
    fn no_rate_is_reported() {
        let error = card().resolve("e-bob", Some("Intern"), None).unwrap_err();
        assert_eq!(error.role.as_deref(), Some("Intern"));
        assert_eq!(
            error.to_string(),
            "no rate for employee e-bob or role `Intern`; add one of them to the rate card, or \
             set the contract line's unit price"
        );
    }

    #[test]
    fn invalid_cards_are_rejected_with_the_path() {
        let cases = [
            (
                json!({"roles": {"Consultant": "abc"}}),
                "`roles.Consultant`",
            ),
            (json!({"roles": {"Consultant": "-5"}}), "cannot be negative"),
            (
                json!({"people": {"e-ada": "10.005"}}),
                "has 3 decimal places",
            ),
            (json!({"grades": {}}), "unknown section `grades`"),
            (json!(["120"]), "expected an object"),
        ];
        for (value, expected) in cases {
            let error = RateCard::from_json(&value, eur()).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{value}: `{error}` does not mention {expected}"
            );
        }
    }

    #[test]
    fn yen_rates_have_no_decimals() {
        let yen = Currency::from_code("JPY").unwrap();
        assert!(RateCard::from_json(&json!({"roles": {"Consultant": "15000"}}), yen).is_ok());
        assert!(RateCard::from_json(&json!({"roles": {"Consultant": "15000.5"}}), yen).is_err());
        assert_eq!(
            RateCard::from_json(&Value::Null, yen).unwrap(),
            RateCard::default()
        );
    }
}
