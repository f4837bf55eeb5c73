//! The integration tests: one binary, so CI links once. Each module is
//! one suite; `common` holds the in-process engine helpers, `cli_support`
//! the harness that drives the `t-minus` binary, `model` the reference
//! model of the reliability suites.

mod cli_support;
mod common;
mod model;

mod cli;
mod cli_errors;
mod cli_gates;
mod cli_processes;
mod docs_run;
mod ecosystem_cli;
mod ecosystem_errors;
mod ecosystem_json;
mod engine_breakglass;
mod engine_campaigns;
mod engine_concurrency;
mod engine_delegation;
mod engine_escalation;
mod engine_gates;
mod engine_groups;
mod engine_lifecycle;
mod engine_responses;
mod engine_store;
mod event_rules;
mod examples;
mod hostile;
mod inbox;
mod manifest_diagnostics;
mod manifest_examples;
mod manifest_gates;
mod manifest_lifecycle;
mod manifest_schema;
mod mcp;
mod notify;
mod output_schemas;
mod plan_apply;
mod postgres_store;
mod prototype;
mod reliability_concurrency;
mod reliability_crash;
mod reliability_exactly_once;
mod reliability_props;
mod run;
mod serve;
mod serve_client;
mod serve_contract;
mod serve_github;
mod serve_mcp;
mod serve_passkeys;
mod serve_slack;
mod trust;
mod trust_engine;
mod trust_formats;
mod trust_replay;
mod trust_signed;
mod views;
mod web;
mod web_browser;
