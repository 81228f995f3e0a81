//! The part of the tests' set-up that needs lago's own types (the rest is in
//! the lago-test-support crate, which cannot depend on lago-host).
#![allow(dead_code)]

use std::path::Path;

use lago::config::{Config, Sources};
use lago::ops::{self, InitRequest};
use lago::prefix::Prefix;
use lago_plugin_api::spec::EnvSpec;

/// The configuration of a test: defaults, with `leases` as the lease store.
pub fn lease_config(leases: &Path) -> Config {
    let sources = Sources {
        files: vec![],
        env: vec![("LAGO_LEASE_DIR".into(), leases.display().to_string())],
    };
    Config::load_from(&sources, &[]).expect("config")
}

/// `lago init` of `file` into `workdir` as prefix `name`, through the
/// library with no provider work (so never started).
pub fn lib_init(file: &Path, workdir: &Path, leases: &Path, name: &str) -> (Prefix, EnvSpec) {
    let mut req = InitRequest::new(file.to_path_buf(), workdir.to_path_buf());
    req.prefix_name = name.into();
    let mut hook = |_: &Prefix, _: &mut EnvSpec| Ok(());
    ops::init(&req, &lease_config(leases), &mut hook).expect("init")
}
