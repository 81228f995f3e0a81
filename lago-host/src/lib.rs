//! lago's host library: everything the `lago` binary does, usable from Rust test suites.

pub mod cli;
pub mod config;
pub mod error;
pub mod logging;
pub mod initfile;
pub mod network;
pub mod output;
pub mod plugins;
pub mod prefix;
pub mod ssh;
pub mod templates;
