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
pub mod local_window;

use super::call::CallNumber;
use super::callback::book::{Booking, Callback, Stage};
use super::{Switch, SwitchTimer};
use list::{AfterAttempt, Contact, Dialler, Mode, Reachable, Resume};
use local_window::ZoneWindows;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
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
    /// The IANA zone of contacts whose row names none (already checked).
    pub timezone: Option<String>,
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
    /// The IANA zone of contacts whose row names none (`None`: the calling window's own).
    pub timezone: Option<String>,
    pub dialler: Dialler,
}

impl Campaign {
    /// The zone contact `contact`'s calling window is read in (`None`: the window's own).
    fn zone_of<'a>(&'a self, contact: &'a Contact) -> Option<&'a str> {
        contact.timezone.as_deref().or(self.timezone.as_deref())
    }
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
    /// The calling window in each customer's zone, kept while it holds.
    windows: ZoneWindows,
    /// The earliest wake-up set for a contact's window to open (one timer, not one per feed).
    window_wake: Option<Instant>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
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
                        timezone: spec.timezone,
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
            CampaignCommand::List => return Ok(self.campaign_list(now)),
            CampaignCommand::Report(id) => {
                return self
                    .campaign_report(now, id)
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
        self.campaign_report(now, id)
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
                    timezone: c.timezone.clone(),
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
                    timezone: campaign.timezone,
                    dialler,
                },
            );
        }
        // The restore itself (attempts counted) is journalled at once.
        self.campaigns.changed();
        self.feed_campaigns(now);
    }

    fn campaign_list(&self, now: Instant) -> Value {
        let campaigns: Vec<Value> = self
            .campaigns
            .by_id
            .values()
            .map(|c| {
                let waiting_for_window = self
                    .contact_waits(now, c)
                    .iter()
                    .filter(|w| matches!(w.waiting, Some(Waiting::Window { .. })))
                    .count();
                json!({
                    "id": c.id,
                    "name": c.name,
                    "queue": c.queue,
                    "mode": c.mode,
                    "running": c.dialler.running,
                    "finished": c.dialler.finished(),
                    "contacts": c.dialler.contacts.len(),
                    "tally": c.dialler.tally(),
                    "waiting_for_window": waiting_for_window,
                })
            })
            .collect();
        json!({ "campaigns": campaigns })
    }

    fn campaign_report(&self, now: Instant, id: u64) -> Option<Value> {
        let campaign = self.campaigns.get(id)?;
        let waits = self.contact_waits(now, campaign);
        let waiting_for_window = waits
            .iter()
            .filter(|w| matches!(w.waiting, Some(Waiting::Window { .. })))
            .count();
        // Each contact: its row and progress, the zone its window is read in, and what a due
        // one waits for.
        let contacts: Vec<Value> = campaign
            .dialler
            .contacts
            .iter()
            .zip(waits)
            .map(|(contact, wait)| {
                let mut view = serde_json::to_value(contact).unwrap_or(Value::Null);
                if let Value::Object(fields) = &mut view {
                    fields.insert("timezone".to_owned(), json!(wait.zone));
                    match wait.waiting {
                        Some(Waiting::Window { opens_at }) => {
                            fields.insert("waiting".to_owned(), json!("window"));
                            fields.insert(
                                "window_opens".to_owned(),
                                json!(opens_at.and_then(rfc3339)),
                            );
                        }
                        Some(Waiting::Agent) => {
                            fields.insert("waiting".to_owned(), json!("agent"));
                        }
                        None => {}
                    }
                }
                view
            })
            .collect();
        Some(json!({
            "id": campaign.id,
            "name": campaign.name,
            "queue": campaign.queue,
            "mode": campaign.mode,
            "running": campaign.dialler.running,
            "finished": campaign.dialler.finished(),
            "max_attempts": campaign.dialler.max_attempts,
            "retry_s": campaign.dialler.retry.as_secs(),
            "timezone": campaign.timezone,
            "tally": campaign.dialler.tally(),
            "waiting_for_window": waiting_for_window,
            "contacts": contacts,
        }))
    }

    /// For each contact of `campaign`, in list order: the zone its calling window is read in,
    /// and, for one due for dialling, what it waits for now.
    fn contact_waits(&self, now: Instant, campaign: &Campaign) -> Vec<ContactWait> {
        let schedule = calling_window_of(&self.config, &campaign.queue);
        let unix = i64::try_from(self.unix_now(now)).unwrap_or(i64::MAX);
        let own_zone = schedule.and_then(|s| s.schedule.time_zone.iana_name().map(str::to_owned));
        let mut windows = ZoneWindows::default();
        campaign
            .dialler
            .contacts
            .iter()
            .enumerate()
            .map(|(index, contact)| {
                let zone = campaign.zone_of(contact);
                let window = schedule.map(|s| windows.at(&s.name, &s.schedule, zone, unix));
                let waiting = campaign.dialler.is_due(index, now).then_some(match window {
                    Some(super::callback::window::Window::Closed { opens_at }) => {
                        Waiting::Window { opens_at }
                    }
                    _ => Waiting::Agent,
                });
                ContactWait {
                    zone: zone.map(str::to_owned).or_else(|| own_zone.clone()),
                    waiting,
                }
            })
            .collect()
    }

    /// Hands contacts of every running campaign to the ACD while its queue has Ready agents
    /// without a contact waiting for them. Called on the events that can free an agent.
    pub(super) fn feed_campaigns(&mut self, now: Instant) {
        if self.campaigns.window_wake.is_some_and(|at| at <= now) {
            self.campaigns.window_wake = None;
        }
        let config = Arc::clone(&self.config);
        let unix = i64::try_from(self.unix_now(now)).unwrap_or(i64::MAX);
        let mut next_opening: Option<Instant> = None;
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
            let ready = self
                .acd
                .queue_agent_counts(&acd::QueueId::from(queue.as_str()))
                .map_or(0, |counts| counts.ready);
            let waiting = self.callbacks.waiting_for_campaign(campaign_id);
            let free = ready.saturating_sub(waiting);
            let Some(campaign) = self.campaigns.by_id.get_mut(&campaign_id) else {
                continue;
            };
            // Nothing is dialled outside a contact's window on the customer's clock; the
            // dialler looks again when the earliest one opens.
            let schedule = calling_window_of(&config, &queue);
            let windows = &mut self.campaigns.windows;
            let default_zone = campaign.timezone.clone();
            let taken = campaign.dialler.take(now, free, |contact| {
                let Some(schedule) = schedule else {
                    return Reachable::Now;
                };
                let zone = contact.timezone.as_deref().or(default_zone.as_deref());
                match windows.at(&schedule.name, &schedule.schedule, zone, unix) {
                    super::callback::window::Window::Open { .. } => Reachable::Now,
                    super::callback::window::Window::Closed {
                        opens_at: Some(opens),
                    } => Reachable::OpensAt(instant_at(now, unix, opens)),
                    super::callback::window::Window::Closed { opens_at: None } => Reachable::Never,
                }
            });
            if let Some(at) = taken.next_opening {
                next_opening = Some(next_opening.map_or(at, |n| n.min(at)));
            }
            if !taken.contacts.is_empty() {
                self.campaigns.changed();
            }
            for index in taken.contacts {
                self.queue_contact(now, campaign_id, index);
            }
        }
        if let Some(at) = next_opening {
            if self.campaigns.window_wake.is_none_or(|wake| at < wake) {
                tracing::info!(
                    in_s = at.saturating_duration_since(now).as_secs(),
                    "campaign contacts wait for their calling window to open"
                );
                self.campaigns.window_wake = Some(at);
                self.timers.schedule(at, SwitchTimer::CampaignRetry);
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
            time_zone: campaign.zone_of(contact).and_then(local_window::zone),
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

/// What a contact due for dialling waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Its calling window is closed on the customer's clock; it opens at this Unix second
    /// (`None`: not within the scan horizon).
    Window { opens_at: Option<i64> },
    /// A Ready agent of the queue.
    Agent,
}

/// A contact's zone and wait, for the reports.
#[derive(Debug, Clone)]
struct ContactWait {
    /// The IANA zone its calling window is read in (`None`: none is named anywhere).
    zone: Option<String>,
    /// `None`: not due (in progress, waiting for a retry, or settled).
    waiting: Option<Waiting>,
}

/// The `[[schedule]]` the `callback_schedule` of `queue` names: its calling window.
fn calling_window_of<'c>(
    config: &'c crate::config::Config,
    queue: &str,
) -> Option<&'c crate::config::ScheduleConfig> {
    let name = config.queue(queue)?.callback_schedule.as_ref()?;
    config.schedules.iter().find(|s| &s.name == name)
}

/// The monotonic instant of Unix second `unix_then`, knowing `now` is Unix second `unix_now`.
fn instant_at(now: Instant, unix_now: i64, unix_then: i64) -> Instant {
    now + Duration::from_secs(u64::try_from(unix_then.saturating_sub(unix_now)).unwrap_or(0))
}

/// A Unix second as RFC 3339 UTC text.
fn rfc3339(unix: i64) -> Option<String> {
    jiff::Timestamp::from_second(unix)
        .ok()
        .map(|t| t.to_string())
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
            timezone: None,
            contacts: list::parse_contacts("number\n2001\n").expect("valid list"),
            dnc: HashSet::new(),
        }
    }

    /// Queue `support` calls out 09:00-18:00 every day, on the schedule's UTC clock; agents
    /// 1001 and 1002 are Ready.
    const WINDOWED: &str = "[[queue]]\nname = \"support\"\nskills = { s = 1 }\n\
        callback_schedule = \"day\"\n\
        [[schedule]]\nname = \"day\"\ntime_zone = \"UTC\"\nopen = [\"mon-sun 09:00-18:00\"]\n\
        [[agent]]\nid = \"1001\"\nname = \"A\"\npassword = \"p\"\nskills = { s = 1 }\n\
        [[agent]]\nid = \"1002\"\nname = \"B\"\npassword = \"p\"\nskills = { s = 1 }\n";

    #[test]
    fn each_contact_is_dialled_only_inside_its_own_window_and_the_dialler_wakes_at_the_opening() {
        // The test switch's clock starts at Unix 1_800_000_000: Friday 2027-01-15 08:00 UTC,
        // 16:00 in Shanghai (open), 03:00 in New York (opens at 09:00 EST = 14:00 UTC).
        let now = Instant::now();
        let config = crate::config::load_str("t.toml", WINDOWED).expect("valid test config");
        let mut switch = super::super::testing::switch(now, Arc::new(config), Default::default());
        for agent in ["1001", "1002"] {
            switch
                .acd
                .login(now, &acd::AgentId::from(agent), true)
                .expect("agent logs in Ready");
        }
        let mut spec = spec("zones");
        spec.contacts = list::parse_contacts(
            "number,timezone\n2001,America/New_York\n2002,Asia/Shanghai\n2003,\n",
        )
        .expect("valid list");
        // Rows without a zone of their own are in the campaign's: New York too.
        spec.timezone = Some("America/New_York".to_owned());
        let created = switch
            .campaign_command(now, CampaignCommand::Create(spec))
            .expect("created");
        let id = created["id"].as_u64().expect("an id");
        let report = switch
            .campaign_command(now, CampaignCommand::Start(id))
            .expect("started");
        let contacts = &report["contacts"];
        assert_eq!(contacts[0]["timezone"], "America/New_York");
        assert_eq!(contacts[0]["state"], "pending");
        assert_eq!(contacts[0]["waiting"], "window");
        assert_eq!(contacts[0]["window_opens"], "2027-01-15T14:00:00Z");
        assert_eq!(contacts[1]["timezone"], "Asia/Shanghai");
        assert_eq!(contacts[1]["state"], "in-progress", "16:00 in Shanghai");
        assert_eq!(contacts[2]["timezone"], "America/New_York", "{report}");
        assert_eq!(contacts[2]["waiting"], "window");
        assert_eq!(report["waiting_for_window"], 2);
        assert_eq!(report["timezone"], "America/New_York");
        let listed = switch
            .campaign_command(now, CampaignCommand::List)
            .expect("listed");
        assert_eq!(listed["campaigns"][0]["waiting_for_window"], 2, "{listed}");

        // A second before the opening nothing changes; at the opening the dialler hands out
        // New York contacts to the agent still Ready.
        let opening = now + Duration::from_secs(6 * 3600);
        switch.handle_timeout(opening - Duration::from_secs(1));
        let before = switch
            .campaign_command(opening, CampaignCommand::Report(id))
            .expect("report");
        assert_eq!(before["contacts"][0]["state"], "pending");
        assert!(
            switch.poll_timeout().is_some_and(|at| at <= opening),
            "a wake-up is set for the opening"
        );
        switch.handle_timeout(opening);
        let after = switch
            .campaign_command(opening, CampaignCommand::Report(id))
            .expect("report");
        assert_eq!(after["contacts"][0]["state"], "in-progress", "{after}");
        assert!(after["contacts"][0].get("waiting").is_none(), "{after}");
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
