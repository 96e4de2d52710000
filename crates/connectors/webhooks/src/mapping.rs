//! Mappings of inbound payloads to commands: a business event (`emit`) or a record mirrored by
//! an external key (`upsert`). Values use the rule expression language with the root
//! `payload`, so `"= payload._id"` reads the payload's `_id`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use steward_domain::command::{ExternalKey, ExternalRef};
use steward_domain::{Command, FieldError, FieldType, Kind};
use steward_rules::expr::ValueExpr;
use steward_rules::{VM, Variable};

/// The names a mapping expression can read.
pub const ROOTS: &[&str] = &["payload"];

/// A mapping as configured: exactly one of `emit` and `upsert`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The name of the business event to append, with the payload as its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emit: Option<String>,
    /// For `emit`: the event's data, by name; the whole payload when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsert: Option<UpsertSpec>,
}

/// Creates or updates the record mirrored from `external`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertSpec {
    /// The record kind, such as `task`.
    pub record: String,
    pub external: ExternalSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
    /// Reference fields given by the external key of the record they point at; an id list
    /// fills a list field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, ExternalSpec>,
    /// The source's version marker, such as a `write_date`. When absent the link keeps the
    /// marker it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<Value>,
}

/// An external key: system, model and id, each a literal or an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalSpec {
    pub system: Value,
    pub model: Value,
    pub id: Value,
}

/// A compiled mapping.
#[derive(Clone, Debug)]
pub(crate) enum Mapping {
    Emit {
        name: String,
        data: Option<Vec<(String, ValueExpr)>>,
    },
    Upsert(Box<CompiledUpsert>),
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledUpsert {
    kind: Kind,
    external: CompiledExternal,
    state: Option<ValueExpr>,
    fields: Vec<(String, ValueExpr)>,
    references: Vec<(String, CompiledExternal)>,
    source_version: Option<ValueExpr>,
}

#[derive(Clone, Debug)]
struct CompiledExternal {
    system: ValueExpr,
    model: ValueExpr,
    id: ValueExpr,
}

/// The command a payload maps to. `keep_source_version` tells the caller to keep the
/// link's stored marker, because the mapping names none.
#[derive(Clone, Debug)]
pub(crate) struct Mapped {
    pub command: Command,
    pub keep_source_version: bool,
}

fn expression(path: &str, value: &Value, errors: &mut Vec<FieldError>) -> Option<ValueExpr> {
    match ValueExpr::parse_with_roots(value, ROOTS) {
        Ok(compiled) => Some(compiled),
        Err(message) => {
            errors.push(FieldError::new(path, value, message));
            None
        }
    }
}

fn compile_external(
    path: &str,
    spec: &ExternalSpec,
    errors: &mut Vec<FieldError>,
) -> Option<CompiledExternal> {
    let system = expression(&format!("{path}.system"), &spec.system, errors);
    let model = expression(&format!("{path}.model"), &spec.model, errors);
    let id = expression(&format!("{path}.id"), &spec.id, errors);
    Some(CompiledExternal {
        system: system?,
        model: model?,
        id: id?,
    })
}

impl Mapping {
    /// Compiles a mapping, listing every invalid value with its path under `mapping`.
    pub fn compile(spec: &MappingSpec) -> Result<Mapping, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mapping = match (&spec.emit, &spec.upsert) {
            (Some(name), None) => {
                if !steward_domain::plan::is_event_name(name) {
                    errors.push(FieldError::new(
                        "mapping.emit",
                        &Value::String(name.clone()),
                        "is not an event name; use dotted lower-case words such as \
                         `portal.request`",
                    ));
                }
                let data = spec.data.as_ref().map(|data| {
                    data.iter()
                        .filter_map(|(name, value)| {
                            expression(&format!("mapping.data.{name}"), value, &mut errors)
                                .map(|e| (name.clone(), e))
                        })
                        .collect()
                });
                Some(Mapping::Emit {
                    name: name.clone(),
                    data,
                })
            }
            (None, Some(upsert)) => {
                if spec.data.is_some() {
                    errors.push(FieldError::new(
                        "mapping.data",
                        &Value::Null,
                        "belongs to `emit`; an upsert sets `fields` instead",
                    ));
                }
                compile_upsert(upsert, &mut errors).map(|u| Mapping::Upsert(Box::new(u)))
            }
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "mapping",
                    &Value::Null,
                    "has both `emit` and `upsert`; keep one",
                ));
                None
            }
            (None, None) => {
                errors.push(FieldError::new(
                    "mapping",
                    &Value::Null,
                    "needs `emit: <event name>` or `upsert: {record, external, fields}`",
                ));
                None
            }
        };
        match mapping {
            Some(mapping) if errors.is_empty() => Ok(mapping),
            _ => Err(errors),
        }
    }

    /// Maps one payload to its command.
    pub fn apply(&self, payload: &Value) -> Result<Mapped, String> {
        let context = context(payload);
        let mut vm = VM::new();
        match self {
            Mapping::Emit { name, data } => {
                let data = match data {
                    Some(values) => Value::Object(resolve_all(values, &context, &mut vm)?),
                    None => payload.clone(),
                };
                Ok(Mapped {
                    command: Command::Emit {
                        name: name.clone(),
                        record: None,
                        data,
                    },
                    keep_source_version: false,
                })
            }
            Mapping::Upsert(upsert) => upsert.apply(&context, &mut vm),
        }
    }
}

fn compile_upsert(spec: &UpsertSpec, errors: &mut Vec<FieldError>) -> Option<CompiledUpsert> {
    let kind = Kind::parse(&spec.record);
    if kind.is_none() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        errors.push(FieldError::new(
            "mapping.upsert.record",
            &Value::String(spec.record.clone()),
            format!("is not a record kind; use one of {}", names.join(", ")),
        ));
    }
    let external = compile_external("mapping.upsert.external", &spec.external, errors);
    let state = spec
        .state
        .as_ref()
        .and_then(|value| expression("mapping.upsert.state", value, errors));
    let mut fields = Vec::new();
    for (name, value) in &spec.fields {
        let path = format!("mapping.upsert.fields.{name}");
        if let Some(kind) = kind
            && kind.schema().field(name).is_none()
        {
            errors.push(FieldError::new(
                &path,
                value,
                format!(
                    "{kind} has no field `{name}`; see /api/v1/schemas/{}",
                    kind.plural()
                ),
            ));
            continue;
        }
        if let Some(compiled) = expression(&path, value, errors) {
            fields.push((name.clone(), compiled));
        }
    }
    let mut references = Vec::new();
    for (name, external) in &spec.references {
        let path = format!("mapping.upsert.references.{name}");
        if let Some(kind) = kind {
            let is_reference = kind
                .schema()
                .field(name)
                .is_some_and(|f| matches!(f.ty, FieldType::Ref(_) | FieldType::RefList(_)));
            if !is_reference {
                errors.push(FieldError::new(
                    &path,
                    &Value::String(name.clone()),
                    format!("is not a reference field of {kind}"),
                ));
                continue;
            }
            if spec.fields.contains_key(name) {
                errors.push(FieldError::new(
                    &path,
                    &Value::String(name.clone()),
                    "is also under `fields`; set it in one place",
                ));
                continue;
            }
        }
        if let Some(compiled) = compile_external(&path, external, errors) {
            references.push((name.clone(), compiled));
        }
    }
    let source_version = spec
        .source_version
        .as_ref()
        .and_then(|value| expression("mapping.upsert.source_version", value, errors));
    Some(CompiledUpsert {
        kind: kind?,
        external: external?,
        state,
        fields,
        references,
        source_version,
    })
}

impl CompiledUpsert {
    fn apply(&self, context: &Variable, vm: &mut VM) -> Result<Mapped, String> {
        let external = self
            .external
            .key(context, vm, "external")?
            .ok_or("the external id evaluated to null; map `external.id` to a value present in every payload")?;
        let state = match &self.state {
            Some(expr) => match expr.resolve(context, vm)? {
                Value::Null => None,
                value => Some(text(&value, "state")?),
            },
            None => None,
        };
        let fields = resolve_all(&self.fields, context, vm)?;
        let mut external_refs = Vec::new();
        for (field, reference) in &self.references {
            let value = reference.id.resolve(context, vm)?;
            let resolved = match value {
                Value::Array(ids) => {
                    let mut keys = Vec::new();
                    for id in ids {
                        keys.push(reference.key_with(context, vm, &id, field)?);
                    }
                    Some(ExternalRef::Many(keys))
                }
                Value::Null | Value::Bool(false) => None,
                id => Some(ExternalRef::One(
                    reference.key_with(context, vm, &id, field)?,
                )),
            };
            external_refs.push((field.clone(), resolved));
        }
        let source_version = match &self.source_version {
            Some(expr) => match expr.resolve(context, vm)? {
                Value::Null | Value::Bool(false) => None,
                value => Some(text(&value, "source_version")?),
            },
            None => None,
        };
        Ok(Mapped {
            command: Command::Upsert {
                kind: self.kind,
                external,
                source_version,
                state,
                fields,
                attributes: Map::new(),
                external_refs,
            },
            keep_source_version: self.source_version.is_none(),
        })
    }
}

impl CompiledExternal {
    /// Resolves the key, or `None` when the id is null or `false` (Odoo's empty value).
    fn key(
        &self,
        context: &Variable,
        vm: &mut VM,
        path: &str,
    ) -> Result<Option<ExternalKey>, String> {
        match self.id.resolve(context, vm)? {
            Value::Null | Value::Bool(false) => Ok(None),
            id => self.key_with(context, vm, &id, path).map(Some),
        }
    }

    fn key_with(
        &self,
        context: &Variable,
        vm: &mut VM,
        id: &Value,
        path: &str,
    ) -> Result<ExternalKey, String> {
        let system = text(
            &self.system.resolve(context, vm)?,
            &format!("{path}.system"),
        )?;
        let model = text(&self.model.resolve(context, vm)?, &format!("{path}.model"))?;
        let id = text(id, &format!("{path}.id"))?;
        Ok(ExternalKey { system, model, id })
    }
}

fn resolve_all(
    values: &[(String, ValueExpr)],
    context: &Variable,
    vm: &mut VM,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, expr) in values {
        let value = expr
            .resolve(context, vm)
            .map_err(|e| format!("{name}: {e}"))?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Converts a scalar to text: strings as they are, numbers in plain decimal form.
fn text(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{what} evaluated to {other}, not text or a number")),
    }
}

fn context(payload: &Value) -> Variable {
    let mut root = Map::new();
    root.insert("payload".into(), payload.clone());
    Variable::from(Value::Object(root))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compile(spec: Value) -> Result<Mapping, Vec<FieldError>> {
        Mapping::compile(&serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn upsert_maps_odoo_task_payload() {
        let mapping = compile(json!({"upsert": {
            "record": "task",
            "external": {"system": "odoo", "model": "= payload._model", "id": "= payload._id"},
            "fields": {
                "name": "= payload.name",
                "stage": "= payload.stage_id == 1 ? 'New' : payload.stage_id == 2 ? 'In Progress' : null",
            },
            "references": {"project": {"system": "odoo", "model": "project.project", "id": "= payload.project_id"},
                           "assignees": {"system": "odoo", "model": "res.users", "id": "= payload.user_ids"}},
        }}))
        .unwrap();
        let payload = json!({"_model": "project.task", "_id": 28, "name": "Usability review",
            "stage_id": 2, "project_id": 2, "user_ids": [6, 2]});
        let mapped = mapping.apply(&payload).unwrap();
        assert!(mapped.keep_source_version);
        let Command::Upsert {
            kind,
            external,
            fields,
            external_refs,
            ..
        } = mapped.command
        else {
            panic!("expected an upsert");
        };
        assert_eq!(kind, Kind::Task);
        assert_eq!(external, ExternalKey::new("odoo", "project.task", 28));
        assert_eq!(fields["stage"], json!("In Progress"));
        assert_eq!(fields["name"], json!("Usability review"));
        assert_eq!(
            external_refs[0],
            (
                "assignees".to_string(),
                Some(ExternalRef::Many(vec![
                    ExternalKey::new("odoo", "res.users", 6),
                    ExternalKey::new("odoo", "res.users", 2)
                ]))
            )
        );
        assert_eq!(
            external_refs[1],
            (
                "project".to_string(),
                Some(ExternalRef::One(ExternalKey::new(
                    "odoo",
                    "project.project",
                    2
                )))
            )
        );
    }

    #[test]
    fn unknown_stage_ids_keep_their_number() {
        let mapping = compile(json!({"upsert": {
            "record": "task",
            "external": {"system": "odoo", "model": "project.task", "id": "= payload._id"},
            "fields": {"stage": "= payload.stage_id == 1 ? 'New' : 'Stage ' + string(payload.stage_id)"},
        }}))
        .unwrap();
        let mapped = mapping.apply(&json!({"_id": 28, "stage_id": 19})).unwrap();
        let Command::Upsert { fields, .. } = mapped.command else {
            panic!("expected an upsert");
        };
        assert_eq!(fields["stage"], json!("Stage 19"));
    }

    #[test]
    fn invalid_mappings_list_every_error() {
        let errors = compile(json!({"upsert": {
            "record": "task",
            "external": {"system": "odoo", "model": "project.task", "id": "= record.id"},
            "fields": {"colour": "red", "name": "= payload.name +"},
            "references": {"name": {"system": "odoo", "model": "x", "id": 1}},
        }}))
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "mapping.upsert.external.id",
                "mapping.upsert.fields.colour",
                "mapping.upsert.fields.name",
                "mapping.upsert.references.name",
            ]
        );
        let both = compile(json!({"emit": "a.b", "upsert": {"record": "task",
            "external": {"system": "s", "model": "m", "id": 1}}}))
        .unwrap_err();
        assert!(both[0].message.contains("keep one"));
        let bad_name = compile(json!({"emit": "Not An Event"})).unwrap_err();
        assert_eq!(bad_name[0].field, "mapping.emit");
    }

    #[test]
    fn emit_carries_payload_or_mapped_data() {
        let whole = compile(json!({"emit": "portal.request"})).unwrap();
        let payload = json!({"client": "Deco", "budget": 1200});
        let Command::Emit { data, .. } = whole.apply(&payload).unwrap().command else {
            panic!("expected an emit");
        };
        assert_eq!(data, payload);
        let picked =
            compile(json!({"emit": "portal.request", "data": {"who": "= payload.client"}}))
                .unwrap();
        let Command::Emit { data, .. } = picked.apply(&payload).unwrap().command else {
            panic!("expected an emit");
        };
        assert_eq!(data, json!({"who": "Deco"}));
    }

    #[test]
    fn null_external_id_fails_with_the_fix() {
        let mapping = compile(json!({"upsert": {"record": "task",
            "external": {"system": "odoo", "model": "project.task", "id": "= payload._id"}}}))
        .unwrap();
        let error = mapping.apply(&json!({"something": "else"})).unwrap_err();
        assert!(error.contains("external id evaluated to null"), "{error}");
    }
}
