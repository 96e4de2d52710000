//! Reading a whole export file: decoding, the header check, and every row parsed and placed in
//! time, with the rows that fail set aside.

use std::collections::HashMap;
use std::path::Path;

use chrono_tz::Tz;

use crate::ImportError;
use crate::decode::{self, SourceEncoding};
use crate::entry::{Entry, build_entry};
use crate::parse::{Columns, parse_row};
use crate::report::{RejectedRow, RowWarning};

/// The rows of an export, parsed.
pub struct ParsedExport {
    pub encoding: SourceEncoding,
    pub rows_read: usize,
    pub entries: Vec<Entry>,
    pub rejected: Vec<RejectedRow>,
    pub warnings: Vec<RowWarning>,
}

/// Picks the field separator from the header line: a comma, or a semicolon as spreadsheet
/// programs write in locales with decimal commas.
fn separator(text: &[u8]) -> u8 {
    let header = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |byte: u8| header.iter().filter(|b| **b == byte).count();
    if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

/// Reads and parses the export at `path`, with local times in `timezone`.
pub fn read_export(path: &Path, timezone: Tz) -> Result<ParsedExport, ImportError> {
    let bytes = std::fs::read(path).map_err(|reason| ImportError::Io {
        path: path.to_path_buf(),
        reason,
    })?;
    let encoding = decode::detect(&bytes);
    let text = decode::to_utf8(&bytes, encoding).map_err(|reason| ImportError::Io {
        path: path.to_path_buf(),
        reason,
    })?;
    drop(bytes);

    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator(&text))
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_slice());
    let header = match reader.headers() {
        Ok(header) if header.iter().any(|h| !h.trim().is_empty()) => header.clone(),
        Ok(_) => {
            return Err(ImportError::Empty {
                path: path.to_path_buf(),
            });
        }
        Err(error) => {
            return Err(ImportError::Csv {
                path: path.to_path_buf(),
                line: error.position().map(|p| p.line()),
                message: error.to_string(),
            });
        }
    };
    let columns = Columns::locate(&header).map_err(|missing| ImportError::MissingColumns {
        path: path.to_path_buf(),
        missing,
        found: header.iter().map(|h| h.trim().to_string()).collect(),
    })?;

    let mut parsed = ParsedExport {
        encoding,
        rows_read: 0,
        entries: Vec::new(),
        rejected: Vec::new(),
        warnings: Vec::new(),
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map_or(line, |p| p.line());
                if let csv::ErrorKind::Io(_) = error.kind() {
                    return Err(ImportError::Csv {
                        path: path.to_path_buf(),
                        line: Some(line),
                        message: error.to_string(),
                    });
                }
                parsed.rows_read += 1;
                parsed.rejected.push(RejectedRow {
                    line,
                    column: None,
                    value: String::new(),
                    reason: format!(
                        "the row cannot be read ({error}); save the export as UTF-8 or UTF-16"
                    ),
                });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        parsed.rows_read += 1;
        let row = match parse_row(&record, line, &columns) {
            Ok(row) => row,
            Err(rejected) => {
                parsed.rejected.push(rejected);
                continue;
            }
        };
        let entry = match build_entry(row, timezone, &mut parsed.warnings) {
            Ok(entry) => entry,
            Err(rejected) => {
                parsed.rejected.push(rejected);
                continue;
            }
        };
        if let Some(first) = seen.get(&entry.key) {
            parsed.rejected.push(RejectedRow {
                line,
                column: None,
                value: String::new(),
                reason: format!(
                    "the row repeats line {first} exactly (person, start, end, description and \
                     project), so it was not imported twice; delete one of them in Toggl if the \
                     time was logged twice"
                ),
            });
            continue;
        }
        seen.insert(entry.key.clone(), line);
        parsed.entries.push(entry);
    }
    Ok(parsed)
}
