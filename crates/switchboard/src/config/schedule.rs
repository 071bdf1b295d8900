//! The `[[schedule]]` entries: business hours in a time zone, with holidays.

use std::collections::BTreeSet;

use super::diagnostics::Diagnostics;
use super::model::ScheduleConfig;
use super::names::Declared;
use super::reader::{Field, TableReader};
use crate::ivr::schedule::{parse_date, time_zone, OpenHours, Schedule};

const KEYS: &[&str] = &["name", "time_zone", "open", "holidays"];

/// Reads every `[[schedule]]`. Also returns the declared names, for `ivr.schedule`.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> (Option<Vec<ScheduleConfig>>, Declared<String>) {
    let mut names = Declared::new("schedule");
    let schedules = root.or(d, "schedule", Vec::new(), |d, field| {
        field.list(d, |d, element| schedule(d, element, &mut names))
    });
    (schedules, names)
}

fn schedule(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    names: &mut Declared<String>,
) -> Option<ScheduleConfig> {
    let table = field.table(d, KEYS)?;
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        names.declare(d, name.clone(), &name, field.path());
        Some(name)
    });
    let zone = table.required(d, "time_zone", |d, field| field.parsed(d, time_zone));
    let open = table.required(d, "open", |d, field| {
        field.list(d, |d, element| element.parsed(d, OpenHours::parse))
    });
    let holidays = table.or(d, "holidays", Vec::new(), |d, field| {
        field.list(d, |d, element| element.parsed(d, parse_date))
    });
    Some(ScheduleConfig {
        name: name?,
        schedule: Schedule {
            time_zone: zone?,
            open: open?,
            holidays: holidays?.into_iter().collect::<BTreeSet<_>>(),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{error_lines, valid};

    #[test]
    fn a_schedule_reads_hours_zone_and_holidays() {
        let config = valid("[[schedule]]\nname = \"office\"\ntime_zone = \"Asia/Shanghai\"\nopen = [\"mon-fri 09:00-18:00\", \"sat 10:00-14:00\"]\nholidays = [\"2026-10-01\", \"2026-12-25\"]\n");
        let office = &config.schedules[0];
        assert_eq!(office.name, "office");
        assert_eq!(office.schedule.open.len(), 2);
        assert_eq!(office.schedule.holidays.len(), 2);
        assert_eq!(office.schedule.time_zone.iana_name(), Some("Asia/Shanghai"));
        // Monday 2026-09-28 10:00 in Shanghai (02:00 UTC).
        assert!(office.schedule.is_open(1_790_560_800));
    }

    #[test]
    fn bad_zones_hours_dates_and_duplicates_name_their_field() {
        let text = "[[schedule]]\nname = \"a\"\ntime_zone = \"Mars/Base\"\nopen = [\"mon-fri 9-18\", \"sun 10:00-12:00\"]\nholidays = [\"2026-13-01\"]\n[[schedule]]\nname = \"a\"\nopen = []\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:3:13: schedule[0].time_zone: unknown time zone \"Mars/Base\": expected an IANA name such as \"Europe/Paris\" or \"UTC\"",
                "t.toml:4:9: schedule[0].open[0]: invalid time \"9\": expected HH:MM from 00:00 to 24:00",
                "t.toml:5:13: schedule[0].holidays[0]: invalid date \"2026-13-01\": expected YYYY-MM-DD such as \"2026-12-25\"",
                "t.toml:6:1: schedule[1].time_zone: missing required key `time_zone`",
                "t.toml:7:8: schedule[1].name: duplicate schedule `a` (first defined at schedule[0].name, line 2)",
            ]
        );
    }
}
