//! A queue's calling window for callbacks and campaign contacts (`callback_schedule`): whether
//! it is open now and when that next changes, so a callback can wait for the opening and be
//! withdrawn at the closing by a timer, not by polling.

use crate::ivr::schedule::Schedule;

/// How far ahead a change is looked for: a window closed for longer never opens.
const HORIZON_S: i64 = 8 * 24 * 3600;

/// The schedule's granularity: opening hours are whole minutes.
const STEP_S: i64 = 60;

/// The window at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Open; it closes at this Unix second (`None`: not within the horizon).
    Open { closes_at: Option<i64> },
    /// Closed; it opens at this Unix second (`None`: not within the horizon).
    Closed { opens_at: Option<i64> },
}

/// The window of `schedule` at `unix` (seconds since the epoch).
pub fn at(schedule: &Schedule, unix: i64) -> Window {
    let open = schedule.is_open(unix);
    // The next whole minute, then minute by minute: changes happen on minute boundaries.
    let first = unix - unix.rem_euclid(STEP_S) + STEP_S;
    let change = (0..HORIZON_S / STEP_S)
        .map(|k| first + k * STEP_S)
        .find(|t| schedule.is_open(*t) != open);
    if open {
        Window::Open { closes_at: change }
    } else {
        Window::Closed { opens_at: change }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::schedule::OpenHours;

    fn schedule(open: &[&str]) -> Schedule {
        Schedule {
            time_zone: jiff::tz::TimeZone::UTC,
            open: open
                .iter()
                .map(|text| OpenHours::parse(text).expect("valid hours"))
                .collect(),
            holidays: Default::default(),
        }
    }

    /// 2026-03-09 (a Monday) at `hh:mm` UTC.
    fn monday(hh: i64, mm: i64) -> i64 {
        1_773_014_400 + hh * 3600 + mm * 60
    }

    #[test]
    fn an_open_window_says_when_it_closes_and_a_closed_one_when_it_opens() {
        let office = schedule(&["mon-fri 09:00-18:00"]);
        assert_eq!(
            at(&office, monday(10, 30) + 17),
            Window::Open {
                closes_at: Some(monday(18, 0))
            }
        );
        assert_eq!(
            at(&office, monday(8, 0)),
            Window::Closed {
                opens_at: Some(monday(9, 0))
            }
        );
        // Friday evening: the next opening is Monday morning.
        let friday_evening = monday(19, 0) + 4 * 86_400;
        assert_eq!(
            at(&office, friday_evening),
            Window::Closed {
                opens_at: Some(monday(9, 0) + 7 * 86_400)
            }
        );
    }

    #[test]
    fn a_window_that_never_changes_says_so() {
        assert_eq!(
            at(&schedule(&[]), monday(12, 0)),
            Window::Closed { opens_at: None }
        );
        assert_eq!(
            at(&schedule(&["mon-sun 00:00-24:00"]), monday(12, 0)),
            Window::Open { closes_at: None }
        );
    }
}
