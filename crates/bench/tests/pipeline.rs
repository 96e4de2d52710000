//! Small runs of the pipeline and flush benchmarks, so that they keep working. They check
//! that every event is processed and every effect committed, never how fast.

use steward_bench::{fsync, pipeline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_commits_every_effect() {
    let args = pipeline::Args {
        events: 300,
        batch: 64,
        ..pipeline::Args::default()
    };
    let report = pipeline::throughput(&args).await.unwrap();
    assert_eq!(report.events, 300);
    assert_eq!(report.effects, 300);
    assert!(report.events_per_second > 0.0);
    assert_eq!(report.durability, "full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_without_rules_has_no_effects() {
    let args = pipeline::Args {
        events: 100,
        no_rules: true,
        durability: "normal".into(),
        ..pipeline::Args::default()
    };
    let report = pipeline::throughput(&args).await.unwrap();
    assert_eq!(report.events, 100);
    assert_eq!(report.effects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_run_measures_every_event() {
    let args = pipeline::Args {
        seconds: 1.0,
        ..pipeline::Args::default()
    };
    let report = pipeline::paced(&args, 200).await.unwrap();
    assert_eq!(report.events, 200);
    assert_eq!(report.effects, 200);
    assert!(report.commits >= 1);
    assert!(report.p50_ms <= report.p95_ms);
    assert!(report.p95_ms <= report.p99_ms);
    assert!(report.p99_ms <= report.max_ms);
}

#[tokio::test]
async fn paced_run_rejects_zero_rate() {
    let error = pipeline::paced(&pipeline::Args::default(), 0)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--rate"), "{error}");
}

#[test]
fn percentile_uses_nearest_rank() {
    let times: Vec<_> = (1..=100).map(std::time::Duration::from_millis).collect();
    assert_eq!(pipeline::percentile_ms(&times, 50.0), 50.0);
    assert_eq!(pipeline::percentile_ms(&times, 99.0), 99.0);
    assert_eq!(pipeline::percentile_ms(&times, 100.0), 100.0);
    assert_eq!(pipeline::percentile_ms(&[], 50.0), 0.0);
}

#[test]
fn fsync_times_every_flush() {
    let report = fsync::run(&fsync::Args {
        count: 5,
        dir: None,
    })
    .unwrap();
    assert_eq!(report.count, 5);
    assert!(report.p50_ms <= report.max_ms);
}
