//! Campaigns kept across restarts: call control hands over every campaign (settings, running
//! or paused, each contact's progress) whenever one changes, and this edge writes them to
//! `<[cdr] dir>/campaigns.json` (a whole new file renamed over the old one, so a crash leaves
//! the old list or the new one); at start they are read back and taken up again.

use std::path::{Path, PathBuf};

use crate::switch::campaign::SavedCampaign;

/// Where the journal lives.
pub fn path(cdr_dir: &Path) -> PathBuf {
    cdr_dir.join("campaigns.json")
}

/// A task that writes the latest campaigns handed to the returned sender, off the call-control
/// task (a list of many thousand contacts is megabytes of JSON). Changes that arrive while a
/// write is under way are folded into the next one; writes happen in order.
pub fn spawn_writer(path: PathBuf) -> tokio::sync::watch::Sender<Vec<SavedCampaign>> {
    let (sender, mut latest) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(async move {
        while latest.changed().await.is_ok() {
            let campaigns = latest.borrow_and_update().clone();
            let path = path.clone();
            let written = tokio::task::spawn_blocking(move || save(&path, &campaigns)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "campaigns not journalled"),
                Err(error) => tracing::error!(%error, "campaign journal writer stopped"),
            }
        }
    });
    sender
}

/// Writes the campaigns (replacing the previous file).
pub fn save(path: &Path, campaigns: &[SavedCampaign]) -> std::io::Result<()> {
    let text = serde_json::to_vec(campaigns).map_err(std::io::Error::other)?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// Reads the campaigns; none when there is no file. A file that cannot be read is logged and
/// treated as empty (the campaigns are then lost; their CDRs remain).
pub fn load(path: &Path) -> Vec<SavedCampaign> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "campaigns not read");
            return Vec::new();
        }
    };
    serde_json::from_slice(&text).unwrap_or_else(|error| {
        tracing::error!(path = %path.display(), %error, "campaigns file is not a campaign list");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::campaign::list::{parse_contacts, Mode, Resume};
    use crate::switch::campaign::SavedContact;

    fn campaign(id: u64, running: bool) -> SavedCampaign {
        SavedCampaign {
            id,
            name: format!("c{id}"),
            queue: "support".into(),
            mode: Mode::Preview,
            caller_id: None,
            max_attempts: 1,
            retry_s: 1,
            running,
            dnc: Vec::new(),
            contacts: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_writer_ends_with_the_latest_campaigns_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        let writer = spawn_writer(file.clone());
        writer.send_replace(vec![campaign(1, false)]);
        writer.send_replace(vec![campaign(1, true), campaign(2, false)]);
        let latest = vec![campaign(1, true), campaign(2, false)];
        // Wait (generously) for the write to land; earlier ones may have been folded into it.
        let landed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while load(&file) != latest {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(landed.is_ok(), "the latest campaigns were not written");
    }

    #[test]
    fn saved_campaigns_read_back_and_no_file_or_garbage_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        assert!(load(&file).is_empty(), "no file yet");
        let contacts =
            parse_contacts("number,name,order\n2001,Li Lei,A-1\n2002,,A-2\n").expect("valid list");
        let saved = vec![SavedCampaign {
            id: 3,
            name: "return-visit".into(),
            queue: "support".into(),
            mode: Mode::Progressive,
            caller_id: Some("4000100".into()),
            max_attempts: 2,
            retry_s: 60,
            running: true,
            dnc: vec!["2003".into()],
            contacts: contacts
                .into_iter()
                .zip([
                    Resume::Dialling,
                    Resume::RetryIn(std::time::Duration::from_secs(9)),
                ])
                .map(|(contact, resume)| SavedContact { contact, resume })
                .collect(),
        }];
        save(&file, &saved).expect("saved");
        assert_eq!(load(&file), saved);
        assert!(
            !file.with_extension("json.partial").exists(),
            "renamed into place"
        );
        std::fs::write(&file, b"not json").expect("write");
        assert!(load(&file).is_empty());
    }
}
