//! Return-visit campaigns: a contact list dialled through a queue's agents, agent first.
//!
//! Each attempt on a contact is a callback entry (see [`super::callback`]) that waits in the
//! campaign's queue (below the inbound callers: priority -1), so the ACD reserves a Ready
//! agent before anything is dialled and never gives one agent two contacts. Contacts are
//! handed to the ACD only as agents become free: when the campaign starts, when an agent
//! becomes Ready, when an attempt ends and when a retry falls due, at most as many waiting
//! as there are Ready agents in the queue. Nothing polls.
//!
//! Each attempt writes its own CDR (`callback.campaign` names the campaign); the contact's
//! result (answered, busy, no answer, failed, wrong number, do-not-call, and the disposition of
//! the agent's wrap-up of the answered call) is in `GET /api/campaigns/{id}`.

pub mod list;

use super::call::CallNumber;
use super::callback::book::{Booking, Callback, Stage};
use super::{Switch, SwitchTimer};
use list::{AfterAttempt, Contact, Dialler, Mode, Resume};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Campaign entries wait below inbound callers in a shared queue.
const CAMPAIGN_PRIORITY: i32 = -1;

/// At most one journal snapshot in this time: a list of many thousand contacts is costly to
/// copy, and a busy campaign changes many times a second. A crash loses at most this much
/// progress.
const JOURNAL_INTERVAL: Duration = Duration::from_secs(1);

/// What the API asks of the campaigns.
#[derive(Debug)]
pub enum CampaignCommand {
    Create(CampaignSpec),
    Start(u64),
    Pause(u64),
    Report(u64),
    /// Every campaign in short (id, name, queue, mode, running, finished, tally).
    List,
    /// The agent filed the wrap-up of call `call`: if it reached a campaign's contact, the
    /// disposition becomes that contact's result. The answer is null otherwise.
    WrappedUp {
        call: u64,
        disposition: String,
    },
}

/// A campaign as uploaded (the list already checked).
#[derive(Debug)]
pub struct CampaignSpec {
    pub name: String,
    pub queue: String,
    pub mode: Mode,
    pub max_attempts: u32,
    pub retry: Duration,
    pub caller_id: Option<String>,
    pub contacts: Vec<Contact>,
    pub dnc: HashSet<String>,
}

/// Why a campaign command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignError {
    UnknownQueue(String),
    UnknownCampaign(u64),
}

impl std::fmt::Display for CampaignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CampaignError::UnknownQueue(queue) => write!(f, "no queue named {queue:?}"),
            CampaignError::UnknownCampaign(id) => write!(f, "no campaign {id}"),
        }
    }
}

/// One campaign.
#[derive(Debug)]
pub struct Campaign {
    pub id: u64,
    pub name: String,
    pub queue: String,
    pub mode: Mode,
    pub caller_id: Option<String>,
    pub dialler: Dialler,
}

/// Every campaign, journalled next to the CDRs whenever one changes (`campaign_journal`).
#[derive(Debug, Default)]
pub struct Campaigns {
    by_id: BTreeMap<u64, Campaign>,
    next_id: u64,
    /// `[outbound] dnc_file`: never dialled by any callback or campaign.
    do_not_call: HashSet<String>,
    /// A campaign was created, started, paused or a contact moved since the last journal.
    journal_dirty: bool,
    /// When the last snapshot was taken.
    journalled_at: Option<Instant>,
    /// A wake-up is set for changes held back by [`JOURNAL_INTERVAL`].
    journal_wake_set: bool,
}

impl Campaigns {
    pub fn get(&self, id: u64) -> Option<&Campaign> {
        self.by_id.get(&id)
    }

    /// Something the journal keeps changed.
    pub fn changed(&mut self) {
        self.journal_dirty = true;
    }
}

/// A campaign as journalled: its settings, whether it runs, and every contact with its
/// progress, so a restart takes it up where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCampaign {
    pub id: u64,
    pub name: String,
    pub queue: String,
    pub mode: Mode,
    pub caller_id: Option<String>,
    pub max_attempts: u32,
    pub retry_s: u64,
    pub running: bool,
    /// The campaign's own list (the site's `dnc_file` is read again at start).
    pub dnc: Vec<String>,
    pub contacts: Vec<SavedContact>,
}

/// One contact of a journalled campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedContact {
    #[serde(flatten)]
    pub contact: Contact,
    #[serde(default)]
    pub resume: Resume,
}

impl Switch {
    /// The numbers of `[outbound] dnc_file`, read by the edge at start.
    pub fn use_do_not_call(&mut self, numbers: HashSet<String>) {
        tracing::info!(numbers = numbers.len(), "do-not-call list loaded");
        self.campaigns.do_not_call = numbers;
    }

    /// Runs a campaign command from the API; the answer is the campaign's report.
    pub fn campaign_command(
        &mut self,
        now: Instant,
        command: CampaignCommand,
    ) -> Result<Value, CampaignError> {
        let id = match command {
            CampaignCommand::Create(mut spec) => {
                spec.dnc.extend(self.campaigns.do_not_call.iter().cloned());
                if self.config.queue(&spec.queue).is_none() {
                    return Err(CampaignError::UnknownQueue(spec.queue));
                }
                self.campaigns.next_id += 1;
                let id = self.campaigns.next_id;
                tracing::info!(campaign = id, name = %spec.name, contacts = spec.contacts.len(), "campaign created");
                let dialler = Dialler::new(spec.contacts, spec.dnc, spec.max_attempts, spec.retry);
                self.campaigns.by_id.insert(
                    id,
                    Campaign {
                        id,
                        name: spec.name,
                        queue: spec.queue,
                        mode: spec.mode,
                        caller_id: spec.caller_id,
                        dialler,
                    },
                );
                id
            }
            CampaignCommand::Start(id) | CampaignCommand::Pause(id) => {
                let running = matches!(command, CampaignCommand::Start(_));
                let campaign = self
                    .campaigns
                    .by_id
                    .get_mut(&id)
                    .ok_or(CampaignError::UnknownCampaign(id))?;
                campaign.dialler.running = running;
                tracing::info!(campaign = id, running, "campaign started or paused");
                if running {
                    self.feed_campaigns(now);
                } else {
                    self.withdraw_waiting_contacts(now, id);
                }
                id
            }
            CampaignCommand::List => return Ok(self.campaign_list()),
            CampaignCommand::Report(id) => {
                return self
                    .campaign_report(id)
                    .ok_or(CampaignError::UnknownCampaign(id))
            }
            CampaignCommand::WrappedUp { call, disposition } => {
                let found = self
                    .campaigns
                    .by_id
                    .values_mut()
                    .find_map(|c| c.dialler.wrapped_up(call, &disposition).then_some(c.id));
                match found {
                    Some(id) => {
                        tracing::info!(campaign = id, call, %disposition, "campaign contact wrapped up");
                        id
                    }
                    None => return Ok(Value::Null),
                }
            }
        };
        self.campaigns.changed();
        self.campaign_report(id)
            .ok_or(CampaignError::UnknownCampaign(id))
    }

    /// Every campaign to journal, when one changed since the last snapshot and that was at
    /// least [`JOURNAL_INTERVAL`] ago (otherwise a timer wakes the edge when it is).
    pub fn poll_campaign_journal(&mut self, now: Instant) -> Option<Vec<SavedCampaign>> {
        if !self.campaigns.journal_dirty {
            return None;
        }
        if let Some(next) = self.campaigns.journalled_at.map(|at| at + JOURNAL_INTERVAL) {
            if now < next {
                if !self.campaigns.journal_wake_set {
                    self.campaigns.journal_wake_set = true;
                    self.timers.schedule(next, SwitchTimer::CampaignJournal);
                }
                return None;
            }
        }
        self.campaigns.journal_dirty = false;
        self.campaigns.journal_wake_set = false;
        self.campaigns.journalled_at = Some(now);
        // Contacts whose customer is being dialled or talked to (their agent accepted).
        let dialling: HashSet<(u64, usize)> = self
            .callbacks
            .ids()
            .into_iter()
            .filter_map(|id| self.callbacks.get(id))
            .filter(|c| matches!(c.stage, Stage::Dialling { .. } | Stage::Connected { .. }))
            .filter_map(|c| c.campaign.as_ref().map(|o| (o.campaign, o.contact)))
            .collect();
        let site = &self.campaigns.do_not_call;
        let saved = self
            .campaigns
            .by_id
            .values()
            .map(|c| {
                let mut dnc: Vec<String> = c
                    .dialler
                    .do_not_call()
                    .filter(|n| !site.contains(*n))
                    .cloned()
                    .collect();
                dnc.sort();
                SavedCampaign {
                    id: c.id,
                    name: c.name.clone(),
                    queue: c.queue.clone(),
                    mode: c.mode,
                    caller_id: c.caller_id.clone(),
                    max_attempts: c.dialler.max_attempts,
                    retry_s: c.dialler.retry.as_secs(),
                    running: c.dialler.running,
                    dnc,
                    contacts: c
                        .dialler
                        .contacts
                        .iter()
                        .enumerate()
                        .map(|(index, contact)| SavedContact {
                            contact: contact.clone(),
                            resume: c.dialler.resume_of(
                                index,
                                now,
                                dialling.contains(&(c.id, index)),
                            ),
                        })
                        .collect(),
                }
            })
            .collect();
        Some(saved)
    }

    /// Takes up the campaigns a previous run journalled (after `use_do_not_call`): running
    /// ones dial again as agents become Ready. A campaign whose queue is gone is kept, paused
    /// (logged), so its report is not lost.
    pub fn restore_campaigns(&mut self, now: Instant, saved: Vec<SavedCampaign>) {
        for campaign in saved {
            let mut dnc: HashSet<String> = campaign.dnc.into_iter().collect();
            dnc.extend(self.campaigns.do_not_call.iter().cloned());
            let (contacts, resume): (Vec<Contact>, Vec<Resume>) = campaign
                .contacts
                .into_iter()
                .map(|c| (c.contact, c.resume))
                .unzip();
            let mut dialler = Dialler::restore(
                contacts,
                &resume,
                dnc,
                campaign.max_attempts,
                Duration::from_secs(campaign.retry_s),
                now,
            );
            let queue_known = self.config.queue(&campaign.queue).is_some();
            if !queue_known && campaign.running {
                tracing::warn!(campaign = campaign.id, queue = %campaign.queue, "journalled campaign paused: its queue is gone");
            }
            dialler.running = campaign.running && queue_known;
            if let Some(at) = dialler.next_due() {
                self.timers.schedule(at, SwitchTimer::CampaignRetry);
            }
            tracing::info!(campaign = campaign.id, name = %campaign.name, running = dialler.running, "journalled campaign restored");
            self.campaigns.next_id = self.campaigns.next_id.max(campaign.id);
            self.campaigns.by_id.insert(
                campaign.id,
                Campaign {
                    id: campaign.id,
                    name: campaign.name,
                    queue: campaign.queue,
                    mode: campaign.mode,
                    caller_id: campaign.caller_id,
                    dialler,
                },
            );
        }
        // The restore itself (attempts counted) is journalled at once.
        self.campaigns.changed();
        self.feed_campaigns(now);
    }

    fn campaign_list(&self) -> Value {
        let campaigns: Vec<Value> = self
            .campaigns
            .by_id
            .values()
            .map(|c| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "queue": c.queue,
                    "mode": c.mode,
                    "running": c.dialler.running,
                    "finished": c.dialler.finished(),
                    "contacts": c.dialler.contacts.len(),
                    "tally": c.dialler.tally(),
                })
            })
            .collect();
        json!({ "campaigns": campaigns })
    }

    fn campaign_report(&self, id: u64) -> Option<Value> {
        let campaign = self.campaigns.get(id)?;
        Some(json!({
            "id": campaign.id,
            "name": campaign.name,
            "queue": campaign.queue,
            "mode": campaign.mode,
            "running": campaign.dialler.running,
            "finished": campaign.dialler.finished(),
            "max_attempts": campaign.dialler.max_attempts,
            "retry_s": campaign.dialler.retry.as_secs(),
            "tally": campaign.dialler.tally(),
            "contacts": campaign.dialler.contacts,
        }))
    }

    /// Hands contacts of every running campaign to the ACD while its queue has Ready agents
    /// without a contact waiting for them. Called on the events that can free an agent.
    pub(super) fn feed_campaigns(&mut self, now: Instant) {
        let ids: Vec<u64> = self
            .campaigns
            .by_id
            .values()
            .filter(|c| c.dialler.running)
            .map(|c| c.id)
            .collect();
        for campaign_id in ids {
            let Some(campaign) = self.campaigns.by_id.get(&campaign_id) else {
                continue;
            };
            let queue = campaign.queue.clone();
            match self.calling_window(now, &queue) {
                Some(super::callback::Window::Closed { opens_at }) => {
                    // Nothing is dialled outside the window; look again when it opens.
                    if let Some(opens) = opens_at {
                        let at = self.instant_of(now, opens);
                        self.timers.schedule(at, SwitchTimer::CampaignRetry);
                    }
                    continue;
                }
                Some(super::callback::Window::Open { .. }) | None => {}
            }
            let ready = self
                .acd
                .queue_agent_counts(&acd::QueueId::from(queue.as_str()))
                .map_or(0, |counts| counts.ready);
            let waiting = self.callbacks.waiting_for_campaign(campaign_id);
            let free = ready.saturating_sub(waiting);
            let Some(campaign) = self.campaigns.by_id.get_mut(&campaign_id) else {
                continue;
            };
            let taken = campaign.dialler.take(now, free);
            if !taken.is_empty() {
                self.campaigns.changed();
            }
            for index in taken {
                self.queue_contact(now, campaign_id, index);
            }
        }
    }

    /// One attempt on a contact: a callback entry in the campaign's queue.
    fn queue_contact(&mut self, now: Instant, campaign_id: u64, index: usize) {
        let Some(campaign) = self.campaigns.by_id.get(&campaign_id) else {
            return;
        };
        let Some(contact) = campaign.dialler.contacts.get(index) else {
            return;
        };
        let id = self.next_call;
        self.next_call += 1;
        let booking = Booking {
            number: contact.number.clone(),
            queue: campaign.queue.clone(),
            requested_by: format!("campaign-{campaign_id}"),
            requested: self.wall(now),
            place: now,
            caller_id: campaign.caller_id.clone().unwrap_or_default(),
        };
        // The dialler counts attempts and retries; each entry is one attempt.
        let mut callback = Callback::new(id, booking, 1, Duration::from_secs(1));
        callback.campaign = Some(super::callback::book::CampaignContact {
            campaign: campaign_id,
            name: campaign.name.clone(),
            contact: index,
            progressive: campaign.mode == Mode::Progressive,
        });
        callback.priority = CAMPAIGN_PRIORITY;
        tracing::info!(campaign = campaign_id, callback = id, number = %callback.number, "campaign contact queued");
        self.callbacks.insert(callback);
        self.enqueue_callback(now, id);
    }

    /// A paused campaign takes back the contacts still waiting for an agent.
    fn withdraw_waiting_contacts(&mut self, now: Instant, campaign_id: u64) {
        for id in self.callbacks.ids() {
            let waiting = self.callbacks.get(id).is_some_and(|c| {
                c.stage == Stage::Waiting
                    && c.campaign
                        .as_ref()
                        .is_some_and(|o| o.campaign == campaign_id)
            });
            if !waiting {
                continue;
            }
            if let Ok(actions) = self.acd.abandon(now, acd::CallId(id)) {
                self.apply_acd(now, actions);
            }
            self.finish_callback(now, id, cdr::CallbackOutcome::Cancelled, Vec::new());
        }
    }

    /// Whether `number` is on `[outbound] dnc_file`.
    pub(super) fn on_do_not_call_list(&self, number: &str) -> bool {
        self.campaigns.do_not_call.contains(number)
    }

    /// Whether the customer of callback `id` may be dialled now: not on `[outbound] dnc_file`
    /// nor on its campaign's do-not-call list (checked right before every dial).
    pub(super) fn may_dial(&self, id: CallNumber) -> bool {
        let Some(callback) = self.callbacks.get(id) else {
            return false;
        };
        if self.campaigns.do_not_call.contains(&callback.number) {
            return false;
        }
        match &callback.campaign {
            Some(origin) => self
                .campaigns
                .get(origin.campaign)
                .is_some_and(|c| c.dialler.may_dial(&callback.number)),
            None => true,
        }
    }

    /// A campaign attempt is over: the contact's result goes to the dialler, which may want
    /// it again after the retry delay; the freed agent may take the next contact.
    pub(super) fn campaign_attempt_ended(
        &mut self,
        now: Instant,
        call: CallNumber,
        origin: &super::callback::book::CampaignContact,
        result: Option<cdr::CallbackResult>,
    ) {
        let Some(campaign) = self.campaigns.by_id.get_mut(&origin.campaign) else {
            return;
        };
        match result {
            Some(result) => {
                if let AfterAttempt::RetryAt(at) =
                    campaign
                        .dialler
                        .attempt_ended(now, origin.contact, call, result)
                {
                    self.timers.schedule(at, SwitchTimer::CampaignRetry);
                }
            }
            None => campaign.dialler.hand_back(origin.contact),
        }
        self.campaigns.changed();
        self.feed_campaigns(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn spec(name: &str) -> CampaignSpec {
        CampaignSpec {
            name: name.to_owned(),
            queue: "support".to_owned(),
            mode: Mode::Preview,
            max_attempts: 2,
            retry: Duration::from_secs(60),
            caller_id: None,
            contacts: list::parse_contacts("number\n2001\n").expect("valid list"),
            dnc: HashSet::new(),
        }
    }

    #[test]
    fn the_journal_takes_changes_at_most_once_per_interval_and_wakes_for_the_rest() {
        let now = Instant::now();
        let mut switch =
            super::super::testing::switch(now, Arc::new(crate::config::demo()), Default::default());
        assert!(switch.poll_campaign_journal(now).is_none(), "nothing yet");
        switch
            .campaign_command(now, CampaignCommand::Create(spec("first")))
            .expect("created");
        let first = switch
            .poll_campaign_journal(now)
            .expect("the first change at once");
        assert_eq!(first.len(), 1);
        assert!(switch.poll_campaign_journal(now).is_none(), "unchanged");

        let soon = now + Duration::from_millis(100);
        switch
            .campaign_command(soon, CampaignCommand::Create(spec("second")))
            .expect("created");
        assert!(
            switch.poll_campaign_journal(soon).is_none(),
            "held back within the interval"
        );
        let wake = now + JOURNAL_INTERVAL;
        assert!(
            switch.poll_timeout().is_some_and(|at| at <= wake),
            "a wake-up is set for the held-back change"
        );
        let both = switch
            .poll_campaign_journal(wake)
            .expect("written at the interval");
        assert_eq!(
            both.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["first", "second"]
        );
        // Reports do not change anything to journal.
        switch
            .campaign_command(wake + JOURNAL_INTERVAL, CampaignCommand::List)
            .expect("listed");
        assert!(switch
            .poll_campaign_journal(wake + JOURNAL_INTERVAL * 2)
            .is_none());
    }
}
