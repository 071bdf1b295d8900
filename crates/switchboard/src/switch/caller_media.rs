//! What a caller hears and presses before an agent takes the call: the IVR menus, music on
//! hold, the periodic position and estimated-wait announcement, the callback key, voicemail,
//! and music while an agent holds the call.
//!
//! The media session plays and listens; the call decides what a key press, the end of a
//! prompt or its IVR timer leads to (`call/self_service.rs`), and this module carries it out
//! with the prompt library and the ACD's position: what to play, the next announcement.
//! Nothing here re-checks anything on a period.

use super::b2bua::EndCause;
use super::call::timers::CallTimer;
use super::call::{CallInput, CallNumber, CallState};
use super::Switch;
use crate::ivr::IvrSession;
use media::{Leg, MediaCommand};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest voicemail message; the call is hung up when it is reached.
const VOICEMAIL_LIMIT: Duration = Duration::from_secs(120);

/// What the caller is hearing now, so the end of a prompt leads to the right next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerAudio {
    /// Nothing is being played.
    Silence,
    /// IVR prompts (the IVR session owns the token).
    Ivr,
    /// Music on hold, looping.
    HoldMusic,
    /// The position/estimated-wait announcement with this token; music resumes after it.
    Announcement(u64),
    /// A last prompt before hanging up (e.g. the callback confirmation).
    Farewell(u64),
    /// The number's emergency announcement; the caller joins the queue after it.
    Emergency(u64),
    /// The voicemail greeting; recording starts after it.
    VoicemailGreeting(u64),
    /// A voicemail message is being recorded.
    VoicemailRecording,
    /// The post-call survey prompt with this token; the key wait starts after it.
    Survey(u64),
}

impl Switch {
    pub(super) fn next_play_token(&mut self) -> u64 {
        self.play_tokens += 1;
        self.play_tokens
    }

    /// Plays `clips` to the caller (replacing whatever plays).
    pub(super) fn play_to_caller(
        &mut self,
        id: CallNumber,
        clips: Vec<Arc<media::AudioClip>>,
        looping: bool,
        token: u64,
    ) {
        self.media.command(
            id,
            MediaCommand::Play {
                leg: Leg::Trunk,
                clips,
                looping,
                token,
            },
        );
    }

    /// Starts the IVR `name` on a call whose trunk leg was just answered.
    pub(super) fn start_ivr(&mut self, now: Instant, id: CallNumber, name: &str) {
        let Some(ivr) = self.index.ivr(&self.config, name).cloned() else {
            tracing::error!(call = id, ivr = name, "IVR not configured");
            self.end_call(now, id, EndCause::IvrHangup);
            return;
        };
        let open = match &ivr.schedule {
            Some(schedule) => self
                .index
                .schedule(&self.config, schedule)
                .is_none_or(|s| s.schedule.is_open(self.unix_now(now) as i64)),
            None => true,
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let emergency = self.emergency.get(&call.did);
        let (session, actions) = IvrSession::start(
            &ivr,
            call.language.as_deref(),
            open,
            emergency.as_deref(),
            now,
        );
        let session = Box::new(session);
        self.call_input(now, id, CallInput::IvrStarted { session, actions });
    }

    /// A key the caller pressed (RFC 4733, in-band or SIP INFO), for the call to decide.
    pub(super) fn caller_pressed(&mut self, now: Instant, id: CallNumber, digit: char) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let callback_key = self
            .index
            .queue(&self.config, &call.queue)
            .and_then(|q| q.callback_key);
        let input = CallInput::CallerPressed {
            digit,
            callback_key,
        };
        self.call_input(now, id, input);
    }

    /// Music on hold for a waiting caller, and the first announcement timer.
    /// What a caller hears on entering the queue: on a queue that announces, "please hold"
    /// with their position and estimated wait at once (not only after the first period),
    /// then music on hold; elsewhere the music straight away.
    pub(super) fn start_waiting_audio(&mut self, now: Instant, id: CallNumber) {
        let announces = self
            .calls
            .get(&id)
            .and_then(|call| self.index.queue(&self.config, &call.queue))
            .is_some_and(|q| q.announce_every.is_some());
        if !(announces && self.announce_position(id, true)) {
            self.play_hold_music(id);
        }
        self.schedule_announcement(now, id);
    }

    pub(super) fn play_hold_music(&mut self, id: CallNumber) {
        let Some(clips) = self.hold_music(id) else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::HoldMusic;
        }
        let token = self.next_play_token();
        self.play_to_caller(id, clips, true, token);
    }

    /// The call's queue's music on hold, in the call's language.
    fn hold_music(&self, id: CallNumber) -> Option<Vec<Arc<media::AudioClip>>> {
        let call = self.calls.get(&id)?;
        let name = self
            .index
            .queue(&self.config, &call.queue)
            .map_or("moh", |q| q.music_on_hold.as_str());
        Some(
            self.prompts
                .get(&call.prompt_language(), name)
                .into_iter()
                .collect(),
        )
    }

    fn schedule_announcement(&mut self, now: Instant, id: CallNumber) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let every = self
            .index
            .queue(&self.config, &call.queue)
            .and_then(|q| q.announce_every);
        if let Some(every) = every {
            self.set_call_timer(id, CallTimer::Announce, now + every);
        }
    }

    /// Time to tell a waiting caller their position and estimated wait.
    pub(super) fn announcement_due(&mut self, now: Instant, id: CallNumber) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let waiting =
            matches!(call.state, CallState::Queued) && call.audio == CallerAudio::HoldMusic;
        if waiting {
            self.announce_position(id, false);
        }
        self.schedule_announcement(now, id);
    }

    /// Plays the caller's position and estimated wait (after "please hold" when `entering`),
    /// and the callback offer where the queue has one; music resumes when it ends. `false`
    /// when the call is not waiting in the ACD (being offered, say): nothing is played.
    fn announce_position(&mut self, id: CallNumber, entering: bool) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let Some((position, wait)) = self.acd.position(acd::CallId(id)) else {
            return false;
        };
        let language = call.prompt_language();
        let minutes = wait.as_secs().div_ceil(60);
        let mut clips: Vec<_> = if entering {
            self.prompts
                .get(&language, "please-hold")
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        clips.extend(self.prompts.position_announcement(
            &language,
            u32::try_from(position).unwrap_or(u32::MAX),
            Some(u32::try_from(minutes).unwrap_or(u32::MAX)),
        ));
        let offers_callback = self
            .index
            .queue(&self.config, &call.queue)
            .is_some_and(|q| q.callback_key.is_some());
        if offers_callback {
            clips.extend(self.prompts.get(&language, "callback-offer"));
        }
        let token = self.next_play_token();
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::Announcement(token);
        }
        self.play_to_caller(id, clips, false, token);
        true
    }

    /// The caller pressed the callback key: their request is recorded (in the CDR) and they
    /// hear a confirmation before the call ends.
    pub(super) fn request_callback(&mut self, now: Instant, id: CallNumber) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        tracing::info!(call = id, caller = %call.caller, queue = %call.queue, "callback requested");
        // Leave the queue at once so no agent is offered a caller who is about to hang up.
        if let Some(leg) = call.agent_leg.take() {
            self.close_attempt(now, id, &leg, None);
            self.end_agent_leg(now, leg, None);
        }
        if let Ok(actions) = self.acd.abandon(now, acd::CallId(id)) {
            self.apply_acd(now, actions);
        }
        // The caller's place passes to a callback entry that waits in the queue instead.
        self.book_callback(now, id);
        self.say_goodbye(id, "callback-registered", EndCause::CallbackRequested);
    }

    /// Plays `prompt` to the caller, then ends the call with `cause`.
    pub(super) fn say_goodbye(&mut self, id: CallNumber, prompt: &str, cause: EndCause) {
        let token = self.next_play_token();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.cancel(CallTimer::Announce);
        call.state = CallState::Farewell(cause);
        call.audio = CallerAudio::Farewell(token);
        let language = call.prompt_language();
        let clips: Vec<_> = self.prompts.get(&language, prompt).into_iter().collect();
        self.play_to_caller(id, clips, false, token);
    }

    pub(super) fn start_voicemail(&mut self, id: CallNumber) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Voicemail;
        let language = call.prompt_language();
        let clips: Vec<_> = self
            .prompts
            .get(&language, "leave-message")
            .into_iter()
            .collect();
        let token = self.next_play_token();
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::VoicemailGreeting(token);
        }
        self.play_to_caller(id, clips, false, token);
    }

    pub(super) fn record_voicemail(&mut self, now: Instant, id: CallNumber) {
        let path = self.recording_path(now, id, "voicemail");
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::VoicemailRecording;
            call.recording = Some(path.clone());
        }
        self.media.record(id, path);
        self.set_call_timer(id, CallTimer::VoicemailLimit, now + VOICEMAIL_LIMIT);
    }

    /// The agent put the caller on hold (`true`) or took them off it: music meanwhile.
    pub(super) fn agent_hold_changed(&mut self, id: CallNumber, holding: bool) {
        tracing::info!(call = id, holding, "agent hold changed");
        if holding {
            self.play_hold_music(id);
        } else {
            if let Some(call) = self.calls.get_mut(&id) {
                call.audio = CallerAudio::Silence;
            }
            self.media
                .command(id, MediaCommand::StopPlayback { leg: Leg::Trunk });
        }
    }

    /// The caller put the agent on hold (`true`) or took them off it. The agent hears the
    /// queue's music meanwhile, as a PBX would play it: a held caller's network often sends
    /// nothing at all (a=inactive), and a phone that hears nothing drops the call on its own
    /// no-audio timer.
    pub(super) fn caller_hold_changed(&mut self, id: CallNumber, holding: bool) {
        let connected = self.calls.get(&id).is_some_and(|c| c.state.is_connected());
        if !connected {
            return;
        }
        tracing::info!(call = id, holding, "caller hold changed");
        let leg = self.agent_talk_leg(id);
        if !holding {
            self.media.command(id, MediaCommand::StopPlayback { leg });
            return;
        }
        let Some(clips) = self.hold_music(id) else {
            return;
        };
        let token = self.next_play_token();
        self.media.command(
            id,
            MediaCommand::Play {
                leg,
                clips,
                looping: true,
                token,
            },
        );
    }

    /// Starts recording an answered call when its queue's policy says so.
    pub(super) fn maybe_record(&mut self, now: Instant, id: CallNumber) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.media.is_none() {
            return;
        }
        let policy = self
            .index
            .queue(&self.config, &call.queue)
            .map_or(crate::config::RecordPolicy::None, |q| q.record);
        let record = match policy {
            crate::config::RecordPolicy::None => false,
            crate::config::RecordPolicy::All => true,
            // Uniform over 0..100: a byte modulo 100 would favour 0..=55 and record
            // 25 % of calls ~29 % of the time.
            crate::config::RecordPolicy::Percent(p) => self.ids.below(100) < u64::from(p),
        };
        if !record {
            return;
        }
        let path = self.recording_path(now, id, "call");
        if let Some(call) = self.calls.get_mut(&id) {
            call.recording = Some(path.clone());
        }
        self.media.record(id, path);
    }

    /// `<recordings_dir>/<YYYY-MM-DD>/<kind>-<cdr id>.wav`, the date in UTC.
    fn recording_path(&self, now: Instant, id: CallNumber, kind: &str) -> std::path::PathBuf {
        let date = self.wall(now).date();
        self.config
            .media
            .recordings_dir
            .join(date.to_string())
            .join(format!("{kind}-{}.wav", self.clock.record_id(id)))
    }

    /// The recording of `call` could not be written: the call goes on, the CDR says so.
    pub fn recording_failed(&mut self, id: CallNumber, error: &str) {
        tracing::warn!(call = id, error, "recording failed");
        self.metrics.recording_errors.inc();
        if let Some(call) = self.calls.get_mut(&id) {
            call.recording_failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Switch;
    use media::{Leg, MediaCommand, MediaEvent};
    use sip::Peer;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use transport::{Inbound, Payload};

    /// Queue `support` answers on queueing, plays music and announces every 30 s; agent 1001
    /// is logged in but not ready, so a call waits.
    const CONFIG: &str = r#"
[sip]
listen_udp = ["127.0.0.1:5060"]
[media]
rtp_port_min = 40000
rtp_port_max = 40099
[[trunk]]
name = "t"
allow = ["127.0.0.0/8"]
[[number]]
did = "101"
queue = "support"
[[queue]]
name = "support"
skills = { support = 1 }
answer = "on-queue"
announce_every_s = 30
[[agent]]
id = "1001"
name = "A"
password = "secret1001"
skills = { support = 5 }
"#;

    fn switch(now: Instant) -> Switch {
        switch_with(
            now,
            CONFIG,
            Arc::new(crate::emergency::EmergencyBoard::default()),
        )
    }

    fn switch_with(
        now: Instant,
        text: &str,
        emergency: Arc<crate::emergency::EmergencyBoard>,
    ) -> Switch {
        let config = Arc::new(crate::config::load_str("t.toml", text).expect("valid test config"));
        let switch = super::super::testing::switch(now, config, emergency);
        switch
            .acd
            .login(now, &acd::AgentId::from("1001"), false)
            .expect("agent logs in");
        switch
    }

    fn invite(now: Instant) -> Inbound {
        invite_to(now, "101")
    }

    fn invite_to(now: Instant, did: &str) -> Inbound {
        let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";
        let text = format!(
            "INVITE sip:{did}@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKwait;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:{did}@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=a\r\n\
Call-ID: wait-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        Inbound {
            source: Peer::udp("127.0.0.1:5999".parse().expect("addr")),
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
            received: now,
        }
    }

    /// The Play commands queued for the session, as (clips, looping, token).
    fn plays(switch: &mut Switch) -> Vec<(usize, bool, u64)> {
        detailed_plays(switch)
            .into_iter()
            .map(|(clips, looping, token)| (clips.len(), looping, token))
            .collect()
    }

    /// The Play commands queued for the session, with each clip's length in samples.
    fn detailed_plays(switch: &mut Switch) -> Vec<(Vec<usize>, bool, u64)> {
        std::iter::from_fn(|| switch.poll_media())
            .filter_map(|op| match op {
                super::super::media_plane::MediaOp::Command {
                    command:
                        MediaCommand::Play {
                            leg: Leg::Trunk,
                            clips,
                            looping,
                            token,
                        },
                    ..
                } => Some((
                    clips.iter().map(|c| c.samples().len()).collect(),
                    looping,
                    token,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_waiting_caller_hears_position_then_music_then_the_periodic_announcement() {
        let now = Instant::now();
        let mut switch = switch(now);
        switch.handle_inbound(now, invite(now));
        let answered = std::iter::from_fn(|| switch.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .find(|m| m.starts_with("SIP/2.0 200"));
        assert!(
            answered.is_some_and(|m| m.contains("m=audio 4000")),
            "answered with Switchboard's own port"
        );
        // On entry: "please hold" + "your position is" + "1" + "estimated wait" + digits +
        // "minutes", once.
        let entry = plays(&mut switch);
        let [(clips, false, token)] = entry.as_slice() else {
            panic!("one entry announcement expected: {entry:?}");
        };
        assert!(*clips >= 6, "please-hold, position and wait: {clips} clips");
        let finished = |token: u64| MediaEvent::PlaybackFinished {
            leg: Leg::Trunk,
            token,
        };
        switch.handle_media_event(now + Duration::from_secs(5), 1, finished(*token));
        let music = plays(&mut switch);
        assert!(
            matches!(music.as_slice(), [(1, true, _)]),
            "then music on hold loops: {music:?}"
        );

        let due = switch
            .poll_timeout()
            .expect("the announcement timer is set");
        assert!(due <= now + Duration::from_secs(30));
        switch.handle_timeout(now + Duration::from_secs(30));
        let announcement = plays(&mut switch);
        let [(clips, false, token)] = announcement.as_slice() else {
            panic!("one announcement expected: {announcement:?}");
        };
        // "your position is" + "1" + "estimated wait" + digits + "minutes".
        assert!(*clips >= 5, "position and wait are read out: {clips} clips");
        switch.handle_media_event(now + Duration::from_secs(33), 1, finished(*token));
        let again = plays(&mut switch);
        assert!(
            matches!(again.as_slice(), [(1, true, _)]),
            "music resumes: {again:?}"
        );
    }

    #[test]
    fn an_emergency_announcement_switched_on_for_the_number_is_played_first() {
        let ivr = format!(
            "{CONFIG}\n[[number]]\ndid = \"300\"\nivr = \"main\"\n[[ivr]]\nname = \"main\"\n\
             greeting = [\"welcome\"]\n[[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\n\
             keys = {{ \"1\" = \"queue:support\" }}\n"
        );
        let now = Instant::now();
        let board = Arc::new(crate::emergency::EmergencyBoard::default());
        let mut switch = switch_with(now, &ivr, board.clone());
        switch.handle_inbound(now, invite_to(now, "300"));
        let normal = detailed_plays(&mut switch);
        board.set("300", "emergency");
        let mut switch = switch_with(now, &ivr, board);
        switch.handle_inbound(now, invite_to(now, "300"));
        let with_emergency = detailed_plays(&mut switch);
        let library = crate::prompt_library::PromptLibrary::load(None, &[]).expect("built in");
        let length = |name: &str| library.get("en", name).expect("built in").samples().len();
        assert_eq!(
            normal,
            vec![(vec![length("welcome")], false, normal[0].2)],
            "without an emergency the greeting plays first"
        );
        assert_eq!(
            with_emergency.first().map(|p| p.0.clone()),
            Some(vec![length("emergency")]),
            "the emergency prompt plays first, on its own"
        );
    }
}
