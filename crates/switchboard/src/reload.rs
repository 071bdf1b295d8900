//! Live configuration reload: `switchboard reload`, `POST /api/reload` and SIGHUP all come
//! here. One task re-reads the file the node was started with, checks it with the loader
//! `check-config` uses, works out the difference to the running configuration, and hands the
//! changes to call control, which applies them between two events (no lock is held across the
//! call core). A bad file, or a change that needs a restart, changes nothing. The TLS
//! certificates are re-read on every reload as well (certbot's deploy hook sends SIGHUP).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditLog, AuditRecord, Who};
use crate::config::diff::{Change, ConfigChange, NeedsRestart};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::prompt_library::PromptLibrary;

/// The configuration and prompts the node runs with now, read by the HTTP API (tokens,
/// numbers, prompt names) on each request and replaced by a reload.
pub struct LiveConfig {
    config: RwLock<Arc<Config>>,
    prompts: RwLock<Arc<PromptLibrary>>,
}

/// Reads an `Arc` out of a lock. A writer never panics while holding it (it only swaps the
/// `Arc`), so a poisoned lock still holds a whole value.
fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    Arc::clone(
        &lock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

fn write<T>(lock: &RwLock<Arc<T>>, value: Arc<T>) {
    *lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

impl LiveConfig {
    /// Starts with `config` and its `prompts`.
    pub fn new(config: Arc<Config>, prompts: Arc<PromptLibrary>) -> Self {
        Self {
            config: RwLock::new(config),
            prompts: RwLock::new(prompts),
        }
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        read(&self.config)
    }

    /// The prompts in use.
    pub fn prompts(&self) -> Arc<PromptLibrary> {
        read(&self.prompts)
    }

    fn replace(&self, config: Arc<Config>, prompts: Arc<PromptLibrary>) {
        write(&self.config, config);
        write(&self.prompts, prompts);
    }
}

/// A request to reload, from the API or the CLI (SIGHUP is watched by the reloader itself).
pub struct ReloadRequest {
    /// Who asked (written to the audit log).
    pub who: Who,
    /// The address they asked from.
    pub from: Option<String>,
    /// The outcome.
    pub reply: oneshot::Sender<ReloadOutcome>,
}

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Every change was applied (possibly none: the file did not change).
    Applied(Vec<ConfigChange>),
    /// Nothing was applied.
    Refused(Refusal),
}

/// Why a reload changed nothing.
#[derive(Debug)]
pub enum Refusal {
    /// The node runs the embedded demo: there is no file to re-read.
    NoFile,
    /// The file does not load; every error with file:line:column and field.
    Invalid(String),
    /// Keys that changed and can only change on restart.
    NeedsRestart(Vec<NeedsRestart>),
    /// Call control has stopped (the node is shutting down).
    Stopped,
}

impl Refusal {
    /// A stable machine code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoFile => "no_config_file",
            Refusal::Invalid(_) => "invalid_config",
            Refusal::NeedsRestart(_) => "restart_required",
            Refusal::Stopped => "shutting_down",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoFile => write!(
                f,
                "the node runs the embedded demo (no --config): there is no file to reload"
            ),
            Refusal::Invalid(errors) => {
                write!(f, "the file is invalid, nothing was changed: {errors}")
            }
            Refusal::NeedsRestart(keys) => {
                let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "these changes need a restart, nothing was changed: {}",
                    keys.join("; ")
                )
            }
            Refusal::Stopped => write!(f, "the node is shutting down"),
        }
    }
}

/// What call control must apply, sent into its loop.
pub struct CoreReload {
    /// The new configuration (already checked).
    pub config: Arc<Config>,
    /// What differs from the running one.
    pub changes: Vec<ConfigChange>,
    /// The prompt files, read again (changed WAV files and new languages apply).
    pub prompts: Arc<PromptLibrary>,
    /// Answered once applied.
    pub applied: oneshot::Sender<()>,
}

/// Re-reads the TLS certificates; implemented by the runtime's certificate holder.
pub trait CertificateReload: Send + Sync {
    /// Reloads every certificate, auditing each one.
    fn reload_certificates(&self, audit: &AuditLog);
}

/// The task that performs reloads one at a time.
pub struct Reloader {
    /// The file the node was started with; `None` for the demo.
    pub path: Option<PathBuf>,
    /// The configuration in force.
    pub live: Arc<LiveConfig>,
    /// Call control's reload inbox.
    pub core: mpsc::Sender<CoreReload>,
    /// The TLS certificates.
    pub certificates: Box<dyn CertificateReload>,
    /// Where each reload is recorded.
    pub audit: AuditLog,
    /// `switchboard_config_reloads_total`.
    pub metrics: Arc<Metrics>,
    /// Its trusted addresses follow the trunks' ACLs.
    pub gate: Arc<crate::security::gate::Gate>,
    /// What earlier reloads did that the next ones must respect.
    pub history: ReloadHistory,
}

/// Queues added and removed since the start: the ACD keeps a removed queue's place (so its
/// name cannot come back before a restart) and has room for a bounded number of additions.
#[derive(Debug, Default)]
pub struct ReloadHistory {
    removed_queues: std::collections::HashSet<String>,
    queues_added: usize,
}

impl ReloadHistory {
    /// The keys among `changes` that the ACD cannot take before a restart.
    fn refusals(&self, changes: &[ConfigChange]) -> Vec<NeedsRestart> {
        let added: Vec<&ConfigChange> = changes
            .iter()
            .filter(|c| c.section == "queue" && c.change == Change::Added)
            .collect();
        let mut refusals: Vec<NeedsRestart> = added
            .iter()
            .filter(|c| self.removed_queues.contains(&c.name))
            .map(|c| NeedsRestart {
                key: format!("queue.{}", c.name),
                reason: "a queue removed since the start keeps its name until a restart",
            })
            .collect();
        if self.queues_added + added.len() > acd::QUEUES_ADDED_LIVE {
            refusals.push(NeedsRestart {
                key: "queue".to_owned(),
                reason: "the ACD has room for 64 queues added live; adding more needs a restart",
            });
        }
        refusals
    }

    fn record(&mut self, changes: &[ConfigChange]) {
        for change in changes.iter().filter(|c| c.section == "queue") {
            match change.change {
                Change::Added => self.queues_added += 1,
                Change::Removed => {
                    self.removed_queues.insert(change.name.clone());
                }
                Change::Changed => {}
            }
        }
    }
}

impl Reloader {
    /// Serves reload requests and SIGHUPs until the request channel closes.
    pub async fn run(mut self, mut requests: mpsc::Receiver<ReloadRequest>) {
        #[cfg(unix)]
        let mut hangups =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(hangups) => Some(hangups),
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGHUP: use `switchboard reload`");
                    None
                }
            };
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                request = requests.recv() => {
                    let Some(request) = request else { return };
                    let outcome = self.reload(request.who, request.from).await;
                    let _ = request.reply.send(outcome);
                }
                Some(()) = hangup => {
                    tracing::info!("SIGHUP: reloading the configuration and TLS certificates");
                    let who = Who {
                        role: Some("system".to_owned()),
                        ..Default::default()
                    };
                    self.reload(who, Some("SIGHUP".to_owned())).await;
                }
            }
        }
    }

    /// One reload: certificates, then the configuration file.
    async fn reload(&mut self, who: Who, from: Option<String>) -> ReloadOutcome {
        self.certificates.reload_certificates(&self.audit);
        let outcome = self.reload_config().await;
        let (result, target) = match &outcome {
            ReloadOutcome::Applied(changes) => {
                let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
                tracing::info!(changes = %listed.join(", "), "configuration reloaded");
                ("applied", listed.join(", "))
            }
            ReloadOutcome::Refused(refusal) => {
                tracing::warn!(%refusal, "configuration reload refused");
                ("refused", refusal.to_string())
            }
        };
        self.metrics
            .config_reloads
            .with_label_values(&[result])
            .inc();
        let path = self
            .path
            .as_ref()
            .map_or_else(|| "(demo)".to_owned(), |p| p.display().to_string());
        let target = if target.is_empty() {
            format!("{path}: no change")
        } else {
            format!("{path}: {target}")
        };
        let record = AuditRecord::now(who, from, "config-reload", Some(target), result);
        if let Err(error) = self.audit.write(record).await {
            tracing::warn!(%error, "the reload could not be audited");
        }
        outcome
    }

    /// Reads the prompt files for every language `config` names (off the async workers).
    async fn load_prompts(&self, config: &Config) -> Result<Arc<PromptLibrary>, String> {
        let dir = config.media.prompts_dir.clone();
        let languages = crate::runtime::prompt_languages(config);
        let loaded = tokio::task::spawn_blocking(move || {
            PromptLibrary::load(dir.as_deref(), &languages).map_err(|e| format!("{e:#}"))
        })
        .await
        .map_err(|error| format!("the prompt loader stopped: {error}"))?;
        loaded
            .map(Arc::new)
            .map_err(|error| format!("loading the prompts: {error}"))
    }

    async fn reload_config(&mut self) -> ReloadOutcome {
        let Some(path) = self.path.clone() else {
            return ReloadOutcome::Refused(Refusal::NoFile);
        };
        // Reading the file and checking certificates is blocking work: off the async workers.
        let loaded =
            tokio::task::spawn_blocking(move || crate::start_check::load_file(&path)).await;
        let config = match loaded {
            Ok(Ok(config)) => Arc::new(config),
            Ok(Err(errors)) => return ReloadOutcome::Refused(Refusal::Invalid(errors.to_string())),
            Err(error) => {
                return ReloadOutcome::Refused(Refusal::Invalid(format!(
                    "the loader stopped: {error}"
                )))
            }
        };
        let current = self.live.current();
        let changes = match crate::config::diff::diff(&current, &config) {
            Ok(changes) => changes,
            Err(keys) => return ReloadOutcome::Refused(Refusal::NeedsRestart(keys)),
        };
        let refusals = self.history.refusals(&changes);
        if !refusals.is_empty() {
            return ReloadOutcome::Refused(Refusal::NeedsRestart(refusals));
        }
        let prompts = match self.load_prompts(&config).await {
            Ok(prompts) => prompts,
            Err(error) => return ReloadOutcome::Refused(Refusal::Invalid(error)),
        };
        let (applied, done) = oneshot::channel();
        let sent = self.core.send(CoreReload {
            config: Arc::clone(&config),
            changes: changes.clone(),
            prompts: Arc::clone(&prompts),
            applied,
        });
        if sent.await.is_err() || done.await.is_err() {
            return ReloadOutcome::Refused(Refusal::Stopped);
        }
        self.history.record(&changes);
        for removed in changes
            .iter()
            .filter(|c| c.section == "queue" && c.change == Change::Removed)
        {
            self.metrics.forget_queue(&removed.name);
        }
        self.gate.set_trusted(&config);
        self.live.replace(config, prompts);
        ReloadOutcome::Applied(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCertificates;

    impl CertificateReload for NoCertificates {
        fn reload_certificates(&self, _: &AuditLog) {}
    }

    const BASE: &str = "[[trunk]]\nname = \"t\"\nallow = [\"10.0.0.0/8\"]\n";

    type Gate = Arc<crate::security::gate::Gate>;

    /// A reloader over `path` whose core applies every reload at once; returns the requests
    /// channel's sender, the configuration it serves and its gate.
    fn reloader(path: Option<PathBuf>) -> (mpsc::Sender<ReloadRequest>, Arc<LiveConfig>, Gate) {
        let config = Arc::new(crate::config::load_str("t.toml", BASE).expect("valid"));
        let prompts = PromptLibrary::load(None, &["en".to_owned()]).expect("built-in prompts");
        let live = Arc::new(LiveConfig::new(Arc::clone(&config), Arc::new(prompts)));
        let metrics = Arc::new(Metrics::new(&config));
        let gate = Arc::new(crate::security::gate::Gate::new(
            &config,
            metrics.security_events.clone(),
        ));
        let (core, mut applied) = mpsc::channel::<CoreReload>(1);
        tokio::spawn(async move {
            while let Some(reload) = applied.recv().await {
                let _ = reload.applied.send(());
            }
        });
        let reloader = Reloader {
            path,
            live: Arc::clone(&live),
            core,
            certificates: Box::new(NoCertificates),
            audit: AuditLog::disabled(),
            metrics,
            gate: Arc::clone(&gate),
            history: ReloadHistory::default(),
        };
        let (requests, inbox) = mpsc::channel(1);
        tokio::spawn(reloader.run(inbox));
        (requests, live, gate)
    }

    async fn ask(requests: &mpsc::Sender<ReloadRequest>) -> ReloadOutcome {
        let (reply, outcome) = oneshot::channel();
        let request = ReloadRequest {
            who: Who::default(),
            from: None,
            reply,
        };
        requests.send(request).await.expect("the reloader runs");
        outcome.await.expect("an answer")
    }

    #[test]
    fn a_removed_queue_cannot_come_back_before_a_restart() {
        let change = |name: &str, change| ConfigChange {
            section: "queue",
            name: name.to_owned(),
            change,
        };
        let mut history = ReloadHistory::default();
        history.record(&[
            change("sales", Change::Removed),
            change("new", Change::Added),
        ]);
        let refused = history.refusals(&[change("sales", Change::Added)]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].key, "queue.sales");
        assert!(history
            .refusals(&[change("other", Change::Added)])
            .is_empty());
        let many: Vec<ConfigChange> = (0..acd::QUEUES_ADDED_LIVE)
            .map(|n| change(&format!("q{n}"), Change::Added))
            .collect();
        // One was added already: 64 more do not fit.
        let refused = history.refusals(&many);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].key, "queue");
    }

    #[tokio::test]
    async fn a_node_without_a_file_refuses_to_reload() {
        let (requests, _, _) = reloader(None);
        let outcome = ask(&requests).await;
        assert!(
            matches!(outcome, ReloadOutcome::Refused(Refusal::NoFile)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_applied_reload_replaces_the_configuration_the_api_reads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard.toml");
        let trunk = BASE.replace("10.0.0.0/8", "192.0.2.0/24");
        std::fs::write(&path, &trunk).expect("written");
        let (requests, live, gate) = reloader(Some(path.clone()));
        let new_trunk: std::net::IpAddr = "192.0.2.7".parse().expect("address");
        assert!(!gate.is_trusted(new_trunk));
        match ask(&requests).await {
            ReloadOutcome::Applied(changes) => {
                let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
                assert_eq!(listed, ["trunk t changed"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            live.current().trunks[0].allow[0].to_string(),
            "192.0.2.0/24"
        );
        assert!(
            gate.is_trusted(new_trunk),
            "the trunk's new ACL is exempt from bans"
        );
        // A file that no longer loads changes nothing.
        std::fs::write(&path, "[[trunk]]\nname = 5\n").expect("written");
        let outcome = ask(&requests).await;
        match &outcome {
            ReloadOutcome::Refused(refusal @ Refusal::Invalid(errors)) => {
                assert_eq!(refusal.code(), "invalid_config");
                assert!(errors.contains("switchboard.toml:2:"), "{errors}");
                assert!(errors.contains("trunk[0].name"), "{errors}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            live.current().trunks[0].allow[0].to_string(),
            "192.0.2.0/24"
        );
    }
}
