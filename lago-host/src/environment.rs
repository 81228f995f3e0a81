//! A stored environment brought to life: its VMs and networks driven through
//! their provider plugins, and reached over SSH.
//!
//! [`Env`] is an environment from the prefix's stored [`EnvSpec`] and the
//! plugin registry: it opens one provider session per provider the VMs use,
//! and does the work of several VMs in parallel (one thread per VM: the
//! provider calls and SSH waits block). Its public API (the SDK's) is in
//! [`crate::sdk`]; the runtime under it is here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lago_plugin_api::spec::{EnvSpec, NetSpec, VmSpec};
use lago_plugin_api::{CommandStatus, PluginError};

use crate::boot_watch::{self, ConsoleFrom, ConsoleWatch};
use crate::config::Config;
use crate::error::Error;
use crate::plugins::client::{Provider, VmType};
use crate::plugins::host::{register_ssh_executor, SshExecutor, SshRegistration};
use crate::plugins::Registry;
use crate::prefix::Prefix;
use crate::progress;
use crate::ssh::{Auth, HostKeyPolicy, PoolOptions, SshError, SshPool, SshTarget, WaitWatch};

mod export;
mod services;
mod snapshots;
mod states;
pub use export::{mark_written, vm_entry, ExportOptions, WRITTEN_KEY};
pub use services::Service;
pub use snapshots::{vm_snapshots, SNAPSHOTS_KEY};
pub use states::{stored_states, NetState, States, VmState};

/// How long and how often to wait for a VM's SSH.
#[derive(Debug, Clone, Copy)]
pub struct SshSettings {
    /// `--ssh-tries` (`[lago] ssh_tries`).
    pub tries: u64,
    /// `--ssh-timeout` (`[lago] ssh_timeout`), seconds per attempt.
    pub timeout: u64,
    /// `[lago] console_stall_timeout`: seconds a booting VM's console may
    /// print nothing new before waiting for its SSH fails (0: no limit; see
    /// [`crate::boot_watch`]).
    pub console_stall: u64,
}

impl SshSettings {
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        Ok(SshSettings {
            tries: config.ssh_tries().map_err(|e| Error::user_from(&e))?,
            timeout: config.ssh_timeout().map_err(|e| Error::user_from(&e))?,
            console_stall: config
                .console_stall_timeout()
                .map_err(|e| Error::user_from(&e))?,
        })
    }

    /// The console stall limit, `None` when off.
    pub fn stall_limit(&self) -> Option<Duration> {
        (self.console_stall > 0).then(|| Duration::from_secs(self.console_stall))
    }

    /// The time a VM gets to answer SSH after its start: its `boot_time_sec`
    /// when the init file sets one, else tries × timeout (Lago's budget).
    pub fn deadline(&self, vm: &VmSpec) -> Duration {
        let secs = vm
            .boot_time_sec
            .unwrap_or(self.tries.saturating_mul(self.timeout).max(1));
        Duration::from_secs(secs)
    }
}

/// An environment: its prefix, its stored spec, its configuration, and a
/// session with each provider its VMs use (one state owner: every verb,
/// the Rust SDK and Python go through it). Its public API is the SDK's
/// (`lago::sdk`, Lago's `Prefix` as `sdk.init`/`sdk.load_env` return it);
/// the runtime below it (provider calls, SSH waits, one thread per VM)
/// is here and in this module's files. `'r` is the plugin registry's
/// lifetime (`'static` from the SDK's `init` and `load_env`).
pub struct Env<'r> {
    pub(crate) spec: EnvSpec,
    /// The prefix the environment is stored in: every write of its state
    /// goes through this handle (under the prefix's state lock).
    pub(crate) prefix: Prefix,
    pub(crate) config: Config,
    pub(crate) registry: &'r Registry,
    providers: BTreeMap<String, Provider>,
    ssh: SshPool,
    settings: SshSettings,
    /// This environment's SSH service for plugins, registered for its VMs
    /// while the environment is open (plugins/host.rs).
    _host_ssh: SshRegistration,
}

impl<'r> Env<'r> {
    /// The environment `spec` (stored in its prefix, initialized or not:
    /// init's provider work and teardown use it too) with a session opened
    /// with every provider its VMs use. `[lago]` settings of `config`: the
    /// SSH budget (`ssh_tries`, `ssh_timeout`, `console_stall_timeout`).
    /// Errors: a vm-provider not installed (user), one that fails to open.
    pub fn from_spec(spec: EnvSpec, config: Config, registry: &'r Registry) -> Result<Self, Error> {
        let info = &spec.prefix;
        let prefix = Prefix::at(info.path.clone(), info.name.clone(), info.workdir.clone());
        Self::with_prefix(prefix, spec, config, registry)
    }

    /// [`Env::from_spec`] with the prefix handle the caller has.
    pub(crate) fn with_prefix(
        prefix: Prefix,
        env: EnvSpec,
        config: Config,
        registry: &'r Registry,
    ) -> Result<Self, Error> {
        let settings = SshSettings::from_config(&config)?;
        let names: BTreeSet<&str> = env
            .domains
            .values()
            .map(|vm| vm.vm_provider.as_str())
            .collect();
        let mut providers = BTreeMap::new();
        for name in names {
            let entry = registry.providers.get(name).ok_or_else(|| {
                Error::user(format!(
                    "vm-provider `{name}` is not available; installed providers: {}",
                    registry
                        .providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            providers.insert(name.to_string(), Provider::open(name, &entry.plugin, &env)?);
        }
        let ssh = SshPool::with_options(PoolOptions::default());
        let _host_ssh = register_ssh_executor(
            env.domains.values().map(|vm| vm.libvirt_name.clone()),
            Arc::new(EnvSsh {
                env: env.clone(),
                pool: ssh.clone(),
            }),
        );
        Ok(Env {
            prefix,
            spec: env,
            config,
            registry,
            providers,
            ssh,
            settings,
            _host_ssh,
        })
    }

    /// The SSH connections of this environment (shared by every verb call).
    pub fn ssh(&self) -> &SshPool {
        &self.ssh
    }

    /// The VM named `name`, or a user error listing the VMs.
    pub(crate) fn vm(&self, name: &str) -> Result<&VmSpec, Error> {
        self.spec.domains.get(name).ok_or_else(|| {
            Error::user(format!(
                "no VM named `{name}` in this environment; it has: {}",
                self.spec
                    .domains
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The VMs named (all when `names` is empty), checked to exist.
    pub(crate) fn select(&self, names: &[String]) -> Result<Vec<&VmSpec>, Error> {
        if names.is_empty() {
            return Ok(self.spec.domains.values().collect());
        }
        names.iter().map(|n| self.vm(n)).collect()
    }

    fn provider(&self, vm: &VmSpec) -> Result<&Provider, Error> {
        self.providers
            .get(&vm.vm_provider)
            .ok_or_else(|| Error::internal(format!("no session for provider `{}`", vm.vm_provider)))
    }

    fn vm_type<'s>(&'s self, vm: &'s VmSpec) -> Result<VmType<'s>, Error> {
        self.registry
            .vm_types
            .get(&vm.vm_type)
            .map(|e| VmType::new(&vm.vm_type, &e.plugin))
            .ok_or_else(|| {
                Error::user(format!(
                    "VM `{}` has vm-type `{}`, which no plugin provides; available: {}",
                    vm.name,
                    vm.vm_type,
                    self.registry
                        .vm_types
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Runs `f` for every VM in parallel; the first error (by VM name) wins,
    /// the others are logged.
    fn each_vm<F>(&self, vms: &[&VmSpec], f: F) -> Result<(), Error>
    where
        F: Fn(&VmSpec) -> Result<(), Error> + Sync,
    {
        let results = crate::workflows::in_parallel(vms, |vm| f(vm));
        let mut first = None;
        for (vm, r) in vms.iter().zip(results) {
            let r = r.unwrap_or_else(|panic| {
                Err(Error::internal(format!(
                    "VM `{}`: worker panicked: {panic}",
                    vm.name
                )))
            });
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::error!("VM `{}`: {e}", vm.name);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Init's provider work: prepare every VM's disks, then bootstrap the
    /// ones that want it (`bootstrap: true` and no `--skip-bootstrap`).
    pub(crate) fn prepare(&self, skip_bootstrap: bool) -> Result<(), Error> {
        let vms: Vec<&VmSpec> = self.spec.domains.values().collect();
        self.each_vm(&vms, |vm| {
            let provider = self.provider(vm)?;
            progress::task(format_args!("Create disks for VM {}", vm.name), || {
                provider.prepare(vm)
            })?;
            if vm.bootstrap && !skip_bootstrap {
                let how = if vm.offline_bootstrap() {
                    " (offline: writing into its disk)"
                } else {
                    ""
                };
                progress::task(format_args!("Bootstrap VM {}{how}", vm.name), || {
                    provider.bootstrap(vm)
                })?;
            }
            Ok(())
        })
    }

    /// The nets the given VMs have nics on, per provider.
    fn nets_by_provider(&self, vms: &[&VmSpec]) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for vm in vms {
            let nets = out.entry(vm.vm_provider.clone()).or_default();
            nets.extend(vm.nics.iter().map(|n| n.net.clone()));
        }
        out
    }

    /// `lago start [VM...]`: networks first, then every VM in parallel, and
    /// returns when each answers SSH (unless its provider says it has none:
    /// `needs_ssh`). VMs already running are left alone (and still waited
    /// for), so starting a running environment is a no-op.
    ///
    /// When it fails, the networks this start brought up are stopped again
    /// (the provider keeps those a running VM uses: a VM that started but
    /// did not answer stays up for a look at it, with its networks).
    pub(crate) fn start_vms(&self, names: &[String]) -> Result<(), Error> {
        let vms = self.select(names)?;
        let were_down = self.down_networks_of(&vms);
        let result = progress::task("Start nets", || self.start_networks_of(&vms)).and_then(|()| {
            progress::task("Start vms", || {
                self.each_vm(&vms, |vm| {
                    progress::task(format_args!("Starting VM {}", vm.name), || {
                        self.start_vm(vm)
                    })
                })
            })
        });
        if result.is_err() {
            self.stop_started_networks(&were_down);
        }
        result
    }

    /// Per provider, the networks of `vms` its provider says are not up
    /// (a network whose state cannot be read is left out: it is not taken
    /// as one this start brings up).
    fn down_networks_of(&self, vms: &[&VmSpec]) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = self.nets_by_provider(vms);
        for (provider, nets) in &mut out {
            let provider = &self.providers[provider];
            nets.retain(|net| matches!(provider.network_state(net), Ok(NetState::Down)));
        }
        out
    }

    /// After a failed start: stops the networks it brought up (`were_down`
    /// before it) that no running VM uses, warning about any it could not.
    fn stop_started_networks(&self, were_down: &BTreeMap<String, BTreeSet<String>>) {
        for (provider, nets) in were_down {
            if nets.is_empty() {
                continue;
            }
            if let Err(e) = self.providers[provider].stop_networks(nets.iter().cloned()) {
                tracing::warn!(
                    "the start failed; stopping the networks it started ({}) failed too: {e}; \
                     `lago stop` or `lago destroy` stops them",
                    nets.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            } else {
                tracing::info!(
                    "the start failed: stopped the networks it had started ({}), but for any a running VM uses",
                    nets.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }

    /// Starts one VM (unless running) and waits for its SSH, showing its
    /// stage in the live view.
    fn start_vm(&self, vm: &VmSpec) -> Result<(), Error> {
        let provider = self.provider(vm)?;
        let stage = progress::stage(&vm.name, "checking its state");
        if !provider.state(vm)?.is_running() {
            stage.set("defining and starting");
            let started = Instant::now();
            provider.start(vm)?;
            tracing::info!("VM `{}` started in {:?}", vm.name, started.elapsed());
        }
        let needs_ssh = provider.needs_ssh(vm)?;
        if needs_ssh {
            let address = vm.mgmt_ip().map(|ip| ip.to_string()).unwrap_or_default();
            // a VM restored from a warm image is not booting
            let waiting = match self.spec.prefix.last_start(&vm.name) {
                Some("warm") => format!("waiting for SSH at {address}"),
                _ => format!("booting, waiting for SSH at {address}"),
            };
            stage.set(&waiting);
            self.wait_for_ssh(vm, &stage, &waiting)?;
            stage.set("SSH answers");
        } else {
            tracing::info!(
                "VM `{}`: its provider says it has no SSH to wait for",
                vm.name
            );
            stage.set("running (no SSH to wait for)");
        }
        self.vm_type(vm)?.after_start(vm)
    }

    /// Starts the networks `vms` have nics on (each provider its own).
    fn start_networks_of(&self, vms: &[&VmSpec]) -> Result<(), Error> {
        // From here the hypervisor may hold things of this prefix: destroy
        // needs the provider (see `Prefix::never_started`).
        self.prefix.mark_started()?;
        for (provider, nets) in self.nets_by_provider(vms) {
            self.providers[&provider].start_networks(nets)?;
        }
        Ok(())
    }

    /// The watch over `vm`'s console while its SSH is waited for
    /// ([`crate::boot_watch`]): it ends the wait when the console shows that
    /// the VM cannot boot or stalls, and shows the console's last line on
    /// the VM's live line (`stage`, if any) after `waiting`. `None` for a
    /// VM on another host (its console log is not here).
    pub(crate) fn boot_watch(
        &self,
        vm: &VmSpec,
        from: ConsoleFrom,
        stage: Option<&progress::Stage>,
        waiting: &str,
    ) -> Option<WaitWatch> {
        if vm.host.is_some() {
            return None;
        }
        let path = self.spec.prefix.console_log_path(&vm.name);
        let stall = self.settings.stall_limit();
        let mut watch = match from {
            ConsoleFrom::BootStart => ConsoleWatch::new(path, stall),
            ConsoleFrom::Now => ConsoleWatch::from_now(path, stall),
        };
        let stage = stage.map(progress::Stage::share);
        let waiting = waiting.to_string();
        let mut shown: Option<String> = None;
        Some(Box::new(move || {
            let res = watch.check();
            if watch.last_line() != shown.as_deref() {
                shown = watch.last_line().map(str::to_string);
                if let (Some(stage), Some(line)) = (&stage, &shown) {
                    stage.set(&format!("{waiting}; console: {line}"));
                }
            }
            res.map_err(|e| e.to_string())
        }))
    }

    /// Waits until the VM answers SSH: its vm-type's own wait when it has
    /// one, else the host's (watching its console, see [`Self::boot_watch`]).
    fn wait_for_ssh(
        &self,
        vm: &VmSpec,
        stage: &progress::Stage,
        waiting: &str,
    ) -> Result<(), Error> {
        if self.vm_type(vm)?.wait_for_ssh(vm)?.is_some() {
            return Ok(());
        }
        let target = ssh_target(&self.spec, vm)?;
        let deadline = self.settings.deadline(vm);
        let (per_try, _) = self.ssh_tries();
        let watch = self.boot_watch(vm, ConsoleFrom::BootStart, Some(stage), waiting);
        match self
            .ssh
            .wait_for_ssh_watched(&target, 0, per_try, deadline, watch)
        {
            Ok(ready) => {
                tracing::info!(
                    "VM `{}` answers SSH after {:?} ({} tries)",
                    vm.name,
                    ready.elapsed,
                    ready.tries
                );
                Ok(())
            }
            Err(e) => {
                let tail = console_tail(&self.spec, vm, 15);
                let why = ssh_wait_failure(vm, &e).unwrap_or_else(|| {
                    format!("VM `{}` did not come up: {}", vm.name, e.chain_string())
                });
                Err(Error::user(format!("{why}{tail}")))
            }
        }
    }

    /// How to reach `vm` over SSH, once it answers: the verbs that work
    /// inside a VM (shell, copy-to-vm, copy-from-vm, deploy, collect) wait
    /// for its SSH first, as Lago's did, for up to `--ssh-tries` attempts of
    /// `--ssh-timeout` seconds each (so a VM that is rebooting is waited
    /// for). The VM's state is the caller's to check first (the SDK's
    /// `ready`: a VM that is not running fails at once).
    pub(crate) fn ssh_ready(&self, vm: &VmSpec) -> Result<SshTarget, Error> {
        let target = ssh_target(&self.spec, vm)?;
        let (per_try, tries) = self.ssh_tries();
        let overall = self.ssh_budget();
        let stage = progress::stage(&vm.name, "waiting for SSH");
        let watch = self.boot_watch(vm, ConsoleFrom::Now, Some(&stage), "waiting for SSH");
        // The budget is Lago's: tries x timeout. Refused connections (a VM
        // rebooting) come back at once and are retried every 50 ms, so they
        // are bounded by the time, not counted as tries.
        match self
            .ssh
            .wait_for_ssh_watched(&target, 0, per_try, overall, watch)
        {
            Ok(ready) => {
                stage.set("SSH answers");
                tracing::debug!("VM `{}` answers SSH after {} tries", vm.name, ready.tries);
                Ok(target)
            }
            Err(e) => Err(Error::user(ssh_wait_failure(vm, &e).unwrap_or_else(|| {
                format!(
                    "VM `{}` did not answer SSH within {}s ({tries} tries of {}s, \
                     --ssh-tries/--ssh-timeout): {}",
                    vm.name,
                    overall.as_secs(),
                    per_try.as_secs(),
                    e.chain_string()
                )
            }))),
        }
    }

    /// Lago's SSH wait: `--ssh-timeout` seconds (at least 1) per try, and
    /// `--ssh-tries` tries (at least 1).
    fn ssh_tries(&self) -> (Duration, u32) {
        let per_try = Duration::from_secs(self.settings.timeout.max(1));
        let tries = u32::try_from(self.settings.tries.max(1)).unwrap_or(u32::MAX);
        (per_try, tries)
    }

    /// The longest a VM is waited for: tries x timeout.
    fn ssh_budget(&self) -> Duration {
        let (per_try, tries) = self.ssh_tries();
        per_try.saturating_mul(tries)
    }

    /// Drops the pooled SSH connection to a VM that is going down.
    fn forget_ssh(&self, vm: &VmSpec) {
        if let Ok(target) = ssh_target(&self.spec, vm) {
            self.ssh.disconnect(&target);
        }
    }

    /// `lago stop [VM...]`: hard power-off, in parallel; networks no running
    /// VM uses any more are stopped too.
    pub(crate) fn stop_vms(&self, names: &[String]) -> Result<(), Error> {
        let vms = self.select(names)?;
        self.each_vm(&vms, |vm| {
            self.forget_ssh(vm);
            self.provider(vm)?.stop(vm)
        })?;
        self.stop_idle_networks(&vms)
    }

    /// `lago shutdown [-r] [VM...]`: ACPI shutdown (or reboot), in parallel.
    pub(crate) fn shutdown_vms(&self, names: &[String], reboot: bool) -> Result<(), Error> {
        let vms = self.select(names)?;
        self.each_vm(&vms, |vm| {
            self.forget_ssh(vm);
            let provider = self.provider(vm)?;
            if reboot {
                self.reboot(vm, provider)
            } else {
                provider.shutdown(vm)
            }
        })?;
        if reboot {
            return Ok(());
        }
        self.stop_idle_networks(&vms)
    }

    /// Reboots `vm` (ACPI, as Lago's `shutdown -r`) and, when its console
    /// log is local and shows output, returns once the console shows that
    /// the old boot ended or a new one began
    /// ([`boot_watch::wait_for_boot_boundary`], at most
    /// [`boot_watch::REBOOT_SEEN_LIMIT`] or the SSH budget): a verb that
    /// follows (`lago shell`) then waits for the new boot's SSH instead of
    /// reaching the old one as it goes down.
    fn reboot(&self, vm: &VmSpec, provider: &Provider) -> Result<(), Error> {
        let console = vm
            .host
            .is_none()
            .then(|| self.spec.prefix.console_log_path(&vm.name));
        let mark = console.as_deref().and_then(boot_watch::ConsoleMark::take);
        provider.reboot(vm)?;
        let (Some(path), Some(mark)) = (console, mark) else {
            return Ok(());
        };
        let _stage = progress::stage(&vm.name, "waiting for its reboot");
        let limit = boot_watch::REBOOT_SEEN_LIMIT.min(self.ssh_budget());
        if !boot_watch::wait_for_boot_boundary(&path, mark, limit) {
            tracing::warn!(
                "VM `{}`: its console showed no reboot within {}s; it may still be \
                 shutting down",
                vm.name,
                limit.as_secs()
            );
        }
        Ok(())
    }

    /// Stops the networks of `vms` (each provider keeps the ones a running VM
    /// still uses).
    fn stop_idle_networks(&self, vms: &[&VmSpec]) -> Result<(), Error> {
        for (provider, nets) in self.nets_by_provider(vms) {
            self.providers[&provider].stop_networks(nets)?;
        }
        Ok(())
    }

    /// One VM's state as its provider reports it (`running`, `shut off`,
    /// `down` when not defined, ...).
    pub(crate) fn vm_state(&self, vm: &VmSpec) -> Result<VmState, Error> {
        self.provider(vm)?.state(vm)
    }

    /// Every VM's and network's state, as the providers report them.
    pub(crate) fn states(&self) -> Result<States, Error> {
        let mut states = States::default();
        for vm in self.spec.domains.values() {
            states.vms.insert(vm.name.clone(), self.vm_state(vm)?);
        }
        for net in self.spec.nets.values() {
            states.nets.insert(net.name.clone(), self.net_state(net)?);
        }
        Ok(states)
    }

    /// A net is up when the provider of any of its VMs says so.
    fn net_state(&self, net: &NetSpec) -> Result<NetState, Error> {
        let providers: BTreeSet<&str> = self
            .spec
            .domains
            .values()
            .filter(|vm| vm.nics.iter().any(|n| n.net == net.name))
            .map(|vm| vm.vm_provider.as_str())
            .collect();
        for provider in providers {
            if self.providers[provider].network_state(&net.name)? == NetState::Up {
                return Ok(NetState::Up);
            }
        }
        Ok(NetState::Down)
    }

    /// Removes every hypervisor object of the environment (domains, then
    /// networks), whatever state init or start left it in.
    pub(crate) fn teardown(&self) -> Result<(), Error> {
        self.ssh.disconnect_all();
        let mut first = None;
        for provider in self.providers.values() {
            if let Err(e) = provider.cleanup() {
                tracing::error!("{e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// `lago console VM`.
    pub(crate) fn console_of(&self, name: &str) -> Result<i32, Error> {
        let vm = self.vm(name)?;
        self.provider(vm)?.interactive_console(vm)
    }

    /// The paths `lago collect` takes from `vm`: its vm-type's
    /// `artifact_paths`, else (a vm-type that delegates) the spec's
    /// `artifacts`.
    pub(crate) fn artifact_paths(&self, vm: &VmSpec) -> Result<Vec<String>, Error> {
        Ok(self
            .vm_type(vm)?
            .artifact_paths(vm)?
            .unwrap_or_else(|| vm.artifacts.clone()))
    }

    /// Copies `pairs` (path in the VM, path on the host) out of a VM that is
    /// not running, through its provider's `extract_paths_dead` (reading its
    /// disks offline). A provider that cannot is a user error saying so.
    pub(crate) fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> Result<(), Error> {
        self.provider(vm)?
            .extract_paths_dead(vm, pairs, ignore_nopath)
    }
}

/// How to reach `vm` over SSH: its management address, its user, the prefix
/// key (or its password), and the host key pinned at init.
pub fn ssh_target(env: &EnvSpec, vm: &VmSpec) -> Result<SshTarget, Error> {
    let host = vm.mgmt_ip().ok_or_else(|| {
        Error::user(format!(
            "VM `{}` has no address on its management network `{}`",
            vm.name, vm.mgmt_net
        ))
    })?;
    let key = env.prefix.ssh_key_path();
    let password = vm.ssh_password.clone().or_else(|| vm.root_password.clone());
    let auth = match password {
        Some(password) => Auth::KeyOrPassword { key, password },
        None => Auth::Key(key),
    };
    let jump = match env.host_of(vm) {
        Some((name, h)) => Some(h.ssh_dest().ok_or_else(|| {
            Error::user(format!(
                "VM `{}` runs on host {name}, which has no SSH destination (set its `ssh:`)",
                vm.name
            ))
        })?),
        None => None,
    };
    let host_key = match &vm.ssh_host_key {
        Some(line) if crate::templates::host_key_pinned(vm) => HostKeyPolicy::Pinned(line.clone()),
        // The console log of a VM on another host is a volume there: its
        // first key seen is learned.
        _ if jump.is_some() => {
            HostKeyPolicy::Learn(crate::prefix::ssh_client::known_hosts_path(&env.prefix))
        }
        offered => HostKeyPolicy::Console {
            known_hosts: crate::prefix::ssh_client::known_hosts_path(&env.prefix),
            console: env.prefix.console_log_path(&vm.name),
            required: crate::templates::host_key_source(vm) == Some("console"),
            seeded: offered.clone(),
        },
    };
    Ok(SshTarget {
        name: vm.name.clone(),
        host: host.into(),
        port: 22,
        user: vm.ssh_user.clone(),
        auth,
        host_key,
        jump,
    })
}

/// The message of a wait for SSH that ended before its budget: the VM's
/// console shows it cannot boot (or stalled), or it refused every
/// authentication method lago tried. `None` for the other failures.
fn ssh_wait_failure(vm: &VmSpec, e: &SshError) -> Option<String> {
    match e {
        SshError::Abandoned { why, .. } => {
            Some(format!("VM `{}` will not come up: {why}", vm.name))
        }
        SshError::Auth { .. } => Some(format!(
            "VM `{}` answers SSH but refused to log in: {} (is the prefix's key \
             installed in the VM, or its `ssh-user`/`ssh-password` right?)",
            vm.name,
            e.chain_string()
        )),
        _ => None,
    }
}

/// How much of the end of a console log is read for [`console_tail`]: the
/// guest writes that file, and it can be of any size.
const CONSOLE_TAIL_BYTES: u64 = 64 * 1024;

/// The last `lines` lines of a VM's serial console log, as a message tail,
/// read from at most its last [`CONSOLE_TAIL_BYTES`] and with terminal
/// control removed ([`crate::sanitize::terminal_text`]): the guest wrote it.
fn console_tail(env: &EnvSpec, vm: &VmSpec, lines: usize) -> String {
    if let Some(host) = &vm.host {
        return format!(
            "\n  (its console log is on host {host}: volume {}.console.log of storage pool {}-images)",
            vm.name,
            env.prefix.tag()
        );
    }
    let path = env.prefix.console_log_path(&vm.name);
    let tail = std::fs::File::open(&path)
        .and_then(|mut f| crate::sanitize::read_end(&mut f, CONSOLE_TAIL_BYTES));
    match tail {
        Ok(bytes) => format!(
            "\n  last lines of its console ({}):\n{}",
            path.display(),
            crate::sanitize::tail_lines(&bytes, lines, "    ")
        ),
        Err(_) => format!("\n  (no console log at {})", path.display()),
    }
}

/// The host's SSH service for plugins (`Host::ssh_exec` and friends).
struct EnvSsh {
    env: EnvSpec,
    pool: SshPool,
}

fn ssh_plugin_err(vm: &VmSpec) -> impl FnOnce(crate::ssh::SshError) -> PluginError + '_ {
    move |e| PluginError::user(format!("VM `{}`: {}", vm.name, e.chain_string()))
}

impl EnvSsh {
    fn target(&self, vm: &VmSpec) -> Result<SshTarget, PluginError> {
        ssh_target(&self.env, vm).map_err(|e| PluginError::user(e.to_string()))
    }
}

impl SshExecutor for EnvSsh {
    fn exec(
        &self,
        vm: &VmSpec,
        argv: &[String],
        stdin: &[u8],
    ) -> Result<CommandStatus, PluginError> {
        let target = self.target(vm)?;
        let stdin = (!stdin.is_empty()).then_some(stdin);
        let status = self
            .pool
            .exec(&target, argv, stdin, None)
            .map_err(ssh_plugin_err(vm))?;
        Ok(CommandStatus {
            code: status.code,
            out: status.out.into(),
            err: status.err.into(),
        })
    }

    fn upload(
        &self,
        vm: &VmSpec,
        local: &std::path::Path,
        remote: &str,
    ) -> Result<(), PluginError> {
        let target = self.target(vm)?;
        self.pool
            .upload(&target, local, remote)
            .map_err(ssh_plugin_err(vm))
    }

    fn download(
        &self,
        vm: &VmSpec,
        remote: &str,
        local: &std::path::Path,
    ) -> Result<(), PluginError> {
        let target = self.target(vm)?;
        self.pool
            .download(&target, remote, local)
            .map_err(ssh_plugin_err(vm))
    }
}

/// Refuses `what` (snapshots, export) before anything is done when one of
/// `vms` runs on another host than the default one: the local-libvirt
/// provider keeps their disks as volumes there (docs/multi-host.md).
pub(crate) fn default_host_only(vms: &[&VmSpec], what: &str) -> Result<(), Error> {
    let remote: Vec<String> = vms
        .iter()
        .filter_map(|vm| vm.host.as_ref().map(|h| format!("{} (host {h})", vm.name)))
        .collect();
    if remote.is_empty() {
        return Ok(());
    }
    Err(Error::user(format!(
        "{what}: VMs on other hosts than the default one are not supported yet: {}; \
         name the others with -n",
        remote.join(", ")
    )))
}
