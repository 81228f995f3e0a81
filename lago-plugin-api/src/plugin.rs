//! The plain Rust traits plugin authors implement.
//!
//! No `abi_stable` type appears here: arguments are the serde types of
//! [`crate::spec`] and `serde_json::Value`, results are ordinary
//! `Result<T, PluginError>`. The adapters turn an implementation into the
//! FFI-safe objects of [`crate::abi`], catching panics on the way.

use serde_json::Value;

use crate::error::PluginError;
use crate::spec::{EnvSpec, NetSpec, SnapshotInfo, VmSpec};
use crate::types::{CliContext, CliSpec, ServiceState};

/// Shorthand used by every plugin trait.
pub type PluginResult<T> = Result<T, PluginError>;

/// An out-format for `--out-format/-f` (Lago's `OutFormatPlugin`).
pub trait OutFormatPlugin: Send + Sync + 'static {
    /// Render `tree`; the host prints the result followed by a newline.
    fn format(&self, tree: &Value) -> PluginResult<String>;
}

/// A `lago` verb (Lago's `CLIPlugin`).
pub trait CliPlugin: Send + Sync + 'static {
    /// Help and arguments. The verb's name is the name the plugin is exported
    /// under (the spec's `name` is ignored).
    fn spec(&self) -> CliSpec;
    /// `args`: a JSON object keyed by argument name (see [`crate::ArgSpec`]).
    /// Returns data the host renders with `--out-format`, or `Value::Null`
    /// for nothing.
    fn run(&self, args: &Value, ctx: &CliContext) -> PluginResult<Value>;
}

/// A vm-provider (Lago's `VMProviderPlugin`): opens a session per environment.
pub trait VmProviderPlugin: Send + Sync + 'static {
    fn open(&self, env: &EnvSpec) -> PluginResult<Box<dyn ProviderSessionPlugin>>;
}

/// One environment as a provider sees it. Every method has a default body
/// answering "not implemented yet", so a provider grows method by method.
#[allow(unused_variables)]
pub trait ProviderSessionPlugin: Send + Sync + 'static {
    fn start_networks(&self, nets: &[&NetSpec]) -> PluginResult<()> {
        Err(PluginError::not_implemented("start_networks"))
    }
    fn stop_networks(&self, nets: &[&NetSpec]) -> PluginResult<()> {
        Err(PluginError::not_implemented("stop_networks"))
    }
    /// `"up"` or `"down"`.
    fn network_state(&self, net: &NetSpec) -> PluginResult<String> {
        Err(PluginError::not_implemented("network_state"))
    }
    fn prepare(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("prepare"))
    }
    fn bootstrap(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("bootstrap"))
    }
    fn start(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("start"))
    }
    fn stop(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("stop"))
    }
    fn shutdown(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("shutdown"))
    }
    fn reboot(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("reboot"))
    }
    /// Lago's names: `"down"`, `"running"`, `"paused"`, `"shut off"`, ...
    fn state(&self, vm: &VmSpec) -> PluginResult<String> {
        Err(PluginError::not_implemented("state"))
    }
    fn defined(&self, vm: &VmSpec) -> PluginResult<bool> {
        Err(PluginError::not_implemented("defined"))
    }
    /// Snapshot the VM's disks (and its memory when it runs and the provider
    /// can keep it) under `name`; the host flushed the guest's file systems
    /// first and checked that `name` is new.
    fn create_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<SnapshotInfo> {
        Err(PluginError::not_implemented("create_snapshot"))
    }
    /// Bring the VM back to snapshot `name`: its disks, and its run state
    /// (a snapshot with memory resumes running; a disk-only one leaves the
    /// VM down, the host starts it when it was running).
    fn revert_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Err(PluginError::not_implemented("revert_snapshot"))
    }
    /// Write the VM's disks into `dst_dir` as `<vm>_<disk>.qcow2` (layered:
    /// a disk with a [`DiskSpec::template_image`](crate::spec::DiskSpec::template_image)
    /// keeps only what differs from it, with that image's file name as
    /// backing file; `standalone`, and other disks: merged with the backing
    /// chain). `compress` asks for xz: a provider may compress itself and
    /// return `.xz` paths; the host compresses every other returned file.
    /// Returns the written paths. The VM's own images are not modified.
    fn export_disks(
        &self,
        vm: &VmSpec,
        dst_dir: &str,
        standalone: bool,
        compress: bool,
    ) -> PluginResult<Vec<String>> {
        Err(PluginError::not_implemented("export_disks"))
    }
    /// `pairs`: `(path in the VM, path on the host)`.
    fn extract_paths(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> PluginResult<()> {
        Err(PluginError::not_implemented("extract_paths"))
    }
    fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> PluginResult<()> {
        Err(PluginError::not_implemented("extract_paths_dead"))
    }
    fn interactive_console(&self, vm: &VmSpec) -> PluginResult<i32> {
        Err(PluginError::not_implemented("interactive_console"))
    }
    /// Remove every hypervisor object of the environment.
    fn cleanup(&self) -> PluginResult<()> {
        Err(PluginError::not_implemented("cleanup"))
    }
    /// Whether `lago start` waits for this VM to answer SSH (default: yes).
    /// Answer `false` for machines that have no SSH: start then returns once
    /// [`ProviderSessionPlugin::start`] did, and `after_start` still runs.
    fn needs_ssh(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(true)
    }
    /// The IPv4 networks in use on the hypervisor hosts of the environment:
    /// `(address, prefix length, description)`; `init` of an environment
    /// with `hosts:` leases no subnet overlapping one. Default: none.
    fn used_subnets(&self) -> PluginResult<Vec<(std::net::Ipv4Addr, u8, String)>> {
        Ok(Vec::new())
    }
    /// Whether [`Self::create_snapshot`] can take snapshot `name` of the VM
    /// now (its disks fit, the name is free): `lago snapshot` asks every VM
    /// before it takes any, and refuses with this error (naming the VM and
    /// the disk). Default: no objection.
    fn check_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Ok(())
    }
    /// Remove snapshot `name` of the VM again: `lago snapshot` undoes the
    /// snapshots it took when another VM's failed. Default: not implemented
    /// (the host then reports the snapshot as left behind).
    fn delete_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Err(PluginError::not_implemented("delete_snapshot"))
    }
}

/// A vm-type (Lago's `VMPlugin`). Every method defaults to
/// [`PluginError::delegate`]: the host then runs the built-in `default`
/// vm-type's behaviour. Override what your type changes.
#[allow(unused_variables)]
pub trait VmTypePlugin: Send + Sync + 'static {
    /// Adjust a VM definition (as written in the init file) before planning.
    fn normalize_spec(&self, vm: Value) -> PluginResult<Value> {
        Err(PluginError::delegate())
    }
    fn distro(&self, vm: &VmSpec) -> PluginResult<String> {
        Err(PluginError::delegate())
    }
    /// Paths `lago collect` takes from the VM.
    fn artifact_paths(&self, vm: &VmSpec) -> PluginResult<Vec<String>> {
        Err(PluginError::delegate())
    }
    fn wait_for_ssh(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::delegate())
    }
    /// Runs after the VM started and answers SSH.
    fn after_start(&self, vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::delegate())
    }
    /// Verbs this type adds: `lago <verb> [--vm NAME]... [ARGS]` runs
    /// [`VmTypePlugin::run_verb`] on each VM of this type.
    fn verbs(&self) -> Vec<CliSpec> {
        Vec::new()
    }
    fn run_verb(&self, verb: &str, args: &Value, vm: &VmSpec) -> PluginResult<Value> {
        Err(PluginError::not_found(format!("no verb `{verb}`")))
    }
}

/// A service manager in the VM (Lago's `ServicePlugin`).
pub trait VmServicePlugin: Send + Sync + 'static {
    /// Whether the VM has this service manager (e.g. `/usr/bin/systemctl`).
    fn is_supported(&self, vm: &VmSpec) -> PluginResult<bool>;
    fn state(&self, vm: &VmSpec, service: &str) -> PluginResult<ServiceState>;
    fn start(&self, vm: &VmSpec, service: &str) -> PluginResult<()>;
    fn stop(&self, vm: &VmSpec, service: &str) -> PluginResult<()>;
}
