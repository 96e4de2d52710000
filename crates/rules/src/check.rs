//! Loading and checking rule files. Every problem is reported with its file, line and column
//! and a sentence on how to fix it; a file with any error loads no rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use steward_domain::Kind;
use steward_domain::plan::is_event_name;
use steward_domain::schema::FieldType;

use crate::context::Expansion;
use crate::expr::{Expr, ValueExpr};
use crate::rule::{Action, Audience, Rule, Trigger};
use crate::spec::{ActionSpec, FieldValues, RuleFile, RuleSpec, TriggerSpec};

/// One problem in a rule file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Reads every `.yaml` and `.yml` file under `dir`, in name order, and compiles the rules.
pub fn load_dir(dir: &Path) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let files = rule_files(dir).map_err(|message| {
        vec![Diagnostic {
            file: dir.display().to_string(),
            line: 0,
            column: 0,
            message,
        }]
    })?;
    let mut sources = Vec::new();
    let mut diagnostics = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path.display().to_string(), text)),
            Err(e) => diagnostics.push(Diagnostic {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {e}"),
            }),
        }
    }
    let (rules, mut more) = compile_sources(&sources);
    diagnostics.append(&mut more);
    if diagnostics.is_empty() {
        Ok(rules)
    } else {
        Err(diagnostics)
    }
}

fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| format!("cannot read the rule folder {}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Compiles rule files given as (name, text). Returns the rules of error-free files and every
/// diagnostic; rule ids must be unique across all files.
pub fn compile_sources(sources: &[(String, String)]) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut rules = Vec::new();
    let mut diagnostics = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in sources {
        let mut checker = Checker {
            file,
            source: text,
            diagnostics: Vec::new(),
        };
        let compiled = checker.file(text);
        for rule in &compiled {
            if let Some(first) = seen.insert(rule.id.clone(), file.clone()) {
                checker.diagnostics.push(Diagnostic {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "rule id `{}` is already used in {first}; give each rule its own id",
                        rule.id
                    ),
                });
            }
        }
        if checker.diagnostics.is_empty() {
            rules.extend(compiled);
        }
        diagnostics.append(&mut checker.diagnostics);
    }
    diagnostics.sort();
    (rules, diagnostics)
}

/// Compiles one rule given as YAML or JSON text, as sent to the API.
pub fn compile_rule_text(text: &str, origin: &str) -> Result<Rule, Vec<Diagnostic>> {
    let mut checker = Checker {
        file: origin,
        source: text,
        diagnostics: Vec::new(),
    };
    let spec: Result<Spanned<RuleSpec>, _> = serde_saphyr::from_str(text);
    let rule = match spec {
        Ok(spec) => checker.rule(spec.value, origin),
        Err(error) => {
            checker.parse_error(&error);
            None
        }
    };
    match rule {
        Some(rule) if checker.diagnostics.is_empty() => Ok(rule),
        _ => Err(checker.diagnostics),
    }
}

struct Checker<'a> {
    file: &'a str,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        });
    }

    fn parse_error(&mut self, error: &serde_saphyr::Error) {
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let full = error.to_string();
        // The library renders a source snippet after the first line; keep the sentence.
        let first = full.lines().next().unwrap_or(&full);
        let message = first
            .trim_start_matches("error: ")
            .split_once(": ")
            .filter(|(prefix, _)| prefix.starts_with("line "))
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| first.to_string());
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }

    fn file(&mut self, text: &str) -> Vec<Rule> {
        let parsed: Result<RuleFile, _> = serde_saphyr::from_str(text);
        match parsed {
            Ok(file) => {
                let origin = format!("file:{}", self.file);
                file.rules
                    .into_iter()
                    .filter_map(|spec| self.rule(spec.value, &origin))
                    .collect()
            }
            Err(error) => {
                self.parse_error(&error);
                Vec::new()
            }
        }
    }

    fn rule(&mut self, mut spec: RuleSpec, origin: &str) -> Option<Rule> {
        let errors_before = self.diagnostics.len();
        let id = spec.id.value.clone();
        if id.is_empty()
            || id.len() > 100
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.error(
                &spec.id.referenced,
                format!("rule id `{id}` must be lower-case letters, digits, `-` or `_`"),
            );
        }

        let trigger = self.trigger(&spec.trigger);
        // Keep checking the rest against the record kind even when the trigger has an error.
        let kind = trigger.as_ref().and_then(Trigger::kind).or_else(|| {
            spec.trigger
                .value
                .record
                .as_ref()
                .and_then(|r| Kind::parse(&r.value))
        });
        let condition = spec
            .condition
            .as_ref()
            .and_then(|c| self.expression(&c.value, &c.referenced, kind, "condition"));
        let mut actions = Vec::new();
        for action in spec.actions.iter_mut() {
            let at = action.referenced;
            if let Some(compiled) = self.action(&mut action.value, &at, kind) {
                actions.push(compiled);
            }
        }
        if spec.actions.is_empty() {
            self.error(
                &spec.id.referenced,
                format!("rule `{id}` has no actions; add at least one"),
            );
        }
        if self.diagnostics.len() > errors_before {
            return None;
        }
        let trigger = trigger?;

        let mut paths: Vec<String> = condition
            .iter()
            .flat_map(|c: &Expr| c.paths.clone())
            .collect();
        for action in &actions {
            for value in action.values() {
                paths.extend(value.paths());
            }
        }
        let expansion = match kind {
            Some(kind) => Expansion::from_paths(kind, paths.iter()),
            None => Expansion::default(),
        };
        let definition = serde_json::to_value(&spec).unwrap_or(Value::Null);
        let hash = hex::encode(Sha256::digest(definition.to_string().as_bytes()));
        Some(Rule {
            name: spec.name.clone().unwrap_or_else(|| id.clone()),
            id,
            description: spec.description.clone(),
            enabled: spec.enabled,
            version: 0,
            trigger,
            condition,
            actions,
            allow_self_trigger: spec.allow_self_trigger,
            expansion,
            definition,
            hash,
            origin: origin.to_string(),
        })
    }

    fn kind(&mut self, name: &Spanned<String>) -> Option<Kind> {
        let kind = Kind::parse(&name.value);
        if kind.is_none() {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            self.error(
                &name.referenced,
                format!(
                    "`{}` is not a record kind; use one of {}",
                    name.value,
                    known.join(", ")
                ),
            );
        }
        kind
    }

    fn field<'f>(
        &mut self,
        kind: Kind,
        name: &'f str,
        at: &Location,
    ) -> Option<&'static steward_domain::FieldDef> {
        let def = kind.schema().field(name);
        if def.is_none() {
            self.error(
                at,
                format!(
                    "`{name}` is not a field of {}; known fields are {}",
                    kind.name(),
                    kind.schema().field_names().join(", ")
                ),
            );
        }
        def
    }

    fn state(&mut self, kind: Kind, state: &Spanned<String>) -> bool {
        let known = kind.schema().has_state(&state.value);
        if !known {
            self.error(
                &state.referenced,
                format!(
                    "`{}` is not a state of {}; states are {}",
                    state.value,
                    kind.name(),
                    kind.schema().states.join(", ")
                ),
            );
        }
        known
    }

    fn trigger(&mut self, spec: &Spanned<TriggerSpec>) -> Option<Trigger> {
        let t = &spec.value;
        let on = t.on.value.as_str();
        if on == "event" {
            let Some(event) = &t.event else {
                self.error(&t.on.referenced, "an `event` trigger needs `event: <name>`");
                return None;
            };
            if !is_event_name(&event.value) {
                self.error(
                    &event.referenced,
                    format!(
                        "`{}` is not an event name; use dotted lower-case words",
                        event.value
                    ),
                );
                return None;
            }
            return Some(Trigger::Business {
                name: event.value.clone(),
            });
        }
        if !["create", "update", "state", "value"].contains(&on) {
            self.error(
                &t.on.referenced,
                format!("`{on}` is not a trigger; use create, update, state, value or event"),
            );
            return None;
        }
        let Some(record) = &t.record else {
            self.error(
                &t.on.referenced,
                format!("a `{on}` trigger needs `record: <kind>`"),
            );
            return None;
        };
        let kind = self.kind(record)?;
        match on {
            "create" => Some(Trigger::Created { kind }),
            "update" => {
                let mut fields = Vec::new();
                for f in &t.fields {
                    let known =
                        f.value == "state" || self.field(kind, &f.value, &f.referenced).is_some();
                    if known {
                        fields.push(f.value.clone());
                    }
                }
                Some(Trigger::Updated { kind, fields })
            }
            "state" => {
                let Some(state) = &t.state else {
                    self.error(&t.on.referenced, "a `state` trigger needs `state: <state>`");
                    return None;
                };
                self.state(kind, state).then(|| Trigger::EnteredState {
                    kind,
                    state: state.value.clone(),
                })
            }
            _ => {
                let (Some(field), Some(value)) = (&t.field, &t.value) else {
                    self.error(
                        &t.on.referenced,
                        "a `value` trigger needs `field:` and `value:`",
                    );
                    return None;
                };
                let def = self.field(kind, &field.value, &field.referenced)?;
                let value = self.literal(def, value, None)?;
                Some(Trigger::FieldValue {
                    kind,
                    field: field.value.clone(),
                    value,
                })
            }
        }
    }

    /// Compiles an expression and checks the record fields it names.
    fn expression(
        &mut self,
        source: &str,
        at: &Location,
        kind: Option<Kind>,
        what: &str,
    ) -> Option<Expr> {
        match Expr::compile(source) {
            Ok(expr) => {
                self.check_paths(&expr.paths, at, kind);
                Some(expr)
            }
            Err(message) => {
                self.error(at, format!("{what}: {message}"));
                None
            }
        }
    }

    fn check_paths(&mut self, paths: &[String], at: &Location, kind: Option<Kind>) {
        const RECORD_PROPERTIES: &[&str] =
            &["id", "kind", "state", "version", "created_at", "updated_at"];
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            if !matches!(segments[0], "record" | "old") {
                continue;
            }
            let Some(mut current) = kind else {
                self.error(
                    at,
                    format!("`{path}`: an event trigger has no record; read `event.data` instead"),
                );
                continue;
            };
            for (index, segment) in segments.iter().enumerate().skip(1) {
                if *segment == "attributes" || RECORD_PROPERTIES.contains(segment) {
                    break;
                }
                let Some(def) = current.schema().field(segment) else {
                    self.error(
                        at,
                        format!(
                            "`{path}`: `{segment}` is not a field of {}; known fields are {}, and \
                             firm-specific values are under `attributes`",
                            current.name(),
                            current.schema().field_names().join(", ")
                        ),
                    );
                    break;
                };
                match def.ty {
                    FieldType::Ref(target) if index + 1 < segments.len() => current = target,
                    _ if index + 1 < segments.len() => {
                        self.error(
                            at,
                            format!(
                                "`{path}`: `{segment}` is a {}, which has no fields",
                                def.ty.describe()
                            ),
                        );
                        break;
                    }
                    _ => {}
                }
            }
        }
    }

    fn action(
        &mut self,
        spec: &mut ActionSpec,
        at: &Location,
        kind: Option<Kind>,
    ) -> Option<Action> {
        match spec {
            ActionSpec::Update { fields, state } => {
                let Some(kind) = kind else {
                    self.error(at, "`update` changes the triggering record, and an event trigger has none; use `create`");
                    return None;
                };
                let fields = self.field_values(kind, fields, kind, false)?;
                let state = match state {
                    Some(s) => Some(self.state(kind, s).then(|| s.value.clone())?),
                    None => None,
                };
                if fields.is_empty() && state.is_none() {
                    self.error(at, "`update` needs `fields` or `state`");
                    return None;
                }
                Some(Action::Update { fields, state })
            }
            ActionSpec::Create {
                record,
                fields,
                state,
            } => {
                let target = self.kind(record)?;
                let values = self.field_values(target, fields, kind.unwrap_or(target), true)?;
                let state = match state {
                    Some(s) => Some(self.state(target, s).then(|| s.value.clone())?),
                    None => None,
                };
                Some(Action::Create {
                    kind: target,
                    fields: values,
                    state,
                })
            }
            ActionSpec::Activity {
                title,
                assignee,
                role,
                due_in_days,
                note,
            } => {
                let title = self.value_text(&title.value, &title.referenced, kind)?;
                let audience =
                    self.audience(assignee.as_ref(), role.as_ref(), at, kind, "assignee")?;
                let note = match note {
                    Some(n) => Some(self.value_text(&n.value, &n.referenced, kind)?),
                    None => None,
                };
                if let Some(days) = due_in_days
                    .as_ref()
                    .filter(|d| d.value < 0 || d.value > 3650)
                {
                    self.error(
                        &days.referenced,
                        format!("due_in_days {} is not between 0 and 3650", days.value),
                    );
                    return None;
                }
                Some(Action::Activity {
                    title,
                    audience,
                    due_in_days: due_in_days.as_ref().map(|d| d.value),
                    note,
                })
            }
            ActionSpec::Notify {
                message,
                recipient,
                role,
            } => {
                let message = self.value_text(&message.value, &message.referenced, kind)?;
                let audience =
                    self.audience(recipient.as_ref(), role.as_ref(), at, kind, "recipient")?;
                Some(Action::Notify { message, audience })
            }
            ActionSpec::Emit { event, data } => {
                if !is_event_name(&event.value)
                    || event.value.ends_with(".created")
                    || event.value.ends_with(".updated")
                {
                    self.error(
                        &event.referenced,
                        format!("`{}` cannot be emitted; use dotted lower-case words not ending in .created or .updated", event.value),
                    );
                    return None;
                }
                let mut values = Vec::new();
                for (name, value) in data.iter() {
                    values.push((
                        name.clone(),
                        self.value(&value.value, &value.referenced, kind)?,
                    ));
                }
                Some(Action::Emit {
                    name: event.value.clone(),
                    data: values,
                })
            }
        }
    }

    fn audience(
        &mut self,
        person: Option<&Spanned<Value>>,
        role: Option<&Spanned<String>>,
        at: &Location,
        kind: Option<Kind>,
        person_field: &str,
    ) -> Option<Audience> {
        if person.is_none() && role.is_none() {
            self.error(
                at,
                format!("name an `{person_field}` (an employee id expression) or a `role`"),
            );
            return None;
        }
        let person = match person {
            Some(p) => Some(self.value(&p.value, &p.referenced, kind)?),
            None => None,
        };
        Some(Audience {
            person,
            role: role.map(|r| r.value.clone()),
        })
    }

    fn value(&mut self, value: &Value, at: &Location, kind: Option<Kind>) -> Option<ValueExpr> {
        match ValueExpr::parse(value) {
            Ok(parsed) => {
                self.check_paths(&parsed.paths(), at, kind);
                Some(parsed)
            }
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    fn value_text(&mut self, text: &str, at: &Location, kind: Option<Kind>) -> Option<ValueExpr> {
        self.value(&Value::String(text.to_string()), at, kind)
    }

    /// Checks the fields of an update or create. Literal values are checked against the
    /// schema now; expressions are checked for the fields they read.
    fn field_values(
        &mut self,
        target: Kind,
        fields: &mut FieldValues,
        context_kind: Kind,
        creating: bool,
    ) -> Option<Vec<(String, ValueExpr)>> {
        let errors_before = self.diagnostics.len();
        let mut compiled = Vec::new();
        let currency = fields
            .get("currency")
            .and_then(|v| v.value.as_str())
            .map(str::to_string);
        for (name, value) in fields.iter_mut() {
            let Some(def) = self.field(target, name, &value.referenced) else {
                continue;
            };
            let parsed = match self.value(&value.value, &value.referenced, Some(context_kind)) {
                Some(p) => p,
                None => continue,
            };
            if parsed.is_literal() {
                if let Some(fixed) = self.literal(def, value, currency.as_deref()) {
                    value.value = fixed.clone();
                    compiled.push((name.clone(), ValueExpr::Literal(fixed)));
                }
            } else {
                compiled.push((name.clone(), parsed));
            }
        }
        if creating {
            for def in target.schema().fields.iter().filter(|f| f.required) {
                if !fields.contains_key(def.name) {
                    let at = fields
                        .values()
                        .next()
                        .map(|v| v.referenced)
                        .unwrap_or(Location::UNKNOWN);
                    self.error(
                        &at,
                        format!(
                            "creating a {} needs `{}` ({})",
                            target.name(),
                            def.name,
                            def.ty.describe()
                        ),
                    );
                }
            }
        }
        (self.diagnostics.len() == errors_before).then_some(compiled)
    }

    /// Checks a literal against its field. YAML reads unquoted `NO`, `yes` or `1.10` as a
    /// boolean or a number; for text fields the scalar is taken as written.
    fn literal(
        &mut self,
        def: &steward_domain::FieldDef,
        value: &Spanned<Value>,
        currency: Option<&str>,
    ) -> Option<Value> {
        let mut literal = value.value.clone();
        let textual = matches!(
            def.ty,
            FieldType::Text
                | FieldType::Enum(_)
                | FieldType::Country
                | FieldType::Currency
                | FieldType::Timezone
        );
        if textual && matches!(literal, Value::Bool(_) | Value::Number(_)) {
            literal = Value::String(
                self.raw_scalar(&value.referenced)
                    .unwrap_or_else(|| literal.to_string()),
            );
        }
        match steward_domain::value::normalize(def, &literal, currency) {
            Ok(normalized) => Some(normalized),
            Err(message) => {
                self.error(&value.referenced, format!("`{}`: {message}", def.name));
                None
            }
        }
    }

    fn raw_scalar(&self, at: &Location) -> Option<String> {
        let span = at.span();
        let start = span.byte_offset()? as usize;
        let end = start + span.byte_len()? as usize;
        self.source
            .get(start..end)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }
}
