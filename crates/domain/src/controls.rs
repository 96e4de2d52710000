//! Names of the built-in controls, as stored on their findings and as rule files name them in
//! `control:` actions.

pub const DAILY_HOURS: &str = "daily_hours";
pub const APPROVER_MISSING: &str = "approver_missing";
pub const SELF_APPROVAL: &str = "self_approval";
pub const PROJECT_TIME: &str = "time_on_closed_or_missing_project";
pub const OVERLAPPING_ENTRIES: &str = "overlapping_entries";

/// A won and signed deal with no project, or a project with no kickoff, past the deadline.
pub const HANDOFF_OVERDUE: &str = "handoff_overdue";
/// A won and signed deal with no project because no project template covers its service line.
pub const HANDOFF_NO_TEMPLATE: &str = "handoff_no_template";
pub const STAFFING_OVERBOOKED: &str = "staffing_overbooked";
pub const STAFFING_BENCH: &str = "staffing_bench";
pub const STAFFING_UNSTAFFED_ROLE: &str = "staffing_unstaffed_role";
pub const STAFFING_SKILL_MISMATCH: &str = "staffing_skill_mismatch";
pub const TIMESHEET_INCOMPLETE: &str = "timesheet_incomplete";
/// Mirrored entries that Steward would have rejected: negative hours or a date in the future.
pub const ENTRY_VALIDITY: &str = "entry_validity";
pub const BILLABLE_MISMATCH: &str = "billable_mismatch";
pub const EXPENSE_LIMIT: &str = "expense_limit";
pub const EXPENSE_RECEIPT: &str = "expense_receipt_missing";
pub const EXPENSE_DUPLICATE: &str = "expense_duplicate_receipt";
pub const COLLECTIONS_OVERDUE: &str = "collections_overdue";
pub const BUDGET_BURN: &str = "budget_burn";
pub const MARGIN_LOW: &str = "margin_low";
pub const MILESTONE_OVERDUE: &str = "milestone_overdue";
pub const SLA_BREACH: &str = "sla_breach";

/// Every built-in control, in the order the controls run.
pub const ALL: &[&str] = &[
    DAILY_HOURS,
    APPROVER_MISSING,
    SELF_APPROVAL,
    PROJECT_TIME,
    OVERLAPPING_ENTRIES,
    HANDOFF_OVERDUE,
    HANDOFF_NO_TEMPLATE,
    STAFFING_OVERBOOKED,
    STAFFING_BENCH,
    STAFFING_UNSTAFFED_ROLE,
    STAFFING_SKILL_MISMATCH,
    TIMESHEET_INCOMPLETE,
    ENTRY_VALIDITY,
    BILLABLE_MISMATCH,
    EXPENSE_LIMIT,
    EXPENSE_RECEIPT,
    EXPENSE_DUPLICATE,
    COLLECTIONS_OVERDUE,
    BUDGET_BURN,
    MARGIN_LOW,
    MILESTONE_OVERDUE,
    SLA_BREACH,
];
