//! Conversion of field values sent by clients into each type's canonical JSON form.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::id::is_valid_id;
use crate::money::{Currency, Money, MoneyError};
use crate::schema::{FieldDef, FieldType};

/// Longest text value accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Why a value does not fit its field; the caller adds the field name.
pub type ValueResult = Result<Value, String>;

/// Converts `value` to the canonical form of `def`.
///
/// `currency` is the value of the currency field that a money field names, already
/// normalized; money without a currency is rejected.
pub fn normalize(def: &FieldDef, value: &Value, currency: Option<&str>) -> ValueResult {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match def.ty {
        FieldType::Text => text(value),
        FieldType::Integer => integer(value),
        FieldType::Decimal => decimal(value).map(|d| Value::String(d.normalize().to_string())),
        FieldType::Money { currency_field } => money(value, currency, currency_field),
        FieldType::Currency => currency_code(value),
        FieldType::Country => country(value),
        FieldType::Timezone => timezone(value),
        FieldType::Date => date(value),
        FieldType::DateTime => datetime(value),
        FieldType::Bool => boolean(value),
        FieldType::Ref(kind) => reference(value, kind.name()),
        FieldType::RefList(kind) => reference_list(value, kind.name()),
        FieldType::Enum(values) => enumeration(value, values),
        FieldType::TextList => text_list(value),
        FieldType::Json => Ok(value.clone()),
    }
}

fn text(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!("expected text, got {}", type_name(value)));
    };
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(format!(
            "text is longer than {MAX_TEXT_CHARS} characters; shorten it"
        ));
    }
    Ok(Value::String(s.to_string()))
}

fn integer(value: &Value) -> ValueResult {
    match value {
        Value::Number(n) if n.is_i64() => Ok(value.clone()),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{s}` is not a whole number")),
        _ => Err(format!("expected a whole number, got {}", type_name(value))),
    }
}

/// Reads a decimal from a JSON number or string. JSON numbers go through their shortest
/// decimal form, so `7.1` stays exactly 7.1.
pub fn decimal(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => {
            return Err(format!(
                "expected a decimal number, got {}",
                type_name(value)
            ));
        }
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| {
            if looks_numeric(&text) {
                format!(
                    "`{text}` is out of range; a decimal number has at most 28 significant \
                     digits and a magnitude below {}",
                    Decimal::MAX
                )
            } else {
                format!("`{text}` is not a decimal number; write it like \"7.5\"")
            }
        })
}

/// Tells a well-formed number that `Decimal` cannot hold from text that is no number at all.
fn looks_numeric(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = digits.splitn(2, ['e', 'E']);
    let mantissa = parts.next().unwrap_or_default();
    let exponent_ok = parts.next().is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit())
    });
    let mut halves = mantissa.splitn(2, '.');
    let whole = halves.next().unwrap_or_default();
    let fraction = halves.next().unwrap_or_default();
    exponent_ok
        && !(whole.is_empty() && fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn money(value: &Value, currency: Option<&str>, currency_field: &str) -> ValueResult {
    let amount = decimal(value)?;
    let Some(code) = currency else {
        return Err(format!(
            "an amount needs a currency; set `{currency_field}` as well"
        ));
    };
    let Some(currency) = Currency::from_code(code) else {
        return Err(format!(
            "`{currency_field}` holds `{code}`, which is not a currency"
        ));
    };
    match Money::new(amount, currency) {
        Ok(money) => Ok(Value::String(money.amount.to_string())),
        Err(MoneyError::TooPrecise { minor_units, .. }) => Err(format!(
            "{amount} is finer than {currency}'s minor unit; use at most {minor_units} decimal \
             places"
        )),
        Err(error) => Err(error.to_string()),
    }
}

fn currency_code(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!(
            "expected a currency code, got {}",
            type_name(value)
        ));
    };
    Currency::from_code(s)
        .map(|c| Value::String(c.code().to_string()))
        .ok_or_else(|| format!("`{s}` is not an ISO 4217 currency code such as EUR or USD"))
}

fn country(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!("expected a country code, got {}", type_name(value)));
    };
    let code = s.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(Value::String(code))
    } else {
        Err(format!(
            "`{s}` is not an ISO 3166-1 alpha-2 country code such as BE or US"
        ))
    }
}

fn timezone(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!("expected a time zone, got {}", type_name(value)));
    };
    chrono_tz::Tz::from_str(s.trim())
        .map(|tz| Value::String(tz.name().to_string()))
        .map_err(|_| format!("`{s}` is not an IANA time zone such as Europe/Brussels"))
}

fn date(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!("expected a date, got {}", type_name(value)));
    };
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
        .map_err(|_| format!("`{s}` is not a date; write it as YYYY-MM-DD"))
}

fn datetime(value: &Value) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!(
            "expected a date and time, got {}",
            type_name(value)
        ));
    };
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| Value::String(format_instant(d.with_timezone(&Utc))))
        .map_err(|_| {
            format!("`{s}` is not an RFC 3339 date and time; write it as 2026-12-04T15:24:09Z")
        })
}

/// Writes an instant the way every datetime field stores it.
pub fn format_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn boolean(value: &Value) -> ValueResult {
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        _ => Err(format!("expected true or false, got {}", type_name(value))),
    }
}

fn reference(value: &Value, kind: &str) -> ValueResult {
    let Some(s) = value.as_str() else {
        return Err(format!(
            "expected the id of {} {kind}, got {}",
            crate::schema::article(kind),
            type_name(value)
        ));
    };
    if is_valid_id(s) {
        Ok(Value::String(s.to_string()))
    } else {
        Err(format!(
            "`{s}` is not a record id; send the 26-character id of {} {kind}",
            crate::schema::article(kind)
        ))
    }
}

fn reference_list(value: &Value, kind: &str) -> ValueResult {
    let Some(items) = value.as_array() else {
        return Err(format!(
            "expected a list of {kind} ids, got {}",
            type_name(value)
        ));
    };
    let ids = items
        .iter()
        .map(|item| reference(item, kind))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(ids))
}

fn enumeration(value: &Value, allowed: &[&str]) -> ValueResult {
    match value.as_str() {
        Some(s) if allowed.contains(&s) => Ok(value.clone()),
        Some(s) => Err(format!("`{s}` is not one of {}", allowed.join(", "))),
        None => Err(format!(
            "expected one of {}, got {}",
            allowed.join(", "),
            type_name(value)
        )),
    }
}

fn text_list(value: &Value) -> ValueResult {
    let Some(items) = value.as_array() else {
        return Err(format!("expected a list of text, got {}", type_name(value)));
    };
    let texts = items.iter().map(text).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(texts))
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::field;
    use serde_json::json;

    fn check(ty: FieldType, input: Value, currency: Option<&str>) -> ValueResult {
        normalize(&field("f", ty, ""), &input, currency)
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(
            check(FieldType::Decimal, json!(7.1), None),
            Ok(json!("7.1"))
        );
        assert_eq!(
            check(FieldType::Decimal, json!("0.30"), None),
            Ok(json!("0.3"))
        );
        assert!(check(FieldType::Decimal, json!("seven"), None).is_err());
    }

    #[test]
    fn oversized_decimal_is_out_of_range() {
        let error = check(
            FieldType::Decimal,
            json!("99999999999999999999999999999999"),
            None,
        )
        .unwrap_err();
        assert!(error.contains("is out of range"), "{error}");
        assert!(error.contains("28 significant digits"), "{error}");

        let error = check(FieldType::Decimal, json!("1e99"), None).unwrap_err();
        assert!(error.contains("is out of range"), "{error}");

        for text in ["seven", "1.2.3", "--1", "e5", "."] {
            let error = check(FieldType::Decimal, json!(text), None).unwrap_err();
            assert!(error.contains("is not a decimal number"), "{text}: {error}");
        }
    }

    #[test]
    fn money_takes_the_currency_scale() {
        let ty = FieldType::Money {
            currency_field: "currency",
        };
        assert_eq!(check(ty, json!("12.5"), Some("EUR")), Ok(json!("12.50")));
        assert_eq!(check(ty, json!(1500), Some("JPY")), Ok(json!("1500")));
        let error = check(ty, json!("10.5"), Some("JPY")).unwrap_err();
        assert!(error.contains("JPY"), "{error}");
        assert!(
            check(ty, json!("10"), None)
                .unwrap_err()
                .contains("`currency`")
        );
    }

    #[test]
    fn datetimes_are_stored_in_utc() {
        let stored = check(
            FieldType::DateTime,
            json!("2026-03-29T03:30:00+02:00"),
            None,
        );
        assert_eq!(stored, Ok(json!("2026-03-29T01:30:00Z")));
        assert!(check(FieldType::DateTime, json!("2026-03-29 03:30"), None).is_err());
    }

    #[test]
    fn codes_are_checked() {
        assert_eq!(
            check(FieldType::Currency, json!("eur"), None),
            Ok(json!("EUR"))
        );
        assert!(check(FieldType::Currency, json!("EURO"), None).is_err());
        assert_eq!(
            check(FieldType::Country, json!("be"), None),
            Ok(json!("BE"))
        );
        assert!(check(FieldType::Timezone, json!("Mars/Olympus"), None).is_err());
    }

    #[test]
    fn dates_need_iso_form() {
        assert_eq!(
            check(FieldType::Date, json!("2026-02-28"), None),
            Ok(json!("2026-02-28"))
        );
        assert!(check(FieldType::Date, json!("2026-02-30"), None).is_err());
        assert!(check(FieldType::Date, json!("28/02/2026"), None).is_err());
    }
}
