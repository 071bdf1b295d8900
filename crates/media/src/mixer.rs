//! Mixing audio for calls with more than two parties: a conference, or a supervisor
//! listening to, whispering to or barging into an agent's call. Sans-IO: frames go in as they
//! arrive, one 20 ms mix comes out per tick, for each listener in its own codec.
//!
//! Who hears whom is a per-listener set of talkers, so one mixer serves every mode:
//! - conference / barge: everyone hears everyone else;
//! - listen: the supervisor hears caller and agent, nobody hears the supervisor;
//! - whisper: the agent hears caller and supervisor, the caller hears only the agent.
//!
//! A listener never hears its own voice (no echo), whatever the set says. Each talker's
//! G.711 frame is decoded once per tick; a listener that hears everyone else gets the sum of
//! all talkers less its own (one subtraction instead of a sum per listener), so a conference
//! costs O(parties) per tick, not O(parties²).

use std::collections::VecDeque;

use crate::g711::G711Law;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Frames a party may have waiting before the oldest is dropped: 60 ms of jitter absorbed,
/// and a talker whose clock runs fast cannot grow memory or delay.
const MAX_QUEUED_FRAMES: usize = 3;

/// Most parties one mixer takes (the routing sets are 64-bit masks).
pub const MAX_PARTIES: usize = 64;

/// A party's handle in its mixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(u8);

impl PartyId {
    fn bit(self) -> u64 {
        1u64 << self.0
    }

    fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Why a party could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a mixer takes at most {MAX_PARTIES} parties")]
pub struct MixerFull;

#[derive(Debug)]
struct Party {
    law: G711Law,
    /// Talkers this party hears (bit per party id).
    hears: u64,
    queued: VecDeque<[i16; FRAME_SAMPLES]>,
    /// The frame this party contributes to the current tick (silence when none arrived).
    current: [i16; FRAME_SAMPLES],
    /// `current` holds speech from this tick (else it is silence and adds nothing).
    talking: bool,
}

/// Mixes up to [`MAX_PARTIES`] parties with per-listener routing.
#[derive(Debug, Default)]
pub struct Mixer {
    parties: Vec<Option<Party>>,
    total: Vec<i32>,
    mixed: Vec<i32>,
    encoded: Vec<u8>,
    decoded: Vec<i16>,
}

impl Mixer {
    /// An empty mixer.
    pub fn new() -> Mixer {
        Mixer {
            parties: Vec::new(),
            total: vec![0; FRAME_SAMPLES],
            mixed: vec![0; FRAME_SAMPLES],
            encoded: Vec::with_capacity(FRAME_SAMPLES),
            decoded: Vec::with_capacity(FRAME_SAMPLES),
        }
    }

    /// Adds a party speaking and hearing `law`; it hears nobody until [`Mixer::set_hears`].
    pub fn add(&mut self, law: G711Law) -> Result<PartyId, MixerFull> {
        let slot = match self.parties.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.parties.len() < MAX_PARTIES => {
                self.parties.push(None);
                self.parties.len() - 1
            }
            None => return Err(MixerFull),
        };
        self.parties[slot] = Some(Party {
            law,
            hears: 0,
            queued: VecDeque::with_capacity(MAX_QUEUED_FRAMES),
            current: [0; FRAME_SAMPLES],
            talking: false,
        });
        Ok(PartyId(u8::try_from(slot).map_err(|_| MixerFull)?))
    }

    /// Removes a party: nobody hears it any more, and its id may be reused.
    pub fn remove(&mut self, id: PartyId) {
        if let Some(slot) = self.parties.get_mut(id.index()) {
            *slot = None;
        }
        for party in self.parties.iter_mut().flatten() {
            party.hears &= !id.bit();
        }
    }

    /// Parties in the mixer.
    pub fn len(&self) -> usize {
        self.parties.iter().flatten().count()
    }

    /// No party is in the mixer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets whom `listener` hears (its own id is ignored: nobody hears themselves).
    pub fn set_hears(&mut self, listener: PartyId, talkers: &[PartyId]) {
        let mask = talkers
            .iter()
            .filter(|t| **t != listener && self.is_party(**t))
            .fold(0u64, |mask, t| mask | t.bit());
        if let Some(party) = self.party_mut(listener) {
            party.hears = mask;
        }
    }

    /// Makes every party hear every other party (a conference, or a barge).
    pub fn everyone_hears_everyone(&mut self) {
        let all = self.present_mask();
        for (index, party) in self.parties.iter_mut().enumerate() {
            if let Some(party) = party {
                party.hears = all & !(1u64 << index);
            }
        }
    }

    /// A G.711 payload (ideally 20 ms, 160 bytes) arrived from `talker`. Shorter payloads
    /// are padded with silence, longer ones cut at 20 ms.
    pub fn push(&mut self, talker: PartyId, payload: &[u8]) {
        let Some(party) = self
            .parties
            .get_mut(talker.index())
            .and_then(Option::as_mut)
        else {
            return;
        };
        self.decoded.clear();
        party.law.decode_into(
            &payload[..payload.len().min(FRAME_SAMPLES)],
            &mut self.decoded,
        );
        let mut frame = [0i16; FRAME_SAMPLES];
        frame[..self.decoded.len()].copy_from_slice(&self.decoded);
        if party.queued.len() == MAX_QUEUED_FRAMES {
            party.queued.pop_front();
        }
        party.queued.push_back(frame);
    }

    /// One 20 ms mix: takes one frame from each talker (silence from those with none) and
    /// hands `emit` each listener's mix, G.711-encoded in its law. Parties who hear nobody get
    /// nothing; parties whose talkers are all silent get encoded silence (their phones keep
    /// receiving RTP, so they do not hang up on a no-audio timer).
    pub fn tick(&mut self, mut emit: impl FnMut(PartyId, &[u8])) {
        self.total.iter_mut().for_each(|s| *s = 0);
        let mut talking = 0u64;
        for (index, party) in self.parties.iter_mut().enumerate() {
            let Some(party) = party else {
                continue;
            };
            match party.queued.pop_front() {
                Some(frame) => {
                    party.current = frame;
                    party.talking = true;
                    talking |= 1u64 << index;
                    for (total, sample) in self.total.iter_mut().zip(frame.iter()) {
                        *total += i32::from(*sample);
                    }
                }
                None => party.talking = false,
            }
        }
        let present = self.present_mask();
        for index in 0..self.parties.len() {
            let Some(listener) = &self.parties[index] else {
                continue;
            };
            if listener.hears == 0 {
                continue;
            }
            let own = 1u64 << index;
            let heard = listener.hears & talking;
            if heard == talking & !own {
                // Hears every talker but itself: the total less its own voice.
                self.mixed.copy_from_slice(&self.total);
                if listener.talking {
                    for (mixed, sample) in self.mixed.iter_mut().zip(listener.current.iter()) {
                        *mixed -= i32::from(*sample);
                    }
                }
            } else {
                self.mixed.iter_mut().for_each(|s| *s = 0);
                let mut rest = heard;
                while rest != 0 {
                    let talker = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    if let Some(party) = &self.parties[talker] {
                        for (mixed, sample) in self.mixed.iter_mut().zip(party.current.iter()) {
                            *mixed += i32::from(*sample);
                        }
                    }
                }
            }
            debug_assert_eq!(listener.hears & !present, 0);
            self.encoded.clear();
            self.encoded.extend(self.mixed.iter().map(|&sample| {
                let clipped = sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                listener.law.encode(clipped)
            }));
            emit(PartyId(index as u8), &self.encoded);
        }
    }

    /// The decoded frame `talker` contributed to the last tick; `None` when it was silent
    /// (sent nothing) or is not in the mixer. Lets a recorder reuse the mixer's decoding.
    pub fn last_frame(&self, talker: PartyId) -> Option<&[i16; FRAME_SAMPLES]> {
        self.parties
            .get(talker.index())
            .and_then(Option::as_ref)
            .filter(|party| party.talking)
            .map(|party| &party.current)
    }

    fn is_party(&self, id: PartyId) -> bool {
        self.parties.get(id.index()).is_some_and(Option::is_some)
    }

    fn party_mut(&mut self, id: PartyId) -> Option<&mut Party> {
        self.parties.get_mut(id.index()).and_then(Option::as_mut)
    }

    fn present_mask(&self) -> u64 {
        self.parties
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .fold(0u64, |mask, (index, _)| mask | (1u64 << index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A frame of a constant sample value, encoded.
    fn tone(law: G711Law, value: i16) -> Vec<u8> {
        let mut out = Vec::new();
        law.encode_into(&[value; FRAME_SAMPLES], &mut out);
        out
    }

    fn level(law: G711Law, payload: &[u8]) -> i32 {
        let mut samples = Vec::new();
        law.decode_into(payload, &mut samples);
        assert_eq!(samples.len(), FRAME_SAMPLES);
        i32::from(samples[0])
    }

    fn mix(mixer: &mut Mixer) -> HashMap<PartyId, Vec<u8>> {
        let mut out = HashMap::new();
        mixer.tick(|party, payload| {
            out.insert(party, payload.to_vec());
        });
        out
    }

    /// Decoding what was encoded loses a little (G.711 is logarithmic): compare within 3 %.
    fn near(actual: i32, expected: i32) -> bool {
        (actual - expected).abs() <= expected.abs() / 33 + 8
    }

    #[test]
    fn a_conference_hears_everyone_but_itself() {
        let law = G711Law::Ulaw;
        let mut mixer = Mixer::new();
        let parties: Vec<_> = (0..3).map(|_| mixer.add(law).expect("room")).collect();
        mixer.everyone_hears_everyone();
        for (party, value) in parties.iter().zip([1000i16, 2000, 4000]) {
            mixer.push(*party, &tone(law, value));
        }
        let out = mix(&mut mixer);
        assert!(near(level(law, &out[&parties[0]]), 6000));
        assert!(near(level(law, &out[&parties[1]]), 5000));
        assert!(near(level(law, &out[&parties[2]]), 3000));
    }

    #[test]
    fn whisper_reaches_the_agent_and_never_the_caller() {
        let law = G711Law::Alaw;
        let mut mixer = Mixer::new();
        let caller = mixer.add(law).expect("room");
        let agent = mixer.add(law).expect("room");
        let supervisor = mixer.add(law).expect("room");
        mixer.set_hears(caller, &[agent]);
        mixer.set_hears(agent, &[caller, supervisor]);
        mixer.set_hears(supervisor, &[caller, agent]);
        mixer.push(caller, &tone(law, 1000));
        mixer.push(agent, &tone(law, 2000));
        mixer.push(supervisor, &tone(law, 8000));
        let out = mix(&mut mixer);
        assert!(
            near(level(law, &out[&caller]), 2000),
            "caller hears the agent only"
        );
        assert!(near(level(law, &out[&agent]), 9000));
        assert!(near(level(law, &out[&supervisor]), 3000));
    }

    #[test]
    fn listen_mode_nobody_hears_the_supervisor() {
        let law = G711Law::Ulaw;
        let mut mixer = Mixer::new();
        let caller = mixer.add(law).expect("room");
        let agent = mixer.add(law).expect("room");
        let supervisor = mixer.add(law).expect("room");
        mixer.set_hears(caller, &[agent]);
        mixer.set_hears(agent, &[caller]);
        mixer.set_hears(supervisor, &[caller, agent, supervisor]);
        mixer.push(supervisor, &tone(law, 8000));
        mixer.push(caller, &tone(law, 1000));
        let out = mix(&mut mixer);
        assert_eq!(level(law, &out[&caller]), 0, "the agent said nothing");
        assert!(near(level(law, &out[&agent]), 1000));
        assert!(
            near(level(law, &out[&supervisor]), 1000),
            "not its own voice"
        );
    }

    #[test]
    fn sums_clip_instead_of_wrapping() {
        let law = G711Law::Ulaw;
        let mut mixer = Mixer::new();
        let parties: Vec<_> = (0..3).map(|_| mixer.add(law).expect("room")).collect();
        mixer.everyone_hears_everyone();
        mixer.push(parties[1], &tone(law, 30000));
        mixer.push(parties[2], &tone(law, 30000));
        let out = mix(&mut mixer);
        assert!(
            level(law, &out[&parties[0]]) > 30000,
            "clipped high, not wrapped negative"
        );
    }

    #[test]
    fn laws_are_per_listener_and_silence_keeps_flowing() {
        let mut mixer = Mixer::new();
        let pcmu = mixer.add(G711Law::Ulaw).expect("room");
        let pcma = mixer.add(G711Law::Alaw).expect("room");
        mixer.everyone_hears_everyone();
        mixer.push(pcmu, &tone(G711Law::Ulaw, 3000));
        let out = mix(&mut mixer);
        assert!(near(level(G711Law::Alaw, &out[&pcma]), 3000));
        // Nobody talks now: both still get a frame, of silence.
        let out = mix(&mut mixer);
        // (A-law has no zero: its quietest code decodes to ±8.)
        assert!(near(level(G711Law::Ulaw, &out[&pcmu]), 0));
        assert!(near(level(G711Law::Alaw, &out[&pcma]), 0));
        assert_eq!(out[&pcmu].len(), FRAME_SAMPLES);
    }

    #[test]
    fn a_fast_talker_is_bounded_and_a_removed_party_is_heard_no_more() {
        let law = G711Law::Ulaw;
        let mut mixer = Mixer::new();
        let a = mixer.add(law).expect("room");
        let b = mixer.add(law).expect("room");
        mixer.everyone_hears_everyone();
        for _ in 0..10 {
            mixer.push(a, &tone(law, 1000));
        }
        let heard = (0..5)
            .filter(|_| level(law, &mix(&mut mixer)[&b]) != 0)
            .count();
        assert_eq!(heard, MAX_QUEUED_FRAMES);
        mixer.push(a, &tone(law, 1000));
        mixer.remove(a);
        assert_eq!(mixer.len(), 1);
        let out = mix(&mut mixer);
        assert!(!out.contains_key(&b), "b hears nobody now");
        let c = mixer.add(law).expect("room");
        assert_eq!(c, a, "the slot is reused");
    }

    #[test]
    fn the_mixer_has_a_limit() {
        let mut mixer = Mixer::new();
        for _ in 0..MAX_PARTIES {
            mixer.add(G711Law::Ulaw).expect("room");
        }
        assert_eq!(mixer.add(G711Law::Ulaw), Err(MixerFull));
    }
}
