//! `switchboard simulate`: predict service level for a staffing or routing change before it
//! goes live, by driving the real ACD (`crates/acd`) with simulated time.
//!
//! - [`arrivals`]: calls arriving (an arrivals file of Poisson rates, or the CDRs' calls);
//! - [`distribution`]: handle times, patience (Kaplan–Meier for censored waits), ring times;
//! - [`statistics`]: confidence intervals over replications;
//! - [`erlang_a`]: Erlang C and Erlang A for the same inputs.

pub mod arrivals;
pub mod distribution;
pub mod engine;
pub mod erlang_a;
pub mod input_error;
pub mod replication;
pub mod statistics;
pub mod summary;

pub mod command;
pub mod history;
pub mod output;
pub mod scenario;
pub mod staffing;
#[cfg(test)]
mod theory_tests;
