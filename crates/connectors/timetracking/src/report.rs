//! The validation report of an import.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

/// A summary of the rows an import read, wrote and rejected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// The label of the export, from [`crate::TogglOptions::source_name`] or the file name.
    pub source: String,
    /// The time zone the export's local times were read in.
    pub timezone: String,
    /// The encoding the file was saved in, such as `UTF-16LE`.
    pub encoding: String,
    /// True when the import only validated the file and wrote nothing.
    pub dry_run: bool,
    /// Data rows in the file, the header not counted.
    pub rows_read: usize,
    /// Rows with at least one timesheet entry created or changed.
    pub rows_imported: usize,
    /// Rows whose entries were already stored exactly as the file has them.
    pub rows_unchanged: usize,
    pub rows_rejected: usize,
    /// Timesheet entries created, updated and left unchanged; a row split across midnight
    /// counts once per day.
    pub entries_created: usize,
    pub entries_updated: usize,
    pub entries_unchanged: usize,
    /// Sum of the hours of every accepted row.
    pub hours: Decimal,
    pub rejected: Vec<RejectedRow>,
    /// Questionable values in accepted rows, such as a Duration that disagrees with the start
    /// and end.
    pub warnings: Vec<RowWarning>,
    /// Pairs of accepted entries of one person whose times overlap.
    pub overlaps: Vec<Overlap>,
    /// Accepted rows that cross local midnight and became one entry per day.
    pub split_entries: Vec<SplitEntry>,
    pub people_created: Vec<CreatedPerson>,
    pub clients_created: Vec<CreatedClient>,
    pub projects_created: Vec<CreatedProject>,
}

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// The line the row starts on, counting the header as line 1.
    pub line: u64,
    /// The column holding the invalid value; `None` when the whole row is at fault.
    pub column: Option<String>,
    pub value: String,
    pub reason: String,
}

/// A value in an accepted row that deserves a second look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowWarning {
    pub line: u64,
    pub column: String,
    pub value: String,
    pub message: String,
}

/// Two entries of one person that overlap in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// The person's e-mail address, or their name when the row has no address.
    pub person: String,
    /// The line of the entry that starts first.
    pub first_line: u64,
    pub second_line: u64,
    pub seconds: i64,
}

/// A row that crosses local midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SplitEntry {
    pub line: u64,
    /// The local days of the entries it became, in order.
    pub days: Vec<NaiveDate>,
}

/// An employee the import created. The id is `None` in a dry run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedPerson {
    pub id: Option<String>,
    pub name: String,
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedClient {
    pub id: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedProject {
    pub id: Option<String>,
    pub name: String,
    pub client: Option<String>,
}
