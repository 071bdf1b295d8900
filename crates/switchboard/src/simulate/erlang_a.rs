//! Erlang C and Erlang A predictions for one queue and interval, shown next to the simulation.
//!
//! Erlang C (M/M/N, callers wait for ever) comes from `cdr::report::erlang`. Erlang A
//! (M/M/N+M, Palm's model with exponential patience of rate θ) is computed here from its
//! birth–death chain: state n (calls in the system) goes up at rate λ and down at rate
//! `min(n, N)·μ + max(n − N, 0)·θ`. By PASTA an arrival sees the stationary distribution π.
//! An arrival that finds `j` callers queued ahead reaches an agent after the phases
//! `Exp(N·μ + i·θ)`, `i = j … 0`, unless its own patience `Exp(θ)` runs out first:
//!
//! - served with probability `p_j = Π (r_i / (r_i + θ))`, `r_i = N·μ + i·θ`;
//! - `E[wait · 1{served}]` by the recursion `m_j = q_j · (p_{j−1} / (r_j + θ) + m_{j−1})`;
//! - answered within T: the backward equations `f_i' = r_i·(f_{i−1} − f_i) − θ·f_i`,
//!   `f_{−1} = 1`, `f_i(0) = 0`, integrated to T with RK4.
//!
//! Service level here is answered within T over all offered calls (the formulas know no
//! short abandons).

use std::time::Duration;

use cdr::report::erlang;

/// What the formulas are asked about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueLoad {
    /// Arrival rate (calls per second).
    pub arrivals_per_s: f64,
    /// Mean time an agent is busy per call (ring + talk + wrap-up), seconds.
    pub handle_s: f64,
    /// Agents serving the queue.
    pub agents: u32,
    /// Service-level threshold, seconds.
    pub threshold_s: f64,
    /// Abandon rate θ (1 / mean patience), per second; 0 = nobody abandons.
    pub patience_rate: f64,
}

/// Predicted figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Answered within the threshold / offered.
    pub service_level: f64,
    /// Mean wait of answered calls (Erlang A) or of all calls (Erlang C), seconds.
    pub asa_s: f64,
    /// Abandoned / offered (0 for Erlang C).
    pub abandon_rate: f64,
}

/// Erlang C, `None` when the queue is unstable (agents ≤ traffic) or has no agents.
pub fn erlang_c(load: QueueLoad) -> Option<Prediction> {
    let erlangs = load.arrivals_per_s * load.handle_s;
    if load.agents == 0 || !(erlangs.is_finite() && load.handle_s > 0.0) {
        return None;
    }
    let aht = Duration::from_secs_f64(load.handle_s);
    let threshold = Duration::from_secs_f64(load.threshold_s.max(0.0));
    let asa = erlang::average_speed_of_answer(erlangs, load.agents, aht)?;
    let service_level = erlang::service_level(erlangs, load.agents, aht, threshold);
    Some(Prediction {
        service_level,
        asa_s: asa,
        abandon_rate: 0.0,
    })
}

/// Most queued callers the chain is followed to; beyond, π is negligible for any load a
/// contact centre would run.
const MAX_QUEUED: usize = 20_000;

/// Erlang A; without abandonment (θ = 0) it is Erlang C.
pub fn erlang_a(load: QueueLoad) -> Option<Prediction> {
    let theta = load.patience_rate;
    if !(theta.is_finite() && theta > 0.0) {
        return erlang_c(load);
    }
    if load.agents == 0 || !(load.handle_s > 0.0 && load.arrivals_per_s >= 0.0) {
        return None;
    }
    let lambda = load.arrivals_per_s;
    let mu = 1.0 / load.handle_s;
    let n_agents = load.agents as usize;
    let serving = f64::from(load.agents) * mu;
    // log π_n for n = 0 … N + J, stopping once the tail is negligible.
    let mut log_pi = vec![0.0f64];
    let mut n = 0usize;
    loop {
        n += 1;
        let down = (n.min(n_agents) as f64) * mu + (n.saturating_sub(n_agents) as f64) * theta;
        let next = log_pi[n - 1] + (lambda / down).ln();
        log_pi.push(next);
        let peak = log_pi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if (n > n_agents && next < peak - 40.0 && lambda < down) || n >= n_agents + MAX_QUEUED {
            break;
        }
    }
    let peak = log_pi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_pi.iter().map(|l| (l - peak).exp()).collect();
    let total: f64 = weights.iter().sum();
    let pi: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let queued: Vec<f64> = pi.get(n_agents..).map(<[f64]>::to_vec).unwrap_or_default();
    let immediate: f64 = pi.iter().take(n_agents).sum();
    let rate = |i: usize| serving + i as f64 * theta;
    // Served probability and E[wait · served] for j queued ahead.
    let mut served_prob = Vec::with_capacity(queued.len());
    let mut wait_served = Vec::with_capacity(queued.len());
    let (mut p_prev, mut m_prev) = (1.0, 0.0);
    for j in 0..queued.len() {
        let r = rate(j);
        let q = r / (r + theta);
        let m = q * (p_prev / (r + theta) + m_prev);
        let p = q * p_prev;
        served_prob.push(p);
        wait_served.push(m);
        p_prev = p;
        m_prev = m;
    }
    let within = answered_within(load.threshold_s, queued.len(), &rate, theta);
    let served: f64 = immediate
        + queued
            .iter()
            .zip(&served_prob)
            .map(|(pi, p)| pi * p)
            .sum::<f64>();
    let wait_sum: f64 = queued.iter().zip(&wait_served).map(|(pi, m)| pi * m).sum();
    let service_level = immediate
        + queued
            .iter()
            .zip(&within)
            .map(|(pi, f)| pi * f)
            .sum::<f64>();
    Some(Prediction {
        service_level: service_level.clamp(0.0, 1.0),
        asa_s: if served > 0.0 { wait_sum / served } else { 0.0 },
        abandon_rate: (1.0 - served).clamp(0.0, 1.0),
    })
}

/// `f_j(T)` for `j = 0 … len − 1`: probability that a caller with `j` ahead is answered
/// within `threshold_s` (RK4 on the backward equations, step small enough for stability).
fn answered_within(
    threshold_s: f64,
    len: usize,
    rate: &dyn Fn(usize) -> f64,
    theta: f64,
) -> Vec<f64> {
    if len == 0 || threshold_s <= 0.0 {
        return vec![0.0; len];
    }
    let fastest = rate(len - 1) + theta;
    let steps = ((threshold_s * fastest / 0.25).ceil() as usize).clamp(50, 200_000);
    let dt = threshold_s / steps as f64;
    let derivative = |f: &[f64], out: &mut [f64]| {
        for i in 0..f.len() {
            let ahead = if i == 0 { 1.0 } else { f[i - 1] };
            out[i] = rate(i) * (ahead - f[i]) - theta * f[i];
        }
    };
    let mut f = vec![0.0; len];
    let (mut k1, mut k2, mut k3, mut k4) = (
        vec![0.0; len],
        vec![0.0; len],
        vec![0.0; len],
        vec![0.0; len],
    );
    let mut scratch = vec![0.0; len];
    for _ in 0..steps {
        derivative(&f, &mut k1);
        for i in 0..len {
            scratch[i] = f[i] + 0.5 * dt * k1[i];
        }
        derivative(&scratch, &mut k2);
        for i in 0..len {
            scratch[i] = f[i] + 0.5 * dt * k2[i];
        }
        derivative(&scratch, &mut k3);
        for i in 0..len {
            scratch[i] = f[i] + dt * k3[i];
        }
        derivative(&scratch, &mut k4);
        for i in 0..len {
            f[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(patience_rate: f64) -> QueueLoad {
        // The textbook case: 100 calls per 30 min, AHT 180 s, 11 agents, 20 s threshold.
        QueueLoad {
            arrivals_per_s: 100.0 / 1800.0,
            handle_s: 180.0,
            agents: 11,
            threshold_s: 20.0,
            patience_rate,
        }
    }

    #[test]
    fn erlang_c_uses_the_report_formulas() {
        let c = erlang_c(load(0.0)).expect("stable");
        assert!((c.asa_s - 0.6821 * 180.0).abs() < 0.01);
        assert_eq!(c.abandon_rate, 0.0);
        let mut over = load(0.0);
        over.agents = 10;
        assert_eq!(erlang_c(over), None);
    }

    /// Almost no abandonment: Erlang A tends to Erlang C.
    #[test]
    fn erlang_a_tends_to_erlang_c_as_patience_grows() {
        let c = erlang_c(load(0.0)).expect("stable");
        let a = erlang_a(load(1e-7)).expect("defined");
        assert!(
            (a.service_level - c.service_level).abs() < 0.002,
            "{a:?} {c:?}"
        );
        assert!(a.abandon_rate < 1e-3);
        // C's ASA is over all calls, A's over answered ones (all of them here).
        assert!((a.asa_s - c.asa_s).abs() / c.asa_s < 0.01, "{a:?} {c:?}");
    }

    /// One agent, θ = μ: the chain is M/M/∞-like with π_n = e^−ρ ρ^n / n!; with λ = μ (ρ = 1)
    /// the abandon probability is 1 − (served throughput / λ) = 1 − P(n ≥ 1)·μ/λ = e^−1.
    #[test]
    fn erlang_a_matches_a_closed_form_case() {
        let a = erlang_a(QueueLoad {
            arrivals_per_s: 0.01,
            handle_s: 100.0,
            agents: 1,
            threshold_s: 0.0,
            patience_rate: 0.01,
        })
        .expect("defined");
        assert!((a.abandon_rate - (-1.0f64).exp()).abs() < 1e-6, "{a:?}");
        // Threshold 0: only calls that found the agent free: P(n = 0) = e^−1.
        assert!((a.service_level - (-1.0f64).exp()).abs() < 1e-6, "{a:?}");
    }

    /// Overload that Erlang C cannot handle (agents < traffic) is stable with abandonment.
    #[test]
    fn erlang_a_handles_overload() {
        let mut heavy = load(1.0 / 60.0);
        heavy.agents = 8;
        assert_eq!(
            erlang_c(QueueLoad {
                patience_rate: 0.0,
                ..heavy
            }),
            None
        );
        let a = erlang_a(heavy).expect("defined");
        assert!(a.abandon_rate > 0.1 && a.abandon_rate < 0.5, "{a:?}");
        assert!(a.service_level > 0.0 && a.service_level < 0.6, "{a:?}");
    }
}
