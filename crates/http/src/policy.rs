//! Who may change what through the API. Roles that decide (approve, reject, release) are
//! separated from roles that submit, nobody decides on their own records, and people linked
//! to an employee record are stamped as its submitter or approver.

use serde_json::{Map, Value};
use steward_domain::{Kind, Record};

use crate::auth::Principal;
use crate::error::ApiError;

/// Roles that may move records into deciding states.
const DECIDING_ROLES: &[&str] = &[
    "admin",
    "operations",
    "finance",
    "delivery_manager",
    "integration",
];

/// Kinds an `employee` token may create or change, when the record is its own.
const OWN_KINDS: &[Kind] = &[
    Kind::Timesheet,
    Kind::Expense,
    Kind::Leave,
    Kind::Activity,
    Kind::Notification,
];

/// Business events only Steward itself emits, so that rules can trust them.
pub const RESERVED_EVENT_PREFIXES: &[&str] =
    &["finding.", "timer.", "schedule.", "webhook.", "approval."];

/// The states that record a decision about a record of `kind`.
pub fn deciding_states(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Timesheet | Kind::Expense => &["approved", "rejected", "invoiced"],
        Kind::Leave => &["approved", "refused"],
        Kind::ApprovalRequest | Kind::ApprovalStep => {
            &["approved", "rejected", "escalated", "skipped"]
        }
        Kind::Invoice => &["released", "paid", "cancelled"],
        _ => &[],
    }
}

/// The person a record belongs to, for ownership checks.
fn owner_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Timesheet | Kind::Expense | Kind::Leave => Some("employee"),
        Kind::Activity => Some("assignee"),
        Kind::Notification => Some("recipient"),
        _ => None,
    }
}

fn owner<'a>(
    kind: Kind,
    fields: &'a Map<String, Value>,
    current: Option<&'a Record>,
) -> Option<&'a str> {
    let field = owner_field(kind)?;
    fields
        .get(field)
        .and_then(Value::as_str)
        .or_else(|| current.and_then(|r| r.ref_id(field)))
}

/// Checks that `principal` may create (`current` is `None`) or change a record of `kind`
/// with `fields`, moving it to `to_state` when given.
pub fn check_write(
    principal: &Principal,
    kind: Kind,
    current: Option<&Record>,
    fields: &Map<String, Value>,
    to_state: Option<&str>,
) -> Result<(), ApiError> {
    principal.require_writer()?;
    if matches!(kind, Kind::ApprovalRequest | Kind::ApprovalStep) {
        return Err(ApiError::forbidden(format!(
            "a {} changes only through /api/v1/approvals: open a request with POST /api/v1/approvals and decide with POST /api/v1/approvals/{{id}}/approve or /reject",
            kind.schema().label
        )));
    }
    let record_owner = owner(kind, fields, current);
    if principal.role == "employee" {
        let Some(me) = principal.employee.as_deref() else {
            return Err(ApiError::forbidden(
                "this employee token is linked to no employee record, so it can change nothing; ask an administrator to link it",
            ));
        };
        if !OWN_KINDS.contains(&kind) {
            return Err(ApiError::forbidden(format!(
                "the role `employee` may not change a {kind}; it changes only its own timesheets, expenses, leaves, activities and notifications"
            )));
        }
        let current_owner = current.and_then(|r| owner_field(kind).and_then(|f| r.ref_id(f)));
        if record_owner != Some(me) || current_owner.is_some_and(|o| o != me) {
            return Err(ApiError::forbidden(format!(
                "an employee token may change only its own {kind} records"
            )));
        }
        if current.is_none() && matches!(kind, Kind::Activity | Kind::Notification) {
            return Err(ApiError::forbidden(format!(
                "the role `employee` may not create a {kind}"
            )));
        }
    }
    if principal.role != "integration" {
        for stamped in ["submitted_by", "approved_by"] {
            if fields.contains_key(stamped) && kind.schema().field(stamped).is_some() {
                return Err(ApiError::forbidden(format!(
                    "`{stamped}` is set from the token of whoever makes the transition; leave it out"
                )));
            }
        }
    }
    let Some(state) = to_state else { return Ok(()) };
    if !deciding_states(kind).contains(&state) {
        return Ok(());
    }
    if !DECIDING_ROLES.contains(&principal.role.as_str()) {
        return Err(ApiError::forbidden(format!(
            "the role `{}` may not move a {kind} to {state}; it needs one of {}",
            principal.role,
            DECIDING_ROLES.join(", ")
        )));
    }
    if principal.role != "integration"
        && let (Some(me), Some(owner)) = (principal.employee.as_deref(), record_owner)
        && me == owner
    {
        return Err(ApiError::forbidden(format!(
            "nobody decides on their own {kind}; ask another approver"
        )));
    }
    Ok(())
}

/// Records who submitted or decided, from the token's employee, when the kind has the field.
pub fn stamp(
    principal: &Principal,
    kind: Kind,
    to_state: Option<&str>,
    fields: &mut Map<String, Value>,
) {
    let (Some(state), Some(me)) = (to_state, principal.employee.as_ref()) else {
        return;
    };
    let field = match state {
        "submitted" => "submitted_by",
        "approved" => "approved_by",
        _ => return,
    };
    if kind.schema().field(field).is_some() {
        fields.insert(field.to_string(), Value::String(me.clone()));
    }
}
