//! Loading and checking rule files. Every problem is reported with its file, line and column
//! and a sentence on how to fix it; a file with any error loads no rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};
use steward_domain::Kind;
use steward_domain::plan::is_event_name;
use steward_domain::schema::FieldType;

use std::str::FromStr;

use crate::context::Expansion;
use crate::duration::{Offset, Unit, parse_offset};
use crate::expr::{Expr, ValueExpr};
use crate::rule::{Action, Audience, Rule, Trigger};
use crate::spec::{ActionSpec, FieldValues, RuleFile, RuleSpec, TriggerSpec};
use crate::time::{CalendarSource, CatchUp, Overlap, Schedule, TimeTrigger};

/// One problem in a rule file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic at a place in a YAML file.
    pub fn at(file: &str, at: &Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_string(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        }
    }

    /// Turns a YAML parse error into a diagnostic at its place, line 0 when it has none.
    pub fn from_parse_error(file: &str, error: &serde_saphyr::Error) -> Diagnostic {
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
        Diagnostic {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
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
    let sources = read_sources(dir)?;
    let (rules, diagnostics) = compile_sources(&sources);
    if diagnostics.is_empty() {
        Ok(rules)
    } else {
        Err(diagnostics)
    }
}

/// Reads every `.yaml` and `.yml` file under `dir`, in name order, as (path, text).
pub fn read_sources(dir: &Path) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
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
    if diagnostics.is_empty() {
        Ok(sources)
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
    compile_sources_with_roles(sources, None)
}

/// Reads every `.yaml` and `.yml` file under `dir` and compiles the rules, as [`load_dir`]
/// does, and also rejects an `activity` or `notify` role missing from `known_roles`.
pub fn load_dir_with_roles(
    dir: &Path,
    known_roles: &[String],
) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let sources = read_sources(dir)?;
    let (rules, diagnostics) = compile_sources_with_roles(&sources, Some(known_roles));
    if diagnostics.is_empty() {
        Ok(rules)
    } else {
        Err(diagnostics)
    }
}

/// Compiles rule files as [`compile_sources`] does. With `known_roles`, the `role` of every
/// `activity` and `notify` action must be one of them.
pub fn compile_sources_with_roles(
    sources: &[(String, String)],
    known_roles: Option<&[String]>,
) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut rules = Vec::new();
    let mut diagnostics = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in sources {
        let mut checker = Checker {
            file,
            source: text,
            known_roles,
            diagnostics: Vec::new(),
        };
        let (compiled, ids) = checker.file(text);
        for (id, at) in &ids {
            if let Some(first) = seen.insert(id.clone(), file.clone()) {
                checker.diagnostics.push(Diagnostic {
                    file: file.clone(),
                    line: at.line(),
                    column: at.column(),
                    message: format!(
                        "rule id `{id}` is already used in {first}; give each rule its own id"
                    ),
                });
            }
        }
        if checker.diagnostics.is_empty() {
            rules.extend(compiled.into_iter().map(|(rule, _)| rule));
        }
        diagnostics.append(&mut checker.diagnostics);
    }
    diagnostics.sort();
    (rules, diagnostics)
}

/// Compiles a rule, or a rule file with a top-level `rules:` list, given as YAML or JSON
/// text, as sent to the API.
// NOTE: the roles of `activity` and `notify` actions are not checked on this path, unlike
// `rules check` and `serve --rules`, which know the folder's approval authority.
pub fn compile_api_text(text: &str, origin: &str) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let is_file = serde_saphyr::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key("rules")))
        .unwrap_or(false);
    if !is_file {
        return compile_rule_text(text, origin).map(|rule| vec![rule]);
    }
    let mut checker = Checker {
        file: origin,
        source: text,
        known_roles: None,
        diagnostics: Vec::new(),
    };
    let (compiled, ids) = checker.file(text);
    let mut seen = BTreeSet::new();
    for (id, at) in &ids {
        if !seen.insert(id.clone()) {
            checker.error(
                at,
                format!("rule id `{id}` appears twice; give each rule its own id"),
            );
        }
    }
    if !checker.diagnostics.is_empty() {
        return Err(checker.diagnostics);
    }
    Ok(compiled
        .into_iter()
        .map(|(mut rule, _)| {
            rule.origin = origin.to_string();
            rule
        })
        .collect())
}

/// Compiles one rule given as YAML or JSON text, as sent to the API.
pub fn compile_rule_text(text: &str, origin: &str) -> Result<Rule, Vec<Diagnostic>> {
    let mut checker = Checker {
        file: origin,
        source: text,
        known_roles: None,
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
    /// The roles an action may address; unchecked when `None`.
    known_roles: Option<&'a [String]>,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(self.file, at, message));
    }

    fn parse_error(&mut self, error: &serde_saphyr::Error) {
        self.diagnostics
            .push(Diagnostic::from_parse_error(self.file, error));
    }

    /// Compiles the rules of one file. Also returns the id and place of every rule, valid or
    /// not, so that a duplicate id is reported even beside other errors.
    fn file(&mut self, text: &str) -> (Vec<(Rule, Location)>, Vec<(String, Location)>) {
        let parsed: Result<RuleFile, _> = serde_saphyr::from_str(text);
        match parsed {
            Ok(file) => {
                let origin = format!("file:{}", self.file);
                let mut rules = Vec::new();
                let mut ids = Vec::new();
                for spec in file.rules {
                    let at = spec.value.id.referenced;
                    ids.push((spec.value.id.value.clone(), at));
                    if let Some(rule) = self.rule(spec.value, &origin) {
                        rules.push((rule, at));
                    }
                }
                (rules, ids)
            }
            Err(error) => {
                self.parse_error(&error);
                (Vec::new(), Vec::new())
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
        if on == "schedule" {
            return self.schedule_trigger(t);
        }
        if !["create", "update", "state", "value", "time"].contains(&on) {
            self.error(
                &t.on.referenced,
                format!(
                    "`{on}` is not a trigger; use create, update, state, value, event, time or \
                     schedule"
                ),
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
            "time" => self.time_trigger(t, kind),
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

    fn timezone(&mut self, value: Option<&Spanned<String>>) -> Option<chrono_tz::Tz> {
        let Some(value) = value else {
            return Some(chrono_tz::UTC);
        };
        match value.value.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    &value.referenced,
                    format!(
                        "`{}` is not an IANA time zone such as Europe/Brussels",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn offset(&mut self, value: &Spanned<String>) -> Option<Offset> {
        match parse_offset(&value.value) {
            Ok(offset) => Some(offset),
            Err(message) => {
                self.error(&value.referenced, message);
                None
            }
        }
    }

    fn time_trigger(&mut self, t: &TriggerSpec, kind: Kind) -> Option<Trigger> {
        let Some(field) = &t.field else {
            self.error(
                &t.on.referenced,
                "a `time` trigger needs `field:`, a date or datetime field",
            );
            return None;
        };
        let def = self.field(kind, &field.value, &field.referenced)?;
        if !matches!(def.ty, FieldType::Date | FieldType::DateTime) {
            self.error(
                &field.referenced,
                format!(
                    "`{}` is a {}, not a date or datetime field",
                    field.value,
                    def.ty.describe()
                ),
            );
            return None;
        }
        let offset = match &t.offset {
            Some(value) => self.offset(value)?,
            None => Offset::zero(),
        };
        let at = match &t.at {
            None => chrono::NaiveTime::MIN,
            Some(value) => match chrono::NaiveTime::parse_from_str(&value.value, "%H:%M") {
                Ok(at) => at,
                Err(_) => {
                    self.error(
                        &value.referenced,
                        format!("`{}` is not a time of day; write it as HH:MM", value.value),
                    );
                    return None;
                }
            },
        };
        let timezone = self.timezone(t.timezone.as_ref())?;
        let calendar = match &t.calendar {
            None => None,
            Some(value) => match value.value.strip_prefix("record.") {
                Some(path) => {
                    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
                    if !self.calendar_path(kind, &segments, &value.referenced) {
                        return None;
                    }
                    Some(CalendarSource::Path(segments))
                }
                None => Some(CalendarSource::Named(value.value.clone())),
            },
        };
        if offset.unit == Unit::WorkingDays && calendar.is_none() {
            let at = t
                .offset
                .as_ref()
                .map(|o| o.referenced)
                .unwrap_or(t.on.referenced);
            self.error(&at, "working days need a `calendar:`, a work calendar's name or a path such as record.employee.calendar");
            return None;
        }
        Some(Trigger::Time(TimeTrigger {
            kind,
            field: field.value.clone(),
            offset,
            at,
            timezone,
            calendar,
        }))
    }

    /// Checks that `segments` lead through reference fields of `kind` to a work calendar.
    fn calendar_path(&mut self, kind: Kind, segments: &[String], at: &Location) -> bool {
        let mut current = kind;
        for segment in segments {
            let Some(def) = current.schema().field(segment) else {
                self.error(at, format!("`{segment}` is not a field of {current}"));
                return false;
            };
            let FieldType::Ref(target) = def.ty else {
                self.error(at, format!("`{segment}` of {current} is not a reference"));
                return false;
            };
            current = target;
        }
        if current != Kind::WorkCalendar {
            self.error(
                at,
                format!("the path leads to a {current}, not a work_calendar"),
            );
            return false;
        }
        true
    }

    fn schedule_trigger(&mut self, t: &TriggerSpec) -> Option<Trigger> {
        let Some(cron) = &t.cron else {
            self.error(
                &t.on.referenced,
                "a `schedule` trigger needs `cron:`, such as \"0 8 * * 1-5\"",
            );
            return None;
        };
        let parsed = match croner::Cron::from_str(&cron.value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                let message = format!("`{}` is not a cron expression: {error}", cron.value);
                self.error(&cron.referenced, message);
                None
            }
        };
        let timezone = self.timezone(t.timezone.as_ref());
        let (parsed, timezone) = (parsed?, timezone?);
        let limit = match &t.catch_up_limit {
            Some(limit) if limit.value == 0 || limit.value > 1000 => {
                self.error(
                    &limit.referenced,
                    format!("catch_up_limit {} is not between 1 and 1000", limit.value),
                );
                return None;
            }
            Some(limit) => limit.value as usize,
            None => 10,
        };
        let catch_up = match t
            .catch_up
            .as_ref()
            .map(|c| (c.value.as_str(), c.referenced))
        {
            None | Some(("once", _)) => CatchUp::Once,
            Some(("skip", _)) => CatchUp::Skip,
            Some(("all", _)) => CatchUp::All { limit },
            Some((other, at)) => {
                self.error(
                    &at,
                    format!("catch_up `{other}` is not one of skip, once, all"),
                );
                return None;
            }
        };
        let overlap = match t.overlap.as_ref().map(|c| (c.value.as_str(), c.referenced)) {
            None | Some(("skip", _)) => Overlap::Skip,
            Some(("buffer", _)) => Overlap::Buffer,
            Some(("allow", _)) => Overlap::Allow,
            Some((other, at)) => {
                self.error(
                    &at,
                    format!("overlap `{other}` is not one of skip, buffer, allow"),
                );
                return None;
            }
        };
        Some(Trigger::Schedule(Schedule {
            cron: parsed,
            pattern: cron.value.clone(),
            timezone,
            catch_up,
            overlap,
        }))
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
            if segments[0] == "changed" && segments.len() > 1 {
                self.error(
                    at,
                    format!(
                        "`{path}`: `changed` is the list of changed field names; write `'{}' in changed`",
                        segments[1]
                    ),
                );
                continue;
            }
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
                if matches!(kind, Kind::ApprovalRequest | Kind::ApprovalStep) {
                    self.error(at, "approval requests and steps change only through decisions; a rule can open a request with `approval`");
                    return None;
                }
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
                if matches!(target, Kind::ApprovalRequest | Kind::ApprovalStep) {
                    self.error(&record.referenced, "approval requests are opened with the `approval` action, which routes them by their policy; use `approval: { request: ... }`");
                    return None;
                }
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
            ActionSpec::Http {
                method,
                url,
                headers,
                body,
                timeout_seconds,
            } => {
                let method = method
                    .as_ref()
                    .map(|m| (m.value.to_ascii_uppercase(), m.referenced));
                let method = match method {
                    None => "POST".to_string(),
                    Some((m, _))
                        if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) =>
                    {
                        m
                    }
                    Some((m, at)) => {
                        self.error(
                            &at,
                            format!(
                                "`{m}` is not an HTTP method; use GET, POST, PUT, PATCH or DELETE"
                            ),
                        );
                        return None;
                    }
                };
                let literal_url = !url.value.contains("{{") && !url.value.starts_with('=');
                let valid_url = reqwest_like_url(&url.value);
                if literal_url && !valid_url {
                    self.error(
                        &url.referenced,
                        format!("`{}` is not an http or https URL", url.value),
                    );
                    return None;
                }
                let url_value = self.value_text(&url.value, &url.referenced, kind)?;
                let headers = self.plain_values(headers, kind)?;
                let body = match body {
                    Some(body) => Some(self.plain_values(body, kind)?),
                    None => None,
                };
                let timeout = match timeout_seconds {
                    Some(t) if t.value == 0 || t.value > 120 => {
                        self.error(
                            &t.referenced,
                            format!("timeout_seconds {} is not between 1 and 120", t.value),
                        );
                        return None;
                    }
                    Some(t) => t.value,
                    None => 10,
                };
                Some(Action::Http {
                    method,
                    url: url_value,
                    headers,
                    body,
                    timeout_seconds: timeout,
                })
            }
            ActionSpec::Webhook {
                endpoint,
                event,
                data,
            } => {
                if !is_slug(&endpoint.value) {
                    self.error(&endpoint.referenced, format!("`{}` is not an endpoint id; use lower-case letters, digits, `-` and `_`", endpoint.value));
                    return None;
                }
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
                let data = self.plain_values(data, kind)?;
                Some(Action::Webhook {
                    endpoint: endpoint.value.clone(),
                    event: event.value.clone(),
                    data,
                })
            }
            ActionSpec::Control { name } => {
                let known = name.value == "all"
                    || steward_domain::controls::ALL.contains(&name.value.as_str());
                if !known {
                    self.error(
                        &name.referenced,
                        format!(
                            "`{}` is not a control; use all or one of {}",
                            name.value,
                            steward_domain::controls::ALL.join(", ")
                        ),
                    );
                    return None;
                }
                Some(Action::Control {
                    name: name.value.clone(),
                })
            }
            ActionSpec::Wait { duration, until } => {
                match (duration, until) {
                    (Some(duration), None) => {
                        let offset = self.offset(duration)?;
                        match offset
                            .as_duration()
                            .filter(|d| *d > chrono::Duration::zero())
                        {
                            Some(d) => Some(Action::Wait {
                                duration: Some(d),
                                until: None,
                            }),
                            None => {
                                self.error(&duration.referenced, "`for:` needs a positive duration in minutes, hours, days or weeks");
                                None
                            }
                        }
                    }
                    (None, Some(until)) => {
                        let value = self.value_text(&until.value, &until.referenced, kind)?;
                        Some(Action::Wait {
                            duration: None,
                            until: Some(value),
                        })
                    }
                    _ => {
                        self.error(
                            at,
                            "`wait` needs either `for:` (a duration) or `until:` (an instant)",
                        );
                        None
                    }
                }
            }
            ActionSpec::Await { event, on, timeout } => {
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
                let on_correlation = match on.as_ref().map(|o| (o.value.as_str(), o.referenced)) {
                    None | Some(("record", _)) => false,
                    Some(("correlation", _)) => true,
                    Some((other, at)) => {
                        self.error(&at, format!("`on: {other}` is not record or correlation"));
                        return None;
                    }
                };
                if !on_correlation && kind.is_none() {
                    self.error(at, "waiting for an event about the record needs a record trigger; use `on: correlation`");
                    return None;
                }
                let timeout = match timeout {
                    Some(value) => {
                        let offset = self.offset(value)?;
                        match offset
                            .as_duration()
                            .filter(|d| *d > chrono::Duration::zero())
                        {
                            Some(d) => Some(d),
                            None => {
                                self.error(
                                    &value.referenced,
                                    "`timeout:` needs a positive duration",
                                );
                                return None;
                            }
                        }
                    }
                    None => None,
                };
                Some(Action::Await {
                    event: event.value.clone(),
                    on_correlation,
                    timeout,
                })
            }
            ActionSpec::Approval { request, summary } => {
                if !steward_domain::kinds::APPROVAL_KINDS.contains(&request.value.as_str()) {
                    self.error(
                        &request.referenced,
                        format!(
                            "`{}` is not a request kind; use one of {}",
                            request.value,
                            steward_domain::kinds::APPROVAL_KINDS.join(", ")
                        ),
                    );
                    return None;
                }
                if kind.is_none() {
                    self.error(at, "`approval` asks about the triggering record, and an event trigger has none; trigger on a record");
                    return None;
                }
                let summary = match summary {
                    Some(s) => Some(self.value_text(&s.value, &s.referenced, kind)?),
                    None => None,
                };
                Some(Action::Approval {
                    request: request.value.clone(),
                    summary,
                })
            }
            ActionSpec::ApprovalStep(op) => {
                if !self
                    .file
                    .trim_start_matches("file:")
                    .starts_with("builtin:")
                {
                    self.error(
                        &op.referenced,
                        "`approval_step` is for Steward's built-in approval rules; policies set reminders and deadlines with `remind_before` and `deadline`",
                    );
                    return None;
                }
                if !matches!(op.value.as_str(), "remind" | "escalate") {
                    self.error(&op.referenced, "use `remind` or `escalate`");
                    return None;
                }
                Some(Action::ApprovalStep {
                    op: op.value.clone(),
                })
            }
            ActionSpec::Respond { status, body } => {
                let status = match status {
                    Some(s) if !(200..=599).contains(&s.value) => {
                        self.error(
                            &s.referenced,
                            format!("status {} is not an HTTP status from 200 to 599", s.value),
                        );
                        return None;
                    }
                    Some(s) => s.value,
                    None => 200,
                };
                let body = self.plain_values(body, kind)?;
                Some(Action::Respond { status, body })
            }
        }
    }

    /// Compiles free-form values (headers, bodies, payloads), checking only the paths they read.
    fn plain_values(
        &mut self,
        values: &FieldValues,
        kind: Option<Kind>,
    ) -> Option<Vec<(String, ValueExpr)>> {
        let mut compiled = Vec::new();
        for (name, value) in values.iter() {
            compiled.push((
                name.clone(),
                self.value(&value.value, &value.referenced, kind)?,
            ));
        }
        Some(compiled)
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
        if let (Some(role), Some(known)) = (role, self.known_roles)
            && !known.contains(&role.value)
        {
            self.error(
                &role.referenced,
                format!(
                    "role `{}` is not defined; use one of {}, or declare it under \
                     `authority: roles:` in an approval policy file",
                    role.value,
                    known.join(", ")
                ),
            );
            return None;
        }
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

fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A rough check that a literal URL is http or https with a host.
fn reqwest_like_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}
