//! Random durations for the simulation: handle times, caller patience and ring times, either
//! given (exponential, fixed) or learnt from the CDRs (empirical, Kaplan–Meier).
//!
//! Patience is *censored* data: a caller who was answered after 40 s would have waited at
//! least 40 s, we never learn how much longer. Taking only the abandoned waits would make
//! callers look far less patient than they are, so patience is estimated with the
//! Kaplan–Meier product-limit estimator (abandons are events, every other wait is censored).

use rand::Rng;
use std::fmt;

/// A distribution of non-negative durations in seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Always this many seconds.
    Fixed(f64),
    /// Exponential with this mean (seconds).
    Exponential(f64),
    /// Resample one of these observed values (sorted, never empty).
    Empirical(Vec<f64>),
    /// Kaplan–Meier survival curve (censored observations handled).
    KaplanMeier(SurvivalCurve),
    /// Infinite: callers never give up (no abandonment).
    Never,
}

/// A right-continuous step survival function S(t) from the Kaplan–Meier estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct SurvivalCurve {
    /// Event times in increasing order with S just after each: `(t, S(t))`.
    steps: Vec<(f64, f64)>,
    /// Events (abandons) per second of observed waiting: the exponential maximum-likelihood
    /// rate for censored data, used where a single rate is needed (Erlang A).
    rate: f64,
}

impl SurvivalCurve {
    /// S(t): the fraction of callers still willing to wait after `t` seconds.
    pub fn survival(&self, t: f64) -> f64 {
        let after = self.steps.partition_point(|(at, _)| *at <= t);
        if after == 0 {
            1.0
        } else {
            self.steps[after - 1].1
        }
    }
}

/// A distribution written on the command line or in an arrivals file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a distribution: expected exp:MEAN, fixed:SECONDS, a number of seconds (exponential mean) or none")]
pub struct BadDistribution {
    /// What was written.
    pub text: String,
}

impl Distribution {
    /// Parses `exp:180`, `fixed:30`, `180` (exponential mean) or `none` (never).
    pub fn parse(text: &str) -> Result<Distribution, BadDistribution> {
        let bad = || BadDistribution {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("none") {
            return Ok(Distribution::Never);
        }
        let (kind, value) = trimmed.split_once(':').unwrap_or(("exp", trimmed));
        let seconds: f64 = value.trim().parse().map_err(|_| bad())?;
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(bad());
        }
        match kind.trim() {
            "exp" if seconds > 0.0 => Ok(Distribution::Exponential(seconds)),
            "fixed" => Ok(Distribution::Fixed(seconds)),
            _ => Err(bad()),
        }
    }

    /// The empirical distribution of `samples` (non-finite and negative values dropped);
    /// `None` when nothing is left.
    pub fn empirical(samples: impl IntoIterator<Item = f64>) -> Option<Distribution> {
        let mut values: Vec<f64> = samples
            .into_iter()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(Distribution::Empirical(values))
    }

    /// The Kaplan–Meier estimate from `(time, event)` pairs, `event` true for an abandon and
    /// false for a censored wait (answered, overflowed, timed out). With no abandon at all the
    /// callers never gave up: [`Distribution::Never`].
    pub fn kaplan_meier(observations: impl IntoIterator<Item = (f64, bool)>) -> Distribution {
        let mut data: Vec<(f64, bool)> = observations
            .into_iter()
            .filter(|(t, _)| t.is_finite() && *t >= 0.0)
            .collect();
        let events = data.iter().filter(|(_, event)| *event).count();
        if events == 0 {
            return Distribution::Never;
        }
        let exposure: f64 = data.iter().map(|(t, _)| t).sum();
        // Events before censorings at the same time: a caller censored at t was still there at t.
        data.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut at_risk = data.len() as f64;
        let mut survival = 1.0;
        let mut steps = Vec::new();
        let mut index = 0;
        while index < data.len() {
            let time = data[index].0;
            let mut died = 0.0;
            let mut left = 0.0;
            while index < data.len() && data[index].0 == time {
                if data[index].1 {
                    died += 1.0;
                }
                left += 1.0;
                index += 1;
            }
            if died > 0.0 {
                survival *= 1.0 - died / at_risk;
                steps.push((time, survival));
            }
            at_risk -= left;
        }
        Distribution::KaplanMeier(SurvivalCurve {
            steps,
            rate: events as f64 / exposure.max(f64::MIN_POSITIVE),
        })
    }

    /// One draw in seconds; `f64::INFINITY` for [`Distribution::Never`] and for the part of a
    /// Kaplan–Meier curve beyond its last event (callers who would have waited longer than
    /// anyone was ever observed to abandon).
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Distribution::Fixed(seconds) => *seconds,
            Distribution::Exponential(mean) => {
                let u: f64 = rng.gen();
                -mean * (1.0 - u).ln()
            }
            Distribution::Empirical(values) => values[rng.gen_range(0..values.len())],
            Distribution::KaplanMeier(curve) => {
                // Inverse transform: the first event time where S falls to or below 1 − u.
                let u: f64 = rng.gen();
                let target = 1.0 - u;
                curve
                    .steps
                    .iter()
                    .find(|(_, s)| *s <= target)
                    .map_or(f64::INFINITY, |(t, _)| *t)
            }
            Distribution::Never => f64::INFINITY,
        }
    }

    /// The mean in seconds (`INFINITY` for never; for Kaplan–Meier the mean of the fitted
    /// exponential, the only single figure censored data gives without a tail assumption).
    pub fn mean(&self) -> f64 {
        match self {
            Distribution::Fixed(seconds) | Distribution::Exponential(seconds) => *seconds,
            Distribution::Empirical(values) => values.iter().sum::<f64>() / values.len() as f64,
            Distribution::KaplanMeier(curve) => 1.0 / curve.rate,
            Distribution::Never => f64::INFINITY,
        }
    }

    /// Abandon rate θ (per second) for Erlang A: 1 / mean, 0 for never.
    pub fn rate(&self) -> f64 {
        match self {
            Distribution::Never => 0.0,
            Distribution::KaplanMeier(curve) => curve.rate,
            other => {
                let mean = other.mean();
                if mean > 0.0 {
                    1.0 / mean
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distribution::Fixed(s) => write!(f, "fixed {s:.1} s"),
            Distribution::Exponential(m) => write!(f, "exponential, mean {m:.1} s"),
            Distribution::Empirical(v) => {
                write!(
                    f,
                    "empirical, {} samples, mean {:.1} s",
                    v.len(),
                    self.mean()
                )
            }
            Distribution::KaplanMeier(c) => write!(
                f,
                "Kaplan-Meier, {} event times, exponential fit mean {:.1} s",
                c.steps.len(),
                1.0 / c.rate
            ),
            Distribution::Never => f.write_str("never"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn parses_the_written_forms_and_refuses_others() {
        assert_eq!(
            Distribution::parse("exp:180"),
            Ok(Distribution::Exponential(180.0))
        );
        assert_eq!(
            Distribution::parse("90"),
            Ok(Distribution::Exponential(90.0))
        );
        assert_eq!(
            Distribution::parse("fixed:2.5"),
            Ok(Distribution::Fixed(2.5))
        );
        assert_eq!(Distribution::parse("none"), Ok(Distribution::Never));
        for bad in ["", "exp:0", "exp:-3", "gamma:3", "fixed:nan", "ten"] {
            assert!(Distribution::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exponential_draws_have_the_requested_mean() {
        let mut rng = StdRng::seed_from_u64(7);
        let d = Distribution::Exponential(120.0);
        let n = 200_000;
        let mean = (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / n as f64;
        assert!((mean - 120.0).abs() < 1.5, "{mean}");
    }

    #[test]
    fn empirical_draws_only_observed_values() {
        let d = Distribution::empirical([3.0, f64::NAN, 1.0, -2.0, 2.0]).expect("values");
        assert_eq!(d, Distribution::Empirical(vec![1.0, 2.0, 3.0]));
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = [false; 3];
        for _ in 0..1000 {
            let v = d.sample(&mut rng);
            seen[v as usize - 1] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(Distribution::empirical([f64::NAN]), None);
    }

    /// The textbook example (Kaplan & Meier's style, worked by hand): times 1, 2+, 3, 3, 4+, 5
    /// (+ = censored). At t=1: 6 at risk, 1 event: S = 5/6. At t=3: 4 at risk, 2 events:
    /// S = 5/6 · 2/4 = 5/12. At t=5: 1 at risk, 1 event: S = 0.
    #[test]
    fn kaplan_meier_matches_a_hand_worked_curve() {
        let d = Distribution::kaplan_meier([
            (1.0, true),
            (2.0, false),
            (3.0, true),
            (3.0, true),
            (4.0, false),
            (5.0, true),
        ]);
        let Distribution::KaplanMeier(curve) = &d else {
            panic!("expected a curve, got {d:?}");
        };
        assert_eq!(curve.survival(0.5), 1.0);
        assert!((curve.survival(1.0) - 5.0 / 6.0).abs() < 1e-12);
        assert!((curve.survival(2.5) - 5.0 / 6.0).abs() < 1e-12);
        assert!((curve.survival(3.0) - 5.0 / 12.0).abs() < 1e-12);
        assert_eq!(curve.survival(5.0), 0.0);
        // 4 events over 18 s of observed waiting.
        assert!((d.rate() - 4.0 / 18.0).abs() < 1e-12);
    }

    /// Censoring matters: exponential patience with mean 60 s, but every caller still waiting
    /// at 30 s is answered (censored). The abandoned waits alone average under 15 s; the
    /// Kaplan–Meier curve recovers S(20) = e^(−20/60) and the fitted mean is near 60 s.
    #[test]
    fn kaplan_meier_corrects_for_censoring() {
        let mut rng = StdRng::seed_from_u64(3);
        let patience = Distribution::Exponential(60.0);
        let observations: Vec<(f64, bool)> = (0..50_000)
            .map(|_| {
                let p = patience.sample(&mut rng);
                if p < 30.0 {
                    (p, true)
                } else {
                    (30.0, false)
                }
            })
            .collect();
        let naive = observations
            .iter()
            .filter(|o| o.1)
            .map(|o| o.0)
            .sum::<f64>()
            / observations.iter().filter(|o| o.1).count() as f64;
        assert!(naive < 15.0, "{naive}");
        let d = Distribution::kaplan_meier(observations);
        let Distribution::KaplanMeier(curve) = &d else {
            panic!("expected a curve");
        };
        let expected = (-20.0f64 / 60.0).exp();
        assert!((curve.survival(20.0) - expected).abs() < 0.01);
        assert!((d.mean() - 60.0).abs() < 3.0, "{}", d.mean());
        // Beyond the last event the caller never abandons (censored tail).
        let draws: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
        let infinite = draws.iter().filter(|v| v.is_infinite()).count() as f64 / 10_000.0;
        assert!((infinite - (-0.5f64).exp()).abs() < 0.03, "{infinite}");
    }

    #[test]
    fn no_abandon_means_infinite_patience() {
        let d = Distribution::kaplan_meier([(10.0, false), (20.0, false)]);
        assert_eq!(d, Distribution::Never);
        assert_eq!(d.rate(), 0.0);
        assert!(d.sample(&mut StdRng::seed_from_u64(0)).is_infinite());
    }
}
