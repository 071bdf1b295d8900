//! Reads the Prometheus text exposition format (what `GET /metrics` serves) into samples, so
//! tests can compare counters with the calls they made. Deliberately independent of the
//! exporter's own code.

use std::collections::BTreeMap;

use crate::error::{HarnessError, HarnessResult};

/// One sample line: `name{label="value",...} 12.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with any `_total`/`_bucket`/`_count` suffix as written.
    pub name: String,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Samples in the order they were served.
    pub samples: Vec<Sample>,
    /// The scraped text, for failure messages.
    pub text: String,
}

impl Metrics {
    /// Parses a scrape. Comment lines (`# HELP`, `# TYPE`) and blank lines are skipped; any other
    /// line that is not a valid sample is an error, since the exporter must only serve valid text.
    pub fn parse(text: &str) -> HarnessResult<Self> {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(parse_sample)
            .collect::<HarnessResult<Vec<_>>>()?;
        Ok(Metrics {
            samples,
            text: text.to_owned(),
        })
    }

    /// The value of the sample `name` whose labels are exactly `labels` (any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// The value of sample `name` with exactly `labels`, with 0 for a series never served: a
    /// labelled counter only appears once something incremented it.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// The sum over every sample `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn bad(line: &str, reason: &str) -> HarnessError {
    HarnessError::Unexpected(format!("bad metrics line ({reason}): {line}"))
}

/// One `name{labels} value [timestamp]` line.
fn parse_sample(line: &str) -> HarnessResult<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| bad(line, "no value"))?;
    let (name, rest) = line.split_at(name_end);
    if name.is_empty() {
        return Err(bad(line, "no metric name"));
    }
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inside) => parse_labels(line, inside)?,
        None => (BTreeMap::new(), rest),
    };
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| bad(line, "no value"))?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|_| bad(line, "value is not a number"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y\"z"}` and returns the labels and what follows the closing brace.
fn parse_labels<'l>(
    line: &str,
    mut rest: &'l str,
) -> HarnessResult<(BTreeMap<String, String>, &'l str)> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, after_key) = rest
            .split_once("=\"")
            .ok_or_else(|| bad(line, "label without =\""))?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => return Err(bad(line, "dangling escape")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(bad(line, "unterminated label value")),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        rest = after_key
            .get(end + 1..)
            .ok_or_else(|| bad(line, "unterminated labels"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# HELP switchboard_calls_offered_total Calls.\n# TYPE switchboard_calls_offered_total counter\nswitchboard_calls_offered_total{queue=\"support\",trunk=\"t1\"} 3\nswitchboard_calls_offered_total{queue=\"sales\",trunk=\"t1\"} 1\nswitchboard_queue_wait_seconds_bucket{queue=\"support\",le=\"+Inf\"} 2\nswitchboard_draining 0\nweird{l=\"a \\\"quoted\\\", comma\"} 1.5e0 1700000000\n\n";

    #[test]
    fn samples_are_read_with_labels() {
        let metrics = Metrics::parse(SCRAPE).expect("valid scrape");
        assert_eq!(metrics.samples.len(), 5);
        assert_eq!(
            metrics.get(
                "switchboard_calls_offered_total",
                &[("trunk", "t1"), ("queue", "support")]
            ),
            Some(3.0)
        );
        assert_eq!(
            metrics.get("switchboard_calls_offered_total", &[("queue", "support")]),
            None,
            "get needs every label"
        );
        assert_eq!(
            metrics.sum("switchboard_calls_offered_total", &[("trunk", "t1")]),
            4.0
        );
        assert_eq!(
            metrics.get(
                "switchboard_queue_wait_seconds_bucket",
                &[("queue", "support"), ("le", "+Inf")]
            ),
            Some(2.0)
        );
        assert_eq!(metrics.get("switchboard_draining", &[]), Some(0.0));
        assert_eq!(
            metrics.get("weird", &[("l", "a \"quoted\", comma")]),
            Some(1.5)
        );
        assert_eq!(metrics.counter("never_served", &[("a", "b")]), 0.0);
        assert!(metrics.has("switchboard_draining"));
    }

    #[test]
    fn garbage_is_an_error() {
        for line in [
            "novalue",
            "x{a=\"1\" 2",
            "x{a=1} 2",
            "x 1.2.3",
            "{a=\"b\"} 1",
        ] {
            assert!(Metrics::parse(line).is_err(), "{line:?} parsed");
        }
    }
}
