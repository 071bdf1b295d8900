//! Independent replications of one scenario, each with its own random stream derived from
//! the seed, so a seed always gives the same figures.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::arrivals::ArrivalModel;
use super::engine::{self, EngineError, Model, RunResult};

/// A scenario ready to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name shown when scenarios are compared (`base`, `support-3`, a file name…).
    pub name: String,
    /// ACD configuration, staffing and distributions.
    pub model: Model,
    /// Where the calls come from.
    pub arrivals: ArrivalModel,
}

/// The random stream of replication `run` for `seed`: runs never share draws, and run `k`
/// is the same whatever the number of runs.
pub fn run_rng(seed: u64, run: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Runs `runs` replications; `progress(done, runs)` after each.
pub fn replicate(
    scenario: &Scenario,
    runs: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<RunResult>, EngineError> {
    let mut results = Vec::with_capacity(runs);
    for run in 0..runs {
        let mut rng = run_rng(seed, run);
        let arrivals = scenario.arrivals.draw(&mut rng);
        results.push(engine::run(&scenario.model, arrivals, &mut rng)?);
        progress(run + 1, runs);
    }
    Ok(results)
}
