//! A stored record: its kind, id, state, typed fields and free attributes.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::kinds::Kind;
use crate::money::{Currency, Money};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub kind: Kind,
    pub state: String,
    /// Starts at 1 and grows by one with every change; used for optimistic concurrency.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Schema fields in their canonical JSON form; absent fields are not set.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
    /// Firm-specific values that rules can read; never validated against the schema.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

/// A pointer to a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordRef {
    pub kind: Kind,
    pub id: String,
}

impl RecordRef {
    pub fn new(kind: Kind, id: impl Into<String>) -> Self {
        RecordRef {
            kind,
            id: id.into(),
        }
    }
}

impl std::fmt::Display for RecordRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

impl Record {
    pub fn reference(&self) -> RecordRef {
        RecordRef::new(self.kind, self.id.clone())
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|v| !v.is_null())
    }

    pub fn text(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(Value::as_str)
    }

    /// The id stored in a reference field.
    pub fn ref_id(&self, field: &str) -> Option<&str> {
        self.text(field)
    }

    pub fn bool(&self, field: &str) -> Option<bool> {
        self.get(field).and_then(Value::as_bool)
    }

    pub fn integer(&self, field: &str) -> Option<i64> {
        self.get(field).and_then(Value::as_i64)
    }

    /// Reads a decimal or money field; both are stored as decimal strings.
    pub fn decimal(&self, field: &str) -> Option<Decimal> {
        self.text(field).and_then(|s| Decimal::from_str(s).ok())
    }

    pub fn date(&self, field: &str) -> Option<NaiveDate> {
        self.text(field)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    }

    pub fn datetime(&self, field: &str) -> Option<DateTime<Utc>> {
        self.text(field)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    }

    pub fn currency(&self, field: &str) -> Option<Currency> {
        self.text(field).and_then(Currency::from_code)
    }

    /// Reads a money field together with the currency field its schema names.
    pub fn money(&self, field: &str) -> Option<Money> {
        let crate::schema::FieldType::Money { currency_field } =
            self.kind.schema().field(field)?.ty
        else {
            return None;
        };
        let currency = self.currency(currency_field)?;
        Some(Money::round(self.decimal(field)?, currency))
    }

    /// The record's display name, from its schema's title field, or its id.
    pub fn title(&self) -> String {
        self.text(self.kind.schema().title_field)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {}", self.kind, self.id))
    }
}
