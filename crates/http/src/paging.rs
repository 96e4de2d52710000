//! Query parameters shared by every list.

use std::collections::BTreeMap;

use crate::error::{ApiError, parameter_error};

pub const DEFAULT_LIMIT: usize = 50;

/// The `cursor` and `limit` of a list request.
pub struct Paging {
    pub cursor: Option<String>,
    pub limit: usize,
}

impl Paging {
    /// Reads a list whose cursor is a record or row id (a ULID).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Paging, ApiError> {
        Paging::read(params, |cursor| steward_domain::id::is_valid_id(cursor))
    }

    /// Reads a list whose cursor is an event sequence number.
    pub fn by_sequence(params: &BTreeMap<String, String>) -> Result<Paging, ApiError> {
        Paging::read(params, |cursor| cursor.parse::<u64>().is_ok())
    }

    fn read(
        params: &BTreeMap<String, String>,
        valid: fn(&str) -> bool,
    ) -> Result<Paging, ApiError> {
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=steward_store::MAX_PAGE).contains(&n) => n,
                _ => {
                    let message = format!(
                        "must be a whole number from 1 to {}",
                        steward_store::MAX_PAGE
                    );
                    return Err(parameter_error("limit", text, message));
                }
            },
        };
        let cursor = params.get("cursor").filter(|c| !c.is_empty()).cloned();
        if let Some(cursor) = &cursor
            && !valid(cursor)
        {
            let message =
                "is not a cursor this list returned; pass the `next_cursor` of the previous page";
            return Err(parameter_error("cursor", cursor, message));
        }
        Ok(Paging { cursor, limit })
    }
}

/// Rejects parameters a list does not know, so a misspelt filter never silently returns
/// everything.
pub fn reject_unknown(params: &BTreeMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    for name in params.keys() {
        if !known.contains(&name.as_str()) && name != "cursor" && name != "limit" {
            return Err(parameter_error(
                name,
                &params[name],
                format!(
                    "is not a filter of this list; filters are {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
