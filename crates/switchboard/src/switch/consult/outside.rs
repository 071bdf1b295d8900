//! Consulting an outside number (`{"to": "+4930…"}`): the number must be on the consulting
//! agent's allow-list (`outbound`) and taken by a `[[route]]`, as for the agent's own calls
//! out; the consult leg then goes to the gateway of the route's first trunk with the number as
//! the route sends it (strip/prepend) and the route's caller id. A pure function of the
//! configuration, so every refusal is unit-tested here.

use super::ConsultRefusal;
use crate::config::Config;
use crate::switch::outbound::{gateway_peer, route};
use sip::Peer;

/// Where a consult to an outside number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideNumber {
    /// The number as the agent gave it (the CDR's `party`, the transfer's `to`).
    pub dialled: String,
    /// The number the carrier is sent (the route's strip and prepend applied).
    pub sent: String,
    /// The gateway of the route's first trunk.
    pub gateway: Peer,
    /// The calling number the carrier sees: the route's caller id, else the agent's SIP user.
    pub caller_id: String,
}

/// Resolves `number` for a consult by `from_agent`: 404 when no route (or no route's trunk
/// with a gateway) takes it — to Switchboard it is then no number at all, like an unknown
/// agent id — and 403 when a route takes it but the agent may not dial it.
pub fn resolve(
    config: &Config,
    from_agent: &str,
    number: &str,
) -> Result<OutsideNumber, ConsultRefusal> {
    let route = route::find(&config.routes, number)
        .ok_or_else(|| ConsultRefusal::NoRoute(number.to_owned()))?;
    let agent = config.agents.iter().find(|a| a.id == from_agent);
    let allow_list = agent.map(|a| a.outbound.as_slice()).unwrap_or_default();
    if !route::allowed(allow_list, number) {
        return Err(ConsultRefusal::NotAllowed(number.to_owned()));
    }
    // Only the route's first trunk is tried: a consult that fails is simply retried by the
    // agent, unlike a customer's call out.
    let gateway = route
        .trunks
        .first()
        .and_then(|name| config.trunks.iter().find(|t| &t.name == name))
        .and_then(|trunk| trunk.gateway.as_ref())
        .ok_or_else(|| ConsultRefusal::NoRoute(number.to_owned()))?;
    let caller_id = route
        .caller_id
        .clone()
        .or_else(|| agent.map(|a| a.sip_user.clone()))
        .unwrap_or_else(|| from_agent.to_owned());
    Ok(OutsideNumber {
        dialled: number.to_owned(),
        sent: route::normalise(route, number),
        gateway: gateway_peer(gateway.address, gateway.transport),
        caller_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:5070\"\n\
            [[route]]\nprefix = \"+49\"\ntrunks = [\"carrier\"]\nstrip = 1\nprepend = \"00\"\n\
            caller_id = \"+4930123\"\n\
            [[route]]\nprefix = \"+33\"\ntrunks = [\"carrier\"]\n\
            [[agent]]\nid = \"1001\"\nname = \"Alice\"\npassword = \"s\"\n\
            outbound = [\"+49*\", \"+44*\"]\n\
            [[agent]]\nid = \"1002\"\nname = \"Bob\"\npassword = \"s\"\n";
        crate::config::load_str("t.toml", text).expect("valid config")
    }

    #[test]
    fn an_allowed_routed_number_goes_to_the_first_trunk_as_the_route_sends_it() {
        let outside = resolve(&config(), "1001", "+4930555").expect("routed");
        assert_eq!(outside.sent, "004930555");
        assert_eq!(outside.dialled, "+4930555");
        assert_eq!(
            outside.gateway,
            Peer::udp("127.0.0.1:5070".parse().expect("addr"))
        );
        assert_eq!(outside.caller_id, "+4930123");
    }

    #[test]
    fn a_number_without_route_is_unknown_and_one_off_the_allow_list_forbidden() {
        assert_eq!(
            resolve(&config(), "1002", "+4930555"),
            Err(ConsultRefusal::NotAllowed("+4930555".into())),
            "1002 may not dial out at all"
        );
        assert_eq!(
            resolve(&config(), "1001", "+33155"),
            Err(ConsultRefusal::NotAllowed("+33155".into())),
            "routed, but not on 1001's list"
        );
        assert_eq!(
            resolve(&config(), "1001", "+44207"),
            Err(ConsultRefusal::NoRoute("+44207".into())),
            "allowed, but no route takes +44"
        );
        assert_eq!(
            resolve(&config(), "1002", "9999"),
            Err(ConsultRefusal::NoRoute("9999".into())),
            "no route: unknown before any allow-list"
        );
    }
}
