//! Taxes by the client's country and the kind of service, from a table the firm configures.
//!
//! The table lists, per ISO 3166-1 alpha-2 country, a default rate in percent, rates for
//! service categories that differ from it, and whether the country is an EU member state:
//!
//! ```json
//! {
//!   "firm_country": "IT",
//!   "countries": {
//!     "IT": {"eu": true, "default": "22", "categories": {"training": "10"}},
//!     "DE": {"eu": true, "default": "19"},
//!     "US": {"eu": false, "default": "0"}
//!   }
//! }
//! ```
//!
//! A business client in another EU member state than the firm's accounts for the VAT itself
//! (the reverse charge), so its lines carry 0 % and are marked as reverse-charged, unless the
//! firm turns the reverse charge off with [`TaxTable::with_reverse_charge`]. Every other
//! client gets its own country's rate for the line's category, or the country's default.
//! Other place-of-supply rules are the table's to express: a firm that charges its own VAT to
//! consumers abroad writes its own rate under those countries.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::input::Client;
use crate::issue::InputError;

/// The category of lines whose contract line names none.
pub const DEFAULT_CATEGORY: &str = "services";

/// The category of rebilled expenses.
pub const EXPENSE_CATEGORY: &str = "expenses";

/// Tax rates of one country.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountryTaxes {
    pub eu_member: bool,
    /// Rate in percent for categories not listed.
    pub default_rate: Decimal,
    /// Rates in percent by service category, such as `training`.
    pub categories: BTreeMap<String, Decimal>,
}

/// The tax rate of one invoice line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaxRate {
    /// Rate in percent.
    pub percent: Decimal,
    /// True when the client accounts for the VAT under the EU reverse charge.
    pub reverse_charge: bool,
}

impl TaxRate {
    /// Builds a rate that is not reverse-charged.
    pub fn standard(percent: Decimal) -> TaxRate {
        TaxRate {
            percent,
            reverse_charge: false,
        }
    }
}

/// Tax rates per country and the firm's own country.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxTable {
    firm_country: String,
    countries: BTreeMap<String, CountryTaxes>,
    /// False when the firm charges VAT to EU businesses abroad instead of applying the
    /// reverse charge.
    reverse_charge: bool,
}

/// Reason no tax rate applies to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaxError {
    /// The firm configured no tax table.
    NoTable,
    /// The client has no country, so its taxes are unknown.
    MissingCountry { client: String },
    /// The table has no entry for the client's country.
    UnknownCountry { client: String, country: String },
}

impl TaxError {
    /// Describes what is missing, naming the client and the country.
    pub fn message(&self) -> String {
        match self {
            TaxError::NoTable => {
                "no tax table is configured, and the contract line names no tax rate".to_string()
            }
            TaxError::MissingCountry { client } => {
                format!("client {client} has no country, so its tax rate is unknown")
            }
            TaxError::UnknownCountry { client, country } => {
                format!("the tax table has no rates for country `{country}` of client {client}")
            }
        }
    }

    /// Returns the change that makes a rate apply.
    pub fn fix(&self) -> String {
        match self {
            TaxError::NoTable => {
                "add `taxes` to the `billing` section of the rules folder, or set \
                                  the contract line's tax rate"
                    .to_string()
            }
            TaxError::MissingCountry { .. } => {
                "set the country of the client's billing address".to_string()
            }
            TaxError::UnknownCountry { country, .. } => format!(
                "add a `{country}` entry with its default rate to the tax table, or correct \
                 the client's country"
            ),
        }
    }
}

impl fmt::Display for TaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.message(), self.fix())
    }
}

impl std::error::Error for TaxError {}

impl TaxTable {
    /// Builds a table, rejecting a firm country missing from it, codes that are not two
    /// letters, and rates outside 0 to 100 percent. Codes are stored upper case.
    pub fn new(
        firm_country: &str,
        countries: BTreeMap<String, CountryTaxes>,
    ) -> Result<TaxTable, InputError> {
        let mut normalized = BTreeMap::new();
        for (code, taxes) in countries {
            let code = country_code(&code)?;
            check_percent(&format!("{code}.default"), taxes.default_rate)?;
            for (category, rate) in &taxes.categories {
                check_percent(&format!("{code}.categories.{category}"), *rate)?;
            }
            normalized.insert(code, taxes);
        }
        let firm_country = country_code(firm_country)?;
        if !normalized.contains_key(&firm_country) {
            return Err(invalid(format!(
                "the firm's country `{firm_country}` has no entry; add one so that the reverse \
                 charge can tell whether the firm is in the EU"
            )));
        }
        Ok(TaxTable {
            firm_country,
            countries: normalized,
            reverse_charge: true,
        })
    }

    /// Builds the table of a firm that configured no taxes: every lookup fails with
    /// [`TaxError::NoTable`], so only lines with their own tax rate can be priced.
    pub fn unconfigured() -> TaxTable {
        TaxTable {
            firm_country: String::new(),
            countries: BTreeMap::new(),
            reverse_charge: true,
        }
    }

    /// Turns the EU reverse charge on (the default) or off.
    pub fn with_reverse_charge(mut self, enabled: bool) -> TaxTable {
        self.reverse_charge = enabled;
        self
    }

    pub fn reverse_charge(&self) -> bool {
        self.reverse_charge
    }

    /// True when the table has no countries, as built by [`TaxTable::unconfigured`].
    pub fn is_unconfigured(&self) -> bool {
        self.countries.is_empty()
    }

    /// Returns the rates of the country with ISO 3166-1 alpha-2 `code`, upper case.
    pub fn country(&self, code: &str) -> Option<&CountryTaxes> {
        self.countries.get(code)
    }

    /// Returns the ISO 3166-1 alpha-2 codes of the countries in the table.
    pub fn countries(&self) -> impl Iterator<Item = &str> {
        self.countries.keys().map(String::as_str)
    }

    /// Reads the table from its JSON configuration, shown in the module documentation.
    pub fn from_json(value: &Value) -> Result<TaxTable, InputError> {
        let firm_country = value
            .get("firm_country")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("`firm_country` is missing; set it to a code such as \"IT\""))?;
        let entries = value
            .get("countries")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("`countries` is missing; map country codes to their rates"))?;
        let mut countries = BTreeMap::new();
        for (code, entry) in entries {
            countries.insert(code.clone(), parse_country(code, entry)?);
        }
        TaxTable::new(firm_country, countries)
    }

    pub fn firm_country(&self) -> &str {
        &self.firm_country
    }

    /// Looks up the tax rate of a line of `category` billed to `client`. A business in another
    /// EU member state gets 0 % under the reverse charge. Other clients get their country's
    /// rate for the category, else that country's default rate.
    pub fn rate(&self, client: &Client, category: &str) -> Result<TaxRate, TaxError> {
        if self.is_unconfigured() {
            return Err(TaxError::NoTable);
        }
        let Some(country) = client.country.as_deref().map(str::trim) else {
            return Err(TaxError::MissingCountry {
                client: client.id.clone(),
            });
        };
        let country = country.to_ascii_uppercase();
        let Some(taxes) = self.countries.get(&country) else {
            return Err(TaxError::UnknownCountry {
                client: client.id.clone(),
                country,
            });
        };
        let firm_in_eu = self.countries[&self.firm_country].eu_member;
        let abroad_in_eu = taxes.eu_member && firm_in_eu && country != self.firm_country;
        if self.reverse_charge && client.is_business && abroad_in_eu {
            return Ok(TaxRate {
                percent: Decimal::ZERO,
                reverse_charge: true,
            });
        }
        let percent = taxes
            .categories
            .get(category)
            .copied()
            .unwrap_or(taxes.default_rate);
        Ok(TaxRate::standard(percent))
    }
}

fn parse_country(code: &str, entry: &Value) -> Result<CountryTaxes, InputError> {
    let decimal = |path: String, value: &Value| {
        steward_domain::value::decimal(value)
            .map_err(|problem| invalid(format!("`{path}`: {problem}")))
    };
    let default = entry.get("default").ok_or_else(|| {
        invalid(format!(
            "`{code}.default` is missing; give the country's standard rate in percent"
        ))
    })?;
    let default_rate = decimal(format!("{code}.default"), default)?;
    let eu_member = match entry.get("eu") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(invalid(format!(
                "`{code}.eu` is {other}; write true or false"
            )));
        }
    };
    let mut categories = BTreeMap::new();
    if let Some(listed) = entry.get("categories").filter(|v| !v.is_null()) {
        let Some(listed) = listed.as_object() else {
            return Err(invalid(format!(
                "`{code}.categories` must map categories to rates, such as {{\"training\": \"10\"}}"
            )));
        };
        for (category, rate) in listed {
            categories.insert(
                category.clone(),
                decimal(format!("{code}.categories.{category}"), rate)?,
            );
        }
    }
    Ok(CountryTaxes {
        eu_member,
        default_rate,
        categories,
    })
}

fn country_code(code: &str) -> Result<String, InputError> {
    let upper = code.trim().to_ascii_uppercase();
    if upper.len() != 2 || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid(format!(
            "`{code}` is not an ISO 3166-1 alpha-2 country code such as \"DE\""
        )));
    }
    Ok(upper)
}

fn check_percent(path: &str, rate: Decimal) -> Result<(), InputError> {
    if rate < Decimal::ZERO || rate > Decimal::ONE_HUNDRED {
        return Err(invalid(format!(
            "`{path}` is {rate}; a tax rate is a percentage from 0 to 100"
        )));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> InputError {
    InputError::new("tax table", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn table() -> TaxTable {
        TaxTable::from_json(&json!({
            "firm_country": "it",
            "countries": {
                "IT": {"eu": true, "default": "22", "categories": {"training": "10"}},
                "DE": {"eu": true, "default": "19"},
                "CH": {"eu": false, "default": "8.1"},
                "US": {"eu": false, "default": "0"}
            }
        }))
        .unwrap()
    }

    fn client(country: Option<&str>, is_business: bool) -> Client {
        Client {
            id: "c1".into(),
            country: country.map(str::to_string),
            is_business,
        }
    }

    #[test]
    fn category_rate_beats_country_default() {
        let table = table();
        let italian = client(Some("IT"), true);
        assert_eq!(
            table.rate(&italian, "training").unwrap(),
            TaxRate::standard(dec!(10))
        );
        assert_eq!(
            table.rate(&italian, DEFAULT_CATEGORY).unwrap(),
            TaxRate::standard(dec!(22))
        );
    }

    #[test]
    fn eu_business_abroad_is_reverse_charged() {
        let table = table();
        let rate = table.rate(&client(Some("de"), true), "training").unwrap();
        assert_eq!(rate.percent, dec!(0));
        assert!(rate.reverse_charge);

        let consumer = table.rate(&client(Some("DE"), false), "training").unwrap();
        assert_eq!(consumer, TaxRate::standard(dec!(19)));

        let outside_eu = table.rate(&client(Some("CH"), true), "training").unwrap();
        assert_eq!(outside_eu, TaxRate::standard(dec!(8.1)));
    }

    #[test]
    fn reverse_charge_can_be_switched_off() {
        let table = table().with_reverse_charge(false);
        let rate = table.rate(&client(Some("DE"), true), "training").unwrap();
        assert_eq!(rate, TaxRate::standard(dec!(19)));
    }

    #[test]
    fn unconfigured_table_prices_nothing() {
        let error = TaxTable::unconfigured()
            .rate(&client(Some("IT"), true), DEFAULT_CATEGORY)
            .unwrap_err();
        assert_eq!(error, TaxError::NoTable);
        assert!(error.fix().contains("`billing` section"), "{}", error.fix());
    }

    #[test]
    fn unknown_country_names_the_country_and_fix() {
        let error = table()
            .rate(&client(Some("BR"), true), DEFAULT_CATEGORY)
            .unwrap_err();
        assert_eq!(
            error,
            TaxError::UnknownCountry {
                client: "c1".into(),
                country: "BR".into()
            }
        );
        let message = error.to_string();
        assert!(message.contains("country `BR` of client c1"), "{message}");
        assert!(message.contains("add a `BR` entry"), "{message}");

        let missing = table()
            .rate(&client(None, true), DEFAULT_CATEGORY)
            .unwrap_err();
        assert!(missing.to_string().contains("client c1 has no country"));
    }

    #[test]
    fn invalid_tables_are_rejected() {
        let cases = [
            (
                json!({"firm_country": "FR", "countries": {"IT": {"default": "22"}}}),
                "the firm's country `FR` has no entry",
            ),
            (
                json!({"firm_country": "IT", "countries": {"IT": {"default": "122"}}}),
                "`IT.default` is 122",
            ),
            (
                json!({"firm_country": "IT", "countries": {"Italy": {"default": "22"}}}),
                "`Italy` is not an ISO 3166-1 alpha-2",
            ),
            (
                json!({"firm_country": "IT", "countries": {"IT": {"eu": "yes", "default": "22"}}}),
                "`IT.eu` is \"yes\"",
            ),
            (
                json!({"firm_country": "IT", "countries": {"IT": {}}}),
                "`IT.default` is missing",
            ),
            (json!({"countries": {}}), "`firm_country` is missing"),
        ];
        for (value, expected) in cases {
            let error = TaxTable::from_json(&value).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "`{error}` does not mention {expected}"
            );
        }
    }
}
