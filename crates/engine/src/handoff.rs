//! The sales-to-delivery handoff: a deal that is won and signed gets its project from the
//! service line's template, once.
//!
//! The command path calls [`after_write`] for every written record. When a deal is won and
//! signed (its `signed_at` is set or one of its contracts is active), it queues one `handoff`
//! job keyed by the deal, in the transaction of the event, so retries, replays and re-syncs
//! queue nothing new. The job creates the project with its tasks, milestones and open roles,
//! routes non-standard terms and subcontracting to approval, and emits `deal.handed_off`,
//! all in one transaction with the job's completion. A deal whose contract already funds a
//! project (such as a project mirrored from Odoo) adopts that project instead.
//!
//! Kickoff is when the template's kickoff task is done or the project becomes active; the
//! command path stamps `kickoff_at` on the project then, with the time from won to kickoff.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use steward_controls::Calendar;
use steward_controls::settings::{FirmSettings, OwnerRule, ProjectTemplate};
use steward_domain::{
    Actor, Command, CommandContext, DomainError, Event, Kind, Record, RecordRef, new_id,
};
use steward_store::{EventQuery, ReadTx, RecordQuery, StoreError, WriteTx};

use crate::Engine;
use crate::error::EngineError;
use crate::pipeline::{Env, apply, new_job};

/// The job kind that hands a deal off to delivery.
pub const HANDOFF_JOB: &str = "handoff";
/// The system actor of the handoff's writes.
pub const ACTOR: &str = "handoff";
/// The attribute that marks a template's kickoff task.
pub const KICKOFF_ATTRIBUTE: &str = "kickoff";

/// The payload of a handoff job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandoffJob {
    pub deal: String,
    /// The event that made the deal ready.
    pub event: String,
    pub correlation: String,
    pub depth: u32,
    /// Set on a handoff queued again by a settings change: it hands off only a deal that
    /// still has no project, and leaves an earlier handoff's project alone.
    #[serde(default)]
    pub requeued: bool,
}

fn context_after(event: &Event) -> CommandContext {
    CommandContext {
        actor: Actor::system(ACTOR),
        cause: Some(event.id.clone()),
        correlation: Some(event.correlation.clone()),
        depth: event.depth + 1,
    }
}

/// Reacts to one written record: queues the handoff of a deal that became won and signed,
/// and stamps the kickoff of a project. Returns the number of jobs queued.
pub(crate) fn after_write(
    tx: &mut dyn WriteTx,
    env: &Env,
    record: &Record,
    event: &Event,
) -> Result<usize, EngineError> {
    match record.kind {
        Kind::Opportunity => queue_if_ready(tx, env, record, event),
        Kind::Contract => {
            let Some(deal) = record.ref_id("opportunity") else {
                return Ok(0);
            };
            match tx.record(Kind::Opportunity, deal)? {
                Some(deal) => queue_if_ready(tx, env, &deal, event),
                None => Ok(0),
            }
        }
        Kind::Task => {
            let kickoff_task = record
                .attributes
                .get(KICKOFF_ATTRIBUTE)
                .and_then(Value::as_bool)
                == Some(true);
            if !kickoff_task || event.entered_state() != Some("done") {
                return Ok(0);
            }
            let Some(project) = record.ref_id("project") else {
                return Ok(0);
            };
            if let Some(project) = tx.record(Kind::Project, project)? {
                mark_kickoff(tx, env, &project, event)?;
            }
            Ok(0)
        }
        Kind::Project => {
            if event.entered_state() == Some("active") && record.ref_id("opportunity").is_some() {
                mark_kickoff(tx, env, record, event)?;
            }
            Ok(0)
        }
        _ => Ok(0),
    }
}

/// Contracts of a deal, active ones first.
fn contracts_of(tx: &dyn ReadTx, deal: &str) -> Result<Vec<Record>, StoreError> {
    let mut contracts = crate::controls::all_records(
        tx,
        RecordQuery {
            kind: Some(Kind::Contract),
            fields: vec![("opportunity".into(), Value::String(deal.to_string()))],
            ..Default::default()
        },
    )?;
    contracts.retain(|c| c.state != "cancelled");
    contracts.sort_by_key(|c| (c.state != "active", c.created_at));
    Ok(contracts)
}

/// Whether the client signed: `signed_at` on the deal, or an active or closed contract.
fn is_signed(deal: &Record, contracts: &[Record]) -> bool {
    deal.get("signed_at").is_some()
        || contracts
            .iter()
            .any(|c| matches!(c.state.as_str(), "active" | "closed"))
}

fn queue_if_ready(
    tx: &mut dyn WriteTx,
    env: &Env,
    deal: &Record,
    event: &Event,
) -> Result<usize, EngineError> {
    if deal.state != "won" {
        return Ok(0);
    }
    let contracts = contracts_of(tx, &deal.id)?;
    if !is_signed(deal, &contracts) {
        return Ok(0);
    }
    let payload = HandoffJob {
        deal: deal.id.clone(),
        event: event.id.clone(),
        correlation: event.correlation.clone(),
        depth: event.depth,
        requeued: false,
    };
    let payload = serde_json::to_value(payload).expect("a handoff job serializes");
    let queued = tx.insert_job(&new_job(
        env,
        HANDOFF_JOB,
        format!("{HANDOFF_JOB}/{}", deal.id),
        payload,
    ))?;
    Ok(usize::from(queued))
}

/// The instant a deal was won: its `won_at`, else the event that moved it to `won`.
fn won_at(tx: &dyn ReadTx, deal: &Record) -> Result<Option<DateTime<Utc>>, StoreError> {
    if let Some(at) = deal.datetime("won_at") {
        return Ok(Some(at));
    }
    let mut query = EventQuery {
        record: Some(deal.reference()),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    let mut won = None;
    loop {
        let page = tx.events(&query)?;
        for event in &page.items {
            if event.entered_state() == Some("won") {
                won = Some(event.occurred_at);
            }
        }
        match page.items.last() {
            Some(last) if page.next_cursor.is_some() => query.after_seq = Some(last.seq),
            _ => return Ok(won),
        }
    }
}

/// Stamps `kickoff_at` and the time from won to kickoff on a project that has none.
fn mark_kickoff(
    tx: &mut dyn WriteTx,
    env: &Env,
    project: &Record,
    event: &Event,
) -> Result<(), EngineError> {
    if project.get("kickoff_at").is_some() {
        return Ok(());
    }
    let mut fields = Map::new();
    fields.insert("kickoff_at".into(), json!(env.now));
    let mut attributes = Map::new();
    let won = match project.attributes.get("won_at").and_then(Value::as_str) {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        None => match project.ref_id("opportunity") {
            Some(deal) => match tx.record(Kind::Opportunity, deal)? {
                Some(deal) => won_at(tx, &deal)?,
                None => None,
            },
            None => None,
        },
    };
    if let Some(won) = won {
        let calendar = project_calendar(tx, project)?;
        let (hours, working_days) = won_to_kickoff(won, env.now, calendar.as_ref());
        attributes.insert("won_at".into(), json!(won));
        attributes.insert("won_to_kickoff_hours".into(), json!(hours.to_string()));
        attributes.insert("won_to_kickoff_working_days".into(), json!(working_days));
    }
    apply(
        tx,
        env,
        Command::Update {
            kind: Kind::Project,
            id: project.id.clone(),
            expected_version: None,
            state: None,
            fields,
            attributes,
        },
        context_after(event),
    )?;
    Ok(())
}

/// Hours from `won` to `kickoff` to two places, and the working days after the day won up to
/// and including the kickoff day, on `calendar` or Monday to Friday.
pub fn won_to_kickoff(
    won: DateTime<Utc>,
    kickoff: DateTime<Utc>,
    calendar: Option<&Calendar>,
) -> (Decimal, i64) {
    let seconds = (kickoff - won).num_seconds().max(0);
    let hours = (Decimal::from(seconds) / Decimal::from(3600))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    let standard = steward_controls::settings::weekdays_calendar();
    let calendar = calendar.unwrap_or(&standard);
    let (first, last) = (won.date_naive(), kickoff.date_naive());
    let working_days = first
        .iter_days()
        .skip(1)
        .take_while(|d| *d <= last)
        .filter(|d| calendar.is_working_day(*d))
        .count() as i64;
    (hours, working_days)
}

fn project_calendar(tx: &dyn ReadTx, project: &Record) -> Result<Option<Calendar>, StoreError> {
    Ok(match project.ref_id("calendar") {
        Some(id) => tx
            .record(Kind::WorkCalendar, id)?
            .map(|r| Calendar::from_record(&r)),
        None => None,
    })
}

/// A project that exists for the deal: one created by its handoff, else one its contract
/// funds.
fn existing_project(
    tx: &dyn ReadTx,
    deal: &str,
    contracts: &[Record],
) -> Result<Option<Record>, StoreError> {
    let by_deal = tx.records(&RecordQuery {
        kind: Some(Kind::Project),
        fields: vec![("opportunity".into(), Value::String(deal.to_string()))],
        limit: 1,
        ..Default::default()
    })?;
    if let Some(project) = by_deal.items.into_iter().next() {
        return Ok(Some(project));
    }
    for contract in contracts {
        let funded = tx.records(&RecordQuery {
            kind: Some(Kind::Project),
            fields: vec![("contract".into(), Value::String(contract.id.clone()))],
            limit: 1,
            ..Default::default()
        })?;
        if let Some(project) = funded.items.into_iter().next() {
            return Ok(Some(project));
        }
    }
    Ok(None)
}

/// What a handoff did, as `deal.handed_off` carries it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HandoffOutcome {
    pub deal: String,
    pub project: Option<String>,
    /// `created`, `adopted` (a project the contract already funded), `exists` (an earlier
    /// handoff's project) or `skipped`.
    pub result: String,
    pub template: Option<String>,
    pub tasks: Vec<String>,
    pub milestones: Vec<String>,
    pub roles: Vec<String>,
    /// Approval requests opened or joined, by kind.
    pub approvals: Vec<Value>,
    /// Facts a reader needs to trust the result, such as a fallback that was used.
    pub notes: Vec<String>,
}

impl Engine {
    /// Runs one handoff job: its effects and the job's completion commit together, fenced by
    /// the claim's attempt, so a job taken over by another worker changes nothing.
    pub(crate) async fn run_handoff_job(
        self: &Arc<Self>,
        job: &steward_store::Job,
    ) -> Result<Option<HandoffOutcome>, EngineError> {
        let payload: HandoffJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| EngineError::Rule(format!("the handoff job payload is invalid: {e}")))?;
        let settings = self.firm_settings();
        let rules = self.rules();
        let approvals = self.approvals();
        let config = self.config.clone();
        let now = self.clock.now();
        let (id, attempt) = (job.id.clone(), job.attempts);
        let outcome = steward_store::write(self.store.as_ref(), move |tx| {
            if !tx.complete_job(&id, attempt, now)? {
                return Ok::<_, EngineError>(None);
            }
            let env = Env {
                rules: &rules,
                config: &config,
                approvals: &approvals,
                now,
            };
            hand_off(tx, &env, &settings, &payload).map(Some)
        })
        .await?;
        match &outcome {
            Some(outcome) if outcome.result == "skipped" => tracing::warn!(
                deal = %outcome.deal,
                reason = %outcome.notes.join("; "),
                "deal not handed off"
            ),
            Some(outcome) => tracing::info!(
                deal = %outcome.deal,
                project = outcome.project.as_deref().unwrap_or(""),
                result = %outcome.result,
                "deal handed off"
            ),
            None => {}
        }
        Ok(outcome)
    }
}

/// Hands one deal off: creates or adopts its project and emits `deal.handed_off`.
pub fn hand_off(
    tx: &mut dyn WriteTx,
    env: &Env,
    settings: &FirmSettings,
    job: &HandoffJob,
) -> Result<HandoffOutcome, EngineError> {
    let context = CommandContext {
        actor: Actor::system(ACTOR),
        cause: Some(job.event.clone()),
        correlation: Some(job.correlation.clone()),
        depth: job.depth + 1,
    };
    let deal = tx
        .record(Kind::Opportunity, &job.deal)?
        .ok_or_else(|| DomainError::NotFound {
            kind: Kind::Opportunity,
            id: job.deal.clone(),
        })?;
    let mut outcome = HandoffOutcome {
        deal: deal.id.clone(),
        ..Default::default()
    };
    if deal.state != "won" {
        outcome.result = "skipped".into();
        outcome
            .notes
            .push(format!("the deal is `{}`, no longer won", deal.state));
        return Ok(outcome);
    }
    let contracts = contracts_of(tx, &deal.id)?;
    let contract = contracts.first();
    match existing_project(tx, &deal.id, &contracts)? {
        Some(project) if job.requeued && project.ref_id("opportunity") == Some(&deal.id) => {
            outcome.result = "skipped".into();
            outcome.project = Some(project.id.clone());
            outcome.notes.push(format!(
                "the deal already has project {}, from an earlier handoff",
                project.title()
            ));
            return Ok(outcome);
        }
        Some(project) if project.ref_id("opportunity") == Some(deal.id.as_str()) => {
            outcome.result = "exists".into();
            outcome.project = Some(project.id.clone());
        }
        Some(project) => {
            adopt(tx, env, &project, &deal, &context)?;
            outcome.result = "adopted".into();
            outcome.project = Some(project.id.clone());
            outcome.notes.push(format!(
                "contract {} already funds project {}, which the deal adopts",
                contract.map(|c| c.title()).unwrap_or_default(),
                project.title()
            ));
        }
        None => {
            if !settings.controls.handoff.enabled {
                outcome.result = "skipped".into();
                outcome
                    .notes
                    .push("the handoff control is switched off".into());
                return Ok(outcome);
            }
            let service_line = service_line_of(&deal, contract);
            let Some(template) = settings.template_for(service_line.as_deref()) else {
                outcome.result = "skipped".into();
                outcome
                    .notes
                    .push(no_template_reason(service_line.as_deref(), &deal.title()));
                return Ok(outcome);
            };
            create_project(
                tx,
                env,
                template,
                service_line,
                &deal,
                contract,
                &context,
                &mut outcome,
            )?;
            outcome.result = "created".into();
        }
    }
    route_approvals(tx, env, &deal, contract, &context, &mut outcome)?;
    apply(
        tx,
        env,
        Command::Emit {
            name: "deal.handed_off".into(),
            record: Some(deal.reference()),
            data: serde_json::to_value(&outcome).unwrap_or(Value::Null),
        },
        context,
    )?;
    Ok(outcome)
}

fn adopt(
    tx: &mut dyn WriteTx,
    env: &Env,
    project: &Record,
    deal: &Record,
    context: &CommandContext,
) -> Result<(), EngineError> {
    let mut fields = Map::new();
    fields.insert("opportunity".into(), json!(deal.id));
    let mut attributes = Map::new();
    if let Some(won) = won_at(tx, deal)? {
        attributes.insert("won_at".into(), json!(won));
    }
    apply(
        tx,
        env,
        Command::Update {
            kind: Kind::Project,
            id: project.id.clone(),
            expected_version: None,
            state: None,
            fields,
            attributes,
        },
        context.clone(),
    )?;
    Ok(())
}

/// Finds a work calendar by name, without case.
fn calendar_named(tx: &dyn ReadTx, name: &str) -> Result<Option<Record>, StoreError> {
    let wanted = name.trim().to_lowercase();
    let mut found = None;
    tx.scan_records(Kind::WorkCalendar, &mut |record| {
        if record.title().trim().to_lowercase() == wanted {
            found = Some(record);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(found)
}

/// Finds an employee by id, name or e-mail address, without case for names and addresses.
fn employee_named(tx: &dyn ReadTx, name: &str) -> Result<Option<Record>, StoreError> {
    if let Some(record) = tx.record(Kind::Employee, name)? {
        return Ok(Some(record));
    }
    let wanted = name.trim().to_lowercase();
    let mut found = None;
    tx.scan_records(Kind::Employee, &mut |record| {
        let email = record.text("email").map(|e| e.trim().to_lowercase());
        if record.title().trim().to_lowercase() == wanted || email.as_deref() == Some(&wanted) {
            found = Some(record);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(found)
}

fn delivery_owner(
    tx: &dyn ReadTx,
    template: &ProjectTemplate,
    deal: &Record,
    contract: Option<&Record>,
) -> Result<Option<String>, EngineError> {
    let of_contract = contract.and_then(|c| c.ref_id("owner")).map(str::to_string);
    let of_deal = deal.ref_id("owner").map(str::to_string);
    Ok(match &template.owner {
        OwnerRule::ContractOwner => of_contract.or(of_deal),
        OwnerRule::DealOwner => of_deal.or(of_contract),
        OwnerRule::Person(name) => match employee_named(tx, name)? {
            Some(person) => Some(person.id),
            None => {
                return Err(DomainError::Invalid(format!(
                    "the project template of service line `{}` names owner `{name}`, and no employee has that id, name or e-mail; correct `owner` in {}",
                    template.service_line, template.origin
                ))
                .into());
            }
        },
    })
}

/// Fills `{client}`, `{deal}`, `{contract}` and `{service_line}` in a template's name.
fn project_name(
    template: &ProjectTemplate,
    client: &str,
    deal: &Record,
    contract: Option<&Record>,
    service_line: &str,
) -> String {
    template
        .project_name
        .replace("{client}", client)
        .replace("{deal}", &deal.title())
        .replace(
            "{contract}",
            &contract.map(Record::title).unwrap_or_else(|| deal.title()),
        )
        .replace("{service_line}", service_line)
}

/// Hours the contract sells: the quantities of its open lines measured in hours.
fn contract_hours(tx: &dyn ReadTx, contract: &Record) -> Result<Option<Decimal>, StoreError> {
    let lines = crate::controls::all_records(
        tx,
        RecordQuery {
            kind: Some(Kind::ContractLine),
            fields: vec![("contract".into(), Value::String(contract.id.clone()))],
            ..Default::default()
        },
    )?;
    let hours: Decimal = lines
        .iter()
        .filter(|l| l.state != "cancelled")
        .filter(|l| {
            l.text("unit")
                .is_some_and(|u| u.trim().to_lowercase().starts_with("hour"))
        })
        .filter_map(|l| l.decimal("quantity"))
        .sum();
    Ok((!hours.is_zero()).then_some(hours))
}

fn create(
    tx: &mut dyn WriteTx,
    env: &Env,
    kind: Kind,
    state: Option<&str>,
    fields: Value,
    attributes: Value,
    context: &CommandContext,
) -> Result<String, EngineError> {
    let id = new_id();
    apply(
        tx,
        env,
        Command::Create {
            kind,
            id: Some(id.clone()),
            state: state.map(str::to_string),
            fields: fields.as_object().cloned().unwrap_or_default(),
            attributes: attributes.as_object().cloned().unwrap_or_default(),
        },
        context.clone(),
    )?;
    Ok(id)
}

fn date_text(day: NaiveDate) -> Value {
    Value::String(day.format("%Y-%m-%d").to_string())
}

/// Returns the service line of a deal: its contract's, else its own.
fn service_line_of(deal: &Record, contract: Option<&Record>) -> Option<String> {
    contract
        .and_then(|c| c.text("service_line"))
        .or(deal.text("service_line"))
        .map(str::to_string)
}

/// Explains why a deal got no project, and what to do about it.
fn no_template_reason(service_line: Option<&str>, deal: &str) -> String {
    format!(
        "no project template covers service line `{}` of deal {deal}, so no project was \
         created; add a template for it under `templates:` in the rules folder (or mark one \
         `default: true`) and install the folder, which hands the deal off again, or create \
         its project with `opportunity` set to the deal",
        service_line.unwrap_or("(none)")
    )
}

#[allow(clippy::too_many_arguments)]
fn create_project(
    tx: &mut dyn WriteTx,
    env: &Env,
    template: &ProjectTemplate,
    service_line: Option<String>,
    deal: &Record,
    contract: Option<&Record>,
    context: &CommandContext,
    outcome: &mut HandoffOutcome,
) -> Result<(), EngineError> {
    outcome.template = Some(template.service_line.clone());
    let service_line = service_line.unwrap_or_else(|| template.service_line.clone());

    let calendar_record = match &template.calendar {
        Some(name) => {
            let found = calendar_named(tx, name)?;
            if found.is_none() {
                outcome.notes.push(format!(
                    "no work calendar is named `{name}`, so working days are Monday to Friday"
                ));
            }
            found
        }
        None => None,
    };
    let calendar = calendar_record.as_ref().map(Calendar::from_record);
    let start = contract
        .and_then(|c| c.date("start_date"))
        .unwrap_or_else(|| env.now.date_naive());
    let end = contract.and_then(|c| c.date("end_date")).or_else(|| {
        template
            .duration
            .map(|span| span.add_to(start, calendar.as_ref()))
    });

    let owner = delivery_owner(tx, template, deal, contract)?;
    if owner.is_none() {
        outcome
            .notes
            .push("neither the contract nor the deal names an owner".into());
    }
    let client_id = contract
        .and_then(|c| c.ref_id("client"))
        .or(deal.ref_id("client"));
    let client_name = match client_id {
        Some(id) => tx
            .record(Kind::Client, id)?
            .map(|c| c.title())
            .unwrap_or_default(),
        None => String::new(),
    };
    let (budget, currency) = match contract.and_then(|c| c.decimal("amount")) {
        Some(amount) => (Some(amount), contract.and_then(|c| c.text("currency"))),
        None => {
            if deal.decimal("amount").is_some() {
                outcome
                    .notes
                    .push("the contract has no amount, so the budget is the deal's".into());
            }
            (deal.decimal("amount"), deal.text("currency"))
        }
    };
    let budget_hours = match contract {
        Some(contract) => contract_hours(tx, contract)?,
        None => None,
    }
    .or_else(|| {
        let planned: Decimal = template.tasks.iter().filter_map(|t| t.planned_hours).sum();
        (!planned.is_zero()).then_some(planned)
    });

    let won = won_at(tx, deal)?;
    let project = create(
        tx,
        env,
        Kind::Project,
        Some(&template.state),
        json!({
            "name": project_name(template, &client_name, deal, contract, &service_line),
            "client": client_id,
            "contract": contract.map(|c| c.id.clone()),
            "owner": owner,
            "currency": currency,
            "budget": budget.map(|b| b.to_string()),
            "budget_hours": budget_hours.map(|h| h.to_string()),
            "start_date": date_text(start),
            "end_date": end.map(date_text),
            "service_line": service_line,
            "billable": true,
            "calendar": calendar_record.as_ref().map(|c| c.id.clone()),
            "opportunity": deal.id,
            "template": template.service_line,
        }),
        json!({ "won_at": won, "handed_off_at": env.now }),
        context,
    )?;
    outcome.project = Some(project.clone());

    for task in &template.tasks {
        let deadline = task.due.map(|span| span.add_to(start, calendar.as_ref()));
        let assignees: Vec<&String> = if task.kickoff {
            owner.iter().collect()
        } else {
            Vec::new()
        };
        let id = create(
            tx,
            env,
            Kind::Task,
            None,
            json!({
                "name": task.name,
                "project": project,
                "deadline": deadline.map(date_text),
                "planned_hours": task.planned_hours.map(|h| h.to_string()),
                "assignees": assignees,
            }),
            json!({ KICKOFF_ATTRIBUTE: task.kickoff }),
            context,
        )?;
        outcome.tasks.push(id);
    }

    for milestone in &template.milestones {
        let deadline = milestone.due.add_to(start, calendar.as_ref());
        let amount = match (milestone.percentage, budget, currency) {
            (Some(share), Some(budget), Some(code)) => {
                steward_domain::money::Currency::from_code(code).map(|currency| {
                    steward_domain::money::Money::round(
                        budget * share / Decimal::ONE_HUNDRED,
                        currency,
                    )
                    .amount
                    .to_string()
                })
            }
            _ => None,
        };
        let id = create(
            tx,
            env,
            Kind::Milestone,
            None,
            json!({
                "name": milestone.name,
                "project": project,
                "deadline": date_text(deadline),
                "percentage": milestone.percentage.map(|p| p.to_string()),
                "currency": amount.as_ref().and(currency),
                "amount": amount,
            }),
            json!({}),
            context,
        )?;
        outcome.milestones.push(id);
    }

    for role in &template.roles {
        let first = role.from.add_to(start, calendar.as_ref());
        let last = match role.until {
            Some(span) => Some(span.add_to(start, calendar.as_ref())),
            None => end,
        };
        let id = create(
            tx,
            env,
            Kind::Allocation,
            Some("planned"),
            json!({
                "project": project,
                "role": role.role,
                "required_skills": role.skills,
                "hours_per_week": role.hours_per_week.to_string(),
                "start_date": date_text(first),
                "end_date": last.map(date_text),
            }),
            json!({}),
            context,
        )?;
        outcome.roles.push(id);
    }
    Ok(())
}

/// Opens the approval requests that the deal's terms call for, unless one was approved
/// already: `payment_terms` for non-standard terms and `subcontract` for subcontracted work.
fn route_approvals(
    tx: &mut dyn WriteTx,
    env: &Env,
    deal: &Record,
    contract: Option<&Record>,
    context: &CommandContext,
    outcome: &mut HandoffOutcome,
) -> Result<(), EngineError> {
    let subject = contract.unwrap_or(deal);
    let non_standard = [Some(deal), contract]
        .into_iter()
        .flatten()
        .any(|r| r.text("terms") == Some("non_standard"));
    let subcontracted = [Some(deal), contract]
        .into_iter()
        .flatten()
        .any(|r| r.bool("subcontractors") == Some(true));
    let wanted = [
        (
            non_standard,
            "payment_terms",
            &["payment_terms", "proposal"][..],
        ),
        (subcontracted, "subcontract", &["subcontract"][..]),
    ];
    let subjects = [deal.id.clone(), subject.id.clone()];
    for (needed, kind, approving) in wanted {
        if !needed {
            continue;
        }
        if crate::approvals::approved_request_exists(tx, &subjects, approving)? {
            outcome
                .approvals
                .push(json!({"kind": kind, "state": "approved"}));
            continue;
        }
        if env.approvals.config.policy_for(kind).is_none() {
            outcome.notes.push(format!(
                "no approval policy routes `{kind}` requests, so none was opened; add one under `policies:`"
            ));
            continue;
        }
        let opened = crate::approvals::open(
            tx,
            env,
            crate::approvals::OpenRequest {
                kind: kind.to_string(),
                subject: Some(RecordRef::new(subject.kind, subject.id.clone())),
                ..Default::default()
            },
            context,
        )?;
        outcome.approvals.push(json!({
            "kind": kind,
            "request": opened.request.id,
            "state": opened.request.state,
            "created": opened.created,
        }));
    }
    Ok(())
}

/// Queues the handoff again of every won and signed deal that has no project and that a
/// template of `settings` now covers, after `settings` were installed as `version`. The job
/// key names the version, so each version queues a deal at most once. Returns the number of
/// jobs queued.
pub(crate) fn queue_newly_covered(
    tx: &mut dyn WriteTx,
    env: &Env,
    settings: &FirmSettings,
    version: i64,
) -> Result<usize, EngineError> {
    if settings.templates.is_empty() || !settings.controls.handoff.enabled {
        return Ok(0);
    }
    let won = crate::controls::all_records(
        tx,
        RecordQuery {
            kind: Some(Kind::Opportunity),
            state: Some("won".into()),
            ..Default::default()
        },
    )?;
    let mut queued = 0;
    for deal in won {
        let contracts = contracts_of(tx, &deal.id)?;
        if !is_signed(&deal, &contracts) || existing_project(tx, &deal.id, &contracts)?.is_some() {
            continue;
        }
        let service_line = service_line_of(&deal, contracts.first());
        if settings.template_for(service_line.as_deref()).is_none() {
            continue;
        }
        let Some(event) = latest_event(tx, &deal)? else {
            continue;
        };
        let payload = HandoffJob {
            deal: deal.id.clone(),
            event: event.id.clone(),
            correlation: event.correlation.clone(),
            depth: event.depth,
            requeued: true,
        };
        let payload = serde_json::to_value(payload).expect("a handoff job serializes");
        let key = format!("{HANDOFF_JOB}/{}/settings-{version}", deal.id);
        if tx.insert_job(&new_job(env, HANDOFF_JOB, key, payload))? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Returns the newest event of a deal, which a handoff queued again names as its cause.
fn latest_event(tx: &dyn ReadTx, deal: &Record) -> Result<Option<Event>, StoreError> {
    let mut query = EventQuery {
        record: Some(deal.reference()),
        limit: steward_store::MAX_PAGE,
        ..Default::default()
    };
    let mut latest = None;
    loop {
        let page = tx.events(&query)?;
        let next = page.next_cursor.is_some();
        if let Some(last) = page.items.into_iter().last() {
            query.after_seq = Some(last.seq);
            latest = Some(last);
        }
        if !next {
            return Ok(latest);
        }
    }
}

/// Finds the won and signed deals whose kickoff is late, for the `handoff_overdue` control,
/// and those with no project that no template covers, for `handoff_no_template`. A deal with
/// no `won_at` is dated by the event that moved it to `won`.
pub fn check_overdue(
    tx: &dyn ReadTx,
    firm: &FirmSettings,
    today: NaiveDate,
) -> Result<Vec<(&'static str, Vec<steward_domain::finding::RaisedFinding>)>, StoreError> {
    use steward_controls::handoff::{
        HandedOffProject, WonDeal, handoff_no_template, handoff_overdue,
    };
    use steward_controls::health::Accountable;
    use steward_controls::{HANDOFF_NO_TEMPLATE, HANDOFF_OVERDUE};

    let settings = &firm.controls;
    let overdue_on = settings.is_on(HANDOFF_OVERDUE);
    let no_template_on = settings.is_on(HANDOFF_NO_TEMPLATE);
    if !overdue_on && !no_template_on {
        return Ok(vec![
            (HANDOFF_OVERDUE, Vec::new()),
            (HANDOFF_NO_TEMPLATE, Vec::new()),
        ]);
    }
    let won = crate::controls::all_records(
        tx,
        RecordQuery {
            kind: Some(Kind::Opportunity),
            state: Some("won".into()),
            ..Default::default()
        },
    )?;
    let mut deals = Vec::new();
    for deal in won {
        let contracts = contracts_of(tx, &deal.id)?;
        if !is_signed(&deal, &contracts) {
            continue;
        }
        let Some(won_at) = won_at(tx, &deal)? else {
            continue;
        };
        let project = existing_project(tx, &deal.id, &contracts)?;
        let service_line = service_line_of(&deal, contracts.first());
        let uncovered = project.is_none()
            && settings.handoff.enabled
            && firm.template_for(service_line.as_deref()).is_none();
        let owner = project
            .as_ref()
            .and_then(|p| p.ref_id("owner"))
            .map(|id| (id, "project manager"))
            .or_else(|| {
                contracts
                    .first()
                    .and_then(|c| c.ref_id("owner"))
                    .map(|id| (id, "delivery owner"))
            })
            .or_else(|| deal.ref_id("owner").map(|id| (id, "deal owner")));
        let accountable = match owner {
            Some((id, capacity)) => {
                let name = tx.record(Kind::Employee, id)?.map(|e| e.title());
                Some(Accountable::new(id, name, capacity))
            }
            None => None,
        };
        deals.push(WonDeal {
            id: deal.id.clone(),
            name: deal.title(),
            won_at,
            project: project.map(|p| HandedOffProject {
                id: p.id.clone(),
                name: p.title(),
                state: p.state.clone(),
                kickoff_at: p.datetime("kickoff_at"),
            }),
            accountable,
            uncovered_service_line: uncovered
                .then(|| service_line.unwrap_or_else(|| "(none)".into())),
        });
    }
    let overdue = if overdue_on {
        handoff_overdue(&deals, &settings.handoff, today)
    } else {
        Vec::new()
    };
    let no_template = if no_template_on {
        handoff_no_template(&deals)
    } else {
        Vec::new()
    };
    Ok(vec![
        (HANDOFF_OVERDUE, overdue),
        (HANDOFF_NO_TEMPLATE, no_template),
    ])
}
