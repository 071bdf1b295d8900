//! The campaigns section of a report: per campaign, the attempts its CDRs record over the range
//! (each attempt on a contact writes one call record whose `callback.campaign` names the
//! campaign) by result, and, from whoever keeps the contact lists, how many contacts are
//! settled, still to call, or on the do-not-call list, and the agents' wrap-up dispositions.

use std::collections::BTreeMap;

use crate::model::{CallRecord, CallbackResult};

/// One campaign's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFigures {
    /// Customers dialled (every attempt the CDRs record).
    pub attempts: u64,
    /// Attempts the customer answered.
    pub answered: u64,
    /// Attempts nobody answered.
    pub no_answer: u64,
    /// Attempts that found the line busy.
    pub busy: u64,
    /// Attempts the carrier said the number does not exist.
    pub wrong_number: u64,
    /// Could not be placed (no route, every trunk failed, a number put on the do-not-call list
    /// after upload).
    pub failed: u64,
    /// The contact list as it stands now (`None`: not known to the report's reader).
    pub contacts: Option<CampaignContacts>,
}

/// Where a campaign's contacts stand now (not limited to the report's range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignContacts {
    /// Contacts on the list.
    pub total: u64,
    /// Answered, or not reached after every attempt.
    pub finished: u64,
    /// Still to be called (pending, waiting for an agent or a retry, being called).
    pub remaining: u64,
    /// On the do-not-call list: never dialled.
    pub do_not_call: u64,
    /// The agents' wrap-up dispositions of the answered contacts, by code.
    pub dispositions: BTreeMap<String, u64>,
}

impl CampaignContacts {
    /// `code=n;code=n`, for one CSV cell.
    pub fn dispositions_text(&self) -> String {
        self.dispositions
            .iter()
            .map(|(code, n)| format!("{code}={n}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// Adds `call`'s attempts to its campaign's figures (nothing when it is not a campaign's).
pub fn count_campaign_attempts(
    call: &CallRecord,
    by_campaign: &mut BTreeMap<String, CampaignFigures>,
) {
    let Some((callback, campaign)) = call
        .callback
        .as_ref()
        .and_then(|c| c.campaign.as_ref().map(|name| (c, name)))
    else {
        return;
    };
    let figures = by_campaign.entry(campaign.clone()).or_default();
    for attempt in &callback.attempts {
        figures.attempts += 1;
        match attempt.result {
            CallbackResult::Answered => figures.answered += 1,
            CallbackResult::NoAnswer => figures.no_answer += 1,
            CallbackResult::Busy => figures.busy += 1,
            CallbackResult::WrongNumber => figures.wrong_number += 1,
            CallbackResult::Failed => figures.failed += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Callback, CallbackAttempt, CallbackOutcome, Record};

    fn attempt_record(campaign: Option<&str>, results: &[CallbackResult]) -> CallRecord {
        let json = serde_json::json!({
            "type": "call", "id": "c", "trunk_call_id": "t", "arrived": "2026-03-10T09:00:00Z",
            "ended": "2026-03-10T09:01:00Z", "caller": "4000100", "did": "2001", "queue": "support",
            "wait_s": 0.0, "ring_s": 0.0, "talk_s": 0.0, "hold_s": 0.0, "wrap_up_s": 0.0,
            "disposition": "answered", "hangup_side": "system", "priority": -1,
        });
        let Ok(Record::Call(mut call)) = serde_json::from_value(json) else {
            panic!("not a call record");
        };
        call.callback = Some(Callback {
            number: "2001".into(),
            queue: "support".into(),
            requested_by: "campaign-1".into(),
            requested: call.arrived,
            attempts: results
                .iter()
                .map(|result| CallbackAttempt {
                    at: call.arrived,
                    agent: "1001".into(),
                    trunk: None,
                    result: *result,
                    sip_cause: None,
                })
                .collect(),
            outcome: CallbackOutcome::NotReached,
            campaign: campaign.map(str::to_owned),
        });
        call
    }

    #[test]
    fn attempts_are_counted_per_campaign_by_result_and_callers_callbacks_are_not() {
        let mut by_campaign = BTreeMap::new();
        for (campaign, results) in [
            (Some("spring"), vec![CallbackResult::Answered]),
            (Some("spring"), vec![CallbackResult::Busy]),
            (Some("spring"), vec![CallbackResult::NoAnswer]),
            (Some("spring"), vec![CallbackResult::WrongNumber]),
            (Some("autumn"), vec![CallbackResult::Failed]),
            // Handed back before the customer was dialled: no attempt.
            (Some("autumn"), vec![]),
            (None, vec![CallbackResult::Answered]),
        ] {
            count_campaign_attempts(&attempt_record(campaign, &results), &mut by_campaign);
        }
        assert_eq!(by_campaign.len(), 2, "{by_campaign:?}");
        let spring = &by_campaign["spring"];
        assert_eq!(
            (
                spring.attempts,
                spring.answered,
                spring.busy,
                spring.no_answer,
                spring.wrong_number,
                spring.failed
            ),
            (4, 1, 1, 1, 1, 0)
        );
        assert_eq!(by_campaign["autumn"].attempts, 1);
        assert_eq!(by_campaign["autumn"].failed, 1);
        let contacts = CampaignContacts {
            dispositions: [("follow-up".to_owned(), 2), ("resolved".to_owned(), 1)].into(),
            ..CampaignContacts::default()
        };
        assert_eq!(contacts.dispositions_text(), "follow-up=2;resolved=1");
    }
}
