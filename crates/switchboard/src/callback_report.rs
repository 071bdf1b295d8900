//! The "Callbacks" section of `switchboard report`: per queue, how many waiting callers asked
//! to be called back, and how their callbacks ended (connected, not reached after every
//! attempt, cancelled), with the attempts made. Read from whole call records; campaign
//! attempts (also callback records) are not callers' callbacks and are left out.

use std::collections::BTreeMap;
use std::io::Write;

use cdr::{CallRecord, CallbackOutcome, Disposition};

/// One queue's callbacks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueueCallbacks {
    /// Callers who pressed the callback key.
    pub requested: u64,
    pub connected: u64,
    pub not_reached: u64,
    pub cancelled: u64,
    /// Attempts to reach customers, over every finished callback.
    pub attempts: u64,
}

/// Counts `call` into `by_queue` when it is a callback request or a finished callback.
pub fn count(call: &CallRecord, by_queue: &mut BTreeMap<String, QueueCallbacks>) {
    let queue = call.queue.clone().unwrap_or_default();
    if call.disposition == Disposition::CallbackRequested {
        by_queue.entry(queue).or_default().requested += 1;
        return;
    }
    let Some(callback) = call.callback.as_ref().filter(|c| c.campaign.is_none()) else {
        return;
    };
    let entry = by_queue.entry(callback.queue.clone()).or_default();
    entry.attempts += callback.attempts.len() as u64;
    match callback.outcome {
        CallbackOutcome::Connected => entry.connected += 1,
        CallbackOutcome::NotReached => entry.not_reached += 1,
        CallbackOutcome::Cancelled => entry.cancelled += 1,
    }
}

/// Writes the section; nothing when no caller asked for a callback.
pub fn write(
    by_queue: &BTreeMap<String, QueueCallbacks>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if by_queue.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nCallbacks")?;
    let width = by_queue
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("QUEUE".len());
    writeln!(
        out,
        "{:<width$}  REQUESTED  CONNECTED  NOT-REACHED  CANCELLED  ATTEMPTS",
        "QUEUE"
    )?;
    for (queue, c) in by_queue {
        writeln!(
            out,
            "{queue:<width$}  {:>9}  {:>9}  {:>11}  {:>9}  {:>8}",
            c.requested, c.connected, c.not_reached, c.cancelled, c.attempts
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdr::{Callback, CallbackAttempt, CallbackResult};

    fn record(disposition: Disposition) -> CallRecord {
        let json = serde_json::json!({
            "type": "call", "id": "c", "trunk_call_id": "t", "arrived": "2026-03-10T09:00:00Z",
            "ended": "2026-03-10T09:01:00Z", "caller": "2000", "did": "100", "queue": "support",
            "wait_s": 0.0, "ring_s": 0.0, "talk_s": 0.0, "hold_s": 0.0, "wrap_up_s": 0.0,
            "disposition": disposition, "hangup_side": "system", "priority": 0,
        });
        match serde_json::from_value(json) {
            Ok(cdr::Record::Call(call)) => call,
            other => panic!("not a call record: {other:?}"),
        }
    }

    fn callback(outcome: CallbackOutcome, attempts: usize, campaign: Option<&str>) -> CallRecord {
        let mut call = record(Disposition::Answered);
        let attempt = CallbackAttempt {
            at: call.arrived,
            agent: "1001".into(),
            trunk: None,
            result: CallbackResult::Busy,
            sip_cause: Some(486),
        };
        call.callback = Some(Callback {
            number: "2000".into(),
            queue: "support".into(),
            requested_by: "sb-1-1".into(),
            requested: call.arrived,
            attempts: vec![attempt; attempts],
            outcome,
            campaign: campaign.map(str::to_owned),
        });
        call
    }

    #[test]
    fn requests_and_outcomes_are_counted_per_queue_without_campaign_attempts() {
        let mut by_queue = BTreeMap::new();
        count(&record(Disposition::CallbackRequested), &mut by_queue);
        count(&record(Disposition::CallbackRequested), &mut by_queue);
        count(&record(Disposition::Answered), &mut by_queue);
        count(
            &callback(CallbackOutcome::Connected, 2, None),
            &mut by_queue,
        );
        count(
            &callback(CallbackOutcome::NotReached, 3, None),
            &mut by_queue,
        );
        count(
            &callback(CallbackOutcome::Connected, 1, Some("spring")),
            &mut by_queue,
        );
        let support = &by_queue["support"];
        assert_eq!(support.requested, 2);
        assert_eq!(support.connected, 1);
        assert_eq!(support.not_reached, 1);
        assert_eq!(support.cancelled, 0);
        assert_eq!(support.attempts, 5);
        let mut text = Vec::new();
        write(&by_queue, &mut text).expect("written");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(text.contains("Callbacks"), "{text}");
        assert!(
            text.contains("support          2          1            1          0         5"),
            "{text}"
        );
        let mut empty = Vec::new();
        write(&BTreeMap::new(), &mut empty).expect("written");
        assert!(empty.is_empty());
    }
}
