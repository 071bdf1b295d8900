//! The `[[queue]]` entries: required skills, routing strategy, limits, overflow, expansion,
//! and what waiting callers hear and may do (music on hold, announcements, callback, recording).

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::ivr::plain_name;
use super::model::{
    QueueAnswer, QueueConfig, RecordPolicy, RoutingStrategy, SkillExpansion, SurveyConfig,
    SurveyScale,
};
use super::names::Declared;
use super::path::FieldPath;
use super::reader::{Field, TableReader, ONE_DAY_S};
use super::skills;

const KEYS: &[&str] = &[
    "name",
    "skills",
    "strategy",
    "max_wait_s",
    "max_length",
    "overflow",
    "service_level_s",
    "wrap_up_s",
    "preferred_agent_wait_s",
    "expansion",
    "music_on_hold",
    "announce_every_s",
    "callback_key",
    "callback_retry_s",
    "callback_max_attempts",
    "callback_schedule",
    "record",
    "answer",
    "priority_aging_s",
    "initial_handle_time_s",
    "survey",
    "survey_prompt",
];
const EXPANSION_KEYS: &[&str] = &["after_s", "min_level", "add_skills"];

/// An `overflow = "..."` seen while reading, checked once every queue name is known.
struct OverflowReference {
    queue: Option<String>,
    target: String,
    path: FieldPath,
}

/// Reads every `[[queue]]`. Also returns the declared queue names, for `number.queue`.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
) -> (Option<Vec<QueueConfig>>, Declared<String>) {
    let mut names = Declared::new("queue");
    let mut overflows = Vec::new();
    let queues = root.or(d, "queue", Vec::new(), |d, field| {
        field.list(d, |d, element| {
            queue(d, element, &mut names, &mut overflows)
        })
    });
    for overflow in &overflows {
        if overflow.queue.as_deref() == Some(overflow.target.as_str()) {
            d.error(&overflow.path, "a queue cannot overflow to itself");
        } else {
            names.check_reference(d, &overflow.target, &overflow.path);
        }
    }
    check_overflow_loops(d, &overflows);
    (queues, names)
}

/// Refuses overflow chains that come back to where they started (`a -> b -> a`, or longer):
/// a call would bounce between the queues for ever. Each loop is reported once, at the
/// `overflow` of its first queue in file order.
fn check_overflow_loops(d: &mut Diagnostics<'_>, overflows: &[OverflowReference]) {
    let next = |queue: &str| overflows.iter().find(|o| o.queue.as_deref() == Some(queue));
    let mut reported: Vec<&str> = Vec::new();
    for start in overflows {
        let Some(first) = start.queue.as_deref() else {
            continue;
        };
        if reported.contains(&first) || start.target == first {
            continue;
        }
        let mut chain = vec![first];
        let mut current = start;
        while let Some(following) = next(&current.target) {
            if current.target == first {
                chain.push(first);
                let names = chain.join(" -> ");
                d.error(
                    &start.path,
                    format!("overflow chain loops back: {names}; a call would bounce between these queues for ever"),
                );
                reported.extend(chain.iter().copied());
                break;
            }
            if chain.contains(&current.target.as_str()) {
                // A loop further down that does not include `first`: reported from its own start.
                break;
            }
            chain.push(&current.target);
            current = following;
        }
    }
}

/// Checks that every `callback_schedule` names a `[[schedule]]` (read after the queues).
pub(super) fn check_callback_schedules(
    d: &mut Diagnostics<'_>,
    queues: &[QueueConfig],
    schedules: &Declared<String>,
) {
    for (index, queue) in queues.iter().enumerate() {
        if let Some(name) = &queue.callback_schedule {
            let path = FieldPath::root()
                .key("queue")
                .index(index)
                .key("callback_schedule");
            schedules.check_reference(d, name, &path);
        }
    }
}

/// Refuses `callback_key` on a queue that a `[[number]]` sends calls to directly with
/// `answer = "on-agent"`: those callers hear ringback and are never answered before an agent
/// takes the call, so no key they press reaches Switchboard.
pub(super) fn check_callback_keys(
    d: &mut Diagnostics<'_>,
    queues: &[QueueConfig],
    numbers: &[super::model::NumberConfig],
) {
    for (index, queue) in queues.iter().enumerate() {
        if queue.callback_key.is_none() || queue.answer != QueueAnswer::OnAgent {
            continue;
        }
        let Some(number) = numbers
            .iter()
            .find(|n| n.queue() == Some(queue.name.as_str()))
        else {
            continue;
        };
        d.error(
            &FieldPath::root()
                .key("queue")
                .index(index)
                .key("callback_key"),
            format!(
                "number {} sends calls straight to this queue with answer = \"on-agent\": such callers are not answered, so no key reaches Switchboard; set answer = \"on-queue\" (or reach the queue through an IVR)",
                number.did
            ),
        );
    }
}

fn queue(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    names: &mut Declared<String>,
    overflows: &mut Vec<OverflowReference>,
) -> Option<QueueConfig> {
    let table = field.table(d, KEYS)?;
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        names.declare(d, name.clone(), &name, field.path());
        Some(name)
    });
    let skills = table.required(d, "skills", |d, field| {
        let skills = skills::read(d, field)?;
        if skills.is_empty() {
            d.error(field.path(), "a queue needs at least one required skill");
            return None;
        }
        Some(skills)
    });
    let strategy = table.or(d, "strategy", RoutingStrategy::LongestIdle, |d, field| {
        field.parsed(d, parse_strategy)
    });
    let max_wait = table.optional(d, "max_wait_s", |d, field| field.seconds(d, 1..=ONE_DAY_S));
    let max_length = table.optional(d, "max_length", |d, field| field.integer(d, 1..=1_000_000));
    let overflow = table.optional(d, "overflow", |d, field| {
        let target = field.identifier(d)?;
        overflows.push(OverflowReference {
            queue: name.clone(),
            target: target.clone(),
            path: field.path().clone(),
        });
        Some(target)
    });
    let service_level = table.or(d, "service_level_s", Duration::from_secs(20), |d, field| {
        field.seconds(d, 1..=ONE_DAY_S)
    });
    let wrap_up = table.or(d, "wrap_up_s", Duration::from_secs(10), |d, field| {
        field.seconds(d, 0..=ONE_DAY_S)
    });
    let preferred_agent_wait = table.or(
        d,
        "preferred_agent_wait_s",
        Duration::from_secs(15),
        |d, field| field.seconds(d, 0..=ONE_DAY_S),
    );
    let expansions = table.or(d, "expansion", Vec::new(), expansions);
    let music_on_hold = table.or(d, "music_on_hold", "moh".to_owned(), |d, field| {
        field.parsed(d, |text| plain_name("prompt", text))
    });
    let announce_every = table.or(
        d,
        "announce_every_s",
        Some(Duration::from_secs(30)),
        |d, field| {
            let every = field.seconds(d, 0..=3600)?;
            Some((!every.is_zero()).then_some(every))
        },
    );
    let callback_key = table.optional(d, "callback_key", |d, field| {
        field.parsed(d, parse_dtmf_key)
    });
    let callback_retry = table.or(
        d,
        "callback_retry_s",
        Duration::from_secs(300),
        |d, field| field.seconds(d, 1..=ONE_DAY_S),
    );
    let callback_max_attempts = table.or(d, "callback_max_attempts", 3, |d, field| {
        field.integer(d, 1..=20)
    });
    let callback_schedule = table.optional(d, "callback_schedule", |d, field| field.identifier(d));
    let record = table.or(d, "record", RecordPolicy::None, |d, field| {
        field.parsed(d, parse_record)
    });
    // Aging: one priority point per this much waiting, so low priorities do not starve.
    let priority_aging = table.or(
        d,
        "priority_aging_s",
        Some(Duration::from_secs(30)),
        |d, field| {
            let every = field.seconds(d, 0..=ONE_DAY_S)?;
            Some((!every.is_zero()).then_some(every))
        },
    );
    let initial_handle_time = table.or(
        d,
        "initial_handle_time_s",
        Duration::from_secs(180),
        |d, field| field.seconds(d, 1..=ONE_DAY_S),
    );
    let answer = table.or(d, "answer", QueueAnswer::OnAgent, |d, field| {
        field.parsed(d, |text| match text {
            "on-queue" => Ok(QueueAnswer::OnQueue),
            "on-agent" => Ok(QueueAnswer::OnAgent),
            _ => Err(format!(
                "unknown answer mode {text:?}; expected \"on-queue\" or \"on-agent\""
            )),
        })
    });
    let survey_scale = table.optional(d, "survey", |d, field| {
        field.parsed(d, |text| match text {
            "1-10" => Ok(SurveyScale::OneToTen),
            "1-5" => Ok(SurveyScale::OneToFive),
            _ => Err(format!(
                "unknown survey scale {text:?}; expected \"1-10\" or \"1-5\""
            )),
        })
    });
    let survey_prompt = table.or(d, "survey_prompt", "survey".to_owned(), |d, field| {
        field.parsed(d, |text| plain_name("prompt", text))
    });
    let survey = match (survey_scale?, survey_prompt?) {
        (Some(scale), prompt) => Some(SurveyConfig { scale, prompt }),
        (None, _) => None,
    };

    Some(QueueConfig {
        name: name?,
        skills: skills?,
        strategy: strategy?,
        max_wait: max_wait?,
        max_length: max_length?,
        overflow: overflow?,
        service_level: service_level?,
        wrap_up: wrap_up?,
        preferred_agent_wait: preferred_agent_wait?,
        expansions: expansions?,
        music_on_hold: music_on_hold?,
        announce_every: announce_every?,
        callback_key: callback_key?,
        callback_retry: callback_retry?,
        callback_max_attempts: callback_max_attempts?,
        callback_schedule: callback_schedule?,
        record: record?,
        answer: answer?,
        priority_aging: priority_aging?,
        initial_handle_time: initial_handle_time?,
        survey,
    })
}

fn parse_dtmf_key(text: &str) -> Result<char, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(key), None) if "0123456789*#ABCD".contains(key) => Ok(key),
        _ => Err(format!(
            "{text:?} is not a key: expected one of 0-9, *, #, A-D"
        )),
    }
}

/// `none`, `all` or a percentage `NN%`; `0%` and `100%` are read as `none` and `all`.
fn parse_record(text: &str) -> Result<RecordPolicy, String> {
    let expected = || {
        format!("invalid record policy {text:?}: expected \"none\", \"all\" or a percentage such as \"25%\"")
    };
    match text {
        "none" => Ok(RecordPolicy::None),
        "all" => Ok(RecordPolicy::All),
        _ => {
            let percent: u8 = text
                .strip_suffix('%')
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse().ok())
                .ok_or_else(expected)?;
            match percent {
                0 => Ok(RecordPolicy::None),
                100 => Ok(RecordPolicy::All),
                1..=99 => Ok(RecordPolicy::Percent(percent)),
                _ => Err(format!("{text:?} is over 100%")),
            }
        }
    }
}

fn parse_strategy(text: &str) -> Result<RoutingStrategy, String> {
    RoutingStrategy::ALL
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, strategy)| strategy)
        .ok_or_else(|| {
            let names: Vec<&str> = RoutingStrategy::ALL.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown strategy {text:?}; expected one of: {}",
                names.join(", ")
            )
        })
}

fn expansions(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Vec<SkillExpansion>> {
    let mut previous: Option<Duration> = None;
    field.list(d, |d, element| {
        let step = expansion(d, element)?;
        // Steps apply cumulatively as the wait grows, so they must be listed in time order.
        if previous.is_some_and(|previous| step.after <= previous) {
            d.error(
                &element.path().key("after_s"),
                "expansion steps must be in increasing after_s order",
            );
        }
        previous = Some(step.after);
        Some(step)
    })
}

fn expansion(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<SkillExpansion> {
    let table = field.table(d, EXPANSION_KEYS)?;
    let after = table.required(d, "after_s", |d, field| field.seconds(d, 1..=ONE_DAY_S));
    let min_level = table.optional(d, "min_level", |d, field| field.skill_level(d));
    let add_skills = table.or(d, "add_skills", Default::default(), skills::read);
    let (min_level, add_skills) = (min_level?, add_skills?);
    if min_level.is_none() && add_skills.is_empty() {
        d.error(
            table.path(),
            "an expansion step must set `min_level` and/or `add_skills`",
        );
        return None;
    }
    Some(SkillExpansion {
        after: after?,
        min_level,
        add_skills,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn survey_scale_and_prompt_are_read_and_bad_scales_named() {
        use crate::config::{SurveyConfig, SurveyScale};
        let base = "[[queue]]\nname = \"q\"\nskills = { s = 1 }\n";
        assert_eq!(crate::config::testing::valid(base).queues[0].survey, None);
        let config = crate::config::testing::valid(&format!("{base}survey = \"1-5\"\n"));
        assert_eq!(
            config.queues[0].survey,
            Some(SurveyConfig {
                scale: SurveyScale::OneToFive,
                prompt: "survey".into()
            })
        );
        let config = crate::config::testing::valid(&format!(
            "{base}survey = \"1-10\"\nsurvey_prompt = \"rate-us\"\n"
        ));
        assert_eq!(
            config.queues[0].survey,
            Some(SurveyConfig {
                scale: SurveyScale::OneToTen,
                prompt: "rate-us".into()
            })
        );
        assert_eq!(
            crate::config::testing::error_lines(&format!("{base}survey = \"0-9\"\n")),
            vec!["t.toml:4:10: queue[0].survey: unknown survey scale \"0-9\"; expected \"1-10\" or \"1-5\""]
        );
    }

    #[test]
    fn survey_keys_give_scores_within_the_scale() {
        use crate::config::SurveyScale;
        let ten = SurveyScale::OneToTen;
        let five = SurveyScale::OneToFive;
        assert_eq!(ten.score('1'), Some(1));
        assert_eq!(ten.score('9'), Some(9));
        assert_eq!(ten.score('0'), Some(10), "0 is 10 on a 1-10 survey");
        assert_eq!(five.score('5'), Some(5));
        assert_eq!(five.score('6'), None);
        assert_eq!(five.score('0'), None);
        for key in ['*', '#', 'A'] {
            assert_eq!(ten.score(key), None);
        }
    }

    use std::time::Duration;

    use crate::config::model::{QueueAnswer, RecordPolicy, RoutingStrategy};
    use crate::config::testing::{error_lines, valid};

    #[test]
    fn skill_levels_must_be_1_to_10() {
        let text = "[[queue]]\nname = \"q\"\nskills = { support = 11, billing = 0 }\n[[queue.expansion]]\nafter_s = 30\nmin_level = 12\nadd_skills = { sales = -1 }\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:3:22: queue[0].skills.support: level 11 out of range 1..=10",
                "t.toml:3:36: queue[0].skills.billing: level 0 out of range 1..=10",
                "t.toml:6:13: queue[0].expansion[0].min_level: level 12 out of range 1..=10",
                "t.toml:7:24: queue[0].expansion[0].add_skills.sales: level -1 out of range 1..=10",
            ]
        );
    }

    #[test]
    fn overflow_must_name_another_queue() {
        let text = "[[queue]]\nname = \"a\"\nskills = { s = 1 }\noverflow = \"a\"\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\noverflow = \"z\"\n[[queue]]\nname = \"c\"\nskills = { s = 1 }\noverflow = \"a\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:4:12: queue[0].overflow: a queue cannot overflow to itself",
                "t.toml:8:12: queue[1].overflow: unknown queue `z` (configured: a, b, c)",
            ]
        );
    }

    #[test]
    fn duplicate_names_and_missing_skills_are_refused() {
        let text = "[[queue]]\nname = \"a\"\nskills = { s = 1 }\n[[queue]]\nname = \"a\"\nskills = {}\n[[queue]]\nname = \"b\"\nstrategy = \"random\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:5:8: queue[1].name: duplicate queue `a` (first defined at queue[0].name, line 2)",
                "t.toml:6:10: queue[1].skills: a queue needs at least one required skill",
                "t.toml:7:1: queue[2].skills: missing required key `skills`",
                "t.toml:9:12: queue[2].strategy: unknown strategy \"random\"; expected one of: longest-idle, most-skilled, round-robin, fewest-calls",
            ]
        );
    }

    #[test]
    fn expansion_steps_are_ordered_and_do_something() {
        let text = "[[queue]]\nname = \"a\"\nskills = { s = 5 }\n[[queue.expansion]]\nafter_s = 60\nmin_level = 3\n[[queue.expansion]]\nafter_s = 30\nmin_level = 1\n[[queue.expansion]]\nafter_s = 90\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:8:11: queue[0].expansion[1].after_s: expansion steps must be in increasing after_s order",
                "t.toml:10:1: queue[0].expansion[2]: an expansion step must set `min_level` and/or `add_skills`",
            ]
        );
    }

    #[test]
    fn optional_limits_and_defaults() {
        let config = valid("[[queue]]\nname = \"a\"\nskills = { s = 5 }\nstrategy = \"fewest-calls\"\nmax_wait_s = 120\nwrap_up_s = 0\n");
        let queue = &config.queues[0];
        assert_eq!(queue.strategy, RoutingStrategy::FewestCalls);
        assert_eq!(queue.max_wait, Some(Duration::from_secs(120)));
        assert_eq!(queue.max_length, None);
        assert_eq!(queue.wrap_up, Duration::ZERO);
        assert_eq!(queue.service_level, Duration::from_secs(20));
        assert_eq!(queue.preferred_agent_wait, Duration::from_secs(15));
        for (name, strategy) in RoutingStrategy::ALL {
            assert_eq!(strategy.name(), name);
        }
    }

    #[test]
    fn overflow_loops_of_any_length_are_refused_once_each() {
        let queue = |name: &str, overflow: &str| {
            format!(
                "[[queue]]\nname = \"{name}\"\nskills = {{ s = 1 }}\noverflow = \"{overflow}\"\n"
            )
        };
        let two = [queue("a", "b"), queue("b", "a")].concat();
        assert_eq!(
            error_lines(&two),
            vec!["t.toml:4:12: queue[0].overflow: overflow chain loops back: a -> b -> a; a call would bounce between these queues for ever"]
        );
        // A chain into a loop is reported at the loop, not at the queue leading into it.
        let three = [
            queue("x", "a"),
            queue("a", "b"),
            queue("b", "c"),
            queue("c", "a"),
        ]
        .concat();
        assert_eq!(
            error_lines(&three),
            vec!["t.toml:8:12: queue[1].overflow: overflow chain loops back: a -> b -> c -> a; a call would bounce between these queues for ever"]
        );
        let chain = [queue("a", "b"), queue("b", "c")].concat()
            + "[[queue]]\nname = \"c\"\nskills = { s = 1 }\n";
        assert_eq!(valid(&chain).queues[0].overflow.as_deref(), Some("b"));
    }

    #[test]
    fn callback_key_is_refused_where_callers_are_not_answered() {
        let text = |answer: &str, target: &str| {
            format!("[[queue]]\nname = \"q\"\nskills = {{ s = 1 }}\ncallback_key = \"*\"\nanswer = \"{answer}\"\n[[ivr]]\nname = \"main\"\n[[ivr.menu]]\nname = \"top\"\nprompt = \"menu\"\nkeys = {{ \"1\" = \"queue:q\" }}\n[[number]]\ndid = \"100\"\n{target}\n")
        };
        assert_eq!(
            error_lines(&text("on-agent", "queue = \"q\"")),
            vec!["t.toml:4:16: queue[0].callback_key: number 100 sends calls straight to this queue with answer = \"on-agent\": such callers are not answered, so no key reaches Switchboard; set answer = \"on-queue\" (or reach the queue through an IVR)"]
        );
        // Answered on queueing: the key reaches Switchboard.
        let on_queue = valid(&text("on-queue", "queue = \"q\""));
        assert_eq!(on_queue.queues[0].callback_key, Some('*'));
        // Reached only through an IVR: its callers are answered by the IVR.
        let through_ivr = valid(&text("on-agent", "ivr = \"main\""));
        assert_eq!(through_ivr.queues[0].callback_key, Some('*'));
    }

    #[test]
    fn aging_and_initial_handle_time_default_parse_and_are_checked() {
        let config = valid("[[queue]]\nname = \"a\"\nskills = { s = 1 }\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\npriority_aging_s = 0\ninitial_handle_time_s = 60\n[[queue]]\nname = \"c\"\nskills = { s = 1 }\npriority_aging_s = 5\n");
        let [a, b, c] = config.queues.as_slice() else {
            panic!("three queues");
        };
        assert_eq!(a.priority_aging, Some(Duration::from_secs(30)));
        assert_eq!(a.initial_handle_time, Duration::from_secs(180));
        assert_eq!(b.priority_aging, None, "0 = strict priority");
        assert_eq!(b.initial_handle_time, Duration::from_secs(60));
        assert_eq!(c.priority_aging, Some(Duration::from_secs(5)));
        assert_eq!(
            error_lines("[[queue]]\nname = \"a\"\nskills = { s = 1 }\npriority_aging_s = -1\ninitial_handle_time_s = 0\n"),
            vec![
                "t.toml:4:20: queue[0].priority_aging_s: -1 out of range 0..=86400",
                "t.toml:5:25: queue[0].initial_handle_time_s: 0 out of range 1..=86400",
            ]
        );
    }

    #[test]
    fn callback_retry_and_attempts_default_parse_and_are_checked() {
        let config = valid("[[queue]]\nname = \"a\"\nskills = { s = 1 }\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\ncallback_retry_s = 90\ncallback_max_attempts = 5\n");
        let [a, b] = config.queues.as_slice() else {
            panic!("two queues");
        };
        assert_eq!(a.callback_retry, Duration::from_secs(300));
        assert_eq!(a.callback_max_attempts, 3);
        assert_eq!(b.callback_retry, Duration::from_secs(90));
        assert_eq!(b.callback_max_attempts, 5);
        assert_eq!(
            error_lines("[[queue]]\nname = \"a\"\nskills = { s = 1 }\ncallback_retry_s = 0\ncallback_max_attempts = 21\n"),
            vec![
                "t.toml:4:20: queue[0].callback_retry_s: 0 out of range 1..=86400",
                "t.toml:5:25: queue[0].callback_max_attempts: 21 out of range 1..=20",
            ]
        );
    }

    #[test]
    fn a_callback_schedule_names_a_schedule() {
        let office = "[[schedule]]\nname = \"office\"\ntime_zone = \"UTC\"\nopen = [\"mon-fri 09:00-18:00\"]\n";
        let config = valid(&format!("[[queue]]\nname = \"a\"\nskills = {{ s = 1 }}\ncallback_schedule = \"office\"\n[[queue]]\nname = \"b\"\nskills = {{ s = 1 }}\n{office}"));
        assert_eq!(
            config.queues[0].callback_schedule.as_deref(),
            Some("office")
        );
        assert_eq!(config.queues[1].callback_schedule, None);
        let errors = error_lines(&format!(
            "[[queue]]\nname = \"a\"\nskills = {{ s = 1 }}\ncallback_schedule = \"night\"\n{office}"
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("t.toml:4:21: queue[0].callback_schedule: ")
                && errors[0].contains("night")
                && errors[0].contains("office"),
            "{errors:?}"
        );
    }

    #[test]
    fn media_settings_default_and_parse() {
        let config = valid("[[queue]]\nname = \"a\"\nskills = { s = 1 }\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\nmusic_on_hold = \"jazz\"\nannounce_every_s = 0\ncallback_key = \"*\"\nrecord = \"25%\"\nanswer = \"on-queue\"\n[[queue]]\nname = \"c\"\nskills = { s = 1 }\nrecord = \"100%\"\n");
        let [a, b, c] = config.queues.as_slice() else {
            panic!("three queues");
        };
        assert_eq!(a.music_on_hold, "moh");
        assert_eq!(a.announce_every, Some(Duration::from_secs(30)));
        assert_eq!(a.callback_key, None);
        assert_eq!(a.record, RecordPolicy::None);
        assert_eq!(a.answer, QueueAnswer::OnAgent);
        assert_eq!(b.music_on_hold, "jazz");
        assert_eq!(b.announce_every, None);
        assert_eq!(b.callback_key, Some('*'));
        assert_eq!(b.record, RecordPolicy::Percent(25));
        assert_eq!(b.answer, QueueAnswer::OnQueue);
        assert_eq!(c.record, RecordPolicy::All);
    }

    #[test]
    fn bad_media_settings_name_their_field() {
        let text = "[[queue]]\nname = \"a\"\nskills = { s = 1 }\nmusic_on_hold = \"\"\nannounce_every_s = 7200\ncallback_key = \"**\"\nrecord = \"150%\"\nanswer = \"now\"\n[[queue]]\nname = \"b\"\nskills = { s = 1 }\nrecord = \"some\"\n";
        assert_eq!(
            error_lines(text),
            vec![
                "t.toml:4:17: queue[0].music_on_hold: the prompt name must not be empty",
                "t.toml:5:20: queue[0].announce_every_s: 7200 out of range 0..=3600",
                "t.toml:6:16: queue[0].callback_key: \"**\" is not a key: expected one of 0-9, *, #, A-D",
                "t.toml:7:10: queue[0].record: \"150%\" is over 100%",
                "t.toml:8:10: queue[0].answer: unknown answer mode \"now\"; expected \"on-queue\" or \"on-agent\"",
                "t.toml:12:10: queue[1].record: invalid record policy \"some\": expected \"none\", \"all\" or a percentage such as \"25%\"",
            ]
        );
    }
}
