//! The behaviour every store backend must show. A backend's tests call [`run_all`] with a
//! function that opens a fresh, empty store.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use steward_domain::command::ExternalKey;
use steward_domain::finding::RaisedFinding;
use steward_domain::{Actor, Event, EventKind, Kind, Record, RecordRef, Severity, new_id};

use crate::*;

type Make<'a> = &'a dyn Fn() -> Arc<dyn Store>;

/// Runs every behavioural check, each on a fresh store.
pub fn run_all(make: Make) {
    let checks: &[(&str, fn(&dyn Store))] = &[
        ("records round-trip", records_round_trip),
        (
            "only writes that change rows signal a commit",
            commits_signal_changed_rows,
        ),
        ("stale record update conflicts", stale_update_conflicts),
        ("record pages follow the cursor", record_pages_follow_cursor),
        ("record filters by state and field", record_filters),
        ("aggregates sum decimals exactly", aggregates_sum_exactly),
        ("events keep their order", events_keep_order),
        (
            "failed write rolls back alone",
            failed_write_rolls_back_alone,
        ),
        ("panicking write rolls back", panicking_write_rolls_back),
        (
            "grouped writes survive failures",
            grouped_writes_survive_failures,
        ),
        (
            "nested writes roll back alone",
            nested_writes_roll_back_alone,
        ),
        ("external links resolve", external_links_resolve),
        ("jobs deduplicate by key", jobs_deduplicate),
        ("jobs are claimed when due", jobs_claimed_when_due),
        ("jobs retry and die", jobs_retry_and_die),
        ("expired leases are released", expired_leases_released),
        ("a running job's lease is extended", leases_extend),
        ("findings refresh and resolve", findings_refresh_and_resolve),
        ("runs record explanations", runs_record_explanations),
        ("rule versions are kept", rule_versions_kept),
        ("policy versions are kept", policy_versions_kept),
        ("billing settings are versioned", billing_settings_versioned),
        ("control settings are versioned", control_settings_versioned),
        ("tokens have unique names", tokens_unique),
        (
            "webhook endpoints round-trip",
            webhooks::checks::endpoints_round_trip,
        ),
        (
            "webhook attempts number and summarise",
            webhooks::checks::attempts_number_and_summarise,
        ),
        (
            "webhook delivery job found by key",
            webhooks::checks::delivery_job_found_by_key,
        ),
        (
            "webhook receipts deduplicate until expiry",
            webhooks::checks::receipts_deduplicate_until_expiry,
        ),
        (
            "webhook rejections page newest first",
            webhooks::checks::rejections_page_newest_first,
        ),
        ("timers fire once per instant", timers_fire_once),
        ("schedule instants are taken once", occurrences_taken_once),
    ];
    for (name, check) in checks {
        let store = make();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(store.as_ref())));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "store behaviour `{name}` failed on {}: {message}",
                store.backend()
            );
        }
    }
}

fn t0() -> DateTime<Utc> {
    "2026-12-04T09:00:00Z".parse().unwrap()
}

fn write<T: Send + 'static>(
    store: &dyn Store,
    f: impl FnMut(&mut dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    write_blocking(store, f)
}

fn client(name: &str) -> Record {
    let mut fields = Map::new();
    fields.insert("name".into(), json!(name));
    fields.insert("country".into(), json!("BE"));
    Record {
        id: new_id(),
        kind: Kind::Client,
        state: "active".into(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
        fields,
        attributes: Map::new(),
    }
}

fn event_for(record: &Record) -> Event {
    Event {
        seq: 0,
        id: new_id(),
        kind: EventKind::Created,
        name: format!("{}.created", record.kind),
        record: Some(record.reference()),
        record_version: Some(record.version),
        changes: Default::default(),
        data: Value::Null,
        actor: Actor::user("suite"),
        cause: None,
        correlation: new_id(),
        depth: 0,
        occurred_at: t0(),
    }
}

fn job(key: &str, run_at: DateTime<Utc>) -> Job {
    Job {
        id: new_id(),
        key: key.into(),
        kind: "rule_actions".into(),
        run_id: None,
        payload: json!({"key": key}),
        state: JobState::Pending,
        attempts: 0,
        max_attempts: 3,
        run_at,
        lease_until: None,
        last_error: None,
        replays: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn records_round_trip(store: &dyn Store) {
    let record = client("Deco Addict");
    let stored = record.clone();
    write(store, move |tx| tx.insert_record(&stored)).unwrap();
    let read_back = read(store, |tx| tx.record(Kind::Client, &record.id)).unwrap();
    assert_eq!(read_back, Some(record.clone()));

    let mut changed = record.clone();
    changed.version = 2;
    changed.state = "inactive".into();
    changed.fields.insert("country".into(), json!("FR"));
    let update = changed.clone();
    write(store, move |tx| tx.update_record(&update)).unwrap();
    let read_back = read(store, |tx| tx.record(Kind::Client, &record.id))
        .unwrap()
        .unwrap();
    assert_eq!(read_back.state, "inactive");
    assert_eq!(read_back.text("country"), Some("FR"));

    let duplicate = record.clone();
    let error = write(store, move |tx| tx.insert_record(&duplicate)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
}

fn commits_signal_changed_rows(store: &dyn Store) {
    let commits = store.commits();
    let before = *commits.borrow();
    write(store, |_tx| Ok(())).unwrap();
    assert_eq!(
        *commits.borrow(),
        before,
        "an empty write signalled a commit"
    );

    let record = client("Wood Corner");
    write(store, move |tx| tx.insert_record(&record)).unwrap();
    assert!(
        *commits.borrow() > before,
        "a write of one record signalled nothing"
    );
}

fn stale_update_conflicts(store: &dyn Store) {
    let record = client("Lumber Inc");
    let stored = record.clone();
    write(store, move |tx| tx.insert_record(&stored)).unwrap();
    let mut stale = record.clone();
    stale.version = 3;
    let error = write(store, move |tx| tx.update_record(&stale)).unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
}

fn record_pages_follow_cursor(store: &dyn Store) {
    let records: Vec<Record> = (0..25).map(|i| client(&format!("client {i:02}"))).collect();
    let batch = records.clone();
    write(store, move |tx| {
        batch.iter().try_for_each(|r| tx.insert_record(r))
    })
    .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let query = RecordQuery {
            kind: Some(Kind::Client),
            after,
            limit: 10,
            ..Default::default()
        };
        let page = read(store, move |tx| tx.records(&query)).unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    let expected: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen, expected);
}

fn record_filters(store: &dyn Store) {
    let mut inactive = client("Ready Mat");
    inactive.state = "inactive".into();
    let mut french = client("Gemini Furniture");
    french.fields.insert("country".into(), json!("FR"));
    let batch = vec![client("Azure Interior"), inactive.clone(), french.clone()];
    write(store, move |tx| {
        batch.iter().try_for_each(|r| tx.insert_record(r))
    })
    .unwrap();

    let query = RecordQuery {
        kind: Some(Kind::Client),
        state: Some("inactive".into()),
        limit: 50,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.records(&query)).unwrap();
    assert_eq!(
        page.items.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&inactive.id]
    );

    let query = RecordQuery {
        kind: Some(Kind::Client),
        fields: vec![("country".into(), json!("FR"))],
        limit: 50,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.records(&query)).unwrap();
    assert_eq!(
        page.items.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&french.id]
    );

    // A projection keeps the named fields and the record's own columns, nothing else.
    let query = RecordQuery {
        kind: Some(Kind::Client),
        fields: vec![("country".into(), json!("FR"))],
        only_fields: vec!["country".into(), "vat".into()],
        limit: 50,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.records(&query)).unwrap();
    let projected = &page.items[0];
    assert_eq!(projected.id, french.id);
    assert_eq!(projected.state, "active");
    assert_eq!(projected.version, french.version);
    assert_eq!(projected.text("country"), Some("FR"));
    assert_eq!(projected.fields.len(), 1, "{:?}", projected.fields);

    assert_eq!(
        read(store, |tx| tx.count_records(Kind::Client, None)).unwrap(),
        3
    );
    assert_eq!(
        read(store, |tx| tx.count_records(Kind::Client, Some("active"))).unwrap(),
        2
    );
}

fn timesheet(employee: &str, date: &str, hours: &str, state: &str) -> Record {
    let mut fields = Map::new();
    fields.insert("employee".into(), json!(employee));
    fields.insert("date".into(), json!(date));
    fields.insert("hours".into(), json!(hours));
    Record {
        id: new_id(),
        kind: Kind::Timesheet,
        state: state.into(),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
        fields,
        attributes: Map::new(),
    }
}

fn aggregates_sum_exactly(store: &dyn Store) {
    let mut approved = timesheet("ann", "2026-12-01", "0.1", "approved");
    approved.fields.insert("approved_by".into(), json!("ann"));
    approved.fields.insert("submitted_by".into(), json!("ann"));
    let batch = vec![
        timesheet("ann", "2026-12-01", "0.2", "submitted"),
        approved.clone(),
        timesheet("ann", "2026-12-02", "8", "submitted"),
        timesheet("bob", "2026-12-01", "20", "submitted"),
        timesheet("bob", "2026-12-01", "1", "rejected"),
    ];
    write(store, move |tx| {
        batch.iter().try_for_each(|r| tx.insert_record(r))
    })
    .unwrap();

    let query = AggregateQuery {
        kind: Some(Kind::Timesheet),
        group_by: vec!["employee".into(), "date".into()],
        sum: Some("hours".into()),
        states: vec!["submitted".into(), "approved".into()],
        min_sum: None,
        range: None,
    };
    let q = query.clone();
    let mut rows = read(store, move |tx| tx.aggregate(&q)).unwrap();
    rows.sort_by_key(|r| r.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
    let summary: Vec<(Vec<Value>, u64, String)> = rows
        .iter()
        .map(|r| (r.keys.clone(), r.count, r.sum.to_string()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                vec![json!("ann"), json!("2026-12-01")],
                2,
                "0.3".to_string()
            ),
            (vec![json!("ann"), json!("2026-12-02")], 1, "8".to_string()),
            (vec![json!("bob"), json!("2026-12-01")], 1, "20".to_string()),
        ]
    );

    let above = AggregateQuery {
        min_sum: Some(rust_decimal::Decimal::from(8)),
        ..query.clone()
    };
    let rows = read(store, move |tx| tx.aggregate(&above)).unwrap();
    assert_eq!(rows.len(), 1, "only a sum above 8 remains: {rows:?}");

    let second_day = AggregateQuery {
        range: Some(FieldRange {
            field: "date".into(),
            from: Some("2026-12-02".into()),
            to: Some("2026-12-02".into()),
        }),
        ..query.clone()
    };
    let rows = read(store, move |tx| tx.aggregate(&second_day)).unwrap();
    let days: Vec<&Value> = rows.iter().map(|r| &r.keys[1]).collect();
    assert_eq!(days, vec![&json!("2026-12-02")], "{rows:?}");
    let from_second_day = AggregateQuery {
        range: Some(FieldRange {
            field: "date".into(),
            from: Some("2026-12-02".into()),
            to: None,
        }),
        ..query.clone()
    };
    let rows = read(store, move |tx| tx.aggregate(&from_second_day)).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let until_first_day = AggregateQuery {
        range: Some(FieldRange {
            field: "date".into(),
            from: None,
            to: Some("2026-12-01".into()),
        }),
        ..query
    };
    let rows = read(store, move |tx| tx.aggregate(&until_first_day)).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");

    let query = RecordQuery {
        kind: Some(Kind::Timesheet),
        present: vec!["approved_by".into()],
        equal_fields: vec![("approved_by".into(), "submitted_by".into())],
        limit: 10,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.records(&query)).unwrap();
    assert_eq!(
        page.items.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&approved.id]
    );
}

fn events_keep_order(store: &dyn Store) {
    let record = client("Deco Addict");
    let events: Vec<Event> = (0..5).map(|_| event_for(&record)).collect();
    assert_eq!(read(store, |tx| tx.last_event_seq()).unwrap(), None);
    let batch = events.clone();
    let seqs = write(store, move |tx| {
        batch
            .iter()
            .map(|e| tx.append_event(e))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers must grow: {seqs:?}"
    );

    let query = EventQuery {
        record: Some(record.reference()),
        limit: 3,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.events(&query)).unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.items[0].id, events[0].id);
    let after = page.next_cursor.unwrap().parse::<i64>().unwrap();
    let query = EventQuery {
        after_seq: Some(after),
        limit: 10,
        ..Default::default()
    };
    let rest = read(store, move |tx| tx.events(&query)).unwrap();
    assert_eq!(rest.items.len(), 2);
    assert_eq!(rest.next_cursor, None);
    let first = events[0].id.clone();
    let stored = read(store, move |tx| tx.event(&first)).unwrap().unwrap();
    assert_eq!(stored.actor, Actor::user("suite"));
    assert_eq!(read(store, |tx| tx.count_events()).unwrap(), 5);
    assert_eq!(
        read(store, |tx| tx.last_event_seq()).unwrap(),
        seqs.last().copied()
    );
}

fn failed_write_rolls_back_alone(store: &dyn Store) {
    let kept = client("kept");
    let lost = client("lost");
    let kept_copy = kept.clone();
    let lost_copy = lost.clone();
    // Submit both before waiting so that a grouping backend can put them in one transaction.
    let (good, bad) = std::thread::scope(|scope| {
        let good = scope.spawn(|| write(store, move |tx| tx.insert_record(&kept_copy)));
        let bad = scope.spawn(|| {
            write(store, move |tx| {
                tx.insert_record(&lost_copy)?;
                Err::<(), _>(StoreError::Backend("refused on purpose".into()))
            })
        });
        (good.join().unwrap(), bad.join().unwrap())
    });
    assert!(good.is_ok());
    assert!(bad.is_err());
    assert!(
        read(store, move |tx| tx.record(Kind::Client, &kept.id))
            .unwrap()
            .is_some()
    );
    assert!(
        read(store, move |tx| tx.record(Kind::Client, &lost.id))
            .unwrap()
            .is_none()
    );
}

fn panicking_write_rolls_back(store: &dyn Store) {
    let lost = client("lost");
    let lost_copy = lost.clone();
    let outcome = write(store, move |tx| -> Result<(), StoreError> {
        tx.insert_record(&lost_copy)?;
        panic!("a bug in a write");
    });
    assert!(outcome.is_err());
    assert!(
        read(store, move |tx| tx.record(Kind::Client, &lost.id))
            .unwrap()
            .is_none()
    );
    let after = client("after");
    write(store, move |tx| tx.insert_record(&after)).unwrap();
}

fn grouped_writes_survive_failures(store: &dyn Store) {
    // Queue many writes before waiting, so that a grouping backend runs them together: every
    // third fails before writing, every fifth after writing.
    let records: Vec<Record> = (0..60).map(|i| client(&format!("group {i}"))).collect();
    let mut pending = Vec::new();
    for (i, record) in records.iter().cloned().enumerate() {
        let future = submit_write(store, move |tx| {
            if i % 3 == 0 {
                return Err(StoreError::Backend("rejected before writing".into()));
            }
            tx.insert_record(&record)?;
            if i % 5 == 0 {
                return Err(StoreError::Backend("rejected after writing".into()));
            }
            Ok(())
        });
        pending.push(future);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcomes: Vec<Result<(), StoreError>> =
        pending.into_iter().map(|f| runtime.block_on(f)).collect();
    for (i, (outcome, record)) in outcomes.iter().zip(&records).enumerate() {
        let id = record.id.clone();
        let stored = read(store, move |tx| tx.record(Kind::Client, &id))
            .unwrap()
            .is_some();
        let should_succeed = i % 3 != 0 && i % 5 != 0;
        assert_eq!(outcome.is_ok(), should_succeed, "write {i}: {outcome:?}");
        assert_eq!(stored, should_succeed, "write {i} stored");
    }
}

fn nested_writes_roll_back_alone(store: &dyn Store) {
    let (outer, inner) = (client("outer"), client("inner"));
    let (o, i) = (outer.clone(), inner.clone());
    let kept = write(store, move |tx| {
        tx.insert_record(&o)?;
        let inner = i.clone();
        tx.nested(&mut |tx| {
            let _ = tx.insert_record(&inner);
            false
        })
    })
    .unwrap();
    assert!(!kept);
    assert!(read(store, move |tx| tx.record_exists(Kind::Client, &outer.id)).unwrap());
    assert!(!read(store, move |tx| tx.record_exists(Kind::Client, &inner.id)).unwrap());
}

fn external_links_resolve(store: &dyn Store) {
    let record = client("Deco Addict");
    let link = ExternalLink {
        system: "odoo".into(),
        model: "res.partner".into(),
        external_id: "10".into(),
        record: record.reference(),
        source_version: Some("2026-12-04 15:23:31".into()),
    };
    let stored = link.clone();
    write(store, move |tx| {
        tx.link_external(&stored)?;
        tx.set_sync_cursor("odoo", "res.partner", "2026-12-04 15:23:31")
    })
    .unwrap();
    let key = ExternalKey::new("odoo", "res.partner", 10);
    assert_eq!(
        read(store, move |tx| tx.external_link(&key)).unwrap(),
        Some(link.clone())
    );
    let reference = record.reference();
    assert_eq!(
        read(store, move |tx| tx.external_links_of(&reference)).unwrap(),
        vec![link]
    );
    let cursor = read(store, |tx| tx.sync_cursor("odoo", "res.partner")).unwrap();
    assert_eq!(cursor.as_deref(), Some("2026-12-04 15:23:31"));
    assert_eq!(
        read(store, |tx| tx.sync_cursor("odoo", "hr.employee")).unwrap(),
        None
    );
}

fn jobs_deduplicate(store: &dyn Store) {
    let first = job("rule-a/1/event-1", t0());
    let second = job("rule-a/1/event-1", t0());
    let inserted = write(store, move |tx| {
        Ok((tx.insert_job(&first)?, tx.insert_job(&second)?))
    })
    .unwrap();
    assert_eq!(inserted, (true, false));
}

fn jobs_claimed_when_due(store: &dyn Store) {
    let due = job("due", t0());
    let later = job("later", t0() + Duration::minutes(5));
    let due_id = due.id.clone();
    write(store, move |tx| {
        tx.insert_job(&due)?;
        tx.insert_job(&later)
    })
    .unwrap();
    let lease = t0() + Duration::seconds(30);
    let claimed = write(store, move |tx| tx.claim_jobs(t0(), 10, lease)).unwrap();
    assert_eq!(
        claimed.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&due_id]
    );
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].state, JobState::Running);
    let again = write(store, move |tx| tx.claim_jobs(t0(), 10, lease)).unwrap();
    assert!(again.is_empty(), "a running job must not be claimed twice");
    let stats = read(store, |tx| tx.queue_stats(t0())).unwrap();
    assert_eq!((stats.pending, stats.running), (1, 1));
}

fn jobs_retry_and_die(store: &dyn Store) {
    let j = job("flaky", t0());
    let id = j.id.clone();
    write(store, move |tx| tx.insert_job(&j)).unwrap();
    let lease = t0() + Duration::seconds(30);
    write(store, move |tx| tx.claim_jobs(t0(), 1, lease)).unwrap();

    let retry_at = t0() + Duration::seconds(2);
    let (i, at) = (id.clone(), t0());
    let stale = write(store, move |tx| {
        tx.fail_job(&i, 7, "from an old claim", None, at)
    })
    .unwrap();
    assert!(!stale, "a failure from a superseded claim is ignored");
    let i = id.clone();
    let failed = write(store, move |tx| {
        tx.fail_job(&i, 1, "timed out", Some(retry_at), at)
    });
    assert!(failed.unwrap());
    let early = write(store, move |tx| {
        tx.claim_jobs(t0() + Duration::seconds(1), 1, lease)
    })
    .unwrap();
    assert!(early.is_empty(), "a job waits for its retry time");
    let retried = write(store, move |tx| tx.claim_jobs(retry_at, 1, lease)).unwrap();
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].last_error.as_deref(), Some("timed out"));

    let i = id.clone();
    let finished = write(store, move |tx| tx.complete_job(&i, 1, t0())).unwrap();
    assert!(
        !finished,
        "attempt 1 is over, so it cannot complete the job"
    );
    let i = id.clone();
    write(store, move |tx| {
        tx.fail_job(&i, 2, "still failing", None, t0())
    })
    .unwrap();
    let dead = read(store, |tx| {
        tx.jobs(&JobQuery {
            state: Some(JobState::Dead),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!(dead.items[0].last_error.as_deref(), Some("still failing"));

    let i = id.clone();
    assert!(write(store, move |tx| tx.replay_job(&i, t0())).unwrap());
    let i = id.clone();
    assert!(
        !write(store, move |tx| tx.replay_job(&i, t0())).unwrap(),
        "only dead jobs replay"
    );
    let replayed = read(store, move |tx| tx.job(&id)).unwrap().unwrap();
    assert_eq!(
        (replayed.state, replayed.attempts, replayed.replays),
        (JobState::Pending, 0, 1)
    );
}

fn expired_leases_released(store: &dyn Store) {
    let j = job("abandoned", t0());
    write(store, move |tx| tx.insert_job(&j)).unwrap();
    let lease = t0() + Duration::seconds(30);
    write(store, move |tx| tx.claim_jobs(t0(), 1, lease)).unwrap();
    let early = write(store, move |tx| {
        tx.release_expired_leases(t0() + Duration::seconds(10))
    })
    .unwrap();
    assert_eq!(early, 0);
    let late = write(store, move |tx| {
        tx.release_expired_leases(t0() + Duration::seconds(31))
    })
    .unwrap();
    assert_eq!(late, 1);
}

fn leases_extend(store: &dyn Store) {
    let j = job("long", t0());
    let id = j.id.clone();
    write(store, move |tx| tx.insert_job(&j)).unwrap();
    let lease = t0() + Duration::seconds(30);
    let claimed = write(store, move |tx| tx.claim_jobs(t0(), 1, lease)).unwrap();
    let attempt = claimed[0].attempts;
    let (i, later) = (id.clone(), t0() + Duration::seconds(60));
    let extended = write(store, move |tx| tx.extend_lease(&i, attempt, later)).unwrap();
    assert!(extended);
    let released = write(store, move |tx| {
        tx.release_expired_leases(t0() + Duration::seconds(45))
    })
    .unwrap();
    assert_eq!(released, 0, "the extended lease runs until 60 s");

    // A stale claim cannot extend the lease of the job's next attempt.
    let released = write(store, move |tx| {
        tx.release_expired_leases(t0() + Duration::seconds(61))
    })
    .unwrap();
    assert_eq!(released, 1);
    let retaken = t0() + Duration::seconds(100);
    write(store, move |tx| {
        tx.claim_jobs(t0() + Duration::seconds(61), 1, retaken)
    })
    .unwrap();
    let (i, much_later) = (id.clone(), t0() + Duration::seconds(500));
    let stale = write(store, move |tx| tx.extend_lease(&i, attempt, much_later)).unwrap();
    assert!(!stale);
    let released = write(store, move |tx| {
        tx.release_expired_leases(t0() + Duration::seconds(101))
    })
    .unwrap();
    assert_eq!(released, 1, "the stale claim left the new lease as it was");
}

fn findings_refresh_and_resolve(store: &dyn Store) {
    let raised = RaisedFinding {
        key: "daily_hours/emp/2026-11-26".into(),
        control: "daily_hours".into(),
        severity: Severity::Warning,
        record: Some(RecordRef::new(Kind::Employee, new_id())),
        message: "20 hours".into(),
        evidence: json!({"hours": "20"}),
    };
    let other = RaisedFinding {
        key: "daily_hours/emp/2026-12-04".into(),
        ..raised.clone()
    };
    let (r, o) = (raised.clone(), other.clone());
    let (first, opened) = write(store, move |tx| {
        let first = tx.raise_finding(&r, t0())?;
        tx.raise_finding(&o, t0())?;
        Ok(first)
    })
    .unwrap();
    assert!(opened);
    assert_eq!(first.state, "open");

    let mut again = raised.clone();
    again.message = "21 hours".into();
    let later = t0() + Duration::hours(1);
    let (refreshed, opened) = write(store, move |tx| tx.raise_finding(&again, later)).unwrap();
    assert!(!opened, "raising an open finding again refreshes it");
    assert_eq!(refreshed.id, first.id);
    assert_eq!(refreshed.message, "21 hours");
    assert_eq!(refreshed.first_seen, t0());

    let keep = vec![raised.key.clone()];
    let resolved = write(store, move |tx| {
        tx.resolve_findings("daily_hours", &keep, later)
    })
    .unwrap();
    assert_eq!(resolved, 1);
    let open = read(store, |tx| {
        tx.findings(&FindingQuery {
            state: Some("open".into()),
            limit: 10,
            ..Default::default()
        })
    })
    .unwrap();
    assert_eq!(open.items.len(), 1);
    let (_, reopened) = write(store, move |tx| tx.raise_finding(&other, later)).unwrap();
    assert!(reopened, "a resolved finding raised again reopens");
}

fn runs_record_explanations(store: &dyn Store) {
    let run = Run {
        id: new_id(),
        rule_id: "flag-long-day".into(),
        rule_version: 2,
        event_id: new_id(),
        record: Some(RecordRef::new(Kind::Timesheet, new_id())),
        status: RunStatus::Queued,
        trigger: "timesheet created".into(),
        condition: Some("record.hours > 10".into()),
        inputs: json!({"record.hours": 12}),
        result: json!(true),
        actions: json!([{"type": "notify"}]),
        error: None,
        created_at: t0(),
        finished_at: None,
    };
    let stored = run.clone();
    write(store, move |tx| tx.insert_run(&stored)).unwrap();
    let id = run.id.clone();
    let outcome = json!([{"type": "notify", "outcome": "created notification"}]);
    let o = outcome.clone();
    write(store, move |tx| {
        tx.finish_run(&id, RunStatus::Succeeded, &o, None, Some(t0()))
    })
    .unwrap();
    let query = RunQuery {
        rule_id: Some("flag-long-day".into()),
        limit: 10,
        ..Default::default()
    };
    let page = read(store, move |tx| tx.runs(&query)).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].status, RunStatus::Succeeded);
    let counts = read(store, |tx| tx.run_counts()).unwrap();
    assert!(
        counts.contains(&("flag-long-day".to_string(), "succeeded".to_string(), 1)),
        "{counts:?}"
    );
    assert_eq!(page.items[0].actions, outcome);
    assert_eq!(page.items[0].inputs, run.inputs);
}

fn rule_versions_kept(store: &dyn Store) {
    let version = |n: i64| RuleVersion {
        rule_id: "remind".into(),
        version: n,
        hash: format!("hash-{n}"),
        definition: json!({"id": "remind", "n": n}),
        origin: "file:rules/remind.yaml".into(),
        enabled: true,
        created_at: t0(),
        retired_at: None,
    };
    let (one, two) = (version(1), version(2));
    write(store, move |tx| {
        tx.insert_rule_version(&one)?;
        tx.insert_rule_version(&two)
    })
    .unwrap();
    let duplicate = version(2);
    let error = write(store, move |tx| tx.insert_rule_version(&duplicate)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    write(store, |tx| tx.retire_rule("remind", t0())).unwrap();
    let versions = read(store, |tx| tx.rule_versions()).unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| v.retired_at.is_some()));
}

fn policy_versions_kept(store: &dyn Store) {
    let version = |n: i64| PolicyVersion {
        policy_id: "expenses".into(),
        version: n,
        hash: format!("hash-{n}"),
        definition: json!({"id": "expenses", "n": n}),
        origin: "file:rules/approvals.yaml".into(),
        created_at: t0(),
    };
    let (one, two) = (version(1), version(2));
    write(store, move |tx| {
        tx.insert_policy_version(&one)?;
        tx.insert_policy_version(&two)
    })
    .unwrap();
    let duplicate = version(1);
    let error = write(store, move |tx| tx.insert_policy_version(&duplicate)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let versions = read(store, |tx| tx.policy_versions()).unwrap();
    assert_eq!(versions, vec![version(1), version(2)]);
}

fn billing_settings_versioned(store: &dyn Store) {
    assert_eq!(read(store, |tx| tx.billing_settings()).unwrap(), None);
    let version = |n: i64| BillingSettingsVersion {
        version: n,
        hash: format!("hash-{n}"),
        definition: json!({"rounding": "per_line", "n": n}),
        origin: (n == 2).then(|| "rules/billing.yaml".to_string()),
        created_at: t0(),
    };
    let (one, two) = (version(1), version(2));
    write(store, move |tx| {
        tx.insert_billing_settings(&one)?;
        tx.insert_billing_settings(&two)
    })
    .unwrap();
    let duplicate = version(2);
    let error = write(store, move |tx| tx.insert_billing_settings(&duplicate)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let newest = read(store, |tx| tx.billing_settings()).unwrap();
    assert_eq!(newest, Some(version(2)));
}

fn control_settings_versioned(store: &dyn Store) {
    assert_eq!(read(store, |tx| tx.control_settings()).unwrap(), None);
    let version = |n: i64| ControlSettingsVersion {
        version: n,
        hash: format!("hash-{n}"),
        definition: json!({"controls": {"staffing": {"weeks": n}}}),
        origin: (n == 2).then(|| "rules".to_string()),
        created_at: t0(),
    };
    let (one, two) = (version(1), version(2));
    write(store, move |tx| {
        tx.insert_control_settings(&one)?;
        tx.insert_control_settings(&two)
    })
    .unwrap();
    let duplicate = version(1);
    let error = write(store, move |tx| tx.insert_control_settings(&duplicate)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let newest = read(store, |tx| tx.control_settings()).unwrap();
    assert_eq!(newest, Some(version(2)));
}

fn tokens_unique(store: &dyn Store) {
    let token = |name: &str, hash: &str| Token {
        id: new_id(),
        name: name.into(),
        role: "admin".into(),
        hash: hash.into(),
        employee: None,
        created_at: t0(),
        last_used_at: None,
        revoked_at: None,
    };
    let first = token("admin", "aa");
    let id = first.id.clone();
    write(store, move |tx| tx.insert_token(&first)).unwrap();
    let clash = token("admin", "bb");
    let error = write(store, move |tx| tx.insert_token(&clash)).unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let found = read(store, |tx| tx.token_by_hash("aa")).unwrap().unwrap();
    assert_eq!(found.name, "admin");
    assert!(write(store, move |tx| tx.revoke_token(&id, t0())).unwrap());
}

fn timers_fire_once(store: &dyn Store) {
    use crate::schedule::ScheduleWrite;
    let record = RecordRef::new(Kind::Invoice, new_id());
    let (r, first, second) = (
        record.clone(),
        t0() + Duration::hours(1),
        t0() + Duration::hours(2),
    );
    write(store, move |tx| {
        let schedule: &mut dyn ScheduleWrite = tx.schedule_mut();
        schedule.set_timer("remind", 1, &r, Some(first), None)?;
        // The date moved: the first instant is cancelled, the second is pending.
        schedule.set_timer("remind", 1, &r, Some(second), None)
    })
    .unwrap();
    let due = read(store, |tx| tx.schedule().next_timer_due()).unwrap();
    assert_eq!(due, Some(second));
    let early = write(store, move |tx| {
        tx.schedule_mut()
            .claim_due_timers(first + Duration::minutes(30), 10)
    })
    .unwrap();
    assert!(early.is_empty(), "a cancelled instant does not fire");
    let fired = write(store, move |tx| {
        tx.schedule_mut().claim_due_timers(second, 10)
    })
    .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].due_at, second);
    let again = write(store, move |tx| {
        tx.schedule_mut()
            .claim_due_timers(second + Duration::days(1), 10)
    })
    .unwrap();
    assert!(again.is_empty(), "a fired timer does not fire again");

    let r = record.clone();
    write(store, move |tx| {
        tx.schedule_mut()
            .set_timer("remind", 1, &r, Some(second), None)
    })
    .unwrap();
    let after_reset = write(store, move |tx| {
        tx.schedule_mut()
            .claim_due_timers(second + Duration::days(1), 10)
    })
    .unwrap();
    assert!(
        after_reset.is_empty(),
        "setting a fired instant again does not rearm it"
    );

    let r = record.clone();
    let old = t0() - Duration::days(30);
    write(store, move |tx| {
        tx.schedule_mut()
            .set_timer("remind", 1, &r, Some(old), Some(t0()))
    })
    .unwrap();
    let timers = read(store, move |tx| tx.schedule().timers_of(&record)).unwrap();
    let states: Vec<(&str, DateTime<Utc>)> = timers
        .iter()
        .map(|t| (t.state.as_str(), t.due_at))
        .collect();
    assert_eq!(
        states,
        vec![("skipped", old), ("cancelled", first), ("fired", second)]
    );
}

fn occurrences_taken_once(store: &dyn Store) {
    use crate::schedule::Occurrence;
    let occurrence = Occurrence {
        rule_id: "daily".into(),
        scheduled_at: t0(),
        rule_version: 1,
        state: "started".into(),
        reason: None,
        event_id: None,
        run_id: None,
        job_id: None,
        decided_at: t0(),
        finished_at: None,
    };
    let (a, b) = (occurrence.clone(), occurrence.clone());
    let first = write(store, move |tx| tx.schedule_mut().insert_occurrence(&a)).unwrap();
    let second = write(store, move |tx| tx.schedule_mut().insert_occurrence(&b)).unwrap();
    assert_eq!((first, second), (true, false));
    let mut finished = occurrence.clone();
    finished.state = "finished".into();
    finished.finished_at = Some(t0());
    write(store, move |tx| {
        tx.schedule_mut().update_occurrence(&finished)
    })
    .unwrap();
    let latest = read(store, |tx| {
        tx.schedule().latest_occurrence("daily", "finished")
    })
    .unwrap();
    assert_eq!(latest.map(|o| o.scheduled_at), Some(t0()));
    write(store, |tx| {
        tx.schedule_mut().set_schedule_cursor("daily", t0())
    })
    .unwrap();
    write(store, |tx| {
        tx.schedule_mut()
            .set_schedule_cursor("daily", t0() - Duration::hours(1))
    })
    .unwrap();
    let cursor = read(store, |tx| tx.schedule().schedule_cursor("daily")).unwrap();
    assert_eq!(cursor, Some(t0()), "the cursor never moves back");
}
