//! Expressions: compiled conditions and value expressions, the names they read, and templates.
//!
//! Expressions use the zen expression language: exact decimal arithmetic, `and`/`or`/`not`,
//! comparisons, `in`, string and date functions. It has no IO, no loops beyond the built-in
//! list functions, and no way to define functions, so evaluation cost is bounded by the size of
//! the expression and the data it reads.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;
use zen_expression::variable::Variable;
use zen_expression::vm::VM;
use zen_expression::{Expression, expression::Standard};

/// Longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 2_000;

/// The names an expression can start from.
pub const ROOTS: &[&str] = &["record", "old", "changed", "event", "now", "today"];

const KEYWORDS: &[&str] = &["and", "or", "not", "in", "true", "false", "null"];

/// A compiled expression with the paths it reads, such as `record.employee.manager`.
#[derive(Clone, Debug)]
pub struct Expr {
    pub source: String,
    compiled: Arc<Expression<Standard>>,
    pub paths: Vec<String>,
}

impl Expr {
    /// Compiles `source`, rejecting unknown root names and calls that make results depend on
    /// when or how often a rule runs.
    pub fn compile(source: &str) -> Result<Expr, String> {
        Expr::compile_with_roots(source, ROOTS)
    }

    /// Compiles `source` for a context whose names are `roots` instead of a rule's, such as
    /// `payload` for the mapping of an inbound webhook.
    pub fn compile_with_roots(source: &str, roots: &[&str]) -> Result<Expr, String> {
        let source = source.trim();
        if source.is_empty() {
            return Err("the expression is empty".into());
        }
        if source.chars().count() > MAX_EXPRESSION_CHARS {
            return Err(format!(
                "the expression is longer than {MAX_EXPRESSION_CHARS} characters"
            ));
        }
        let scan = scan(source, roots);
        if let Some(name) = scan.unknown_roots.first() {
            return Err(format!(
                "unknown name `{name}`; expressions can read {}",
                roots.join(", ")
            ));
        }
        if let Some(call) = scan.nondeterministic.first() {
            return Err(format!(
                "`{call}` gives a different value on every run, so simulations and retries could \
                 disagree; use `now` or `today` instead"
            ));
        }
        let compiled = zen_expression::compile_expression(source)
            .map_err(|e| format!("the expression does not parse: {}", describe_zen_error(&e)))?;
        Ok(Expr {
            source: source.to_string(),
            compiled: Arc::new(compiled),
            paths: scan.paths,
        })
    }

    pub fn evaluate(&self, context: &Variable, vm: &mut VM) -> Result<Variable, String> {
        self.compiled
            .evaluate_with(context.clone(), vm)
            .map_err(|e| format!("evaluation failed: {}", describe_zen_error(&e)))
    }
}

fn describe_zen_error(error: &zen_expression::IsolateError) -> String {
    let text = format!("{error:?}");
    // The library reports errors as debug strings; keep the part a rule author can act on.
    if let Some(start) = text.find("OpcodeErr { opcode: \"") {
        let rest = &text[start + "OpcodeErr { opcode: \"".len()..];
        let opcode = rest.split('"').next().unwrap_or("the operation");
        let message = rest
            .split("message: \"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .unwrap_or("");
        return format!(
            "{opcode} cannot work on these values ({message}); check the types of its operands"
        );
    }
    text.replace("ParserError { source: NodeError(\"", "")
        .replace("\") }", "")
        .replace("ParserError { source: Incomplete }", "it ends too early")
}

struct Scan {
    paths: Vec<String>,
    unknown_roots: Vec<String>,
    nondeterministic: Vec<String>,
}

/// Finds the dotted names an expression reads, skipping string literals, function names and
/// members of computed values.
fn scan(source: &str, roots: &[&str]) -> Scan {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Scan {
        paths: Vec::new(),
        unknown_roots: Vec::new(),
        nondeterministic: Vec::new(),
    };
    let mut i = 0;
    let mut previous_significant: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' || c == '`' {
            i = skip_string(&chars, i);
            previous_significant = Some(c);
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' || c == '#' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '#' | '.'))
            {
                i += 1;
            }
            let chain: String = chars[start..i].iter().collect();
            let chain = chain.trim_end_matches('.').to_string();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            let is_member = previous_significant == Some('.');
            let is_call = next == Some('(');
            record_chain(&mut out, &chain, is_member, is_call, &chars[i..], roots);
            previous_significant = chars[..i]
                .iter()
                .rev()
                .find(|c| !c.is_whitespace())
                .copied();
            continue;
        }
        if !c.is_whitespace() {
            previous_significant = Some(c);
        }
        i += 1;
    }
    out.paths.sort();
    out.paths.dedup();
    out
}

fn record_chain(
    out: &mut Scan,
    chain: &str,
    is_member: bool,
    is_call: bool,
    rest: &[char],
    roots: &[&str],
) {
    if is_member || chain.starts_with('#') || chain.starts_with('$') {
        return;
    }
    let root = chain.split('.').next().unwrap_or_default();
    if is_call {
        let empty_call = rest
            .iter()
            .skip_while(|c| **c != '(')
            .skip(1)
            .find(|c| !c.is_whitespace())
            == Some(&')');
        if (chain == "d" && empty_call) || chain == "rand" {
            out.nondeterministic.push(format!("{chain}()"));
        }
        // A call on a path (`record.name.upper()` is not zen syntax) only counts the path.
        if !chain.contains('.') {
            return;
        }
    }
    if KEYWORDS.contains(&root) {
        return;
    }
    if roots.contains(&root) {
        out.paths.push(chain.to_string());
    } else {
        out.unknown_roots.push(root.to_string());
    }
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// A value in an action: a literal, an expression (`"= …"`) or a template (`"… {{ … }} …"`).
#[derive(Clone, Debug)]
pub enum ValueExpr {
    Literal(Value),
    Expression(Expr),
    Template(Vec<TemplatePart>),
}

#[derive(Clone, Debug)]
pub enum TemplatePart {
    Text(String),
    Expression(Expr),
}

impl ValueExpr {
    pub fn parse(value: &Value) -> Result<ValueExpr, String> {
        ValueExpr::parse_with_roots(value, ROOTS)
    }

    /// Parses `value` for a context whose names are `roots`; see [`Expr::compile_with_roots`].
    pub fn parse_with_roots(value: &Value, roots: &[&str]) -> Result<ValueExpr, String> {
        let Some(text) = value.as_str() else {
            return Ok(ValueExpr::Literal(value.clone()));
        };
        if let Some(expression) = text.strip_prefix('=') {
            return Expr::compile_with_roots(expression, roots).map(ValueExpr::Expression);
        }
        if text.contains("{{") {
            return parse_template(text, roots).map(ValueExpr::Template);
        }
        Ok(ValueExpr::Literal(value.clone()))
    }

    pub fn paths(&self) -> Vec<String> {
        match self {
            ValueExpr::Literal(_) => Vec::new(),
            ValueExpr::Expression(e) => e.paths.clone(),
            ValueExpr::Template(parts) => parts
                .iter()
                .flat_map(|p| match p {
                    TemplatePart::Expression(e) => e.paths.clone(),
                    TemplatePart::Text(_) => Vec::new(),
                })
                .collect(),
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, ValueExpr::Literal(_))
    }

    pub fn resolve(&self, context: &Variable, vm: &mut VM) -> Result<Value, String> {
        match self {
            ValueExpr::Literal(value) => Ok(value.clone()),
            ValueExpr::Expression(expr) => {
                let source = &expr.source;
                expr.evaluate(context, vm)
                    .map(|v| to_json(&v))
                    .map_err(|e| format!("`{source}`: {e}"))
            }
            ValueExpr::Template(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(t) => text.push_str(t),
                        TemplatePart::Expression(expr) => {
                            let value = expr
                                .evaluate(context, vm)
                                .map_err(|e| format!("`{}`: {e}", expr.source))?;
                            text.push_str(&display(&value));
                        }
                    }
                }
                Ok(Value::String(text))
            }
        }
    }
}

fn parse_template(text: &str, roots: &[&str]) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!(
                "`{{{{` at `{}` has no closing `}}}}`",
                &rest[open..]
            ));
        };
        parts.push(TemplatePart::Expression(Expr::compile_with_roots(
            &after[..close],
            roots,
        )?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// Converts an expression result to JSON. Numbers become decimal strings so no precision is
/// lost on the way to a money or hours field.
pub fn to_json(value: &Variable) -> Value {
    match value {
        Variable::Null => Value::Null,
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Number(n) => Value::String(n.to_string()),
        Variable::String(s) => Value::String(s.to_string()),
        Variable::Array(items) => Value::Array(items.borrow().iter().map(to_json).collect()),
        Variable::Object(map) => Value::Object(
            map.borrow()
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        ),
        Variable::Dynamic(d) => d.to_value(),
    }
}

/// Text for a template: strings as they are, null as nothing, numbers in plain decimal form.
fn display(value: &Variable) -> String {
    match value {
        Variable::Null => String::new(),
        Variable::String(s) => s.to_string(),
        Variable::Number(n) => n.to_string(),
        Variable::Bool(b) => b.to_string(),
        other => to_json(other).to_string(),
    }
}

pub fn number(decimal: Decimal) -> Variable {
    Variable::Number(decimal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(source: &str) -> Vec<String> {
        Expr::compile(source).unwrap().paths
    }

    #[test]
    fn paths_cover_dotted_names() {
        assert_eq!(
            paths("record.amount > 500 and record.employee.manager == null"),
            vec!["record.amount", "record.employee.manager"]
        );
        assert_eq!(
            paths("len(record.skills) > 0 and 'record.fake' != ''"),
            vec!["record.skills"]
        );
        assert_eq!(
            paths("d(record.date).isAfter(d(today))"),
            vec!["record.date", "today"]
        );
        assert_eq!(
            paths("old.state == 'draft' and 'hours' in changed"),
            vec!["changed", "old.state"]
        );
    }

    #[test]
    fn unknown_names_are_rejected() {
        let error = Expr::compile("amount > 500").unwrap_err();
        assert!(error.contains("unknown name `amount`"), "{error}");
    }

    #[test]
    fn clock_and_random_calls_are_rejected() {
        assert!(
            Expr::compile("d() > d('2026-01-01')")
                .unwrap_err()
                .contains("`d()`")
        );
        assert!(Expr::compile("rand(10) > 5").is_err());
        assert!(Expr::compile("d(now) > d('2026-01-01')").is_ok());
    }

    #[test]
    fn syntax_errors_are_reported() {
        let error = Expr::compile("record.amount >").unwrap_err();
        assert!(
            error.starts_with("the expression does not parse"),
            "{error}"
        );
    }

    #[test]
    fn templates_interpolate() {
        let template =
            ValueExpr::parse(&json!("Review {{ record.name }} ({{ record.hours }} h)")).unwrap();
        let context: Variable = json!({"record": {"name": "Ada", "hours": 7.5}}).into();
        let mut vm = VM::new();
        assert_eq!(
            template.resolve(&context, &mut vm).unwrap(),
            json!("Review Ada (7.5 h)")
        );
    }

    #[test]
    fn other_roots_replace_the_rule_names() {
        let value = ValueExpr::parse_with_roots(&json!("= payload._id"), &["payload"]).unwrap();
        let context: Variable = json!({"payload": {"_id": 28}}).into();
        let mut vm = VM::new();
        assert_eq!(value.resolve(&context, &mut vm).unwrap(), json!("28"));
        let error = Expr::compile_with_roots("record.name", &["payload"]).unwrap_err();
        assert!(error.contains("expressions can read payload"), "{error}");
        assert!(Expr::compile("payload.x").is_err());
    }

    #[test]
    fn expressions_keep_decimals_exact() {
        let value = ValueExpr::parse(&json!("= record.a + record.b")).unwrap();
        let context: Variable = json!({"record": {"a": 0.1, "b": 0.2}}).into();
        let mut vm = VM::new();
        assert_eq!(value.resolve(&context, &mut vm).unwrap(), json!("0.3"));
    }
}
