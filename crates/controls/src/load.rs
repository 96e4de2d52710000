//! Compiling the `templates:` and `controls:` sections of the rules folder. Every problem
//! names its file, line and column and says how to fix it; a file with any error contributes
//! nothing.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use steward_domain::Currency;
use steward_domain::kinds::Kind;
use steward_rules::Diagnostic;

use crate::settings::*;
use crate::spec::*;

/// Compiles the settings of files given as (name, text). Files without a `templates:` or
/// `controls:` section contribute nothing and raise nothing here; the rules checker reports
/// their problems.
pub fn compile_sources(sources: &[(String, String)]) -> (FirmSettings, Vec<Diagnostic>) {
    let mut settings = FirmSettings::default();
    let mut diagnostics = Vec::new();
    let mut controls_file: Option<String> = None;
    let mut service_lines: BTreeMap<String, String> = BTreeMap::new();
    let mut default_template: Option<String> = None;
    for (file, text) in sources {
        if !mentions_settings(text) {
            continue;
        }
        let mut checker = Checker {
            file,
            diagnostics: Vec::new(),
        };
        let parsed: SettingsFile = match serde_saphyr::from_str(text) {
            Ok(parsed) => parsed,
            Err(error) => {
                checker.parse_error(&error);
                diagnostics.append(&mut checker.diagnostics);
                continue;
            }
        };
        let mut templates = Vec::new();
        for spec in parsed.templates {
            let at = spec.referenced;
            if let Some(template) = checker.template(spec.value, file) {
                let key = template.service_line.to_lowercase();
                if let Some(first) = service_lines.insert(key, file.clone()) {
                    checker.error(
                        &at,
                        format!(
                            "service line `{}` already has a template in {first}; keep one template per service line",
                            template.service_line
                        ),
                    );
                }
                if template.default
                    && let Some(first) = default_template.replace(template.service_line.clone())
                {
                    checker.error(
                        &at,
                        format!(
                            "the template of `{first}` is already the default; mark one template `default: true`"
                        ),
                    );
                }
                templates.push(template);
            }
        }
        let mut controls = None;
        if let Some(spec) = parsed.controls {
            match &controls_file {
                Some(first) => checker.error(
                    &spec.referenced,
                    format!("the controls are already set in {first}; keep one `controls` section"),
                ),
                None => controls = checker.controls(spec.value),
            }
        }
        if checker.diagnostics.is_empty() {
            settings.templates.extend(templates);
            if let Some(controls) = controls {
                settings.controls = controls;
                controls_file = Some(file.clone());
            }
        }
        diagnostics.append(&mut checker.diagnostics);
    }
    diagnostics.sort();
    (settings, diagnostics)
}

/// Cheap test that keeps files without settings out of the settings parser.
fn mentions_settings(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("templates:") || l.starts_with("controls:"))
}

struct Checker<'a> {
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(self.file, at, message));
    }

    fn parse_error(&mut self, error: &serde_saphyr::Error) {
        self.diagnostics
            .push(Diagnostic::from_parse_error(self.file, error));
    }

    fn span(&mut self, text: &Spanned<String>, name: &str) -> Option<DaySpan> {
        match DaySpan::parse(&text.value) {
            Ok(span) => Some(span),
            Err(e) => {
                self.error(&text.referenced, format!("`{name}`: {e}"));
                None
            }
        }
    }

    /// Reads a decimal written as a number or a string.
    fn decimal(&mut self, value: &Spanned<Value>, name: &str) -> Option<Decimal> {
        let text = match &value.value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => String::new(),
        };
        match Decimal::from_str(&text) {
            Ok(d) => Some(d),
            Err(_) => {
                self.error(
                    &value.referenced,
                    format!(
                        "`{name}` is {}, not a number; write a number such as 40 or \"7.5\"",
                        describe(&value.value)
                    ),
                );
                None
            }
        }
    }

    /// Reads a percentage written as `120`, `"120%"` or `"120 %"`, from 0 to 1000.
    fn percent(&mut self, value: &Spanned<Value>, name: &str) -> Option<Decimal> {
        let text = match &value.value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().trim_end_matches('%').trim().to_string(),
            _ => String::new(),
        };
        let problem = match Decimal::from_str(&text) {
            Ok(d) if d >= Decimal::ZERO && d <= Decimal::from(1000) => return Some(d),
            Ok(_) => "out of range",
            Err(_) => "not a number",
        };
        self.error(
            &value.referenced,
            format!(
                "`{name}` is {}, {problem}; write a percentage from 0 to 1000, such as 120 or \"120%\"",
                describe(&value.value)
            ),
        );
        None
    }

    /// Reads amounts by currency code, such as `{EUR: 75, USD: 80}`.
    fn amounts(
        &mut self,
        map: &Spanned<BTreeMap<String, Spanned<Value>>>,
        name: &str,
    ) -> Option<BTreeMap<String, Decimal>> {
        let before = self.diagnostics.len();
        let mut amounts = BTreeMap::new();
        if map.value.is_empty() {
            self.error(
                &map.referenced,
                format!("`{name}` names no currency; write it like {{EUR: 75, USD: 80}}"),
            );
        }
        for (code, value) in &map.value {
            let Some(currency) = Currency::from_code(&code.to_ascii_uppercase()) else {
                self.error(
                    &value.referenced,
                    format!("`{code}` is not an ISO 4217 currency code such as EUR or USD"),
                );
                continue;
            };
            let Some(amount) = self.decimal(value, name) else {
                continue;
            };
            match steward_domain::Money::new(amount, currency) {
                Ok(money) if money.amount >= Decimal::ZERO => {
                    amounts.insert(currency.code().to_string(), money.amount);
                }
                Ok(_) => self.error(&value.referenced, format!("`{name}` cannot be negative")),
                Err(e) => self.error(&value.referenced, format!("`{name}`: {e}")),
            }
        }
        (self.diagnostics.len() == before).then_some(amounts)
    }

    fn timezone(&mut self, value: &Spanned<String>) -> Option<String> {
        match value.value.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz.name().to_string()),
            Err(_) => {
                self.error(
                    &value.referenced,
                    format!(
                        "`{}` is not an IANA time zone such as Europe/Brussels or UTC",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn cron(&mut self, value: &Spanned<String>, name: &str) -> Option<String> {
        match croner::Cron::from_str(value.value.trim()) {
            Ok(_) => Some(value.value.trim().to_string()),
            Err(e) => {
                self.error(
                    &value.referenced,
                    format!(
                        "`{name}` `{}` is not a cron expression ({e}); write five fields such as \"0 10 * * MON\"",
                        value.value
                    ),
                );
                None
            }
        }
    }

    fn template(&mut self, spec: TemplateSpec, file: &str) -> Option<ProjectTemplate> {
        let before = self.diagnostics.len();
        let service_line = spec.service_line.value.trim().to_string();
        if service_line.is_empty() {
            self.error(
                &spec.service_line.referenced,
                "`service_line` is empty; name the service line deals carry, such as Consulting",
            );
        }
        let project_name = match &spec.project_name {
            Some(name) => {
                self.check_placeholders(name);
                name.value.clone()
            }
            None => "{client}: {deal}".to_string(),
        };
        let duration = spec
            .duration
            .as_ref()
            .and_then(|d| self.span(d, "duration"));
        let owner = match &spec.owner {
            None => Some(OwnerRule::ContractOwner),
            Some(value) => self.owner(value),
        };
        let state = match spec
            .state
            .as_ref()
            .map(|s| (s.value.as_str(), s.referenced))
        {
            None => "planned".to_string(),
            Some((state @ ("planned" | "active"), _)) => state.to_string(),
            Some((other, at)) => {
                self.error(
                    &at,
                    format!("`state: {other}` is not a state a new project starts in; use planned or active"),
                );
                "planned".into()
            }
        };
        let mut tasks = Vec::new();
        for task in &spec.tasks {
            let task = &task.value;
            let due = task.due.as_ref().and_then(|d| self.span(d, "due"));
            let planned_hours = match &task.planned_hours {
                Some(value) => match self.decimal(value, "planned_hours") {
                    Some(h) if h >= Decimal::ZERO => Some(h),
                    Some(_) => {
                        self.error(&value.referenced, "`planned_hours` cannot be negative");
                        None
                    }
                    None => None,
                },
                None => None,
            };
            tasks.push(TemplateTask {
                name: task.name.value.clone(),
                due,
                planned_hours,
                kickoff: task.kickoff,
            });
        }
        let mut milestones = Vec::new();
        let mut total = Decimal::ZERO;
        for milestone in &spec.milestones {
            let at = milestone.referenced;
            let milestone = &milestone.value;
            let due = self.span(&milestone.due, "due");
            let percentage = match &milestone.percentage {
                Some(value) => match self.percent(value, "percentage") {
                    Some(p) if p <= Decimal::ONE_HUNDRED => Some(p),
                    Some(_) => {
                        self.error(&value.referenced, "`percentage` cannot exceed 100");
                        None
                    }
                    None => None,
                },
                None => None,
            };
            total += percentage.unwrap_or_default();
            if let Some(due) = due {
                milestones.push(TemplateMilestone {
                    name: milestone.name.value.clone(),
                    due,
                    percentage,
                });
            } else {
                let _ = at;
            }
        }
        if total > Decimal::ONE_HUNDRED {
            self.error(
                &spec.service_line.referenced,
                format!(
                    "the milestones of `{service_line}` bill {total} % of the contract; keep their percentages at 100 or less"
                ),
            );
        }
        let mut roles = Vec::new();
        for role in &spec.roles {
            let role = &role.value;
            let hours = match self.decimal(&role.hours_per_week, "hours_per_week") {
                Some(h) if h > Decimal::ZERO && h <= Decimal::from(168) => Some(h),
                Some(_) => {
                    self.error(
                        &role.hours_per_week.referenced,
                        "`hours_per_week` must be above 0 and at most 168",
                    );
                    None
                }
                None => None,
            };
            let from = match &role.from {
                Some(text) => self.span(text, "from"),
                None => Some(DaySpan::ZERO),
            };
            let until = role.until.as_ref().and_then(|u| self.span(u, "until"));
            if let (Some(hours_per_week), Some(from)) = (hours, from) {
                roles.push(TemplateRole {
                    role: role.role.value.clone(),
                    hours_per_week,
                    skills: role.skills.clone(),
                    from,
                    until,
                });
            }
        }
        if self.diagnostics.len() > before {
            return None;
        }
        Some(ProjectTemplate {
            service_line,
            default: spec.default,
            project_name,
            duration,
            calendar: spec.calendar.as_ref().map(|c| c.value.clone()),
            owner: owner?,
            state,
            tasks,
            milestones,
            roles,
            origin: format!("file:{file}"),
        })
    }

    fn check_placeholders(&mut self, name: &Spanned<String>) {
        let mut rest = name.value.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                self.error(&name.referenced, "`project_name` has a `{` without its `}`");
                return;
            };
            let placeholder = &after[..close];
            if !["client", "deal", "contract", "service_line"].contains(&placeholder) {
                self.error(
                    &name.referenced,
                    format!(
                        "`{{{placeholder}}}` is not a placeholder; use {{client}}, {{deal}}, {{contract}} or {{service_line}}"
                    ),
                );
            }
            rest = &after[close + 1..];
        }
    }

    fn owner(&mut self, value: &Spanned<Value>) -> Option<OwnerRule> {
        match &value.value {
            Value::String(s) if s == "contract_owner" => Some(OwnerRule::ContractOwner),
            Value::String(s) if s == "deal_owner" => Some(OwnerRule::DealOwner),
            Value::Object(map) if map.len() == 1 => match map.get("person") {
                Some(Value::String(person)) if !person.trim().is_empty() => {
                    Some(OwnerRule::Person(person.trim().to_string()))
                }
                _ => {
                    self.error(
                        &value.referenced,
                        "write `owner: {person: \"name or e-mail\"}` to name the delivery owner",
                    );
                    None
                }
            },
            _ => {
                self.error(
                    &value.referenced,
                    "`owner` is contract_owner, deal_owner or {person: \"name or e-mail\"}",
                );
                None
            }
        }
    }

    fn controls(&mut self, spec: ControlsSpec) -> Option<ControlSettings> {
        let before = self.diagnostics.len();
        let mut settings = ControlSettings::default();
        for name in &spec.disabled {
            if steward_domain::controls::ALL.contains(&name.value.as_str()) {
                settings.disabled.insert(name.value.clone());
            } else {
                self.error(
                    &name.referenced,
                    format!(
                        "`{}` is not a control; use one of {}",
                        name.value,
                        steward_domain::controls::ALL.join(", ")
                    ),
                );
            }
        }
        if let Some(handoff) = spec.handoff {
            let target = &mut settings.handoff;
            target.enabled = handoff.enabled.unwrap_or(true);
            if let Some(text) = &handoff.kickoff_within
                && let Some(span) = self.span(text, "kickoff_within")
            {
                settings.handoff.kickoff_within = span;
            }
        }
        if let Some(staffing) = spec.staffing {
            self.staffing(staffing, &mut settings.staffing);
        }
        if let Some(timesheets) = spec.timesheets {
            self.timesheets(timesheets, &mut settings.timesheets);
        }
        if let Some(expenses) = spec.expenses {
            self.expenses(expenses, &mut settings.expenses);
        }
        if let Some(billable) = spec.billable {
            settings.billable.enabled = billable.enabled.unwrap_or(true);
        }
        if let Some(collections) = spec.collections {
            self.collections(collections, &mut settings.collections);
        }
        if let Some(health) = spec.health {
            let target = &mut settings.health;
            target.enabled = health.enabled.unwrap_or(true);
            if let Some(v) = &health.margin_below
                && let Some(p) = self.percent(v, "margin_below")
            {
                settings.health.margin_below = p;
            }
            if let Some(v) = &health.burn_ahead_by
                && let Some(p) = self.percent(v, "burn_ahead_by")
            {
                settings.health.burn_ahead_by = p;
            }
            if let Some(text) = &health.milestone_grace
                && let Some(span) = self.span(text, "milestone_grace")
            {
                settings.health.milestone_grace = span;
            }
        }
        (self.diagnostics.len() == before).then_some(settings)
    }

    fn staffing(&mut self, spec: StaffingSpec, target: &mut StaffingSettings) {
        target.enabled = spec.enabled.unwrap_or(true);
        if let Some(weeks) = &spec.weeks {
            if (1..=52).contains(&weeks.value) {
                target.weeks = weeks.value;
            } else {
                self.error(&weeks.referenced, "`weeks` must be from 1 to 52");
            }
        }
        for (value, name, slot) in [
            (
                &spec.overbooked_above,
                "overbooked_above",
                &mut target.overbooked_above,
            ),
            (
                &spec.exception_above,
                "exception_above",
                &mut target.exception_above,
            ),
            (&spec.bench_below, "bench_below", &mut target.bench_below),
        ] {
            if let Some(value) = value
                && let Some(p) = self.percent(value, name)
            {
                *slot = p;
            }
        }
        if target.exception_above < target.overbooked_above {
            let at = spec
                .exception_above
                .as_ref()
                .or(spec.overbooked_above.as_ref())
                .map(|v| v.referenced);
            if let Some(at) = at {
                self.error(
                    &at,
                    format!(
                        "`exception_above` ({} %) is below `overbooked_above` ({} %); an exception is a worse overbooking, so raise it",
                        target.exception_above, target.overbooked_above
                    ),
                );
            }
        }
        if let Some(text) = &spec.unstaffed_within
            && let Some(span) = self.span(text, "unstaffed_within")
        {
            target.unstaffed_within = span;
        }
        if let Some(open) = spec.open_exception_requests {
            target.open_exception_requests = open;
        }
    }

    fn timesheets(&mut self, spec: TimesheetsSpec, target: &mut TimesheetSettings) {
        target.enabled = spec.enabled.unwrap_or(true);
        if let Some(tz) = &spec.timezone
            && let Some(tz) = self.timezone(tz)
        {
            target.timezone = tz;
        }
        if let Some(states) = &spec.counted_states {
            let schema = Kind::Timesheet.schema();
            let mut counted = Vec::new();
            for state in states {
                if schema.has_state(&state.value) {
                    counted.push(state.value.clone());
                } else {
                    self.error(
                        &state.referenced,
                        format!(
                            "`{}` is not a state of timesheet entries; use some of {}",
                            state.value,
                            schema.states.join(", ")
                        ),
                    );
                }
            }
            target.counted_states = counted;
        }
        if let Some(value) = &spec.complete_at
            && let Some(p) = self.percent(value, "complete_at")
        {
            target.complete_at = p;
        }
        if let Some(cutoffs) = &spec.cutoffs {
            let mut compiled = Vec::new();
            let mut names = Vec::new();
            for cutoff in cutoffs {
                let at = cutoff.referenced;
                let cutoff = &cutoff.value;
                let name = cutoff.name.value.trim().to_string();
                let valid_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid_name {
                    self.error(
                        &cutoff.name.referenced,
                        "a cut-off's `name` is lower-case letters, digits and `_`, such as payroll",
                    );
                }
                if names.contains(&name) {
                    self.error(&at, format!("cut-off `{name}` is defined twice"));
                }
                names.push(name.clone());
                let period = match cutoff.period.value.as_str() {
                    "week" => Some(Period::Week),
                    "month" => Some(Period::Month),
                    other => {
                        self.error(
                            &cutoff.period.referenced,
                            format!("`period: {other}` is unknown; use week or month"),
                        );
                        None
                    }
                };
                let remind = cutoff.remind.as_ref().map(|r| self.cron(r, "remind"));
                let escalate = self.cron(&cutoff.escalate, "escalate");
                if let (Some(period), Some(escalate)) = (period, escalate) {
                    compiled.push(Cutoff {
                        name,
                        period,
                        remind: remind.flatten(),
                        escalate,
                    });
                }
            }
            target.cutoffs = compiled;
        }
        if let Some(text) = &spec.future_tolerance
            && let Some(span) = self.span(text, "future_tolerance")
        {
            target.future_tolerance = span;
        }
    }

    fn expenses(&mut self, spec: ExpensesSpec, target: &mut ExpenseSettings) {
        target.enabled = spec.enabled.unwrap_or(true);
        if let Some(map) = &spec.receipt_above
            && let Some(amounts) = self.amounts(map, "receipt_above")
        {
            target.receipt_above = amounts;
        }
        let mut seen: Vec<(String, Option<String>)> = Vec::new();
        for limit in &spec.limits {
            let at = limit.referenced;
            let limit = &limit.value;
            let country = match &limit.country {
                Some(country) => {
                    let def = steward_domain::schema::field(
                        "country",
                        steward_domain::FieldType::Country,
                        "",
                    );
                    match steward_domain::value::normalize(
                        &def,
                        &Value::String(country.value.clone()),
                        None,
                    ) {
                        Ok(Value::String(code)) => Some(code),
                        _ => {
                            self.error(
                                &country.referenced,
                                format!(
                                    "`{}` is not an ISO 3166-1 alpha-2 country code such as BE or US",
                                    country.value
                                ),
                            );
                            continue;
                        }
                    }
                }
                None => None,
            };
            let key = (limit.category.value.to_lowercase(), country.clone());
            if seen.contains(&key) {
                self.error(
                    &at,
                    format!(
                        "category `{}`{} already has a limit; keep one limit per category and country",
                        limit.category.value,
                        country.as_deref().map(|c| format!(" in {c}")).unwrap_or_default()
                    ),
                );
            }
            seen.push(key);
            if let Some(limits) = self.amounts(&limit.limit, "limit") {
                target.limits.push(ExpenseLimit {
                    category: limit.category.value.trim().to_string(),
                    country,
                    limits,
                });
            }
        }
        if let Some(duplicates) = spec.duplicates {
            target.duplicates = duplicates;
        }
    }

    fn collections(&mut self, spec: CollectionsSpec, target: &mut CollectionSettings) {
        target.enabled = spec.enabled.unwrap_or(true);
        if let Some(tz) = &spec.timezone
            && let Some(tz) = self.timezone(tz)
        {
            target.timezone = tz;
        }
        if let Some(at) = &spec.at {
            if chrono::NaiveTime::parse_from_str(at.value.trim(), "%H:%M").is_ok() {
                target.at = at.value.trim().to_string();
            } else {
                self.error(
                    &at.referenced,
                    format!(
                        "`at: {}` is not a time of day; write HH:MM, such as 09:00",
                        at.value
                    ),
                );
            }
        }
        if let Some(stages) = &spec.schedule {
            let mut compiled: Vec<CollectionStage> = Vec::new();
            for stage in stages {
                let at = stage.referenced;
                let stage = &stage.value;
                let after = self.span(&stage.after, "after");
                let step = match stage.step.value.as_str() {
                    "remind" => Some(CollectionStep::Remind),
                    "escalate" => Some(CollectionStep::Escalate),
                    other => {
                        self.error(
                            &stage.step.referenced,
                            format!("`step: {other}` is unknown; use remind or escalate"),
                        );
                        None
                    }
                };
                let (Some(after), Some(step)) = (after, step) else {
                    continue;
                };
                if let Some(last) = compiled.last()
                    && last.after.add_to(epoch(), None) >= after.add_to(epoch(), None)
                {
                    self.error(
                        &at,
                        format!(
                            "stage `{after}` does not come after the stage before it ({}); list the stages from the earliest",
                            last.after
                        ),
                    );
                }
                compiled.push(CollectionStage { after, step });
            }
            target.schedule = compiled;
        }
    }
}

/// Quotes a settings value for an error message: text and numbers as written, else its type.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("`{text}`"),
        Value::Number(number) => format!("`{number}`"),
        Value::Bool(flag) => format!("`{flag}`"),
        Value::Null => "empty".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A fixed Monday to compare spans on.
fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("a valid date")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> (FirmSettings, Vec<String>) {
        let (settings, diagnostics) =
            compile_sources(&[("firm.yaml".to_string(), text.to_string())]);
        (
            settings,
            diagnostics.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn full_settings_compile() {
        let (settings, errors) = compile(
            r#"
templates:
  - service_line: Consulting
    default: true
    duration: 12 weeks
    tasks:
      - { name: Kickoff meeting, due: 2 working days, planned_hours: 4, kickoff: true }
    milestones:
      - { name: Discovery, due: 4 weeks, percentage: 30 }
      - { name: Final acceptance, due: 12 weeks, percentage: "70%" }
    roles:
      - { role: Senior Consultant, hours_per_week: 32, skills: [strategy] }
controls:
  disabled: [staffing_bench]
  staffing: { overbooked_above: 100%, exception_above: "130 %", weeks: 6 }
  timesheets:
    timezone: Europe/Brussels
    cutoffs:
      - { name: payroll, period: week, remind: "0 14 * * FRI", escalate: "0 10 * * MON" }
  expenses:
    receipt_above: { EUR: 75 }
    limits:
      - { category: Meals, country: be, limit: { EUR: 60 } }
  collections:
    at: "08:30"
    schedule:
      - { after: 3 days, step: remind }
      - { after: 20 working days, step: escalate }
"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let template = settings.template_for(Some("consulting")).unwrap();
        assert_eq!(template.tasks[0].due, Some(DaySpan::working_days(2)));
        assert_eq!(template.milestones[1].percentage, Some(Decimal::from(70)));
        assert_eq!(template.origin, "file:firm.yaml");
        assert!(
            settings.template_for(Some("Audit")).is_some(),
            "the default template"
        );
        let controls = &settings.controls;
        assert!(!controls.is_on("staffing_bench"));
        assert!(controls.is_on("staffing_overbooked"));
        assert_eq!(controls.staffing.exception_above, Decimal::from(130));
        assert_eq!(controls.staffing.weeks, 6);
        assert_eq!(controls.timesheets.timezone, "Europe/Brussels");
        assert_eq!(controls.expenses.limits[0].country.as_deref(), Some("BE"));
        assert_eq!(controls.collections.schedule.len(), 2);
        assert_eq!(controls.collections.at, "08:30");
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let (_, errors) = compile(
            r#"controls:
  staffing:
    overbooked_above: lots
  timesheets:
    timezone: Mars/Olympus
    cutoffs:
      - { name: payroll, period: fortnight, escalate: "every monday" }
  expenses:
    receipt_above: { EURO: 75 }
  collections:
    schedule:
      - { after: 30 days, step: escalate }
      - { after: 3 days, step: remind }
      - { after: 40 days, step: nag }
"#,
        );
        assert_eq!(
            errors,
            vec![
                "firm.yaml:3:23: `overbooked_above` is `lots`, not a number; write a percentage from 0 to 1000, such as 120 or \"120%\"".to_string(),
                "firm.yaml:5:15: `Mars/Olympus` is not an IANA time zone such as Europe/Brussels or UTC".into(),
                "firm.yaml:7:34: `period: fortnight` is unknown; use week or month".into(),
                "firm.yaml:7:55: `escalate` `every monday` is not a cron expression (Invalid pattern: Pattern must have between 5 and 7 fields.); write five fields such as \"0 10 * * MON\"".into(),
                "firm.yaml:9:28: `EURO` is not an ISO 4217 currency code such as EUR or USD".into(),
                "firm.yaml:13:9: stage `3 days` does not come after the stage before it (30 days); list the stages from the earliest".into(),
                "firm.yaml:14:33: `step: nag` is unknown; use remind or escalate".into(),
            ],
        );
    }

    #[test]
    fn number_errors_quote_the_value() {
        let (_, errors) = compile(
            "controls:\n  staffing:\n    bench_below: fifty\n    overbooked_above: 2000\n  health:\n    margin_below: [25]\n",
        );
        assert_eq!(
            errors,
            vec![
                "firm.yaml:3:18: `bench_below` is `fifty`, not a number; write a percentage from 0 to 1000, such as 120 or \"120%\"".to_string(),
                "firm.yaml:4:23: `overbooked_above` is `2000`, out of range; write a percentage from 0 to 1000, such as 120 or \"120%\"".into(),
                "firm.yaml:6:19: `margin_below` is a list, not a number; write a percentage from 0 to 1000, such as 120 or \"120%\"".into(),
            ]
        );
    }

    #[test]
    fn future_tolerance_help_matches_the_loader() {
        let (_, errors) = compile("controls:\n  timesheets:\n    future_tolerance: -1 day\n");
        assert_eq!(
            errors,
            vec!["firm.yaml:3:23: `future_tolerance`: `-1 day` is negative; write a number of days, weeks or working days, such as `1 day`, `2 weeks` or `10 working days`, without a minus sign".to_string()]
        );
        let (_, errors) = compile("controls:\n  timesheets:\n    future_tolerance: tomorrow\n");
        assert_eq!(
            errors,
            vec!["firm.yaml:3:23: `future_tolerance`: `tomorrow` has no number; write a number of days, weeks or working days, such as `1 day`, `2 weeks` or `10 working days`".to_string()]
        );
        let (settings, errors) =
            compile("controls:\n  timesheets:\n    future_tolerance: 0 days\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(settings.controls.timesheets.future_tolerance, DaySpan::ZERO);
    }

    #[test]
    fn unknown_keys_and_duplicate_templates_are_reported() {
        let (_, errors) = compile("controls:\n  stafing: {}\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("firm.yaml:2:3: unknown field `stafing`"),
            "{errors:?}"
        );

        let (settings, errors) = compile(
            "templates:\n  - service_line: Audit\n  - service_line: audit\n  - service_line: Tax\n    project_name: \"{client} {phase}\"\n",
        );
        assert!(
            settings.templates.is_empty(),
            "a file with errors contributes nothing"
        );
        assert_eq!(
            errors,
            vec![
                "firm.yaml:3:5: service line `audit` already has a template in firm.yaml; keep one template per service line".to_string(),
                "firm.yaml:5:19: `{phase}` is not a placeholder; use {client}, {deal}, {contract} or {service_line}".into(),
            ]
        );
    }

    #[test]
    fn files_without_settings_are_skipped() {
        let (settings, errors) = compile("rules: []\n");
        assert!(errors.is_empty());
        assert_eq!(settings, FirmSettings::default());
    }
}
