//! One caller's walk through an IVR, as a sans-IO state machine.
//!
//! The session never plays audio or reads the clock: it returns [`IvrAction`]s and is told
//! about keys, finished playbacks and the digit timeout, each with the current time.
//!
//! Key handling, by what is playing:
//! - a menu prompt (including the `invalid` prompt before a replay): a key *barges in*, stopping
//!   the prompt and counting as the caller's choice;
//! - the greeting and `play:` steps of an action: keys are kept as type-ahead (up to
//!   [`MAX_TYPE_AHEAD`]) and used, in order, as the choices of the menus that follow, whose
//!   prompts are then skipped; an invalid type-ahead key drops the rest;
//! - an emergency announcement: keys are discarded, so nobody skips it by accident.
//!
//! Playback completions carry the token of the `Play` they finish; any other token is stale
//! (the prompt was replaced or stopped) and ignored.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::{IvrConfig, IvrStep, MenuConfig};

/// Keys remembered while a non-menu prompt plays; more are dropped.
pub const MAX_TYPE_AHEAD: usize = 8;

/// How many times in a row `on_failure` may run without the caller pressing a valid key.
/// `on_failure` may lead back into a menu; a caller who left the line open (or a menu loop
/// in the configuration) must still end, so the next failure hangs up instead.
pub const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// Menus recorded in [`IvrSession::path`]; a caller bouncing between menus longer than this
/// gets `>...` at the end instead of an ever-growing CDR field.
const MAX_PATH_MENUS: usize = 32;

/// A prompt to play: its name in a language's prompt set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptRef {
    /// Prompt-set language (folder name, e.g. `en`).
    pub language: String,
    /// Prompt name (file stem, e.g. `menu`).
    pub name: String,
}

/// What call control must do for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Replace whatever is playing with these prompts, in order; report
    /// [`IvrSession::on_playback_finished`] with `token` when the last one ends.
    Play {
        /// The prompts, in order.
        prompts: Vec<PromptRef>,
        /// Identifies this playback in the completion report.
        token: u64,
    },
    /// Stop the current playback (a key barged in); no completion is expected for it.
    StopPlayback,
    /// Leave the IVR: put the call in this queue.
    Queue {
        /// Queue name.
        queue: String,
    },
    /// Leave the IVR: record a message for this queue.
    Voicemail {
        /// Queue name.
        queue: String,
    },
    /// Leave the IVR: hang up.
    Hangup,
}

impl IvrAction {
    /// Whether this action ends the session (queue, voicemail or hangup).
    pub fn is_exit(&self) -> bool {
        matches!(
            self,
            IvrAction::Queue { .. } | IvrAction::Voicemail { .. } | IvrAction::Hangup
        )
    }
}

/// What keys do during a non-menu announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyHandling {
    /// Dropped (emergency announcements).
    Discard,
    /// Kept for the menus that follow (greeting, `play:` steps).
    TypeAhead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Prompts that are not a menu are playing; `then` runs when they end.
    Announcing {
        token: u64,
        keys: KeyHandling,
        then: Vec<IvrStep>,
    },
    /// The current menu's prompt is playing; a key barges in.
    MenuPrompt { token: u64 },
    /// The menu prompt has ended; waiting for a key until `deadline`.
    AwaitingKey { deadline: Instant },
    /// The session has left the IVR; every event is ignored.
    Finished,
}

/// One call's progress through an IVR.
#[derive(Debug, Clone)]
pub struct IvrSession {
    config: std::sync::Arc<IvrConfig>,
    language: String,
    phase: Phase,
    /// Index of the current menu in `config.menus`.
    menu: usize,
    /// Invalid keys or timeouts in the current menu visit.
    attempts: u32,
    /// `on_failure` runs since the last valid key.
    failures_in_a_row: u32,
    type_ahead: VecDeque<char>,
    next_token: u64,
    /// One entry per menu visited: the menu name followed by `:KEY` for each key pressed.
    path: Vec<String>,
}

impl IvrSession {
    /// Starts a session for a call that reached `config`.
    ///
    /// `language` overrides the IVR's default (the number's `language`). `open` = the
    /// schedule's verdict now (call control evaluates it with the wall clock); when false the
    /// IVR's `closed` steps run instead of the menus. `emergency` = an emergency prompt to play
    /// first, if an admin switched one on for the DID.
    pub fn start(
        config: &std::sync::Arc<IvrConfig>,
        language: Option<&str>,
        open: bool,
        emergency: Option<&str>,
        now: Instant,
    ) -> (IvrSession, Vec<IvrAction>) {
        let mut session = IvrSession {
            config: config.clone(),
            language: language.unwrap_or(&config.language).to_owned(),
            phase: Phase::Finished,
            menu: 0,
            attempts: 0,
            failures_in_a_row: 0,
            type_ahead: VecDeque::new(),
            next_token: 1,
            path: Vec::new(),
        };
        let mut steps: Vec<IvrStep> = config.greeting.iter().cloned().map(IvrStep::Play).collect();
        if open {
            steps.push(IvrStep::Menu(config.entry.clone()));
        } else {
            session.path.push("closed".to_owned());
            steps.extend(config.closed.iter().cloned());
        }
        let actions = match emergency {
            Some(prompt) => {
                let prompt = session.prompt(prompt);
                session.announce(vec![prompt], KeyHandling::Discard, steps)
            }
            None => session.run(steps, now),
        };
        (session, actions)
    }

    /// A DTMF key from the caller (`0-9`, `*`, `#`, `A-D`; lowercase letters are accepted).
    pub fn on_digit(&mut self, now: Instant, digit: char) -> Vec<IvrAction> {
        match &self.phase {
            Phase::Finished
            | Phase::Announcing {
                keys: KeyHandling::Discard,
                ..
            } => Vec::new(),
            Phase::Announcing {
                keys: KeyHandling::TypeAhead,
                ..
            } => {
                if self.type_ahead.len() < MAX_TYPE_AHEAD {
                    self.type_ahead.push_back(digit);
                }
                Vec::new()
            }
            Phase::MenuPrompt { .. } => {
                let mut actions = vec![IvrAction::StopPlayback];
                actions.extend(self.choose(digit, now));
                actions
            }
            Phase::AwaitingKey { .. } => self.choose(digit, now),
        }
    }

    /// The playback started with `token` has ended; stale tokens are ignored.
    pub fn on_playback_finished(&mut self, now: Instant, token: u64) -> Vec<IvrAction> {
        match &mut self.phase {
            Phase::Announcing {
                token: current,
                then,
                ..
            } if *current == token => {
                let then = std::mem::take(then);
                self.run(then, now)
            }
            Phase::MenuPrompt { token: current } if *current == token => {
                self.await_key(now);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The digit timeout: call control calls this at (or after) [`IvrSession::deadline`].
    /// Calls before the deadline, or when no key is awaited, do nothing.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<IvrAction> {
        match self.phase {
            Phase::AwaitingKey { deadline } if now >= deadline => self.fail(now),
            _ => Vec::new(),
        }
    }

    /// When call control must call [`IvrSession::on_timeout`]: set only while waiting for a key.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingKey { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// The language prompts are played in now (changed by `language:` steps).
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Menus visited and keys pressed, for the CDR: `top:2>support:1` (a closed-hours call
    /// starts with `closed`; invalid keys are included, timeouts are not).
    pub fn path(&self) -> String {
        let mut path = self.path.join(">");
        if self.path.len() > MAX_PATH_MENUS {
            path = self.path[..MAX_PATH_MENUS].join(">");
            path.push_str(">...");
        }
        path
    }

    /// Whether the session has left the IVR (an exit action was returned).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Runs an action's steps: `play:` and `language:` steps up to the final one, playing the
    /// prompts first (each in the language in force at its position) and the final step once
    /// they end.
    fn run(&mut self, steps: Vec<IvrStep>, now: Instant) -> Vec<IvrAction> {
        let mut prompts = Vec::new();
        for step in steps {
            match step {
                IvrStep::Play(name) => prompts.push(self.prompt(&name)),
                IvrStep::Language(language) => self.language = language,
                final_step if prompts.is_empty() => return self.finish(final_step, now),
                final_step => {
                    return self.announce(prompts, KeyHandling::TypeAhead, vec![final_step])
                }
            }
        }
        // A validated action always has a final step; one built by hand without it ends the call.
        if prompts.is_empty() {
            self.exit(IvrAction::Hangup)
        } else {
            self.announce(prompts, KeyHandling::TypeAhead, vec![IvrStep::Hangup])
        }
    }

    fn finish(&mut self, step: IvrStep, now: Instant) -> Vec<IvrAction> {
        match step {
            IvrStep::Queue(queue) => self.exit(IvrAction::Queue { queue }),
            IvrStep::Voicemail(queue) => self.exit(IvrAction::Voicemail { queue }),
            IvrStep::Menu(name) => {
                match self.config.menus.iter().position(|menu| menu.name == name) {
                    Some(index) => self.enter_menu(index, now),
                    // Config validation rules this out; ending the call beats getting stuck.
                    None => self.exit(IvrAction::Hangup),
                }
            }
            IvrStep::Hangup | IvrStep::Play(_) | IvrStep::Language(_) => {
                self.exit(IvrAction::Hangup)
            }
        }
    }

    fn enter_menu(&mut self, index: usize, now: Instant) -> Vec<IvrAction> {
        self.menu = index;
        self.attempts = 0;
        if let Some(menu) = self.config.menus.get(index) {
            if self.path.len() <= MAX_PATH_MENUS {
                self.path.push(menu.name.clone());
            }
        }
        match self.type_ahead.pop_front() {
            Some(key) => self.choose(key, now),
            None => self.play_menu(false, now),
        }
    }

    /// Plays the current menu's prompt, preceded by its `invalid` prompt on a replay.
    fn play_menu(&mut self, after_invalid: bool, now: Instant) -> Vec<IvrAction> {
        let Some(menu) = self.current_menu() else {
            return self.exit(IvrAction::Hangup);
        };
        let mut names: Vec<String> = Vec::new();
        if after_invalid {
            names.extend(menu.invalid.iter().cloned());
        }
        names.extend(menu.prompt.iter().cloned());
        if names.is_empty() {
            self.await_key(now);
            return Vec::new();
        }
        let prompts = names.iter().map(|name| self.prompt(name)).collect();
        let token = self.new_token();
        self.phase = Phase::MenuPrompt { token };
        vec![IvrAction::Play { prompts, token }]
    }

    fn await_key(&mut self, now: Instant) {
        let timeout = self
            .current_menu()
            .map(|menu| menu.digit_timeout)
            .unwrap_or_default();
        // A hand-built config could hold an absurd timeout; never panic on the addition.
        let deadline = now.checked_add(timeout).unwrap_or(now);
        self.phase = Phase::AwaitingKey { deadline };
    }

    /// A key chosen in the current menu (pressed now, or typed ahead).
    fn choose(&mut self, key: char, now: Instant) -> Vec<IvrAction> {
        let key = key.to_ascii_uppercase();
        let recorded = self.path.len() <= MAX_PATH_MENUS;
        if let Some(visit) = self.path.last_mut().filter(|_| recorded) {
            visit.push(':');
            visit.push(if key.is_ascii_graphic() { key } else { '?' });
        }
        let steps = self
            .current_menu()
            .and_then(|menu| menu.keys.get(&key))
            .cloned();
        match steps {
            Some(steps) => {
                self.failures_in_a_row = 0;
                self.run(steps, now)
            }
            None => {
                // The caller did not hear what they were typing ahead into: drop the rest.
                self.type_ahead.clear();
                self.fail(now)
            }
        }
    }

    /// An invalid key or a timeout in the current menu.
    fn fail(&mut self, now: Instant) -> Vec<IvrAction> {
        let Some(menu) = self.current_menu() else {
            return self.exit(IvrAction::Hangup);
        };
        if self.attempts < menu.retries {
            self.attempts += 1;
            return self.play_menu(true, now);
        }
        let on_failure = menu.on_failure.clone();
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
            return self.exit(IvrAction::Hangup);
        }
        self.failures_in_a_row += 1;
        self.run(on_failure, now)
    }

    fn announce(
        &mut self,
        prompts: Vec<PromptRef>,
        keys: KeyHandling,
        then: Vec<IvrStep>,
    ) -> Vec<IvrAction> {
        let token = self.new_token();
        self.phase = Phase::Announcing { token, keys, then };
        vec![IvrAction::Play { prompts, token }]
    }

    fn exit(&mut self, action: IvrAction) -> Vec<IvrAction> {
        self.phase = Phase::Finished;
        self.type_ahead.clear();
        vec![action]
    }

    fn current_menu(&self) -> Option<&MenuConfig> {
        self.config.menus.get(self.menu)
    }

    fn prompt(&self, name: &str) -> PromptRef {
        PromptRef {
            language: self.language.clone(),
            name: name.to_owned(),
        }
    }

    fn new_token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::config::testing::valid;

    /// The demo-like IVR used by most tests: greeting, a top menu and two second-level menus.
    const IVR: &str = r#"
[[queue]]
name = "sales"
skills = { sales = 1 }
[[queue]]
name = "support"
skills = { support = 1 }
[[ivr]]
name = "main"
greeting = ["welcome"]
entry = "top"
[[ivr.menu]]
name = "top"
prompt = ["menu"]
retries = 2
keys = { "1" = "menu:sales", "2" = "menu:support", "3" = "voicemail:support", "9" = ["language:zh", "menu:top"], "0" = ["play:goodbye", "hangup"] }
[[ivr.menu]]
name = "sales"
prompt = "sales-menu"
retries = 0
keys = { "1" = "queue:sales", "2" = "queue:support", "*" = "menu:top" }
on_failure = "menu:top"
[[ivr.menu]]
name = "support"
prompt = ["support-menu"]
digit_timeout_s = 3
keys = { "1" = "queue:support", "*" = "menu:top" }
"#;

    fn config() -> std::sync::Arc<IvrConfig> {
        valid(IVR).ivrs.remove(0)
    }

    fn prompt(language: &str, name: &str) -> PromptRef {
        PromptRef {
            language: language.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The prompts and token of the single `Play` among `actions`.
    fn played(actions: &[IvrAction]) -> (Vec<String>, u64) {
        let plays: Vec<_> = actions
            .iter()
            .filter_map(|action| match action {
                IvrAction::Play { prompts, token } => {
                    Some((prompts.iter().map(|p| p.name.clone()).collect(), *token))
                }
                _ => None,
            })
            .collect();
        match plays.as_slice() {
            [play] => play.clone(),
            _ => panic!("expected one Play in {actions:?}"),
        }
    }

    /// Starts open, without emergency, and plays the greeting through: the top menu is playing.
    fn at_top_menu(now: Instant) -> (IvrSession, u64) {
        let (mut session, actions) = IvrSession::start(&config(), None, true, None, now);
        let (names, greeting) = played(&actions);
        assert_eq!(names, vec!["welcome"]);
        let (names, menu) = played(&session.on_playback_finished(now, greeting));
        assert_eq!(names, vec!["menu"]);
        (session, menu)
    }

    fn queue(name: &str) -> IvrAction {
        IvrAction::Queue {
            queue: name.to_owned(),
        }
    }

    #[test]
    fn greeting_then_menu_then_key_after_the_prompt() {
        let now = Instant::now();
        let (mut session, menu) = at_top_menu(now);
        assert_eq!(session.deadline(), None, "no timer while the prompt plays");
        assert!(session.on_playback_finished(now, menu).is_empty());
        assert_eq!(session.deadline(), Some(now + Duration::from_secs(5)));
        let (names, sales) = played(&session.on_digit(now, '1'));
        assert_eq!(names, vec!["sales-menu"]);
        assert!(session.on_playback_finished(now, sales).is_empty());
        assert_eq!(session.on_digit(now, '2'), vec![queue("support")]);
        assert!(session.is_finished());
        assert_eq!(session.path(), "top:1>sales:2");
        assert_eq!(session.deadline(), None);
    }

    #[test]
    fn a_key_during_the_menu_prompt_barges_in() {
        let now = Instant::now();
        let (mut session, menu) = at_top_menu(now);
        let actions = session.on_digit(now, '2');
        assert_eq!(actions[0], IvrAction::StopPlayback);
        let (names, _) = played(&actions);
        assert_eq!(names, vec!["support-menu"]);
        // The replaced prompt's completion arrives late: it is stale and changes nothing.
        assert!(session.on_playback_finished(now, menu).is_empty());
        assert_eq!(session.deadline(), None);
        assert_eq!(
            session.on_digit(now, '1'),
            vec![IvrAction::StopPlayback, queue("support")]
        );
        assert_eq!(session.path(), "top:2>support:1");
    }

    #[test]
    fn keys_during_the_greeting_are_typed_ahead() {
        let now = Instant::now();
        let (mut session, actions) = IvrSession::start(&config(), None, true, None, now);
        let (_, greeting) = played(&actions);
        assert!(session.on_digit(now, '1').is_empty());
        assert!(session.on_digit(now, '1').is_empty());
        // Both keys are used: top -> sales -> queue, without playing either menu.
        assert_eq!(
            session.on_playback_finished(now, greeting),
            vec![queue("sales")]
        );
        assert_eq!(session.path(), "top:1>sales:1");
    }

    #[test]
    fn an_invalid_type_ahead_key_drops_the_rest() {
        let now = Instant::now();
        let (mut session, actions) = IvrSession::start(&config(), None, true, None, now);
        let (_, greeting) = played(&actions);
        for key in ['7', '1', '1'] {
            session.on_digit(now, key);
        }
        let (names, _) = played(&session.on_playback_finished(now, greeting));
        assert_eq!(names, vec!["invalid-choice", "menu"]);
        assert_eq!(session.path(), "top:7");
    }

    #[test]
    fn type_ahead_is_bounded() {
        let now = Instant::now();
        let (mut session, _) = IvrSession::start(&config(), None, true, None, now);
        for _ in 0..100 {
            session.on_digit(now, '9');
        }
        assert_eq!(session.type_ahead.len(), MAX_TYPE_AHEAD);
    }

    #[test]
    fn an_emergency_plays_first_and_ignores_keys() {
        let now = Instant::now();
        let (mut session, actions) =
            IvrSession::start(&config(), Some("zh"), true, Some("emergency"), now);
        assert_eq!(
            actions,
            vec![IvrAction::Play {
                prompts: vec![prompt("zh", "emergency")],
                token: 1
            }]
        );
        assert!(session.on_digit(now, '1').is_empty());
        let (names, greeting) = played(&session.on_playback_finished(now, 1));
        assert_eq!(names, vec!["welcome"]);
        let (names, _) = played(&session.on_playback_finished(now, greeting));
        assert_eq!(
            names,
            vec!["menu"],
            "the key pressed during the emergency was dropped"
        );
    }

    #[test]
    fn closed_runs_the_closed_steps_after_the_greeting() {
        let now = Instant::now();
        let mut config = config();
        let edit = std::sync::Arc::make_mut(&mut config);
        edit.closed = vec![IvrStep::Play("closed".into()), IvrStep::Hangup];
        let (mut session, actions) = IvrSession::start(&config, None, false, None, now);
        // The greeting and the closed steps' prompts play as one playback.
        let (names, closed) = played(&actions);
        assert_eq!(names, vec!["welcome", "closed"]);
        assert_eq!(
            session.on_playback_finished(now, closed),
            vec![IvrAction::Hangup]
        );
        assert_eq!(session.path(), "closed");
    }

    #[test]
    fn closed_may_lead_to_voicemail_and_an_empty_closed_hangs_up() {
        let now = Instant::now();
        let mut config = config();
        let edit = std::sync::Arc::make_mut(&mut config);
        edit.greeting.clear();
        edit.closed = vec![IvrStep::Voicemail("support".into())];
        let (_, actions) = IvrSession::start(&config, None, false, None, now);
        assert_eq!(
            actions,
            vec![IvrAction::Voicemail {
                queue: "support".into()
            }]
        );
        std::sync::Arc::make_mut(&mut config).closed.clear();
        let (session, actions) = IvrSession::start(&config, None, false, None, now);
        assert_eq!(actions, vec![IvrAction::Hangup]);
        assert!(session.is_finished());
    }

    #[test]
    fn invalid_keys_replay_with_the_invalid_prompt_then_on_failure() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        // retries = 2: two replays, then on_failure (default: goodbye, hang up).
        for _ in 0..2 {
            let actions = session.on_digit(now, '5');
            assert_eq!(actions[0], IvrAction::StopPlayback);
            assert_eq!(played(&actions).0, vec!["invalid-choice", "menu"]);
        }
        let (names, goodbye) = played(&session.on_digit(now, '#'));
        assert_eq!(names, vec!["goodbye"]);
        assert!(
            session.on_digit(now, '1').is_empty(),
            "play: steps only type ahead"
        );
        assert_eq!(
            session.on_playback_finished(now, goodbye),
            vec![IvrAction::Hangup]
        );
        assert_eq!(session.path(), "top:5:5:#");
    }

    #[test]
    fn the_digit_timer_starts_when_the_prompt_ends_and_a_timeout_is_a_failure() {
        let start = Instant::now();
        let (mut session, menu) = at_top_menu(start);
        let later = start + Duration::from_secs(30);
        assert!(session.on_timeout(later).is_empty(), "not waiting yet");
        session.on_playback_finished(later, menu);
        let deadline = session.deadline().expect("waiting for a key");
        assert_eq!(deadline, later + Duration::from_secs(5));
        assert!(
            session
                .on_timeout(deadline - Duration::from_millis(1))
                .is_empty(),
            "early wake-ups do nothing"
        );
        let (names, replay) = played(&session.on_timeout(deadline));
        assert_eq!(names, vec!["invalid-choice", "menu"]);
        assert_eq!(session.deadline(), None);
        session.on_playback_finished(deadline, replay);
        assert!(session.deadline().is_some());
    }

    #[test]
    fn a_language_step_changes_later_prompts() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        let actions = session.on_digit(now, '9');
        assert_eq!(
            actions,
            vec![
                IvrAction::StopPlayback,
                IvrAction::Play {
                    prompts: vec![prompt("zh", "menu")],
                    token: 3
                }
            ]
        );
        assert_eq!(session.language(), "zh");
        assert_eq!(session.path(), "top:9>top");
    }

    #[test]
    fn the_number_language_overrides_the_ivr_default() {
        let (session, actions) =
            IvrSession::start(&config(), Some("fr"), true, None, Instant::now());
        assert_eq!(
            actions,
            vec![IvrAction::Play {
                prompts: vec![prompt("fr", "welcome")],
                token: 1
            }]
        );
        assert_eq!(session.language(), "fr");
    }

    #[test]
    fn play_steps_play_before_the_final_step() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        let (names, goodbye) = played(&session.on_digit(now, '0'));
        assert_eq!(names, vec!["goodbye"]);
        assert!(
            session.on_playback_finished(now, goodbye + 7).is_empty(),
            "stale"
        );
        assert_eq!(
            session.on_playback_finished(now, goodbye),
            vec![IvrAction::Hangup]
        );
    }

    #[test]
    fn voicemail_and_star_back_to_the_top() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        session.on_digit(now, '1');
        let (names, _) = played(&session.on_digit(now, '*'));
        assert_eq!(names, vec!["menu"]);
        assert_eq!(
            session.on_digit(now, '3'),
            vec![
                IvrAction::StopPlayback,
                IvrAction::Voicemail {
                    queue: "support".into()
                }
            ]
        );
        assert_eq!(session.path(), "top:1>sales:*>top:3");
    }

    #[test]
    fn a_finished_session_ignores_everything() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        session.on_digit(now, '3');
        assert!(session.is_finished());
        assert!(session.on_digit(now, '1').is_empty());
        assert!(session.on_playback_finished(now, 2).is_empty());
        assert!(session
            .on_timeout(now + Duration::from_secs(999))
            .is_empty());
        assert_eq!(session.deadline(), None);
    }

    #[test]
    fn an_on_failure_loop_ends_in_a_hangup() {
        let now = Instant::now();
        let mut config = config();
        let edit = std::sync::Arc::make_mut(&mut config);
        edit.greeting.clear();
        for menu in &mut edit.menus {
            menu.retries = 0;
            menu.on_failure = vec![IvrStep::Menu("top".into())];
        }
        let (mut session, actions) = IvrSession::start(&config, None, true, None, now);
        let (_, mut token) = played(&actions);
        let mut on_failure_runs = 0;
        loop {
            session.on_playback_finished(now, token);
            let deadline = session.deadline().expect("waiting");
            let actions = session.on_timeout(deadline);
            if actions == vec![IvrAction::Hangup] {
                break;
            }
            on_failure_runs += 1;
            token = played(&actions).1;
            assert!(on_failure_runs <= MAX_FAILURES_IN_A_ROW, "never ends");
        }
        assert_eq!(on_failure_runs, MAX_FAILURES_IN_A_ROW);
    }

    #[test]
    fn a_valid_key_resets_the_failure_count() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        session.on_digit(now, '1'); // sales: retries 0, on_failure = menu:top
        session.on_digit(now, '7'); // failure 1 -> top
        assert_eq!(session.failures_in_a_row, 1);
        session.on_digit(now, '1'); // valid: back to sales
        assert_eq!(session.failures_in_a_row, 0);
    }

    #[test]
    fn hand_built_configs_with_dangling_references_hang_up() {
        let now = Instant::now();
        let mut config = config();
        let edit = std::sync::Arc::make_mut(&mut config);
        edit.greeting.clear();
        edit.entry = "missing".into();
        let (_, actions) = IvrSession::start(&config, None, true, None, now);
        assert_eq!(actions, vec![IvrAction::Hangup]);
        let edit = std::sync::Arc::make_mut(&mut config);
        edit.entry = "top".into();
        edit.menus[0].prompt.clear();
        edit.menus[0]
            .keys
            .insert('5', vec![IvrStep::Play("x".into())]);
        let (mut session, actions) = IvrSession::start(&config, None, true, None, now);
        assert!(actions.is_empty(), "no prompt: straight to waiting");
        assert!(session.deadline().is_some());
        let (names, token) = played(&session.on_digit(now, '5'));
        assert_eq!(names, vec!["x"]);
        assert_eq!(
            session.on_playback_finished(now, token),
            vec![IvrAction::Hangup]
        );
    }

    #[test]
    fn the_path_is_bounded() {
        let now = Instant::now();
        let (mut session, _) = at_top_menu(now);
        for _ in 0..100 {
            session.on_digit(now, '9');
        }
        let path = session.path();
        assert!(path.ends_with(">..."), "{path}");
        assert_eq!(path.matches('>').count(), MAX_PATH_MENUS);
    }

    /// What the caller (or the network) can do to a session.
    #[derive(Debug, Clone)]
    enum Event {
        Digit(char),
        /// Finish the latest playback, or an older (stale) one.
        Finished {
            stale: bool,
        },
        /// Fire the timer, at the deadline or `early` before it.
        Timeout {
            early: bool,
        },
        /// Time passes.
        Wait(u64),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            prop::sample::select(vec!['0', '1', '2', '3', '5', '9', '*', '#', 'a', 'x'])
                .prop_map(Event::Digit),
            any::<bool>().prop_map(|stale| Event::Finished { stale }),
            any::<bool>().prop_map(|early| Event::Timeout { early }),
            (0u64..20_000).prop_map(Event::Wait),
        ]
    }

    /// Tracks the playback call control would be running.
    struct Driver {
        now: Instant,
        playing: Option<u64>,
        exits: Vec<IvrAction>,
    }

    impl Driver {
        fn apply(&mut self, actions: Vec<IvrAction>) {
            for action in actions {
                match action {
                    IvrAction::Play { token, .. } => self.playing = Some(token),
                    IvrAction::StopPlayback => self.playing = None,
                    exit => {
                        self.playing = None;
                        self.exits.push(exit);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_event_sequence_is_safe_and_timeouts_always_end_the_call(
            events in prop::collection::vec(event(), 0..60),
            open in any::<bool>(),
            emergency in any::<bool>(),
            looping in any::<bool>(),
        ) {
            let mut config = config();
        let edit = std::sync::Arc::make_mut(&mut config);
            edit.closed = vec![IvrStep::Play("closed".into()), IvrStep::Menu("support".into())];
            if looping {
                for menu in &mut edit.menus {
                    menu.on_failure = vec![IvrStep::Play("goodbye".into()), IvrStep::Menu("top".into())];
                }
            }
            let start = Instant::now();
            let (mut session, actions) = IvrSession::start(
                &config, None, open, emergency.then_some("emergency"), start);
            let mut driver = Driver { now: start, playing: None, exits: Vec::new() };
            driver.apply(actions);
            for event in events {
                let actions = match event {
                    Event::Digit(key) => session.on_digit(driver.now, key),
                    Event::Finished { stale } => match driver.playing {
                        Some(token) if !stale => {
                            driver.playing = None;
                            session.on_playback_finished(driver.now, token)
                        }
                        Some(token) => session.on_playback_finished(driver.now, token.saturating_sub(1)),
                        None => session.on_playback_finished(driver.now, 0),
                    },
                    Event::Timeout { early } => match session.deadline() {
                        Some(deadline) if !early => {
                            driver.now = driver.now.max(deadline);
                            session.on_timeout(driver.now)
                        }
                        _ => session.on_timeout(driver.now),
                    },
                    Event::Wait(ms) => {
                        driver.now += Duration::from_millis(ms);
                        Vec::new()
                    }
                };
                driver.apply(actions);
                // A key is awaited exactly when nothing plays and the session is still running.
                prop_assert_eq!(
                    session.deadline().is_some(),
                    driver.playing.is_none() && !session.is_finished(),
                    "{:?}", session.phase
                );
            }
            // From here the caller stays silent: prompts play out and timeouts fire.
            let mut events = 0;
            while !session.is_finished() {
                events += 1;
                prop_assert!(events <= 200, "no exit after 200 events: {:?}", session.phase);
                let actions = match (driver.playing.take(), session.deadline()) {
                    (Some(token), _) => session.on_playback_finished(driver.now, token),
                    (None, Some(deadline)) => {
                        driver.now = deadline;
                        session.on_timeout(deadline)
                    }
                    (None, None) => {
                        prop_assert!(false, "stuck: nothing plays and no deadline");
                        Vec::new()
                    }
                };
                driver.apply(actions);
            }
            prop_assert_eq!(driver.exits.len(), 1, "{:?}", driver.exits);
            prop_assert!(driver.exits[0].is_exit());
        }
    }
}
