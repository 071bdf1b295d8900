//! CSV output, for spreadsheets and further processing.
//!
//! One row per interval and group; `section` is `total`, `queue` or `agent`. Rates are
//! fractions (0–1), durations seconds, undefined values empty. `agents_needed` is filled
//! on queue rows only. Per-agent transfers over the whole range follow as rows of section
//! `agent_transfers` (interval = the report's range), with only `transfers_out` and
//! `transfers_in` filled. Campaigns follow as rows of section `campaign` (group = the campaign's
//! name, interval = the report's range) with only the `campaign_*` columns filled: attempts by
//! result over the range, and the contacts as they stand now (`contacts_*`, empty when the
//! campaign list was not found) with the wrap-up dispositions as `code=n;code=n`.

use std::io::{self, Write};

use super::{staffing_lookup, COLUMNS};
use crate::report::{Report, ReportRow};

/// Writes the report as CSV with a header row.
pub(crate) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["section", "interval_start", "interval_end", "group"];
    header.extend(COLUMNS.iter().map(|c| c.csv_name));
    header.push("agents_needed");
    header.extend(["transfers_out", "transfers_in"]);
    header.extend(CAMPAIGN_COLUMNS);
    writer.write_record(&header).map_err(io::Error::other)?;
    let staffing = staffing_lookup(report);
    let sections: [(&str, &[ReportRow]); 3] = [
        ("total", &report.totals),
        ("queue", &report.queues),
        ("agent", &report.agents),
    ];
    for (section, rows) in sections {
        for row in rows {
            let mut record = vec![
                section.to_string(),
                super::iso(row.interval_start),
                super::iso(row.interval_end),
                row.group.clone(),
            ];
            record.extend(COLUMNS.iter().map(|c| (c.value)(&row.figures).raw()));
            let needed = if section == "queue" {
                staffing
                    .get(&(row.interval_start, row.group.as_str()))
                    .copied()
                    .flatten()
            } else {
                None
            };
            record.push(needed.map(|n| n.to_string()).unwrap_or_default());
            record.extend(std::iter::repeat_n(
                String::new(),
                2 + CAMPAIGN_COLUMNS.len(),
            ));
            writer.write_record(&record).map_err(io::Error::other)?;
        }
    }
    for (agent, transfers) in &report.agent_transfers {
        let mut record = vec![
            "agent_transfers".to_string(),
            super::iso(report.query.from),
            super::iso(report.query.to),
            agent.clone(),
        ];
        // No figure columns and no agents_needed: this row counts transfers only.
        record.extend(std::iter::repeat_n(String::new(), COLUMNS.len() + 1));
        record.extend([transfers.out.to_string(), transfers.received.to_string()]);
        record.extend(std::iter::repeat_n(String::new(), CAMPAIGN_COLUMNS.len()));
        writer.write_record(&record).map_err(io::Error::other)?;
    }
    for (campaign, figures) in &report.campaigns {
        let mut record = vec![
            "campaign".to_string(),
            super::iso(report.query.from),
            super::iso(report.query.to),
            campaign.clone(),
        ];
        record.extend(std::iter::repeat_n(String::new(), COLUMNS.len() + 3));
        record.extend(
            [
                figures.attempts,
                figures.answered,
                figures.no_answer,
                figures.busy,
                figures.wrong_number,
                figures.failed,
            ]
            .map(|n| n.to_string()),
        );
        match &figures.contacts {
            Some(c) => {
                record.extend(
                    [c.total, c.finished, c.remaining, c.do_not_call].map(|n| n.to_string()),
                );
                record.push(c.dispositions_text());
            }
            None => record.extend(std::iter::repeat_n(String::new(), 5)),
        }
        writer.write_record(&record).map_err(io::Error::other)?;
    }
    writer.flush()
}

/// The columns only `campaign` rows fill.
const CAMPAIGN_COLUMNS: [&str; 11] = [
    "campaign_attempts",
    "campaign_answered",
    "campaign_no_answer",
    "campaign_busy",
    "campaign_wrong_number",
    "campaign_failed",
    "campaign_contacts",
    "campaign_contacts_finished",
    "campaign_contacts_remaining",
    "campaign_do_not_call",
    "campaign_dispositions",
];
