//! Finding the employees, clients and projects that rows name among the stored records, and
//! deciding which ones the import has to create.

use std::collections::HashMap;

use steward_domain::command::ExternalKey;
use steward_domain::{Kind, Record};
use steward_store::{ReadTx, StoreError};

use crate::SYSTEM;

/// External models under which created records are linked, so a second import finds them.
pub const USER_MODEL: &str = "user";
pub const CLIENT_MODEL: &str = "client";
pub const PROJECT_MODEL: &str = "project";

/// A record a row points at: one already stored, or one this import creates under an
/// external key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Existing(String),
    New(ExternalKey),
}

fn lower(text: &str) -> String {
    text.trim().to_lowercase()
}

/// The stored employees, clients and projects, indexed by the names rows use.
#[derive(Default)]
pub struct Directory {
    employees_by_email: HashMap<String, Vec<String>>,
    employees_by_name: HashMap<String, Vec<String>>,
    clients_by_name: HashMap<String, Vec<String>>,
    /// Projects by lower-case name: (id, client id).
    projects_by_name: HashMap<String, Vec<(String, Option<String>)>>,
    people: HashMap<String, Result<Target, String>>,
    /// People this import creates, by lower-case name, so a later row without an e-mail
    /// address finds the person an earlier row created.
    new_people_by_name: HashMap<String, Target>,
    clients: HashMap<String, Target>,
    projects: HashMap<(Option<Target>, String), Target>,
}

impl Directory {
    /// Indexes the stored records. Lists keep id order, so the oldest record comes first.
    pub fn load(tx: &dyn ReadTx) -> Result<Directory, StoreError> {
        let mut directory = Directory::default();
        tx.scan_records(Kind::Employee, &mut |record: Record| {
            if let Some(email) = record.text("email").filter(|e| !e.trim().is_empty()) {
                directory
                    .employees_by_email
                    .entry(lower(email))
                    .or_default()
                    .push(record.id.clone());
            }
            if let Some(name) = record.text("name") {
                directory
                    .employees_by_name
                    .entry(lower(name))
                    .or_default()
                    .push(record.id.clone());
            }
            Ok(true)
        })?;
        tx.scan_records(Kind::Client, &mut |record: Record| {
            if let Some(name) = record.text("name") {
                directory
                    .clients_by_name
                    .entry(lower(name))
                    .or_default()
                    .push(record.id.clone());
            }
            Ok(true)
        })?;
        tx.scan_records(Kind::Project, &mut |record: Record| {
            if let Some(name) = record.text("name") {
                let client = record.ref_id("client").map(str::to_string);
                directory
                    .projects_by_name
                    .entry(lower(name))
                    .or_default()
                    .push((record.id.clone(), client));
            }
            Ok(true)
        })?;
        Ok(directory)
    }

    /// Finds the employee of a row by an earlier import's link, then by e-mail address, then
    /// by name. A name shared by several employees is an error, since the time could land on
    /// the wrong person.
    pub fn person(
        &mut self,
        tx: &dyn ReadTx,
        key: &str,
        name: &str,
        email: &str,
    ) -> Result<Result<Target, String>, StoreError> {
        if let Some(found) = self.people.get(key) {
            return Ok(found.clone());
        }
        let external = ExternalKey::new(SYSTEM, USER_MODEL, key);
        let found = if let Some(id) = linked(tx, &external, Kind::Employee)? {
            Ok(Target::Existing(id))
        } else if let Some(ids) = self
            .employees_by_email
            .get(&lower(email))
            .filter(|_| !email.is_empty())
        {
            Ok(Target::Existing(ids[0].clone()))
        } else {
            match self.employees_by_name.get(&lower(name)).map(Vec::as_slice) {
                Some([id]) => Ok(Target::Existing(id.clone())),
                Some(ids) if !name.is_empty() && ids.len() > 1 => Err(format!(
                    "{} employees are named `{name}` and none has the e-mail address `{email}`; \
                     set the address on the right employee and import again",
                    ids.len()
                )),
                _ => match self
                    .new_people_by_name
                    .get(&lower(name))
                    .filter(|_| !name.is_empty())
                {
                    Some(created) if email.is_empty() => Ok(created.clone()),
                    _ => {
                        let created = Target::New(external);
                        if !name.is_empty() {
                            self.new_people_by_name
                                .entry(lower(name))
                                .or_insert_with(|| created.clone());
                        }
                        Ok(created)
                    }
                },
            }
        };
        self.people.insert(key.to_string(), found.clone());
        Ok(found)
    }

    /// Finds a client by an earlier import's link or by name; `None` for an empty name.
    pub fn client(&mut self, tx: &dyn ReadTx, name: &str) -> Result<Option<Target>, StoreError> {
        if name.is_empty() {
            return Ok(None);
        }
        let key = lower(name);
        if let Some(found) = self.clients.get(&key) {
            return Ok(Some(found.clone()));
        }
        let external = ExternalKey::new(SYSTEM, CLIENT_MODEL, &key);
        let found = match linked(tx, &external, Kind::Client)? {
            Some(id) => Target::Existing(id),
            None => match self.clients_by_name.get(&key) {
                Some(ids) => Target::Existing(ids[0].clone()),
                None => Target::New(external),
            },
        };
        self.clients.insert(key, found.clone());
        Ok(Some(found))
    }

    /// Finds a project by an earlier import's link, else by name among the client's projects
    /// (or, for a row without a client, among projects without one before any other).
    pub fn project(
        &mut self,
        tx: &dyn ReadTx,
        name: &str,
        client_name: &str,
        client: Option<&Target>,
    ) -> Result<Option<Target>, StoreError> {
        if name.is_empty() {
            return Ok(None);
        }
        let key = lower(name);
        let cache_key = (client.cloned(), key.clone());
        if let Some(found) = self.projects.get(&cache_key) {
            return Ok(Some(found.clone()));
        }
        let id = serde_json::to_string(&[lower(client_name), key.clone()])
            .expect("a pair of strings serializes");
        let external = ExternalKey::new(SYSTEM, PROJECT_MODEL, id);
        let candidates = self
            .projects_by_name
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let found = match linked(tx, &external, Kind::Project)? {
            Some(id) => Some(id),
            None => match client {
                Some(Target::Existing(client_id)) => candidates
                    .iter()
                    .find(|(_, c)| c.as_deref() == Some(client_id.as_str()))
                    .map(|(id, _)| id.clone()),
                Some(Target::New(_)) => None,
                None => candidates
                    .iter()
                    .find(|(_, c)| c.is_none())
                    .or(candidates.first())
                    .map(|(id, _)| id.clone()),
            },
        };
        let target = found.map_or(Target::New(external), Target::Existing);
        self.projects.insert(cache_key, target.clone());
        Ok(Some(target))
    }
}

/// Returns the id of the record of `kind` linked to `key`, if any.
pub fn linked(
    tx: &dyn ReadTx,
    key: &ExternalKey,
    kind: Kind,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .external_link(key)?
        .filter(|link| link.record.kind == kind)
        .map(|link| link.record.id))
}
