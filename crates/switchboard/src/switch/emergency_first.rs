//! Emergency announcements on numbers that send calls straight to a queue.
//!
//! An IVR plays a number's emergency announcement before its greeting (see `ivr::session`).
//! A number without an IVR gets the same promise: while an announcement is switched on for
//! it, every new call is answered on arrival (200, anchored media, as `answer = "on-queue"`
//! does), hears the announcement to its end, and only then joins the queue, with music on
//! hold while it waits (the call decides that when the announcement ends,
//! `call/self_service.rs`). Callers who hang up during the announcement never reach the ACD.

use super::call::CallNumber;
use super::caller_media::CallerAudio;
use super::Switch;

impl Switch {
    /// Whether calls to `did` are answered on arrival because an announcement is on for it.
    pub(super) fn emergency_answers(&self, did: &str) -> bool {
        self.emergency.get(did).is_some()
    }

    /// Starts the number's emergency announcement for a call bound for its queue. `false`
    /// when none is switched on (or the prompt cannot be found): the caller queues at once.
    pub(super) fn play_emergency_before_queue(&mut self, id: CallNumber) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let Some(prompt) = self.emergency.get(&call.did) else {
            return false;
        };
        let Some(clip) = self.prompts.get(&call.prompt_language(), &prompt) else {
            tracing::warn!(call = id, %prompt, "emergency prompt not found: queueing the caller");
            return false;
        };
        let token = self.next_play_token();
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::Emergency(token);
        }
        tracing::info!(call = id, %prompt, "emergency announcement before the queue");
        self.play_to_caller(id, vec![clip], false, token);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use media::{Leg, MediaCommand, MediaEvent};
    use sip::Peer;
    use transport::{Inbound, Payload};

    use super::super::media_plane::MediaOp;
    use super::super::Switch;

    /// DID 101 goes straight to queue `support`, which keeps callers ringing (on-agent).
    const CONFIG: &str = r#"
[sip]
listen_udp = ["127.0.0.1:5060"]
[media]
rtp_port_min = 40100
rtp_port_max = 40199
[[trunk]]
name = "t"
allow = ["127.0.0.0/8"]
[[number]]
did = "101"
queue = "support"
[[queue]]
name = "support"
skills = { support = 1 }
announce_every_s = 0
[[agent]]
id = "1001"
name = "A"
password = "secret1001"
skills = { support = 5 }
"#;

    fn switch(now: Instant, emergency: Option<&str>) -> Switch {
        let board = Arc::new(crate::emergency::EmergencyBoard::default());
        if let Some(prompt) = emergency {
            board.set("101", prompt);
        }
        let config = Arc::new(crate::config::load_str("t.toml", CONFIG).expect("valid config"));
        let switch = super::super::testing::switch(now, config, board);
        // Logged in but not ready: the queue has an agent, nobody takes the call yet.
        switch
            .acd
            .login(now, &acd::AgentId::from("1001"), false)
            .expect("agent logs in");
        switch
    }

    fn invite(now: Instant) -> Inbound {
        let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";
        let text = format!(
            "INVITE sip:101@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKemerg;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:101@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=a\r\n\
Call-ID: emerg-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
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

    /// Status lines of the responses sent to the trunk.
    fn statuses(switch: &mut Switch) -> Vec<String> {
        std::iter::from_fn(|| switch.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .filter_map(|m| m.lines().next().map(str::to_owned))
            .filter(|line| line.starts_with("SIP/2.0"))
            .collect()
    }

    /// Play commands to the caller, as (clip lengths in samples, looping, token).
    fn plays(switch: &mut Switch) -> Vec<(Vec<usize>, bool, u64)> {
        std::iter::from_fn(|| switch.poll_media())
            .filter_map(|op| match op {
                MediaOp::Command {
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

    fn length(name: &str) -> usize {
        let library = crate::prompt_library::PromptLibrary::load(None, &[]).expect("built in");
        library.get("en", name).expect("built in").samples().len()
    }

    #[test]
    fn without_an_announcement_an_on_agent_number_rings_and_plays_nothing() {
        let now = Instant::now();
        let mut switch = switch(now, None);
        switch.handle_inbound(now, invite(now));
        let sent = statuses(&mut switch);
        assert!(
            sent.iter().any(|s| s.starts_with("SIP/2.0 180")),
            "{sent:?}"
        );
        assert!(
            !sent.iter().any(|s| s.starts_with("SIP/2.0 200")),
            "{sent:?}"
        );
        assert_eq!(plays(&mut switch), Vec::new());
    }

    #[test]
    fn with_an_announcement_the_call_is_answered_hears_it_then_queues_with_music() {
        let now = Instant::now();
        let mut switch = switch(now, Some("emergency"));
        switch.handle_inbound(now, invite(now));
        let sent = statuses(&mut switch);
        assert!(
            sent.iter().any(|s| s.starts_with("SIP/2.0 200")),
            "answered on arrival: {sent:?}"
        );
        let first = plays(&mut switch);
        let [(clips, false, token)] = first.as_slice() else {
            panic!("the announcement alone, once: {first:?}");
        };
        assert_eq!(clips, &vec![length("emergency")]);
        assert!(
            switch.acd.call(acd::CallId(1)).is_none(),
            "not queued before the announcement ends"
        );
        switch.handle_media_event(
            now + Duration::from_secs(8),
            1,
            MediaEvent::PlaybackFinished {
                leg: Leg::Trunk,
                token: *token,
            },
        );
        assert!(
            switch.acd.position(acd::CallId(1)).is_some(),
            "waiting in the queue once it has played"
        );
        let music = plays(&mut switch);
        assert_eq!(
            music,
            vec![(vec![length("moh")], true, music.first().map_or(0, |p| p.2))],
            "then music on hold"
        );
    }
}
