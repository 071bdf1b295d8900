//! Cost of mixing: one 20 ms tick (decode each talker once, sum, encode per listener) for
//! conferences of 3 to 20 parties where everyone talks, and for a supervised call (caller,
//! agent, supervisor) in whisper mode. The per-participant figure is the tick time divided by
//! the party count; a 20 ms budget per tick tells how many such mixes one core could run.
//!
//! `cargo bench -p switchboard-media --bench mixer`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use media::g711::G711Law;
use media::mixer::{Mixer, FRAME_SAMPLES};

fn speech(seed: usize) -> Vec<u8> {
    let samples: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|i| (((i * 37 + seed * 101) % 2000) as i16 - 1000) * 8)
        .collect();
    let mut out = Vec::new();
    G711Law::Ulaw.encode_into(&samples, &mut out);
    out
}

fn conference(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer/conference_tick");
    for parties in [3usize, 5, 10, 20] {
        let mut mixer = Mixer::new();
        let ids: Vec<_> = (0..parties)
            .map(|_| mixer.add(G711Law::Ulaw).expect("room"))
            .collect();
        mixer.everyone_hears_everyone();
        let frames: Vec<_> = (0..parties).map(speech).collect();
        group.bench_with_input(BenchmarkId::from_parameter(parties), &parties, |b, _| {
            b.iter(|| {
                for (id, frame) in ids.iter().zip(&frames) {
                    mixer.push(*id, frame);
                }
                let mut bytes = 0usize;
                mixer.tick(|_, payload| bytes += payload.len());
                black_box(bytes)
            })
        });
    }
    group.finish();
}

fn whisper(c: &mut Criterion) {
    let mut mixer = Mixer::new();
    let caller = mixer.add(G711Law::Ulaw).expect("room");
    let agent = mixer.add(G711Law::Ulaw).expect("room");
    let supervisor = mixer.add(G711Law::Alaw).expect("room");
    mixer.set_hears(caller, &[agent]);
    mixer.set_hears(agent, &[caller, supervisor]);
    mixer.set_hears(supervisor, &[caller, agent]);
    let frames = [speech(1), speech(2), speech(3)];
    c.bench_function("mixer/supervised_call_tick", |b| {
        b.iter(|| {
            for (id, frame) in [caller, agent, supervisor].iter().zip(&frames) {
                mixer.push(*id, frame);
            }
            let mut bytes = 0usize;
            mixer.tick(|_, payload| bytes += payload.len());
            black_box(bytes)
        })
    });
}

criterion_group!(benches, conference, whisper);
criterion_main!(benches);
