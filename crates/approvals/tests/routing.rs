//! Routing and deciding against a small firm: segregation of duties, authority limits,
//! managers missing or managing themselves, delegation and escalation.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use steward_approvals::decide::{self, check, progress};
use steward_approvals::{
    ApprovalConfig, Decision, Directory, Person, Refusal, RequestInfo, Router, StepView, Verdict,
};

const CONFIG: &str = r#"
authority:
  currency: USD
  roles:
    manager: { limit: "1000" }
    finance: { limit: "20000", members: [fiona@firm.test, frank@firm.test] }
    director: { limit: unlimited, members: [Dora Director] }
  people:
    Mona Manager: { limit: "300" }
policies:
  - id: expenses
    request_kinds: [expense]
    fallback: { role: director }
    rows:
      - when: { amount: "<= 1000" }
        steps:
          - approver: manager
            deadline: 2 working days
            remind_before: 4 hours
      - when: { amount: "> 1000" }
        steps:
          - approver: manager
          - { name: Finance, approver: { role: finance }, approvals: 2 }
"#;

struct Firm(HashMap<String, Person>);

impl Directory for Firm {
    fn person(&self, id: &str) -> Option<Person> {
        self.0.get(id).cloned()
    }

    fn find(&self, key: &str) -> Vec<Person> {
        self.0
            .values()
            .filter(|p| p.answers_to(key))
            .cloned()
            .collect()
    }
}

fn person(id: &str, name: &str, manager: Option<&str>) -> Person {
    Person {
        id: id.into(),
        name: name.into(),
        email: Some(format!("{id}@firm.test")),
        manager: manager.map(str::to_string),
        active: true,
        ..Person::default()
    }
}

/// Dora directs; Mark and Mona manage under her; Eve and Ed work for Mark; Sam manages
/// himself; Ned has no manager; Fiona and Frank are finance, reporting to Dora.
fn firm() -> Firm {
    let people = [
        person("dora", "Dora Director", None),
        person("mark", "Mark Manager", Some("dora")),
        person("mona", "Mona Manager", Some("dora")),
        person("eve", "Eve Employee", Some("mark")),
        person("ed", "Ed Employee", Some("mona")),
        person("sam", "Sam Self", Some("sam")),
        person("ned", "Ned Nobody", None),
        person("fiona", "Fiona Finance", Some("dora")),
        person("frank", "Frank Finance", Some("dora")),
    ];
    Firm(people.into_iter().map(|p| (p.id.clone(), p)).collect())
}

fn config() -> ApprovalConfig {
    let (config, diagnostics) =
        steward_approvals::compile_sources(&[("firm.yaml".into(), CONFIG.into())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    config
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
}

fn expense(requester: &str, amount: i64) -> RequestInfo {
    RequestInfo {
        kind: "expense".into(),
        requester: Some(requester.into()),
        amount: Some(Decimal::from(amount)),
        currency: Some("USD".into()),
    }
}

fn route(firm: &Firm, request: &RequestInfo) -> Vec<StepView> {
    let config = config();
    let router = Router {
        config: &config,
        directory: firm,
        today: today(),
    };
    let policy = config.policy_for("expense").unwrap().clone();
    let facts = serde_json::json!({"amount": request.amount.unwrap().to_string()});
    let table = policy.evaluate(facts.as_object().unwrap());
    let mut excluded = BTreeSet::new();
    let mut steps = Vec::new();
    for (i, planned) in table.steps.iter().enumerate() {
        let assignment = router.assign(&policy, &planned.template.approver, request, &excluded);
        excluded.extend(assignment.approver.iter().cloned());
        steps.push(StepView {
            id: format!("s{}", i + 1),
            stage: planned.stage,
            state: if planned.stage == 1 {
                "pending"
            } else {
                "waiting"
            }
            .into(),
            assignment,
            approvals_needed: planned.template.approvals,
            decisions: Vec::new(),
        });
    }
    steps
}

fn decide_as(
    firm: &Firm,
    request: &RequestInfo,
    steps: &[StepView],
    who: &str,
) -> Result<decide::Permitted, Refusal> {
    let config = config();
    let router = Router {
        config: &config,
        directory: firm,
        today: today(),
    };
    check(
        &router,
        request,
        "pending",
        steps,
        None,
        &firm.person(who).unwrap(),
    )
}

fn approve(steps: &mut [StepView], index: usize, who: &str) -> decide::Progress {
    let result = progress(steps, index, Verdict::Approve);
    steps[index].decisions.push(Decision {
        by: who.into(),
        verdict: Verdict::Approve,
        at: Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap(),
        comment: None,
        on_behalf_of: None,
    });
    if let Some(state) = result.step_state {
        steps[index].state = state.into();
    }
    for &i in &result.open {
        steps[i].state = "pending".into();
    }
    result
}

#[test]
fn a_small_expense_goes_to_the_manager_who_alone_may_decide() {
    let firm = firm();
    let request = expense("eve", 200);
    let steps = route(&firm, &request);
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].assignment.approver.as_deref(), Some("mark"));
    assert!(decide_as(&firm, &request, &steps, "mark").is_ok());
    let refusal = decide_as(&firm, &request, &steps, "mona").unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Forbidden(m) if m.contains("waits for Mark Manager")),
        "{refusal:?}"
    );
}

#[test]
fn nobody_approves_their_own_request() {
    let firm = firm();
    let request = expense("eve", 200);
    let steps = route(&firm, &request);
    let refusal = decide_as(&firm, &request, &steps, "eve").unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Forbidden(m) if m.contains("nobody approves their own request")),
        "{refusal:?}"
    );
}

#[test]
fn a_manager_over_their_authority_limit_passes_the_step_up() {
    let firm = firm();
    // Mona's own limit of 300 USD is below 500; her manager Dora decides.
    let request = expense("ed", 500);
    let steps = route(&firm, &request);
    assert_eq!(steps[0].assignment.approver.as_deref(), Some("dora"));
    let notes = steps[0].assignment.notes.join(" | ");
    assert!(
        notes.contains("Mona Manager has an authority limit of 300 USD does not cover 500 USD"),
        "{notes}"
    );
    // Mona cannot take the decision back even by asking for it.
    let mut as_mona = steps.clone();
    as_mona[0].assignment.approver = Some("mona".into());
    let refusal = decide_as(&firm, &request, &as_mona, "mona").unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Forbidden(m) if m.contains("does not cover 500 USD")),
        "{refusal:?}"
    );
}

#[test]
fn an_employee_who_is_their_own_manager_escalates() {
    let firm = firm();
    let request = expense("sam", 100);
    let steps = route(&firm, &request);
    let step = &steps[0];
    assert_eq!(step.assignment.rule, "role:director");
    assert_eq!(step.assignment.candidates, vec!["dora".to_string()]);
    let notes = step.assignment.notes.join(" | ");
    assert!(notes.contains("Sam Self is their own manager"), "{notes}");
    assert!(
        notes.contains("escalated to the policy's fallback"),
        "{notes}"
    );
    assert!(decide_as(&firm, &request, &steps, "sam").is_err());
    assert!(decide_as(&firm, &request, &steps, "dora").is_ok());
}

#[test]
fn an_employee_with_no_manager_escalates_instead_of_stalling() {
    let firm = firm();
    let steps = route(&firm, &expense("ned", 100));
    assert_eq!(steps[0].assignment.candidates, vec!["dora".to_string()]);
    assert!(
        steps[0]
            .assignment
            .notes
            .iter()
            .any(|n| n == "Ned Nobody has no manager")
    );
}

#[test]
fn nobody_approves_two_steps_and_a_role_step_needs_two_people() {
    let firm = firm();
    // Step 1 goes up from Mark to Dora; step 2 needs two of the finance members.
    let request = expense("eve", 5000);
    let mut steps = route(&firm, &request);
    assert_eq!(steps.len(), 2);
    // Mark's 1000 USD does not cover 5000; Dora decides step 1.
    assert_eq!(steps[0].assignment.approver.as_deref(), Some("dora"));
    assert_eq!(steps[1].assignment.candidates, vec!["fiona", "frank"]);
    // Step 2 waits for step 1.
    assert!(decide_as(&firm, &request, &steps, "fiona").is_err());
    let refusal = check(
        &Router {
            config: &config(),
            directory: &firm,
            today: today(),
        },
        &request,
        "pending",
        &steps,
        Some("s2"),
        &firm.person("fiona").unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Forbidden(m) if m.contains("not open yet")),
        "{refusal:?}"
    );

    let progress = approve(&mut steps, 0, "dora");
    assert_eq!(progress.open, vec![1]);
    assert_eq!(progress.request_state, None);
    // Dora is a director, not finance; and she already decided step 1.
    assert!(decide_as(&firm, &request, &steps, "dora").is_err());

    let permitted = decide_as(&firm, &request, &steps, "fiona").unwrap();
    assert_eq!(permitted.step, 1);
    let first = approve(&mut steps, 1, "fiona");
    assert_eq!(first.step_state, None, "one of two approvals");
    let again = decide_as(&firm, &request, &steps, "fiona").unwrap_err();
    assert!(
        matches!(&again, Refusal::Conflict(m) if m.contains("already decided")),
        "{again:?}"
    );
    let second = approve(&mut steps, 1, "frank");
    assert_eq!(second.step_state, Some("approved"));
    assert_eq!(second.request_state, Some("approved"));
}

#[test]
fn a_decided_request_refuses_later_decisions_as_a_conflict() {
    let firm = firm();
    let request = expense("eve", 200);
    let steps = route(&firm, &request);
    let config = config();
    let router = Router {
        config: &config,
        directory: &firm,
        today: today(),
    };
    let refusal = check(
        &router,
        &request,
        "approved",
        &steps,
        None,
        &firm.person("mark").unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&refusal, Refusal::Conflict(m) if m.contains("already approved")),
        "{refusal:?}"
    );
}

#[test]
fn a_rejection_ends_the_request_and_skips_the_rest() {
    let firm = firm();
    let steps = route(&firm, &expense("eve", 5000));
    let result = progress(&steps, 0, Verdict::Reject);
    assert_eq!(result.step_state, Some("rejected"));
    assert_eq!(result.request_state, Some("rejected"));
    assert_eq!(result.skip, vec![1]);
}

#[test]
fn an_approver_away_hands_the_step_to_their_delegate() {
    let mut firm = firm();
    let mark = firm.0.get_mut("mark").unwrap();
    mark.away = vec![(today(), today() + chrono::Duration::days(5))];
    mark.delegate = Some("mona".into());
    let request = expense("eve", 200);
    let steps = route(&firm, &request);
    assert_eq!(steps[0].assignment.approver.as_deref(), Some("mona"));
    assert_eq!(steps[0].assignment.delegated_from.as_deref(), Some("mark"));

    // A step assigned before Mark left: his delegate decides on his behalf.
    let mut assigned_before = steps.clone();
    assigned_before[0].assignment.approver = Some("mark".into());
    assigned_before[0].assignment.delegated_from = None;
    let permitted = decide_as(&firm, &request, &assigned_before, "mona").unwrap();
    assert_eq!(permitted.on_behalf_of.as_deref(), Some("mark"));
    // Once Mark is back, the delegate no longer may.
    firm.0.get_mut("mark").unwrap().away.clear();
    assert!(decide_as(&firm, &request, &assigned_before, "mona").is_err());
}

#[test]
fn escalation_goes_to_the_approvers_manager_then_the_fallback() {
    let firm = firm();
    let config = config();
    let router = Router {
        config: &config,
        directory: &firm,
        today: today(),
    };
    let policy = config.policy_for("expense").unwrap().clone();
    let request = expense("eve", 200);
    let steps = route(&firm, &request);
    let next = router.escalate(&policy, &steps[0].assignment, &request, &BTreeSet::new());
    assert_eq!(next.approver.as_deref(), Some("dora"));
    assert!(
        next.notes
            .iter()
            .any(|n| n.contains("escalated from Mark Manager to their manager Dora Director"))
    );
    // Above Dora there is nobody, and the fallback is Dora herself.
    let top = router.escalate(&policy, &next, &request, &BTreeSet::new());
    assert!(top.is_empty());
    assert!(top.notes.iter().any(|n| n.contains("no level above")));
}
