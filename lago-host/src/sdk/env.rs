//! The SDK's calls on [`Env`] (Lago's `Prefix` as `sdk.init`/`sdk.load_env`
//! return it): opening an initialized prefix, start/stop, destroy and
//! cleanup, look-ups, deploy and collect. The type and the runtime under
//! these calls are in [`crate::environment`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{EnvSpec, VmSpec};
use serde::Serialize;

use super::{Net, SdkError, Vm};
use crate::config::Config;
use crate::environment::{Env, SshSettings, VmState};
use crate::ops::leases::lease_store;
use crate::ops::{self, DestroyTarget, OnFailure, OpenEnv};
use crate::plugins::Registry;
use crate::prefix::lock::LockMode;
use crate::prefix::{Prefix, Workdir};
use crate::ssh::SshTarget;
use crate::workflows::collect::{
    collect_vm, plan, remove_partial, rotate_dir, CollectError, VmCollection,
};
use crate::workflows::deploy::{deploy_vm, vm_scripts, DeployError, ScriptRun};
use crate::workflows::{ansible, combine_errors, in_parallel, is_unreachable};

/// How an SDK caller forces a destroy, in the error of one that failed.
const SDK_FORCE: &str =
    "destroy with force (`destroy(force=True)` in Python, `Env::destroy_forced` in Rust)";

/// What [`Env::collect_artifacts`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Collection {
    /// The (absolute) output folder: one sub-folder per VM.
    pub output: PathBuf,
    /// Where an output folder that existed before was renamed to.
    pub rotated: Option<PathBuf>,
    /// Per VM: what was collected, missing, or worth a warning.
    pub vms: BTreeMap<String, VmCollection>,
}

impl<'r> Env<'r> {
    /// The environment of an initialized `prefix`, with a session opened
    /// with each provider its VMs use. Its log goes to the prefix's
    /// `logs/lago.log` too. `[lago] ssh_password` (`--ssh-password`,
    /// `LAGO_SSH_PASSWORD`) is the password of the VMs whose init file entry
    /// gives no `ssh-password`.
    pub fn open(prefix: Prefix, config: Config, registry: &'r Registry) -> Result<Self, SdkError> {
        prefix.require_initialized()?;
        let mut spec = prefix.load_env()?;
        if let Some(password) = config.ssh_password() {
            for vm in spec.domains.values_mut() {
                vm.ssh_password.get_or_insert_with(|| password.to_string());
            }
        }
        if let Err(e) = crate::logging::attach_prefix_log(prefix.path()) {
            tracing::debug!("cannot open the log of {}: {e}", prefix.path().display());
        }
        // A bad SSH setting is the caller's to fix, not the provider's.
        SshSettings::from_config(&config)?;
        Env::with_prefix(prefix, spec, config, registry).map_err(SdkError::provider)
    }

    /// The prefix folder on disk.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The stored environment (as planned at init).
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The configuration the environment was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Lago's `start`: networks, then the VMs named (all when `vms` is
    /// empty) in parallel; returns when each answers SSH (its
    /// `boot_time_sec`, else `ssh_tries` × `ssh_timeout` seconds). VMs
    /// already running are only waited for. Holds the prefix lock meanwhile.
    pub fn start(&self, vms: &[String]) -> Result<(), SdkError> {
        self.prefix.require_initialized()?;
        let _lock = self.prefix.lock(LockMode::Exclusive, "start")?;
        self.check_names(vms)?;
        self.start_vms(vms).map_err(SdkError::provider)
    }

    /// [`start`](Self::start) with every VM booted (`lago start --cold`):
    /// none is restored from its template's warm image, whatever
    /// `[lago] warm_start` says.
    pub fn start_cold(&self, vms: &[String]) -> Result<(), SdkError> {
        let mut cold = self.config().clone();
        cold.set("lago", "warm_start", "off");
        crate::plugins::host::set_config(&cold);
        let result = self.start(vms);
        crate::plugins::host::set_config(self.config());
        result
    }

    /// Lago's `stop`: power the VMs off at once (all when `vms` is empty);
    /// networks no running VM uses any more are stopped too.
    pub fn stop(&self, vms: &[String]) -> Result<(), SdkError> {
        self.prefix.require_initialized()?;
        self.check_names(vms)?;
        self.stop_vms(vms).map_err(SdkError::provider)
    }

    /// Lago's `shutdown`: ACPI shutdown (or `reboot`) of the VMs (all when
    /// `vms` is empty); without `reboot`, idle networks are stopped.
    pub fn shutdown(&self, vms: &[String], reboot: bool) -> Result<(), SdkError> {
        self.prefix.require_initialized()?;
        self.check_names(vms)?;
        self.shutdown_vms(vms, reboot).map_err(SdkError::provider)
    }

    /// `lago console VM`: the VM's serial console on this terminal, through
    /// its provider; returns the exit code of the console session.
    pub fn console(&self, vm: &str) -> Result<i32, SdkError> {
        Ok(self.console_of(vm)?)
    }

    /// Unknown names are [`SdkError::NotFound`].
    fn check_names(&self, vms: &[String]) -> Result<(), SdkError> {
        for name in vms {
            self.vm_spec(name)?;
        }
        Ok(())
    }

    /// Lago's `destroy`: remove the VMs and networks, release the subnets,
    /// remove the prefix folder (and its workdir when nothing else is left
    /// in it). The environment is gone afterwards. A provider that fails
    /// keeps the prefix (see [`Env::destroy_forced`]).
    pub fn destroy(self) -> Result<(), SdkError> {
        self.destroy_with(false)
    }

    /// `lago destroy --force`: [`Env::destroy`], and when the provider
    /// fails the prefix goes anyway, with a warning naming what may remain
    /// in libvirt.
    pub fn destroy_forced(self) -> Result<(), SdkError> {
        self.destroy_with(true)
    }

    fn destroy_with(self, force: bool) -> Result<(), SdkError> {
        let target = match self.prefix.workdir() {
            Some(wd) => DestroyTarget::Workdir {
                workdir: Workdir::at(wd),
                names: Some(vec![self.prefix.name().to_string()]),
            },
            None => DestroyTarget::Prefix(self.prefix.clone()),
        };
        // This environment's own sessions, opened with its configuration.
        let mut teardown = OpenEnv {
            env: &self,
            on_failure: if force {
                OnFailure::Force
            } else {
                OnFailure::NameForce(SDK_FORCE)
            },
        };
        ops::destroy(&target, &self.config, &mut teardown)?;
        Ok(())
    }

    /// Lago's `cleanup`: remove the VMs and networks and release the
    /// subnets; the prefix's files stay (it is no longer initialized).
    pub fn cleanup(&self) -> Result<(), SdkError> {
        let store = lease_store(&self.config)?;
        let mut teardown = OpenEnv {
            env: self,
            on_failure: OnFailure::Fail,
        };
        ops::cleanup_prefix(&self.prefix, &store, &mut teardown)?;
        Ok(())
    }

    pub(crate) fn vm_spec(&self, name: &str) -> Result<&VmSpec, SdkError> {
        self.vm(name)
            .map_err(|e| SdkError::NotFound(e.message().to_string()))
    }

    /// Every VM, by name (Lago's `get_vms()`).
    pub fn get_vms(&self) -> BTreeMap<String, Vm<'_, 'r>> {
        self.spec()
            .domains
            .iter()
            .map(|(name, spec)| (name.clone(), Vm::new(self, spec)))
            .collect()
    }

    /// The VM named `name`, or [`SdkError::NotFound`].
    pub fn get_vm(&self, name: &str) -> Result<Vm<'_, 'r>, SdkError> {
        Ok(Vm::new(self, self.vm_spec(name)?))
    }

    /// The VM named `name`, or the one VM whose name ends with it (as
    /// `lago shell` and `lago copy-to-vm` take names).
    pub fn get_vm_by_suffix(&self, name: &str) -> Result<Vm<'_, 'r>, SdkError> {
        if self.spec().domains.contains_key(name) {
            return self.get_vm(name);
        }
        let matches: Vec<&VmSpec> = self
            .spec()
            .domains
            .values()
            .filter(|vm| vm.name.ends_with(name))
            .collect();
        match matches.as_slice() {
            [vm] => Ok(Vm::new(self, vm)),
            [] => self.get_vm(name),
            many => Err(SdkError::BadInput(format!(
                "`{name}` matches several VMs: {}; give more of the name",
                many.iter()
                    .map(|vm| vm.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Every network, by name (Lago's `get_nets()`).
    pub fn get_nets(&self) -> BTreeMap<String, Net<'_>> {
        self.spec()
            .nets
            .iter()
            .map(|(name, spec)| (name.clone(), Net::new(self.spec(), spec)))
            .collect()
    }

    /// The network named `name`; `None`: the management network (Lago's
    /// `get_net()`). [`SdkError::NotFound`] when there is none.
    pub fn get_net(&self, name: Option<&str>) -> Result<Net<'_>, SdkError> {
        let spec = match name {
            Some(n) => self.spec().nets.get(n),
            None => self.spec().mgmt_net(),
        };
        spec.map(|s| Net::new(self.spec(), s)).ok_or_else(|| {
            SdkError::NotFound(format!(
                "no network named `{}` in this environment; it has: {}",
                name.unwrap_or("(management)"),
                self.spec()
                    .nets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Lago's `ansible_inventory(keys)`: the INI text `lago ansible_hosts
    /// -k KEYS` prints (`keys` empty: `vm-type`, `groups`, `vm-provider`,
    /// and `host` in an environment with `hosts:`).
    pub fn ansible_inventory(&self, keys: &[String]) -> Result<String, SdkError> {
        Ok(self.ansible_inventory_data(keys)?.to_ini())
    }

    /// The inventory as data (groups in order, each with its host lines).
    pub fn ansible_inventory_data(&self, keys: &[String]) -> Result<ansible::Inventory, SdkError> {
        Ok(ansible::inventory(self.spec(), keys)?)
    }

    /// How to reach `vm` once it answers SSH ([`Env::ssh_ready`]'s wait);
    /// [`SdkError::NotRunning`] at once when its provider says it is not
    /// running (as Lago's `LagoVMNotRunningError`).
    pub(crate) fn ready(&self, vm: &VmSpec) -> Result<SshTarget, SdkError> {
        match self.vm_state(vm) {
            Ok(state) if !state.is_running() => Err(SdkError::not_running(&vm.name, &state)),
            _ => Ok(self.ssh_ready(vm)?),
        }
    }

    /// When SSH could not reach `vm`: [`SdkError::NotRunning`] if its
    /// provider says it is not running, else the SSH error.
    pub(crate) fn unreachable(&self, vm: &VmSpec, ssh: SdkError) -> SdkError {
        match self.vm_state(vm) {
            Ok(state) if !state.is_running() => SdkError::not_running(&vm.name, &state),
            _ => ssh,
        }
    }

    /// Lago's `deploy`: each VM's `metadata.deploy-scripts` over SSH, the
    /// VMs in parallel, each VM's scripts in order. Returns each VM's runs
    /// (exit code 0 each; a failing script is an error naming the VM, the
    /// script, its exit code and its last lines of output).
    pub fn deploy(&self) -> Result<BTreeMap<String, Vec<ScriptRun>>, SdkError> {
        let spec = self.spec();
        let mut work: Vec<(&VmSpec, Vec<PathBuf>)> = Vec::new();
        for vm in spec.domains.values() {
            let scripts = vm_scripts(vm, &spec.prefix).map_err(crate::error::Error::from)?;
            if !scripts.is_empty() {
                work.push((vm, scripts));
            }
        }
        let results = in_parallel(&work, |(vm, scripts)| -> Result<Vec<ScriptRun>, SdkError> {
            let target = self.ready(vm)?;
            match deploy_vm(self.ssh(), &target, scripts, None) {
                Ok(runs) => Ok(runs),
                Err(DeployError::Ssh { source, .. }) if is_unreachable(&source) => {
                    Err(self.unreachable(vm, SdkError::ssh(&vm.name, &source)))
                }
                Err(e) => Err(crate::error::Error::from(e).into()),
            }
        });
        gather(work.iter().map(|(vm, _)| *vm), results, "deploy")
    }

    /// Lago's `collect_artifacts(output_dir, ignore_nopath)`: each VM's
    /// artifacts (its vm-type's paths, else the init file's `artifacts`)
    /// into `output_dir/<vm>/<path with / as _>`, modes kept; an existing
    /// `output_dir` is first renamed aside. A path missing in a VM is
    /// skipped when `ignore_nopath`, else an error. A VM that is not running
    /// is read offline when its provider can.
    pub fn collect_artifacts(
        &self,
        output_dir: &Path,
        ignore_nopath: bool,
    ) -> Result<Collection, SdkError> {
        let output = std::path::absolute(output_dir).map_err(|e| {
            SdkError::BadInput(format!("output folder {}: {e}", output_dir.display()))
        })?;
        let vms: Vec<&VmSpec> = self.spec().domains.values().collect();
        let mut paths = Vec::with_capacity(vms.len());
        for vm in &vms {
            paths.push(self.artifact_paths(vm).map_err(SdkError::provider)?);
        }
        let states = self.states().map_err(SdkError::provider)?;
        // What an interrupted collect left is not kept with the old output.
        for vm in &vms {
            remove_partial(&output.join(&vm.name)).map_err(crate::error::Error::from)?;
        }
        let rotated = rotate_dir(&output).map_err(crate::error::Error::from)?;
        for vm in &vms {
            let dir = output.join(&vm.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| SdkError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let work: Vec<(&VmSpec, &Vec<String>)> = vms.iter().copied().zip(paths.iter()).collect();
        let results = in_parallel(&work, |(vm, paths)| {
            let running = states.vms.get(&vm.name).is_some_and(VmState::is_running);
            self.collect_one(vm, paths, &output.join(&vm.name), ignore_nopath, running)
        });
        let vms = gather(work.iter().map(|(vm, _)| *vm), results, "collect")?;
        Ok(Collection {
            output,
            rotated,
            vms,
        })
    }

    /// Lago's `VM.collect_artifacts(host_path, ignore_nopath)`: the
    /// artifacts of the VM `name` (its vm-type's paths, else the init file's
    /// `artifacts`) into `output_dir` (created when missing), each as `<path
    /// with / as _>`. A running VM's missing paths are skipped and listed in
    /// the report's `missing` (the caller decides whether that is an error,
    /// as Lago's `ExtractPathNoPathError`); a VM that is not running is read
    /// offline by its provider, which refuses a missing path unless
    /// `ignore_nopath`.
    pub fn collect_vm_artifacts(
        &self,
        name: &str,
        output_dir: &Path,
        ignore_nopath: bool,
    ) -> Result<VmCollection, SdkError> {
        let vm = self.get_vm(name)?;
        let spec = vm.spec();
        let paths = self.artifact_paths(spec).map_err(SdkError::provider)?;
        let running = vm.running()?;
        let output = std::path::absolute(output_dir).map_err(|e| {
            SdkError::BadInput(format!("output folder {}: {e}", output_dir.display()))
        })?;
        std::fs::create_dir_all(&output)
            .map_err(|e| SdkError::Internal(format!("cannot create {}: {e}", output.display())))?;
        self.collect_one(spec, &paths, &output, running || ignore_nopath, running)
    }

    /// One VM's artifacts into `vm_out`: over SSH when it runs, else through
    /// its provider's offline extraction.
    fn collect_one(
        &self,
        vm: &VmSpec,
        paths: &[String],
        vm_out: &Path,
        ignore_nopath: bool,
        running: bool,
    ) -> Result<VmCollection, SdkError> {
        if paths.is_empty() {
            return Ok(VmCollection::default());
        }
        if !running {
            let pairs: Vec<(String, String)> = plan(&vm.name, paths, vm_out)
                .map_err(crate::error::Error::from)?
                .into_iter()
                .map(|a| (a.guest, a.dest.to_string_lossy().into_owned()))
                .collect();
            // The provider reads the stopped VM's disks: whatever it
            // refuses (a missing path included) is its error.
            self.extract_paths_dead(vm, &pairs, ignore_nopath)
                .map_err(|e| SdkError::Provider(e.message().to_string()))?;
            return Ok(VmCollection {
                collected: paths.to_vec(),
                ..VmCollection::default()
            });
        }
        let target = self.ready(vm)?;
        match collect_vm(self.ssh(), &target, paths, vm_out, !ignore_nopath) {
            Ok(report) => Ok(report),
            Err(CollectError::Ssh(e)) if is_unreachable(&e) => {
                Err(self.unreachable(vm, SdkError::ssh(&vm.name, &e)))
            }
            Err(CollectError::Missing { vm, paths }) => {
                Err(SdkError::missing_paths(BTreeMap::from([(vm, paths)])))
            }
            Err(e) => Err(crate::error::Error::from(e).into()),
        }
    }
}

/// Per-VM results of parallel work into one map, or one error naming every
/// VM that failed (see [`combine_errors`]).
fn gather<'a, T>(
    vms: impl Iterator<Item = &'a VmSpec>,
    results: Vec<Result<Result<T, SdkError>, String>>,
    what: &str,
) -> Result<BTreeMap<String, T>, SdkError> {
    let mut done = BTreeMap::new();
    let mut errors = Vec::new();
    for (vm, result) in vms.zip(results) {
        match result {
            Ok(Ok(v)) => {
                done.insert(vm.name.clone(), v);
            }
            Ok(Err(e)) => errors.push(e),
            Err(panic) => errors.push(SdkError::Internal(format!(
                "VM `{}`: {what} worker panicked: {panic}",
                vm.name
            ))),
        }
    }
    // Paths missing in several VMs: one error listing them all.
    if errors.len() > 1
        && errors
            .iter()
            .all(|e| matches!(e, SdkError::MissingPaths { .. }))
    {
        let mut missing = BTreeMap::new();
        for e in errors {
            if let SdkError::MissingPaths { missing: m, .. } = e {
                missing.extend(m);
            }
        }
        return Err(SdkError::missing_paths(missing));
    }
    match errors.len() {
        0 => Ok(done),
        1 => Err(errors.remove(0)),
        _ => Err(combine_errors(errors.into_iter().map(Into::into).collect()).into()),
    }
}
