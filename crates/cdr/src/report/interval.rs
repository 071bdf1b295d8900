//! Report intervals and how an instant maps to the interval containing it (UTC).

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// The length of one report row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    /// Quarter hours (`:00`, `:15`, `:30`, `:45`).
    QuarterHour,
    /// Clock hours.
    Hour,
    /// UTC days.
    Day,
    /// ISO weeks, Monday 00:00 UTC to the next Monday.
    Week,
    /// Calendar months.
    Month,
}

/// An interval name that is not one of `15m`, `hour`, `day`, `week`, `month`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown interval {0:?}: expected 15m, hour, day, week or month")]
pub struct UnknownInterval(pub String);

impl FromStr for Interval {
    type Err = UnknownInterval;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "15m" | "15min" | "quarter-hour" => Ok(Interval::QuarterHour),
            "hour" | "1h" | "hourly" => Ok(Interval::Hour),
            "day" | "1d" | "daily" => Ok(Interval::Day),
            "week" | "1w" | "weekly" => Ok(Interval::Week),
            "month" | "monthly" => Ok(Interval::Month),
            _ => Err(UnknownInterval(text.to_string())),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interval::QuarterHour => "15m",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        })
    }
}

const DAY_S: i64 = 86_400;

impl Interval {
    /// Unix time (UTC) of the start of the interval containing `unix_s`.
    pub fn start_of(self, unix_s: i64) -> i64 {
        match self {
            Interval::QuarterHour => unix_s - unix_s.rem_euclid(900),
            Interval::Hour => unix_s - unix_s.rem_euclid(3600),
            Interval::Day => unix_s - unix_s.rem_euclid(DAY_S),
            Interval::Week => {
                let days = unix_s.div_euclid(DAY_S);
                // 1970-01-01 was a Thursday: three days after a Monday.
                let monday = days - (days + 3).rem_euclid(7);
                monday * DAY_S
            }
            Interval::Month => {
                let Ok(at) = OffsetDateTime::from_unix_timestamp(unix_s) else {
                    return unix_s - unix_s.rem_euclid(DAY_S);
                };
                let first = Date::from_calendar_date(at.year(), at.month(), 1)
                    .unwrap_or_else(|_| at.date());
                first.midnight().assume_utc().unix_timestamp()
            }
        }
    }

    /// Unix time (UTC) of the end (exclusive) of the interval starting at `start_s`.
    pub fn end_of(self, start_s: i64) -> i64 {
        match self {
            Interval::QuarterHour => start_s + 900,
            Interval::Hour => start_s + 3600,
            Interval::Day => start_s + DAY_S,
            Interval::Week => start_s + 7 * DAY_S,
            Interval::Month => {
                let Ok(at) = OffsetDateTime::from_unix_timestamp(start_s) else {
                    return start_s + 31 * DAY_S;
                };
                let (year, month) = match at.month() {
                    Month::December => (at.year() + 1, Month::January),
                    month => (at.year(), month.next()),
                };
                Date::from_calendar_date(year, month, 1)
                    .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
                    .unwrap_or(start_s + 31 * DAY_S)
            }
        }
    }

    /// A short human label for the interval starting at `start` (UTC).
    pub fn label(self, start: OffsetDateTime) -> String {
        let at = start.to_offset(UtcOffset::UTC);
        let (y, m, d) = (at.year(), u8::from(at.month()), at.day());
        match self {
            Interval::QuarterHour | Interval::Hour => {
                format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", at.hour(), at.minute())
            }
            Interval::Day => format!("{y:04}-{m:02}-{d:02}"),
            Interval::Week => {
                let (iso_year, week, _) = at.date().to_iso_week_date();
                format!("{iso_year:04}-W{week:02}")
            }
            Interval::Month => format!("{y:04}-{m:02}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn start(interval: Interval, at: OffsetDateTime) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(interval.start_of(at.unix_timestamp())).unwrap()
    }

    #[test]
    fn buckets_start_where_expected() {
        let at = datetime!(2025-03-05 14:52:31 UTC); // a Wednesday
        assert_eq!(
            start(Interval::QuarterHour, at),
            datetime!(2025-03-05 14:45 UTC)
        );
        assert_eq!(start(Interval::Hour, at), datetime!(2025-03-05 14:00 UTC));
        assert_eq!(start(Interval::Day, at), datetime!(2025-03-05 0:00 UTC));
        assert_eq!(start(Interval::Week, at), datetime!(2025-03-03 0:00 UTC));
        assert_eq!(start(Interval::Month, at), datetime!(2025-03-01 0:00 UTC));
    }

    #[test]
    fn weeks_start_on_monday_even_across_years_and_before_1970() {
        // 2025-01-01 is a Wednesday; its ISO week starts Monday 2024-12-30.
        let at = datetime!(2025-01-01 10:00 UTC);
        assert_eq!(start(Interval::Week, at), datetime!(2024-12-30 0:00 UTC));
        // A Monday maps to itself; a Sunday to six days before.
        let monday = datetime!(2025-03-03 0:00 UTC);
        assert_eq!(start(Interval::Week, monday), monday);
        let sunday = datetime!(2025-03-09 23:59:59 UTC);
        assert_eq!(start(Interval::Week, sunday), monday);
        let old = datetime!(1969-12-31 12:00 UTC); // a Wednesday
        assert_eq!(start(Interval::Week, old), datetime!(1969-12-29 0:00 UTC));
    }

    #[test]
    fn month_ends_follow_the_calendar() {
        let feb = datetime!(2024-02-01 0:00 UTC).unix_timestamp();
        assert_eq!(
            Interval::Month.end_of(feb),
            datetime!(2024-03-01 0:00 UTC).unix_timestamp()
        );
        let dec = datetime!(2024-12-01 0:00 UTC).unix_timestamp();
        assert_eq!(
            Interval::Month.end_of(dec),
            datetime!(2025-01-01 0:00 UTC).unix_timestamp()
        );
        assert_eq!(Interval::Week.end_of(0), 7 * 86_400);
    }

    #[test]
    fn names_parse_and_print() {
        for name in ["15m", "hour", "day", "week", "month"] {
            let interval: Interval = name.parse().unwrap();
            assert_eq!(interval.to_string(), name);
        }
        assert_eq!("HOUR".parse::<Interval>(), Ok(Interval::Hour));
        assert!("fortnight".parse::<Interval>().is_err());
    }

    #[test]
    fn labels() {
        let at = datetime!(2025-03-05 14:45 UTC);
        assert_eq!(Interval::QuarterHour.label(at), "2025-03-05 14:45");
        assert_eq!(Interval::Day.label(at), "2025-03-05");
        assert_eq!(
            Interval::Week.label(datetime!(2024-12-30 0:00 UTC)),
            "2025-W01"
        );
        assert_eq!(Interval::Month.label(at), "2025-03");
    }
}
