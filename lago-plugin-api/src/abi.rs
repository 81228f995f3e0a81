//! The FFI-safe interface: one `#[sabi_trait]` per plugin kind, the
//! [`Host`] callbacks, and the root module every plugin library exports.
//!
//! Plugin authors do not implement these traits: they implement the plain
//! traits of [`crate::plugin`], and the adapters of [`crate::adapter`] (used by
//! [`crate::PluginSet`]'s builders and by [`crate::export_plugins!`]) turn them
//! into these objects. Larger documents cross as JSON text in `RStr`/`RString`.
//!
//! Every trait marks its last method `#[sabi(last_prefix_field)]`: methods
//! added in a later minor version go below it, and a host calling such a
//! method on an older plugin gets abi_stable's default-method fallback.

// The generated code of `#[sabi_trait]` trips these lints.
#![allow(clippy::needless_lifetimes, non_local_definitions)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::error::PluginError;
use crate::types::{CliSpec, CommandStatus, LogLevel, ServiceState};

/// An out-format (`-f NAME`): renders a data tree.
#[sabi_trait]
pub trait OutFormat: Send + Sync {
    /// `tree_json`: the tree as JSON. Returns the text to print (the host adds
    /// the final newline).
    #[sabi(last_prefix_field)]
    fn format(&self, tree_json: RStr<'_>) -> RResult<RString, PluginError>;
}

/// A `lago` verb added by a plugin.
#[sabi_trait]
pub trait CliVerb: Send + Sync {
    /// Help and arguments.
    fn spec(&self) -> RResult<CliSpec, PluginError>;
    /// `args_json`: the parsed arguments (see [`crate::ArgSpec`]);
    /// `ctx_json`: a [`crate::CliContext`]. Returns a JSON value the host
    /// renders with `--out-format` (`null`: print nothing).
    #[sabi(last_prefix_field)]
    fn run(&self, args_json: RStr<'_>, ctx_json: RStr<'_>) -> RResult<RString, PluginError>;
}

/// One environment as seen by a vm-provider: every method names a VM or
/// network of the [`crate::spec::EnvSpec`] the session was opened with.
#[sabi_trait]
pub trait ProviderSession: Send + Sync {
    /// Create and start these networks (names of `EnvSpec.nets`).
    fn start_networks(&self, nets: RVec<RString>) -> RResult<(), PluginError>;
    /// Stop and remove these networks.
    fn stop_networks(&self, nets: RVec<RString>) -> RResult<(), PluginError>;
    /// `"up"` or `"down"`.
    fn network_state(&self, net: RStr<'_>) -> RResult<RString, PluginError>;
    /// Prepare the VM's disks at `init` (overlays, empty images, copies).
    fn prepare(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    /// Make the VM usable at `init` (inject keys, seed, ...).
    fn bootstrap(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    fn start(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    /// Hard stop.
    fn stop(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    /// Clean shutdown.
    fn shutdown(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    fn reboot(&self, vm: RStr<'_>) -> RResult<(), PluginError>;
    /// Lago's state names: `"down"` (no such domain), `"running"`, `"paused"`,
    /// `"shut off"`, ...
    fn state(&self, vm: RStr<'_>) -> RResult<RString, PluginError>;
    /// Whether the hypervisor knows the VM.
    fn defined(&self, vm: RStr<'_>) -> RResult<bool, PluginError>;
    /// Returns a [`crate::spec::SnapshotInfo`] as JSON.
    fn create_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<RString, PluginError>;
    fn revert_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError>;
    /// Export the VM's disks into `dst_dir`; returns the written paths.
    fn export_disks(
        &self,
        vm: RStr<'_>,
        dst_dir: RStr<'_>,
        standalone: bool,
        compress: bool,
    ) -> RResult<RVec<RString>, PluginError>;
    /// Copy paths out of a running VM. `pairs_json`: `[[vm_path, host_path], ...]`.
    fn extract_paths(
        &self,
        vm: RStr<'_>,
        pairs_json: RStr<'_>,
        ignore_nopath: bool,
    ) -> RResult<(), PluginError>;
    /// Copy paths out of a VM's disks while it is down.
    fn extract_paths_dead(
        &self,
        vm: RStr<'_>,
        pairs_json: RStr<'_>,
        ignore_nopath: bool,
    ) -> RResult<(), PluginError>;
    /// Attach the terminal to the VM's serial console; returns an exit code.
    fn interactive_console(&self, vm: RStr<'_>) -> RResult<i32, PluginError>;
    /// Remove every hypervisor object of the environment (domains, networks).
    #[sabi(last_prefix_field)]
    fn cleanup(&self) -> RResult<(), PluginError>;
    /// Whether `lago start` waits for the VM to answer SSH (and runs its
    /// vm-type's SSH wait). `false` for machines without SSH (serial-only
    /// appliances, containers): start returns once the provider started
    /// them. Added after the prefix (interface 0.1.x): a library built
    /// before it answers `true` through this default body.
    fn needs_ssh(&self, vm: RStr<'_>) -> RResult<bool, PluginError> {
        let _ = vm;
        RResult::ROk(true)
    }
    /// The IPv4 networks in use on the hypervisor hosts of the environment
    /// (all of them, not only the environment's), as JSON
    /// `[[address, prefix length, description], ...]`: `init` leases no
    /// subnet that overlaps one. Called for environments with `hosts:`.
    /// Added after the prefix (interface 0.1.x): a library built before it
    /// answers `[]`.
    fn used_subnets(&self) -> RResult<RString, PluginError> {
        RResult::ROk(RString::from("[]"))
    }
    /// Whether snapshot `name` of the VM can be taken now (its disks, the
    /// name free); asked of every VM before any snapshot is taken. Added
    /// after the prefix: a library built before it has no objection.
    fn check_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError> {
        let _ = (vm, name);
        RResult::ROk(())
    }
    /// Remove snapshot `name` of the VM (undoing a `lago snapshot` that
    /// failed on another VM). Added after the prefix: a library built
    /// before it answers "not implemented".
    fn delete_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError> {
        let _ = (vm, name);
        RResult::RErr(PluginError::not_implemented("delete_snapshot"))
    }
}

/// A vm-provider (`vm-provider:` in the init file): a factory of sessions.
#[sabi_trait]
pub trait VmProvider: Send + Sync {
    /// `env_json`: the [`crate::spec::EnvSpec`].
    #[sabi(last_prefix_field)]
    fn open(
        &self,
        env_json: RStr<'_>,
    ) -> RResult<ProviderSession_TO<'static, RBox<()>>, PluginError>;
}

/// A vm-type (`vm-type:` in the init file). Every method may answer
/// [`crate::ErrorKind::Delegate`]: the host then uses the built-in `default`
/// vm-type for it. `vm_json` is a [`crate::spec::VmSpec`] (for
/// `normalize_spec`: the VM as written in the init file).
#[sabi_trait]
pub trait VmType: Send + Sync {
    fn normalize_spec(&self, vm_json: RStr<'_>) -> RResult<RString, PluginError>;
    fn distro(&self, vm_json: RStr<'_>) -> RResult<RString, PluginError>;
    fn artifact_paths(&self, vm_json: RStr<'_>) -> RResult<RVec<RString>, PluginError>;
    /// Wait until the VM answers SSH (the default uses the host's SSH layer).
    fn wait_for_ssh(&self, vm_json: RStr<'_>) -> RResult<(), PluginError>;
    /// A hook run after the VM started and answers SSH.
    fn after_start(&self, vm_json: RStr<'_>) -> RResult<(), PluginError>;
    /// Verbs this type adds to `lago`.
    fn verbs(&self) -> RResult<RVec<CliSpec>, PluginError>;
    /// Run one of [`VmType::verbs`] on one VM of this type; returns JSON.
    #[sabi(last_prefix_field)]
    fn run_verb(
        &self,
        verb: RStr<'_>,
        args_json: RStr<'_>,
        vm_json: RStr<'_>,
    ) -> RResult<RString, PluginError>;
}

/// A vm-service provider (`service_provider:`): manages services in a VM.
#[sabi_trait]
pub trait VmService: Send + Sync {
    /// Whether this service manager exists in the VM.
    fn is_supported(&self, vm_json: RStr<'_>) -> RResult<bool, PluginError>;
    fn state(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<ServiceState, PluginError>;
    fn start(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<(), PluginError>;
    #[sabi(last_prefix_field)]
    fn stop(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<(), PluginError>;
}

/// What the host offers plugins, implemented BY the host and handed to each
/// library at load ([`LagoPlugin::init`]). Plugins reach it through
/// [`crate::host()`].
#[sabi_trait]
pub trait Host: Send + Sync {
    /// A log record, shown by the host's subscriber and kept in the prefix log.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
    /// The most verbose level the host records; plugins skip finer records.
    fn max_level(&self) -> LogLevel;
    /// Run `argv` in the VM (`vm_json`: its [`crate::spec::VmSpec`]) over
    /// the host's SSH layer, feeding `stdin`.
    fn ssh_exec(
        &self,
        vm_json: RStr<'_>,
        argv: RVec<RString>,
        stdin: RVec<u8>,
    ) -> RResult<CommandStatus, PluginError>;
    /// Copy a local file or folder (recursively, modes kept) into the VM.
    fn ssh_upload(
        &self,
        vm_json: RStr<'_>,
        local: RStr<'_>,
        remote: RStr<'_>,
    ) -> RResult<(), PluginError>;
    /// Copy a file or folder out of the VM (recursively, modes kept).
    fn ssh_download(
        &self,
        vm_json: RStr<'_>,
        remote: RStr<'_>,
        local: RStr<'_>,
    ) -> RResult<(), PluginError>;
    /// `[section] key` of the effective configuration.
    #[sabi(last_prefix_field)]
    fn config(&self, section: RStr<'_>, key: RStr<'_>) -> ROption<RString>;
}

/// A plugin object and the name it is registered under.
#[repr(C)]
#[derive(StableAbi)]
pub struct Named<T> {
    pub name: RString,
    pub plugin: T,
}

pub type OutFormatBox = OutFormat_TO<'static, RBox<()>>;
pub type CliVerbBox = CliVerb_TO<'static, RBox<()>>;
pub type VmProviderBox = VmProvider_TO<'static, RBox<()>>;
pub type ProviderSessionBox = ProviderSession_TO<'static, RBox<()>>;
pub type VmTypeBox = VmType_TO<'static, RBox<()>>;
pub type VmServiceBox = VmService_TO<'static, RBox<()>>;
pub type HostBox = Host_TO<'static, RBox<()>>;

/// Every plugin one library (or the host's built-ins) provides, by kind.
#[repr(C)]
#[derive(StableAbi, Default)]
pub struct PluginSet {
    pub out_formats: RVec<Named<OutFormatBox>>,
    pub verbs: RVec<Named<CliVerbBox>>,
    pub vm_types: RVec<Named<VmTypeBox>>,
    pub providers: RVec<Named<VmProviderBox>>,
    pub services: RVec<Named<VmServiceBox>>,
}

/// The root module of a plugin library: what `lago` finds in the `.so`.
///
/// Written for you by [`crate::export_plugins!`].
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = LagoPluginRef)))]
#[sabi(missing_field(panic))]
pub struct LagoPlugin {
    /// Called once, first: keeps the host handle, forwards the library's
    /// `tracing` records to the host, and routes its panic messages to the log.
    pub init: extern "C" fn(host: HostBox) -> RResult<(), PluginError>,
    /// The plugins of this library.
    #[sabi(last_prefix_field)]
    pub plugins: extern "C" fn() -> RResult<PluginSet, PluginError>,
}

impl RootModule for LagoPluginRef {
    declare_root_module_statics! {LagoPluginRef}
    const BASE_NAME: &'static str = "lago_plugin";
    const NAME: &'static str = "lago_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
