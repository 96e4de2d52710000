//! Condition evaluation: 200 rules against one event. Run with
//! `cargo bench -p steward-rules --bench conditions`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_rules::VM;
use steward_rules::bench::{context, evaluate_all, rules};

fn conditions(c: &mut Criterion) {
    let rules = rules(200);
    let (_, context) = context();
    let mut vm = VM::new();
    let mut group = c.benchmark_group("conditions");
    group.throughput(Throughput::Elements(rules.len() as u64));
    group.bench_function("200 rules, one event", |b| {
        b.iter(|| evaluate_all(&rules, &context, &mut vm))
    });
    group.finish();
}

criterion_group!(benches, conditions);
criterion_main!(benches);
