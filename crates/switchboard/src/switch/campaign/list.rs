//! A campaign's contact list and the dialler's decisions over it, without I/O: which contacts
//! to hand to the ACD now (at most one per Ready agent), what an attempt's result does to a
//! contact (done, or due again after the retry delay), and the do-not-call check made before
//! every dial. Call control feeds it events (started, agent Ready, attempt ended, retry due).

use cdr::CallbackResult;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Rows over this are refused (the upload is answered 400).
pub const MAX_CONTACTS: usize = 100_000;

/// How a campaign's agents meet its contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The agent's phone rings with the contact (`campaign <number>`); answering accepts and
    /// the customer is dialled; declining hands the contact to another agent.
    Preview,
    /// The agent's phone is told to answer at once (`Call-Info: answer-after=0`) and the
    /// customer is dialled as soon as it has: a Ready agent is always reserved before a dial,
    /// so no customer is ever connected without an agent.
    Progressive,
}

/// Where a contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactState {
    /// Not dialled yet, or due again.
    Pending,
    /// Handed to the ACD (waiting for an agent, or being dialled).
    InProgress,
    /// Waiting for its retry delay.
    RetryWait,
    /// Reached.
    Answered,
    /// Every attempt failed; the last result says how.
    NotReached,
    /// On the do-not-call list: never dialled.
    DoNotCall,
}

/// One row of the uploaded list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub number: String,
    pub name: Option<String>,
    /// The customer's IANA time zone (the row's `timezone` column): the calling window is read
    /// on its clocks. `None`: the campaign's `timezone`, else the window's own zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The row's other columns, by header name.
    pub fields: BTreeMap<String, String>,
    pub state: ContactState,
    pub attempts: u32,
    /// The last attempt's result.
    #[serde(default)]
    pub last_result: Option<CallbackResult>,
    /// The call number of the attempt that reached the customer (the one its agent wraps up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
    /// The disposition of the agent's wrap-up of that call (`[acd] dispositions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    #[serde(skip)]
    pub due: Option<Instant>,
}

/// A row that cannot be imported: 1-based data row number and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    pub reason: String,
}

/// Reads a CSV contact list with a header row naming `number` (required), `name` and
/// `timezone` (optional; an IANA name such as `America/New_York`) and any custom columns. Every bad row is reported; nothing is imported if any is bad.
pub fn parse_contacts(text: &str) -> Result<Vec<Contact>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            return Err(vec![RowError {
                row: 0,
                reason: format!("the header row is not CSV: {error}"),
            }])
        }
    };
    let Some(number_column) = headers.iter().position(|h| h == "number") else {
        return Err(vec![RowError {
            row: 0,
            reason: "the header row has no \"number\" column".to_owned(),
        }]);
    };
    let name_column = headers.iter().position(|h| h == "name");
    let zone_column = headers.iter().position(|h| h == "timezone");
    let mut contacts = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                errors.push(RowError {
                    row,
                    reason: format!("not a CSV row of {} columns: {error}", headers.len()),
                });
                continue;
            }
        };
        let number = record.get(number_column).unwrap_or_default();
        if !super::super::outbound::route::is_dialable(number) {
            errors.push(RowError {
                row,
                reason: format!("{number:?} is not a dialable number"),
            });
            continue;
        }
        let timezone = zone_column
            .and_then(|c| record.get(c))
            .filter(|z| !z.is_empty());
        if let Some(Err(reason)) = timezone.map(crate::ivr::schedule::time_zone) {
            errors.push(RowError { row, reason });
            continue;
        }
        if !seen.insert(number.to_owned()) {
            errors.push(RowError {
                row,
                reason: format!("{number} is listed twice"),
            });
            continue;
        }
        let fields = headers
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(column, _)| {
                *column != number_column
                    && Some(*column) != name_column
                    && Some(*column) != zone_column
            })
            .map(|(_, (header, value))| (header.to_owned(), value.to_owned()))
            .collect();
        contacts.push(Contact {
            number: number.to_owned(),
            name: name_column
                .and_then(|c| record.get(c))
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            timezone: timezone.map(str::to_owned),
            fields,
            state: ContactState::Pending,
            attempts: 0,
            last_result: None,
            call: None,
            disposition: None,
            due: None,
        });
    }
    if contacts.len() > MAX_CONTACTS {
        errors.push(RowError {
            row: MAX_CONTACTS + 1,
            reason: format!("a campaign takes at most {MAX_CONTACTS} contacts"),
        });
    }
    if contacts.is_empty() && errors.is_empty() {
        errors.push(RowError {
            row: 1,
            reason: "the list has no contacts".to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(contacts)
    } else {
        Err(errors)
    }
}

/// A contact's progress the row itself does not carry, kept in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resume {
    #[default]
    Nothing,
    /// The customer was being dialled (or talking) when the journal was written.
    Dialling,
    /// The retry was due this long after the journal was written.
    RetryIn(#[serde(with = "seconds")] Duration),
}

/// Whole seconds in the journal.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Whether a due contact's calling window (on the customer's clock) lets it be dialled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachable {
    Now,
    /// Closed until this instant.
    OpensAt(Instant),
    /// Closed for as far as the window is looked at.
    Never,
}

/// What [`Dialler::take`] handed out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Taken {
    /// Contact indices, now in progress.
    pub contacts: Vec<usize>,
    /// The earliest opening of a due contact's window that was closed: the dialler looks again
    /// then.
    pub next_opening: Option<Instant>,
}

/// What the dialler does with an attempt's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Done,
    RetryAt(Instant),
}

/// The contact list with the dialler's rules.
#[derive(Debug)]
pub struct Dialler {
    pub contacts: Vec<Contact>,
    pub max_attempts: u32,
    pub retry: Duration,
    pub running: bool,
    dnc: HashSet<String>,
}

impl Dialler {
    /// Contacts on `dnc` are marked at once and never handed out.
    pub fn new(
        mut contacts: Vec<Contact>,
        dnc: HashSet<String>,
        max_attempts: u32,
        retry: Duration,
    ) -> Self {
        for contact in &mut contacts {
            if dnc.contains(&contact.number) {
                contact.state = ContactState::DoNotCall;
            }
        }
        Self {
            contacts,
            max_attempts,
            retry,
            running: false,
            dnc,
        }
    }

    /// The campaign's own do-not-call numbers (with the site's), for the journal.
    pub fn do_not_call(&self) -> impl Iterator<Item = &String> {
        self.dnc.iter()
    }

    /// A contact list journalled by a previous run, taken up again at `now`: a contact that
    /// was being dialled when the node stopped counts that attempt and is tried again while
    /// attempts remain; one only waiting for an agent is pending again; a retry keeps its
    /// remaining delay (`retry_in` per contact). Call numbers of a previous run mean nothing
    /// now and are dropped (the disposition stays).
    pub fn restore(
        mut contacts: Vec<Contact>,
        resume: &[Resume],
        dnc: HashSet<String>,
        max_attempts: u32,
        retry: Duration,
        now: Instant,
    ) -> Self {
        for (contact, resume) in contacts.iter_mut().zip(resume) {
            contact.call = None;
            match (contact.state, resume) {
                (ContactState::InProgress, Resume::Dialling) => {
                    contact.attempts += 1;
                    contact.state = if contact.attempts >= max_attempts {
                        ContactState::NotReached
                    } else {
                        ContactState::Pending
                    };
                }
                (ContactState::InProgress, _) => contact.state = ContactState::Pending,
                (ContactState::RetryWait, Resume::RetryIn(after)) => {
                    contact.due = Some(now + *after);
                }
                (ContactState::RetryWait, _) => contact.due = Some(now),
                _ => {}
            }
        }
        Self::new(contacts, dnc, max_attempts, retry)
    }

    /// What the journal must know of contact `index` beyond its row: whether it is being
    /// dialled (`dialling` says so for in-progress contacts) or how long its retry still waits.
    pub fn resume_of(&self, index: usize, now: Instant, dialling: bool) -> Resume {
        match self.contacts.get(index) {
            Some(c) if c.state == ContactState::InProgress && dialling => Resume::Dialling,
            Some(c) if c.state == ContactState::RetryWait => Resume::RetryIn(
                c.due
                    .map_or(Duration::ZERO, |at| at.saturating_duration_since(now)),
            ),
            _ => Resume::Nothing,
        }
    }

    /// The earliest retry due, to schedule after a restore.
    pub fn next_due(&self) -> Option<Instant> {
        self.contacts
            .iter()
            .filter(|c| c.state == ContactState::RetryWait)
            .filter_map(|c| c.due)
            .min()
    }

    /// Whether `number` may be dialled now (checked again right before every dial).
    pub fn may_dial(&self, number: &str) -> bool {
        !self.dnc.contains(number)
    }

    /// Contacts handed to the ACD and not finished.
    pub fn in_progress(&self) -> usize {
        self.contacts
            .iter()
            .filter(|c| c.state == ContactState::InProgress)
            .count()
    }

    /// Up to `free` contacts to hand to the ACD now, in list order: pending ones and those
    /// whose retry is due, when `reachable` says their calling window is open. They are marked
    /// in progress. Nothing while paused.
    pub fn take(
        &mut self,
        now: Instant,
        free: usize,
        mut reachable: impl FnMut(&Contact) -> Reachable,
    ) -> Taken {
        let mut taken = Taken::default();
        if !self.running {
            return taken;
        }
        for (index, contact) in self.contacts.iter_mut().enumerate() {
            if taken.contacts.len() >= free {
                break;
            }
            let due = match contact.state {
                ContactState::Pending => true,
                ContactState::RetryWait => contact.due.is_some_and(|at| at <= now),
                _ => false,
            };
            if !due || self.dnc.contains(&contact.number) {
                continue;
            }
            match reachable(contact) {
                Reachable::Now => {
                    contact.state = ContactState::InProgress;
                    contact.due = None;
                    taken.contacts.push(index);
                }
                Reachable::OpensAt(at) => {
                    taken.next_opening = Some(taken.next_opening.map_or(at, |t| t.min(at)));
                }
                Reachable::Never => {}
            }
        }
        taken
    }

    /// Whether contact `index` would be handed out now were its window open and an agent free.
    pub fn is_due(&self, index: usize, now: Instant) -> bool {
        self.contacts.get(index).is_some_and(|c| match c.state {
            ContactState::Pending => !self.dnc.contains(&c.number),
            ContactState::RetryWait => c.due.is_some_and(|at| at <= now),
            _ => false,
        })
    }

    /// Attempt `call` on contact `index` ended with `result`.
    pub fn attempt_ended(
        &mut self,
        now: Instant,
        index: usize,
        call: u64,
        result: CallbackResult,
    ) -> AfterAttempt {
        let Some(contact) = self.contacts.get_mut(index) else {
            return AfterAttempt::Done;
        };
        contact.attempts += 1;
        contact.last_result = Some(result);
        if result == CallbackResult::Answered {
            contact.state = ContactState::Answered;
            contact.call = Some(call);
            return AfterAttempt::Done;
        }
        // A number the carrier says does not exist is not tried again.
        if contact.attempts >= self.max_attempts || result == CallbackResult::WrongNumber {
            contact.state = ContactState::NotReached;
            return AfterAttempt::Done;
        }
        let at = now + self.retry;
        contact.state = ContactState::RetryWait;
        contact.due = Some(at);
        AfterAttempt::RetryAt(at)
    }

    /// A contact handed out could not be attempted (the campaign was paused before an agent
    /// took it, say): it is pending again.
    pub fn hand_back(&mut self, index: usize) {
        if let Some(contact) = self.contacts.get_mut(index) {
            if contact.state == ContactState::InProgress {
                contact.state = ContactState::Pending;
            }
        }
    }

    /// The agent's wrap-up of `call` names `disposition`: it becomes the result of the
    /// contact that call reached. False when no contact of this campaign was reached by it.
    pub fn wrapped_up(&mut self, call: u64, disposition: &str) -> bool {
        match self.contacts.iter_mut().find(|c| c.call == Some(call)) {
            Some(contact) => {
                contact.disposition = Some(disposition.to_owned());
                true
            }
            None => false,
        }
    }

    /// Counts per state and per last result, for the report.
    pub fn tally(&self) -> BTreeMap<&'static str, usize> {
        let mut tally = BTreeMap::new();
        for contact in &self.contacts {
            let state = match contact.state {
                ContactState::Pending => "pending",
                ContactState::InProgress => "in-progress",
                ContactState::RetryWait => "retry-wait",
                ContactState::Answered => "answered",
                ContactState::NotReached => "not-reached",
                ContactState::DoNotCall => "do-not-call",
            };
            *tally.entry(state).or_insert(0) += 1;
        }
        tally
    }

    /// Whether every contact is settled.
    pub fn finished(&self) -> bool {
        self.contacts.iter().all(|c| {
            matches!(
                c.state,
                ContactState::Answered | ContactState::NotReached | ContactState::DoNotCall
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialler(csv: &str, dnc: &[&str], max_attempts: u32) -> Dialler {
        let contacts = parse_contacts(csv).expect("valid list");
        Dialler::new(
            contacts,
            dnc.iter().map(|n| (*n).to_owned()).collect(),
            max_attempts,
            Duration::from_secs(60),
        )
    }

    /// Takes contacts as if every window were open.
    fn take_open(d: &mut Dialler, now: Instant, free: usize) -> Vec<usize> {
        d.take(now, free, |_| Reachable::Now).contacts
    }

    #[test]
    fn a_list_keeps_names_and_custom_fields() {
        let contacts =
            parse_contacts("number,name,order\n+8613800000001,Li Lei,A-17\n4000100,,B-2\n")
                .expect("valid");
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].name.as_deref(), Some("Li Lei"));
        assert_eq!(
            contacts[0].fields.get("order").map(String::as_str),
            Some("A-17")
        );
        assert_eq!(contacts[1].name, None);
        assert!(!contacts[1].fields.contains_key("number"));
    }

    #[test]
    fn a_timezone_column_is_each_customers_zone_and_a_bad_zone_names_its_row() {
        let contacts = parse_contacts(
            "number,timezone,order\n101,America/New_York,A\n102,,B\n103,Asia/Shanghai,C\n",
        )
        .expect("valid");
        assert_eq!(contacts[0].timezone.as_deref(), Some("America/New_York"));
        assert_eq!(
            contacts[1].timezone, None,
            "an empty cell: the campaign's zone"
        );
        assert_eq!(contacts[2].timezone.as_deref(), Some("Asia/Shanghai"));
        assert!(
            !contacts[0].fields.contains_key("timezone"),
            "not a custom field"
        );
        let errors = parse_contacts("number,timezone\n101,UTC\n102,Mars/Olympus\n103,New York\n")
            .expect_err("bad zones");
        let rows: Vec<usize> = errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![2, 3], "{errors:?}");
        assert!(
            errors[0]
                .reason
                .contains("unknown time zone \"Mars/Olympus\""),
            "{errors:?}"
        );
    }

    #[test]
    fn contacts_outside_their_window_wait_and_the_earliest_opening_is_reported() {
        let now = Instant::now();
        let mut d = dialler(
            "number,timezone\n101,America/New_York\n102,Asia/Shanghai\n103,Europe/Paris\n",
            &[],
            2,
        );
        d.running = true;
        let soon = now + Duration::from_secs(600);
        let later = now + Duration::from_secs(3600);
        let taken = d.take(now, 5, |c| match c.timezone.as_deref() {
            Some("Asia/Shanghai") => Reachable::Now,
            Some("America/New_York") => Reachable::OpensAt(later),
            _ => Reachable::OpensAt(soon),
        });
        assert_eq!(taken.contacts, vec![1], "only the one inside its window");
        assert_eq!(taken.next_opening, Some(soon), "the earliest opening");
        assert_eq!(d.contacts[0].state, ContactState::Pending);
        assert!(d.is_due(0, now) && !d.is_due(1, now));
        let none = d.take(now, 5, |_| Reachable::Never);
        assert_eq!(none, Taken::default(), "never open: nothing, no wake-up");
    }

    #[test]
    fn every_bad_row_is_named_and_nothing_is_imported() {
        let errors = parse_contacts("number,name\n+861,ok\nabc,bad\n+861,twice\n4000,x,extra\n")
            .expect_err("bad rows");
        let rows: Vec<usize> = errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![2, 3, 4], "{errors:?}");
        assert!(errors[0].reason.contains("not a dialable number"));
        assert!(errors[1].reason.contains("listed twice"));
        assert!(errors[2].reason.contains("not a CSV row"));
        let missing = parse_contacts("phone\n123\n").expect_err("no number column");
        assert_eq!(missing[0].row, 0);
        assert!(
            parse_contacts("number\n").is_err(),
            "an empty list is refused"
        );
    }

    #[test]
    fn contacts_are_handed_out_one_per_free_agent_and_never_when_paused() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n102\n103\n", &[], 2);
        assert!(take_open(&mut d, now, 5).is_empty(), "not started");
        d.running = true;
        assert_eq!(take_open(&mut d, now, 2), vec![0, 1]);
        assert_eq!(d.in_progress(), 2);
        assert_eq!(take_open(&mut d, now, 0), Vec::<usize>::new());
        assert_eq!(take_open(&mut d, now, 5), vec![2]);
        assert!(take_open(&mut d, now, 5).is_empty(), "everything is out");
    }

    #[test]
    fn a_do_not_call_number_is_never_handed_out() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n102\n", &["102"], 2);
        d.running = true;
        assert_eq!(take_open(&mut d, now, 5), vec![0]);
        assert_eq!(d.contacts[1].state, ContactState::DoNotCall);
        assert!(!d.may_dial("102"));
        assert!(d.may_dial("101"));
    }

    #[test]
    fn busy_and_no_answer_are_retried_after_the_delay_until_the_attempts_run_out() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n102\n", &[], 2);
        d.running = true;
        assert_eq!(take_open(&mut d, now, 2), vec![0, 1]);
        assert_eq!(
            d.attempt_ended(now, 0, 11, CallbackResult::Busy),
            AfterAttempt::RetryAt(now + Duration::from_secs(60))
        );
        assert_eq!(
            d.attempt_ended(now, 1, 12, CallbackResult::Answered),
            AfterAttempt::Done
        );
        assert!(
            take_open(&mut d, now, 5).is_empty(),
            "the retry is not due yet"
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(take_open(&mut d, later, 5), vec![0]);
        assert_eq!(
            d.attempt_ended(later, 0, 13, CallbackResult::NoAnswer),
            AfterAttempt::Done
        );
        assert_eq!(d.contacts[0].state, ContactState::NotReached);
        assert_eq!(d.contacts[0].last_result, Some(CallbackResult::NoAnswer));
        assert!(d.finished());
        let tally = d.tally();
        assert_eq!(tally.get("answered"), Some(&1));
        assert_eq!(tally.get("not-reached"), Some(&1));
    }

    #[test]
    fn a_wrong_number_is_not_retried_and_a_wrap_up_lands_on_the_answered_contact() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n102\n", &[], 3);
        d.running = true;
        assert_eq!(take_open(&mut d, now, 2), vec![0, 1]);
        assert_eq!(
            d.attempt_ended(now, 0, 21, CallbackResult::WrongNumber),
            AfterAttempt::Done
        );
        assert_eq!(d.contacts[0].state, ContactState::NotReached);
        assert_eq!(d.contacts[0].last_result, Some(CallbackResult::WrongNumber));
        assert_eq!(
            d.attempt_ended(now, 1, 22, CallbackResult::Answered),
            AfterAttempt::Done
        );
        assert!(!d.wrapped_up(21, "resolved"), "call 21 reached nobody");
        assert!(d.wrapped_up(22, "resolved"));
        assert_eq!(d.contacts[1].disposition.as_deref(), Some("resolved"));
        assert_eq!(d.contacts[0].disposition, None);
        let json = serde_json::to_value(&d.contacts[1]).expect("json");
        assert_eq!(json["disposition"], "resolved");
        assert_eq!(json["call"], 22);
    }

    #[test]
    fn a_restored_list_counts_the_attempt_being_dialled_and_keeps_retry_delays() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n102\n103\n104\n105\n", &["105"], 2);
        d.running = true;
        assert_eq!(take_open(&mut d, now, 4), vec![0, 1, 2, 3]);
        d.attempt_ended(now, 2, 30, CallbackResult::Busy);
        d.attempt_ended(now, 3, 31, CallbackResult::Answered);
        assert!(d.wrapped_up(31, "resolved"));
        d.contacts[1].attempts = 1;
        let later = now + Duration::from_secs(20);
        let resume: Vec<Resume> = (0..5).map(|i| d.resume_of(i, later, i == 1)).collect();
        assert_eq!(resume[0], Resume::Nothing, "only waiting for an agent");
        assert_eq!(resume[1], Resume::Dialling);
        assert_eq!(resume[2], Resume::RetryIn(Duration::from_secs(40)));
        let restart = Instant::now() + Duration::from_secs(100);
        let r = Dialler::restore(
            d.contacts.clone(),
            &resume,
            ["105".to_owned()].into(),
            2,
            Duration::from_secs(60),
            restart,
        );
        assert_eq!(r.contacts[0].state, ContactState::Pending);
        assert_eq!(r.contacts[0].attempts, 0, "never dialled: not counted");
        assert_eq!(
            r.contacts[1].state,
            ContactState::NotReached,
            "second attempt used"
        );
        assert_eq!(r.contacts[1].attempts, 2);
        assert_eq!(r.contacts[2].state, ContactState::RetryWait);
        assert_eq!(r.contacts[2].due, Some(restart + Duration::from_secs(40)));
        assert_eq!(r.next_due(), Some(restart + Duration::from_secs(40)));
        assert_eq!(r.contacts[3].state, ContactState::Answered);
        assert_eq!(r.contacts[3].disposition.as_deref(), Some("resolved"));
        assert_eq!(r.contacts[3].call, None, "a previous run's call number");
        assert_eq!(r.contacts[4].state, ContactState::DoNotCall);
        assert!(!r.running, "the journal says whether it runs");
    }

    #[test]
    fn a_contact_handed_back_is_pending_again() {
        let now = Instant::now();
        let mut d = dialler("number\n101\n", &[], 1);
        d.running = true;
        assert_eq!(take_open(&mut d, now, 1), vec![0]);
        d.hand_back(0);
        assert_eq!(d.contacts[0].state, ContactState::Pending);
        assert_eq!(take_open(&mut d, now, 1), vec![0]);
    }
}
