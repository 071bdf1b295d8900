//! The shipped Kamailio front (deploy/kamailio, only addresses and ports changed) in front of
//! one Switchboard node, with an agent phone and a trunk on the node's own address (other
//! ports): defect 9 of issue 10, where the front took anything from the node's address for
//! the node, because it matched nodes by address only.

use std::time::Duration;

use sip_tests::agent_phone::AgentPhone;
use sip_tests::dialog::invite;
use sip_tests::kamailio::{FrontPlan, KamailioFront};
use sip_tests::ports::free_port;
use sip_tests::rtp::pcmu_offer;
use sip_tests::uac::RequestSpec;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);
/// The domain phones register for, with the front as their outbound proxy: the shipped
/// config's own alias, so the front knows it as itself.
const DOMAIN: &str = "sip.example.com";

/// A node, the front before it, and the trunk's port (bound later by the test).
fn node_and_front() -> HarnessResult<(Switchboard, KamailioFront, u16)> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let trunk_port = free_port()?;
    let front = KamailioFront::start(
        &switchboard.dir().join("kamailio"),
        &FrontPlan {
            node: switchboard.sip_addr(),
            trunk: ([127, 0, 0, 1], trunk_port).into(),
            dids: &["100"],
            agents: &["1001", "1002"],
        },
        WAIT,
    )?;
    Ok((switchboard, front, trunk_port))
}

#[test]
fn a_phone_on_the_nodes_address_registers_through_the_front() -> HarnessResult<()> {
    let (switchboard, front, _) = node_and_front()?;
    // The phone sends from 127.0.0.1 like the node, from another port.
    let phone = AgentPhone::register_through(&switchboard, "1001", front.addr(), DOMAIN);
    let phone = match phone {
        Ok(phone) => phone,
        Err(e) => panic!(
            "registration through the front failed: {e}\n--- kamailio ---\n{}",
            front.log()
        ),
    };
    drop(phone);
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    Ok(())
}

#[test]
fn a_trunk_call_through_the_front_rings_the_phone_registered_through_it() -> HarnessResult<()> {
    let (switchboard, front, trunk_port) = node_and_front()?;
    let phone = match AgentPhone::register_through(&switchboard, "1001", front.addr(), DOMAIN) {
        Ok(phone) => phone,
        Err(e) => panic!(
            "registration through the front failed: {e}\n--- kamailio ---\n{}",
            front.log()
        ),
    };
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let trunk = UdpPeer::bind(trunk_port, front.addr())?;
    let answered = std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let mut spec = RequestSpec::new("INVITE", &format!("sip:100@{}", front.addr()), "2000");
            spec.body = pcmu_offer(40_000, false);
            let (answer, dialog) = invite(&trunk, &spec, "", WAIT)?;
            let mut dialog = dialog.ok_or_else(|| {
                HarnessError::Unexpected(format!(
                    "trunk call not answered:\n{}",
                    answer.final_response.to_text()
                ))
            })?;
            dialog.send(&trunk, "BYE", &[], "", WAIT)
        });
        let invite = phone.next_request("INVITE", WAIT)?;
        assert!(
            invite
                .header("Via")
                .is_some_and(|via| via.contains("127.0.0.20")),
            "the node's INVITE comes through the front:\n{}",
            invite.to_text()
        );
        let rtp_port = free_port()?;
        let call = phone.answer(invite, &pcmu_offer(rtp_port, false), WAIT)?;
        // The trunk hangs up at once; the BYE reaches the phone through the front too.
        let bye = phone.next_request("BYE", WAIT)?;
        phone.reply(&bye, 200, "OK", &[], "")?;
        let hung_up = handle.join().expect("the trunk thread does not panic")?;
        HarnessResult::Ok((call, hung_up))
    });
    let (_call, bye) = answered?;
    assert_eq!(
        bye.final_response.status(),
        Some(200),
        "the trunk's BYE is answered"
    );
    Ok(())
}
