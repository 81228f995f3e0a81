//! lago's host library: everything the `lago` binary does, usable from Rust test suites.

pub mod boot_watch;
pub mod cli;
pub mod config;
pub mod environment;
pub mod error;
pub mod files;
pub mod initfile;
pub mod logging;
pub mod network;
pub mod ops;
pub mod output;
pub mod plan;
pub mod plugins;
pub mod prefix;
pub mod progress;
pub mod sanitize;
pub mod sdk;
pub mod ssh;
pub mod templates;
pub mod workflows;
