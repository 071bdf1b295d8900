//! Switchboard: a SIP softswitch with a built-in ACD. The binary (`main.rs`) is a thin CLI
//! over this library so black-box tests and benches can reach the same pieces.

pub mod acd_config;
#[cfg(test)]
mod allocation_count;
pub mod audit;
pub mod audit_shipping;
pub mod callback_journal;
pub mod callback_report;
pub mod caller_lookup;
mod campaign_api;
pub mod campaign_journal;
pub mod campaign_report;
pub mod cdr_writer;
pub mod config;
pub mod do_not_call;
pub mod emergency;
pub mod http;
pub mod http_limits;
pub mod https;
pub mod ivr;
pub mod live;
pub mod metrics;
pub mod prompt_library;
pub mod reload;
pub mod report_cli;
pub mod runtime;
pub mod security;
pub mod simulate;
pub mod snapshot_file;
pub mod start_check;
pub mod sticky_routing;
pub mod survey_followup;
pub mod switch;
pub mod tls_certificates;
pub mod tls_client_certificate;
pub mod tls_routes;
pub mod tls_trust;
pub mod token_digest;
pub mod web;
