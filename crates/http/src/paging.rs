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
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Paging, ApiError> {
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=steward_store::MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(parameter_error(
                        "limit",
                        text,
                        format!(
                            "must be a whole number from 1 to {}",
                            steward_store::MAX_PAGE
                        ),
                    ));
                }
            },
        };
        let cursor = params.get("cursor").filter(|c| !c.is_empty()).cloned();
        if let Some(cursor) = &cursor
            && (cursor.len() > 64 || !cursor.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(parameter_error(
                "cursor",
                cursor,
                "is not a cursor this API returned",
            ));
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
