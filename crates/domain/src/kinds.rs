//! The built-in record kinds and their schemas.

use serde::{Deserialize, Serialize};

use crate::schema::FieldType::{
    Bool, Country, Currency, Date, DateTime, Decimal, Enum, Integer, Json, Money, Ref, RefList,
    Text, TextList, Timezone,
};
use crate::schema::{KindSchema, Transition, field, go, required};

macro_rules! kinds {
    ($($variant:ident => $name:literal, $plural:literal, $schema:ident;)+) => {
        /// A built-in record kind.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($variant,)+
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)+];

            /// The singular snake_case name used in events, rules and the database.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)+
                }
            }

            /// The plural used in API paths, such as `timesheets`.
            pub fn plural(self) -> &'static str {
                match self {
                    $(Kind::$variant => $plural,)+
                }
            }

            pub fn schema(self) -> &'static KindSchema {
                match self {
                    $(Kind::$variant => &$schema,)+
                }
            }

            pub fn parse(name: &str) -> Option<Kind> {
                match name {
                    $($name => Some(Kind::$variant),)+
                    _ => None,
                }
            }

            pub fn from_plural(plural: &str) -> Option<Kind> {
                match plural {
                    $($plural => Some(Kind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    Client => "client", "clients", CLIENT;
    Contact => "contact", "contacts", CONTACT;
    Opportunity => "opportunity", "opportunities", OPPORTUNITY;
    Contract => "contract", "contracts", CONTRACT;
    ContractLine => "contract_line", "contract-lines", CONTRACT_LINE;
    Service => "service", "services", SERVICE;
    Project => "project", "projects", PROJECT;
    Task => "task", "tasks", TASK;
    Milestone => "milestone", "milestones", MILESTONE;
    Employee => "employee", "employees", EMPLOYEE;
    WorkCalendar => "work_calendar", "work-calendars", WORK_CALENDAR;
    Leave => "leave", "leaves", LEAVE;
    Allocation => "allocation", "allocations", ALLOCATION;
    Timesheet => "timesheet", "timesheets", TIMESHEET;
    Expense => "expense", "expenses", EXPENSE;
    ApprovalRequest => "approval_request", "approval-requests", APPROVAL_REQUEST;
    ApprovalStep => "approval_step", "approval-steps", APPROVAL_STEP;
    Invoice => "invoice", "invoices", INVOICE;
    InvoiceLine => "invoice_line", "invoice-lines", INVOICE_LINE;
    Activity => "activity", "activities", ACTIVITY;
    Notification => "notification", "notifications", NOTIFICATION;
    Ticket => "ticket", "tickets", TICKET;
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const ACTIVE_INACTIVE: &[Transition] = &[go("active", "inactive"), go("inactive", "active")];

/// Billing models of a contract line. `manual` means delivered quantities are entered by hand.
pub const LINE_BILLING_MODELS: &[&str] = &[
    "time_and_materials",
    "fixed_fee",
    "milestone",
    "retainer",
    "prepaid_hours",
    "manual",
];

/// Billing models of a contract; `mixed` when its lines use more than one model.
pub const CONTRACT_BILLING_MODELS: &[&str] = &[
    "time_and_materials",
    "fixed_fee",
    "milestone",
    "retainer",
    "prepaid_hours",
    "manual",
    "mixed",
];

const TERMS: &[&str] = &["standard", "non_standard"];

/// The subject of an activity, notification or approval: any record, named by kind and id.
const SUBJECT_KIND_DOC: &str = "kind of the record this is about, such as `expense`";
const SUBJECT_ID_DOC: &str = "id of the record this is about";

pub static CLIENT: KindSchema = KindSchema {
    kind: Kind::Client,
    label: "client",
    doc: "A customer organisation or person the firm works for.",
    fields: &[
        required("name", Text, "display name"),
        field(
            "is_company",
            Bool,
            "true for an organisation, false for a person",
        ),
        field(
            "country",
            Country,
            "country of the billing address, which decides taxes",
        ),
        field("currency", Currency, "default currency for contracts"),
        field("vat", Text, "tax identification number"),
        field("email", Text, "billing e-mail address"),
        field("phone", Text, "main phone number"),
        field("city", Text, "city of the billing address"),
        field(
            "account_leader",
            Ref(Kind::Employee),
            "person accountable for the client",
        ),
        field(
            "payment_terms",
            Text,
            "default payment terms, such as `30 days`",
        ),
        field(
            "billing_rules",
            Json,
            "client-specific billing rules checked before invoicing",
        ),
        field(
            "billing_contact",
            Ref(Kind::Contact),
            "contact who receives invoices and payment reminders",
        ),
    ],
    states: &["active", "inactive"],
    initial: &["active"],
    transitions: ACTIVE_INACTIVE,
    title_field: "name",
};

pub static CONTACT: KindSchema = KindSchema {
    kind: Kind::Contact,
    label: "contact",
    doc: "A person at a client.",
    fields: &[
        required("name", Text, "full name"),
        field(
            "client",
            Ref(Kind::Client),
            "the client this person works for",
        ),
        field("email", Text, "e-mail address"),
        field("phone", Text, "phone number"),
        field("job_title", Text, "role at the client"),
    ],
    states: &["active", "inactive"],
    initial: &["active"],
    transitions: ACTIVE_INACTIVE,
    title_field: "name",
};

pub static OPPORTUNITY: KindSchema = KindSchema {
    kind: Kind::Opportunity,
    label: "opportunity",
    doc: "A deal in the pipeline; its state is the sales stage.",
    fields: &[
        required("name", Text, "deal name or quotation number"),
        required("client", Ref(Kind::Client), "prospective client"),
        field("owner", Ref(Kind::Employee), "salesperson"),
        field(
            "service_line",
            Text,
            "service line, which picks the project template",
        ),
        field("currency", Currency, "currency of the amount"),
        field(
            "amount",
            Money {
                currency_field: "currency",
            },
            "expected value before tax",
        ),
        field("discount", Decimal, "discount in percent off list prices"),
        field("margin", Decimal, "expected margin in percent"),
        field("payment_terms", Text, "payment terms offered"),
        field(
            "terms",
            Enum(TERMS),
            "whether the deal uses the firm's standard terms",
        ),
        field(
            "subcontractors",
            Bool,
            "true when part of the work is subcontracted",
        ),
        field("region", Text, "sales region"),
        field("close_date", Date, "expected or actual close date"),
        field("won_at", DateTime, "when the deal was won"),
        field("signed_at", DateTime, "when the client signed"),
        field(
            "reference",
            Text,
            "number in the source system, such as a quotation number",
        ),
    ],
    states: &[
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "won",
        "lost",
    ],
    initial: &["lead", "qualified", "proposal"],
    transitions: &[
        go("lead", "qualified"),
        go("lead", "lost"),
        go("qualified", "proposal"),
        go("qualified", "lost"),
        go("proposal", "negotiation"),
        go("proposal", "won"),
        go("proposal", "lost"),
        go("negotiation", "proposal"),
        go("negotiation", "won"),
        go("negotiation", "lost"),
        go("lost", "lead"),
    ],
    title_field: "name",
};

pub static CONTRACT: KindSchema = KindSchema {
    kind: Kind::Contract,
    label: "contract",
    doc: "A contract or statement of work: how the work is billed, at what rates, within which \
          limits.",
    fields: &[
        required("name", Text, "contract name or order number"),
        required("client", Ref(Kind::Client), "the client billed"),
        required(
            "billing_model",
            Enum(CONTRACT_BILLING_MODELS),
            "how the work is billed",
        ),
        required(
            "currency",
            Currency,
            "currency of every amount on the contract",
        ),
        field(
            "opportunity",
            Ref(Kind::Opportunity),
            "the deal this contract came from",
        ),
        field(
            "reference",
            Text,
            "number in the source system, such as a sale order number",
        ),
        field(
            "amount",
            Money {
                currency_field: "currency",
            },
            "contract value before tax",
        ),
        field(
            "cap",
            Money {
                currency_field: "currency",
            },
            "not-to-exceed amount",
        ),
        field(
            "rate_card",
            Json,
            "hourly rates: {\"roles\": {role: rate}, \"people\": {id: rate}}",
        ),
        field("payment_terms", Text, "payment terms, such as `30 days`"),
        field(
            "terms",
            Enum(TERMS),
            "whether the contract uses the firm's standard terms",
        ),
        field(
            "subcontractors",
            Bool,
            "true when part of the work is subcontracted",
        ),
        field("po_number", Text, "client purchase-order number"),
        field(
            "po_amount",
            Money {
                currency_field: "currency",
            },
            "purchase-order amount",
        ),
        field(
            "po_valid_until",
            Date,
            "last day the purchase order may be billed against",
        ),
        field("billing_rules", Json, "contract-specific billing rules"),
        field(
            "billing_period",
            Enum(&["weekly", "monthly", "milestone", "completion"]),
            "how often the contract is invoiced",
        ),
        field("start_date", Date, "first day of the contract"),
        field("end_date", Date, "last day of the contract"),
        field("owner", Ref(Kind::Employee), "delivery owner"),
        field("service_line", Text, "service line"),
    ],
    states: &["draft", "active", "suspended", "closed", "cancelled"],
    initial: &["draft"],
    transitions: &[
        go("draft", "active"),
        go("draft", "cancelled"),
        go("active", "suspended"),
        go("suspended", "active"),
        go("active", "closed"),
        go("suspended", "closed"),
        go("closed", "active"),
    ],
    title_field: "name",
};

pub static CONTRACT_LINE: KindSchema = KindSchema {
    kind: Kind::ContractLine,
    label: "contract line",
    doc: "One sold service on a contract, with its ordered, delivered and invoiced quantities.",
    fields: &[
        required("contract", Ref(Kind::Contract), "the contract"),
        required("name", Text, "description"),
        required(
            "billing_model",
            Enum(LINE_BILLING_MODELS),
            "how this line is billed",
        ),
        required("currency", Currency, "currency of the unit price"),
        field("service", Ref(Kind::Service), "the service sold"),
        field("quantity", Decimal, "quantity ordered"),
        field("unit", Text, "unit of measure, such as `Hours`"),
        field(
            "unit_price",
            Money {
                currency_field: "currency",
            },
            "price per unit before discount",
        ),
        field("discount", Decimal, "discount in percent"),
        field("tax_rate", Decimal, "tax rate in percent"),
        field(
            "qty_delivered",
            Decimal,
            "quantity delivered as reported by the source system",
        ),
        field(
            "qty_invoiced",
            Decimal,
            "quantity invoiced as reported by the source system",
        ),
        field(
            "project",
            Ref(Kind::Project),
            "project that delivers the line",
        ),
        field("task", Ref(Kind::Task), "task that delivers the line"),
        field(
            "schedule",
            Json,
            "fixed-fee installments: [{\"due_on\": \"2026-11-15\", \"amount\": \"3000\", \"description\": ...}]",
        ),
        field(
            "cadence",
            Enum(&["weekly", "monthly", "quarterly", "yearly"]),
            "how often a retainer bills; monthly when unset",
        ),
        field(
            "retainer_start",
            Date,
            "first day of a retainer's first period; the contract's start date when unset",
        ),
        field(
            "retainer_end",
            Date,
            "last day a retainer period may start; the contract's end date when unset",
        ),
        field(
            "overage_rate",
            Money {
                currency_field: "currency",
            },
            "price per hour of prepaid-hours time beyond the block",
        ),
        field(
            "tax_category",
            Text,
            "service category looked up in the tax table, such as `training`",
        ),
    ],
    states: &["open", "closed", "cancelled"],
    initial: &["open"],
    transitions: &[
        go("open", "closed"),
        go("closed", "open"),
        go("open", "cancelled"),
    ],
    title_field: "name",
};

pub static SERVICE: KindSchema = KindSchema {
    kind: Kind::Service,
    label: "service",
    doc: "A service the firm sells, with its default billing model.",
    fields: &[
        required("name", Text, "service name"),
        field("code", Text, "internal reference"),
        field(
            "billing_model",
            Enum(LINE_BILLING_MODELS),
            "default billing model",
        ),
        field("unit", Text, "unit of measure"),
        field("currency", Currency, "currency of the list price"),
        field(
            "list_price",
            Money {
                currency_field: "currency",
            },
            "list price per unit",
        ),
        field("service_line", Text, "service line"),
        field("can_be_expensed", Bool, "true for expense categories"),
    ],
    states: &["active", "inactive"],
    initial: &["active"],
    transitions: ACTIVE_INACTIVE,
    title_field: "name",
};

pub static PROJECT: KindSchema = KindSchema {
    kind: Kind::Project,
    label: "project",
    doc: "A delivery project.",
    fields: &[
        required("name", Text, "project name"),
        field("client", Ref(Kind::Client), "client the project is for"),
        field(
            "contract",
            Ref(Kind::Contract),
            "contract that funds the project",
        ),
        field("owner", Ref(Kind::Employee), "project manager"),
        field("currency", Currency, "currency of the budget"),
        field(
            "budget",
            Money {
                currency_field: "currency",
            },
            "budget",
        ),
        field("budget_hours", Decimal, "budgeted hours"),
        field("start_date", Date, "planned start"),
        field("end_date", Date, "planned end"),
        field("service_line", Text, "service line"),
        field(
            "billable",
            Bool,
            "true when time on the project can be billed",
        ),
        field(
            "calendar",
            Ref(Kind::WorkCalendar),
            "working calendar of the project",
        ),
        field(
            "opportunity",
            Ref(Kind::Opportunity),
            "the deal whose handoff created the project",
        ),
        field(
            "template",
            Text,
            "service line of the project template it was created from",
        ),
        field(
            "kickoff_at",
            DateTime,
            "when the project kicked off: its kickoff task was done or it became active",
        ),
    ],
    states: &["planned", "active", "on_hold", "closed", "cancelled"],
    initial: &["planned", "active"],
    transitions: &[
        go("planned", "active"),
        go("planned", "cancelled"),
        go("active", "on_hold"),
        go("on_hold", "active"),
        go("active", "closed"),
        go("on_hold", "closed"),
        go("on_hold", "cancelled"),
        go("closed", "active"),
    ],
    title_field: "name",
};

pub static TASK: KindSchema = KindSchema {
    kind: Kind::Task,
    label: "task",
    doc: "A unit of work in a project.",
    fields: &[
        required("name", Text, "task name"),
        field("project", Ref(Kind::Project), "the project"),
        field("assignees", RefList(Kind::Employee), "people assigned"),
        field(
            "milestone",
            Ref(Kind::Milestone),
            "milestone the task counts towards",
        ),
        field(
            "contract_line",
            Ref(Kind::ContractLine),
            "contract line the task bills to",
        ),
        field("deadline", Date, "due date"),
        field("planned_hours", Decimal, "planned effort in hours"),
        field("stage", Text, "stage name in the source system"),
        field("priority", Enum(&["normal", "high"]), "priority"),
    ],
    states: &["open", "in_progress", "done", "cancelled"],
    initial: &["open", "in_progress"],
    transitions: &[
        go("open", "in_progress"),
        go("open", "done"),
        go("in_progress", "open"),
        go("in_progress", "done"),
        go("done", "in_progress"),
        go("done", "open"),
        go("open", "cancelled"),
        go("in_progress", "cancelled"),
        go("cancelled", "open"),
    ],
    title_field: "name",
};

pub static MILESTONE: KindSchema = KindSchema {
    kind: Kind::Milestone,
    label: "milestone",
    doc: "A contractual milestone: reached by the team, accepted by the client, then invoiced.",
    fields: &[
        required("name", Text, "milestone name"),
        required("project", Ref(Kind::Project), "the project"),
        field("deadline", Date, "due date"),
        field(
            "contract_line",
            Ref(Kind::ContractLine),
            "contract line billed at this milestone",
        ),
        field("currency", Currency, "currency of the amount"),
        field(
            "amount",
            Money {
                currency_field: "currency",
            },
            "amount billed when accepted",
        ),
        field(
            "percentage",
            Decimal,
            "share of the contract line billed, in percent",
        ),
        field("reached_on", Date, "day the milestone was reached"),
        field("accepted_on", Date, "day the client accepted it"),
    ],
    states: &["planned", "reached", "accepted", "invoiced"],
    initial: &["planned"],
    transitions: &[
        go("planned", "reached"),
        go("reached", "planned"),
        go("reached", "accepted"),
        go("accepted", "invoiced"),
        go("invoiced", "accepted"),
    ],
    title_field: "name",
};

pub static EMPLOYEE: KindSchema = KindSchema {
    kind: Kind::Employee,
    label: "employee",
    doc: "A person who works for the firm.",
    fields: &[
        required("name", Text, "full name"),
        field("email", Text, "work e-mail address"),
        field(
            "manager",
            Ref(Kind::Employee),
            "direct manager, who approves time and expenses",
        ),
        field("role", Text, "job title or billing role"),
        field("department", Text, "department"),
        field("skills", TextList, "skills used for staffing"),
        field("currency", Currency, "currency of the cost rate"),
        field(
            "cost_rate",
            Money {
                currency_field: "currency",
            },
            "cost per hour",
        ),
        field("country", Country, "country of employment"),
        field(
            "calendar",
            Ref(Kind::WorkCalendar),
            "working calendar giving daily capacity",
        ),
        field(
            "timezone",
            Timezone,
            "time zone of the person's working day",
        ),
        field("user_login", Text, "login of the person's user account"),
        field("away_from", Date, "first day the person is away"),
        field("away_until", Date, "last day the person is away"),
        field(
            "delegate",
            Ref(Kind::Employee),
            "who decides approvals for the person while they are away",
        ),
    ],
    states: &["active", "inactive"],
    initial: &["active"],
    transitions: ACTIVE_INACTIVE,
    title_field: "name",
};

pub static WORK_CALENDAR: KindSchema = KindSchema {
    kind: Kind::WorkCalendar,
    label: "work calendar",
    doc: "Working hours per weekday and public holidays.",
    fields: &[
        required("name", Text, "calendar name"),
        field("timezone", Timezone, "time zone of the hours"),
        field(
            "hours_per_day",
            Decimal,
            "average working hours of a working day",
        ),
        field(
            "week_hours",
            Json,
            "hours per weekday: {\"mon\": \"8\", ..., \"sun\": \"0\"}",
        ),
        field(
            "holidays",
            Json,
            "public holidays: [{\"date\": \"2026-12-25\", \"name\": ...}]",
        ),
    ],
    states: &["active", "inactive"],
    initial: &["active"],
    transitions: ACTIVE_INACTIVE,
    title_field: "name",
};

pub static LEAVE: KindSchema = KindSchema {
    kind: Kind::Leave,
    label: "leave",
    doc: "Time off of one employee.",
    fields: &[
        required("employee", Ref(Kind::Employee), "the person on leave"),
        required("start_date", Date, "first day"),
        required("end_date", Date, "last day"),
        field("leave_type", Text, "type, such as `Paid Time Off`"),
        field("hours", Decimal, "working hours taken"),
        field("days", Decimal, "working days taken"),
        field("reason", Text, "description"),
    ],
    states: &["requested", "approved", "refused", "cancelled"],
    initial: &["requested"],
    transitions: &[
        go("requested", "approved"),
        go("requested", "refused"),
        go("requested", "cancelled"),
        go("approved", "cancelled"),
    ],
    title_field: "reason",
};

pub static ALLOCATION: KindSchema = KindSchema {
    kind: Kind::Allocation,
    label: "allocation",
    doc: "A person, or an open role when no person is set, booked on a project.",
    fields: &[
        required("project", Ref(Kind::Project), "the project"),
        field(
            "employee",
            Ref(Kind::Employee),
            "the person booked; empty for an open role",
        ),
        field("role", Text, "project role"),
        field("required_skills", TextList, "skills the role needs"),
        required("hours_per_week", Decimal, "booked hours per week"),
        required("start_date", Date, "first day"),
        field("end_date", Date, "last day"),
    ],
    states: &["planned", "confirmed", "ended"],
    initial: &["planned", "confirmed"],
    transitions: &[
        go("planned", "confirmed"),
        go("confirmed", "planned"),
        go("planned", "ended"),
        go("confirmed", "ended"),
    ],
    title_field: "role",
};

const ENTRY_STATES: &[&str] = &[
    "draft",
    "submitted",
    "approved",
    "rejected",
    "invoiced",
    "written_off",
];
const ENTRY_TRANSITIONS: &[Transition] = &[
    go("draft", "submitted"),
    go("submitted", "draft"),
    go("submitted", "approved"),
    go("submitted", "rejected"),
    go("rejected", "draft"),
    go("rejected", "submitted"),
    go("approved", "invoiced"),
    go("invoiced", "approved"),
    go("approved", "written_off"),
];

pub static TIMESHEET: KindSchema = KindSchema {
    kind: Kind::Timesheet,
    label: "timesheet entry",
    doc: "Hours one person worked on one day.",
    fields: &[
        required("employee", Ref(Kind::Employee), "who worked"),
        required("date", Date, "the local day worked"),
        required("hours", Decimal, "hours worked, at most 24"),
        field("project", Ref(Kind::Project), "project worked on"),
        field("task", Ref(Kind::Task), "task worked on"),
        field(
            "contract_line",
            Ref(Kind::ContractLine),
            "contract line the time bills to",
        ),
        field(
            "billable",
            Bool,
            "true when the time can be billed to the client",
        ),
        field("role", Text, "billing role for the rate card"),
        field("notes", Text, "description of the work"),
        field(
            "started_at",
            DateTime,
            "start of the work, when tracked by a timer",
        ),
        field(
            "ended_at",
            DateTime,
            "end of the work, when tracked by a timer",
        ),
        field(
            "submitted_by",
            Ref(Kind::Employee),
            "who submitted the entry for approval",
        ),
        field("approved_by", Ref(Kind::Employee), "who approved the entry"),
        field(
            "invoice",
            Ref(Kind::Invoice),
            "invoice that billed the entry",
        ),
    ],
    states: ENTRY_STATES,
    initial: &["draft", "submitted"],
    transitions: ENTRY_TRANSITIONS,
    title_field: "notes",
};

pub static EXPENSE: KindSchema = KindSchema {
    kind: Kind::Expense,
    label: "expense",
    doc: "A cost one person paid for the firm or a client.",
    fields: &[
        required("employee", Ref(Kind::Employee), "who paid"),
        required("date", Date, "day of the expense"),
        required("category", Text, "expense category, such as `Meals`"),
        required("currency", Currency, "currency paid in"),
        required(
            "amount",
            Money {
                currency_field: "currency",
            },
            "amount paid, taxes included",
        ),
        field("description", Text, "what was bought"),
        field("project", Ref(Kind::Project), "project the cost belongs to"),
        field("country", Country, "country where the cost was incurred"),
        field("receipt", Text, "reference or checksum of the receipt"),
        field("vendor", Text, "seller named on the receipt"),
        field(
            "billable",
            Bool,
            "true when the cost is rebilled to the client",
        ),
        field("policy_result", Text, "result of the expense policy check"),
        field(
            "submitted_by",
            Ref(Kind::Employee),
            "who submitted the expense for approval",
        ),
        field(
            "approved_by",
            Ref(Kind::Employee),
            "who approved the expense",
        ),
        field(
            "invoice",
            Ref(Kind::Invoice),
            "invoice that rebilled the expense",
        ),
    ],
    states: ENTRY_STATES,
    initial: &["draft", "submitted"],
    transitions: ENTRY_TRANSITIONS,
    title_field: "description",
};

pub const APPROVAL_KINDS: &[&str] = &[
    "proposal",
    "timesheet_week",
    "expense",
    "discount",
    "payment_terms",
    "staffing_exception",
    "write_off",
    "invoice_release",
    "billing_override",
    "subcontract",
];

pub static APPROVAL_REQUEST: KindSchema = KindSchema {
    kind: Kind::ApprovalRequest,
    label: "approval request",
    doc: "A request for a decision under an approval policy.",
    fields: &[
        required(
            "request_kind",
            Enum(APPROVAL_KINDS),
            "what is to be approved",
        ),
        field("subject_kind", Text, SUBJECT_KIND_DOC),
        field("subject_id", Text, SUBJECT_ID_DOC),
        field("requester", Ref(Kind::Employee), "who asks"),
        field("currency", Currency, "currency of the amount"),
        field(
            "amount",
            Money {
                currency_field: "currency",
            },
            "amount at stake",
        ),
        field("policy", Text, "approval policy that routes the request"),
        field(
            "policy_version",
            Integer,
            "version of the policy the request started under",
        ),
        field("summary", Text, "what is being decided"),
        field("decided_at", DateTime, "when the final decision was made"),
        field(
            "decided_by",
            Ref(Kind::Employee),
            "who made the final decision",
        ),
        field(
            "waiting_since",
            DateTime,
            "when the work under review was done or submitted; backlog ages count from it",
        ),
        field(
            "key",
            Text,
            "what the request is about, such as `expense:<id>`; one open request per key",
        ),
        field(
            "period",
            Text,
            "ISO week of a timesheet week, such as `2026-W49`, or month of a billing override, such as `2026-11`",
        ),
        field("hours", Decimal, "hours at stake, for time"),
        field(
            "facts",
            Json,
            "the values the policy's decision table tested",
        ),
        field(
            "routing",
            Json,
            "the rows that matched and how each step found its approver",
        ),
    ],
    states: &["pending", "approved", "rejected", "cancelled"],
    initial: &["pending"],
    transitions: &[
        go("pending", "approved"),
        go("pending", "rejected"),
        go("pending", "cancelled"),
    ],
    title_field: "summary",
};

pub static APPROVAL_STEP: KindSchema = KindSchema {
    kind: Kind::ApprovalStep,
    label: "approval step",
    doc: "One step of an approval request.",
    fields: &[
        required("request", Ref(Kind::ApprovalRequest), "the request"),
        required("position", Integer, "order of the step, from 1"),
        field(
            "approver_rule",
            Text,
            "who may approve: a role, `manager`, or a person",
        ),
        field(
            "approver",
            Ref(Kind::Employee),
            "the person who may approve",
        ),
        field("decided_by", Ref(Kind::Employee), "who decided"),
        field("comment", Text, "the decision's comment"),
        field("deadline", DateTime, "when the step escalates"),
        field("name", Text, "the step's name in the policy"),
        field(
            "stage",
            Integer,
            "steps of one stage are open together; stages follow each other",
        ),
        field(
            "approvals_needed",
            Integer,
            "distinct approvals the step needs",
        ),
        field(
            "candidates",
            Json,
            "everyone who may decide a role step: [employee id, ...]",
        ),
        field(
            "decisions",
            Json,
            "decisions so far: [{\"by\", \"verdict\", \"at\", \"comment\", \"on_behalf_of\"}]",
        ),
        field(
            "delegated_from",
            Ref(Kind::Employee),
            "the approver who is away and whose delegate decides",
        ),
        field(
            "escalated_from",
            Ref(Kind::ApprovalStep),
            "the overdue step this one replaced",
        ),
        field(
            "level",
            Integer,
            "escalations above the first approver, from 0",
        ),
        field(
            "opened_at",
            DateTime,
            "when the step began to wait for a decision",
        ),
        field("decided_at", DateTime, "when the step was decided"),
        field("remind_at", DateTime, "when the approver is reminded"),
        field("reminded_at", DateTime, "when the approver was reminded"),
        field("notes", Json, "how the approver was found: [text, ...]"),
    ],
    states: &[
        "waiting",
        "pending",
        "approved",
        "rejected",
        "skipped",
        "escalated",
    ],
    initial: &["waiting", "pending", "skipped"],
    transitions: &[
        go("waiting", "pending"),
        go("pending", "approved"),
        go("pending", "rejected"),
        go("pending", "escalated"),
        go("waiting", "skipped"),
        go("pending", "skipped"),
    ],
    title_field: "approver_rule",
};

pub static INVOICE: KindSchema = KindSchema {
    kind: Kind::Invoice,
    label: "invoice",
    doc: "A customer invoice or credit note.",
    fields: &[
        required("client", Ref(Kind::Client), "the client billed"),
        required("currency", Currency, "invoice currency"),
        field(
            "move_type",
            Enum(&["invoice", "credit_note"]),
            "invoice or credit note",
        ),
        field("number", Text, "invoice number"),
        field("contract", Ref(Kind::Contract), "contract billed"),
        field("issue_date", Date, "invoice date"),
        field("due_date", Date, "payment due date"),
        field("period_start", Date, "first day of the billing period"),
        field("period_end", Date, "last day of the billing period"),
        field(
            "rounding",
            Enum(&["per_line", "per_document"]),
            "where amounts are rounded",
        ),
        field(
            "untaxed",
            Money {
                currency_field: "currency",
            },
            "total before tax",
        ),
        field(
            "tax",
            Money {
                currency_field: "currency",
            },
            "total tax",
        ),
        field(
            "total",
            Money {
                currency_field: "currency",
            },
            "total with tax",
        ),
        field(
            "residual",
            Money {
                currency_field: "currency",
            },
            "amount still to be paid",
        ),
        field(
            "reverses",
            Ref(Kind::Invoice),
            "invoice this credit note reverses",
        ),
        field(
            "payment_state",
            Enum(&["not_paid", "in_payment", "partial", "paid", "reversed"]),
            "payment status",
        ),
        field(
            "po_number",
            Text,
            "client purchase-order number the invoice is billed against",
        ),
        field(
            "notes",
            Text,
            "mentions the invoice must carry, such as the reverse charge",
        ),
        field(
            "override_request",
            Ref(Kind::ApprovalRequest),
            "approved billing override that let the invoice be drafted despite blockers",
        ),
    ],
    states: &["draft", "pending_approval", "released", "paid", "cancelled"],
    initial: &["draft"],
    transitions: &[
        go("draft", "pending_approval"),
        go("pending_approval", "draft"),
        go("pending_approval", "released"),
        go("released", "paid"),
        go("draft", "cancelled"),
    ],
    title_field: "number",
};

pub static INVOICE_LINE: KindSchema = KindSchema {
    kind: Kind::InvoiceLine,
    label: "invoice line",
    doc: "One line of an invoice, traced to the records it bills.",
    fields: &[
        required("invoice", Ref(Kind::Invoice), "the invoice"),
        required("description", Text, "line text"),
        required(
            "quantity",
            Decimal,
            "quantity billed; negative on credit notes",
        ),
        required("currency", Currency, "currency of the amounts"),
        required(
            "unit_price",
            Money {
                currency_field: "currency",
            },
            "price per unit",
        ),
        field("service", Ref(Kind::Service), "service billed"),
        field(
            "contract_line",
            Ref(Kind::ContractLine),
            "contract line billed",
        ),
        field("unit", Text, "unit of measure"),
        field("discount", Decimal, "discount in percent"),
        field("tax_rate", Decimal, "tax rate in percent"),
        field(
            "subtotal",
            Money {
                currency_field: "currency",
            },
            "amount before tax",
        ),
        field(
            "tax",
            Money {
                currency_field: "currency",
            },
            "tax amount",
        ),
        field(
            "total",
            Money {
                currency_field: "currency",
            },
            "amount with tax",
        ),
        field(
            "sources",
            Json,
            "records billed: [{\"kind\", \"id\", \"quantity\"}]",
        ),
    ],
    states: &["active"],
    initial: &["active"],
    transitions: &[],
    title_field: "description",
};

pub static ACTIVITY: KindSchema = KindSchema {
    kind: Kind::Activity,
    label: "activity",
    doc: "A to-do for a person or a role, with a deadline.",
    fields: &[
        required("title", Text, "what to do"),
        field("assignee", Ref(Kind::Employee), "person who should do it"),
        field(
            "role",
            Text,
            "role that should do it when no person is named",
        ),
        field("due_date", Date, "deadline"),
        field("subject_kind", Text, SUBJECT_KIND_DOC),
        field("subject_id", Text, SUBJECT_ID_DOC),
        field("note", Text, "details"),
    ],
    states: &["open", "done", "cancelled"],
    initial: &["open"],
    transitions: &[
        go("open", "done"),
        go("open", "cancelled"),
        go("done", "open"),
    ],
    title_field: "title",
};

pub static NOTIFICATION: KindSchema = KindSchema {
    kind: Kind::Notification,
    label: "notification",
    doc: "A message to a person or role.",
    fields: &[
        required("message", Text, "the message"),
        field("recipient", Ref(Kind::Employee), "person notified"),
        field("role", Text, "role notified when no person is named"),
        field(
            "channel",
            Enum(&["in_app", "email", "chat"]),
            "delivery channel",
        ),
        field("subject_kind", Text, SUBJECT_KIND_DOC),
        field("subject_id", Text, SUBJECT_ID_DOC),
    ],
    states: &["unread", "read"],
    initial: &["unread"],
    transitions: &[go("unread", "read"), go("read", "unread")],
    title_field: "message",
};

pub static TICKET: KindSchema = KindSchema {
    kind: Kind::Ticket,
    label: "support ticket",
    doc: "A support request under a service-level agreement.",
    fields: &[
        required("title", Text, "summary"),
        field("client", Ref(Kind::Client), "client who raised it"),
        field("project", Ref(Kind::Project), "managed-services project"),
        field("assignee", Ref(Kind::Employee), "person working on it"),
        field(
            "priority",
            Enum(&["low", "normal", "high", "urgent"]),
            "priority",
        ),
        field("opened_at", DateTime, "when it was raised"),
        field("sla_due_at", DateTime, "when the SLA requires a resolution"),
        field("resolved_at", DateTime, "when it was resolved"),
    ],
    states: &["open", "in_progress", "resolved", "closed"],
    initial: &["open"],
    transitions: &[
        go("open", "in_progress"),
        go("in_progress", "open"),
        go("open", "resolved"),
        go("in_progress", "resolved"),
        go("resolved", "in_progress"),
        go("resolved", "closed"),
    ],
    title_field: "title",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_consistent() {
        for kind in Kind::ALL {
            let schema = kind.schema();
            assert_eq!(schema.kind, *kind, "schema of {kind} names another kind");
            assert!(!schema.states.is_empty(), "{kind} has no states");
            for state in schema.initial {
                assert!(
                    schema.has_state(state),
                    "{kind}: initial state {state} is unknown"
                );
            }
            for t in schema.transitions {
                assert!(
                    schema.has_state(t.from),
                    "{kind}: transition from {}",
                    t.from
                );
                assert!(schema.has_state(t.to), "{kind}: transition to {}", t.to);
            }
            let mut names = schema.field_names();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                schema.fields.len(),
                "{kind} repeats a field name"
            );
            for f in schema.fields {
                if let crate::schema::FieldType::Money { currency_field } = f.ty {
                    assert!(
                        schema.field(currency_field).is_some(),
                        "{kind}.{} names a missing currency field",
                        f.name
                    );
                }
                assert!(
                    !["id", "kind", "state", "attributes", "version"].contains(&f.name),
                    "{kind}.{} shadows a record property",
                    f.name
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()), Some(*kind));
            assert_eq!(Kind::from_plural(kind.plural()), Some(*kind));
        }
    }
}
