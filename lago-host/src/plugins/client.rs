//! The host's typed client of the plugin objects (nushell's
//! `PluginInterface` shape): every ABI call the host makes on a provider
//! session or a vm-type goes through here, once, and comes back as host
//! types ([`VmState`], [`NetState`], parsed JSON) and an [`Error`] that
//! names what the call was about and keeps the plugin's kind. A plugin
//! that delegates (`ErrorKind::Delegate`) comes back as `None`.

use abi_stable::std_types::{RString, RVec};
use lago_plugin_api::abi::{ProviderSessionBox, VmProviderBox, VmTypeBox};
use lago_plugin_api::spec::{EnvSpec, VmSpec};
use lago_plugin_api::{ErrorKind, PluginError};
use serde_json::Value;

use super::into_result;
use super::states::{NetState, VmState};
use crate::error::Error;

/// A plugin call's error, naming the VM, network or plugin it was about.
pub(crate) fn about(what: impl std::fmt::Display) -> impl FnOnce(PluginError) -> Error {
    move |e| Error::from(e).context(what)
}

/// A delegating answer as `None`, any other error through `err`.
fn unless_delegated<T>(
    r: Result<T, PluginError>,
    err: impl FnOnce(PluginError) -> Error,
) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::Delegate => Ok(None),
        Err(e) => Err(err(e)),
    }
}

fn names(list: impl IntoIterator<Item = String>) -> RVec<RString> {
    list.into_iter().map(RString::from).collect()
}

/// An IPv4 network in use on a hypervisor host: (address, prefix length,
/// what uses it).
pub type SubnetInUse = (std::net::Ipv4Addr, u8, String);

/// One vm-provider's session with one environment.
pub struct Provider {
    name: String,
    session: ProviderSessionBox,
}

impl Provider {
    /// Opens a session of the vm-provider `name` with `env`.
    pub fn open(name: &str, plugin: &VmProviderBox, env: &EnvSpec) -> Result<Provider, Error> {
        let env_json = serde_json::to_string(env)?;
        let session = into_result(plugin.open(env_json.as_str().into()))
            .map_err(about(format_args!("vm-provider `{name}`")))?;
        Ok(Provider {
            name: name.to_string(),
            session,
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn start_networks(&self, nets: impl IntoIterator<Item = String>) -> Result<(), Error> {
        into_result(self.session.start_networks(names(nets)))
            .map_err(about(format_args!("starting the networks ({})", self.name)))
    }

    pub fn stop_networks(&self, nets: impl IntoIterator<Item = String>) -> Result<(), Error> {
        into_result(self.session.stop_networks(names(nets)))
            .map_err(about(format_args!("stopping networks ({})", self.name)))
    }

    pub fn network_state(&self, net: &str) -> Result<NetState, Error> {
        let state = into_result(self.session.network_state(net.into()))
            .map_err(about(format_args!("network `{net}`")))?;
        Ok(if state.as_str() == "up" {
            NetState::Up
        } else {
            NetState::Down
        })
    }

    /// The VM's disks from their templates (and build steps).
    pub fn prepare(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.prepare(vm.name.as_str().into())).map_err(about(format_args!(
            "preparing the disks of VM `{}`",
            vm.name
        )))
    }

    pub fn bootstrap(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.bootstrap(vm.name.as_str().into()))
            .map_err(about(format_args!("bootstrapping VM `{}`", vm.name)))
    }

    pub fn start(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.start(vm.name.as_str().into()))
            .map_err(about(format_args!("starting VM `{}`", vm.name)))
    }

    pub fn stop(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.stop(vm.name.as_str().into()))
            .map_err(about(format_args!("stopping VM `{}`", vm.name)))
    }

    pub fn shutdown(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.shutdown(vm.name.as_str().into()))
            .map_err(about(format_args!("shutting down VM `{}`", vm.name)))
    }

    pub fn reboot(&self, vm: &VmSpec) -> Result<(), Error> {
        into_result(self.session.reboot(vm.name.as_str().into()))
            .map_err(about(format_args!("rebooting VM `{}`", vm.name)))
    }

    pub fn state(&self, vm: &VmSpec) -> Result<VmState, Error> {
        into_result(self.session.state(vm.name.as_str().into()))
            .map(|s| VmState::from_provider(s.as_str()))
            .map_err(about(format_args!("VM `{}`", vm.name)))
    }

    /// Whether start waits for the VM's SSH.
    pub fn needs_ssh(&self, vm: &VmSpec) -> Result<bool, Error> {
        into_result(self.session.needs_ssh(vm.name.as_str().into()))
            .map_err(about(format_args!("VM `{}`", vm.name)))
    }

    /// Whether snapshot `name` of the VM can be taken (nothing is made).
    pub fn check_snapshot(&self, vm: &VmSpec, name: &str) -> Result<(), Error> {
        into_result(
            self.session
                .check_snapshot(vm.name.as_str().into(), name.into()),
        )
        .map_err(about(format_args!("VM `{}`", vm.name)))
    }

    /// Takes snapshot `name`; returns what the provider recorded of it
    /// (JSON).
    pub fn create_snapshot(&self, vm: &VmSpec, name: &str) -> Result<String, Error> {
        into_result(
            self.session
                .create_snapshot(vm.name.as_str().into(), name.into()),
        )
        .map(RString::into_string)
        .map_err(about(format_args!("snapshot `{name}` of VM `{}`", vm.name)))
    }

    pub fn delete_snapshot(&self, vm: &str, name: &str) -> Result<(), Error> {
        into_result(self.session.delete_snapshot(vm.into(), name.into()))
            .map_err(about(format_args!("VM `{vm}`")))
    }

    pub fn revert_snapshot(&self, vm: &VmSpec, name: &str) -> Result<(), Error> {
        into_result(
            self.session
                .revert_snapshot(vm.name.as_str().into(), name.into()),
        )
        .map_err(about(format_args!(
            "reverting VM `{}` to `{name}`",
            vm.name
        )))
    }

    /// The VM's disks into `dst` (folder); returns the paths written.
    pub fn export_disks(
        &self,
        vm: &VmSpec,
        dst: &str,
        standalone: bool,
        compress: bool,
    ) -> Result<Vec<String>, Error> {
        into_result(self.session.export_disks(
            vm.name.as_str().into(),
            dst.into(),
            standalone,
            compress,
        ))
        .map(|paths| paths.into_iter().map(RString::into_string).collect())
        .map_err(about(format_args!("exporting VM `{}`", vm.name)))
    }

    /// Copies `pairs` (path in the VM, path on the host) out of a VM that
    /// is not running, reading its disks. A provider that cannot is a user
    /// error saying so.
    pub fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> Result<(), Error> {
        let pairs_json = serde_json::to_string(pairs)?;
        let r = self.session.extract_paths_dead(
            vm.name.as_str().into(),
            pairs_json.as_str().into(),
            ignore_nopath,
        );
        match into_result(r) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind, ErrorKind::NotImplemented | ErrorKind::Delegate) => {
                Err(Error::user(format!(
                    "VM `{}` is not running, and its vm-provider `{}` cannot read files \
                     from a stopped VM ({}); start the VM first",
                    vm.name, self.name, e.message
                )))
            }
            Err(e) => Err(about(format_args!(
                "VM `{}` is not running; reading files from its disks",
                vm.name
            ))(e)),
        }
    }

    /// The VM's serial console on this terminal; its exit code.
    pub fn interactive_console(&self, vm: &VmSpec) -> Result<i32, Error> {
        into_result(self.session.interactive_console(vm.name.as_str().into()))
            .map_err(about(format_args!("console of VM `{}`", vm.name)))
    }

    /// Removes every domain and network of the environment.
    pub fn cleanup(&self) -> Result<(), Error> {
        into_result(self.session.cleanup()).map_err(about(format_args!(
            "removing the VMs and networks ({})",
            self.name
        )))
    }

    /// The IPv4 networks in use on the environment's hosts.
    pub fn used_subnets(&self) -> Result<Vec<SubnetInUse>, Error> {
        let json = into_result(self.session.used_subnets()).map_err(about(format_args!(
            "vm-provider `{}`: the hosts' networks",
            self.name
        )))?;
        serde_json::from_str(json.as_str()).map_err(|e| {
            Error::internal(format!(
                "vm-provider `{}` listed the hosts' networks unreadably: {e}",
                self.name
            ))
        })
    }
}

/// A vm-type plugin, asked about one VM at a time. `None` answers: the
/// vm-type delegates to the default behaviour.
pub struct VmType<'p> {
    name: &'p str,
    plugin: &'p VmTypeBox,
}

impl<'p> VmType<'p> {
    pub fn new(name: &'p str, plugin: &'p VmTypeBox) -> Self {
        VmType { name, plugin }
    }

    /// The domain `name` as written in the init file, with the vm-type's
    /// defaults; it must stay a mapping.
    pub fn normalize_spec(&self, name: &str, domain: &Value) -> Result<Option<Value>, Error> {
        let json = serde_json::to_string(domain)?;
        let out = unless_delegated(
            into_result(self.plugin.normalize_spec(json.as_str().into())),
            about(format_args!("VM `{name}`")),
        )?;
        let Some(out) = out else {
            return Ok(None);
        };
        match serde_json::from_str::<Value>(out.as_str())? {
            v @ Value::Object(_) => Ok(Some(v)),
            other => Err(Error::internal(format!(
                "vm-type `{}` normalized domain `{name}` into {other}, not a mapping",
                self.name
            ))),
        }
    }

    pub fn distro(&self, vm: &VmSpec) -> Result<Option<String>, Error> {
        let json = serde_json::to_string(vm)?;
        unless_delegated(
            into_result(self.plugin.distro(json.as_str().into())).map(RString::into_string),
            about(format_args!("VM `{}`", vm.name)),
        )
    }

    /// The paths `lago collect` takes from the VM.
    pub fn artifact_paths(&self, vm: &VmSpec) -> Result<Option<Vec<String>>, Error> {
        let json = serde_json::to_string(vm)?;
        unless_delegated(
            into_result(self.plugin.artifact_paths(json.as_str().into()))
                .map(|p| p.into_iter().map(RString::into_string).collect()),
            about(format_args!("VM `{}`", vm.name)),
        )
    }

    /// The vm-type's own wait for the VM's SSH; `None`: the host's wait
    /// (the vm-type delegates or has none).
    pub fn wait_for_ssh(&self, vm: &VmSpec) -> Result<Option<()>, Error> {
        let json = serde_json::to_string(vm)?;
        match into_result(self.plugin.wait_for_ssh(json.as_str().into())) {
            Ok(()) => Ok(Some(())),
            Err(e) if matches!(e.kind, ErrorKind::Delegate | ErrorKind::NotImplemented) => Ok(None),
            Err(e) => Err(about(format_args!("VM `{}`", vm.name))(e)),
        }
    }

    /// The vm-type's work once the VM is up.
    pub fn after_start(&self, vm: &VmSpec) -> Result<(), Error> {
        let json = serde_json::to_string(vm)?;
        unless_delegated(
            into_result(self.plugin.after_start(json.as_str().into())),
            about(format_args!("VM `{}` after start", vm.name)),
        )
        .map(|_| ())
    }
}
