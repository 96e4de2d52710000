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
