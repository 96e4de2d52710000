//! Python's `repr()` of JSON values, which Odoo's error messages quote values with.

use serde_json::Value;

/// Writes `value` as Python 3 `repr()` would write the value `json.loads` gives for it.
pub(crate) fn repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Writes a tuple, such as a domain leaf `('name', '=', 1)`.
pub(crate) fn repr_tuple(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(repr).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Quotes with `'` as Python does, unless the text contains `'` and no `"`.
pub(crate) fn repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaf_prints_like_python() {
        let leaf = [json!("x_no_such_field"), json!("="), json!(1)];
        assert_eq!(repr_tuple(&leaf), "('x_no_such_field', '=', 1)");
        let leaf = [json!("id"), json!("in"), json!([1, false, null, 2.5])];
        assert_eq!(repr_tuple(&leaf), "('id', 'in', [1, False, None, 2.5])");
    }

    #[test]
    fn quotes_follow_python() {
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("line\nbreak"), "'line\\nbreak'");
        assert_eq!(repr_str("café"), "'café'");
    }
}
