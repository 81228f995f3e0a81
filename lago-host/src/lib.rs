//! lago's host library: everything the `lago` binary does, usable from Rust test suites.
//!
//! Its modules import one way (checked by `tests/module_graph.rs`), from
//! the verbs down to the leaves:
//!
//! - [`cli`] (the `lago` verbs) and [`sdk`] (the library API of Lago's
//!   `lago.sdk`, which the verbs stand on);
//! - [`ops`]: the operations on a prefix that run one way, each one
//!   function reading like its steps: [`ops::init()`], [`ops::destroy()`],
//!   [`ops::cleanup_prefix`];
//! - [`environment`]: a stored environment brought to life through its
//!   provider plugins ([`plugins::client`]) and reached over [`ssh`];
//!   [`workflows`]: what suites do inside running VMs (copy, deploy,
//!   collect, Ansible inventory); [`output`]: the output formats;
//! - [`plugins`] (discovery, loading, the host side of the plugin ABI),
//!   [`plan`] (an init file into an environment spec), [`prefix`] (workdirs,
//!   prefixes and their stored state, under their locks), [`network`] (the
//!   subnet lease store), [`templates`] (repositories and the template
//!   store);
//! - leaves: [`initfile`], [`config`], [`logging`], [`progress`],
//!   [`boot_watch`], [`files`] (atomic writes, lock files, the marks of
//!   what lago made), [`sanitize`], [`error`].

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
