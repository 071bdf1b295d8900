//! Time per SIP message on call control's path (issue 12): parsing what arrives, encoding what
//! goes out, and a whole call through the transaction layer, using the same call as the
//! allocation test (`tests/call_path/mod.rs`).
//!
//! `cargo bench -p switchboard-sip --bench message_path`. The `call` group counts the twelve
//! steps of a call as its elements, so criterion's throughput is messages handled per second.

#[path = "../tests/call_path/mod.rs"]
mod call_path;

use call_path::{one_call, Wire, STEPS};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sip::message::{encode_request, encode_response, push_header, response_to};
use sip::rsip::SipMessage;
use sip::transaction::{TimerConfig, TransactionLayer};
use std::time::{Duration, Instant};

fn request(bytes: &[u8]) -> sip::rsip::Request {
    match sip::parse::parse(bytes) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("a request expected, got {other:?}"),
    }
}

fn parse(c: &mut Criterion) {
    let wire = Wire::new(1);
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in [
        ("trunk INVITE (SDP)", &wire.trunk_invite),
        ("agent 200 (SDP)", &wire.agent_200),
        ("agent 180", &wire.agent_180),
        ("trunk BYE", &wire.trunk_bye),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| sip::parse::parse(black_box(bytes)).expect("parses"))
        });
    }
    group.finish();
}

fn build_and_encode(c: &mut Criterion) {
    let wire = Wire::new(1);
    let invite = request(&wire.trunk_invite);
    let bye = request(&wire.trunk_bye);
    let mut group = c.benchmark_group("encode");
    group.bench_function("200 (SDP) to the trunk: response_to + encode", |b| {
        b.iter(|| {
            let mut ok = response_to(black_box(&invite), 200, Some("sb1"));
            push_header(
                &mut ok.headers,
                "Contact",
                "<sip:switchboard@127.0.0.1:5060>",
            );
            push_header(&mut ok.headers, "Content-Type", "application/sdp");
            ok.body = invite.body.clone();
            encode_response(&ok)
        })
    });
    group.bench_function("200 to a BYE: response_to + encode", |b| {
        b.iter(|| encode_response(&response_to(black_box(&bye), 200, None)))
    });
    group.bench_function("trunk INVITE: encode only", |b| {
        b.iter(|| encode_request(black_box(&invite)))
    });
    group.finish();
}

fn whole_call(c: &mut Criterion) {
    let wires: Vec<Wire> = (0..256).map(Wire::new).collect();
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut n: u64 = 0;
    let mut group = c.benchmark_group("call");
    group.throughput(Throughput::Elements(STEPS.len() as u64));
    group.bench_function("twelve messages through parse, layer, build, encode", |b| {
        b.iter_batched_ref(
            || (),
            |_| {
                n += 1;
                let now = start + Duration::from_secs(100 * n);
                let wire = &wires[n as usize % wires.len()];
                let sent = one_call(&mut layer, now, wire, |_| {});
                // The linger ends before the next call, as in the allocation test.
                layer.handle_timeout(now + Duration::from_secs(60));
                sent
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parse, build_and_encode, whole_call
}
criterion_main!(benches);
