use super::*;
use proptest::prelude::*;

const AOR: &str = "1001";

fn registrar() -> Registrar {
    Registrar::new(RegistrarConfig::default()).unwrap()
}

fn nat_peer() -> Peer {
    Peer::udp("203.0.113.7:40000".parse().unwrap())
}

/// A REGISTER with the given Call-ID, CSeq and extra header lines (`Contact: ...`, `Expires: ...`).
fn register_request(call_id: &str, cseq: u32, extra: &[&str]) -> rsip::Request {
    let mut text = format!(
        "REGISTER sip:switchboard.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-{cseq}\r\n\
         From: <sip:1001@switchboard.example>;tag=a1\r\n\
         To: <sip:1001@switchboard.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    rsip::Request::try_from(text.as_str()).expect("test REGISTER parses")
}

fn register(
    registrar: &mut Registrar,
    now: Instant,
    call_id: &str,
    cseq: u32,
    extra: &[&str],
) -> Result<RegisterOutcome, RegisterError> {
    registrar.register(
        now,
        AOR,
        &register_request(call_id, cseq, extra),
        nat_peer(),
    )
}

fn contacts(registrar: &Registrar, now: Instant) -> Vec<String> {
    registrar
        .bindings(now, AOR)
        .into_iter()
        .map(|binding| binding.contact)
        .collect()
}

#[test]
fn first_registration_adds_a_binding_with_the_source_peer() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@192.168.1.20:5060>"],
    )
    .unwrap();
    assert_eq!(outcome.transition, AorTransition::Registered);
    assert!(outcome.evicted.is_empty());
    assert_eq!(outcome.bindings.len(), 1);
    let current = &outcome.bindings[0];
    assert_eq!(current.expires_in, 3600, "default_expires applies");
    assert_eq!(current.binding.contact, "sip:1001@192.168.1.20:5060");
    assert_eq!(current.binding.source, nat_peer());
    assert_eq!(current.binding.call_id, "c1");
    assert_eq!(current.binding.cseq, 1);
    assert_eq!(
        outcome.contact_header_values(),
        ["<sip:1001@192.168.1.20:5060>;expires=3600"]
    );
    assert_eq!(registrar.len(), 1);
    assert_eq!(
        registrar.poll_timeout(),
        Some(t0 + Duration::from_secs(3600))
    );
}

#[test]
fn refresh_updates_the_same_binding() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let contact = "Contact: <sip:1001@192.168.1.20:5060>";
    register(&mut registrar, t0, "c1", 1, &[contact, "Expires: 120"]).unwrap();
    let t1 = t0 + Duration::from_secs(100);
    let outcome = register(&mut registrar, t1, "c1", 2, &[contact, "Expires: 600"]).unwrap();
    assert_eq!(outcome.transition, AorTransition::NoChange);
    assert_eq!(outcome.bindings.len(), 1);
    assert_eq!(outcome.bindings[0].expires_in, 600);
    assert_eq!(outcome.bindings[0].binding.registered_at, t1);
    assert_eq!(outcome.bindings[0].binding.cseq, 2);
    assert_eq!(registrar.len(), 1);
    assert_eq!(
        registrar.poll_timeout(),
        Some(t1 + Duration::from_secs(600))
    );
}

#[test]
fn several_contacts_per_aor_ordered_by_q_then_recency() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let outcome = register(
        &mut registrar,
        t0,
        "desk",
        1,
        &[
            "Contact: <sip:1001@10.0.0.1>;q=0.5, <sip:1001@10.0.0.2>;q=0.9",
            "Contact: <sip:1001@10.0.0.3>",
        ],
    )
    .unwrap();
    assert_eq!(outcome.bindings.len(), 3);
    let t1 = t0 + Duration::from_secs(5);
    register(
        &mut registrar,
        t1,
        "soft",
        1,
        &["Contact: <sip:1001@10.0.0.4>;q=0.5"],
    )
    .unwrap();
    assert_eq!(
        contacts(&registrar, t1),
        [
            "sip:1001@10.0.0.3", // no q counts as 1
            "sip:1001@10.0.0.2",
            "sip:1001@10.0.0.4", // same q as .1 but more recent
            "sip:1001@10.0.0.1",
        ]
    );
    assert_eq!(registrar.len(), 4);
}

#[test]
fn expires_zero_removes_one_binding_and_the_last_one_unregisters() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>, <sip:1001@10.0.0.2>"],
    )
    .unwrap();
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        2,
        &["Contact: <sip:1001@10.0.0.1>;expires=0"],
    )
    .unwrap();
    assert_eq!(outcome.transition, AorTransition::NoChange);
    assert_eq!(contacts(&registrar, t0), ["sip:1001@10.0.0.2"]);
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        3,
        &["Contact: <sip:1001@10.0.0.2>", "Expires: 0"],
    )
    .unwrap();
    assert_eq!(outcome.transition, AorTransition::Unregistered);
    assert!(outcome.bindings.is_empty());
    assert!(registrar.is_empty());
    assert_eq!(registrar.poll_timeout(), None);
}

#[test]
fn wildcard_with_expires_zero_removes_everything() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>, <sip:1001@10.0.0.2>"],
    )
    .unwrap();
    register(
        &mut registrar,
        t0,
        "c2",
        1,
        &["Contact: <sip:1001@10.0.0.3>"],
    )
    .unwrap();
    let outcome = register(&mut registrar, t0, "c3", 1, &["Contact: *", "Expires: 0"]).unwrap();
    assert_eq!(outcome.transition, AorTransition::Unregistered);
    assert!(registrar.bindings(t0, AOR).is_empty());
    assert_eq!(registrar.len(), 0);
    assert_eq!(registrar.poll_timeout(), None);
}

#[test]
fn wildcard_misuse_is_a_bad_request() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>"],
    )
    .unwrap();
    for extra in [
        &["Contact: *", "Expires: 3600"][..],
        &["Contact: *"][..],
        &["Contact: *, <sip:1001@10.0.0.2>", "Expires: 0"][..],
        &["Contact: *", "Contact: <sip:1001@10.0.0.2>", "Expires: 0"][..],
    ] {
        let error = register(&mut registrar, t0, "c9", 1, extra).unwrap_err();
        assert!(
            matches!(error, RegisterError::BadWildcard(_)),
            "{extra:?}: {error:?}"
        );
        assert_eq!(error.status_code(), 400);
    }
    assert_eq!(registrar.len(), 1, "refused requests change nothing");
}

#[test]
fn wildcard_obeys_cseq_ordering() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        5,
        &["Contact: <sip:1001@10.0.0.1>"],
    )
    .unwrap();
    let error = register(&mut registrar, t0, "c1", 5, &["Contact: *", "Expires: 0"]).unwrap_err();
    assert!(matches!(error, RegisterError::OutOfOrder { .. }));
    assert_eq!(registrar.len(), 1);
}

#[test]
fn too_brief_interval_is_423_and_changes_nothing() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let error = register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>, <sip:1001@10.0.0.2>;expires=30"],
    )
    .unwrap_err();
    assert_eq!(error, RegisterError::IntervalTooBrief { min_expires: 60 });
    assert_eq!(error.status_code(), 423);
    assert!(registrar.is_empty());
    let error = register(
        &mut registrar,
        t0,
        "c1",
        2,
        &["Contact: <sip:1001@10.0.0.1>", "Expires: 59"],
    )
    .unwrap_err();
    assert_eq!(error, RegisterError::IntervalTooBrief { min_expires: 60 });
}

#[test]
fn long_interval_is_clamped_to_max() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>;expires=86400"],
    )
    .unwrap();
    assert_eq!(outcome.bindings[0].expires_in, 3600);
    assert_eq!(
        outcome.bindings[0].binding.expires_at,
        t0 + Duration::from_secs(3600)
    );
}

#[test]
fn contact_expires_param_overrides_the_expires_header() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        1,
        &[
            "Contact: <sip:1001@10.0.0.1>;expires=300, <sip:1001@10.0.0.2>",
            "Expires: 900",
        ],
    )
    .unwrap();
    let mut seconds: Vec<(String, u32)> = outcome
        .bindings
        .iter()
        .map(|current| (current.binding.contact.clone(), current.expires_in))
        .collect();
    seconds.sort();
    assert_eq!(
        seconds,
        [
            ("sip:1001@10.0.0.1".to_owned(), 300),
            ("sip:1001@10.0.0.2".to_owned(), 900)
        ]
    );
}

#[test]
fn out_of_order_cseq_is_refused_but_a_new_call_id_is_not() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let contact = "Contact: <sip:1001@10.0.0.1>";
    register(&mut registrar, t0, "c1", 10, &[contact]).unwrap();
    for cseq in [10, 9] {
        let error = register(&mut registrar, t0, "c1", cseq, &[contact, "Expires: 0"]).unwrap_err();
        assert_eq!(
            error,
            RegisterError::OutOfOrder {
                call_id: "c1".into(),
                stored_cseq: 10,
                received_cseq: cseq,
            }
        );
        assert_eq!(error.status_code(), 400);
    }
    assert_eq!(registrar.len(), 1);
    // A rebooted phone starts a new Call-ID at a low CSeq: that is a legitimate update.
    let outcome = register(&mut registrar, t0, "reboot", 1, &[contact, "Expires: 120"]).unwrap();
    assert_eq!(outcome.bindings[0].binding.call_id, "reboot");
    assert_eq!(outcome.bindings[0].expires_in, 120);
}

#[test]
fn the_same_contact_twice_in_one_request_is_not_out_of_order() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let outcome = register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>;expires=100, <SIP:1001@10.0.0.1>;expires=200"],
    )
    .unwrap();
    assert_eq!(outcome.bindings.len(), 1);
    assert_eq!(outcome.bindings[0].expires_in, 200, "the later value wins");
}

#[test]
fn expiry_follows_the_fake_clock_and_poll_timeout() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>;expires=60, <sip:1001@10.0.0.2>;expires=120"],
    )
    .unwrap();
    registrar
        .register(
            t0,
            "1002",
            &register_request("c2", 1, &["Contact: <sip:1002@10.0.0.9>", "Expires: 90"]),
            nat_peer(),
        )
        .unwrap();
    assert_eq!(registrar.len(), 3);
    assert_eq!(registrar.poll_timeout(), Some(t0 + Duration::from_secs(60)));

    assert!(registrar.expire(t0 + Duration::from_secs(59)).is_empty());
    assert_eq!(registrar.len(), 3);

    assert!(
        registrar.expire(t0 + Duration::from_secs(60)).is_empty(),
        "1001 still has one"
    );
    assert_eq!(registrar.len(), 2);
    assert_eq!(
        contacts(&registrar, t0 + Duration::from_secs(60)),
        ["sip:1001@10.0.0.2"]
    );
    assert_eq!(registrar.poll_timeout(), Some(t0 + Duration::from_secs(90)));

    assert_eq!(
        registrar.expire(t0 + Duration::from_secs(200)),
        ["1002", "1001"]
    );
    assert!(registrar.is_empty());
    assert_eq!(registrar.poll_timeout(), None);
}

#[test]
fn lapsed_bindings_are_invisible_before_expire_runs() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>;expires=60"],
    )
    .unwrap();
    let later = t0 + Duration::from_secs(61);
    assert!(registrar.bindings(later, AOR).is_empty());
    assert_eq!(registrar.len(), 1, "still stored until expire()");
    // The TU was never told the agent left, so a re-registration is no transition for it.
    let outcome = register(
        &mut registrar,
        later,
        "c2",
        1,
        &["Contact: <sip:1001@10.0.0.2>"],
    )
    .unwrap();
    assert_eq!(outcome.transition, AorTransition::NoChange);
    assert_eq!(contacts(&registrar, later), ["sip:1001@10.0.0.2"]);
    assert_eq!(registrar.len(), 1, "the lapsed binding was purged");
    assert_eq!(
        registrar.poll_timeout(),
        Some(later + Duration::from_secs(3600))
    );
}

#[test]
fn a_query_lists_bindings_and_reports_lapse() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>;expires=60"],
    )
    .unwrap();
    let outcome = register(&mut registrar, t0 + Duration::from_secs(10), "q", 1, &[]).unwrap();
    assert_eq!(outcome.transition, AorTransition::NoChange);
    assert_eq!(outcome.bindings.len(), 1);
    assert_eq!(outcome.bindings[0].expires_in, 50);
    let outcome = register(&mut registrar, t0 + Duration::from_secs(60), "q", 2, &[]).unwrap();
    assert_eq!(outcome.transition, AorTransition::Unregistered);
    assert!(registrar.is_empty());
}

#[test]
fn malformed_contact_is_a_bad_contact_with_a_reason() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    for contact in [
        "Contact: <sip:1001@10.0.0.1",
        "Contact: <tel:+4930123>",
        "Contact: <sip:1001@10.0.0.1>;q=2",
        "Contact: <sip:1001@10.0.0.1>;expires=-5",
    ] {
        let error = register(&mut registrar, t0, "c1", 1, &[contact]).unwrap_err();
        match &error {
            RegisterError::BadContact { reason, .. } => assert!(!reason.is_empty()),
            other => panic!("{contact}: expected BadContact, got {other:?}"),
        }
        assert_eq!(error.status_code(), 400);
    }
    assert!(registrar.is_empty());
}

#[test]
fn instance_id_identifies_the_binding_across_nat_rebinding() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let instance = "+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1";
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &[&format!("Contact: <sip:1001@192.168.1.20:5060>;{instance}")],
    )
    .unwrap();
    let outcome = register(
        &mut registrar,
        t0,
        "c2",
        1,
        &[&format!("Contact: <sip:1001@192.168.1.20:5062>;{instance}")],
    )
    .unwrap();
    assert_eq!(outcome.bindings.len(), 1);
    let binding = &outcome.bindings[0].binding;
    assert_eq!(binding.contact, "sip:1001@192.168.1.20:5062");
    assert_eq!(
        binding.instance.as_deref(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    assert_eq!(binding.reg_id, Some(1));
    assert_eq!(
        outcome.contact_header_values(),
        [format!(
            "<sip:1001@192.168.1.20:5062>;expires=3600;{instance}"
        )]
    );
}

#[test]
fn the_oldest_unmentioned_binding_is_evicted_at_the_limit() {
    let config = RegistrarConfig {
        max_bindings_per_aor: 2,
        ..RegistrarConfig::default()
    };
    let mut registrar = Registrar::new(config).unwrap();
    let t0 = Instant::now();
    for (i, host) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].into_iter().enumerate() {
        let now = t0 + Duration::from_secs(i as u64);
        let contact = format!("Contact: <sip:1001@{host}>");
        let outcome = register(&mut registrar, now, &format!("c{i}"), 1, &[&contact]).unwrap();
        if i == 2 {
            assert_eq!(outcome.evicted.len(), 1);
            assert_eq!(outcome.evicted[0].contact, "sip:1001@10.0.0.1");
        }
    }
    assert_eq!(
        contacts(&registrar, t0 + Duration::from_secs(2)),
        ["sip:1001@10.0.0.3", "sip:1001@10.0.0.2"]
    );
    assert_eq!(registrar.len(), 2);
    let error = register(
        &mut registrar,
        t0,
        "many",
        1,
        &["Contact: <sip:1001@10.0.1.1>, <sip:1001@10.0.1.2>, <sip:1001@10.0.1.3>"],
    )
    .unwrap_err();
    assert_eq!(error, RegisterError::TooManyBindings { max: 2 });
    assert_eq!(error.status_code(), 403);
    assert_eq!(registrar.len(), 2);
}

#[test]
fn remove_aor_drops_its_bindings_and_index_entries() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "c1",
        1,
        &["Contact: <sip:1001@10.0.0.1>"],
    )
    .unwrap();
    let removed = registrar.remove_aor(AOR);
    assert_eq!(removed.len(), 1);
    assert!(registrar.is_empty());
    assert_eq!(registrar.poll_timeout(), None);
    assert!(registrar.remove_aor(AOR).is_empty());
}

#[test]
fn a_closed_flow_takes_its_bindings_and_only_those() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    let flow = Peer {
        transport: crate::Transport::Ws,
        addr: "127.0.0.1:41000".parse().unwrap(),
    };
    let other_flow = Peer {
        transport: crate::Transport::Ws,
        addr: "127.0.0.1:41001".parse().unwrap(),
    };
    let ws_register = |call_id: &str, contact: &str| {
        register_request(call_id, 1, &[&format!("Contact: <{contact}>")])
    };
    registrar
        .register(
            t0,
            AOR,
            &ws_register("a", "sip:x1@df7jal23ls0d.invalid;transport=ws"),
            flow,
        )
        .unwrap();
    registrar
        .register(
            t0,
            AOR,
            &ws_register("b", "sip:x2@df7jal23ls0e.invalid;transport=ws"),
            other_flow,
        )
        .unwrap();
    registrar
        .register(
            t0,
            "1002",
            &ws_register("c", "sip:x3@q.invalid;transport=ws"),
            flow,
        )
        .unwrap();
    // 1002 lived on the flow alone; 1001 keeps its binding on the other flow.
    assert_eq!(registrar.remove_flow(flow), vec!["1002".to_owned()]);
    assert_eq!(
        contacts(&registrar, t0),
        vec!["sip:x2@df7jal23ls0e.invalid;transport=ws"]
    );
    assert!(registrar.bindings(t0, "1002").is_empty());
    assert_eq!(
        registrar.len(),
        1,
        "the expiry index forgets the removed bindings"
    );
    assert!(
        registrar.remove_flow(flow).is_empty(),
        "closing twice changes nothing"
    );
}

#[test]
fn config_is_validated() {
    assert!(RegistrarConfig::default().validate().is_ok());
    let min_above_max = RegistrarConfig {
        min_expires: 4000,
        ..RegistrarConfig::default()
    };
    assert!(matches!(
        Registrar::new(min_above_max),
        Err(RegistrarConfigError::MinAboveMax { .. })
    ));
    let default_too_low = RegistrarConfig {
        default_expires: 30,
        ..RegistrarConfig::default()
    };
    assert!(matches!(
        default_too_low.validate(),
        Err(RegistrarConfigError::DefaultOutOfRange { .. })
    ));
    let no_bindings = RegistrarConfig {
        max_bindings_per_aor: 0,
        ..RegistrarConfig::default()
    };
    assert_eq!(
        no_bindings.validate(),
        Err(RegistrarConfigError::NoBindingsAllowed)
    );
}

proptest! {
    #[test]
    fn register_never_panics_on_arbitrary_contact_values(value in "[ -~]{0,120}") {
        let mut registrar = registrar();
        let request = register_request("c1", 1, &[]);
        let mut request = request;
        request.headers.push(rsip::Header::Contact(rsip::headers::Contact::from(value)));
        let before = registrar.len();
        if registrar.register(Instant::now(), AOR, &request, nat_peer()).is_err() {
            prop_assert_eq!(registrar.len(), before);
        }
    }
}

#[test]
fn a_binding_keeps_the_path_of_the_register_that_last_touched_it() {
    let mut registrar = registrar();
    let t0 = Instant::now();
    register(
        &mut registrar,
        t0,
        "path-1",
        1,
        &[
            "Contact: <sip:1001@192.168.1.20:5060>",
            "Path: <sip:edge.example:5060;lr>",
            "Path: <sip:outer.example;lr>",
        ],
    )
    .unwrap();
    let bindings = registrar.bindings(t0, AOR);
    assert_eq!(
        bindings[0].path,
        vec!["<sip:edge.example:5060;lr>", "<sip:outer.example;lr>"]
    );
    // A refresh that comes without a Path (the phone now reaches the registrar directly)
    // clears it.
    register(
        &mut registrar,
        t0,
        "path-1",
        2,
        &["Contact: <sip:1001@192.168.1.20:5060>"],
    )
    .unwrap();
    assert!(registrar.bindings(t0, AOR)[0].path.is_empty());
}
