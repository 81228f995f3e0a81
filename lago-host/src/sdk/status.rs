//! The tree `lago status` prints, from [`Env::status`] or, when the
//! providers cannot even be opened, from the stored environment alone
//! ([`prefix_status`]).

use lago_plugin_api::spec::{EnvSpec, VmSpec, DEFAULT_HOST};
use serde_json::{json, Map, Value};

use super::{Env, SdkError};
use crate::config::Config;
use crate::environment::{stored_states, NetState, States, VmState};
use crate::plugins::client::VmType;
use crate::plugins::Registry;
use crate::prefix::Prefix;

impl Env<'_> {
    /// The tree `lago status` prints (`lago -f json status` is exactly its
    /// JSON): `{"Prefix": {"Base directory", "UUID", "Networks", "VMs"}}`,
    /// each VM's distro as its vm-type reports it (`distro()`; the built-in
    /// `default`: the init file's `distro`, else the first disk template's,
    /// else `unknown`). When the providers cannot be asked, every state is
    /// `unknown`.
    pub fn status(&self) -> Value {
        let states = match self.states() {
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
    s.vms.values_mut().for_each(|v| *v = VmState::Unknown);
    s.nets.values_mut().for_each(|v| *v = NetState::Unknown);
    s
}

/// Ask each VM's vm-type for its distro (a delegating vm-type: the built-in
/// `default`'s answer). A vm-type that fails keeps the stored value, with a
/// warning.
fn set_distros(registry: &Registry, env: &mut EnvSpec) {
    let vm_type = |name: &str| {
        registry
            .vm_types
            .get_key_value(name)
            .or_else(|| registry.vm_types.get_key_value("default"))
            .map(|(name, entry)| VmType::new(name, &entry.plugin))
    };
    for vm in env.domains.values_mut() {
        let answer = vm_type(&vm.vm_type).map(|t| match t.distro(vm) {
            Ok(None) => vm_type("default").map_or(Ok(None), |d| d.distro(vm)),
            other => other,
        });
        match answer {
            // `unknown` (the default vm-type's answer without a distro) is
            // shown as Lago showed a VM without one: null, or left out.
            Some(Ok(Some(distro))) => {
                vm.distro = Some(distro).filter(|d| !d.is_empty() && d != "unknown")
            }
            Some(Err(e)) => tracing::warn!(
                "VM `{}`: vm-type `{}` cannot tell its distro: {e}",
                vm.name,
                vm.vm_type
            ),
            Some(Ok(None)) | None => {}
        }
    }
}

/// `lago status` in Lago's shape:
/// `{Prefix: {Base directory, UUID, Networks: {NET: {gateway, status,
/// management, libvirt_name}}, VMs: {VM: {distro, root password, status, snapshots,
/// metadata, NICs: {eth0: {network, ip}}}}}}`, plus a few keys beside
/// (`vm-type`, `vm-provider`, `ssh host key`: `pinned` or `learned`).
pub fn status_tree(env: &EnvSpec, states: &States) -> Value {
    let mut nets = Map::new();
    for (name, n) in &env.nets {
        nets.insert(
            name.clone(),
            json!({
                "gateway": n.gw.map(|g| g.to_string()),
                "status": states.nets.get(name).map_or("down", NetState::as_str),
                "management": n.management,
                // The libvirt network's name (Lago's key: the oVirt system
                // tests read `Prefix.Networks.<net>.libvirt_name`).
                "libvirt_name": n.libvirt_name,
            }),
        );
    }
    let mut vms = Map::new();
    for (name, vm) in &env.domains {
        let mut nics = Map::new();
        for (i, nic) in vm.nics.iter().enumerate() {
            nics.insert(
                format!("eth{i}"),
                json!({
                    "network": nic.net,
                    "ip": nic.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "N/A".into()),
                }),
            );
        }
        let snapshots = match vm.extra.get("snapshots") {
            Some(Value::Object(m)) => m.keys().cloned().collect::<Vec<_>>().join(", "),
            _ => String::new(),
        };
        let mut entry = json!({
            // None (JSON null, left out by the default format) when
            // neither the VM nor its template names one, as Lago's
            // `VMPlugin.distro()`.
            "distro": vm.distro,
            "root password": vm.root_password,
            "status": states.vms.get(name).map_or("down", VmState::as_str),
            "snapshots": snapshots,
            "metadata": vm.metadata,
            "NICs": nics,
            "vm-type": vm.vm_type,
            "vm-provider": vm.vm_provider,
            // How lago verifies the VM's SSH host key: the key generated
            // at init, the key the VM printed on its console, or the
            // first key seen (each held from then on).
            "ssh host key": host_key_status(env, vm),
        });
        // `warm` or `cold`, once its provider recorded a start (warm starts)
        if let Some(how) = env.prefix.last_start(name) {
            entry["last start"] = json!(how);
        }
        // Only in a multi-host environment (`hosts:`): where the VM runs.
        if !env.hosts.is_empty() {
            entry["host"] = json!(vm.host.as_deref().unwrap_or(DEFAULT_HOST));
        }
        vms.insert(name.clone(), entry);
    }
    json!({
        "Prefix": {
            "Base directory": env.prefix.path.display().to_string(),
            "UUID": env.prefix.uuid,
            "Networks": nets,
            "VMs": vms,
        }
    })
}

/// `pinned` (at init, or the seed's key once the VM presented it),
/// `console`, `learned`, or `not seen yet` (a learned key before the first
/// connection): see [`crate::ssh::learned_source`].
fn host_key_status(env: &EnvSpec, vm: &VmSpec) -> &'static str {
    if crate::templates::host_key_pinned(vm) {
        return "pinned";
    }
    let known_hosts = crate::prefix::ssh_client::known_hosts_path(&env.prefix);
    vm.mgmt_ip()
        .and_then(|ip| crate::ssh::learned_source(&known_hosts, ip.into()))
        .unwrap_or("not seen yet")
}
