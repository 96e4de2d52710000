//! Staffing from the stored records: people with their calendars, approved leaves and live
//! allocations, turned into the input of `steward_controls::staffing`, its findings, and the
//! capacity and candidate views of the API.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use steward_controls::Calendar;
use steward_controls::settings::StaffingSettings;
use steward_controls::staffing::{
    self, Booking, Candidate, LeaveSpan, PersonPlan, StaffMember, StaffingInput,
};
use steward_domain::finding::RaisedFinding;
use steward_domain::{DomainError, Kind, Record};
use steward_store::{ReadTx, StoreError};

use crate::Engine;
use crate::error::EngineError;

/// Most weeks one capacity request may cover.
pub const MAX_WEEKS: u32 = 52;

/// Reads what staffing is computed over: active people, approved leaves, and planned or
/// confirmed allocations of projects that are not closed or cancelled.
pub fn load_input(tx: &dyn ReadTx) -> Result<StaffingInput, StoreError> {
    let mut calendars = HashMap::new();
    tx.scan_records(Kind::WorkCalendar, &mut |record| {
        calendars.insert(record.id.clone(), Calendar::from_record(&record));
        Ok(true)
    })?;
    let mut input = StaffingInput::default();
    tx.scan_records(Kind::Employee, &mut |record| {
        if record.state == "active" {
            input.people.push(member(&record, &calendars));
        }
        Ok(true)
    })?;
    tx.scan_records(Kind::Leave, &mut |record| {
        if record.state != "approved" {
            return Ok(true);
        }
        if let (Some(employee), Some(first), Some(last)) = (
            record.ref_id("employee"),
            record.date("start_date"),
            record.date("end_date"),
        ) {
            input.leaves.push(LeaveSpan {
                employee: employee.to_string(),
                first,
                last,
                hours: record.decimal("hours"),
            });
        }
        Ok(true)
    })?;
    let mut projects: HashMap<String, Option<Record>> = HashMap::new();
    tx.scan_records(Kind::Allocation, &mut |record| {
        if record.state == "ended" {
            return Ok(true);
        }
        let Some(project_id) = record.ref_id("project") else {
            return Ok(true);
        };
        if !projects.contains_key(project_id) {
            projects.insert(
                project_id.to_string(),
                tx.record(Kind::Project, project_id)?,
            );
        }
        let Some(project) = projects[project_id].as_ref() else {
            return Ok(true);
        };
        if matches!(project.state.as_str(), "closed" | "cancelled") {
            return Ok(true);
        }
        if let Some(booking) = booking(&record, project) {
            input.bookings.push(booking);
        }
        Ok(true)
    })?;
    Ok(input)
}

fn member(record: &Record, calendars: &HashMap<String, Calendar>) -> StaffMember {
    let skills = record
        .get("skills")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    StaffMember {
        id: record.id.clone(),
        name: record.title(),
        manager: record.ref_id("manager").map(str::to_string),
        role: record.text("role").map(str::to_string),
        skills,
        cost_rate: record.decimal("cost_rate"),
        currency: record.text("currency").map(str::to_string),
        calendar: record
            .ref_id("calendar")
            .and_then(|id| calendars.get(id))
            .cloned(),
    }
}

fn booking(record: &Record, project: &Record) -> Option<Booking> {
    let required_skills = record
        .get("required_skills")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(Booking {
        id: record.id.clone(),
        project: project.id.clone(),
        project_name: project.title(),
        project_owner: project.ref_id("owner").map(str::to_string),
        employee: record.ref_id("employee").map(str::to_string),
        role: record.text("role").map(str::to_string),
        required_skills,
        hours_per_week: record.decimal("hours_per_week")?,
        start: record.date("start_date")?,
        end: record.date("end_date"),
        state: record.state.clone(),
    })
}

/// Runs the four staffing controls for the weeks from `today`; a control switched off
/// returns no findings, so its open findings resolve.
pub fn check(
    tx: &dyn ReadTx,
    settings: &steward_controls::settings::ControlSettings,
    today: NaiveDate,
) -> Result<Vec<(&'static str, Vec<RaisedFinding>)>, StoreError> {
    use steward_controls::{
        STAFFING_BENCH, STAFFING_OVERBOOKED, STAFFING_SKILL_MISMATCH, STAFFING_UNSTAFFED_ROLE,
    };
    let staffing: &StaffingSettings = &settings.staffing;
    let input = load_input(tx)?;
    let plans = staffing::plan(&input, today, staffing.weeks.max(1));
    let only_if_on = |control: &'static str, findings: Vec<RaisedFinding>| {
        let findings = if settings.is_on(control) {
            findings
        } else {
            Vec::new()
        };
        (control, findings)
    };
    Ok(vec![
        only_if_on(
            STAFFING_OVERBOOKED,
            staffing::overbooked(&input, &plans, staffing),
        ),
        only_if_on(STAFFING_BENCH, staffing::bench(&input, &plans, staffing)),
        only_if_on(
            STAFFING_UNSTAFFED_ROLE,
            staffing::unstaffed_roles(&input, staffing, today),
        ),
        only_if_on(
            STAFFING_SKILL_MISMATCH,
            staffing::skill_mismatches(&input, today),
        ),
    ])
}

/// Open role and its ranked candidates.
#[derive(Clone, Debug, Serialize)]
pub struct RoleCandidates {
    pub allocation: String,
    pub project: String,
    pub project_name: String,
    pub role: Option<String>,
    pub required_skills: Vec<String>,
    pub hours_per_week: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// The person allocated now, when the role is staffed; they are ranked with the others.
    pub allocated: Option<String>,
    pub candidates: Vec<Candidate>,
}

impl Engine {
    /// Returns each active person's capacity, booked and free hours for `weeks` weeks from
    /// the week of `from`.
    pub async fn staffing_capacity(
        self: &Arc<Self>,
        from: NaiveDate,
        weeks: u32,
    ) -> Result<Vec<PersonPlan>, EngineError> {
        if weeks == 0 || weeks > MAX_WEEKS {
            return Err(DomainError::Invalid(format!(
                "`weeks` is {weeks}; ask for 1 to {MAX_WEEKS} weeks"
            ))
            .into());
        }
        let input = steward_store::read_async(Arc::clone(&self.store), load_input).await?;
        Ok(staffing::plan(&input, from, weeks))
    }

    /// Ranks every active person for the role of allocation `id`, best first, with the
    /// reasons for each rank.
    pub async fn role_candidates(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<RoleCandidates, EngineError> {
        let id = id.to_string();
        let wanted = id.clone();
        let today = self.clock.now().date_naive();
        let (input, allocation, project) =
            steward_store::read_async(Arc::clone(&self.store), move |tx| {
                let allocation = tx.record(Kind::Allocation, &wanted)?;
                let project = match allocation.as_ref().and_then(|a| a.ref_id("project")) {
                    Some(project) => tx.record(Kind::Project, project)?,
                    None => None,
                };
                Ok::<_, StoreError>((load_input(tx)?, allocation, project))
            })
            .await?;
        let Some(allocation) = allocation else {
            return Err(DomainError::NotFound {
                kind: Kind::Allocation,
                id,
            }
            .into());
        };
        let role = project
            .as_ref()
            .and_then(|project| booking(&allocation, project))
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "allocation {id} lacks a project, `hours_per_week` or `start_date`, so no candidate can be ranked; set them first"
                ))
            })?;
        let candidates = staffing::candidates(&input, &role, today);
        Ok(RoleCandidates {
            allocation: id,
            project: role.project.clone(),
            project_name: role.project_name.clone(),
            role: role.role.clone(),
            required_skills: role.required_skills.clone(),
            hours_per_week: role.hours_per_week.normalize().to_string(),
            start_date: role.start,
            end_date: role.end,
            allocated: role.employee.clone(),
            candidates,
        })
    }
}
