//! Switchboard's media plane: SDP offer/answer and anchoring, the RTP/RTCP relay with
//! latching, statistics and media timeout, the port pool, G.711, DTMF (RFC 4733, SIP INFO,
//! in-band), the prompt/music-on-hold player, the call recorder and the default prompts.
//!
//! Everything except [`relay`] and the recorder's writer thread is sans-IO: time is a
//! parameter and nothing touches a socket, so call control and tests drive it directly.

pub mod anchor;
pub mod audio_clip;
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod inband_dtmf;
pub mod latch;
pub mod media_timeout;
pub mod player;
pub mod port_pool;
pub mod prompts;
pub mod recorder;
pub mod relay;
pub mod relay_core;
pub mod rtp_stats;
pub mod sdp;

pub use anchor::{anchor_answer, anchor_offer, MediaError, MediaPlan};
pub use audio_clip::{AudioClip, ClipError};
pub use codec::Codec;
pub use media_timeout::Leg;
pub use player::Player;
pub use port_pool::{PortPair, PortPool, PortPoolError};
pub use recorder::{Recorder, RecorderMetrics, RecordingOutcome};
pub use relay::{RelayConfig, RelayHandle, RelayReport, StopReason};
pub use relay_core::{LegConfig, RelayCore, RelayEvent};
