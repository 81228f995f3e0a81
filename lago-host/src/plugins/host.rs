//! The host's side of the [`Host`] interface: what lago offers plugins.
//!
//! One process-wide [`HostState`] backs every `Host` object handed out (one
//! per library at load, plus the one the built-ins see through
//! `lago_plugin_api::host()`): the configuration, the current log level and
//! the [`SshExecutor`] of every open environment.
//!
//! SSH belongs to an environment, not to the process (nushell hands its engine
//! to each call the same way): each open environment registers its executor
//! for the libvirt names of its VMs ([`register_ssh_executor`]), and a
//! plugin's `Host::ssh_exec` (and upload/download) for a VM reaches the
//! executor of the environment that VM belongs to. The libvirt name carries
//! the prefix's tag (`<uuid[..8]>-<vm>`), so two environments open in one
//! process (an SDK user's fixtures, `destroy` of another prefix) never use
//! each other's key or known_hosts. The plugin ABI is unchanged: the VM a
//! plugin sends already says which environment it is from.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr, RString, RVec},
};
use lago_plugin_api::abi::{Host, HostBox, Host_TO};
use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::{CommandStatus, LogLevel, PluginError};

/// Runs a command in a VM for plugins (`Host::ssh_exec`). Each open
/// environment implements this and registers it with [`register_ssh_executor`].
pub trait SshExecutor: Send + Sync {
    /// Run `argv` (one argument each, quoted by the SSH layer) with `stdin`.
    fn exec(
        &self,
        vm: &VmSpec,
        argv: &[String],
        stdin: &[u8],
    ) -> Result<CommandStatus, PluginError>;
    /// Copy a local file or folder into the VM.
    fn upload(&self, vm: &VmSpec, local: &Path, remote: &str) -> Result<(), PluginError> {
        let _ = (vm, local, remote);
        Err(PluginError::not_implemented("the host's SSH upload"))
    }
    /// Copy a file or folder out of the VM.
    fn download(&self, vm: &VmSpec, remote: &str, local: &Path) -> Result<(), PluginError> {
        let _ = (vm, remote, local);
        Err(PluginError::not_implemented("the host's SSH download"))
    }
}

/// A configuration lookup (`Host::config`).
pub type ConfigLookup = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// One environment's executor and the libvirt names of its VMs.
struct Registered {
    id: u64,
    vms: BTreeSet<String>,
    exec: Arc<dyn SshExecutor>,
}

#[derive(Default)]
struct HostState {
    config: RwLock<Option<ConfigLookup>>,
    /// The open environments' executors, oldest first.
    ssh: Mutex<Vec<Registered>>,
}

fn state() -> &'static HostState {
    static STATE: OnceLock<HostState> = OnceLock::new();
    STATE.get_or_init(HostState::default)
}

/// Answer `Host::config` with `lookup` from now on.
pub fn set_config_lookup(lookup: ConfigLookup) {
    if let Ok(mut g) = state().config.write() {
        *g = Some(lookup);
    }
}

/// Answer `Host::config` from `config` from now on.
pub fn set_config(config: &crate::config::Config) {
    let config = config.clone();
    set_config_lookup(Arc::new(move |s: &str, k: &str| {
        config.get(s, k).map(str::to_string)
    }));
}

/// Keeps an environment's executor registered; dropping it unregisters it
/// (the environment holds it for as long as it is open).
#[must_use = "the executor is unregistered when this is dropped"]
pub struct SshRegistration {
    id: u64,
}

impl Drop for SshRegistration {
    fn drop(&mut self) {
        if let Ok(mut g) = state().ssh.lock() {
            g.retain(|r| r.id != self.id);
        }
    }
}

/// Answer `Host::ssh_exec` (and upload/download) for the VMs whose libvirt
/// names are `vms` with `exec`, until the returned registration is dropped.
/// When two live registrations name the same VM (one prefix opened twice:
/// same keys), the newer one answers.
pub fn register_ssh_executor(
    vms: impl IntoIterator<Item = String>,
    exec: Arc<dyn SshExecutor>,
) -> SshRegistration {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let entry = Registered {
        id,
        vms: vms.into_iter().collect(),
        exec,
    };
    // A poisoned lock only means another thread panicked while pushing or
    // removing an entry: the list itself is still whole.
    let mut g = state().ssh.lock().unwrap_or_else(|p| p.into_inner());
    g.push(entry);
    SshRegistration { id }
}

/// The executor of the open environment that has the VM `libvirt_name`.
fn executor_for(libvirt_name: &str) -> Option<Arc<dyn SshExecutor>> {
    let g = state().ssh.lock().unwrap_or_else(|p| p.into_inner());
    g.iter()
        .rev()
        .find(|r| r.vms.contains(libvirt_name))
        .map(|r| r.exec.clone())
}

/// A fresh `Host` object (cheap: all state is shared).
pub fn new_host_object() -> HostBox {
    Host_TO::from_value(HostImpl, TD_Opaque)
}

/// Give the built-ins (this process's own copy of the API crate) the host
/// handle. Idempotent.
pub fn install_for_builtins() {
    let _ = lago_plugin_api::set_host(new_host_object());
}

struct HostImpl;

/// Decode the VM a plugin sent and hand it to the SSH executor of its
/// environment.
fn with_ssh<T>(
    vm_json: RStr<'_>,
    f: impl FnOnce(&dyn SshExecutor, &VmSpec) -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    let vm: VmSpec = match serde_json::from_str(vm_json.as_str()) {
        Ok(vm) => vm,
        Err(e) => {
            return RResult::RErr(PluginError::internal(format!(
                "the VM spec a plugin sent is not valid: {e}"
            )))
        }
    };
    let Some(exec) = executor_for(&vm.libvirt_name) else {
        return RResult::RErr(PluginError::user(format!(
            "VM `{}` (libvirt name `{}`) belongs to no environment open in this process: \
             the host's SSH service reaches only the VMs of open environments",
            vm.name, vm.libvirt_name
        )));
    };
    f(exec.as_ref(), &vm).into()
}

impl Host for HostImpl {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let (target, message) = (target.as_str(), message.as_str());
        if target == lago_plugin_api::STAGE_TARGET {
            crate::progress::reported_stage(message);
            return;
        }
        match level {
            LogLevel::Error => tracing::error!(target: "plugin", plugin = target, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin = target, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin = target, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin = target, "{message}"),
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin = target, "{message}"),
        }
    }

    fn max_level(&self) -> LogLevel {
        crate::logging::max_level()
    }

    fn ssh_exec(
        &self,
        vm_json: RStr<'_>,
        argv: RVec<RString>,
        stdin: RVec<u8>,
    ) -> RResult<CommandStatus, PluginError> {
        with_ssh(vm_json, |exec, vm| {
            let argv: Vec<String> = argv.into_iter().map(RString::into_string).collect();
            exec.exec(vm, &argv, stdin.as_slice())
        })
    }

    fn ssh_upload(
        &self,
        vm_json: RStr<'_>,
        local: RStr<'_>,
        remote: RStr<'_>,
    ) -> RResult<(), PluginError> {
        with_ssh(vm_json, |exec, vm| {
            exec.upload(vm, Path::new(local.as_str()), remote.as_str())
        })
    }

    fn ssh_download(
        &self,
        vm_json: RStr<'_>,
        remote: RStr<'_>,
        local: RStr<'_>,
    ) -> RResult<(), PluginError> {
        with_ssh(vm_json, |exec, vm| {
            exec.download(vm, remote.as_str(), Path::new(local.as_str()))
        })
    }

    fn config(&self, section: RStr<'_>, key: RStr<'_>) -> ROption<RString> {
        let lookup = state().config.read().ok().and_then(|g| g.clone());
        lookup
            .and_then(|f| f(section.as_str(), key.as_str()))
            .map(RString::from)
            .into()
    }
}
