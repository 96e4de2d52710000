//! Loading a captured Odoo 17 session from its folder: the records of every model, their
//! `fields_get` results, base domains, the login and the error payloads.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// The captured data the replay server serves.
#[derive(Clone, Debug)]
pub(crate) struct Dataset {
    /// The `result` of `common.version`.
    pub version: Value,
    pub login: Login,
    pub models: BTreeMap<String, Model>,
    pub errors: ErrorTemplates,
}

/// The one account the capture was made with.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub db: String,
    pub login: String,
    pub password: String,
    pub uid: i64,
}

/// The captured records of one model.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    /// Rows by id, each with the fields the capture read, in the order it read them.
    pub rows: BTreeMap<i64, Map<String, Value>>,
    /// The `fields_get` result: attributes by field name.
    pub fields: Map<String, Value>,
    /// The domain the capture read the model with; every captured row matches it.
    pub base_domain: Vec<Value>,
    /// The captured `search_count` with `active_test: false`, when there is one.
    pub count_with_archived: Option<Value>,
}

impl Model {
    /// True when `name` is a field of the model: listed by `fields_get` or present in the rows.
    pub fn has_field(&self, name: &str) -> bool {
        name == "id"
            || self.fields.contains_key(name)
            || self
                .rows
                .values()
                .next()
                .is_some_and(|r| r.contains_key(name))
    }

    /// Returns the Odoo type of a field, such as `many2one`, from `fields_get`.
    pub fn field_type(&self, name: &str) -> Option<&str> {
        self.fields.get(name)?.get("type")?.as_str()
    }
}

/// The `error` objects of the captured error responses, used as the shape of every error the
/// server returns.
#[derive(Clone, Debug)]
pub(crate) struct ErrorTemplates {
    pub unknown_db: Value,
    /// The database name in the captured unknown-database message.
    pub unknown_db_name: String,
    pub access_denied: Value,
    pub access_error: Value,
    pub unknown_field: Value,
    pub unknown_field_in_domain: Value,
    pub unknown_model: Value,
    pub unknown_method: Value,
}

const PAGE_MARKER: &str = "__search_read__page";

impl Dataset {
    /// Reads the capture in `dir`. Fails with the path of the first missing or invalid file.
    pub fn load(dir: &Path) -> anyhow::Result<Dataset> {
        if dir.is_file() {
            bail!(
                "{} is a file, not a folder; pass the folder that holds common__version.json \
                 and the *__search_read__pageNN.json files",
                dir.display()
            );
        }
        if !dir.is_dir() {
            bail!(
                "the Odoo capture folder {} does not exist; pass the folder that holds \
                 common__version.json and the *__search_read__pageNN.json files",
                dir.display()
            );
        }
        let version = read_json(&dir.join("common__version.json"))?
            .get("result")
            .cloned()
            .context("common__version.json has no `result`")?;
        let login = load_login(dir)?;
        let models = load_models(dir)?;
        if models.is_empty() {
            bail!(
                "{} holds no *__search_read__pageNN.json files, so there are no records to \
                 serve",
                dir.display()
            );
        }
        let errors = load_error_templates(&dir.join("errors"))?;
        Ok(Dataset {
            version,
            login,
            models,
            errors,
        })
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {}; check the capture folder", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Returns the positional `args` of a captured JSON-RPC request.
fn request_args(path: &Path) -> anyhow::Result<Vec<Value>> {
    read_json(path)?
        .pointer("/params/args")
        .and_then(Value::as_array)
        .cloned()
        .with_context(|| format!("{} has no `params.args` list", path.display()))
}

fn load_login(dir: &Path) -> anyhow::Result<Login> {
    let path = dir.join("common__authenticate.request.json");
    let args = request_args(&path)?;
    let text = |index: usize| {
        args.get(index)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("{} has no text at args[{index}]", path.display()))
    };
    let uid = read_json(&dir.join("common__authenticate.json"))?
        .get("result")
        .and_then(Value::as_i64)
        .context("common__authenticate.json has no numeric `result` (the user id)")?;
    Ok(Login {
        db: text(0)?,
        login: text(1)?,
        password: text(2)?,
        uid,
    })
}

/// Groups the page files by model, in page order.
fn page_files(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<(u32, PathBuf)>>> {
    let mut pages: BTreeMap<String, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot list the folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with(".request") {
            continue;
        }
        let Some((model, number)) = stem.split_once(PAGE_MARKER) else {
            continue;
        };
        let Ok(number) = number.parse::<u32>() else {
            continue;
        };
        pages
            .entry(model.to_string())
            .or_default()
            .push((number, path.clone()));
    }
    for files in pages.values_mut() {
        files.sort();
    }
    Ok(pages)
}

fn load_models(dir: &Path) -> anyhow::Result<BTreeMap<String, Model>> {
    let mut models = BTreeMap::new();
    for (name, files) in page_files(dir)? {
        let mut rows = BTreeMap::new();
        for (_, path) in &files {
            let page = read_json(path)?;
            let items = page
                .get("result")
                .and_then(Value::as_array)
                .with_context(|| format!("{} has no `result` list", path.display()))?;
            for item in items {
                let row = item.as_object().with_context(|| {
                    format!("{} holds a row that is not an object", path.display())
                })?;
                let id = row.get("id").and_then(Value::as_i64).with_context(|| {
                    format!("{} holds a row without an integer id", path.display())
                })?;
                rows.insert(id, row.clone());
            }
        }
        let fields_path = dir.join(format!("{name}__fields_get.json"));
        let fields = if fields_path.exists() {
            read_json(&fields_path)?
                .get("result")
                .and_then(Value::as_object)
                .cloned()
                .with_context(|| format!("{} has no `result` object", fields_path.display()))?
        } else {
            Map::new()
        };
        let count_path = dir.join(format!("{name}__search_count.request.json"));
        let base_domain = if count_path.exists() {
            request_args(&count_path)?
                .get(5)
                .and_then(|args| args.get(0))
                .and_then(Value::as_array)
                .cloned()
                .with_context(|| format!("{} has no domain at args[5][0]", count_path.display()))?
        } else {
            Vec::new()
        };
        let archived_path = dir.join(format!("{name}__search_count__with_archived.json"));
        let count_with_archived = if archived_path.exists() {
            read_json(&archived_path)?.get("result").cloned()
        } else {
            None
        };
        models.insert(
            name,
            Model {
                rows,
                fields,
                base_domain,
                count_with_archived,
            },
        );
    }
    Ok(models)
}

fn error_object(dir: &Path, name: &str) -> anyhow::Result<Value> {
    let path = dir.join(format!("{name}.json"));
    read_json(&path)?
        .get("error")
        .cloned()
        .with_context(|| format!("{} has no `error` object", path.display()))
}

fn load_error_templates(dir: &Path) -> anyhow::Result<ErrorTemplates> {
    let unknown_db_request =
        request_args(&dir.join("common__authenticate__error_unknown_db.request.json"))?;
    let unknown_db_name = unknown_db_request
        .first()
        .and_then(Value::as_str)
        .context("the captured unknown-database request has no database name")?
        .to_string();
    Ok(ErrorTemplates {
        unknown_db: error_object(dir, "common__authenticate__error_unknown_db")?,
        unknown_db_name,
        access_denied: error_object(dir, "res.partner__search_read__error_wrong_password")?,
        access_error: error_object(dir, "ir.config_parameter__search_read__error_access_denied")?,
        unknown_field: error_object(dir, "res.partner__search_read__error_unknown_field")?,
        unknown_field_in_domain: error_object(
            dir,
            "res.partner__search_read__error_unknown_field_in_domain",
        )?,
        unknown_model: error_object(dir, "x_no_such.model__search_read__error_unknown_model")?,
        unknown_method: error_object(dir, "res.partner__no_such_method__error_unknown_method")?,
    })
}
