//! The firm's KPIs for one month, computed from stored records with exact decimals.
//!
//! Each KPI's formula is written on its field below and in the README. A ratio is `null`
//! when its denominator is zero, and an average or median is `null` when there is nothing to
//! average.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::controls::stored_flag;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use steward_billing::reconcile::Status;
use steward_domain::{Calendar, Kind, Money, Record};
use steward_store::{AggregateQuery, FieldRange, ReadTx, Store};

use super::assess::{Overrides, assess};
use super::index::{Index, all_records};
use super::walk::{in_read, map_books};
use super::{BillingPeriod, Selection, load, stored_settings, sum_by_currency};
use crate::EngineError;

/// The KPIs of one month.
#[derive(Clone, Debug, Serialize)]
pub struct Kpis {
    pub period: String,
    pub utilization: Utilization,
    pub realization: Realization,
    pub billing_delay: BillingDelay,
    pub unbilled: Unbilled,
    pub approval_backlog: ApprovalBacklog,
    pub won_to_kickoff: WonToKickoff,
    pub margin_by_project: Vec<ProjectMargin>,
}

/// `billable_hours / capacity_hours`. Billable hours: time entries dated in the month, not
/// rejected, billable (or naming a contract line when the flag is unset). Capacity hours: for
/// every active employee, the hours their work calendar schedules on each day of the month
/// (public holidays excluded; 8 hours Monday to Friday without a calendar). Leaves are not
/// deducted.
#[derive(Clone, Debug, Serialize)]
pub struct Utilization {
    pub value: Option<Decimal>,
    pub billable_hours: Decimal,
    pub capacity_hours: Decimal,
}

/// `invoiced_hours / billable_hours` over the billable time entries of billed contracts dated
/// in the month, where `invoiced_hours` is what released or paid invoices billed of them net
/// of credit notes.
#[derive(Clone, Debug, Serialize)]
pub struct Realization {
    pub value: Option<Decimal>,
    pub invoiced_hours: Decimal,
    pub billable_hours: Decimal,
}

/// Hours-weighted mean of `issue_date − date` in days over the time entries dated in the month
/// that a released or paid invoice billed, using the first such invoice of each entry.
#[derive(Clone, Debug, Serialize)]
pub struct BillingDelay {
    pub mean_days: Option<Decimal>,
    pub invoiced_hours: Decimal,
}

/// Work delivered up to the month's end and not invoiced yet. `ready_amount`: the untaxed
/// amount of the invoices the ready items would make, by currency (what `billing draft`
/// would bill). `hours`: hours of billable time entries still to bill in any state but
/// rejected, approved or not.
#[derive(Clone, Debug, Serialize)]
pub struct Unbilled {
    pub ready_amount: BTreeMap<String, Decimal>,
    pub hours: Decimal,
}

/// Approval requests still pending now, by kind, and the age in days of the oldest
/// (`now − waiting_since`).
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalBacklog {
    pub pending: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub oldest_days: Option<Decimal>,
}

/// Median of `kickoff_at − won_at` in days, over projects with a `kickoff_at` whose
/// `opportunity` has a `won_at`. `null` when no project has both.
#[derive(Clone, Debug, Serialize)]
pub struct WonToKickoff {
    pub median_days: Option<Decimal>,
    pub projects: usize,
}

/// One project's margin up to the month's end. `revenue`: subtotals of released or paid
/// invoice lines on the contract lines of the project (credit notes negative), or on every
/// line of its contract when the line names no project. `cost`: hours of its time entries
/// that are not rejected times each employee's `cost_rate`. `margin = revenue − cost` and
/// `margin_ratio = margin / revenue`, both `null` when the two are in different currencies.
#[derive(Clone, Debug, Serialize)]
pub struct ProjectMargin {
    pub project: String,
    pub name: Option<String>,
    pub currency: Option<String>,
    pub revenue: Decimal,
    pub cost: Decimal,
    pub cost_currency: Option<String>,
    pub margin: Option<Decimal>,
    pub margin_ratio: Option<Decimal>,
}

/// Returns every entry state in which time counts towards utilization and cost: all but
/// rejected, as for the margin control.
fn counted_states() -> Vec<String> {
    crate::health::COSTED
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn ratio(numerator: Decimal, denominator: Decimal) -> Option<Decimal> {
    (!denominator.is_zero()).then(|| (numerator / denominator).round_dp(4))
}

fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Decimal {
    Decimal::from((to - from).num_seconds()) / Decimal::from(86_400)
}

/// One contract's share of the firm's billing KPIs.
#[derive(Default)]
struct ContractShare {
    ready: Option<Money>,
    invoiced_hours: Decimal,
    billable_hours: Decimal,
    delay_weighted: Decimal,
    delay_hours: Decimal,
    unbilled_hours: Decimal,
}

/// Measures one contract's ready amount, realization, billing delay and unbilled hours.
fn share(
    index: &Index,
    books: &load::Books,
    period: BillingPeriod,
    today: NaiveDate,
    overrides: &Overrides,
) -> ContractShare {
    let mut share = ContractShare::default();
    let (view, _) = assess(books, period, today, overrides);
    // Only what a draft run would bill now: blocked contracts bill nothing, and a contract
    // with this month's draft already written gets that draft back.
    if view.ready && view.draft_invoice.is_none() {
        share.ready = view.untaxed;
    }
    let rejected: HashSet<&str> = books
        .items
        .iter()
        .filter(|i| i.state_name() == "rejected")
        .map(|i| i.id.as_str())
        .collect();
    let input = books.input(period.period(), today);
    let report = steward_billing::reconcile::reconcile(&input);
    for entry in &report.entries {
        if entry.source.kind != Kind::Timesheet || entry.status == Status::NotBillable {
            continue;
        }
        if !rejected.contains(entry.source.id.as_str()) {
            share.unbilled_hours += entry.unbilled;
        }
        let Some(date) = entry
            .date
            .filter(|d| period.start <= *d && *d <= period.end)
        else {
            continue;
        };
        let net = entry.invoiced - entry.credited;
        share.billable_hours += entry.delivered;
        share.invoiced_hours += net;
        let issued = entry
            .invoices
            .iter()
            .filter_map(|id| index.invoice(id))
            .filter_map(|i| i.date("issue_date"))
            .min();
        if let Some(issued) = issued
            && net > Decimal::ZERO
        {
            share.delay_weighted += net * Decimal::from((issued - date).num_days());
            share.delay_hours += net;
        }
    }
    share
}

/// Computes the KPIs of `period`. The contracts are walked as [`super::walk`] describes;
/// the firm-wide figures come from one read transaction.
pub fn compute(
    store: &dyn Store,
    period: BillingPeriod,
    now: DateTime<Utc>,
) -> Result<Kpis, EngineError> {
    let today = now.date_naive();
    let (settings, overrides) =
        in_read(store, |tx| Ok((stored_settings(tx)?, Overrides::read(tx)?)))?;
    let selection = Selection {
        period,
        contract: None,
    };
    let shares = map_books(store, &selection, &settings, &|index, books| {
        Ok(share(index, &books, period, today, &overrides))
    })?;

    let mut ready_amounts = Vec::new();
    let mut realization = Realization {
        value: None,
        invoiced_hours: Decimal::ZERO,
        billable_hours: Decimal::ZERO,
    };
    let mut delay_weighted = Decimal::ZERO;
    let mut delay_hours = Decimal::ZERO;
    let mut unbilled_hours = Decimal::ZERO;
    for share in shares {
        ready_amounts.extend(share.ready);
        realization.invoiced_hours += share.invoiced_hours;
        realization.billable_hours += share.billable_hours;
        delay_weighted += share.delay_weighted;
        delay_hours += share.delay_hours;
        unbilled_hours += share.unbilled_hours;
    }
    realization.value = ratio(realization.invoiced_hours, realization.billable_hours);

    in_read(store, |tx| {
        let index = Index::firm(tx)?;
        let mut employees: HashMap<String, Record> = HashMap::new();
        tx.scan_records(Kind::Employee, &mut |r| {
            employees.insert(r.id.clone(), r);
            Ok(true)
        })?;
        Ok(Kpis {
            period: period.label(),
            utilization: utilization(tx, &employees, period)?,
            realization,
            billing_delay: BillingDelay {
                mean_days: ratio(delay_weighted, delay_hours).map(|d| d.round_dp(2)),
                invoiced_hours: delay_hours,
            },
            unbilled: Unbilled {
                ready_amount: sum_by_currency(ready_amounts.iter()),
                hours: unbilled_hours,
            },
            approval_backlog: backlog(tx, now)?,
            won_to_kickoff: won_to_kickoff(tx)?,
            margin_by_project: margins(tx, &index, &employees, period.end)?,
        })
    })
}

fn utilization(
    tx: &dyn ReadTx,
    employees: &HashMap<String, Record>,
    period: BillingPeriod,
) -> Result<Utilization, EngineError> {
    let mut calendars: HashMap<String, Calendar> = HashMap::new();
    tx.scan_records(Kind::WorkCalendar, &mut |r| {
        calendars.insert(r.id.clone(), Calendar::from_record(&r));
        Ok(true)
    })?;
    let days: Vec<NaiveDate> = period
        .start
        .iter_days()
        .take_while(|d| *d <= period.end)
        .collect();
    let eight = Decimal::from(8);
    let standard = Calendar {
        name: "standard".into(),
        week: [
            eight,
            eight,
            eight,
            eight,
            eight,
            Decimal::ZERO,
            Decimal::ZERO,
        ],
        hours_per_day: eight,
        holidays: BTreeMap::new(),
    };
    let mut capacity = Decimal::ZERO;
    for employee in employees.values().filter(|e| e.state == "active") {
        let calendar = employee
            .ref_id("calendar")
            .and_then(|id| calendars.get(id))
            .unwrap_or(&standard);
        capacity += days.iter().map(|d| calendar.scheduled(*d)).sum::<Decimal>();
    }
    // An entry without a billable flag is billable when it names a contract line.
    let rows = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["billable".into(), "contract_line".into()],
        sum: Some("hours".into()),
        states: counted_states(),
        min_sum: None,
        range: Some(FieldRange {
            field: "date".into(),
            from: Some(period.start.to_string()),
            to: Some(period.end.to_string()),
        }),
    })?;
    let billable: Decimal = rows
        .iter()
        .filter(|row| stored_flag(&row.keys[0]).unwrap_or(!row.keys[1].is_null()))
        .map(|row| row.sum)
        .sum();
    Ok(Utilization {
        value: ratio(billable, capacity),
        billable_hours: billable,
        capacity_hours: capacity,
    })
}

fn backlog(tx: &dyn ReadTx, now: DateTime<Utc>) -> Result<ApprovalBacklog, EngineError> {
    let mut query = steward_store::RecordQuery {
        kind: Some(Kind::ApprovalRequest),
        state: Some("pending".into()),
        ..Default::default()
    };
    query.limit = steward_store::MAX_PAGE;
    let pending = all_records(tx, query)?;
    let mut by_kind = BTreeMap::new();
    let mut oldest: Option<DateTime<Utc>> = None;
    for request in &pending {
        let kind = request
            .text("request_kind")
            .unwrap_or("unknown")
            .to_string();
        *by_kind.entry(kind).or_insert(0) += 1;
        let since = request
            .datetime("waiting_since")
            .unwrap_or(request.created_at);
        oldest = Some(oldest.map_or(since, |o| o.min(since)));
    }
    Ok(ApprovalBacklog {
        pending: pending.len(),
        by_kind,
        oldest_days: oldest.map(|o| days_between(o, now).round_dp(2)),
    })
}

fn won_to_kickoff(tx: &dyn ReadTx) -> Result<WonToKickoff, EngineError> {
    let mut pairs = Vec::new();
    tx.scan_records(Kind::Project, &mut |r| {
        if let (Some(kickoff), Some(deal)) = (r.datetime("kickoff_at"), r.ref_id("opportunity")) {
            pairs.push((kickoff, deal.to_string()));
        }
        Ok(true)
    })?;
    let mut days = Vec::new();
    for (kickoff, deal) in pairs {
        if let Some(won) = tx
            .record(Kind::Opportunity, &deal)?
            .and_then(|d| d.datetime("won_at"))
        {
            days.push(days_between(won, kickoff));
        }
    }
    days.sort();
    let median = match days.len() {
        0 => None,
        n if n % 2 == 1 => Some(days[n / 2]),
        n => Some((days[n / 2 - 1] + days[n / 2]) / Decimal::TWO),
    };
    Ok(WonToKickoff {
        median_days: median.map(|d| d.round_dp(2)),
        projects: days.len(),
    })
}

fn margins(
    tx: &dyn ReadTx,
    index: &Index,
    employees: &HashMap<String, Record>,
    until: NaiveDate,
) -> Result<Vec<ProjectMargin>, EngineError> {
    let mut projects: BTreeMap<String, ProjectMargin> = BTreeMap::new();
    let mut contracts_of: HashMap<String, String> = HashMap::new();
    tx.scan_records(Kind::Project, &mut |r| {
        if let Some(contract) = r.ref_id("contract") {
            contracts_of.insert(r.id.clone(), contract.to_string());
        }
        projects.insert(
            r.id.clone(),
            ProjectMargin {
                project: r.id.clone(),
                name: r.text("name").map(String::from),
                currency: None,
                revenue: Decimal::ZERO,
                cost: Decimal::ZERO,
                cost_currency: None,
                margin: None,
                margin_ratio: None,
            },
        );
        Ok(true)
    })?;

    // Revenue: each issued invoice line goes to its contract line's project, else to the
    // contract's project when it has exactly one.
    let mut projects_of_contract: HashMap<&str, Vec<&str>> = HashMap::new();
    for (project, contract) in &contracts_of {
        projects_of_contract
            .entry(contract)
            .or_default()
            .push(project);
    }
    for invoice in index.all_invoices() {
        let issued = matches!(invoice.state.as_str(), "released" | "paid");
        if !issued || invoice.date("issue_date").is_some_and(|d| d > until) {
            continue;
        }
        let credit = invoice.text("move_type") == Some("credit_note");
        for line in index.invoice_lines(&invoice.id) {
            let contract_line = line.ref_id("contract_line").and_then(|id| {
                index
                    .lines(invoice.ref_id("contract").unwrap_or_default())
                    .iter()
                    .find(|l| l.id == id)
                    .cloned()
                    .or_else(|| tx.record(Kind::ContractLine, id).ok().flatten())
            });
            let project = contract_line
                .as_ref()
                .and_then(|l| l.ref_id("project").map(String::from))
                .or_else(|| {
                    let contract = contract_line
                        .as_ref()
                        .and_then(|l| l.ref_id("contract"))
                        .or(invoice.ref_id("contract"))?;
                    match projects_of_contract.get(contract).map(Vec::as_slice) {
                        Some([only]) => Some((*only).to_string()),
                        _ => None,
                    }
                });
            let Some(margin) = project.and_then(|p| projects.get_mut(&p)) else {
                continue;
            };
            let subtotal = line.decimal("subtotal").unwrap_or_default();
            margin.revenue += if credit { -subtotal.abs() } else { subtotal };
            margin.currency = invoice.text("currency").map(String::from);
        }
    }

    // Cost: each person's hours on the project until the end of the month, at their cost rate.
    let hours = tx.aggregate(&AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["project".into(), "employee".into()],
        sum: Some("hours".into()),
        states: counted_states(),
        min_sum: None,
        range: Some(FieldRange {
            field: "date".into(),
            from: None,
            to: Some(until.to_string()),
        }),
    })?;
    for row in hours {
        let project = row.keys[0].as_str().and_then(|p| projects.get_mut(p));
        let employee = row.keys[1].as_str().and_then(|e| employees.get(e));
        if let (Some(margin), Some(employee)) = (project, employee) {
            let rate = employee.decimal("cost_rate").unwrap_or_default();
            margin.cost += row.sum * rate;
            if margin.cost_currency.is_none() {
                margin.cost_currency = employee.text("currency").map(String::from);
            }
        }
    }

    let mut rows: Vec<ProjectMargin> = projects
        .into_values()
        .filter(|m| !m.revenue.is_zero() || !m.cost.is_zero())
        .collect();
    for row in &mut rows {
        row.cost = row.cost.round_dp(2);
        let same_currency = match (&row.currency, &row.cost_currency) {
            (Some(a), Some(b)) => a == b,
            (None, _) | (_, None) => true,
        };
        if same_currency {
            let margin = row.revenue - row.cost;
            row.margin = Some(margin);
            row.margin_ratio = ratio(margin, row.revenue);
        }
    }
    Ok(rows)
}
