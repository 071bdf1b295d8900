//! Erlang C staffing: how many agents a queue needs to meet its service-level target.
//!
//! Model (M/M/N, no abandonment): calls arrive at random (Poisson), handling times are
//! exponential with mean AHT, and a caller waits until an agent is free. With traffic
//! `A = calls × AHT / interval` (Erlangs) and `N > A` agents:
//!
//! - Erlang B, by the recursion `B(0) = 1`, `B(n) = A·B(n−1) / (n + A·B(n−1))`;
//! - probability of waiting `C(N, A) = N·B(N) / (N − A·(1 − B(N)))`;
//! - service level `SL(N) = 1 − C(N, A) · e^(−(N − A)·T / AHT)` for threshold `T`.
//!
//! The recursion never forms `A^N` or `N!`, so it stays accurate for thousands of Erlangs.
//! The result is raw staffing: shrinkage (breaks, training) and occupancy caps come on top.

use std::time::Duration;

/// Inputs the staffing calculation cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StaffingError {
    /// The service-level target must be a fraction strictly between 0 and 1 (e.g. 0.8):
    /// Erlang C never reaches 100 %.
    #[error("service-level target {0} is not a fraction between 0 and 1 (exclusive)")]
    InvalidTarget(f64),
    /// The call volume must be a finite number ≥ 0.
    #[error("call volume {0} is not a finite number >= 0")]
    InvalidVolume(f64),
    /// The interval must be longer than zero.
    #[error("the interval must be longer than zero")]
    EmptyInterval,
    /// The traffic would need more agents than the calculation is willing to try.
    #[error("{erlangs:.0} Erlangs needs more than {limit} agents")]
    TooMuchTraffic {
        /// Offered traffic in Erlangs.
        erlangs: f64,
        /// The largest agent count tried.
        limit: u32,
    },
}

/// Most agents [`agents_needed`] will try before giving up.
pub const MAX_AGENTS: u32 = 1_000_000;

/// Probability that a call has to wait, with `agents` agents and `erlangs` of traffic
/// (1.0 when `agents <= erlangs`: the queue grows without bound).
pub fn erlang_c(erlangs: f64, agents: u32) -> f64 {
    if erlangs <= 0.0 {
        return 0.0;
    }
    if f64::from(agents) <= erlangs {
        return 1.0;
    }
    let b = erlang_b(erlangs, agents);
    wait_probability(erlangs, agents, b)
}

/// Fraction of calls answered within `threshold` with `agents` agents, `erlangs` of traffic
/// and mean handle time `aht` (0.0 when `agents <= erlangs`).
pub fn service_level(erlangs: f64, agents: u32, aht: Duration, threshold: Duration) -> f64 {
    if erlangs <= 0.0 {
        return 1.0;
    }
    if f64::from(agents) <= erlangs {
        return 0.0;
    }
    let c = erlang_c(erlangs, agents);
    sl_from_c(c, erlangs, agents, aht, threshold)
}

/// Average speed of answer (mean wait of all calls, seconds) with `agents` agents, `erlangs`
/// of traffic and mean handle time `aht`: `C(N, A) · AHT / (N − A)`. `None` when
/// `agents <= erlangs` (the wait grows without bound).
pub fn average_speed_of_answer(erlangs: f64, agents: u32, aht: Duration) -> Option<f64> {
    if erlangs <= 0.0 {
        return Some(0.0);
    }
    let spare = f64::from(agents) - erlangs;
    if spare <= 0.0 {
        return None;
    }
    Some(erlang_c(erlangs, agents) * aht.as_secs_f64() / spare)
}

/// The fewest agents whose Erlang-C service level reaches `target_sl_fraction`.
///
/// `calls_per_interval` calls arrive during `interval`, each taking `aht` on average; the
/// target is "a fraction `target_sl_fraction` of calls answered within `threshold`". No calls
/// or a zero AHT need no agents.
pub fn agents_needed(
    calls_per_interval: f64,
    interval: Duration,
    aht: Duration,
    target_sl_fraction: f64,
    threshold: Duration,
) -> Result<u32, StaffingError> {
    if !(target_sl_fraction > 0.0 && target_sl_fraction < 1.0) {
        return Err(StaffingError::InvalidTarget(target_sl_fraction));
    }
    if !(calls_per_interval.is_finite() && calls_per_interval >= 0.0) {
        return Err(StaffingError::InvalidVolume(calls_per_interval));
    }
    if interval.is_zero() {
        return Err(StaffingError::EmptyInterval);
    }
    let erlangs = calls_per_interval * aht.as_secs_f64() / interval.as_secs_f64();
    if erlangs == 0.0 {
        return Ok(0);
    }
    if erlangs >= f64::from(MAX_AGENTS) {
        return Err(StaffingError::TooMuchTraffic {
            erlangs,
            limit: MAX_AGENTS,
        });
    }
    // The queue is only stable with more agents than Erlangs of traffic.
    let mut agents = erlangs.floor() as u32 + 1;
    let mut b = erlang_b(erlangs, agents);
    loop {
        let c = wait_probability(erlangs, agents, b);
        if sl_from_c(c, erlangs, agents, aht, threshold) >= target_sl_fraction {
            return Ok(agents);
        }
        if agents >= MAX_AGENTS {
            return Err(StaffingError::TooMuchTraffic {
                erlangs,
                limit: MAX_AGENTS,
            });
        }
        agents += 1;
        b = erlangs * b / (f64::from(agents) + erlangs * b);
    }
}

fn erlang_b(erlangs: f64, agents: u32) -> f64 {
    (1..=agents).fold(1.0, |b, n| erlangs * b / (f64::from(n) + erlangs * b))
}

fn wait_probability(erlangs: f64, agents: u32, b: f64) -> f64 {
    let n = f64::from(agents);
    (n * b / (n - erlangs * (1.0 - b))).clamp(0.0, 1.0)
}

fn sl_from_c(c: f64, erlangs: f64, agents: u32, aht: Duration, threshold: Duration) -> f64 {
    let aht_s = aht.as_secs_f64();
    if aht_s == 0.0 {
        return 1.0;
    }
    let decay = (-(f64::from(agents) - erlangs) * threshold.as_secs_f64() / aht_s).exp();
    1.0 - c * decay
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// Closed forms for tiny systems, worked by hand:
    /// M/M/2 at A = 1: P(wait) = A²/(2!·(1 − A/2)) / (1 + A + A²/(2!·(1 − A/2))) = 1/3.
    /// M/M/3 at A = 2: the Erlang-B value is (8/6)/(1 + 2 + 2 + 8/6) = 4/19, and
    /// C = 3·(4/19) / (3 − 2·(15/19)) = (12/19)/(27/19) = 4/9.
    #[test]
    fn erlang_c_matches_hand_worked_values() {
        assert!((erlang_c(1.0, 2) - 1.0 / 3.0).abs() < 1e-12);
        assert!((erlang_c(2.0, 3) - 4.0 / 9.0).abs() < 1e-12);
        assert_eq!(erlang_c(2.0, 2), 1.0);
        assert_eq!(erlang_c(0.0, 1), 0.0);
    }

    /// The worked example on Call Centre Helper ("Erlang C Formula – Made Simple With an
    /// Easy Worked Example"): 100 calls per 30 minutes, AHT 180 s, target 80 % in 20 s is
    /// 10 Erlangs; P(wait) with 11 agents is 68.21 %, and 14 agents are needed. Checked
    /// independently with a direct-factorial implementation (Python): SL(13) = 79.56 % (just
    /// short), SL(14) = 88.84 %.
    #[test]
    fn textbook_call_centre_example_needs_14_agents() {
        assert!((erlang_c(10.0, 11) - 0.6821).abs() < 5e-5);
        let sl13 = service_level(10.0, 13, S(180), S(20));
        let sl14 = service_level(10.0, 14, S(180), S(20));
        assert!((sl13 - 0.7956).abs() < 5e-5, "{sl13}");
        assert!((sl14 - 0.8884).abs() < 5e-5, "{sl14}");
        assert_eq!(agents_needed(100.0, S(1800), S(180), 0.8, S(20)), Ok(14));
    }

    /// Same example: ASA = C · AHT / (N − A) = 0.6821 · 180 / 1 = 122.8 s with 11 agents.
    #[test]
    fn average_speed_of_answer_of_the_textbook_example() {
        let asa = average_speed_of_answer(10.0, 11, S(180)).expect("stable");
        assert!((asa - 0.6821 * 180.0).abs() < 0.01, "{asa}");
        assert_eq!(average_speed_of_answer(10.0, 10, S(180)), None);
        assert_eq!(average_speed_of_answer(0.0, 1, S(180)), Some(0.0));
    }

    #[test]
    fn higher_targets_never_need_fewer_agents() {
        let mut previous = 0;
        for target in [0.5, 0.7, 0.8, 0.9, 0.95, 0.99] {
            let n = agents_needed(100.0, S(1800), S(180), target, S(20)).unwrap();
            assert!(n >= previous);
            previous = n;
        }
        assert!(previous > 14);
    }

    #[test]
    fn stays_finite_for_large_traffic() {
        // 5 000 Erlangs: A^N and N! overflow f64 long before this.
        let n = agents_needed(100_000.0, S(3600), S(180), 0.8, S(20)).unwrap();
        assert!(n > 5_000 && n < 5_200, "{n}");
        let sl = service_level(5_000.0, n, S(180), S(20));
        assert!(sl.is_finite() && sl >= 0.8);
        assert!(service_level(5_000.0, n - 1, S(180), S(20)) < 0.8);
    }

    #[test]
    fn no_traffic_needs_no_agents() {
        assert_eq!(agents_needed(0.0, S(900), S(180), 0.8, S(20)), Ok(0));
        assert_eq!(agents_needed(10.0, S(900), S(0), 0.8, S(20)), Ok(0));
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            agents_needed(10.0, S(900), S(180), 1.0, S(20)),
            Err(StaffingError::InvalidTarget(1.0))
        );
        assert!(matches!(
            agents_needed(10.0, S(900), S(180), f64::NAN, S(20)),
            Err(StaffingError::InvalidTarget(_))
        ));
        assert_eq!(
            agents_needed(-1.0, S(900), S(180), 0.8, S(20)),
            Err(StaffingError::InvalidVolume(-1.0))
        );
        assert_eq!(
            agents_needed(10.0, S(0), S(180), 0.8, S(20)),
            Err(StaffingError::EmptyInterval)
        );
        assert!(matches!(
            agents_needed(1e12, S(1), S(180), 0.8, S(20)),
            Err(StaffingError::TooMuchTraffic { .. })
        ));
    }
}
