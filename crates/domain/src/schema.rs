//! Record schemas: the fields of each kind, their types, and the kind's state machine.
//!
//! Schemas are data, so the API, the rule checker and the OpenAPI document all read the same
//! definitions that command validation enforces.

use crate::kinds::Kind;

/// The type of one field. Values are stored as JSON in a canonical form per type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string of at most 10,000 characters.
    Text,
    /// A whole number.
    Integer,
    /// An exact decimal, stored as a string (`"7.5"`).
    Decimal,
    /// An amount stored as a string at the minor unit of the currency held by the named field.
    Money {
        currency_field: &'static str,
    },
    /// An ISO 4217 code such as `EUR`.
    Currency,
    /// An ISO 3166-1 alpha-2 code such as `BE`.
    Country,
    /// An IANA time zone such as `Europe/Brussels`.
    Timezone,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339 in UTC: `2026-12-04T15:24:09Z`.
    DateTime,
    Bool,
    /// The id of a record of the given kind.
    Ref(Kind),
    /// A list of ids of records of the given kind.
    RefList(Kind),
    /// One of a fixed list of values.
    Enum(&'static [&'static str]),
    /// A list of strings.
    TextList,
    /// Any JSON value; used for structured settings such as rate cards.
    Json,
}

impl FieldType {
    /// A short name for messages and the OpenAPI document.
    pub fn describe(&self) -> String {
        match self {
            FieldType::Text => "text".into(),
            FieldType::Integer => "integer".into(),
            FieldType::Decimal => "decimal number".into(),
            FieldType::Money { currency_field } => {
                format!("money amount in the currency of `{currency_field}`")
            }
            FieldType::Currency => "ISO 4217 currency code".into(),
            FieldType::Country => "ISO 3166-1 alpha-2 country code".into(),
            FieldType::Timezone => "IANA time zone".into(),
            FieldType::Date => "date (YYYY-MM-DD)".into(),
            FieldType::DateTime => "RFC 3339 date and time".into(),
            FieldType::Bool => "true or false".into(),
            FieldType::Ref(kind) => format!("id of {} {}", article(kind.name()), kind.name()),
            FieldType::RefList(kind) => format!("list of {} ids", kind.name()),
            FieldType::Enum(values) => format!("one of {}", values.join(", ")),
            FieldType::TextList => "list of text".into(),
            FieldType::Json => "JSON value".into(),
        }
    }

    /// True for numeric types that rule conditions see as numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Decimal | FieldType::Money { .. }
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    pub doc: &'static str,
}

/// Declares an optional field.
pub const fn field(name: &'static str, ty: FieldType, doc: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty,
        required: false,
        doc,
    }
}

/// Declares a field that every record of the kind must have.
pub const fn required(name: &'static str, ty: FieldType, doc: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty,
        required: true,
        doc,
    }
}

/// One allowed move of the state machine.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
}

pub const fn go(from: &'static str, to: &'static str) -> Transition {
    Transition { from, to }
}

#[derive(Debug)]
pub struct KindSchema {
    pub kind: Kind,
    /// Human name for messages, such as "timesheet entry".
    pub label: &'static str,
    pub doc: &'static str,
    pub fields: &'static [FieldDef],
    /// Every state, the first being the default on create.
    pub states: &'static [&'static str],
    /// States a user may create a record in; integrations mirroring another system may use any.
    pub initial: &'static [&'static str],
    pub transitions: &'static [Transition],
    /// The field that names a record in messages.
    pub title_field: &'static str,
}

impl KindSchema {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn has_state(&self, state: &str) -> bool {
        self.states.contains(&state)
    }

    pub fn default_state(&self) -> &'static str {
        self.states[0]
    }

    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.transitions
            .iter()
            .any(|t| t.from == from && t.to == to)
    }

    /// The states reachable in one step from `from`.
    pub fn next_states(&self, from: &str) -> Vec<&'static str> {
        self.transitions
            .iter()
            .filter(|t| t.from == from)
            .map(|t| t.to)
            .collect()
    }

    /// States in which people (user actors) may no longer change the record's fields, only
    /// move it on: approved and invoiced time and expenses, released invoices, decided
    /// requests. Rules, controls and mirrors of another system may still change them.
    pub fn locked_states(&self) -> &'static [&'static str] {
        use crate::kinds::Kind;
        match self.kind {
            Kind::Timesheet | Kind::Expense => &["approved", "invoiced"],
            Kind::Invoice => &["released", "paid", "cancelled"],
            Kind::ApprovalRequest => &["approved", "rejected", "cancelled"],
            Kind::ApprovalStep => &["approved", "rejected", "skipped", "escalated"],
            _ => &[],
        }
    }

    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name).collect()
    }
}

/// `a` or `an` before a word, by its first letter.
pub fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
