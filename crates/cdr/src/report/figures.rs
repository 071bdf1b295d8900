//! The figures of one report cell (an interval × a queue, an agent, or all queues).
//!
//! Counts and sums are kept raw so cells can be merged; rates are derived on demand.
//! Definitions (the common contact-centre variants, stated so nobody has to guess):
//!
//! - **offered**: calls that reached the queue (the CDR names a queue), whatever happened next;
//!   for an agent, calls whose CDR names that agent.
//! - **answered**: disposition `answered`.
//! - **abandoned**: disposition `abandoned` (the caller hung up after waiting ≥ 5 s).
//! - **abandoned short**: the caller hung up within 5 s (`abandoned-short`, or `abandoned`
//!   with `wait_s` < 5, see [`Disposition::classify`]). Excluded from the base of the rates
//!   below: nobody could have answered them.
//! - **base** = offered − abandoned short.
//! - **answer rate** = answered / base.
//! - **abandon rate** = abandoned / base.
//! - **service level** = answered with `wait_s` ≤ the queue's threshold / base. Long abandons,
//!   overflows and timeouts count against it; short abandons are left out (the variant
//!   "answered within T over offered minus short abandons").
//! - **ASA** (average speed of answer) = mean `wait_s` of answered calls (queue time
//!   including ringing).
//! - **AHT** (average handle time) = mean of `talk_s + hold_s + wrap_up_s` over answered calls.
//! - **longest wait** = largest `wait_s` of any offered call, answered or not.
//! - **transfer rate** = answered calls with at least one transfer / answered.
//! - **survey average** = mean survey score over calls that have one.
//!
//! A rate whose denominator is zero is undefined (`None`), shown as empty, never as 0 %.

use crate::model::Disposition;

/// The facts of one call a report needs; built from a CDR line or a [`CallRecord`].
///
/// [`CallRecord`]: crate::model::CallRecord
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallFacts<'a> {
    /// When the call counts: `enqueued`, or `arrived` if it never queued (Unix seconds, UTC).
    pub at_unix_s: i64,
    /// The queue named in the CDR.
    pub queue: Option<&'a str>,
    /// The agent named in the CDR.
    pub agent: Option<&'a str>,
    /// The disposition as recorded.
    pub disposition: Disposition,
    /// Seconds in queue.
    pub wait_s: f64,
    /// Talk + hold + wrap-up seconds.
    pub handle_s: f64,
    /// The queue's service-level threshold at the time.
    pub threshold_s: f64,
    /// Whether the call was transferred at least once.
    pub transferred: bool,
    /// Survey score, if any.
    pub survey_score: Option<u8>,
}

impl<'a> From<&'a crate::model::CallRecord> for CallFacts<'a> {
    fn from(call: &'a crate::model::CallRecord) -> Self {
        CallFacts {
            at_unix_s: call.enqueued.unwrap_or(call.arrived).unix_timestamp(),
            queue: call.queue.as_deref(),
            agent: call.agent.as_deref(),
            disposition: call.disposition,
            wait_s: call.wait_s,
            handle_s: call.talk_s + call.hold_s + call.wrap_up_s,
            threshold_s: call.service_level_threshold_s,
            transferred: !call.transfers.is_empty(),
            survey_score: call.survey_score,
        }
    }
}

/// Raw counts and sums of one report cell; see the module docs for the definitions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Calls offered.
    pub offered: u64,
    /// Calls answered.
    pub answered: u64,
    /// Calls abandoned after 5 s or more.
    pub abandoned: u64,
    /// Calls abandoned within 5 s.
    pub abandoned_short: u64,
    /// Answered calls whose wait was within the service-level threshold.
    pub answered_within_threshold: u64,
    /// Answered calls transferred at least once.
    pub transferred: u64,
    /// Sum of `wait_s` over answered calls.
    pub answered_wait_s: f64,
    /// Sum of talk + hold + wrap-up over answered calls.
    pub handle_s: f64,
    /// Largest wait of any offered call.
    pub longest_wait_s: f64,
    /// Sum of survey scores.
    pub survey_sum: u64,
    /// Calls with a survey score.
    pub survey_count: u64,
    /// The service-level threshold of the most recent call counted (for staffing).
    pub threshold_s: f64,
}

impl Figures {
    /// Counts one call.
    pub fn add(&mut self, call: &CallFacts<'_>) {
        self.offered += 1;
        self.longest_wait_s = self.longest_wait_s.max(call.wait_s);
        self.threshold_s = call.threshold_s;
        if let Some(score) = call.survey_score {
            self.survey_sum += u64::from(score);
            self.survey_count += 1;
        }
        match call.disposition.classify(call.wait_s) {
            Disposition::Answered => {
                self.answered += 1;
                self.answered_wait_s += call.wait_s;
                self.handle_s += call.handle_s;
                if call.wait_s <= call.threshold_s {
                    self.answered_within_threshold += 1;
                }
                if call.transferred {
                    self.transferred += 1;
                }
            }
            Disposition::Abandoned => self.abandoned += 1,
            Disposition::AbandonedShort => self.abandoned_short += 1,
            _ => {}
        }
    }

    /// Adds another cell's counts to this one.
    pub fn merge(&mut self, other: &Figures) {
        self.offered += other.offered;
        self.answered += other.answered;
        self.abandoned += other.abandoned;
        self.abandoned_short += other.abandoned_short;
        self.answered_within_threshold += other.answered_within_threshold;
        self.transferred += other.transferred;
        self.answered_wait_s += other.answered_wait_s;
        self.handle_s += other.handle_s;
        self.longest_wait_s = self.longest_wait_s.max(other.longest_wait_s);
        self.survey_sum += other.survey_sum;
        self.survey_count += other.survey_count;
        if other.offered > 0 {
            self.threshold_s = other.threshold_s;
        }
    }

    /// Offered minus short abandons: the denominator of the rates.
    pub fn base(&self) -> u64 {
        self.offered.saturating_sub(self.abandoned_short)
    }

    /// answered / base.
    pub fn answer_rate(&self) -> Option<f64> {
        ratio(self.answered, self.base())
    }

    /// abandoned (≥ 5 s) / base.
    pub fn abandon_rate(&self) -> Option<f64> {
        ratio(self.abandoned, self.base())
    }

    /// answered within threshold / base.
    pub fn service_level(&self) -> Option<f64> {
        ratio(self.answered_within_threshold, self.base())
    }

    /// Mean wait of answered calls, seconds.
    pub fn asa_s(&self) -> Option<f64> {
        mean(self.answered_wait_s, self.answered)
    }

    /// Mean talk + hold + wrap-up of answered calls, seconds.
    pub fn aht_s(&self) -> Option<f64> {
        mean(self.handle_s, self.answered)
    }

    /// Transferred / answered.
    pub fn transfer_rate(&self) -> Option<f64> {
        ratio(self.transferred, self.answered)
    }

    /// Mean survey score.
    pub fn survey_average(&self) -> Option<f64> {
        mean(self.survey_sum as f64, self.survey_count)
    }

    /// Largest wait, seconds (`None` if nothing was offered).
    pub fn longest_wait(&self) -> Option<f64> {
        (self.offered > 0).then_some(self.longest_wait_s)
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn mean(sum: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(disposition: Disposition, wait_s: f64) -> CallFacts<'static> {
        CallFacts {
            at_unix_s: 0,
            queue: Some("q"),
            agent: None,
            disposition,
            wait_s,
            handle_s: 100.0,
            threshold_s: 20.0,
            transferred: false,
            survey_score: None,
        }
    }

    #[test]
    fn empty_cell_has_no_rates() {
        let figures = Figures::default();
        assert_eq!(figures.answer_rate(), None);
        assert_eq!(figures.service_level(), None);
        assert_eq!(figures.asa_s(), None);
        assert_eq!(figures.survey_average(), None);
        assert_eq!(figures.longest_wait(), None);
    }

    #[test]
    fn abandoned_under_five_seconds_counts_as_short_even_if_recorded_plainly() {
        let mut figures = Figures::default();
        figures.add(&facts(Disposition::Abandoned, 4.0));
        figures.add(&facts(Disposition::Abandoned, 6.0));
        figures.add(&facts(Disposition::AbandonedShort, 1.0));
        assert_eq!((figures.abandoned, figures.abandoned_short), (1, 2));
        assert_eq!(figures.base(), 1);
        assert_eq!(figures.abandon_rate(), Some(1.0));
    }

    #[test]
    fn threshold_is_inclusive() {
        let mut figures = Figures::default();
        figures.add(&facts(Disposition::Answered, 20.0));
        figures.add(&facts(Disposition::Answered, 20.5));
        assert_eq!(figures.answered_within_threshold, 1);
        assert_eq!(figures.service_level(), Some(0.5));
    }

    #[test]
    fn merge_equals_adding_everything_to_one_cell() {
        let calls = [
            facts(Disposition::Answered, 3.0),
            facts(Disposition::Abandoned, 30.0),
            facts(Disposition::Overflowed, 90.0),
            facts(Disposition::Answered, 25.0),
        ];
        let mut one = Figures::default();
        calls.iter().for_each(|c| one.add(c));
        let (mut left, mut right) = (Figures::default(), Figures::default());
        calls[..2].iter().for_each(|c| left.add(c));
        calls[2..].iter().for_each(|c| right.add(c));
        left.merge(&right);
        assert_eq!(left, one);
    }
}
