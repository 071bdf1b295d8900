//! Switchboard's media plane: SDP offer/answer and anchoring, the RTP/RTCP relay with
//! latching, statistics and media timeout, the port pool, G.711, DTMF (RFC 4733, SIP INFO,
//! in-band), the prompt/music-on-hold player, the call recorder and the default prompts.
//!
//! Everything except [`session`] (the per-call tokio task), [`media_workers`] (the threads
//! sessions run on), [`bound_sockets`] and the recorder's writer threads
//! is sans-IO: time is a parameter and nothing touches a socket, so call control and tests
//! drive it directly.

pub mod anchor;
pub mod audio_clip;
pub mod bound_sockets;
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod inband_dtmf;
pub mod latch;
pub mod media_timeout;
pub mod media_workers;
pub mod mixer;
pub mod player;
pub mod port_pool;
pub mod prompts;
pub mod recorder;
pub mod relay_core;
pub mod routing;
pub mod rtp_stats;
pub mod sdes;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod webrtc_leg;

pub use anchor::{
    anchor_answer, anchor_offer, anchor_parsed_answer, anchor_parsed_offer, MediaError, MediaPlan,
};
pub use audio_clip::{AudioClip, ClipError};
pub use bound_sockets::{BoundSocketCounters, BoundSockets, PortHold, SocketHome};
pub use codec::Codec;
pub use dtmf::DtmfDigit;
pub use media_timeout::{Leg, MAX_EXTRA_LEGS};
pub use media_workers::{worker_count, worker_of, MediaWorkers};
pub use mixer::{Mixer, MixerFull, PartyId};
pub use player::Player;
pub use port_pool::{PortPair, PortPool, PortPoolError};
pub use recorder::{RecorderError, RecorderMetrics, RecorderPool, Recording, RecordingOutcome};
pub use relay_core::{Disposition, LegConfig, LegReport, RelayCore, RelayEvent};
pub use routing::Routing;
pub use sdes::{CryptoAttribute, CryptoError, MasterKey, SrtpSuite};
pub use session::{
    DtmfSource, MediaCommand, MediaEvent, MediaSession, SessionConfig, SessionId, SessionReport,
    StopReason,
};
pub use srtp::{SrtpError, SrtpLeg, SrtpPolicy};
pub use webrtc_leg::{
    DtlsIdentity, WebRtcAudio, WebRtcCounters, WebRtcError, WebRtcEvent, WebRtcLeg,
};
