//! The calling window on each customer's own clock. A campaign contact may carry an IANA time
//! zone (its row's `timezone` column, else the campaign's `timezone`); the hours of the queue's
//! `callback_schedule` are then read on that zone's clocks, so "mon-fri 09:00-18:00" means nine
//! to six where the customer is. A contact without a zone keeps the schedule's own zone.
//!
//! The dialler asks for every due contact each time an agent may be free, so each zone's window
//! is computed once and kept until it next opens or closes: a look-up per contact, not a scan
//! of the schedule.

use super::super::callback::window::{self, Window};
use crate::ivr::schedule::{self, Schedule};
use jiff::tz::TimeZone;
use std::borrow::Cow;
use std::collections::HashMap;

/// A window that never changes within the scan horizon is looked at again after this long,
/// so a contact list is never decided once for ever.
const UNCHANGING_RECHECK_S: i64 = 3600;

/// The zone named `name` in the bundled tz database (`None` when unknown).
pub fn zone(name: &str) -> Option<TimeZone> {
    schedule::time_zone(name).ok()
}

/// `schedule` read on `zone`'s clocks (its own zone when `None`). Holidays are the customer's
/// local dates too.
pub fn in_zone<'a>(schedule: &'a Schedule, zone: Option<&TimeZone>) -> Cow<'a, Schedule> {
    match zone {
        Some(zone) if *zone != schedule.time_zone => Cow::Owned(Schedule {
            time_zone: zone.clone(),
            ..schedule.clone()
        }),
        _ => Cow::Borrowed(schedule),
    }
}

/// The window of `schedule` at `unix` on the clocks of the zone named `zone` (the schedule's own
/// zone when `None` or unknown).
pub fn at(schedule: &Schedule, zone: Option<&str>, unix: i64) -> Window {
    let zone = zone.and_then(self::zone);
    window::at(&in_zone(schedule, zone.as_ref()), unix)
}

/// A window known to hold from `from` until `until` (Unix seconds, `until` excluded), for the
/// schedule it was computed from.
#[derive(Debug)]
struct Known {
    schedule: Schedule,
    window: Window,
    from: i64,
    until: i64,
}

/// Windows per (schedule name, zone name), each kept while it holds.
#[derive(Debug, Default)]
pub struct ZoneWindows {
    /// By schedule name, then by zone name ("" for the schedule's own zone).
    known: HashMap<String, HashMap<String, Known>>,
}

impl ZoneWindows {
    /// The window of the schedule `name` at `unix` on the clocks of `zone`.
    pub fn at(&mut self, name: &str, schedule: &Schedule, zone: Option<&str>, unix: i64) -> Window {
        let zone_key = zone.unwrap_or_default();
        let held = self
            .known
            .get(name)
            .and_then(|zones| zones.get(zone_key))
            // A reload may have changed the hours under the same name.
            .filter(|k| k.from <= unix && unix < k.until && k.schedule == *schedule);
        if let Some(known) = held {
            return known.window;
        }
        let window = at(schedule, zone, unix);
        let until = match window {
            Window::Open {
                closes_at: Some(change),
            }
            | Window::Closed {
                opens_at: Some(change),
            } => change,
            Window::Open { closes_at: None } | Window::Closed { opens_at: None } => {
                unix.saturating_add(UNCHANGING_RECHECK_S)
            }
        };
        self.known.entry(name.to_owned()).or_default().insert(
            zone_key.to_owned(),
            Known {
                schedule: schedule.clone(),
                window,
                from: unix,
                until,
            },
        );
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::schedule::{parse_date, OpenHours};
    use jiff::Timestamp;

    /// The office hours of a queue whose schedule is kept in UTC.
    fn office(holidays: &[&str]) -> Schedule {
        Schedule {
            time_zone: TimeZone::UTC,
            open: vec![OpenHours::parse("mon-fri 09:00-18:00").expect("valid hours")],
            holidays: holidays
                .iter()
                .map(|d| parse_date(d).expect("valid date"))
                .collect(),
        }
    }

    fn utc(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .expect("valid instant")
            .as_second()
    }

    #[test]
    fn the_same_instant_is_inside_the_window_in_shanghai_and_outside_in_new_york() {
        // Tuesday 2026-03-10 02:00 UTC: 10:00 in Shanghai, Monday 22:00 in New York.
        let instant = utc("2026-03-10T02:00:00Z");
        let office = office(&[]);
        assert_eq!(
            at(&office, Some("Asia/Shanghai"), instant),
            Window::Open {
                closes_at: Some(utc("2026-03-10T10:00:00Z"))
            },
            "18:00 in Shanghai is 10:00 UTC"
        );
        assert_eq!(
            at(&office, Some("America/New_York"), instant),
            Window::Closed {
                // 09:00 EDT (UTC-4: the US changed on Sunday 2026-03-08).
                opens_at: Some(utc("2026-03-10T13:00:00Z"))
            }
        );
        assert_eq!(
            at(&office, None, instant),
            Window::Closed {
                opens_at: Some(utc("2026-03-10T09:00:00Z"))
            },
            "no zone: the schedule's own (UTC)"
        );
    }

    #[test]
    fn the_window_follows_the_customers_clock_across_a_dst_change() {
        let office = office(&[]);
        // Friday 2026-03-06, before the US change: 09:00 EST is 14:00 UTC.
        assert_eq!(
            at(
                &office,
                Some("America/New_York"),
                utc("2026-03-06T13:30:00Z")
            ),
            Window::Closed {
                opens_at: Some(utc("2026-03-06T14:00:00Z"))
            }
        );
        // Friday evening: the next opening is Monday 09:00, now EDT: 13:00 UTC.
        assert_eq!(
            at(
                &office,
                Some("America/New_York"),
                utc("2026-03-06T23:30:00Z")
            ),
            Window::Closed {
                opens_at: Some(utc("2026-03-09T13:00:00Z"))
            }
        );
        // Europe changes on Sunday 2026-03-29: Friday 18:00 CET is 17:00 UTC, Monday 09:00
        // CEST is 07:00 UTC.
        assert_eq!(
            at(&office, Some("Europe/Paris"), utc("2026-03-27T16:00:00Z")),
            Window::Open {
                closes_at: Some(utc("2026-03-27T17:00:00Z"))
            }
        );
        assert_eq!(
            at(&office, Some("Europe/Paris"), utc("2026-03-27T17:00:00Z")),
            Window::Closed {
                opens_at: Some(utc("2026-03-30T07:00:00Z"))
            }
        );
    }

    #[test]
    fn the_next_opening_skips_the_weekend_and_the_customers_holidays() {
        // Saturday 2026-03-14 03:00 UTC is Saturday 11:00 in Shanghai: closed until Monday 09:00
        // (01:00 UTC), and Monday 16th is a holiday, so Tuesday.
        let office = office(&["2026-03-16"]);
        assert_eq!(
            at(&office, Some("Asia/Shanghai"), utc("2026-03-14T03:00:00Z")),
            Window::Closed {
                opens_at: Some(utc("2026-03-17T01:00:00Z"))
            }
        );
    }

    #[test]
    fn an_unknown_zone_falls_back_to_the_schedules_own() {
        let office = office(&[]);
        let instant = utc("2026-03-10T12:00:00Z");
        assert_eq!(
            at(&office, Some("Mars/Olympus"), instant),
            at(&office, None, instant)
        );
        assert!(zone("Mars/Olympus").is_none());
        assert!(zone("America/New_York").is_some());
    }

    #[test]
    fn a_kept_window_is_recomputed_when_it_changes_or_the_hours_do() {
        let mut windows = ZoneWindows::default();
        let office = office(&[]);
        let morning = utc("2026-03-10T02:00:00Z");
        let open = windows.at("office", &office, Some("Asia/Shanghai"), morning);
        assert!(matches!(open, Window::Open { .. }));
        // Still the kept window an hour later.
        assert_eq!(
            windows.at("office", &office, Some("Asia/Shanghai"), morning + 3600),
            open
        );
        // At 18:00 Shanghai it closed.
        assert!(matches!(
            windows.at(
                "office",
                &office,
                Some("Asia/Shanghai"),
                utc("2026-03-10T10:00:00Z")
            ),
            Window::Closed { .. }
        ));
        // New hours under the same name (a reload) are not answered from the old ones.
        let late = Schedule {
            open: vec![OpenHours::parse("mon-fri 12:00-20:00").expect("valid hours")],
            ..office.clone()
        };
        assert!(matches!(
            windows.at("office", &late, Some("Asia/Shanghai"), morning),
            Window::Closed { .. }
        ));
    }
}
