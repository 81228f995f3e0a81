//! A stored environment brought to life: its VMs and networks driven through
//! their provider plugins, and reached over SSH.
//!
//! Verbs open an [`Environment`] from the prefix's stored [`EnvSpec`] and the
//! plugin registry; it opens one provider session per provider the VMs use,
//! and does the work of several VMs in parallel (one thread per VM: the
//! provider calls and SSH waits block).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};
use lago_plugin_api::abi::{ProviderSessionBox, VmTypeBox};
use lago_plugin_api::spec::{DiskType, EnvSpec, NetSpec, VmSpec};
use lago_plugin_api::{CommandStatus, ErrorKind, PluginError};
use serde_json::Value;

use crate::boot_watch::{self, ConsoleFrom, ConsoleWatch};
use crate::config::Config;
use crate::error::Error;
use crate::plugins::host::{register_ssh_executor, SshExecutor, SshRegistration};
use crate::plugins::{into_result, Registry};
use crate::prefix::lifecycle::States;
use crate::progress;
use crate::ssh::{Auth, HostKeyPolicy, PoolOptions, SshError, SshPool, SshTarget, WaitWatch};
use crate::templates::{TemplateError, TemplateRepo, TemplateStore};

mod export;
mod services;
mod snapshots;
pub use export::{mark_written, vm_entry, ExportOptions, WRITTEN_KEY};
pub use services::Service;
pub use snapshots::{vm_snapshots, SNAPSHOTS_KEY};

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

/// One environment and the plugins that drive it.
pub struct Environment<'r> {
    pub env: EnvSpec,
    registry: &'r Registry,
    sessions: BTreeMap<String, ProviderSessionBox>,
    ssh: SshPool,
    settings: SshSettings,
    /// This environment's SSH service for plugins, registered for its VMs
    /// while the environment is open (plugins/host.rs).
    _host_ssh: SshRegistration,
}

/// A provider call's error, naming the VM or network it was about.
fn plugin_err(what: impl std::fmt::Display) -> impl FnOnce(PluginError) -> Error {
    move |e| Error::from(e).context(what)
}

impl<'r> Environment<'r> {
    /// Opens a session with every provider the environment's VMs use.
    pub fn open(
        env: EnvSpec,
        registry: &'r Registry,
        settings: SshSettings,
    ) -> Result<Self, Error> {
        let env_json = serde_json::to_string(&env)?;
        let mut sessions = BTreeMap::new();
        let providers: BTreeSet<&str> = env
            .domains
            .values()
            .map(|vm| vm.vm_provider.as_str())
            .collect();
        for name in providers {
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
            let session = into_result(entry.plugin.open(env_json.as_str().into()))
                .map_err(plugin_err(format_args!("vm-provider `{name}`")))?;
            sessions.insert(name.to_string(), session);
        }
        let ssh = SshPool::with_options(PoolOptions::default());
        let _host_ssh = register_ssh_executor(
            env.domains.values().map(|vm| vm.libvirt_name.clone()),
            Arc::new(EnvSsh {
                env: env.clone(),
                pool: ssh.clone(),
            }),
        );
        Ok(Environment {
            env,
            registry,
            sessions,
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
    pub fn vm(&self, name: &str) -> Result<&VmSpec, Error> {
        self.env.domains.get(name).ok_or_else(|| {
            Error::user(format!(
                "no VM named `{name}` in this environment; it has: {}",
                self.env
                    .domains
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The VM named `name`, or the one VM whose name ends with `name`.
    pub fn vm_by_suffix(&self, name: &str) -> Result<&VmSpec, Error> {
        if let Some(vm) = self.env.domains.get(name) {
            return Ok(vm);
        }
        let matches: Vec<&VmSpec> = self
            .env
            .domains
            .values()
            .filter(|vm| vm.name.ends_with(name))
            .collect();
        match matches.as_slice() {
            [vm] => Ok(vm),
            [] => self.vm(name),
            many => Err(Error::user(format!(
                "`{name}` matches several VMs: {}; give more of the name",
                many.iter()
                    .map(|vm| vm.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The VMs named (all when `names` is empty), checked to exist.
    pub fn select(&self, names: &[String]) -> Result<Vec<&VmSpec>, Error> {
        if names.is_empty() {
            return Ok(self.env.domains.values().collect());
        }
        names.iter().map(|n| self.vm(n)).collect()
    }

    fn session(&self, vm: &VmSpec) -> Result<&ProviderSessionBox, Error> {
        self.sessions
            .get(&vm.vm_provider)
            .ok_or_else(|| Error::internal(format!("no session for provider `{}`", vm.vm_provider)))
    }

    fn vm_type(&self, vm: &VmSpec) -> Result<&VmTypeBox, Error> {
        self.registry
            .vm_types
            .get(&vm.vm_type)
            .map(|e| &e.plugin)
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
        let results: Vec<(String, Result<(), Error>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = vms
                .iter()
                .map(|vm| (vm.name.clone(), scope.spawn(|| f(vm))))
                .collect();
            handles
                .into_iter()
                .map(|(name, h)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(Error::internal(format!("VM `{name}`: worker panicked")))
                    });
                    (name, r)
                })
                .collect()
        });
        let mut first = None;
        for (name, r) in results {
            if let Err(e) = r {
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::error!("VM `{name}`: {e}");
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Init's provider work: prepare every VM's disks, then bootstrap the
    /// ones that want it (`bootstrap: true` and no `--skip-bootstrap`).
    pub fn prepare(&self, skip_bootstrap: bool) -> Result<(), Error> {
        let vms: Vec<&VmSpec> = self.env.domains.values().collect();
        self.each_vm(&vms, |vm| {
            let session = self.session(vm)?;
            progress::task(format_args!("Create disks for VM {}", vm.name), || {
                into_result(session.prepare(vm.name.as_str().into())).map_err(plugin_err(
                    format_args!("preparing the disks of VM `{}`", vm.name),
                ))
            })?;
            if vm.bootstrap && !skip_bootstrap {
                let how = if vm.offline_bootstrap() {
                    " (offline: writing into its disk)"
                } else {
                    ""
                };
                progress::task(format_args!("Bootstrap VM {}{how}", vm.name), || {
                    into_result(session.bootstrap(vm.name.as_str().into()))
                        .map_err(plugin_err(format_args!("bootstrapping VM `{}`", vm.name)))
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
    pub fn start(&self, names: &[String]) -> Result<(), Error> {
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
            let session = &self.sessions[provider];
            nets.retain(|net| {
                matches!(into_result(session.network_state(net.as_str().into())),
                         Ok(state) if state.as_str() != "up")
            });
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
            let list: RVec<RString> = nets.iter().map(|n| RString::from(n.as_str())).collect();
            if let Err(e) = into_result(self.sessions[provider].stop_networks(list)) {
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
        let session = self.session(vm)?;
        let json = serde_json::to_string(vm)?;
        let stage = progress::stage(&vm.name, "checking its state");
        let state = into_result(session.state(vm.name.as_str().into()))
            .map_err(plugin_err(format_args!("VM `{}`", vm.name)))?;
        if state != "running" {
            stage.set("defining and starting");
            let started = Instant::now();
            into_result(session.start(vm.name.as_str().into()))
                .map_err(plugin_err(format_args!("starting VM `{}`", vm.name)))?;
            tracing::info!("VM `{}` started in {:?}", vm.name, started.elapsed());
        }
        let needs_ssh = into_result(session.needs_ssh(vm.name.as_str().into()))
            .map_err(plugin_err(format_args!("VM `{}`", vm.name)))?;
        if needs_ssh {
            let address = vm.mgmt_ip().map(|ip| ip.to_string()).unwrap_or_default();
            let waiting = format!("booting, waiting for SSH at {address}");
            stage.set(&waiting);
            self.wait_for_ssh(vm, &json, &stage, &waiting)?;
            stage.set("SSH answers");
        } else {
            tracing::info!(
                "VM `{}`: its provider says it has no SSH to wait for",
                vm.name
            );
            stage.set("running (no SSH to wait for)");
        }
        match into_result(self.vm_type(vm)?.after_start(json.as_str().into())) {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::Delegate => Ok(()),
            Err(e) => Err(plugin_err(format_args!("VM `{}` after start", vm.name))(e)),
        }
    }

    /// Starts the networks `vms` have nics on (each provider its own).
    fn start_networks_of(&self, vms: &[&VmSpec]) -> Result<(), Error> {
        // From here the hypervisor may hold things of this prefix: destroy
        // needs the provider (see `Prefix::never_started`).
        let info = &self.env.prefix;
        crate::prefix::Prefix::at(info.path.clone(), info.name.clone(), info.workdir.clone())
            .mark_started()?;
        for (provider, nets) in self.nets_by_provider(vms) {
            let session = &self.sessions[&provider];
            let nets: RVec<RString> = nets.into_iter().map(RString::from).collect();
            into_result(session.start_networks(nets)).map_err(plugin_err(format_args!(
                "starting the networks ({provider})"
            )))?;
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
        let path = self.env.prefix.console_log_path(&vm.name);
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
        json: &str,
        stage: &progress::Stage,
        waiting: &str,
    ) -> Result<(), Error> {
        match into_result(self.vm_type(vm)?.wait_for_ssh(json.into())) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.kind, ErrorKind::Delegate | ErrorKind::NotImplemented) => {}
            Err(e) => return Err(plugin_err(format_args!("VM `{}`", vm.name))(e)),
        }
        let target = ssh_target(&self.env, vm)?;
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
                let tail = console_tail(&self.env, vm, 15);
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
    /// for). A VM its provider reports as not running fails at once.
    pub fn ssh_ready(&self, vm: &VmSpec) -> Result<SshTarget, Error> {
        let target = ssh_target(&self.env, vm)?;
        let (per_try, tries) = self.ssh_tries();
        let overall = self.ssh_budget();
        if let Some(e) = crate::workflows::not_running(self, vm) {
            return Err(e);
        }
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
        if let Ok(target) = ssh_target(&self.env, vm) {
            self.ssh.disconnect(&target);
        }
    }

    /// `lago stop [VM...]`: hard power-off, in parallel; networks no running
    /// VM uses any more are stopped too.
    pub fn stop(&self, names: &[String]) -> Result<(), Error> {
        let vms = self.select(names)?;
        self.each_vm(&vms, |vm| {
            self.forget_ssh(vm);
            into_result(self.session(vm)?.stop(vm.name.as_str().into()))
                .map_err(plugin_err(format_args!("stopping VM `{}`", vm.name)))
        })?;
        self.stop_idle_networks(&vms)
    }

    /// `lago shutdown [-r] [VM...]`: ACPI shutdown (or reboot), in parallel.
    pub fn shutdown(&self, names: &[String], reboot: bool) -> Result<(), Error> {
        let vms = self.select(names)?;
        self.each_vm(&vms, |vm| {
            self.forget_ssh(vm);
            let session = self.session(vm)?;
            if reboot {
                self.reboot(vm, session)
            } else {
                into_result(session.shutdown(vm.name.as_str().into()))
                    .map_err(plugin_err(format_args!("shutting down VM `{}`", vm.name)))
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
    fn reboot(&self, vm: &VmSpec, session: &ProviderSessionBox) -> Result<(), Error> {
        let console = vm
            .host
            .is_none()
            .then(|| self.env.prefix.console_log_path(&vm.name));
        let mark = console.as_deref().and_then(boot_watch::ConsoleMark::take);
        into_result(session.reboot(vm.name.as_str().into()))
            .map_err(plugin_err(format_args!("rebooting VM `{}`", vm.name)))?;
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
            let nets: RVec<RString> = nets.into_iter().map(RString::from).collect();
            into_result(self.sessions[&provider].stop_networks(nets))
                .map_err(plugin_err(format_args!("stopping networks ({provider})")))?;
        }
        Ok(())
    }

    /// One VM's state as its provider reports it (`running`, `shut off`,
    /// `down` when not defined, ...).
    pub fn vm_state(&self, vm: &VmSpec) -> Result<String, Error> {
        into_result(self.session(vm)?.state(vm.name.as_str().into()))
            .map(RString::into_string)
            .map_err(plugin_err(format_args!("VM `{}`", vm.name)))
    }

    /// Every VM's and network's state, as the providers report them.
    pub fn states(&self) -> Result<States, Error> {
        let mut states = States::default();
        for vm in self.env.domains.values() {
            states.vms.insert(vm.name.clone(), self.vm_state(vm)?);
        }
        for net in self.env.nets.values() {
            states.nets.insert(net.name.clone(), self.net_state(net)?);
        }
        Ok(states)
    }

    /// A net is up when the provider of any of its VMs says so.
    fn net_state(&self, net: &NetSpec) -> Result<String, Error> {
        let providers: BTreeSet<&str> = self
            .env
            .domains
            .values()
            .filter(|vm| vm.nics.iter().any(|n| n.net == net.name))
            .map(|vm| vm.vm_provider.as_str())
            .collect();
        for provider in providers {
            let state =
                into_result(self.sessions[provider].network_state(net.name.as_str().into()))
                    .map_err(plugin_err(format_args!("network `{}`", net.name)))?;
            if state.as_str() == "up" {
                return Ok("up".to_string());
            }
        }
        Ok("down".to_string())
    }

    /// Removes every hypervisor object of the environment (domains, then
    /// networks), whatever state init or start left it in.
    pub fn teardown(&self) -> Result<(), Error> {
        self.ssh.disconnect_all();
        let mut first = None;
        for (provider, session) in &self.sessions {
            if let Err(e) = into_result(session.cleanup()) {
                let e = plugin_err(format_args!("removing the VMs and networks ({provider})"))(e);
                tracing::error!("{e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// `lago console VM`.
    pub fn console(&self, name: &str) -> Result<i32, Error> {
        let vm = self.vm(name)?;
        into_result(
            self.session(vm)?
                .interactive_console(vm.name.as_str().into()),
        )
        .map_err(plugin_err(format_args!("console of VM `{name}`")))
    }

    /// The paths `lago collect` takes from `vm`: its vm-type's
    /// `artifact_paths`, else (a vm-type that delegates) the spec's
    /// `artifacts`.
    pub fn artifact_paths(&self, vm: &VmSpec) -> Result<Vec<String>, Error> {
        let json = serde_json::to_string(vm)?;
        match into_result(self.vm_type(vm)?.artifact_paths(json.as_str().into())) {
            Ok(paths) => Ok(paths.into_iter().map(RString::into_string).collect()),
            Err(e) if e.kind == ErrorKind::Delegate => Ok(vm.artifacts.clone()),
            Err(e) => Err(plugin_err(format_args!("VM `{}`", vm.name))(e)),
        }
    }

    /// Copies `pairs` (path in the VM, path on the host) out of a VM that is
    /// not running, through its provider's `extract_paths_dead` (reading its
    /// disks offline). A provider that cannot is a user error saying so.
    pub fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> Result<(), Error> {
        let pairs_json = serde_json::to_string(pairs)?;
        let r = self.session(vm)?.extract_paths_dead(
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
                    vm.name, vm.vm_provider, e.message
                )))
            }
            Err(e) => Err(plugin_err(format_args!(
                "VM `{}` is not running; reading files from its disks",
                vm.name
            ))(e)),
        }
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
            crate::workflows::tail_lines(&bytes, lines, "    ")
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

/// Which template repository `init` uses: `--template-repo-path` (a file or
/// URL), else `--template-repo-name` (searched in `template_repos`), else the
/// configuration's `[init] template_repo_path` / `template_repo_name`.
#[derive(Debug, Clone, Default)]
pub struct RepoChoice {
    pub path: Option<String>,
    pub name: Option<String>,
}

impl RepoChoice {
    fn load(&self, config: &Config) -> Result<Option<TemplateRepo>, Error> {
        let path = self
            .path
            .clone()
            .or_else(|| config.get("init", "template_repo_path").map(str::to_string))
            .filter(|p| !p.is_empty());
        let name = self
            .name
            .clone()
            .or_else(|| config.get("init", "template_repo_name").map(str::to_string))
            .filter(|n| !n.is_empty());
        let repo = match (path, name) {
            (Some(path), _) => TemplateRepo::load(&path),
            (None, Some(name)) => TemplateRepo::find_by_name(&name, &config.template_repos()),
            (None, None) => return Ok(None),
        };
        repo.map(Some).map_err(template_err)
    }
}

fn template_err(e: TemplateError) -> Error {
    if e.is_user_error() {
        Error::user_from(&e)
    } else {
        Error::internal_from(&e)
    }
}

/// Whether any disk of `env` comes from a template repository (a layer of
/// a layered export too: its template comes from there).
fn uses_repo_templates(env: &EnvSpec) -> bool {
    env.domains.values().flat_map(|vm| &vm.disks).any(|d| {
        d.disk_type == DiskType::Template
            && (crate::templates::exported::is_layered(d)
                || (d.base.is_none() && d.template_type.as_deref() != Some("qcow2")))
    })
}

/// What `init` skips.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    /// `--skip-bootstrap`: no VM is bootstrapped.
    pub skip_bootstrap: bool,
    /// `--skip-build`: the disks' `build` sections are dropped.
    pub skip_build: bool,
}

/// The vm-type plugin named `name`, or a user error listing those there are.
fn vm_type_named<'r>(
    registry: &'r Registry,
    vm: &str,
    name: &str,
) -> Result<&'r crate::plugins::Entry<VmTypeBox>, Error> {
    registry.vm_types.get(name).ok_or_else(|| {
        Error::user(format!(
            "domains/{vm}/vm-type: no vm-type plugin is named `{name}`; available: {}",
            registry
                .vm_types
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Init's normalize hook: the domain `name` as written in the init file goes
/// through its vm-type's `normalize_spec` (the domain's `vm-type`, else the
/// configured `default_vm_type`) before it is checked and planned, so a
/// vm-type can give its VMs defaults (Lago's `VMPlugin` did the same). A
/// vm-type that delegates leaves the domain as it is.
pub fn normalize_domain(
    registry: &Registry,
    config: &Config,
    name: &str,
    domain: Value,
) -> Result<Value, Error> {
    let vm_type = match domain.get("vm-type") {
        None => config.default_vm_type().to_string(),
        Some(Value::String(t)) => t.clone(),
        // Not a name: the init file check reports it.
        Some(_) => return Ok(domain),
    };
    // An unknown vm-type is reported after the init file's own checks (by
    // `prepare_new_env`), as every other mistake in it is reported first.
    let Some(entry) = registry.vm_types.get(&vm_type) else {
        return Ok(domain);
    };
    let json = serde_json::to_string(&domain)?;
    match into_result(entry.plugin.normalize_spec(json.as_str().into())) {
        Ok(out) => match serde_json::from_str::<Value>(out.as_str())? {
            v @ Value::Object(_) => Ok(v),
            other => Err(Error::internal(format!(
                "vm-type `{vm_type}` normalized domain `{name}` into {other}, not a mapping"
            ))),
        },
        Err(e) if e.kind == ErrorKind::Delegate => Ok(domain),
        Err(e) => Err(plugin_err(format_args!("VM `{name}`"))(e)),
    }
}

/// Init's provider work, run on the planned and stored environment (the
/// prefix init hook): templates are imported into the store, then every
/// VM's disks are prepared (with their `build` steps) and bootstrapped
/// through its provider, in parallel. (Each domain went through its
/// vm-type's `normalize_spec` before planning: [`normalize_domain`].)
pub fn prepare_new_env(
    env: &mut EnvSpec,
    config: &Config,
    registry: &Registry,
    repo: &RepoChoice,
    options: PrepareOptions,
) -> Result<(), Error> {
    for vm in env.domains.values() {
        vm_type_named(registry, &vm.name, &vm.vm_type)?;
    }
    if options.skip_build {
        for disk in env.domains.values_mut().flat_map(|vm| vm.disks.iter_mut()) {
            disk.build = None;
        }
    }
    let repo = if uses_repo_templates(env) {
        repo.load(config)?
    } else {
        None
    };
    let store = TemplateStore::new(config.template_store());
    crate::templates::resolve_env(env, repo.as_ref(), &store).map_err(template_err)?;
    crate::templates::unpin_unused_host_keys(env, options.skip_bootstrap)?;
    std::fs::create_dir_all(env.prefix.images_dir())?;
    std::fs::create_dir_all(env.prefix.logs_dir())?;
    let settings = SshSettings::from_config(config)?;
    let environment = Environment::open(env.clone(), registry, settings)?;
    environment.prepare(options.skip_bootstrap)
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

/// The IPv4 networks in use on the hypervisor hosts of `skeleton` (an
/// environment with only its prefix and `hosts`), as the vm-providers
/// `providers` see them (their `used_subnets`). A provider that cannot reach
/// a host fails here, before anything is made on any host.
pub fn subnets_in_use(
    skeleton: &EnvSpec,
    providers: &BTreeSet<String>,
    registry: &Registry,
) -> Result<Vec<(std::net::Ipv4Addr, u8, String)>, Error> {
    let env_json = serde_json::to_string(skeleton)?;
    let mut out = Vec::new();
    for name in providers {
        let Some(entry) = registry.providers.get(name) else {
            continue;
        };
        let session = into_result(entry.plugin.open(env_json.as_str().into()))
            .map_err(plugin_err(format_args!("vm-provider `{name}`")))?;
        let json = into_result(session.used_subnets()).map_err(plugin_err(format_args!(
            "vm-provider `{name}`: the hosts' networks"
        )))?;
        let mut got: Vec<(std::net::Ipv4Addr, u8, String)> = serde_json::from_str(json.as_str())
            .map_err(|e| {
                Error::internal(format!(
                    "vm-provider `{name}` listed the hosts' networks unreadably: {e}"
                ))
            })?;
        out.append(&mut got);
    }
    Ok(out)
}

/// Destroy's and cleanup's provider work (the prefix teardown hook): remove
/// every domain and network of the stored environment, if there is one.
pub fn teardown_env(
    env: Option<&EnvSpec>,
    config: &Config,
    registry: &Registry,
) -> Result<(), Error> {
    let Some(env) = env else {
        return Ok(());
    };
    let settings = SshSettings::from_config(config)?;
    Environment::open(env.clone(), registry, settings)?.teardown()
}
