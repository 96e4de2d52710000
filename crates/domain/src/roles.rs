//! The built-in roles of Steward: the roles an API token can have. Notifications, activities
//! and approval steps can also address them, beside the roles an approval authority declares.

/// Every built-in role, in the order the API documents them.
pub const BUILT_IN: &[&str] = &[
    "admin",
    "operations",
    "finance",
    "delivery_manager",
    "employee",
    "auditor",
    "integration",
];
