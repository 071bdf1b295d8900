//! The prompt and music-on-hold player: turns [`AudioClip`]s into 20 ms RTP packets with
//! continuous sequence numbers and timestamps and a marker bit at the start of each
//! talkspurt (RFC 3551 §4.1). Sans-IO: the caller asks for a packet every 20 ms.
//!
//! A list of clips plays as one continuous stream (one talkspurt, no padding between clips),
//! so a prompt built from pieces ("your position is" + "3") sounds like one sentence.

use rtp_rs::{RtpPacketBuilder, Seq};

use std::sync::Arc;

use crate::audio_clip::AudioClip;
use crate::codec::{Codec, SAMPLES_PER_20MS};

/// What was just produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit (first packet after silence).
    pub marker: bool,
}

/// Plays clips into one outgoing RTP stream.
#[derive(Debug, Clone)]
pub struct Player {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    /// The list playing; empty when idle.
    /// Shared with every other call playing the same prompts: never copied.
    clips: Vec<Arc<AudioClip>>,
    /// Clip in `clips` and sample in it where the next frame starts.
    clip_index: usize,
    position: usize,
    looping: bool,
    talkspurt_start: bool,
    payload: Vec<u8>,
}

impl Player {
    /// A player sending `codec` as `payload_type` (from the negotiated SDP) with this SSRC
    /// and random initial sequence number and timestamp (RFC 3550 §5.1), chosen by the caller.
    pub fn new(
        codec: Codec,
        payload_type: u8,
        ssrc: u32,
        initial_sequence: u16,
        initial_timestamp: u32,
    ) -> Player {
        Player {
            codec,
            payload_type,
            ssrc,
            next_sequence: initial_sequence,
            next_timestamp: initial_timestamp,
            clips: Vec::new(),
            clip_index: 0,
            position: 0,
            looping: false,
            talkspurt_start: true,
            payload: Vec::with_capacity(SAMPLES_PER_20MS),
        }
    }

    /// Starts `clip` (replacing whatever plays); `looping` for music on hold.
    pub fn play(&mut self, clip: Arc<AudioClip>, looping: bool) {
        self.play_list(vec![clip], looping);
    }

    /// Starts `clips` one after another as one stream (replacing whatever plays); `looping`
    /// repeats the whole list (music on hold).
    pub fn play_list(&mut self, clips: Vec<Arc<AudioClip>>, looping: bool) {
        // A looping list with no audio would never produce a frame nor end: treat it as ended.
        let has_audio = clips.iter().any(|clip| !clip.samples().is_empty());
        self.clips = clips;
        self.clip_index = 0;
        self.position = 0;
        self.looping = looping && has_audio;
        self.talkspurt_start = true;
    }

    /// Stops playing; the next clip starts a new talkspurt.
    pub fn stop(&mut self) {
        self.clips.clear();
        self.talkspurt_start = true;
    }

    /// True while a clip is playing.
    pub fn is_playing(&self) -> bool {
        !self.clips.is_empty()
    }

    /// Switches the encoding of the following packets (the leg's codec changed in a re-INVITE);
    /// sequence numbers and timestamps continue.
    pub fn set_codec(&mut self, codec: Codec, payload_type: u8) {
        self.codec = codec;
        self.payload_type = payload_type;
    }

    /// Advances the RTP clock over time in which nothing was sent (between prompts), so the
    /// receiver's jitter buffer sees the real gap.
    pub fn skip_idle(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
    }

    /// The stream's SSRC, for other packets sent in it (RFC 4733 events).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Takes the next sequence number for a packet of another payload type sent in this
    /// stream (an RFC 4733 event), so the receiver sees one gap-free sequence; returns it
    /// with the RTP timestamp the next frame would carry. The clock does not move.
    pub fn reserve_sequence(&mut self) -> (u16, u32) {
        let reserved = (self.next_sequence, self.next_timestamp);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        reserved
    }

    /// Lets one 20 ms frame time pass without sending audio (an RFC 4733 event has the
    /// stream): the clock advances, the audio resumes where it stopped, and its next frame
    /// starts a new talkspurt (marker bit) because the receiver heard no audio meanwhile.
    pub fn pause_frame(&mut self) {
        self.skip_idle(SAMPLES_PER_20MS as u32);
        self.talkspurt_start = true;
    }

    /// Writes the next 20 ms RTP packet into `out` (cleared first). `None` when the clip has
    /// ended (or nothing plays); a short last frame is padded with silence.
    pub fn next_packet(&mut self, out: &mut Vec<u8>) -> Option<FrameInfo> {
        if self.clips.is_empty() {
            return None;
        }
        self.payload.clear();
        let law = self.codec.law();
        let mut needed = SAMPLES_PER_20MS;
        while needed > 0 {
            let Some(clip) = self.clips.get(self.clip_index) else {
                if !self.looping {
                    break;
                }
                // Seamless loop, even inside one frame; terminates because the list has audio.
                self.clip_index = 0;
                self.position = 0;
                continue;
            };
            let samples = clip.samples();
            let end = (self.position + needed).min(samples.len());
            let chunk = samples.get(self.position..end).unwrap_or(&[]);
            law.encode_into(chunk, &mut self.payload);
            needed -= chunk.len();
            self.position = end;
            if self.position >= samples.len() {
                self.clip_index += 1;
                self.position = 0;
            }
        }
        if self.payload.is_empty() {
            self.stop();
            return None;
        }
        self.payload.resize(SAMPLES_PER_20MS, law.silence());
        let info = FrameInfo {
            sequence: self.next_sequence,
            timestamp: self.next_timestamp,
            marker: self.talkspurt_start,
        };
        let builder = RtpPacketBuilder::new()
            .payload_type(self.payload_type)
            .ssrc(self.ssrc)
            .sequence(Seq::from(info.sequence))
            .timestamp(info.timestamp)
            .marked(info.marker)
            .payload(&self.payload);
        out.clear();
        out.resize(builder.target_length(), 0);
        let written = builder.build_into_unchecked(out);
        out.truncate(written);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(SAMPLES_PER_20MS as u32);
        self.talkspurt_start = false;
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::ulaw_decode;
    use rtp_rs::RtpReader;

    fn ramp(len: usize) -> Arc<AudioClip> {
        Arc::new(AudioClip::from_samples(
            (0..len).map(|i| (i as i16) * 50).collect(),
        ))
    }

    #[test]
    fn frames_have_consecutive_sequence_timestamps_and_one_marker() {
        let mut player = Player::new(Codec::Pcmu, 0, 0xABCD, 65534, u32::MAX - 160);
        player.play(ramp(160 * 3 + 80), false);
        let mut packet = Vec::new();
        let mut frames = Vec::new();
        while let Some(info) = player.next_packet(&mut packet) {
            let rtp = RtpReader::new(&packet).expect("player emits valid RTP");
            assert_eq!(u16::from(rtp.sequence_number()), info.sequence);
            assert_eq!(rtp.timestamp(), info.timestamp);
            assert_eq!(rtp.mark(), info.marker);
            assert_eq!(rtp.payload_type(), 0);
            assert_eq!(rtp.ssrc(), 0xABCD);
            assert_eq!(rtp.payload().len(), 160);
            frames.push(info);
        }
        assert_eq!(frames.len(), 4, "3.5 frames of audio, last one padded");
        assert_eq!(
            frames.iter().map(|f| f.sequence).collect::<Vec<_>>(),
            [65534, 65535, 0, 1]
        );
        assert_eq!(
            frames.iter().map(|f| f.timestamp).collect::<Vec<_>>(),
            [u32::MAX - 160, u32::MAX, 159, 319]
        );
        assert_eq!(frames.iter().filter(|f| f.marker).count(), 1);
        assert!(frames[0].marker);
        assert!(!player.is_playing());
    }

    #[test]
    fn payload_is_the_encoded_audio_padded_with_silence() {
        let mut player = Player::new(Codec::Pcmu, 0, 1, 0, 0);
        player.play(Arc::new(AudioClip::from_samples(vec![1000; 100])), false);
        let mut packet = Vec::new();
        player.next_packet(&mut packet).expect("one frame");
        let rtp = RtpReader::new(&packet).expect("valid");
        let decoded: Vec<i16> = rtp.payload().iter().map(|&b| ulaw_decode(b)).collect();
        assert!(decoded[..100].iter().all(|&s| (s - 1000).abs() < 64));
        assert!(decoded[100..].iter().all(|&s| s == 0));
    }

    #[test]
    fn music_on_hold_loops_without_a_new_marker() {
        let mut player = Player::new(Codec::Pcma, 8, 1, 10, 0);
        player.play(ramp(250), true);
        let mut packet = Vec::new();
        let frames: Vec<FrameInfo> = (0..10)
            .map(|_| player.next_packet(&mut packet).expect("looping never ends"))
            .collect();
        assert!(player.is_playing());
        assert_eq!(frames.iter().filter(|f| f.marker).count(), 1);
        assert_eq!(frames[9].sequence, 19);
        assert_eq!(frames[9].timestamp, 9 * 160);
        assert_eq!(RtpReader::new(&packet).expect("valid").payload_type(), 8);
    }

    #[test]
    fn next_prompt_continues_the_stream_with_a_marker() {
        let mut player = Player::new(Codec::Pcmu, 0, 1, 100, 8000);
        let mut packet = Vec::new();
        player.play(ramp(160), false);
        let first = player.next_packet(&mut packet).expect("frame");
        assert_eq!(player.next_packet(&mut packet), None);
        player.skip_idle(800); // 100 ms pause between prompts
        player.play(ramp(160), false);
        let second = player.next_packet(&mut packet).expect("frame");
        assert_eq!(
            second.sequence,
            first.sequence + 1,
            "no sequence gap: nothing was lost"
        );
        assert_eq!(second.timestamp, first.timestamp + 160 + 800);
        assert!(second.marker);
    }

    #[test]
    fn other_packets_share_the_sequence_and_a_pause_resumes_the_audio() {
        let mut player = Player::new(Codec::Pcmu, 0, 0x1234, 65535, 1000);
        let mut packet = Vec::new();
        player.play(Arc::new(AudioClip::from_samples(vec![1000; 480])), false);
        let first = player.next_packet(&mut packet).expect("frame");
        assert_eq!(player.ssrc(), 0x1234);
        assert_eq!(player.reserve_sequence(), (0, 1160), "wraps; clock unmoved");
        player.pause_frame();
        assert_eq!(player.reserve_sequence(), (1, 1320));
        player.pause_frame();
        let resumed = player.next_packet(&mut packet).expect("audio resumes");
        assert_eq!(
            (resumed.sequence, resumed.timestamp, resumed.marker),
            (2, 1480, true),
            "continues the sequence, after the paused time, as a new talkspurt"
        );
        assert!(first.marker);
        let second = player.next_packet(&mut packet).expect("third frame");
        assert!(!second.marker);
        assert_eq!(
            player.next_packet(&mut packet),
            None,
            "480 samples = 3 frames: nothing was lost to the pause"
        );
    }

    #[test]
    fn a_list_plays_as_one_stream_without_gaps() {
        let mut player = Player::new(Codec::Pcmu, 0, 1, 0, 0);
        let a = Arc::new(AudioClip::from_samples(vec![1000; 100]));
        let b = Arc::new(AudioClip::from_samples(Vec::new()));
        let c = Arc::new(AudioClip::from_samples(vec![-1000; 300]));
        player.play_list(vec![a, b, c], false);
        let mut packet = Vec::new();
        let mut decoded = Vec::new();
        let mut markers = 0;
        while let Some(info) = player.next_packet(&mut packet) {
            markers += usize::from(info.marker);
            let rtp = RtpReader::new(&packet).expect("valid");
            decoded.extend(rtp.payload().iter().map(|&b| ulaw_decode(b)));
        }
        assert_eq!(markers, 1);
        assert_eq!(
            decoded.len(),
            480,
            "400 samples fill 2.5 frames, padded to 3"
        );
        assert!(decoded[..100].iter().all(|&s| (s - 1000).abs() < 64));
        assert!(decoded[100..400].iter().all(|&s| (s + 1000).abs() < 64));
        assert!(decoded[400..].iter().all(|&s| s == 0));
    }

    #[test]
    fn a_looping_list_of_empty_clips_ends() {
        let mut player = Player::new(Codec::Pcmu, 0, 1, 0, 0);
        let empty = Arc::new(AudioClip::from_samples(Vec::new()));
        player.play_list(vec![empty.clone(), empty.clone(), empty], true);
        assert_eq!(player.next_packet(&mut Vec::new()), None);
        assert!(!player.is_playing());
    }

    #[test]
    fn empty_clip_produces_nothing() {
        let mut player = Player::new(Codec::Pcmu, 0, 1, 0, 0);
        player.play(Arc::new(AudioClip::from_samples(Vec::new())), true);
        assert_eq!(player.next_packet(&mut Vec::new()), None);
    }
}
