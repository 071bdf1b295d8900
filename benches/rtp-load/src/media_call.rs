//! One established call as the media phase sees it: the generator's two RTP sockets (carrier
//! side and agent phone side) and the Switchboard address each of them sends to.

use std::net::{SocketAddr, UdpSocket};

use crate::probe_packet::Direction;

/// The media ends of one call.
#[derive(Debug)]
pub struct MediaCall {
    /// Call index, carried in every packet.
    pub index: u32,
    /// The carrier's RTP socket (its port is in the trunk INVITE's SDP).
    pub trunk_rtp: UdpSocket,
    /// The agent phone's RTP socket (its port is in the phone's 200 SDP).
    pub agent_rtp: UdpSocket,
    /// Switchboard's trunk-facing RTP address.
    pub switchboard_trunk: SocketAddr,
    /// Switchboard's agent-facing RTP address.
    pub switchboard_agent: SocketAddr,
}

impl MediaCall {
    /// The socket that sends in `direction` and where it sends to.
    pub fn sender(&self, direction: Direction) -> (&UdpSocket, SocketAddr) {
        match direction {
            Direction::TrunkToAgent => (&self.trunk_rtp, self.switchboard_trunk),
            Direction::AgentToTrunk => (&self.agent_rtp, self.switchboard_agent),
        }
    }

    /// The socket that receives packets sent in `direction`.
    pub fn receiver(&self, direction: Direction) -> &UdpSocket {
        match direction {
            Direction::TrunkToAgent => &self.agent_rtp,
            Direction::AgentToTrunk => &self.trunk_rtp,
        }
    }
}
