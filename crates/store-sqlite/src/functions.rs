//! SQL functions Steward adds to every connection.

use std::str::FromStr;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rust_decimal::Decimal;
use steward_store::StoreError;

use crate::sql_error;

/// `decimal_sum(x)`: the exact sum of decimal strings, as a string. SQLite's own `sum` works
/// in floating point, which money and hours must never go through. Null values are skipped.
struct DecimalSum;

impl Aggregate<Decimal, String> for DecimalSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Decimal> {
        Ok(Decimal::ZERO)
    }

    fn step(&self, ctx: &mut Context<'_>, total: &mut Decimal) -> rusqlite::Result<()> {
        let value: Option<String> = match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Null => None,
            rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
            other => {
                return Err(rusqlite::Error::UserFunctionError(
                    format!(
                        "decimal_sum takes decimal text, not {:?}",
                        other.data_type()
                    )
                    .into(),
                ));
            }
        };
        if let Some(text) = value {
            let decimal = Decimal::from_str(&text).map_err(|e| {
                rusqlite::Error::UserFunctionError(format!("`{text}` is not a decimal: {e}").into())
            })?;
            *total = total.checked_add(decimal).ok_or_else(|| {
                rusqlite::Error::UserFunctionError("decimal_sum overflowed".into())
            })?;
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, total: Option<Decimal>) -> rusqlite::Result<String> {
        Ok(total.unwrap_or_default().to_string())
    }
}

pub fn register(conn: &Connection) -> Result<(), StoreError> {
    conn.create_aggregate_function(
        "decimal_sum",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        DecimalSum,
    )
    .map_err(sql_error)
}
