//! The `[[ivr]]` entries and their `[[ivr.menu]]`s: greetings, menus, key actions, closed hours.
//!
//! An action is a string or an array of strings: optional `play:PROMPT` / `language:LANG` steps,
//! then exactly one final step (`queue:QUEUE`, `menu:MENU`, `voicemail:QUEUE`, `hangup`).
//! Every reference is checked: queues against `[[queue]]`, menus against the menus of the same
//! IVR, schedules against `[[schedule]]`. Prompt files are not looked at here (prompt sets are
//! loaded at start), but prompt and language names must be plain names, since they become
//! file paths (`<prompts_dir>/<language>/<name>.wav`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::model::{IvrConfig, IvrStep, MenuConfig};
use super::names::Declared;
use super::path::FieldPath;
use super::reader::{Field, TableReader};

const KEYS: &[&str] = &[
    "name", "language", "schedule", "closed", "greeting", "entry", "menu",
];
const MENU_KEYS: &[&str] = &[
    "name",
    "prompt",
    "digit_timeout_s",
    "retries",
    "invalid",
    "keys",
    "on_failure",
];
/// The DTMF keys a menu may map (RFC 4733 events 0-15).
const DTMF_KEYS: &str = "0123456789*#ABCD";
const FINAL_STEPS: &str = "queue:QUEUE, menu:MENU, voicemail:QUEUE or hangup";

/// The default prompt language.
pub(super) const DEFAULT_LANGUAGE: &str = "en";

/// Names the IVRs may refer to.
pub(super) struct Targets<'n> {
    /// Declared queue names, for `queue:` and `voicemail:` steps.
    pub(super) queues: &'n Declared<String>,
    /// Declared schedule names, for `schedule`.
    pub(super) schedules: &'n Declared<String>,
}

/// A `menu:NAME` step seen while reading an IVR, checked once all its menus are known.
struct MenuReference {
    menu: String,
    path: FieldPath,
}

/// Reads every `[[ivr]]`. Also returns the declared IVR names, for `number.ivr`.
/// `None` means an error was recorded.
pub(super) fn read(
    d: &mut Diagnostics<'_>,
    root: &TableReader<'_>,
    targets: &Targets<'_>,
) -> (Option<Vec<std::sync::Arc<IvrConfig>>>, Declared<String>) {
    let mut names = Declared::new("ivr");
    let ivrs = root.or(d, "ivr", Vec::new(), |d, field| {
        field.list(d, |d, element| {
            ivr(d, element, targets, &mut names).map(std::sync::Arc::new)
        })
    });
    (ivrs, names)
}

fn ivr(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    targets: &Targets<'_>,
    names: &mut Declared<String>,
) -> Option<IvrConfig> {
    let table = field.table(d, KEYS)?;
    let mut menu_references = Vec::new();
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        names.declare(d, name.clone(), &name, field.path());
        Some(name)
    });
    let language = table.or(d, "language", DEFAULT_LANGUAGE.to_owned(), |d, field| {
        field.parsed(d, |text| plain_name("language", text))
    });
    let schedule = table.optional(d, "schedule", |d, field| {
        let schedule = field.identifier(d)?;
        targets
            .schedules
            .check_reference(d, &schedule, field.path())
            .then_some(schedule)
    });
    let closed = match table.get("closed") {
        Some(field) => {
            if matches!(schedule, Some(None)) {
                d.error(
                    field.path(),
                    "`closed` never runs without a `schedule`; set one or remove `closed`",
                );
            }
            action(d, &field, targets, &mut menu_references)
        }
        None => Some(vec![IvrStep::Play("closed".to_owned()), IvrStep::Hangup]),
    };
    let greeting = table.or(d, "greeting", Vec::new(), prompts);
    let mut menu_names = Declared::new("menu");
    let menus = table.required(d, "menu", |d, field| {
        let menus = field.list(d, |d, element| {
            menu(d, element, targets, &mut menu_names, &mut menu_references)
        })?;
        if menus.is_empty() {
            d.error(field.path(), "an ivr needs at least one [[ivr.menu]]");
            return None;
        }
        Some(menus)
    });
    let entry = match table.get("entry") {
        Some(field) => field.identifier(d).and_then(|entry| {
            menu_names
                .check_reference(d, &entry, field.path())
                .then_some(entry)
        }),
        // Without `entry` the first menu is the way in.
        None => menus
            .as_ref()
            .and_then(|menus| menus.first())
            .map(|menu| menu.name.clone()),
    };
    let mut references_ok = true;
    for reference in &menu_references {
        references_ok &= menu_names.check_reference(d, &reference.menu, &reference.path);
    }
    let config = IvrConfig {
        name: name?,
        language: language?,
        schedule: schedule?,
        closed: closed?,
        greeting: greeting?,
        entry: entry?,
        menus: menus?,
    };
    references_ok.then_some(config)
}

fn menu(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    targets: &Targets<'_>,
    names: &mut Declared<String>,
    menu_references: &mut Vec<MenuReference>,
) -> Option<MenuConfig> {
    let table = field.table(d, MENU_KEYS)?;
    let name = table.required(d, "name", |d, field| {
        let name = field.identifier(d)?;
        names.declare(d, name.clone(), &name, field.path());
        Some(name)
    });
    let prompt = table.required(d, "prompt", |d, field| {
        let prompt = prompts(d, field)?;
        if prompt.is_empty() {
            d.error(field.path(), "a menu needs at least one prompt");
            return None;
        }
        Some(prompt)
    });
    let digit_timeout = table.or(d, "digit_timeout_s", Duration::from_secs(5), |d, field| {
        field.seconds(d, 1..=60)
    });
    let retries = table.or(d, "retries", 2, |d, field| field.integer(d, 0..=10));
    let invalid = table.or(d, "invalid", vec!["invalid-choice".to_owned()], prompts);
    let keys = table.required(d, "keys", |d, field| {
        let keys = field.map(d, |d, entry| {
            let key = menu_key(d, entry);
            let steps = action(d, entry, targets, menu_references);
            Some((key?, steps?))
        })?;
        if keys.is_empty() {
            d.error(field.path(), "a menu needs at least one key");
            return None;
        }
        Some(
            keys.into_iter()
                .map(|(_, entry)| entry)
                .collect::<BTreeMap<_, _>>(),
        )
    });
    let on_failure = table.or(
        d,
        "on_failure",
        vec![IvrStep::Play("goodbye".to_owned()), IvrStep::Hangup],
        |d, field| action(d, field, targets, menu_references),
    );
    Some(MenuConfig {
        name: name?,
        prompt: prompt?,
        digit_timeout: digit_timeout?,
        retries: retries?,
        invalid: invalid?,
        keys: keys?,
        on_failure: on_failure?,
    })
}

/// The DTMF key an entry of `keys` is for (the last segment of its path).
fn menu_key(d: &mut Diagnostics<'_>, entry: &Field<'_>) -> Option<char> {
    let text = entry.path().last_key().unwrap_or_default();
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(key), None) if DTMF_KEYS.contains(key) => Some(key),
        _ => {
            d.error_at_key(
                entry.path(),
                format!("{text:?} is not a key: expected one of 0-9, *, #, A-D"),
            );
            None
        }
    }
}

/// A prompt name or a list of them.
fn prompts(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Vec<String>> {
    let names = strings(d, field)?;
    let mut all_good = true;
    let mut prompts = Vec::new();
    for (text, path) in names {
        match plain_name("prompt", &text) {
            Ok(name) => prompts.push(name),
            Err(message) => {
                d.error(&path, message);
                all_good = false;
            }
        }
    }
    all_good.then_some(prompts)
}

/// An action: steps ending in exactly one final step.
fn action(
    d: &mut Diagnostics<'_>,
    field: &Field<'_>,
    targets: &Targets<'_>,
    menu_references: &mut Vec<MenuReference>,
) -> Option<Vec<IvrStep>> {
    let texts = strings(d, field)?;
    let mut steps = Vec::new();
    let mut all_good = true;
    for (index, (text, path)) in texts.iter().enumerate() {
        let Some(step) = step(d, text, path, targets, menu_references) else {
            all_good = false;
            continue;
        };
        if step.is_final() && index + 1 != texts.len() {
            d.error(
                path,
                format!("{text:?} ends the action, so it must be the last step"),
            );
            all_good = false;
        }
        steps.push(step);
    }
    if !all_good {
        return None;
    }
    if !steps.last().is_some_and(IvrStep::is_final) {
        d.error(
            field.path(),
            format!("an action must end with {FINAL_STEPS}"),
        );
        return None;
    }
    Some(steps)
}

fn step(
    d: &mut Diagnostics<'_>,
    text: &str,
    path: &FieldPath,
    targets: &Targets<'_>,
    menu_references: &mut Vec<MenuReference>,
) -> Option<IvrStep> {
    let report = |d: &mut Diagnostics<'_>, message: String| {
        d.error(path, message);
        None
    };
    if text == "hangup" {
        return Some(IvrStep::Hangup);
    }
    let Some((verb, argument)) = text.split_once(':') else {
        return report(d, unknown_step(text));
    };
    let kind = match verb {
        "play" => "prompt",
        "language" => "language",
        "queue" | "voicemail" => "queue",
        "menu" => "menu",
        _ => return report(d, unknown_step(text)),
    };
    // Prompt and language names become file paths; queue and menu names only need to match
    // a declared name, which `identifier` already kept free of spaces.
    let checked = match verb {
        "play" | "language" => plain_name(kind, argument),
        _ if argument.is_empty()
            || argument
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(format!("invalid {kind} name {argument:?}"))
        }
        _ => Ok(argument.to_owned()),
    };
    let name = match checked {
        Ok(name) => name,
        Err(message) => return report(d, message),
    };
    match verb {
        "play" => Some(IvrStep::Play(name)),
        "language" => Some(IvrStep::Language(name)),
        "menu" => {
            menu_references.push(MenuReference {
                menu: name.clone(),
                path: path.clone(),
            });
            Some(IvrStep::Menu(name))
        }
        _ => {
            if !targets.queues.check_reference(d, &name, path) {
                return None;
            }
            if verb == "queue" {
                Some(IvrStep::Queue(name))
            } else {
                Some(IvrStep::Voicemail(name))
            }
        }
    }
}

fn unknown_step(text: &str) -> String {
    format!("unknown step {text:?}: expected play:PROMPT, language:LANG, or one final step: {FINAL_STEPS}")
}

/// A string, or an array of strings, each with its path.
fn strings(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<Vec<(String, FieldPath)>> {
    // The reader has no silent type probe, so try the string reading on a scratch collector
    // whose errors are dropped; the real collector then reports the array reading's errors.
    let scratch_root = toml_edit::Table::new();
    let mut scratch = Diagnostics::new("", "", &scratch_root);
    if let Some(text) = field.string(&mut scratch) {
        return Some(vec![(text, field.path().clone())]);
    }
    if field.elements(&mut scratch).is_none() {
        d.error(field.path(), "expected a string or an array of strings");
        return None;
    }
    field.list(d, |d, element| {
        element.string(d).map(|text| (text, element.path().clone()))
    })
}

/// A prompt, language or queue name used in a file path or a step: letters, digits, `-`, `_`.
pub(super) fn plain_name(kind: &str, text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("the {kind} name must not be empty"));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "invalid {kind} name {text:?}: use letters, digits, '-' and '_' only"
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::model::IvrStep;
    use crate::config::testing::{error_lines, valid};

    const BASE: &str = "[[queue]]\nname = \"sales\"\nskills = { sales = 1 }\n[[queue]]\nname = \"support\"\nskills = { support = 1 }\n[[schedule]]\nname = \"office\"\ntime_zone = \"UTC\"\nopen = [\"mon-fri 09:00-17:00\"]\n";

    fn play(name: &str) -> IvrStep {
        IvrStep::Play(name.to_owned())
    }

    #[test]
    fn a_full_ivr_reads_every_field() {
        let text = format!(
            r##"{BASE}
[[ivr]]
name = "main"
language = "en"
schedule = "office"
closed = ["play:closed", "voicemail:support"]
greeting = ["welcome"]
entry = "top"

[[ivr.menu]]
name = "top"
prompt = ["menu"]
digit_timeout_s = 7
retries = 1
invalid = "invalid-choice"
keys = {{ "1" = "queue:sales", "2" = "menu:support", "9" = ["language:zh", "menu:top"], "0" = ["play:goodbye", "hangup"], "*" = "menu:top", "#" = "hangup" }}
on_failure = "queue:support"

[[ivr.menu]]
name = "support"
prompt = "support-menu"
keys = {{ 1 = "queue:support", D = "menu:top" }}
"##
        );
        let config = valid(&text);
        let main = &config.ivrs[0];
        assert_eq!(main.schedule.as_deref(), Some("office"));
        assert_eq!(
            main.closed,
            vec![play("closed"), IvrStep::Voicemail("support".into())]
        );
        assert_eq!(main.greeting, vec!["welcome"]);
        assert_eq!(main.entry, "top");
        let top = &main.menus[0];
        assert_eq!(top.digit_timeout, Duration::from_secs(7));
        assert_eq!(top.retries, 1);
        assert_eq!(top.invalid, vec!["invalid-choice"]);
        assert_eq!(top.keys.len(), 6);
        assert_eq!(
            top.keys[&'9'],
            vec![IvrStep::Language("zh".into()), IvrStep::Menu("top".into())]
        );
        assert_eq!(top.keys[&'0'], vec![play("goodbye"), IvrStep::Hangup]);
        assert_eq!(top.on_failure, vec![IvrStep::Queue("support".into())]);
        let support = &main.menus[1];
        assert_eq!(support.prompt, vec!["support-menu"]);
        assert_eq!(support.digit_timeout, Duration::from_secs(5));
        assert_eq!(support.retries, 2);
        assert_eq!(support.invalid, vec!["invalid-choice"]);
        assert_eq!(support.on_failure, vec![play("goodbye"), IvrStep::Hangup]);
        assert_eq!(support.keys[&'D'], vec![IvrStep::Menu("top".into())]);
    }

    #[test]
    fn defaults_entry_language_and_closed() {
        let text = format!("{BASE}[[ivr]]\nname = \"m\"\nschedule = \"office\"\n[[ivr.menu]]\nname = \"first\"\nprompt = [\"menu\"]\nkeys = {{ 1 = \"hangup\" }}\n[[ivr.menu]]\nname = \"second\"\nprompt = [\"menu\"]\nkeys = {{ 1 = \"hangup\" }}\n");
        let ivr = &valid(&text).ivrs[0];
        assert_eq!(ivr.entry, "first");
        assert_eq!(ivr.language, "en");
        assert_eq!(ivr.closed, vec![play("closed"), IvrStep::Hangup]);
        assert!(ivr.greeting.is_empty());
    }

    #[test]
    fn bad_references_are_reported_with_their_path() {
        let text = format!(
            r#"{BASE}[[ivr]]
name = "main"
schedule = "weekend"
entry = "nowhere"
[[ivr.menu]]
name = "top"
prompt = ["menu"]
keys = {{ "1" = "queue:billing", "2" = ["play:x", "menu:lost"], "3" = "voicemail:nobody" }}
on_failure = "menu:gone"
"#
        );
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:13:12: ivr[0].schedule: unknown schedule `weekend` (configured: office)",
                "t.toml:14:9: ivr[0].entry: unknown menu `nowhere` (configured: top)",
                "t.toml:18:16: ivr[0].menu[0].keys.1: unknown queue `billing` (configured: sales, support)",
                "t.toml:18:50: ivr[0].menu[0].keys.2[1]: unknown menu `lost` (configured: top)",
                "t.toml:18:70: ivr[0].menu[0].keys.3: unknown queue `nobody` (configured: sales, support)",
                "t.toml:19:14: ivr[0].menu[0].on_failure: unknown menu `gone` (configured: top)",
            ]
        );
    }

    #[test]
    fn action_shapes_are_checked() {
        let text = format!(
            r#"{BASE}[[ivr]]
name = "main"
closed = "hangup"
[[ivr.menu]]
name = "top"
prompt = []
retries = 11
digit_timeout_s = 0
keys = {{ "1" = ["play:a"], "2" = ["hangup", "play:b"], "3" = "dance", "x" = "hangup", "4" = [], "5" = 7, "6" = "play:../etc/passwd", "7" = ["language:zh", "queue:sales", "hangup"] }}
"#
        );
        let lines = error_lines(&text);
        let expected = [
            "t.toml:13:10: ivr[0].closed: `closed` never runs without a `schedule`; set one or remove `closed`",
            "t.toml:16:10: ivr[0].menu[0].prompt: a menu needs at least one prompt",
            "t.toml:17:11: ivr[0].menu[0].retries: 11 out of range 0..=10",
            "t.toml:18:19: ivr[0].menu[0].digit_timeout_s: 0 out of range 1..=60",
            "t.toml:19:16: ivr[0].menu[0].keys.1: an action must end with queue:QUEUE, menu:MENU, voicemail:QUEUE or hangup",
            "t.toml:19:35: ivr[0].menu[0].keys.2[0]: \"hangup\" ends the action, so it must be the last step",
            "t.toml:19:62: ivr[0].menu[0].keys.3: unknown step \"dance\": expected play:PROMPT, language:LANG, or one final step: queue:QUEUE, menu:MENU, voicemail:QUEUE or hangup",
            "t.toml:19:71: ivr[0].menu[0].keys.x: \"x\" is not a key: expected one of 0-9, *, #, A-D",
            "t.toml:19:93: ivr[0].menu[0].keys.4: an action must end with queue:QUEUE, menu:MENU, voicemail:QUEUE or hangup",
            "t.toml:19:103: ivr[0].menu[0].keys.5: expected a string or an array of strings",
            "t.toml:19:112: ivr[0].menu[0].keys.6: invalid prompt name \"../etc/passwd\": use letters, digits, '-' and '_' only",
            "t.toml:19:156: ivr[0].menu[0].keys.7[1]: \"queue:sales\" ends the action, so it must be the last step",
        ];
        assert_eq!(lines, expected, "{lines:#?}");
    }

    #[test]
    fn an_ivr_needs_menus_and_unique_names() {
        let text = format!("{BASE}[[ivr]]\nname = \"a\"\nlanguage = \"e n\"\n[[ivr]]\nname = \"a\"\nmenu = []\n[[ivr]]\nname = \"b\"\n[[ivr.menu]]\nname = \"m\"\nprompt = \"p\"\nkeys = {{ 1 = \"hangup\" }}\n[[ivr.menu]]\nname = \"m\"\nprompt = \"p\"\nkeys = {{}}\n");
        assert_eq!(
            error_lines(&text),
            vec![
                "t.toml:11:1: ivr[0].menu: missing required key `menu`",
                "t.toml:13:12: ivr[0].language: invalid language name \"e n\": use letters, digits, '-' and '_' only",
                "t.toml:15:8: ivr[1].name: duplicate ivr `a` (first defined at ivr[0].name, line 12)",
                "t.toml:16:8: ivr[1].menu: an ivr needs at least one [[ivr.menu]]",
                "t.toml:24:8: ivr[2].menu[1].name: duplicate menu `m` (first defined at ivr[2].menu[0].name, line 20)",
                "t.toml:26:8: ivr[2].menu[1].keys: a menu needs at least one key",
            ]
        );
    }
}
