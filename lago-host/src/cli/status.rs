//! `lago status`: the stored environment in Lago's shape, with each VM's and
//! network's state as its provider reports it and each VM's distro as its
//! vm-type reports it (`distro()`; the built-in `default` vm-type: the
//! init file's `distro`, else the first disk template's, else `unknown`).

use std::collections::BTreeSet;

use clap::{ArgMatches, Command};
use lago_plugin_api::spec::EnvSpec;
use lago_plugin_api::ErrorKind;

use super::{Context, Output};
use crate::environment::{Environment, SshSettings};
use crate::error::Error;
use crate::plugins::{into_result, PluginKind, Registry};
use crate::prefix::lifecycle::{status_tree, stored_states, States};

pub fn command() -> Command {
    Command::new("status").about("Show status of the deployed virtual resources")
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    prefix.require_initialized()?;
    let mut env = prefix.load_env()?;
    let states = match provider_states(ctx, &mut env) {
        Ok(s) => s,
        Err(e) => {
            // The stored state is still worth showing; the states are not known.
            tracing::warn!("cannot ask the providers for the states: {e}");
            let mut s = stored_states(&env);
            s.vms.values_mut().for_each(|v| *v = "unknown".into());
            s.nets.values_mut().for_each(|v| *v = "unknown".into());
            s
        }
    };
    Ok(Output::Data(status_tree(&env, &states)))
}

/// THE STATUS HOOK: each VM's and network's state from its provider, and
/// each VM's distro from its vm-type (written into `env`).
/// [`stored_states`] (everything `down`) is the answer without one.
fn provider_states(ctx: &mut Context, env: &mut EnvSpec) -> Result<States, Error> {
    let settings = SshSettings::from_config(&ctx.config)?;
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
    let registry = ctx.plugins_where(|kind, name| used.contains(&(kind, name.to_string())))?;
    set_distros(registry, env);
    Environment::open(env.clone(), registry, settings)?.states()
}

/// Ask each VM's vm-type for its distro (a delegating vm-type: the built-in
/// `default`'s answer). A vm-type that fails keeps the stored value, with a
/// warning.
fn set_distros(registry: &Registry, env: &mut EnvSpec) {
    let fallback = registry.vm_types.get("default");
    for vm in env.domains.values_mut() {
        let Ok(json) = serde_json::to_string(&*vm) else {
            continue;
        };
        let ask = |name: &str| {
            registry
                .vm_types
                .get(name)
                .or(fallback)
                .map(|t| into_result(t.plugin.distro(json.as_str().into())))
        };
        let answer = match ask(&vm.vm_type) {
            Some(Err(e)) if e.kind == ErrorKind::Delegate => ask("default"),
            other => other,
        };
        match answer {
            // `unknown` (the default vm-type's answer without a distro) is
            // shown as Lago showed a VM without one: null, or left out.
            Some(Ok(distro)) => {
                vm.distro = Some(distro.into_string()).filter(|d| !d.is_empty() && d != "unknown")
            }
            Some(Err(e)) => tracing::warn!(
                "VM `{}`: vm-type `{}` cannot tell its distro: {e}",
                vm.name,
                vm.vm_type
            ),
            None => {}
        }
    }
}
