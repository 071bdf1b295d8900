//! Business hours: weekly opening ranges in a time zone, with closed-all-day holidays.
//!
//! Pure and clock-free: call control passes the wall-clock time in. The instant is converted to
//! local civil time in the schedule's zone before any comparison, so daylight-saving changes
//! need no special casing: "09:00-18:00" means nine to six on the clocks of that zone, whatever
//! its UTC offset is that day.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Minutes in a day: the end of a range may be `24:00`.
const MINUTES_PER_DAY: u16 = 24 * 60;

/// Day names as written in the configuration, Monday first.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A set of weekdays (bit 0 = Monday ... bit 6 = Sunday).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Weekdays(u8);

impl Weekdays {
    /// Every day of the week.
    pub const ALL: Weekdays = Weekdays(0b111_1111);

    /// Whether the day `monday_zero` (0 = Monday ... 6 = Sunday) is in the set.
    pub fn contains(self, monday_zero: u8) -> bool {
        monday_zero < 7 && self.0 & (1 << monday_zero) != 0
    }

    fn insert(&mut self, monday_zero: u8) {
        self.0 |= 1 << monday_zero;
    }

    /// Parses `mon-fri`, `sat`, `mon,wed,fri-sun` (ranges may wrap: `fri-mon`).
    pub fn parse(text: &str) -> Result<Weekdays, String> {
        let mut days = Weekdays::default();
        for part in text.split(',') {
            let (first, last) = match part.split_once('-') {
                Some((first, last)) => (day_index(first)?, day_index(last)?),
                None => {
                    let day = day_index(part)?;
                    (day, day)
                }
            };
            let mut day = first;
            loop {
                days.insert(day);
                if day == last {
                    break;
                }
                day = (day + 1) % 7;
            }
        }
        Ok(days)
    }
}

impl fmt::Debug for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7u8)
            .filter(|&day| self.contains(day))
            .filter_map(|day| DAY_NAMES.get(usize::from(day)).copied())
            .collect();
        write!(f, "Weekdays({})", names.join(","))
    }
}

fn day_index(name: &str) -> Result<u8, String> {
    let name = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|day| *day == name)
        .and_then(|index| u8::try_from(index).ok())
        .ok_or_else(|| {
            format!(
                "unknown day {name:?}: expected one of {}",
                DAY_NAMES.join(", ")
            )
        })
}

/// One opening range: on these days, from `start` (inclusive) to `end` (exclusive), in
/// minutes since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenHours {
    /// Days the range applies to.
    pub days: Weekdays,
    /// Opening time, minutes after local midnight (0..1440).
    pub start_minute: u16,
    /// Closing time, minutes after local midnight (start_minute < end_minute <= 1440).
    pub end_minute: u16,
}

impl OpenHours {
    /// Parses `"mon-fri 09:00-18:00"`. A range ends the same day (`24:00` is midnight at the
    /// end of the day); one that would cross midnight must be split in two, so holidays and
    /// weekdays always refer to a single calendar day.
    pub fn parse(text: &str) -> Result<OpenHours, String> {
        const EXPECTED: &str = "expected DAYS HH:MM-HH:MM such as \"mon-fri 09:00-18:00\"";
        let mut words = text.split_whitespace();
        let (Some(days), Some(times), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("invalid opening hours {text:?}: {EXPECTED}"));
        };
        let days = Weekdays::parse(days)?;
        let Some((start, end)) = times.split_once('-') else {
            return Err(format!("invalid opening hours {text:?}: {EXPECTED}"));
        };
        let start_minute = parse_clock(start)?;
        let end_minute = parse_clock(end)?;
        if start_minute >= end_minute {
            return Err(format!(
                "{times:?} must end after it starts; split a range crossing midnight in two (\"... 22:00-24:00\" and \"... 00:00-06:00\")"
            ));
        }
        Ok(OpenHours {
            days,
            start_minute,
            end_minute,
        })
    }

    fn contains(&self, weekday: u8, minute: u16) -> bool {
        self.days.contains(weekday) && (self.start_minute..self.end_minute).contains(&minute)
    }
}

/// `HH:MM`, 00:00 to 24:00.
fn parse_clock(text: &str) -> Result<u16, String> {
    let invalid = || format!("invalid time {text:?}: expected HH:MM from 00:00 to 24:00");
    let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid());
    }
    let hours: u16 = hours.parse().map_err(|_| invalid())?;
    let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
    let total = hours * 60 + minutes;
    if hours > 24 || minutes > 59 || total > MINUTES_PER_DAY {
        return Err(invalid());
    }
    Ok(total)
}

/// Looks up an IANA time zone name (`Europe/Paris`, `UTC`) in the bundled tz database.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone {name:?}: expected an IANA name such as \"Europe/Paris\" or \"UTC\""
        )
    })
}

/// Parses a holiday date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .map_err(|_| format!("invalid date {text:?}: expected YYYY-MM-DD such as \"2026-12-25\""))
}

/// Weekly opening hours in a time zone, with holidays closed all day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The zone the hours and holidays are local to.
    pub time_zone: TimeZone,
    /// Opening ranges; the schedule is open when any of them contains the local time.
    pub open: Vec<OpenHours>,
    /// Local dates closed all day, whatever `open` says.
    pub holidays: BTreeSet<Date>,
}

impl Schedule {
    /// Whether the schedule is open at `at_unix_seconds` (seconds since 1970-01-01 UTC).
    /// Instants outside the range the tz database can represent count as closed.
    pub fn is_open(&self, at_unix_seconds: i64) -> bool {
        let Ok(timestamp) = Timestamp::from_second(at_unix_seconds) else {
            return false;
        };
        let local = self.time_zone.to_datetime(timestamp);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let weekday = local.weekday().to_monday_zero_offset();
        let Ok(weekday) = u8::try_from(weekday) else {
            return false;
        };
        let minute = local.hour().unsigned_abs() as u16 * 60 + local.minute().unsigned_abs() as u16;
        self.open
            .iter()
            .any(|hours| hours.contains(weekday, minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(zone: &str, open: &[&str], holidays: &[&str]) -> Schedule {
        Schedule {
            time_zone: time_zone(zone).expect("test zone exists"),
            open: open
                .iter()
                .map(|text| OpenHours::parse(text).expect("test hours are valid"))
                .collect(),
            holidays: holidays
                .iter()
                .map(|text| parse_date(text).expect("test date is valid"))
                .collect(),
        }
    }

    /// Seconds since the epoch of a UTC wall-clock time.
    fn utc(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .expect("test timestamp is valid")
            .as_second()
    }

    #[test]
    fn weekdays_parse_lists_ranges_and_wraps() {
        assert_eq!(Weekdays::parse("mon-fri"), Ok(Weekdays(0b001_1111)));
        assert_eq!(Weekdays::parse("sat,sun"), Ok(Weekdays(0b110_0000)));
        assert_eq!(Weekdays::parse("fri-mon"), Ok(Weekdays(0b111_0001)));
        assert_eq!(Weekdays::parse("mon,wed"), Ok(Weekdays(0b000_0101)));
        assert_eq!(Weekdays::parse("mon-sun"), Ok(Weekdays::ALL));
        assert!(Weekdays::parse("monday").is_err());
        assert!(Weekdays::parse("mon-").is_err());
        assert!(Weekdays::parse("").is_err());
    }

    #[test]
    fn opening_hours_parse_or_explain() {
        let hours = OpenHours::parse("mon,wed 08:00-12:30").expect("valid");
        assert_eq!(hours.start_minute, 8 * 60);
        assert_eq!(hours.end_minute, 12 * 60 + 30);
        assert_eq!(
            OpenHours::parse("mon-sun 00:00-24:00")
                .expect("valid")
                .end_minute,
            1440
        );
        for (text, needle) in [
            ("mon-fri", "expected DAYS HH:MM-HH:MM"),
            ("mon-fri 9:00-18:00", "invalid time \"9:00\""),
            ("mon-fri 09:00-24:01", "invalid time \"24:01\""),
            ("mon-fri 09:60-10:00", "invalid time"),
            ("mon-fri 22:00-06:00", "split a range crossing midnight"),
            ("mon-fri 09:00-09:00", "must end after it starts"),
            ("xyz 09:00-18:00", "unknown day \"xyz\""),
            ("mon-fri 09:00-18:00 extra", "expected DAYS"),
        ] {
            let error = OpenHours::parse(text).expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn zones_and_dates_are_checked() {
        assert!(time_zone("Asia/Shanghai").is_ok());
        assert!(time_zone("UTC").is_ok());
        assert!(time_zone("Mars/Olympus")
            .expect_err("not a zone")
            .contains("unknown time zone"));
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-12-25").is_ok());
    }

    #[test]
    fn office_hours_in_shanghai() {
        let office = schedule(
            "Asia/Shanghai",
            &["mon-fri 09:00-18:00", "sat 10:00-14:00"],
            &["2026-10-01"],
        );
        // Shanghai is UTC+8 all year. 2026-09-28 is a Monday.
        assert!(!office.is_open(utc("2026-09-28T00:59:59Z")), "08:59 local");
        assert!(office.is_open(utc("2026-09-28T01:00:00Z")), "09:00 local");
        assert!(office.is_open(utc("2026-09-28T09:59:59Z")), "17:59 local");
        assert!(!office.is_open(utc("2026-09-28T10:00:00Z")), "18:00 local");
        // Saturday 2026-10-03 11:00 local is open; Sunday is not.
        assert!(office.is_open(utc("2026-10-03T03:00:00Z")));
        assert!(!office.is_open(utc("2026-10-04T03:00:00Z")));
    }

    #[test]
    fn a_holiday_is_closed_all_day_in_local_time() {
        let office = schedule("Asia/Shanghai", &["mon-fri 09:00-18:00"], &["2026-10-01"]);
        // Thursday 2026-10-01, noon local: a holiday.
        assert!(!office.is_open(utc("2026-10-01T04:00:00Z")));
        // Friday 2026-10-02 09:30 local is 2026-10-02T01:30Z; but 2026-10-01T23:30Z is already
        // 07:30 on the 2nd locally: the holiday is the local date, not the UTC one.
        assert!(office.is_open(utc("2026-10-02T01:30:00Z")));
        // The day before the holiday is a normal Wednesday.
        assert!(office.is_open(utc("2026-09-30T04:00:00Z")));
    }

    #[test]
    fn hours_follow_local_clocks_across_a_dst_change() {
        let paris = schedule("Europe/Paris", &["mon-sun 09:00-10:00"], &[]);
        // Before the change (2026-03-29, 02:00 -> 03:00), Paris is UTC+1: 09:00 local = 08:00Z.
        assert!(paris.is_open(utc("2026-03-28T08:00:00Z")));
        assert!(!paris.is_open(utc("2026-03-28T07:59:59Z")));
        // After it, UTC+2: 09:00 local = 07:00Z, and 08:00Z is 10:00 local, closed.
        assert!(paris.is_open(utc("2026-03-29T07:00:00Z")));
        assert!(!paris.is_open(utc("2026-03-29T08:00:00Z")));
        // And back in autumn (2026-10-25, 03:00 -> 02:00): UTC+1 again.
        assert!(paris.is_open(utc("2026-10-25T08:00:00Z")));
        assert!(!paris.is_open(utc("2026-10-25T07:00:00Z")));
    }

    #[test]
    fn the_skipped_hour_never_matches_and_the_repeated_one_matches_twice() {
        // 02:00-03:00 local does not exist on 2026-03-29 in Paris and exists twice on 2026-10-25.
        let night = schedule("Europe/Paris", &["sun 02:00-03:00"], &[]);
        let march: Vec<i64> = (0..24 * 4)
            .map(|quarter| utc("2026-03-28T22:00:00Z") + quarter * 900)
            .collect();
        assert!(march.iter().all(|&t| !night.is_open(t)));
        let october_open = (0..24 * 4)
            .map(|quarter| utc("2026-10-24T22:00:00Z") + quarter * 900)
            .filter(|&t| night.is_open(t))
            .count();
        assert_eq!(october_open, 8, "two hours of quarter-hour samples");
    }

    #[test]
    fn out_of_range_instants_are_closed() {
        let always = schedule("UTC", &["mon-sun 00:00-24:00"], &[]);
        assert!(always.is_open(0));
        assert!(!always.is_open(i64::MAX));
        assert!(!always.is_open(i64::MIN));
    }

    proptest! {
        #[test]
        fn an_always_open_schedule_is_open_except_on_holidays(
            at in 0i64..4_102_444_800, // 1970 .. 2100
            zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe"]),
        ) {
            let always = schedule(zone, &["mon-sun 00:00-24:00"], &[]);
            prop_assert!(always.is_open(at));
            let mut holiday = always.clone();
            let local = holiday.time_zone.to_datetime(Timestamp::from_second(at).expect("in range"));
            holiday.holidays.insert(local.date());
            prop_assert!(!holiday.is_open(at));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = OpenHours::parse(&text);
            let _ = Weekdays::parse(&text);
            let _ = parse_date(&text);
            let _ = time_zone(&text);
        }

        #[test]
        fn open_matches_a_brute_force_reading_of_the_ranges(
            at in 0i64..4_102_444_800,
            start in 0u16..1440,
            length in 1u16..1440,
            days in 1u8..128,
        ) {
            let end = (start + length).min(1440);
            let hours = OpenHours { days: Weekdays(days), start_minute: start, end_minute: end };
            let zone = time_zone("America/New_York").expect("zone exists");
            let local = zone.to_datetime(Timestamp::from_second(at).expect("in range"));
            let minute = local.hour() as u16 * 60 + local.minute() as u16;
            let day = local.weekday().to_monday_zero_offset() as u8;
            let expected = days & (1 << day) != 0 && minute >= start && minute < end;
            let schedule = Schedule { time_zone: zone, open: vec![hours], holidays: BTreeSet::new() };
            prop_assert_eq!(schedule.is_open(at), expected);
        }
    }
}
