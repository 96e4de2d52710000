//! Odoo search domains over captured rows: parsing the prefix notation, checking field names,
//! and matching rows the way Odoo's SQL would for the operators a connector uses.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::dataset::Model;

/// The reason a domain or an order cannot be applied.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DomainError {
    /// A leaf names a field the model does not have; Odoo raises `ValueError`.
    UnknownField { field: String, leaf: Vec<Value> },
    /// The domain is not a valid prefix-notation list.
    Invalid(String),
    /// Valid for Odoo, but the replay server has no data to evaluate it.
    Unsupported(String),
}

/// A parsed domain term.
#[derive(Clone, Debug)]
enum Node {
    /// A term equal to one of the model's captured base-domain terms, which every captured row
    /// matches.
    All,
    Constant(bool),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Leaf(Leaf),
}

#[derive(Clone, Debug)]
struct Leaf {
    field: String,
    operator: String,
    value: Value,
    field_type: Option<String>,
}

/// A compiled domain: the implicit AND of its top-level terms.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    terms: Vec<Node>,
}

const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<=",
    "<",
    ">",
    ">=",
    "=?",
    "=like",
    "=ilike",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "in",
    "not in",
    "child_of",
    "parent_of",
    "any",
    "not any",
];

/// Splits a domain into its top-level terms, each as the tokens that spell it.
fn split_terms(tokens: &[Value]) -> Result<Vec<&[Value]>, DomainError> {
    let mut terms = Vec::new();
    let mut position = 0;
    while position < tokens.len() {
        let start = position;
        skip_term(tokens, &mut position)?;
        terms.push(&tokens[start..position]);
    }
    Ok(terms)
}

fn skip_term(tokens: &[Value], position: &mut usize) -> Result<(), DomainError> {
    let token = tokens.get(*position).ok_or_else(|| {
        DomainError::Invalid("the domain ends before an operator has all its operands".into())
    })?;
    *position += 1;
    match token.as_str() {
        Some("&") | Some("|") => {
            skip_term(tokens, position)?;
            skip_term(tokens, position)
        }
        Some("!") => skip_term(tokens, position),
        Some(other) => Err(DomainError::Invalid(format!(
            "`{other}` is not a domain operator; use &, | or !"
        ))),
        None if token.is_array() => Ok(()),
        None => Err(DomainError::Invalid(format!(
            "{token} is neither an operator nor a leaf"
        ))),
    }
}

impl Filter {
    /// Parses `domain` for `model`, checking every field name.
    pub fn compile(model: &Model, domain: &[Value]) -> Result<Filter, DomainError> {
        let base = split_terms(&model.base_domain)?;
        let mut terms = Vec::new();
        for term in split_terms(domain)? {
            if base.contains(&term) {
                terms.push(Node::All);
                continue;
            }
            let mut position = 0;
            terms.push(parse_node(model, term, &mut position)?);
        }
        Ok(Filter { terms })
    }

    pub fn matches(&self, row: &Map<String, Value>) -> Result<bool, DomainError> {
        for term in &self.terms {
            if !evaluate(term, row)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn parse_node(model: &Model, tokens: &[Value], position: &mut usize) -> Result<Node, DomainError> {
    let token = &tokens[*position];
    *position += 1;
    match token.as_str() {
        Some("&") => {
            let left = parse_node(model, tokens, position)?;
            let right = parse_node(model, tokens, position)?;
            Ok(Node::And(Box::new(left), Box::new(right)))
        }
        Some("|") => {
            let left = parse_node(model, tokens, position)?;
            let right = parse_node(model, tokens, position)?;
            Ok(Node::Or(Box::new(left), Box::new(right)))
        }
        Some("!") => Ok(Node::Not(Box::new(parse_node(model, tokens, position)?))),
        _ => parse_leaf(model, token),
    }
}

fn parse_leaf(model: &Model, token: &Value) -> Result<Node, DomainError> {
    let items = token.as_array().cloned().unwrap_or_default();
    let [field, operator, value] = items.as_slice() else {
        return Err(DomainError::Invalid(format!(
            "{token} is not a leaf; write it as [field, operator, value]"
        )));
    };
    // Odoo's constant leaves (1, '=', 1) and (0, '=', 1).
    if let (Some(left), Some("="), Some(1)) = (field.as_i64(), operator.as_str(), value.as_i64()) {
        return Ok(Node::Constant(left == 1));
    }
    let Some(operator) = operator.as_str().filter(|op| OPERATORS.contains(op)) else {
        return Err(DomainError::Invalid(format!(
            "{operator} is not a domain operator; use one of {}",
            OPERATORS.join(", ")
        )));
    };
    let Some(path) = field.as_str() else {
        return Err(DomainError::Invalid(format!(
            "{field} is not a field name in the leaf {token}"
        )));
    };
    let first = path.split('.').next().unwrap_or(path);
    if !model.has_field(first) {
        return Err(DomainError::UnknownField {
            field: first.to_string(),
            leaf: items.clone(),
        });
    }
    if path.contains('.') {
        return Err(DomainError::Unsupported(format!(
            "the replay server cannot follow the path `{path}`; it filters on the model's own \
             fields only"
        )));
    }
    if matches!(operator, "child_of" | "parent_of" | "any" | "not any") {
        return Err(DomainError::Unsupported(format!(
            "the replay server does not evaluate the operator `{operator}`"
        )));
    }
    Ok(Node::Leaf(Leaf {
        field: path.to_string(),
        operator: operator.to_string(),
        value: value.clone(),
        field_type: model.field_type(path).map(str::to_string),
    }))
}

fn evaluate(node: &Node, row: &Map<String, Value>) -> Result<bool, DomainError> {
    Ok(match node {
        Node::All => true,
        Node::Constant(value) => *value,
        Node::And(left, right) => evaluate(left, row)? && evaluate(right, row)?,
        Node::Or(left, right) => evaluate(left, row)? || evaluate(right, row)?,
        Node::Not(inner) => !evaluate(inner, row)?,
        Node::Leaf(leaf) => leaf_matches(leaf, row)?,
    })
}

fn is_empty(value: &Value) -> bool {
    matches!(value, Value::Null | Value::Bool(false))
}

fn leaf_matches(leaf: &Leaf, row: &Map<String, Value>) -> Result<bool, DomainError> {
    let Some(stored) = row.get(&leaf.field) else {
        return Err(DomainError::Unsupported(format!(
            "the captured rows hold no values of `{}`",
            leaf.field
        )));
    };
    match leaf.field_type.as_deref() {
        Some("one2many") | Some("many2many") => x2many_matches(leaf, stored),
        Some("many2one") => {
            let (id, name) = match stored.as_array().map(Vec::as_slice) {
                Some([id, name]) => (id.clone(), name.clone()),
                _ => (Value::Null, Value::Null),
            };
            let subject = if leaf.value.is_string() && leaf.operator.contains("like") {
                name
            } else {
                id
            };
            Ok(scalar_matches(&leaf.operator, &subject, &leaf.value, false))
        }
        Some("boolean") => Ok(scalar_matches(&leaf.operator, stored, &leaf.value, true)),
        _ => {
            let subject = if is_empty(stored) {
                Value::Null
            } else {
                stored.clone()
            };
            Ok(scalar_matches(&leaf.operator, &subject, &leaf.value, false))
        }
    }
}

fn x2many_matches(leaf: &Leaf, stored: &Value) -> Result<bool, DomainError> {
    let ids: Vec<&Value> = stored
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let contains = |wanted: &Value| ids.iter().any(|id| values_equal(id, wanted));
    let wanted: Vec<Value> = match &leaf.value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let any_wanted = wanted.iter().any(|w| {
        if is_empty(w) {
            ids.is_empty()
        } else {
            contains(w)
        }
    });
    match leaf.operator.as_str() {
        "=" | "in" => Ok(any_wanted),
        "!=" | "not in" => Ok(!any_wanted),
        other => Err(DomainError::Unsupported(format!(
            "the replay server does not apply `{other}` to the list field `{}`",
            leaf.field
        ))),
    }
}

/// Applies an operator to one stored value. `false_is_value` is set for boolean fields, where
/// false is a value rather than an empty field.
fn scalar_matches(operator: &str, stored: &Value, wanted: &Value, false_is_value: bool) -> bool {
    let equal = |wanted: &Value| {
        if !false_is_value && is_empty(wanted) {
            stored.is_null()
        } else {
            values_equal(stored, wanted)
        }
    };
    match operator {
        "=" => equal(wanted),
        "!=" => !equal(wanted),
        "=?" => is_empty(wanted) || equal(wanted),
        "in" | "not in" => {
            let found = wanted
                .as_array()
                .map(|items| items.iter().any(equal))
                .unwrap_or_else(|| equal(wanted));
            found == (operator == "in")
        }
        "<" | "<=" | ">" | ">=" => match compare(stored, wanted) {
            Some(order) => match operator {
                "<" => order == Ordering::Less,
                "<=" => order != Ordering::Greater,
                ">" => order == Ordering::Greater,
                _ => order != Ordering::Less,
            },
            None => false,
        },
        _ => like_matches(operator, stored, wanted),
    }
}

fn like_matches(operator: &str, stored: &Value, wanted: &Value) -> bool {
    let (Some(text), Some(pattern)) = (stored.as_str(), wanted.as_str()) else {
        return operator.starts_with("not");
    };
    let insensitive = operator.contains("ilike");
    let pattern = if operator.starts_with('=') {
        pattern.to_string()
    } else {
        format!("%{pattern}%")
    };
    let (text, pattern) = if insensitive {
        (text.to_lowercase(), pattern.to_lowercase())
    } else {
        (text.to_string(), pattern)
    };
    let found = sql_like(
        &text.chars().collect::<Vec<_>>(),
        &pattern.chars().collect::<Vec<_>>(),
    );
    found != operator.starts_with("not")
}

/// SQL LIKE: `%` matches any run of characters, `_` any one character.
fn sql_like(text: &[char], pattern: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|skip| sql_like(&text[skip..], rest)),
        Some(('_', rest)) => !text.is_empty() && sql_like(&text[1..], rest),
        Some((c, rest)) => text.first() == Some(c) && sql_like(&text[1..], rest),
    }
}

pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Orders two stored values of the same JSON type; other pairs do not compare.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One key of an `order` clause such as `"id asc, name desc"`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OrderKey {
    pub field: String,
    pub descending: bool,
}

/// Parses an `order` clause; an unknown field is returned as the error.
pub(crate) fn parse_order(model: &Model, order: &str) -> Result<Vec<OrderKey>, String> {
    let mut keys = Vec::new();
    for part in order.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default().to_string();
        let descending = matches!(
            words.next().map(str::to_ascii_lowercase).as_deref(),
            Some("desc")
        );
        if !model.has_field(&field) {
            return Err(field);
        }
        keys.push(OrderKey { field, descending });
    }
    Ok(keys)
}

fn sort_value(row: &Map<String, Value>, field: &str) -> Value {
    match row.get(field) {
        Some(Value::Array(pair)) if pair.len() == 2 && pair[0].is_i64() => pair[0].clone(),
        Some(Value::Bool(false)) => Value::Null,
        Some(value) => value.clone(),
        None => Value::Null,
    }
}

/// Sorts rows by `keys`, then by id. Empty values sort last ascending and first descending,
/// as in PostgreSQL.
pub(crate) fn sort_rows(rows: &mut [&Map<String, Value>], keys: &[OrderKey]) {
    rows.sort_by(|a, b| {
        for key in keys {
            let (x, y) = (sort_value(a, &key.field), sort_value(b, &key.field));
            let order = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare(&x, &y).unwrap_or(Ordering::Equal),
            };
            let order = if key.descending {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        let id = |row: &Map<String, Value>| row.get("id").and_then(Value::as_i64);
        id(a).cmp(&id(b))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn model() -> Model {
        let fields = json!({
            "id": {"type": "integer"},
            "name": {"type": "char"},
            "active": {"type": "boolean"},
            "parent_id": {"type": "many2one"},
            "user_ids": {"type": "many2many"},
            "write_date": {"type": "datetime"},
            "secret_ids": {"type": "one2many"},
        });
        let mut rows = BTreeMap::new();
        for (id, name, parent, users, date) in [
            (1, "Alpha", json!(false), json!([]), "2026-12-04 15:23:05"),
            (
                2,
                "beta",
                json!([1, "Alpha"]),
                json!([2, 6]),
                "2026-12-04 15:24:14",
            ),
            (
                3,
                "Gamma",
                json!([1, "Alpha"]),
                json!([6]),
                "2026-12-04 15:24:14",
            ),
        ] {
            let row = json!({"id": id, "name": name, "active": true, "parent_id": parent,
                "user_ids": users, "write_date": date});
            rows.insert(id, row.as_object().unwrap().clone());
        }
        Model {
            rows,
            fields: fields.as_object().unwrap().clone(),
            base_domain: vec![json!(["secret_ids", "!=", false])],
            count_with_archived: None,
        }
    }

    fn ids(domain: Value) -> Result<Vec<i64>, DomainError> {
        let model = model();
        let filter = Filter::compile(&model, domain.as_array().unwrap())?;
        let mut out = Vec::new();
        for (id, row) in &model.rows {
            if filter.matches(row)? {
                out.push(*id);
            }
        }
        Ok(out)
    }

    #[test]
    fn keyset_and_write_date_leaves() {
        assert_eq!(ids(json!([["id", ">", 1]])), Ok(vec![2, 3]));
        assert_eq!(
            ids(json!([["write_date", ">=", "2026-12-04 15:24:14"]])),
            Ok(vec![2, 3])
        );
        assert_eq!(
            ids(json!([["write_date", ">", "2026-12-04 15:24:14"]])),
            Ok(vec![])
        );
    }

    #[test]
    fn base_domain_terms_match_every_row() {
        assert_eq!(
            ids(json!([["secret_ids", "!=", false], ["id", ">", 2]])),
            Ok(vec![3])
        );
    }

    #[test]
    fn prefix_operators_combine_terms() {
        assert_eq!(
            ids(json!(["|", ["id", "=", 1], ["name", "ilike", "AMM"]])),
            Ok(vec![1, 3])
        );
        assert_eq!(ids(json!(["!", ["parent_id", "=", false]])), Ok(vec![2, 3]));
        assert_eq!(ids(json!([["user_ids", "in", [2]]])), Ok(vec![2]));
        assert_eq!(ids(json!([["user_ids", "=", false]])), Ok(vec![1]));
        assert_eq!(ids(json!([["parent_id", "in", [1]]])), Ok(vec![2, 3]));
        assert_eq!(ids(json!([["active", "=", false]])), Ok(vec![]));
    }

    #[test]
    fn unknown_field_names_the_field() {
        let error = ids(json!([["x_no_such_field", "=", 1]])).unwrap_err();
        assert_eq!(
            error,
            DomainError::UnknownField {
                field: "x_no_such_field".into(),
                leaf: vec![json!("x_no_such_field"), json!("="), json!(1)],
            }
        );
    }

    #[test]
    fn malformed_domains_are_invalid() {
        assert!(matches!(
            ids(json!(["|", ["id", "=", 1]])),
            Err(DomainError::Invalid(_))
        ));
        assert!(matches!(
            ids(json!([["id", "~", 1]])),
            Err(DomainError::Invalid(_))
        ));
        assert!(matches!(
            ids(json!([["parent_id.name", "=", "x"]])),
            Err(DomainError::Unsupported(_))
        ));
    }

    #[test]
    fn order_sorts_and_checks_fields() {
        let model = model();
        let keys = parse_order(&model, "name desc").unwrap();
        let mut rows: Vec<_> = model.rows.values().collect();
        sort_rows(&mut rows, &keys);
        let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["beta", "Gamma", "Alpha"]);
        assert_eq!(parse_order(&model, "nope asc"), Err("nope".to_string()));
    }
}
