//! Exact money: a decimal amount and an ISO 4217 currency whose minor unit fixes the scale.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an alphabetic ISO 4217 code such as `EUR`; lower case is accepted.
    pub fn from_code(code: &str) -> Option<Currency> {
        iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase()).map(Currency)
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in the currency's minor unit: 2 for EUR, 0 for JPY, 3 for
    /// KWD. Currencies that ISO 4217 gives no minor unit (gold, special drawing rights) use 0.
    pub fn minor_units(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::from_code(&code).ok_or_else(|| {
            serde::de::Error::custom(format!("`{code}` is not an ISO 4217 currency code"))
        })
    }
}

/// Why an amount is not valid money in its currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{value}` is not a decimal number")]
    NotANumber { value: String },
    #[error("{amount} has {scale} decimal places but {currency} has {minor_units}")]
    TooPrecise {
        amount: Decimal,
        scale: u32,
        currency: Currency,
        minor_units: u32,
    },
}

/// An amount in one currency, always at most as precise as the currency's minor unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    /// Builds money from an exact amount, rejecting amounts finer than the minor unit.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let normalized = amount.normalize();
        let minor_units = currency.minor_units();
        if normalized.scale() > minor_units {
            return Err(MoneyError::TooPrecise {
                amount,
                scale: normalized.scale(),
                currency,
                minor_units,
            });
        }
        Ok(Money {
            amount: with_scale(normalized, minor_units),
            currency,
        })
    }

    /// Parses a decimal string such as `"1234.50"`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let decimal = Decimal::from_str(amount.trim()).map_err(|_| MoneyError::NotANumber {
            value: amount.to_string(),
        })?;
        Money::new(decimal, currency)
    }

    /// Rounds any decimal to the currency's minor unit, half away from zero.
    pub fn round(amount: Decimal, currency: Currency) -> Money {
        let minor_units = currency.minor_units();
        let rounded =
            amount.round_dp_with_strategy(minor_units, RoundingStrategy::MidpointAwayFromZero);
        Money {
            amount: with_scale(rounded, minor_units),
            currency,
        }
    }

    pub fn zero(currency: Currency) -> Money {
        Money {
            amount: with_scale(Decimal::ZERO, currency.minor_units()),
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Returns `value` written with exactly `scale` decimal places, so `12.5` EUR prints `12.50`.
fn with_scale(value: Decimal, scale: u32) -> Decimal {
    let mut scaled = value;
    scaled.rescale(scale);
    scaled
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(eur().minor_units(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_units(), 3);
    }

    #[test]
    fn money_is_written_at_the_minor_unit() {
        assert_eq!(
            Money::parse("12.5", eur()).unwrap().amount.to_string(),
            "12.50"
        );
        let yen = Currency::from_code("jpy").unwrap();
        assert_eq!(
            Money::parse("1200", yen).unwrap().amount.to_string(),
            "1200"
        );
    }

    #[test]
    fn money_rejects_sub_minor_amounts() {
        let yen = Currency::from_code("JPY").unwrap();
        let error = Money::parse("10.5", yen).unwrap_err();
        assert_eq!(error.to_string(), "10.5 has 1 decimal places but JPY has 0");
        assert!(Money::parse("1.005", eur()).is_err());
        assert!(Money::parse("1.0050", eur()).is_err());
        assert!(Money::parse("1.0100", eur()).is_ok());
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(Money::round(dec!(2.345), eur()).amount, dec!(2.35));
        assert_eq!(Money::round(dec!(-2.345), eur()).amount, dec!(-2.35));
        assert_eq!(
            Money::round(dec!(0.1) + dec!(0.2), eur()).amount,
            dec!(0.30)
        );
    }

    #[test]
    fn unknown_currency_is_rejected() {
        assert!(Currency::from_code("EURO").is_none());
        assert!(Currency::from_code("XYZ").is_none());
    }
}
