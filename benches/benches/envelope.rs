//! Encoding and decoding probe results in their envelope: the floor under every consumer.
//!
//! `cargo bench -p vigil-benches --bench envelope`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vigil_benches::probe_result;
use vigil_schema::{ProbeResult, decode, encode};

fn envelope(c: &mut Criterion) {
    let events: Vec<ProbeResult> = (0..1_000).map(probe_result).collect();
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| encode(e).unwrap_or_default())
        .collect();
    // The bare-JSON form the decoder also accepts (hand-written events, external tools).
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap_or_default())
        .collect();

    let mut group = c.benchmark_group("probe_result");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            for event in &events {
                buf.clear();
                black_box(vigil_schema::envelope::encode_into(black_box(event), &mut buf).is_ok());
            }
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(decode::<ProbeResult>(black_box(bytes)).is_ok());
            }
        })
    });
    group.bench_function("decode_json", |b| {
        b.iter(|| {
            for bytes in &json {
                black_box(decode::<ProbeResult>(black_box(bytes)).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
