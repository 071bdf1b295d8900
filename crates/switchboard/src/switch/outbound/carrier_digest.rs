//! A carrier's digest challenge (401/407) to an INVITE Switchboard sent through a trunk:
//! the INVITE again, with a new branch and CSeq and the trunk's `username`/`password`
//! answering the challenge. Shared by agents' calls out, callbacks and campaign attempts;
//! each answers a challenge once per carrier leg (a second one means the credentials are
//! refused, and the carrier's status stands).

use super::super::Switch;
use sip::headers::{cseq_of, header_value};
use sip::message::push_header;
use sip::rsip::headers::UntypedHeader;
use sip::rsip::{self, Header, Request, Response};
use sip::Peer;

impl Switch {
    /// `invite` (sent to `peer` through `trunk` and challenged by `response`) with the
    /// trunk's answer to the challenge; `None` when the trunk has no credentials or the
    /// challenge cannot be answered.
    pub(in crate::switch) fn answer_trunk_challenge(
        &self,
        trunk: &str,
        invite: &Request,
        peer: Peer,
        response: &Response,
    ) -> Option<Request> {
        let (username, password) = self
            .config
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .and_then(|t| t.gateway.as_ref())
            .and_then(|g| g.credentials.clone())?;
        let proxy = response.status_code.code() == 407;
        let (challenge_name, answer_name) = if proxy {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let challenge = header_value(&response.headers, challenge_name)?;
        let uri = invite.uri.to_string();
        let answer = match sip::digest::respond(
            challenge,
            "INVITE",
            &uri,
            &username,
            &password,
            &self.ids.tag(),
            1,
        ) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::info!(%trunk, %error, "carrier challenge cannot be answered");
                return None;
            }
        };
        let mut invite = invite.clone();
        let cseq = cseq_of(&invite.headers).map_or(1, |(n, _)| n) + 1;
        let via = self.via(peer);
        invite.headers.retain(|h| {
            !matches!(h, Header::Via(_) | Header::CSeq(_))
                && !sip::headers::name_and_value(h)
                    .0
                    .eq_ignore_ascii_case(answer_name)
        });
        invite
            .headers
            .push(Header::Via(rsip::headers::Via::new(via)));
        invite
            .headers
            .push(Header::CSeq(rsip::headers::CSeq::new(format!(
                "{cseq} INVITE"
            ))));
        push_header(&mut invite.headers, answer_name, answer);
        tracing::info!(%trunk, proxy, "answering the carrier's digest challenge");
        Some(invite)
    }
}
