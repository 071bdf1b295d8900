//! `switchboard simulate`: predict service level for a staffing or routing change before it
//! goes live, by driving the real ACD (`crates/acd`) with simulated time (docs/simulate.md).
//!
//! - [`arrivals`]: calls arriving (an arrivals file of Poisson rates, or the CDRs' calls);
//! - [`distribution`]: handle times, patience (Kaplan–Meier for censored waits), ring times;
//! - [`history`]: a CDR period: its calls, talk times, patience, ring times, agent states;
//! - [`staffing`]: who works when (staffing file, agent-state sessions, or everyone);
//! - [`scenario`]: a configuration plus demand and staffing, and the `--vary` variants;
//! - [`engine`]: the discrete-event loop of one replication around the real ACD;
//! - [`replication`]: independent seeded runs;
//! - [`statistics`]: confidence intervals over replications;
//! - [`erlang_a`]: Erlang C and Erlang A for the same inputs;
//! - [`summary`]: per interval and queue figures with intervals and the formulas alongside;
//! - [`output`]: table, CSV and HTML;
//! - [`command`]: the subcommand; [`input_error`]: bad input with file and line.

pub mod arrivals;
pub mod command;
pub mod distribution;
pub mod engine;
pub mod erlang_a;
pub mod history;
pub mod input_error;
pub mod output;
pub mod replication;
pub mod scenario;
pub mod staffing;
pub mod statistics;
pub mod summary;

#[cfg(test)]
mod theory_tests;
