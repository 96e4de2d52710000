//! Reading Odoo's JSON values: many2one pairs, `false` for empty, floats for amounts, and
//! `YYYY-MM-DD HH:MM:SS` datetimes in UTC. Every getter names the model, record and field of a
//! value it cannot read.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use steward_domain::money::{Currency, Money};
use steward_domain::value::{decimal, format_instant};

use crate::client::Row;

/// Decimal places kept of an hour count. Odoo stores hours as floats, so sums such as
/// 4.0 + 3.6 arrive as 7.6000000000000014; a millionth of an hour is 3.6 ms.
const HOUR_DECIMALS: u32 = 6;

/// Decimal places kept of a percentage derived from two amounts.
const RATE_DECIMALS: u32 = 2;

/// A record of one Odoo model, read field by field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowView<'a> {
    pub model: &'static str,
    pub row: &'a Row,
}

impl<'a> RowView<'a> {
    pub fn new(model: &'static str, row: &'a Row) -> Self {
        RowView { model, row }
    }

    pub fn id(&self) -> i64 {
        self.row
            .get("id")
            .and_then(Value::as_i64)
            .unwrap_or_default()
    }

    fn raw(&self, field: &str) -> &'a Value {
        self.row.get(field).unwrap_or(&Value::Null)
    }

    fn invalid(&self, field: &str, expected: &str) -> String {
        format!(
            "{} {}: field `{field}` holds {}, expected {expected}",
            self.model,
            self.id(),
            self.raw(field)
        )
    }

    /// Returns the Odoo `write_date`, kept as the source version.
    pub fn write_date(&self) -> Option<String> {
        self.raw("write_date").as_str().map(str::to_string)
    }

    /// Reads a char, text or selection field, where `false` means empty.
    pub fn text(&self, field: &str) -> Result<Option<String>, String> {
        match self.raw(field) {
            Value::Null | Value::Bool(false) => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(self.invalid(field, "text or false")),
        }
    }

    /// Reads a field that must contain text.
    pub fn required_text(&self, field: &str) -> Result<String, String> {
        self.text(field)?
            .ok_or_else(|| self.invalid(field, "text, because Steward requires it"))
    }

    pub fn boolean(&self, field: &str) -> Result<bool, String> {
        match self.raw(field) {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.invalid(field, "true or false")),
        }
    }

    /// Reads a many2one pair `[id, display name]`, where `false` means empty.
    pub fn many2one(&self, field: &str) -> Result<Option<(i64, String)>, String> {
        match self.raw(field) {
            Value::Null | Value::Bool(false) => Ok(None),
            Value::Array(pair) => match pair.as_slice() {
                [Value::Number(id), Value::String(name)] if id.is_i64() => {
                    Ok(Some((id.as_i64().unwrap_or_default(), name.clone())))
                }
                _ => Err(self.invalid(field, "a pair [id, name] or false")),
            },
            _ => Err(self.invalid(field, "a pair [id, name] or false")),
        }
    }

    pub fn many2one_id(&self, field: &str) -> Result<Option<i64>, String> {
        Ok(self.many2one(field)?.map(|(id, _)| id))
    }

    pub fn many2one_name(&self, field: &str) -> Result<Option<String>, String> {
        Ok(self.many2one(field)?.map(|(_, name)| name))
    }

    /// Reads a one2many or many2many list of ids.
    pub fn ids(&self, field: &str) -> Result<Vec<i64>, String> {
        match self.raw(field) {
            Value::Null | Value::Bool(false) => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| self.invalid(field, "a list of ids"))
                })
                .collect(),
            _ => Err(self.invalid(field, "a list of ids")),
        }
    }

    /// Reads a float or integer through its shortest decimal form, where `false` means empty.
    pub fn number(&self, field: &str) -> Result<Option<Decimal>, String> {
        match self.raw(field) {
            Value::Null | Value::Bool(false) => Ok(None),
            value @ Value::Number(_) => decimal(value)
                .map(Some)
                .map_err(|_| self.invalid(field, "a number")),
            _ => Err(self.invalid(field, "a number or false")),
        }
    }

    /// Reads a number that Steward needs, counting empty as zero as Odoo shows it.
    pub fn number_or_zero(&self, field: &str) -> Result<Decimal, String> {
        Ok(self.number(field)?.unwrap_or(Decimal::ZERO))
    }

    /// Reads a date field, `YYYY-MM-DD`.
    pub fn date(&self, field: &str) -> Result<Option<String>, String> {
        let Some(text) = self.text(field)? else {
            return Ok(None);
        };
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(|d| Some(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| self.invalid(field, "a date YYYY-MM-DD"))
    }

    /// Reads a datetime field in UTC and returns it as RFC 3339.
    pub fn datetime(&self, field: &str) -> Result<Option<String>, String> {
        let Some(text) = self.text(field)? else {
            return Ok(None);
        };
        parse_odoo_datetime(&text)
            .map(|instant| Some(format_instant(instant.and_utc())))
            .ok_or_else(|| self.invalid(field, "a datetime YYYY-MM-DD HH:MM:SS in UTC"))
    }

    /// Returns the UTC calendar day of a datetime field.
    pub fn datetime_day(&self, field: &str) -> Result<Option<String>, String> {
        let Some(text) = self.text(field)? else {
            return Ok(None);
        };
        parse_odoo_datetime(&text)
            .map(|instant| Some(instant.date().format("%Y-%m-%d").to_string()))
            .ok_or_else(|| self.invalid(field, "a datetime YYYY-MM-DD HH:MM:SS in UTC"))
    }

    /// Reads the currency of a `currency_id` pair, whose display name is the ISO 4217 code.
    pub fn currency(&self, field: &str) -> Result<Option<Currency>, String> {
        let Some(name) = self.many2one_name(field)? else {
            return Ok(None);
        };
        Currency::from_code(&name).map(Some).ok_or_else(|| {
            format!(
                "{} {}: field `{field}` names the currency `{name}`, which is not an ISO 4217 \
                 code; give the currency in Odoo its ISO code",
                self.model,
                self.id()
            )
        })
    }
}

/// Parses Odoo's `YYYY-MM-DD HH:MM:SS`, with or without a fraction of a second.
pub(crate) fn parse_odoo_datetime(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// Writes a decimal in the canonical JSON form of Steward's decimal fields.
pub(crate) fn decimal_value(value: Decimal) -> Value {
    Value::String(value.normalize().to_string())
}

/// Rounds an Odoo float amount to the currency's minor unit, half away from zero.
pub(crate) fn money_value(amount: Decimal, currency: Currency) -> Value {
    Value::String(Money::round(amount, currency).amount.to_string())
}

/// Removes the float noise below a millionth of an hour from an hour count.
pub(crate) fn hours(value: Decimal) -> Decimal {
    value
        .round_dp_with_strategy(HOUR_DECIMALS, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// Derives the tax rate in percent that turns `untaxed` into `untaxed + tax`, rounded to
/// 0.01 %. Returns `None` when the untaxed amount is zero, which fixes no rate.
pub(crate) fn tax_rate(untaxed: Decimal, tax: Decimal) -> Option<Decimal> {
    if untaxed.is_zero() {
        return None;
    }
    let rate = tax * Decimal::ONE_HUNDRED / untaxed;
    Some(
        rate.round_dp_with_strategy(RATE_DECIMALS, RoundingStrategy::MidpointAwayFromZero)
            .normalize(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Value) -> Row {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn floats_keep_their_shortest_form() {
        let r = row(json!({"id": 1, "a": 54.230000000000004, "b": 100.0, "c": false}));
        let view = RowView::new("sale.order.line", &r);
        assert_eq!(
            view.number("a").unwrap().unwrap().to_string(),
            "54.230000000000004"
        );
        let usd = Currency::from_code("USD").unwrap();
        assert_eq!(
            money_value(view.number("a").unwrap().unwrap(), usd),
            json!("54.23")
        );
        assert_eq!(
            money_value(view.number("b").unwrap().unwrap(), usd),
            json!("100.00")
        );
        assert_eq!(view.number("c").unwrap(), None);
    }

    #[test]
    fn hours_drop_float_noise() {
        let noisy: Decimal = "7.6000000000000014".parse().unwrap();
        assert_eq!(hours(noisy).to_string(), "7.6");
        assert_eq!(
            hours("0.1666666666666".parse().unwrap()).to_string(),
            "0.166667"
        );
    }

    #[test]
    fn datetimes_become_rfc3339_utc() {
        let r = row(json!({"id": 4, "d": "2026-12-04 15:24:09", "bad": "04/12/2026"}));
        let view = RowView::new("sale.order", &r);
        assert_eq!(view.datetime("d").unwrap().unwrap(), "2026-12-04T15:24:09Z");
        assert_eq!(view.datetime_day("d").unwrap().unwrap(), "2026-12-04");
        let error = view.datetime("bad").unwrap_err();
        assert!(error.contains("sale.order 4"), "{error}");
        assert!(error.contains("`bad`"), "{error}");
    }

    #[test]
    fn many2one_pairs_are_checked() {
        let r = row(json!({"id": 2, "p": [1, "Mitchell Admin"], "e": false, "x": [1]}));
        let view = RowView::new("hr.employee", &r);
        assert_eq!(
            view.many2one("p").unwrap(),
            Some((1, "Mitchell Admin".into()))
        );
        assert_eq!(view.many2one("e").unwrap(), None);
        assert!(view.many2one("x").is_err());
    }

    #[test]
    fn tax_rate_comes_from_amounts() {
        let rate = tax_rate("1147.5".parse().unwrap(), "172.13".parse().unwrap());
        assert_eq!(rate.unwrap().to_string(), "15");
        assert_eq!(tax_rate(Decimal::ZERO, Decimal::ONE), None);
        let rate = tax_rate("200".parse().unwrap(), "11".parse().unwrap());
        assert_eq!(rate.unwrap().to_string(), "5.5");
    }
}
