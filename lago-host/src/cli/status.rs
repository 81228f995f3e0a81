//! `lago status`: the stored environment in Lago's shape, with each VM's and
//! network's state as its provider reports it and each VM's distro as its
//! vm-type reports it (`distro()`; the built-in `default` vm-type: the
//! init file's `distro`, else the first disk template's, else `unknown`).

use std::collections::BTreeSet;

use clap::{ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;
use crate::plugins::PluginKind;
use crate::sdk;

pub fn command() -> Command {
    Command::new("status").about("Show status of the deployed virtual resources")
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    prefix.require_initialized()?;
    let env = prefix.load_env()?;
    // Only the libraries holding this environment's providers and vm-types
    // are opened (each costs start-up time: libvirt's alone ~15 ms).
    let used: BTreeSet<(PluginKind, String)> = env
        .domains
        .values()
        .flat_map(|vm| {
            [
                (PluginKind::VmProvider, vm.vm_provider.clone()),
                (PluginKind::VmType, vm.vm_type.clone()),
            ]
        })
        .collect();
    if let Err(e) = ctx.plugins_where(|kind, name| used.contains(&(kind, name.to_string()))) {
        // The built-ins still answer; a missing provider makes every state
        // `unknown` (prefix_status warns).
        tracing::warn!("cannot load the plugins of this environment: {e}");
    }
    let config = ctx.config.clone();
    // The registry as loaded above (the built-ins and what could be opened).
    let tree = sdk::prefix_status(prefix, config, ctx.builtin_plugins()?)?;
    Ok(Output::Data(tree))
}
