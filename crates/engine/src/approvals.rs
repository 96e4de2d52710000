//! Approvals in the command path: opening requests routed by their policy, deciding steps,
//! reminding and escalating on deadlines, and the guards that let some transitions happen
//! only through an approved request.
//!
//! Requests and steps are ordinary records, so every change is an event that rules can react
//! to. All of it runs inside the caller's write transaction; a decision and everything it
//! changes commit together.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_approvals::decide::{self, Decision, Refusal, StepView, Verdict};
use steward_approvals::policy::{ApprovalConfig, Approver, Policy, StepTemplate};
use steward_approvals::route::{self, Assignment, Directory, Person, RequestInfo, Router};
use steward_domain::calendar::Calendar;
use steward_domain::finding::RaisedFinding;
use steward_domain::{
    Actor, ActorKind, Command, CommandContext, DomainError, Kind, Record, RecordRef, Severity,
};
use steward_store::{PolicyVersion, ReadTx, RecordQuery, StoreError, WriteTx};

use crate::error::EngineError;
use crate::pipeline::{Env, apply};

/// The actor of every change the approvals subsystem makes.
pub const ACTOR: &str = "approvals";

/// The rules that remind approvers and escalate overdue steps, on the scheduler's timers.
pub const BUILTIN_RULES: &str = r#"
rules:
  - id: approval-reminder
    name: Remind the approver of a step before its deadline
    trigger: { on: time, record: approval_step, field: remind_at, offset: "0 minutes" }
    condition: record.state == "pending"
    actions:
      - approval_step: remind
  - id: approval-escalation
    name: Escalate a step whose deadline passed
    trigger: { on: time, record: approval_step, field: deadline, offset: "0 minutes" }
    condition: record.state == "pending"
    actions:
      - approval_step: escalate
"#;

/// The name under which the built-in rules are installed.
pub const BUILTIN_ORIGIN: &str = "builtin:approvals";

/// The policies in force, with every stored version for requests that began under an older
/// one.
#[derive(Clone, Debug, Default)]
pub struct Approvals {
    pub config: ApprovalConfig,
    history: HashMap<(String, i64), Arc<Policy>>,
}

impl Approvals {
    pub fn new(config: ApprovalConfig, history: HashMap<(String, i64), Arc<Policy>>) -> Self {
        Approvals { config, history }
    }

    /// Returns the policy a request started under.
    pub fn policy_version(&self, id: &str, version: i64) -> Option<Arc<Policy>> {
        self.history
            .get(&(id.to_string(), version))
            .cloned()
            .or_else(|| {
                self.config
                    .policy(id)
                    .filter(|p| p.version == version)
                    .cloned()
            })
    }
}

/// Compiles a stored policy version back into a policy.
pub fn compile_version(version: &PolicyVersion) -> Result<Policy, String> {
    // JSON is YAML, so the stored definition reads back through the policy checker.
    let text = format!("policies:\n  - {}\n", version.definition);
    let (config, diagnostics) = steward_approvals::compile_sources(&[(
        version.origin.trim_start_matches("file:").to_string(),
        text,
    )]);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| !d.message.contains("declares no role"))
        .map(|d| d.message.clone())
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let policy = config
        .policies
        .first()
        .ok_or_else(|| "the stored definition holds no policy".to_string())?;
    let mut policy = (**policy).clone();
    policy.version = version.version;
    policy.origin = version.origin.clone();
    Ok(policy)
}

/// The store's employees in the form routing uses, each read once per transaction.
pub struct StoreDirectory<'a> {
    tx: &'a dyn ReadTx,
    cache: RefCell<HashMap<String, Option<Person>>>,
    found: RefCell<HashMap<String, Vec<Person>>>,
}

impl<'a> StoreDirectory<'a> {
    pub fn new(tx: &'a dyn ReadTx) -> Self {
        StoreDirectory {
            tx,
            cache: RefCell::new(HashMap::new()),
            found: RefCell::new(HashMap::new()),
        }
    }

    fn load(&self, id: &str) -> Option<Person> {
        let record = self.tx.record(Kind::Employee, id).ok().flatten()?;
        let mut away = Vec::new();
        if let (Some(from), Some(until)) = (record.date("away_from"), record.date("away_until")) {
            away.push((from, until));
        } else if let Some(until) = record.date("away_until") {
            away.push((NaiveDate::MIN, until));
        }
        let leaves = self
            .tx
            .records(&RecordQuery {
                kind: Some(Kind::Leave),
                state: Some("approved".into()),
                fields: vec![("employee".into(), Value::String(id.to_string()))],
                limit: 500,
                ..RecordQuery::default()
            })
            .map(|page| page.items)
            .unwrap_or_default();
        for leave in leaves {
            if let (Some(from), Some(to)) = (leave.date("start_date"), leave.date("end_date")) {
                away.push((from, to));
            }
        }
        let calendar = record
            .ref_id("calendar")
            .and_then(|c| self.tx.record(Kind::WorkCalendar, c).ok().flatten())
            .map(|c| Calendar::from_record(&c));
        Some(Person {
            id: record.id.clone(),
            name: record.text("name").unwrap_or(&record.id).to_string(),
            email: record.text("email").map(str::to_string),
            manager: record.ref_id("manager").map(str::to_string),
            active: record.state == "active",
            away,
            delegate: record.ref_id("delegate").map(str::to_string),
            calendar,
            title: record.text("role").map(str::to_string),
        })
    }
}

impl Directory for StoreDirectory<'_> {
    fn person(&self, id: &str) -> Option<Person> {
        if let Some(found) = self.cache.borrow().get(id) {
            return found.clone();
        }
        let person = self.load(id);
        self.cache
            .borrow_mut()
            .insert(id.to_string(), person.clone());
        person
    }

    fn find(&self, key: &str) -> Vec<Person> {
        let key = key.trim();
        if let Some(person) = self.person(key) {
            return vec![person];
        }
        if let Some(found) = self.found.borrow().get(key) {
            return found.clone();
        }
        let mut people = Vec::new();
        for field in ["email", "name", "role"] {
            let query = RecordQuery {
                kind: Some(Kind::Employee),
                fields: vec![(field.into(), Value::String(key.to_string()))],
                limit: 200,
                ..RecordQuery::default()
            };
            if let Ok(page) = self.tx.records(&query) {
                people.extend(page.items.iter().filter_map(|r| self.person(&r.id)));
            }
            if !people.is_empty() {
                break;
            }
        }
        self.found
            .borrow_mut()
            .insert(key.to_string(), people.clone());
        people
    }
}

/// How to open a request.
#[derive(Clone, Debug, Default)]
pub struct OpenRequest {
    pub kind: String,
    pub subject: Option<RecordRef>,
    pub requester: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    /// Facts to test besides those read from the subject; these win.
    pub facts: Map<String, Value>,
    pub summary: Option<String>,
    /// The billing month (`YYYY-MM`) a `billing_override` lifts the blockers of; the request
    /// is about the contract and that month only.
    pub period: Option<String>,
}

/// The result of opening a request.
#[derive(Clone, Debug, Serialize)]
pub struct Opened {
    pub request: Record,
    /// False when an open request about the same thing already existed and was joined.
    pub created: bool,
}

fn system_context(cause: &CommandContext) -> CommandContext {
    CommandContext {
        actor: Actor::system(ACTOR),
        cause: cause.cause.clone(),
        correlation: cause.correlation.clone(),
        depth: cause.depth,
    }
}

fn today(env: &Env) -> NaiveDate {
    env.now.date_naive()
}

fn iso_week(day: NaiveDate) -> String {
    let week = day.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

fn week_bounds(period: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, week) = period.split_once("-W")?;
    let monday =
        NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)?;
    Some((monday, monday + chrono::Duration::days(6)))
}

/// The facts of a request of `kind` about `subject`, read from the subject.
struct Derived {
    key: String,
    subject: Option<RecordRef>,
    requester: Option<String>,
    amount: Option<Decimal>,
    currency: Option<String>,
    hours: Option<Decimal>,
    period: Option<String>,
    /// The last day of the work under review, such as an expense's date or a week's Sunday.
    day: Option<NaiveDate>,
    facts: Map<String, Value>,
    summary: String,
}

fn text_fact(facts: &mut Map<String, Value>, record: &Record, fields: &[&str]) {
    for field in fields {
        if let Some(value) = record.get(field)
            && !value.is_null()
        {
            facts.insert((*field).to_string(), value.clone());
        }
    }
}

fn derive(tx: &dyn ReadTx, kind: &str, subject: Option<&Record>) -> Result<Derived, EngineError> {
    let mut derived = Derived {
        key: String::new(),
        subject: subject.map(Record::reference),
        requester: None,
        amount: None,
        currency: None,
        hours: None,
        period: None,
        day: None,
        facts: Map::new(),
        summary: kind.replace('_', " "),
    };
    let Some(record) = subject else {
        return Ok(derived);
    };
    derived.key = format!("{kind}:{}:{}", record.kind, record.id);
    let name_of = |id: Option<&str>| {
        id.and_then(|id| tx.record(Kind::Employee, id).ok().flatten())
            .and_then(|e| e.text("name").map(str::to_string))
            .unwrap_or_else(|| "someone".into())
    };
    match (kind, record.kind) {
        ("timesheet_week", Kind::Timesheet | Kind::Employee) => {
            let (employee, day) = match record.kind {
                Kind::Timesheet => (
                    record.ref_id("employee").map(str::to_string),
                    record.date("date"),
                ),
                _ => (Some(record.id.clone()), None),
            };
            let employee = employee.ok_or_else(|| {
                DomainError::Invalid(format!("timesheet {} has no employee", record.id))
            })?;
            let day = day.ok_or_else(|| {
                DomainError::Invalid(
                    "a timesheet week needs a timesheet entry to tell the week".into(),
                )
            })?;
            let period = iso_week(day);
            let (hours, billable) = week_hours(tx, &employee, &period)?;
            derived.key = format!("timesheet_week:{employee}:{period}");
            derived.subject = Some(RecordRef::new(Kind::Employee, &employee));
            derived.summary = format!("Time of {} in week {period}", name_of(Some(&employee)));
            derived.requester = Some(employee);
            derived.hours = Some(hours);
            derived
                .facts
                .insert("hours".into(), Value::String(hours.to_string()));
            derived
                .facts
                .insert("billable_hours".into(), Value::String(billable.to_string()));
            derived.day = week_bounds(&period).map(|(_, sunday)| sunday);
            derived.period = Some(period);
        }
        (_, Kind::Expense) => {
            derived.day = record.date("date");
            derived.requester = record.ref_id("employee").map(str::to_string);
            derived.amount = record.decimal("amount");
            derived.currency = record.text("currency").map(str::to_string);
            text_fact(
                &mut derived.facts,
                record,
                &["category", "country", "project"],
            );
            derived.summary = format!(
                "Expense of {} {} by {} for {} on {}",
                record.text("amount").unwrap_or("?"),
                record.text("currency").unwrap_or(""),
                name_of(derived.requester.as_deref()),
                record.text("category").unwrap_or("an unnamed category"),
                record.text("date").unwrap_or("an unknown day"),
            );
        }
        (_, Kind::Opportunity | Kind::Contract) => {
            derived.requester = record.ref_id("owner").map(str::to_string);
            derived.amount = record.decimal("amount");
            derived.currency = record.text("currency").map(str::to_string);
            text_fact(
                &mut derived.facts,
                record,
                &[
                    "discount",
                    "margin",
                    "payment_terms",
                    "terms",
                    "subcontractors",
                    "region",
                    "service_line",
                    "client",
                ],
            );
            derived.summary = format!(
                "{} for {} {}",
                kind.replace('_', " "),
                record.kind.schema().label,
                record.title()
            );
        }
        (_, Kind::Invoice) => {
            derived.amount = record
                .decimal("total")
                .or_else(|| record.decimal("untaxed"));
            derived.currency = record.text("currency").map(str::to_string);
            text_fact(&mut derived.facts, record, &["client"]);
            if let Some(contract) = record
                .ref_id("contract")
                .and_then(|c| tx.record(Kind::Contract, c).ok().flatten())
            {
                derived.requester = contract.ref_id("owner").map(str::to_string);
                text_fact(&mut derived.facts, &contract, &["service_line", "terms"]);
            }
            derived.summary = format!(
                "Release of invoice {} for {} {}",
                record.text("number").unwrap_or(&record.id),
                record.text("total").unwrap_or("?"),
                record.text("currency").unwrap_or("")
            );
        }
        (_, Kind::Timesheet) => {
            derived.requester = record.ref_id("employee").map(str::to_string);
            derived.hours = record.decimal("hours");
            if let Some(hours) = derived.hours {
                derived
                    .facts
                    .insert("hours".into(), Value::String(hours.to_string()));
            }
            text_fact(&mut derived.facts, record, &["project"]);
            derived.summary = format!(
                "{} of {} h by {} on {}",
                kind.replace('_', " "),
                record.text("hours").unwrap_or("?"),
                name_of(derived.requester.as_deref()),
                record.text("date").unwrap_or("?")
            );
        }
        (_, Kind::Allocation) => {
            derived.hours = record.decimal("hours_per_week");
            text_fact(&mut derived.facts, record, &["project"]);
            derived.summary = format!(
                "{} for allocation {}",
                kind.replace('_', " "),
                record.title()
            );
        }
        _ => {
            derived.summary = format!(
                "{} for {} {}",
                kind.replace('_', " "),
                record.kind.schema().label,
                record.title()
            );
        }
    }
    if let Some(amount) = derived.amount {
        derived
            .facts
            .insert("amount".into(), Value::String(amount.to_string()));
    }
    if let Some(currency) = &derived.currency {
        derived
            .facts
            .insert("currency".into(), Value::String(currency.clone()));
    }
    Ok(derived)
}

/// Submitted and billable hours of one employee in one ISO week.
fn week_hours(
    tx: &dyn ReadTx,
    employee: &str,
    period: &str,
) -> Result<(Decimal, Decimal), EngineError> {
    let lines = week_lines(tx, employee, period, "submitted")?;
    let total = lines.iter().filter_map(|l| l.decimal("hours")).sum();
    let billable = lines
        .iter()
        .filter(|l| l.bool("billable") == Some(true))
        .filter_map(|l| l.decimal("hours"))
        .sum();
    Ok((total, billable))
}

fn week_lines(
    tx: &dyn ReadTx,
    employee: &str,
    period: &str,
    state: &str,
) -> Result<Vec<Record>, EngineError> {
    let Some((monday, sunday)) = week_bounds(period) else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let page = tx.records(&RecordQuery {
            kind: Some(Kind::Timesheet),
            state: Some(state.into()),
            fields: vec![("employee".into(), Value::String(employee.to_string()))],
            after: after.clone(),
            limit: 500,
            ..RecordQuery::default()
        })?;
        lines.extend(
            page.items
                .into_iter()
                .filter(|l| l.date("date").is_some_and(|d| monday <= d && d <= sunday)),
        );
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    Ok(lines)
}

/// Returns the open request with `key`, if any.
fn open_request_with_key(tx: &dyn ReadTx, key: &str) -> Result<Option<Record>, StoreError> {
    let page = tx.records(&RecordQuery {
        kind: Some(Kind::ApprovalRequest),
        state: Some("pending".into()),
        fields: vec![("key".into(), Value::String(key.to_string()))],
        limit: 1,
        ..RecordQuery::default()
    })?;
    Ok(page.items.into_iter().next())
}

/// Returns the steps of a request, in position order.
pub fn steps_of(tx: &dyn ReadTx, request: &str) -> Result<Vec<Record>, StoreError> {
    let page = tx.records(&RecordQuery {
        kind: Some(Kind::ApprovalStep),
        fields: vec![("request".into(), Value::String(request.to_string()))],
        limit: 1000,
        ..RecordQuery::default()
    })?;
    let mut steps = page.items;
    steps.sort_by_key(|s| {
        (
            s.integer("position").unwrap_or(0),
            s.integer("level").unwrap_or(0),
            s.created_at,
        )
    });
    Ok(steps)
}

fn money_text(amount: Decimal, currency: Option<&str>) -> Value {
    let places = currency
        .and_then(steward_domain::money::Currency::from_code)
        .map_or(2, |c| c.minor_units());
    Value::String(amount.round_dp(places).to_string())
}

/// Opens a request of `spec.kind` routed by its policy, or joins the open one about the
/// same thing. Everything it writes is checked first.
pub fn open(
    tx: &mut dyn WriteTx,
    env: &Env,
    spec: OpenRequest,
    context: &CommandContext,
) -> Result<Opened, EngineError> {
    let approvals = env.approvals;
    let Some(policy) = approvals.config.policy_for(&spec.kind).cloned() else {
        return Err(DomainError::Invalid(format!(
            "no approval policy routes requests of kind `{}`; add one to the rules folder under `policies:`",
            spec.kind
        ))
        .into());
    };
    let subject = match &spec.subject {
        Some(r) => Some(
            tx.record(r.kind, &r.id)?
                .ok_or_else(|| DomainError::NotFound {
                    kind: r.kind,
                    id: r.id.clone(),
                })?,
        ),
        None => None,
    };
    let mut derived = derive(tx, &spec.kind, subject.as_ref())?;
    if derived.key.is_empty() {
        derived.key = format!("{}:{}", spec.kind, steward_domain::new_id());
    }
    if let Some(period) = crate::billing::override_period(&spec, subject.as_ref())? {
        derived.key = format!("{}:{period}", derived.key);
        derived.summary = format!("{} for {period}", derived.summary);
        derived.period = Some(period);
    }
    if let Some(existing) = open_request_with_key(tx, &derived.key)? {
        // New time in a week already under review joins its request.
        if derived.hours.is_some() && existing.decimal("hours") != derived.hours {
            let mut fields = Map::new();
            fields.insert(
                "hours".into(),
                Value::String(derived.hours.unwrap_or_default().to_string()),
            );
            let mut facts = existing
                .get("facts")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            facts.extend(derived.facts.clone());
            fields.insert("facts".into(), Value::Object(facts));
            let outcome = apply(
                tx,
                env,
                Command::Update {
                    kind: Kind::ApprovalRequest,
                    id: existing.id.clone(),
                    expected_version: None,
                    state: None,
                    fields,
                    attributes: Map::new(),
                },
                system_context(context),
            )?;
            return Ok(Opened {
                request: outcome.record.unwrap_or(existing),
                created: false,
            });
        }
        return Ok(Opened {
            request: existing,
            created: false,
        });
    }
    let requester = spec.requester.clone().or(derived.requester.clone());
    let amount = spec.amount.or(derived.amount);
    let currency = spec.currency.clone().or(derived.currency.clone());
    let mut facts = derived.facts.clone();
    facts.insert("kind".into(), Value::String(spec.kind.clone()));
    if let Some(amount) = amount {
        facts.insert("amount".into(), Value::String(amount.to_string()));
    }
    if let Some(currency) = &currency {
        facts.insert("currency".into(), Value::String(currency.clone()));
    }
    for (name, value) in &spec.facts {
        if !steward_approvals::policy::COLUMNS.contains(&name.as_str()) {
            return Err(DomainError::Invalid(format!(
                "`{name}` is not a fact approval tables can test; use one of {}",
                steward_approvals::policy::COLUMNS.join(", ")
            ))
            .into());
        }
        facts.insert(name.clone(), value.clone());
    }
    let info = RequestInfo {
        kind: spec.kind.clone(),
        requester: requester.clone(),
        amount,
        currency: currency.clone(),
    };
    let table = policy.evaluate(&facts);
    let directory = StoreDirectory::new(tx);
    let router = Router {
        config: &approvals.config,
        directory: &directory,
        today: today(env),
    };
    let mut planned = table.steps.clone();
    if planned.is_empty() {
        // No row matched: the policy's fallback decides rather than nobody.
        let approver = policy.fallback.clone().ok_or_else(|| {
            DomainError::Invalid(format!(
                "no row of policy `{}` matches this {} request and the policy has no fallback; add a row that matches or a `fallback`",
                policy.id, spec.kind
            ))
        })?;
        planned.push(steward_approvals::policy::PlannedStep {
            row: 0,
            stage: 1,
            template: StepTemplate {
                name: "fallback".into(),
                approver,
                approvals: 1,
                deadline: None,
                remind_before: None,
            },
        });
    }
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    let mut assignments: Vec<Assignment> = Vec::new();
    // A step whose every possible decider already decides an earlier step is merged into
    // that step rather than left with nobody; a finding says the request has fewer
    // independent approvers than the policy asks for.
    let mut merged: Vec<Option<usize>> = Vec::new();
    for step in &planned {
        let mut assignment = router.assign(&policy, &step.template.approver, &info, &excluded);
        let mut merged_into = None;
        if assignment.is_empty() && !excluded.is_empty() {
            let unrestricted =
                router.assign(&policy, &step.template.approver, &info, &BTreeSet::new());
            let others = unrestricted.deciders();
            merged_into = assignments
                .iter()
                .position(|a| a.deciders().iter().any(|d| others.contains(d)));
            if let Some(earlier) = merged_into {
                let names: Vec<String> = others
                    .iter()
                    .map(|id| directory.person(id).map_or(id.clone(), |p| p.name))
                    .collect();
                assignment
                    .notes
                    .retain(|n| !n.starts_with("nobody can decide this step"));
                assignment.notes.push(format!(
                    "only {} could decide this step, and they decide step {}; the step is merged into it",
                    names.join(", "),
                    earlier + 1
                ));
            }
        }
        // The one person who can decide a step cannot decide a later one too.
        match (&assignment.approver, assignment.candidates.as_slice()) {
            (Some(approver), _) => {
                excluded.insert(approver.clone());
            }
            (None, [only]) => {
                excluded.insert(only.clone());
            }
            _ => {}
        }
        assignments.push(assignment);
        merged.push(merged_into);
    }
    let calendars: Vec<Option<Calendar>> = assignments
        .iter()
        .map(|a| {
            a.approver
                .as_deref()
                .and_then(|id| directory.person(id))
                .and_then(|p| p.calendar)
        })
        .collect();
    drop(directory);

    let routing = json!({
        "policy": policy.id,
        "version": policy.version,
        "hit": policy.hit,
        "rows": table.rows,
        "explanation": table.explanation,
        "steps": planned.iter().zip(&assignments).map(|(p, a)| json!({
            "name": p.template.name,
            "row": p.row,
            "stage": p.stage,
            "approver": a.approver,
            "candidates": a.candidates,
            "notes": a.notes,
        })).collect::<Vec<_>>(),
    });
    let mut fields = Map::new();
    fields.insert("request_kind".into(), Value::String(spec.kind.clone()));
    if let Some(subject) = &derived.subject {
        fields.insert(
            "subject_kind".into(),
            Value::String(subject.kind.name().into()),
        );
        fields.insert("subject_id".into(), Value::String(subject.id.clone()));
    }
    if let Some(requester) = &requester {
        fields.insert("requester".into(), Value::String(requester.clone()));
    }
    if let Some(currency) = &currency {
        fields.insert("currency".into(), Value::String(currency.clone()));
    }
    if let Some(amount) = amount {
        fields.insert("amount".into(), money_text(amount, currency.as_deref()));
    }
    if let Some(hours) = derived.hours {
        fields.insert("hours".into(), Value::String(hours.to_string()));
    }
    if let Some(period) = &derived.period {
        fields.insert("period".into(), Value::String(period.clone()));
    }
    fields.insert("policy".into(), Value::String(policy.id.clone()));
    fields.insert("policy_version".into(), json!(policy.version));
    // Work mirrored from another system may have waited there already.
    let since = derived
        .day
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|d| d.and_utc())
        .filter(|d| *d < env.now)
        .unwrap_or(env.now);
    fields.insert("waiting_since".into(), json!(since));
    fields.insert(
        "summary".into(),
        Value::String(spec.summary.clone().unwrap_or(derived.summary.clone())),
    );
    fields.insert("key".into(), Value::String(derived.key.clone()));
    fields.insert("facts".into(), Value::Object(facts));
    fields.insert("routing".into(), routing);
    let ctx = system_context(context);
    let outcome = apply(
        tx,
        env,
        Command::Create {
            kind: Kind::ApprovalRequest,
            id: None,
            state: Some("pending".into()),
            fields,
            attributes: Map::new(),
        },
        ctx.clone(),
    )?;
    let request = outcome.record.expect("a create leaves a record");
    let first_stage = planned
        .iter()
        .zip(&merged)
        .filter(|(_, m)| m.is_none())
        .map(|(p, _)| p.stage)
        .min()
        .unwrap_or(1);
    for (index, (step, assignment)) in planned.iter().zip(&assignments).enumerate() {
        let skipped = merged[index].is_some();
        let open_now = step.stage == first_stage && !skipped;
        let mut fields = step_fields(
            &request.id,
            index as i64 + 1,
            step.stage,
            &step.template,
            assignment,
            0,
        );
        if open_now {
            opening_fields(
                &mut fields,
                &step.template,
                calendars[index].as_ref(),
                env.now,
            );
        }
        let created = apply(
            tx,
            env,
            Command::Create {
                kind: Kind::ApprovalStep,
                id: None,
                state: Some(
                    match (skipped, open_now) {
                        (true, _) => "skipped",
                        (false, true) => "pending",
                        (false, false) => "waiting",
                    }
                    .into(),
                ),
                fields,
                attributes: Map::new(),
            },
            ctx.clone(),
        )?;
        let raise = if skipped {
            Some((
                "approval_segregation",
                Severity::Warning,
                format!(
                    "{}: step {} has nobody left to decide it, so it is merged into an earlier step; the request gets fewer independent approvers than policy `{}` asks for",
                    request.text("summary").unwrap_or("An approval request"),
                    step.template.name,
                    policy.id
                ),
            ))
        } else if assignment.is_empty() {
            Some((
                "approval_unassigned",
                Severity::Error,
                format!(
                    "{}: nobody can decide step {}; give someone the authority in the rules folder, then withdraw and reopen the request",
                    request.text("summary").unwrap_or("An approval request"),
                    step.template.name
                ),
            ))
        } else {
            None
        };
        if let Some((control, severity, message)) = raise {
            tx.raise_finding(
                &RaisedFinding {
                    key: format!("{control}/{}/{}", request.id, index + 1),
                    control: control.into(),
                    severity,
                    record: Some(request.reference()),
                    message,
                    evidence: json!({"step": step.template.name, "notes": assignment.notes}),
                },
                env.now,
            )?;
        }
        if open_now && let Some(record) = created.record {
            notify_deciders(
                tx,
                env,
                &ctx,
                &request,
                &record,
                assignment,
                "awaits your decision",
            )?;
        }
    }
    Ok(Opened {
        request,
        created: true,
    })
}

fn step_fields(
    request: &str,
    position: i64,
    stage: u32,
    template: &StepTemplate,
    assignment: &Assignment,
    level: i64,
) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("request".into(), Value::String(request.to_string()));
    fields.insert("position".into(), json!(position));
    fields.insert("stage".into(), json!(stage));
    fields.insert("name".into(), Value::String(template.name.clone()));
    fields.insert(
        "approver_rule".into(),
        Value::String(assignment.rule.clone()),
    );
    if let Some(approver) = &assignment.approver {
        fields.insert("approver".into(), Value::String(approver.clone()));
    }
    fields.insert("candidates".into(), json!(assignment.candidates));
    fields.insert(
        "approvals_needed".into(),
        json!(if assignment.approver.is_some() {
            1
        } else {
            template.approvals
        }),
    );
    fields.insert("decisions".into(), json!([]));
    if let Some(from) = &assignment.delegated_from {
        fields.insert("delegated_from".into(), Value::String(from.clone()));
    }
    fields.insert("level".into(), json!(level));
    fields.insert("notes".into(), json!(assignment.notes));
    fields
}

/// Sets the fields a step gets when it begins to wait for a decision.
fn opening_fields(
    fields: &mut Map<String, Value>,
    template: &StepTemplate,
    calendar: Option<&Calendar>,
    now: DateTime<Utc>,
) {
    fields.insert("opened_at".into(), json!(now));
    if let Some(deadline) = template.deadline {
        let at = route::add_offset(now, deadline, calendar);
        fields.insert("deadline".into(), json!(at));
        if let Some(before) = template.remind_before {
            let remind = route::before(at, before, calendar).max(now);
            fields.insert("remind_at".into(), json!(remind));
        }
    }
}

fn notify_deciders(
    tx: &mut dyn WriteTx,
    env: &Env,
    context: &CommandContext,
    request: &Record,
    step: &Record,
    assignment: &Assignment,
    what: &str,
) -> Result<(), EngineError> {
    let deadline = step
        .text("deadline")
        .map(|d| format!(" by {d}"))
        .unwrap_or_default();
    for person in assignment.deciders() {
        let mut fields = Map::new();
        fields.insert(
            "message".into(),
            Value::String(format!(
                "{} {what}{deadline} (step {}).",
                request.text("summary").unwrap_or("An approval request"),
                step.text("name").unwrap_or("")
            )),
        );
        fields.insert("recipient".into(), Value::String(person));
        fields.insert("channel".into(), Value::String("in_app".into()));
        fields.insert(
            "subject_kind".into(),
            Value::String("approval_request".into()),
        );
        fields.insert("subject_id".into(), Value::String(request.id.clone()));
        apply(
            tx,
            env,
            Command::Create {
                kind: Kind::Notification,
                id: None,
                state: None,
                fields,
                attributes: Map::new(),
            },
            context.clone(),
        )?;
    }
    Ok(())
}

/// Reads a step record into the form deciding uses.
pub fn step_view(step: &Record) -> StepView {
    StepView {
        id: step.id.clone(),
        stage: step.integer("stage").unwrap_or(1) as u32,
        state: step.state.clone(),
        assignment: assignment_of(step),
        approvals_needed: step.integer("approvals_needed").unwrap_or(1).max(1) as u32,
        decisions: decisions_of(step),
    }
}

fn assignment_of(step: &Record) -> Assignment {
    Assignment {
        approver: step.ref_id("approver").map(str::to_string),
        candidates: step
            .get("candidates")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        delegated_from: step.ref_id("delegated_from").map(str::to_string),
        rule: step.text("approver_rule").unwrap_or("").to_string(),
        notes: Vec::new(),
    }
}

fn decisions_of(step: &Record) -> Vec<Decision> {
    step.get("decisions")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn request_info(request: &Record) -> RequestInfo {
    RequestInfo {
        kind: request.text("request_kind").unwrap_or("").to_string(),
        requester: request.ref_id("requester").map(str::to_string),
        amount: request.decimal("amount"),
        currency: request.text("currency").map(str::to_string),
    }
}

/// A decision as submitted for.
#[derive(Clone, Debug)]
pub struct DecisionRequest {
    pub request: String,
    /// The step to decide; the one waiting for the decider when absent.
    pub step: Option<String>,
    /// The employee deciding.
    pub decider: String,
    pub verdict: Verdict,
    pub comment: Option<String>,
}

/// The result of a decision.
#[derive(Clone, Debug, Serialize)]
pub struct Decided {
    pub request: Record,
    pub step: Record,
    pub decision: Decision,
}

/// Decides a step. Refusals change nothing: a decided request or step is a conflict, a
/// decider who may not decide is forbidden.
pub fn decide(
    tx: &mut dyn WriteTx,
    env: &Env,
    submitted: &DecisionRequest,
    context: &CommandContext,
) -> Result<Decided, EngineError> {
    let request = tx
        .record(Kind::ApprovalRequest, &submitted.request)?
        .ok_or_else(|| DomainError::NotFound {
            kind: Kind::ApprovalRequest,
            id: submitted.request.clone(),
        })?;
    let steps = steps_of(tx, &request.id)?;
    let views: Vec<StepView> = steps.iter().map(step_view).collect();
    let info = request_info(&request);
    let directory = StoreDirectory::new(tx);
    let decider = directory.person(&submitted.decider).ok_or_else(|| {
        DomainError::Forbidden(format!(
            "employee {} is not in Steward, so cannot decide; link the token to an employee",
            submitted.decider
        ))
    })?;
    let router = Router {
        config: &env.approvals.config,
        directory: &directory,
        today: today(env),
    };
    let permitted = decide::check(
        &router,
        &info,
        &request.state,
        &views,
        submitted.step.as_deref(),
        &decider,
    )
    .map_err(|refusal| match refusal {
        Refusal::Conflict(m) => DomainError::Conflict(m),
        Refusal::Forbidden(m) => DomainError::Forbidden(m),
    })?;
    let progress = decide::progress(&views, permitted.step, submitted.verdict);
    let next_calendars: Vec<Option<Calendar>> = progress
        .open
        .iter()
        .map(|&i| {
            views[i]
                .assignment
                .approver
                .as_deref()
                .and_then(|id| directory.person(id))
                .and_then(|p| p.calendar)
        })
        .collect();
    drop(directory);

    let decision = Decision {
        by: decider.id.clone(),
        verdict: submitted.verdict,
        at: env.now,
        comment: submitted.comment.clone(),
        on_behalf_of: permitted.on_behalf_of.clone(),
    };
    let ctx = CommandContext {
        actor: context.actor.clone(),
        ..system_context(context)
    };
    let step = &steps[permitted.step];
    let mut decisions = views[permitted.step].decisions.clone();
    decisions.push(decision.clone());
    let mut fields = Map::new();
    fields.insert(
        "decisions".into(),
        serde_json::to_value(&decisions).unwrap_or_default(),
    );
    if progress.step_state.is_some() {
        fields.insert("decided_by".into(), Value::String(decider.id.clone()));
        fields.insert("decided_at".into(), json!(env.now));
        if let Some(comment) = &submitted.comment {
            fields.insert("comment".into(), Value::String(comment.clone()));
        }
    }
    // The version read above guards against a decision that committed in between.
    let decided_step = apply(
        tx,
        env,
        Command::Update {
            kind: Kind::ApprovalStep,
            id: step.id.clone(),
            expected_version: Some(step.version),
            state: progress.step_state.map(str::to_string),
            fields,
            attributes: Map::new(),
        },
        ctx.clone(),
    )?
    .record
    .expect("an update leaves a record");

    let system = system_context(context);
    for &index in &progress.skip {
        apply(
            tx,
            env,
            Command::Update {
                kind: Kind::ApprovalStep,
                id: steps[index].id.clone(),
                expected_version: None,
                state: Some("skipped".into()),
                fields: Map::new(),
                attributes: Map::new(),
            },
            system.clone(),
        )?;
    }
    let policy = request
        .text("policy")
        .zip(request.integer("policy_version"))
        .and_then(|(id, v)| env.approvals.policy_version(id, v));
    for (n, &index) in progress.open.iter().enumerate() {
        let next = &steps[index];
        let template = policy
            .as_ref()
            .and_then(|p| template_of(p, next.text("name").unwrap_or("")))
            .unwrap_or_else(|| StepTemplate {
                name: next.text("name").unwrap_or("").to_string(),
                approver: Approver::Manager,
                approvals: 1,
                deadline: None,
                remind_before: None,
            });
        let mut fields = Map::new();
        opening_fields(&mut fields, &template, next_calendars[n].as_ref(), env.now);
        let opened = apply(
            tx,
            env,
            Command::Update {
                kind: Kind::ApprovalStep,
                id: next.id.clone(),
                expected_version: None,
                state: Some("pending".into()),
                fields,
                attributes: Map::new(),
            },
            system.clone(),
        )?
        .record
        .expect("an update leaves a record");
        notify_deciders(
            tx,
            env,
            &system,
            &request,
            &opened,
            &views[index].assignment,
            "awaits your decision",
        )?;
    }
    let mut request_now = request.clone();
    if let Some(state) = progress.request_state {
        let mut fields = Map::new();
        fields.insert("decided_at".into(), json!(env.now));
        fields.insert("decided_by".into(), Value::String(decider.id.clone()));
        request_now = apply(
            tx,
            env,
            Command::Update {
                kind: Kind::ApprovalRequest,
                id: request.id.clone(),
                expected_version: Some(request.version),
                state: Some(state.to_string()),
                fields,
                attributes: Map::new(),
            },
            system.clone(),
        )?
        .record
        .expect("an update leaves a record");
        apply_to_subject(tx, env, &request_now, &decider.id, &system)?;
        if let Some(requester) = request.ref_id("requester") {
            let mut fields = Map::new();
            fields.insert(
                "message".into(),
                Value::String(format!(
                    "{} was {state}.",
                    request.text("summary").unwrap_or("Your request")
                )),
            );
            fields.insert("recipient".into(), Value::String(requester.to_string()));
            fields.insert("channel".into(), Value::String("in_app".into()));
            fields.insert(
                "subject_kind".into(),
                Value::String("approval_request".into()),
            );
            fields.insert("subject_id".into(), Value::String(request.id.clone()));
            apply(
                tx,
                env,
                Command::Create {
                    kind: Kind::Notification,
                    id: None,
                    state: None,
                    fields,
                    attributes: Map::new(),
                },
                system.clone(),
            )?;
        }
    }
    Ok(Decided {
        request: request_now,
        step: decided_step,
        decision,
    })
}

fn template_of(policy: &Policy, name: &str) -> Option<StepTemplate> {
    policy
        .rows
        .iter()
        .flat_map(|r| r.steps.iter())
        .find(|t| t.name == name)
        .cloned()
}

/// Carries a final decision over to what the request was about.
fn apply_to_subject(
    tx: &mut dyn WriteTx,
    env: &Env,
    request: &Record,
    decider: &str,
    context: &CommandContext,
) -> Result<(), EngineError> {
    let approved = request.state == "approved";
    let kind = request.text("request_kind").unwrap_or("");
    let subject = request
        .text("subject_kind")
        .and_then(Kind::parse)
        .zip(request.text("subject_id"));
    let mut targets: Vec<(Kind, String, &str, bool)> = Vec::new();
    match (kind, subject) {
        ("timesheet_week", Some((Kind::Employee, employee))) => {
            let period = request.text("period").unwrap_or("");
            for line in week_lines(tx, employee, period, "submitted")? {
                targets.push((
                    Kind::Timesheet,
                    line.id,
                    if approved { "approved" } else { "rejected" },
                    true,
                ));
            }
        }
        ("expense", Some((Kind::Expense, id))) => {
            if tx
                .record(Kind::Expense, id)?
                .is_some_and(|e| e.state == "submitted")
            {
                targets.push((
                    Kind::Expense,
                    id.to_string(),
                    if approved { "approved" } else { "rejected" },
                    true,
                ));
            }
        }
        ("invoice_release", Some((Kind::Invoice, id))) => {
            let state = tx.record(Kind::Invoice, id)?.map(|i| i.state);
            match (approved, state.as_deref()) {
                (true, Some("draft")) => {
                    targets.push((Kind::Invoice, id.to_string(), "pending_approval", false));
                    targets.push((Kind::Invoice, id.to_string(), "released", false));
                }
                (true, Some("pending_approval")) => {
                    targets.push((Kind::Invoice, id.to_string(), "released", false));
                }
                (false, Some("pending_approval")) => {
                    targets.push((Kind::Invoice, id.to_string(), "draft", false));
                }
                _ => {}
            }
        }
        ("write_off", Some((k @ (Kind::Timesheet | Kind::Expense), id))) if approved => {
            if tx.record(k, id)?.is_some_and(|r| r.state == "approved") {
                targets.push((k, id.to_string(), "written_off", false));
            }
        }
        _ => {}
    }
    for (kind, id, state, stamp) in targets {
        let mut fields = Map::new();
        if stamp && state == "approved" {
            fields.insert("approved_by".into(), Value::String(decider.to_string()));
        }
        apply(
            tx,
            env,
            Command::Update {
                kind,
                id,
                expected_version: None,
                state: Some(state.to_string()),
                fields,
                attributes: Map::new(),
            },
            context.clone(),
        )?;
    }
    let mut data = Map::new();
    data.insert("request".into(), Value::String(request.id.clone()));
    data.insert("kind".into(), Value::String(kind.to_string()));
    data.insert("decided_by".into(), Value::String(decider.to_string()));
    let subject_ref = subject.map(|(k, id)| RecordRef::new(k, id));
    apply(
        tx,
        env,
        Command::Emit {
            name: format!("approval.{}", request.state),
            record: subject_ref,
            data: Value::Object(data),
        },
        context.clone(),
    )?;
    Ok(())
}

/// Reminds the deciders of a pending step once.
pub fn remind(
    tx: &mut dyn WriteTx,
    env: &Env,
    step_ref: &RecordRef,
    context: &CommandContext,
) -> Result<Value, EngineError> {
    let Some(step) = tx.record(Kind::ApprovalStep, &step_ref.id)? else {
        return Ok(json!({"reminded": false, "reason": "the step no longer exists"}));
    };
    if step.state != "pending" || step.get("reminded_at").is_some_and(|v| !v.is_null()) {
        return Ok(json!({"reminded": false, "reason": format!("the step is {}", step.state)}));
    }
    let request = tx
        .record(Kind::ApprovalRequest, step.ref_id("request").unwrap_or(""))?
        .ok_or_else(|| DomainError::Invalid(format!("step {} has no request", step.id)))?;
    let system = system_context(context);
    let assignment = assignment_of(&step);
    let mut fields = Map::new();
    fields.insert("reminded_at".into(), json!(env.now));
    let updated = apply(
        tx,
        env,
        Command::Update {
            kind: Kind::ApprovalStep,
            id: step.id.clone(),
            expected_version: Some(step.version),
            state: None,
            fields,
            attributes: Map::new(),
        },
        system.clone(),
    )?
    .record
    .expect("an update leaves a record");
    notify_deciders(
        tx,
        env,
        &system,
        &request,
        &updated,
        &assignment,
        "still awaits your decision; reminder",
    )?;
    Ok(json!({"reminded": true, "deciders": assignment.deciders()}))
}

/// Escalates a pending step whose deadline passed to the next level.
pub fn escalate(
    tx: &mut dyn WriteTx,
    env: &Env,
    step_ref: &RecordRef,
    context: &CommandContext,
) -> Result<Value, EngineError> {
    let Some(step) = tx.record(Kind::ApprovalStep, &step_ref.id)? else {
        return Ok(json!({"escalated": false, "reason": "the step no longer exists"}));
    };
    let overdue = step.datetime("deadline").is_some_and(|d| d <= env.now);
    if step.state != "pending" || !overdue {
        return Ok(json!({
            "escalated": false,
            "reason": format!("the step is {} and its deadline is {}", step.state, step.text("deadline").unwrap_or("unset")),
        }));
    }
    let request = tx
        .record(Kind::ApprovalRequest, step.ref_id("request").unwrap_or(""))?
        .ok_or_else(|| DomainError::Invalid(format!("step {} has no request", step.id)))?;
    let policy = request
        .text("policy")
        .zip(request.integer("policy_version"))
        .and_then(|(id, v)| env.approvals.policy_version(id, v))
        .ok_or_else(|| {
            DomainError::Invalid(format!(
                "request {} names policy {} version {}, which is not stored",
                request.id,
                request.text("policy").unwrap_or("?"),
                request.integer("policy_version").unwrap_or(0)
            ))
        })?;
    let steps = steps_of(tx, &request.id)?;
    let info = request_info(&request);
    let mut excluded: BTreeSet<String> = steps
        .iter()
        .filter(|s| s.id != step.id && !matches!(s.state.as_str(), "escalated" | "skipped"))
        .filter_map(|s| s.ref_id("approver").map(str::to_string))
        .collect();
    excluded.extend(steps.iter().flat_map(decisions_of).map(|d| d.by));
    let current = assignment_of(&step);
    let directory = StoreDirectory::new(tx);
    let router = Router {
        config: &env.approvals.config,
        directory: &directory,
        today: today(env),
    };
    let next = router.escalate(&policy, &current, &info, &excluded);
    let calendar = next
        .approver
        .as_deref()
        .and_then(|id| directory.person(id))
        .and_then(|p| p.calendar);
    drop(directory);
    let system = system_context(context);
    let mut notes: Vec<Value> = step
        .get("notes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if next.is_empty() {
        notes.push(Value::String(format!(
            "the deadline passed at {}; {}",
            step.text("deadline").unwrap_or("?"),
            next.notes.join("; ")
        )));
        let mut fields = Map::new();
        fields.insert("notes".into(), Value::Array(notes));
        apply(
            tx,
            env,
            Command::Update {
                kind: Kind::ApprovalStep,
                id: step.id.clone(),
                expected_version: Some(step.version),
                state: None,
                fields,
                attributes: Map::new(),
            },
            system.clone(),
        )?;
        tx.raise_finding(
            &RaisedFinding {
                key: format!("approval_overdue/{}", step.id),
                control: "approval_overdue".into(),
                severity: Severity::Warning,
                record: Some(request.reference()),
                message: format!(
                    "{}: step {} is past its deadline and has no level above to escalate to",
                    request.text("summary").unwrap_or("An approval request"),
                    step.text("name").unwrap_or("")
                ),
                evidence: json!({"step": step.id, "deadline": step.get("deadline"), "notes": next.notes}),
            },
            env.now,
        )?;
        return Ok(json!({"escalated": false, "reason": "no level above"}));
    }
    notes.push(Value::String(format!(
        "the deadline passed at {}; {}",
        step.text("deadline").unwrap_or("?"),
        next.notes.join("; ")
    )));
    let mut fields = Map::new();
    fields.insert("notes".into(), Value::Array(notes));
    apply(
        tx,
        env,
        Command::Update {
            kind: Kind::ApprovalStep,
            id: step.id.clone(),
            expected_version: Some(step.version),
            state: Some("escalated".into()),
            fields,
            attributes: Map::new(),
        },
        system.clone(),
    )?;
    let mut template =
        template_of(&policy, step.text("name").unwrap_or("")).unwrap_or_else(|| StepTemplate {
            name: step.text("name").unwrap_or("escalation").to_string(),
            approver: Approver::Manager,
            approvals: 1,
            deadline: None,
            remind_before: None,
        });
    template.approvals = step.integer("approvals_needed").unwrap_or(1).max(1) as u32;
    let level = step.integer("level").unwrap_or(0) + 1;
    let mut fields = step_fields(
        &request.id,
        step.integer("position").unwrap_or(1),
        step.integer("stage").unwrap_or(1) as u32,
        &template,
        &next,
        level,
    );
    fields.insert("escalated_from".into(), Value::String(step.id.clone()));
    opening_fields(&mut fields, &template, calendar.as_ref(), env.now);
    let created = apply(
        tx,
        env,
        Command::Create {
            kind: Kind::ApprovalStep,
            id: None,
            state: Some("pending".into()),
            fields,
            attributes: Map::new(),
        },
        system.clone(),
    )?
    .record
    .expect("a create leaves a record");
    notify_deciders(
        tx,
        env,
        &system,
        &request,
        &created,
        &next,
        "was escalated to you and awaits your decision",
    )?;
    Ok(json!({"escalated": true, "step": created.id, "deciders": next.deciders()}))
}

/// A transition that only an approved request allows.
struct Guard {
    kind: Kind,
    to: &'static str,
    /// Request kinds whose approval allows it.
    requests: &'static [&'static str],
    /// Only when this field has this value, such as non-standard terms.
    when: Option<(&'static str, &'static str)>,
}

const GUARDS: &[Guard] = &[
    Guard {
        kind: Kind::Invoice,
        to: "released",
        requests: &["invoice_release"],
        when: None,
    },
    Guard {
        kind: Kind::Timesheet,
        to: "written_off",
        requests: &["write_off"],
        when: None,
    },
    Guard {
        kind: Kind::Expense,
        to: "written_off",
        requests: &["write_off"],
        when: None,
    },
    Guard {
        kind: Kind::Contract,
        to: "active",
        requests: &["payment_terms", "proposal"],
        when: Some(("terms", "non_standard")),
    },
    Guard {
        kind: Kind::Opportunity,
        to: "won",
        requests: &["payment_terms", "proposal"],
        when: Some(("terms", "non_standard")),
    },
];

/// Checks a planned change against the guards: some transitions need an approved request,
/// and records under an approval policy are decided only through their requests. Connectors
/// that mirror a system of record are trusted for the states that system reports.
pub fn check_guards(
    tx: &dyn ReadTx,
    env: &Env,
    from: Option<&str>,
    after: &Record,
    actor: &Actor,
) -> Result<(), EngineError> {
    if actor.is_mirror() || (actor.kind == ActorKind::System && actor.id == ACTOR) {
        return Ok(());
    }
    if matches!(after.kind, Kind::ApprovalRequest | Kind::ApprovalStep)
        && actor.kind == ActorKind::Rule
    {
        return Err(DomainError::Forbidden(format!(
            "rule {} may not change a {}; requests and steps change only through decisions",
            actor.id,
            after.kind.schema().label
        ))
        .into());
    }
    if from == Some(after.state.as_str()) {
        return Ok(());
    }
    let decided_by_policy = match after.kind {
        Kind::Expense => env.approvals.config.policy_for("expense").is_some(),
        Kind::Timesheet => env.approvals.config.policy_for("timesheet_week").is_some(),
        _ => false,
    };
    if decided_by_policy
        && from == Some("submitted")
        && matches!(after.state.as_str(), "approved" | "rejected")
    {
        return Err(DomainError::ApprovalRequired {
            kind: after.kind,
            id: after.id.clone(),
            to: after.state.clone(),
            request_kind: if after.kind == Kind::Expense {
                "expense".into()
            } else {
                "timesheet_week".into()
            },
        }
        .into());
    }
    for guard in GUARDS {
        if guard.kind != after.kind || guard.to != after.state {
            continue;
        }
        if let Some((field, value)) = guard.when
            && after.text(field) != Some(value)
        {
            continue;
        }
        let mut subjects = vec![after.id.clone()];
        if let Some(opportunity) = after.ref_id("opportunity") {
            subjects.push(opportunity.to_string());
        }
        if approved_request_exists(tx, &subjects, guard.requests)? {
            return Ok(());
        }
        return Err(DomainError::ApprovalRequired {
            kind: after.kind,
            id: after.id.clone(),
            to: after.state.clone(),
            request_kind: guard.requests.join("` or `"),
        }
        .into());
    }
    Ok(())
}

pub(crate) fn approved_request_exists(
    tx: &dyn ReadTx,
    subjects: &[String],
    kinds: &[&str],
) -> Result<bool, EngineError> {
    for subject in subjects {
        let page = tx.records(&RecordQuery {
            kind: Some(Kind::ApprovalRequest),
            state: Some("approved".into()),
            fields: vec![("subject_id".into(), Value::String(subject.clone()))],
            limit: 100,
            ..RecordQuery::default()
        })?;
        if page
            .items
            .iter()
            .any(|r| r.text("request_kind").is_some_and(|k| kinds.contains(&k)))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Records a rejected bypass: a finding on the record and an audit event, in a transaction of
/// its own because the attempt itself changed nothing.
pub fn record_bypass(
    tx: &mut dyn WriteTx,
    env: &Env,
    error: &DomainError,
    actor: &Actor,
) -> Result<(), EngineError> {
    let DomainError::ApprovalRequired {
        kind,
        id,
        to,
        request_kind,
    } = error
    else {
        return Ok(());
    };
    let record = RecordRef::new(*kind, id);
    let message = format!(
        "{actor} tried to move {} {id} to `{to}` without an approved `{request_kind}` request; the change was rejected",
        kind.schema().label
    );
    tx.raise_finding(
        &RaisedFinding {
            key: format!("approval_bypass/{kind}/{id}/{to}/{actor}"),
            control: "approval_bypass".into(),
            severity: Severity::Error,
            record: Some(record.clone()),
            message,
            evidence: json!({"actor": actor.to_string(), "to": to, "requires": request_kind, "at": env.now}),
        },
        env.now,
    )?;
    apply(
        tx,
        env,
        Command::Emit {
            name: "approval.bypass_rejected".into(),
            record: Some(record),
            data: json!({"actor": actor.to_string(), "to": to, "requires": request_kind}),
        },
        CommandContext::new(Actor::system(ACTOR)),
    )?;
    Ok(())
}

/// The effect of installing policies on one policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyChange {
    pub policy_id: String,
    pub version: i64,
    /// `added`, `changed` or `unchanged`.
    pub change: &'static str,
}

/// The id under which the authority is versioned beside the policies; no policy id starts
/// with `@`.
const AUTHORITY_ID: &str = "@authority";

impl crate::Engine {
    /// Installs the policies and authority read from the rules folder: new or changed
    /// policies get a new version, policies no longer in the files are retired, requests keep
    /// the version they began under, and the rules that remind and escalate on deadlines are
    /// installed beside them. Other commands on the same database load what was installed.
    pub async fn install_policies(
        self: &Arc<Self>,
        config: ApprovalConfig,
    ) -> Result<Vec<PolicyChange>, EngineError> {
        let now = self.clock.now();
        let mut wanted: Vec<(String, String, Value, String)> = config
            .policies
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.hash.clone(),
                    p.definition.clone(),
                    p.origin.clone(),
                )
            })
            .collect();
        let authority = serde_json::to_value(&config.authority).unwrap_or(Value::Null);
        let authority_hash = hex_hash(&authority);
        wanted.push((
            AUTHORITY_ID.into(),
            authority_hash,
            authority,
            "file:".into(),
        ));
        let changes = steward_store::write(self.store.as_ref(), move |tx| {
            let versions = tx.policy_versions()?;
            let mut latest: HashMap<String, PolicyVersion> = HashMap::new();
            for version in versions {
                latest.insert(version.policy_id.clone(), version);
            }
            let mut changes = Vec::new();
            let store = |tx: &mut dyn WriteTx,
                         id: &str,
                         hash: &str,
                         definition: &Value,
                         origin: &str|
             -> Result<i64, StoreError> {
                let version = latest.get(id).map_or(1, |v| v.version + 1);
                tx.insert_policy_version(&PolicyVersion {
                    policy_id: id.to_string(),
                    version,
                    hash: hash.to_string(),
                    definition: definition.clone(),
                    origin: origin.to_string(),
                    created_at: now,
                })?;
                Ok(version)
            };
            for (id, hash, definition, origin) in &wanted {
                let change = match latest.get(id) {
                    Some(v) if v.hash == *hash => PolicyChange {
                        policy_id: id.clone(),
                        version: v.version,
                        change: "unchanged",
                    },
                    previous => {
                        let change = if previous.is_some_and(|v| !v.definition.is_null()) {
                            "changed"
                        } else {
                            "added"
                        };
                        let version = store(tx, id, hash, definition, origin)?;
                        PolicyChange {
                            policy_id: id.clone(),
                            version,
                            change,
                        }
                    }
                };
                if id != AUTHORITY_ID {
                    changes.push(change);
                }
            }
            for (id, version) in latest.clone() {
                let present = wanted.iter().any(|(w, ..)| *w == id);
                if !present && !version.definition.is_null() {
                    let retired = store(tx, &id, "retired", &Value::Null, &version.origin)?;
                    changes.push(PolicyChange {
                        policy_id: id,
                        version: retired,
                        change: "retired",
                    });
                }
            }
            Ok::<_, StoreError>(changes)
        })
        .await?;
        self.reload_policies().await?;
        if !config.is_empty() {
            let rules = steward_rules::compile_api_text(BUILTIN_RULES, BUILTIN_ORIGIN).map_err(
                |diagnostics| {
                    EngineError::Rule(format!(
                        "the built-in approval rules do not compile: {}",
                        diagnostics
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))
                },
            )?;
            for rule in rules {
                self.install_rule(rule).await?;
            }
        }
        Ok(changes)
    }

    /// Loads the installed policies, every stored version and the authority.
    pub async fn reload_policies(self: &Arc<Self>) -> Result<usize, EngineError> {
        let stored =
            steward_store::read_async(Arc::clone(&self.store), |tx| tx.policy_versions()).await?;
        let mut latest: HashMap<String, &PolicyVersion> = HashMap::new();
        let mut history = HashMap::new();
        for version in &stored {
            latest.insert(version.policy_id.clone(), version);
            if version.definition.is_null() || version.policy_id == AUTHORITY_ID {
                continue;
            }
            match compile_version(version) {
                Ok(policy) => {
                    history.insert((policy.id.clone(), policy.version), Arc::new(policy));
                }
                Err(error) => tracing::warn!(
                    policy = %version.policy_id,
                    version = version.version,
                    %error,
                    "a stored policy version no longer compiles; requests under it escalate by the current version"
                ),
            }
        }
        let authority = latest
            .get(AUTHORITY_ID)
            .and_then(|v| serde_json::from_value(v.definition.clone()).ok())
            .unwrap_or_default();
        let mut current: Vec<Policy> = latest
            .values()
            .filter(|v| v.policy_id != AUTHORITY_ID && !v.definition.is_null())
            .filter_map(|v| history.get(&(v.policy_id.clone(), v.version)))
            .map(|p| (**p).clone())
            .collect();
        current.sort_by(|a, b| a.id.cmp(&b.id));
        let count = current.len();
        self.set_approvals(Approvals::new(
            ApprovalConfig::new(current, authority),
            history,
        ));
        tracing::info!(policies = count, "approval policies loaded");
        Ok(count)
    }
}

fn hex_hash(value: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

/// A request with its steps, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    #[serde(flatten)]
    pub request: Record,
    pub steps: Vec<Record>,
}

/// Filters of the request list.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub policy: Option<String>,
    /// Requests with an open step this employee may decide, or that they decided.
    pub approver: Option<String>,
    pub requester: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

impl crate::Engine {
    fn write_env<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnMut(&mut dyn WriteTx, &Env) -> Result<T, EngineError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static {
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let clock = Arc::clone(&self.clock);
        let mut f = f;
        let store = Arc::clone(&self.store);
        async move {
            steward_store::write(store.as_ref(), move |tx| {
                let env = Env {
                    rules: &rules,
                    config: &config,
                    approvals: &approvals,
                    now: clock.now(),
                };
                f(tx, &env)
            })
            .await
        }
    }

    /// Opens a request, or joins the open one about the same thing.
    pub async fn open_approval(
        self: &Arc<Self>,
        spec: OpenRequest,
        context: CommandContext,
    ) -> Result<Opened, EngineError> {
        self.write_env(move |tx, env| open(tx, env, spec.clone(), &context))
            .await
    }

    /// Decides a step of a request.
    pub async fn decide_approval(
        self: &Arc<Self>,
        submitted: DecisionRequest,
        context: CommandContext,
    ) -> Result<Decided, EngineError> {
        self.write_env(move |tx, env| decide(tx, env, &submitted, &context))
            .await
    }

    /// Withdraws a pending request; only its requester or an administrator may.
    pub async fn cancel_approval(
        self: &Arc<Self>,
        request: String,
        context: CommandContext,
    ) -> Result<Record, EngineError> {
        self.write_env(move |tx, env| {
            let current = tx.record(Kind::ApprovalRequest, &request)?.ok_or_else(|| {
                DomainError::NotFound {
                    kind: Kind::ApprovalRequest,
                    id: request.clone(),
                }
            })?;
            if current.state != "pending" {
                return Err(DomainError::Conflict(format!(
                    "the request is already {}; only a pending request can be withdrawn",
                    current.state
                ))
                .into());
            }
            let mut system = system_context(&context);
            system.actor = context.actor.clone();
            for step in steps_of(tx, &request)? {
                if matches!(step.state.as_str(), "waiting" | "pending") {
                    apply(
                        tx,
                        env,
                        Command::Update {
                            kind: Kind::ApprovalStep,
                            id: step.id.clone(),
                            expected_version: None,
                            state: Some("skipped".into()),
                            fields: Map::new(),
                            attributes: Map::new(),
                        },
                        system.clone(),
                    )?;
                }
            }
            let mut fields = Map::new();
            fields.insert("decided_at".into(), json!(env.now));
            Ok(apply(
                tx,
                env,
                Command::Update {
                    kind: Kind::ApprovalRequest,
                    id: request.clone(),
                    expected_version: Some(current.version),
                    state: Some("cancelled".into()),
                    fields,
                    attributes: Map::new(),
                },
                system,
            )?
            .record
            .expect("an update leaves a record"))
        })
        .await
    }

    /// Returns one request with its steps.
    pub async fn approval(
        self: &Arc<Self>,
        id: String,
    ) -> Result<Option<RequestView>, EngineError> {
        Ok(
            steward_store::read_async(Arc::clone(&self.store), move |tx| {
                let Some(request) = tx.record(Kind::ApprovalRequest, &id)? else {
                    return Ok(None);
                };
                let steps = steps_of(tx, &id)?;
                Ok(Some(RequestView { request, steps }))
            })
            .await?,
        )
    }

    /// Requests matching `filter`, oldest first, with their steps; and the cursor of the next
    /// page.
    pub async fn approvals_list(
        self: &Arc<Self>,
        filter: RequestFilter,
    ) -> Result<(Vec<RequestView>, Option<String>), EngineError> {
        Ok(
            steward_store::read_async(Arc::clone(&self.store), move |tx| {
                let mut fields = Vec::new();
                if let Some(kind) = &filter.kind {
                    fields.push(("request_kind".to_string(), Value::String(kind.clone())));
                }
                if let Some(policy) = &filter.policy {
                    fields.push(("policy".to_string(), Value::String(policy.clone())));
                }
                if let Some(requester) = &filter.requester {
                    fields.push(("requester".to_string(), Value::String(requester.clone())));
                }
                let limit = filter.limit.clamp(1, 500);
                let mut items = Vec::new();
                let mut after = filter.after.clone();
                let mut next = None;
                // Filtering by approver reads steps, so pages are filled request by request.
                'pages: loop {
                    let page = tx.records(&RecordQuery {
                        kind: Some(Kind::ApprovalRequest),
                        state: filter.state.clone(),
                        fields: fields.clone(),
                        after: after.clone(),
                        limit,
                        ..RecordQuery::default()
                    })?;
                    let last_page = page.next_cursor.is_none();
                    for request in page.items {
                        let steps = steps_of(tx, &request.id)?;
                        let keep = filter.approver.as_ref().is_none_or(|who| {
                            steps.iter().any(|s| {
                                let assignment = assignment_of(s);
                                (s.state == "pending" && assignment.deciders().contains(who))
                                    || decisions_of(s).iter().any(|d| &d.by == who)
                            })
                        });
                        let id = request.id.clone();
                        if keep {
                            items.push(RequestView { request, steps });
                        }
                        if items.len() == limit {
                            next = Some(id);
                            break 'pages;
                        }
                        after = Some(id);
                    }
                    if last_page {
                        break;
                    }
                }
                Ok((items, next))
            })
            .await?,
        )
    }

    /// Backlog and turnaround per policy, step and approver.
    pub async fn approval_metrics(
        self: &Arc<Self>,
    ) -> Result<steward_approvals::metrics::Metrics, EngineError> {
        let now = self.clock.now();
        Ok(
            steward_store::read_async(Arc::clone(&self.store), move |tx| {
                let mut requests = Vec::new();
                let mut policy_of: HashMap<String, String> = HashMap::new();
                tx.scan_records(Kind::ApprovalRequest, &mut |r| {
                    let policy = r.text("policy").unwrap_or("none").to_string();
                    policy_of.insert(r.id.clone(), policy.clone());
                    requests.push(steward_approvals::metrics::RequestFact {
                        policy,
                        state: r.state.clone(),
                        created_at: r.datetime("waiting_since").unwrap_or(r.created_at),
                        decided_at: r.datetime("decided_at"),
                    });
                    Ok(true)
                })?;
                let mut steps = Vec::new();
                tx.scan_records(Kind::ApprovalStep, &mut |s| {
                    let policy = s
                        .ref_id("request")
                        .and_then(|r| policy_of.get(r))
                        .cloned()
                        .unwrap_or_else(|| "none".into());
                    let assignment = assignment_of(&s);
                    let approver = s
                        .ref_id("decided_by")
                        .map(str::to_string)
                        .or(assignment.approver.clone())
                        .unwrap_or_else(|| assignment.rule.clone());
                    steps.push(steward_approvals::metrics::StepFact {
                        policy,
                        step: s.text("name").unwrap_or("").to_string(),
                        approver,
                        state: s.state.clone(),
                        opened_at: s.datetime("opened_at"),
                        decided_at: s.datetime("decided_at"),
                    });
                    Ok(true)
                })?;
                Ok(steward_approvals::metrics::compute(&requests, &steps, now))
            })
            .await?,
        )
    }
}
