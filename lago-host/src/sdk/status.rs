//! The tree `lago status` prints, from [`Env::status`] or, when the
//! providers cannot even be opened, from the stored environment alone
//! ([`prefix_status`]).

use lago_plugin_api::spec::EnvSpec;
use lago_plugin_api::ErrorKind;
use serde_json::Value;

use super::{Env, SdkError};
use crate::config::Config;
use crate::plugins::{into_result, Registry};
use crate::prefix::lifecycle::{status_tree, stored_states, States};
use crate::prefix::Prefix;

impl Env<'_> {
    /// The tree `lago status` prints (`lago -f json status` is exactly its
    /// JSON): `{"Prefix": {"Base directory", "UUID", "Networks", "VMs"}}`,
    /// each VM's distro as its vm-type reports it (`distro()`; the built-in
    /// `default`: the init file's `distro`, else the first disk template's,
    /// else `unknown`). When the providers cannot be asked, every state is
    /// `unknown`.
    pub fn status(&self) -> Value {
        let states = match self.env.states() {
            Ok(s) => s,
            Err(e) => unknown_states(self.spec(), &e),
        };
        let mut spec = self.spec().clone();
        set_distros(self.registry, &mut spec);
        status_tree(&spec, &states)
    }
}

/// `lago status` of an initialized `prefix`: [`Env::status`], or, when the
/// environment cannot be opened with `registry` (a provider missing or
/// failing), the stored environment with every state `unknown` and a
/// warning. Errors: the prefix is not initialized or cannot be read.
pub fn prefix_status(
    prefix: Prefix,
    config: Config,
    registry: &Registry,
) -> Result<Value, SdkError> {
    prefix.require_initialized()?;
    let mut spec = prefix.load_env()?;
    match Env::open(prefix, config, registry) {
        Ok(env) => Ok(env.status()),
        Err(e) => {
            let states = unknown_states(&spec, &e);
            set_distros(registry, &mut spec);
            Ok(status_tree(&spec, &states))
        }
    }
}

/// Every state `unknown`: the stored state is still worth showing.
fn unknown_states(spec: &EnvSpec, e: &dyn std::fmt::Display) -> States {
    tracing::warn!("cannot ask the providers for the states: {e}");
    let mut s = stored_states(spec);
    s.vms.values_mut().for_each(|v| *v = "unknown".into());
    s.nets.values_mut().for_each(|v| *v = "unknown".into());
    s
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
