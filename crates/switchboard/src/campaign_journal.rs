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

/// The task that writes every new list of campaigns, off the call-control task (a list of
/// many thousand contacts is megabytes of JSON; see [`crate::snapshot_file::spawn_writer`]).
pub fn spawn_writer(path: PathBuf) -> tokio::sync::watch::Sender<Vec<SavedCampaign>> {
    crate::snapshot_file::spawn_writer(path, "campaigns")
}

/// Reads the campaigns; none when there is no file (see [`crate::snapshot_file::load`]).
pub fn load(path: &Path) -> Vec<SavedCampaign> {
    crate::snapshot_file::load(path, "campaigns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::campaign::list::{parse_contacts, Mode, Resume};
    use crate::switch::campaign::SavedContact;

    #[test]
    fn saved_campaigns_read_back_and_no_file_or_garbage_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        assert!(load(&file).is_empty(), "no file yet");
        let contacts = parse_contacts(
            "number,name,order,timezone\n2001,Li Lei,A-1,Asia/Shanghai\n2002,,A-2,\n",
        )
        .expect("valid list");
        let saved = vec![SavedCampaign {
            id: 3,
            name: "return-visit".into(),
            queue: "support".into(),
            mode: Mode::Progressive,
            caller_id: Some("4000100".into()),
            timezone: Some("America/New_York".into()),
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
        crate::snapshot_file::save(&file, &saved).expect("saved");
        assert_eq!(load(&file), saved);
        assert!(
            !file.with_extension("json.partial").exists(),
            "renamed into place"
        );
        std::fs::write(&file, b"not json").expect("write");
        assert!(load(&file).is_empty());
    }
}
