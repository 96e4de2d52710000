//! A small run of the billing benchmark, so that it keeps working. It checks that every
//! contract is assessed and the ready ones drafted, never how fast.

use steward_bench::billing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_firm_is_assessed_and_drafted() {
    let args = billing::Args {
        people: 12,
        days: 20,
        ..billing::Args::default()
    };
    let report = billing::run(&args).await.unwrap();
    assert_eq!(report.contracts, 12);
    let assessed = report.ready + report.blocked;
    assert!(assessed > 0, "{report:?}");
    assert!(assessed <= 12, "{report:?}");
    assert!(report.timesheets > 0);
    assert_eq!(report.drafted, report.ready);
    assert!(report.peak_rss_mib.is_some());
}

/// The firm-wide walk shares the contracts among workers and reads each contract's entries
/// on its own. A contract's verdict must be the same as when it is checked alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_matches_each_contract_alone() {
    use std::sync::Arc;
    use steward_domain::SystemClock;
    use steward_engine::billing::{BillingPeriod, Selection};
    use steward_engine::{Engine, EngineConfig};
    use steward_store::Store;
    use steward_store_sqlite::{SqliteOptions, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        SqliteStore::open(dir.path().join("walk.db"), SqliteOptions::default()).unwrap();
    let engine = Engine::new(store, Arc::new(SystemClock), EngineConfig::default());
    // More contracts than one worker's block, so that several workers share them.
    let config = steward_generator::FirmConfig::benchmark(48, 45);
    steward_generator::generate(&engine, config).await.unwrap();

    for month in ["2026-10", "2026-11"] {
        let period = BillingPeriod::parse(month).unwrap();
        let firm = engine
            .billing_readiness(Selection {
                period,
                contract: None,
            })
            .await
            .unwrap();
        assert_eq!(firm.len(), 48, "{month}");
        let ids: Vec<&str> = firm.iter().map(|c| c.contract.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "{month}: not in contract id order");

        let mut blockers = 0;
        for verdict in &firm {
            let alone = engine
                .billing_readiness(Selection {
                    period,
                    contract: Some(verdict.contract.clone()),
                })
                .await
                .unwrap();
            assert_eq!(
                serde_json::to_value(&alone[0]).unwrap(),
                serde_json::to_value(verdict).unwrap(),
                "{month}: contract {}",
                verdict.contract
            );
            blockers += verdict.blockers.len();
        }
        assert!(
            blockers > 0,
            "{month}: the generated firm has no blocker to compare"
        );
    }
}
