//! The "Campaigns" section of `switchboard report`: per campaign, the attempts its CDRs record
//! over the report's range by result (answered, no answer, busy, wrong number, failed), and from
//! the campaign list kept next to the CDRs (`campaigns.json`) where its contacts stand now
//! (finished, remaining, do-not-call) with the agents' wrap-up dispositions of the answered ones.
//! The table is written here; CSV and HTML carry the same figures in the report itself
//! (`Report::campaigns`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use cdr::report::{CampaignContacts, CampaignFigures};

use crate::switch::campaign::list::ContactState;
use crate::switch::campaign::SavedCampaign;

/// The campaigns of the report: those with attempts in `attempts` (counted from the CDRs with
/// [`cdr::report::count_campaign_attempts`]) and, unless `only_dialled`, every campaign of the
/// list on `queue` (or every queue), each with its contacts as the list has them. Campaigns
/// sharing a name are added together (the CDRs name campaigns, not their ids).
pub fn gather(
    mut attempts: BTreeMap<String, CampaignFigures>,
    saved: &[SavedCampaign],
    queue: Option<&str>,
    only_dialled: bool,
) -> Vec<(String, CampaignFigures)> {
    for campaign in saved {
        if queue.is_some_and(|q| q != campaign.queue) {
            continue;
        }
        if only_dialled && !attempts.contains_key(&campaign.name) {
            continue;
        }
        let figures = attempts.entry(campaign.name.clone()).or_default();
        let contacts = figures.contacts.get_or_insert_with(Default::default);
        add_contacts(campaign, contacts);
    }
    attempts.into_iter().collect()
}

fn add_contacts(campaign: &SavedCampaign, into: &mut CampaignContacts) {
    for saved in &campaign.contacts {
        let contact = &saved.contact;
        into.total += 1;
        match contact.state {
            ContactState::Answered | ContactState::NotReached => into.finished += 1,
            ContactState::DoNotCall => into.do_not_call += 1,
            ContactState::Pending | ContactState::InProgress | ContactState::RetryWait => {
                into.remaining += 1
            }
        }
        if let Some(code) = &contact.disposition {
            *into.dispositions.entry(code.clone()).or_default() += 1;
        }
    }
}

/// Reads the campaign list kept in `cdr_dir` (none when there is no file).
pub fn load(cdr_dir: &Path) -> Vec<SavedCampaign> {
    crate::campaign_journal::load(&crate::campaign_journal::path(cdr_dir))
}

/// Writes the text section; nothing when there is no campaign.
pub fn write(campaigns: &[(String, CampaignFigures)], out: &mut dyn Write) -> std::io::Result<()> {
    if campaigns.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nCampaigns")?;
    let width = campaigns
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max("CAMPAIGN".len());
    writeln!(
        out,
        "{:<width$}  ATTEMPTS  ANSWERED  NO-ANSWER  BUSY  WRONG-NUMBER  FAILED  CONTACTS  FINISHED  REMAINING  DNC  DISPOSITIONS",
        "CAMPAIGN"
    )?;
    for (name, f) in campaigns {
        write!(
            out,
            "{name:<width$}  {:>8}  {:>8}  {:>9}  {:>4}  {:>12}  {:>6}",
            f.attempts, f.answered, f.no_answer, f.busy, f.wrong_number, f.failed
        )?;
        match &f.contacts {
            Some(c) => {
                let dispositions: Vec<String> = c
                    .dispositions
                    .iter()
                    .map(|(code, n)| format!("{code} {n}"))
                    .collect();
                writeln!(
                    out,
                    "  {:>8}  {:>8}  {:>9}  {:>3}  {}",
                    c.total,
                    c.finished,
                    c.remaining,
                    c.do_not_call,
                    dispositions.join(", ")
                )?;
            }
            None => writeln!(out, "  (list not found)")?,
        }
    }
    writeln!(
        out,
        "Attempts are those of the report's range; contacts and dispositions are the campaign lists as they stand now."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::campaign::list::{parse_contacts, Mode, Resume};
    use crate::switch::campaign::SavedContact;

    fn saved(name: &str, queue: &str, states: &[(ContactState, Option<&str>)]) -> SavedCampaign {
        let csv: String = std::iter::once("number".to_owned())
            .chain((0..states.len()).map(|i| format!("{}", 2001 + i)))
            .collect::<Vec<_>>()
            .join("\n");
        let contacts = parse_contacts(&csv).expect("valid list");
        SavedCampaign {
            id: 1,
            name: name.to_owned(),
            queue: queue.to_owned(),
            mode: Mode::Preview,
            caller_id: None,
            timezone: None,
            max_attempts: 2,
            retry_s: 60,
            running: true,
            dnc: Vec::new(),
            contacts: contacts
                .into_iter()
                .zip(states)
                .map(|(mut contact, (state, disposition))| {
                    contact.state = *state;
                    contact.disposition = disposition.map(str::to_owned);
                    SavedContact {
                        contact,
                        resume: Resume::Nothing,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn attempts_from_the_cdrs_meet_the_contacts_of_the_list() {
        let attempts: BTreeMap<String, CampaignFigures> = [
            (
                "spring".to_owned(),
                CampaignFigures {
                    attempts: 4,
                    answered: 2,
                    busy: 2,
                    ..Default::default()
                },
            ),
            (
                "gone".to_owned(),
                CampaignFigures {
                    attempts: 1,
                    no_answer: 1,
                    ..Default::default()
                },
            ),
        ]
        .into();
        let lists = [
            saved(
                "spring",
                "support",
                &[
                    (ContactState::Answered, Some("follow-up")),
                    (ContactState::Answered, Some("resolved")),
                    (ContactState::NotReached, None),
                    (ContactState::DoNotCall, None),
                    (ContactState::Pending, None),
                    (ContactState::RetryWait, None),
                ],
            ),
            saved("idle", "support", &[(ContactState::Pending, None)]),
            saved("sales-push", "sales", &[(ContactState::Pending, None)]),
        ];
        let campaigns = gather(attempts.clone(), &lists, Some("support"), false);
        let names: Vec<&str> = campaigns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["gone", "idle", "spring"], "not another queue's");
        let spring = &campaigns[2].1;
        assert_eq!((spring.attempts, spring.answered, spring.busy), (4, 2, 2));
        let contacts = spring.contacts.as_ref().expect("the list was found");
        assert_eq!(
            (
                contacts.total,
                contacts.finished,
                contacts.remaining,
                contacts.do_not_call
            ),
            (6, 3, 2, 1)
        );
        assert_eq!(contacts.dispositions_text(), "follow-up=1;resolved=1");
        assert_eq!(campaigns[0].1.contacts, None, "no list for \"gone\"");
        assert_eq!(campaigns[1].1.attempts, 0, "listed, never dialled");

        // Filtered by agent: only the campaigns that agent dialled.
        let dialled = gather(attempts, &lists, None, true);
        let names: Vec<&str> = dialled.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["gone", "spring"]);

        let mut text = Vec::new();
        write(&campaigns, &mut text).expect("written");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(text.starts_with("\nCampaigns\nCAMPAIGN"), "{text}");
        let spring_line = text
            .lines()
            .find(|l| l.starts_with("spring"))
            .expect("a spring line");
        let cells: Vec<&str> = spring_line.split_whitespace().collect();
        assert_eq!(
            cells,
            vec![
                "spring",
                "4",
                "2",
                "0",
                "2",
                "0",
                "0",
                "6",
                "3",
                "2",
                "1",
                "follow-up",
                "1,",
                "resolved",
                "1"
            ],
            "{text}"
        );
        assert!(
            text.contains("gone") && text.contains("(list not found)"),
            "{text}"
        );
        let mut empty = Vec::new();
        write(&[], &mut empty).expect("written");
        assert!(empty.is_empty());
    }
}
