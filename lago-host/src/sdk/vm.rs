//! [`Vm`] and [`Net`]: views of one VM or network of an [`Env`] (Lago's VM
//! and Network objects).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use lago_plugin_api::spec::{DiskSpec, EnvSpec, NetSpec, NicSpec, VmSpec};

use super::{CommandStatus, Env, SdkError};
use crate::environment::ssh_target;
use crate::ssh::SshTarget;
use crate::workflows::copy::{copy_from_vm, copy_to_vm, CopyError};
use crate::workflows::is_unreachable;

pub use crate::environment::Service;

/// One VM of an environment. `'e` borrows the [`Env`], `'r` is its plugin
/// registry's lifetime.
#[derive(Clone, Copy)]
pub struct Vm<'e, 'r> {
    env: &'e Env<'r>,
    spec: &'e VmSpec,
}

impl<'e, 'r> Vm<'e, 'r> {
    pub(crate) fn new(env: &'e Env<'r>, spec: &'e VmSpec) -> Self {
        Vm { env, spec }
    }

    /// The VM's name in the init file.
    pub fn name(&self) -> &'e str {
        &self.spec.name
    }

    /// The stored spec (everything the init file and the plan gave it).
    pub fn spec(&self) -> &'e VmSpec {
        self.spec
    }

    /// Its address on its management network (Lago's `vm.ip()`).
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.spec.mgmt_ip()
    }

    /// Every address of its nics, in nic order.
    pub fn all_ips(&self) -> Vec<Ipv4Addr> {
        self.spec.nics.iter().filter_map(|n| n.ip).collect()
    }

    /// Its addresses on the network `net`.
    pub fn ips_in_net(&self, net: &str) -> Vec<Ipv4Addr> {
        self.spec
            .nics
            .iter()
            .filter(|n| n.net == net)
            .filter_map(|n| n.ip)
            .collect()
    }

    /// Its nics, in order (`eth0` first).
    pub fn nics(&self) -> &'e [NicSpec] {
        &self.spec.nics
    }

    /// The names of the networks it has nics on, in nic order, once each.
    pub fn nets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for nic in &self.spec.nics {
            if !out.contains(&nic.net) {
                out.push(nic.net.clone());
            }
        }
        out
    }

    /// The name of its management network.
    pub fn mgmt_net(&self) -> &'e str {
        &self.spec.mgmt_net
    }

    /// Its root password, when the init file set one.
    pub fn root_password(&self) -> Option<&'e str> {
        self.spec.root_password.as_deref()
    }

    /// Its `metadata` mapping from the init file.
    pub fn metadata(&self) -> &'e lago_plugin_api::spec::Extra {
        &self.spec.metadata
    }

    /// Its vm-type (`default` unless the init file names a plugin's).
    pub fn vm_type(&self) -> &'e str {
        &self.spec.vm_type
    }

    /// Its `groups` (for Ansible inventories).
    pub fn groups(&self) -> &'e [String] {
        &self.spec.groups
    }

    /// Its distro as the template says, else `unknown` (as `lago status`).
    pub fn distro(&self) -> &'e str {
        self.spec.distro.as_deref().unwrap_or("unknown")
    }

    /// Its disks, in order.
    pub fn disks(&self) -> &'e [DiskSpec] {
        &self.spec.disks
    }

    /// Its state as its provider reports it (`running`, `shut off`, `down`
    /// for not defined, ...).
    pub fn state(&self) -> Result<String, SdkError> {
        Ok(self
            .env
            .vm_state(self.spec)
            .map_err(SdkError::provider)?
            .to_string())
    }

    /// Whether its provider says it is running.
    pub fn running(&self) -> Result<bool, SdkError> {
        Ok(self.state()? == "running")
    }

    fn target(&self) -> Result<SshTarget, SdkError> {
        Ok(ssh_target(self.env.spec(), self.spec)?)
    }

    /// An SSH failure: [`SdkError::NotRunning`] when the VM could not be
    /// reached because it is not running, else [`SdkError::Ssh`].
    fn ssh_err(&self, e: crate::ssh::SshError) -> SdkError {
        let err = SdkError::ssh(&self.spec.name, &e);
        if is_unreachable(&e) {
            self.env.unreachable(self.spec, err)
        } else {
            err
        }
    }

    /// Lago's `vm.ssh(argv)`: runs `argv` in the VM (each element one
    /// argument, quoted for the remote shell) and returns its exit code and
    /// output. A non-zero exit code is not an error.
    pub fn ssh<S: AsRef<str>>(&self, argv: &[S]) -> Result<CommandStatus, SdkError> {
        self.ssh_with_input(argv, None)
    }

    /// `lago shell VM 'cmd | cmd'`: runs the command line `line` through the
    /// VM's shell (as `ssh host LINE` does) and returns its exit code and
    /// output. A non-zero exit code is not an error.
    pub fn ssh_command(&self, line: &str) -> Result<CommandStatus, SdkError> {
        let target = self.target()?;
        self.env
            .ssh()
            .exec_command(&target, line, None, None)
            .map_err(|e| self.ssh_err(e))
    }

    /// [`Vm::ssh`] with `input` sent to the command's stdin.
    pub fn ssh_with_input<S: AsRef<str>>(
        &self,
        argv: &[S],
        input: Option<&[u8]>,
    ) -> Result<CommandStatus, SdkError> {
        let target = self.target()?;
        self.env
            .ssh()
            .exec(&target, argv, input, None)
            .map_err(|e| self.ssh_err(e))
    }

    /// Lago's `vm.ssh_script(path)`: runs the local script at `path` in the
    /// VM (by its `#!` interpreter; without one by `bash` when the guest
    /// has it, else `sh`).
    pub fn ssh_script(&self, path: &Path) -> Result<CommandStatus, SdkError> {
        let script = std::fs::read(path)
            .map_err(|e| SdkError::BadInput(format!("reading script {}: {e}", path.display())))?;
        let target = self.target()?;
        self.env
            .ssh()
            .exec_script(&target, &script, None)
            .map_err(|e| self.ssh_err(e))
    }

    /// Lago's `vm.interactive_ssh(argv)`: a session on this terminal (a
    /// login shell when `argv` is empty); returns the remote exit code.
    pub fn interactive_ssh<S: AsRef<str>>(&self, argv: &[S]) -> Result<i32, SdkError> {
        let target = self.target()?;
        let command = (!argv.is_empty()).then_some(argv);
        self.env
            .ssh()
            .interactive(&target, command)
            .map_err(|e| self.ssh_err(e))
    }

    /// Lago's `vm.wait_for_ssh()`: waits up to `timeout` until the VM
    /// answers SSH; [`SdkError::Ssh`] when it does not, at once when its
    /// console shows it cannot boot ([`crate::boot_watch`]).
    pub fn wait_for_ssh(&self, timeout: Duration) -> Result<(), SdkError> {
        let target = self.target()?;
        let per_try = Duration::from_secs(self.ssh_timeout().max(1));
        let env = self.env;
        let watch = env.boot_watch(
            self.spec,
            crate::boot_watch::ConsoleFrom::Now,
            None,
            "waiting for SSH",
        );
        env.ssh()
            .wait_for_ssh_watched(
                &target,
                0,
                per_try.min(timeout.max(Duration::from_secs(1))),
                timeout,
                watch,
            )
            .map(|_| ())
            .map_err(|e| SdkError::ssh(&self.spec.name, &e))
    }

    /// What the CLI verbs that work inside a VM (shell, copy-to-vm,
    /// copy-from-vm) do first, as Lago's did: wait until it answers SSH, for
    /// up to `ssh_tries` attempts of `ssh_timeout` seconds (a VM that is
    /// rebooting is waited for). [`SdkError::NotRunning`] at once when its
    /// provider says it is not running, [`SdkError::BadInput`] when it does
    /// not answer in time.
    pub fn ssh_ready(&self) -> Result<(), SdkError> {
        self.env.ready(self.spec)?;
        Ok(())
    }

    /// Lago's `vm.ssh_reachable(tries)`: whether the VM answers SSH within
    /// `tries` tries (`ssh_timeout` seconds each).
    pub fn ssh_reachable(&self, tries: u32) -> bool {
        let Ok(target) = self.target() else {
            return false;
        };
        let per_try = Duration::from_secs(self.ssh_timeout().max(1));
        let tries = tries.max(1);
        self.env
            .ssh()
            .wait_for_ssh(&target, tries, per_try, per_try * tries)
            .is_ok()
    }

    /// The time [`Env::start`] gives this VM to answer SSH: its
    /// `boot_time_sec`, else `ssh_tries` × `ssh_timeout` seconds.
    pub fn ssh_budget(&self) -> Duration {
        match crate::environment::SshSettings::from_config(self.env.config()) {
            Ok(settings) => settings.deadline(self.spec),
            Err(_) => Duration::from_secs(self.ssh_timeout().max(1) * 10),
        }
    }

    fn ssh_timeout(&self) -> u64 {
        self.env.config().ssh_timeout().unwrap_or(10)
    }

    /// Lago's `vm.copy_to(local, remote, recursive)`: a file, or with
    /// `recursive` a folder, into the VM at `remote` (as `scp -r`: into an
    /// existing folder under its own name). Modes are kept.
    pub fn copy_to(&self, local: &Path, remote: &str, recursive: bool) -> Result<(), SdkError> {
        if !recursive && local.is_dir() {
            return Err(SdkError::BadInput(format!(
                "{} is a folder: copy it with recursive=true",
                local.display()
            )));
        }
        let target = self.target()?;
        copy_to_vm(self.env.ssh(), &target, local, remote).map_err(|e| self.copy_err(e))
    }

    /// Lago's `vm.copy_from(remote, local, recursive)`: a file, or with
    /// `recursive` a folder, of the VM to `local`. Modes are kept.
    pub fn copy_from(&self, remote: &str, local: &Path, recursive: bool) -> Result<(), SdkError> {
        let target = self.target()?;
        if !recursive {
            let is_dir = self.ssh(&["test", "-d", remote])?;
            if is_dir.code == 0 {
                return Err(SdkError::BadInput(format!(
                    "{remote} in VM `{}` is a folder: copy it with recursive=true",
                    self.spec.name
                )));
            }
        }
        copy_from_vm(self.env.ssh(), &target, remote, local).map_err(|e| self.copy_err(e))
    }

    fn copy_err(&self, e: CopyError) -> SdkError {
        match e {
            CopyError::Ssh(e) => self.ssh_err(e),
            CopyError::RemoteMissing { .. } | CopyError::RemoteFolderMissing { .. } => {
                SdkError::NotFound(e.chain_string())
            }
            e => crate::error::Error::from(e).into(),
        }
    }

    /// Lago's `vm.service(name)`: the service `name`, driven by the VM's
    /// vm-service plugin (detected on first use and stored).
    pub fn service(&self, name: &str) -> Result<Service<'r>, SdkError> {
        self.env
            .service(&self.spec.name, name)
            .map_err(SdkError::provider)
    }
}

/// One network of an environment.
#[derive(Clone, Copy)]
pub struct Net<'e> {
    env: &'e EnvSpec,
    spec: &'e NetSpec,
}

impl<'e> Net<'e> {
    pub(crate) fn new(env: &'e EnvSpec, spec: &'e NetSpec) -> Self {
        Net { env, spec }
    }

    /// The network's name in the init file.
    pub fn name(&self) -> &'e str {
        &self.spec.name
    }

    /// The stored spec.
    pub fn spec(&self) -> &'e NetSpec {
        self.spec
    }

    /// Its gateway (the host's address on it), when it has a subnet.
    pub fn gw(&self) -> Option<Ipv4Addr> {
        self.spec.gw
    }

    /// Whether it is a management network (DNS, SSH).
    pub fn is_management(&self) -> bool {
        self.spec.management
    }

    /// Every DNS name on it with its address (`<vm>` for a management nic,
    /// `<vm>-eth<i>`, `<vm>-<net>`), as its DHCP/DNS serves them.
    pub fn mapping(&self) -> BTreeMap<String, Ipv4Addr> {
        let mut out = BTreeMap::new();
        for m in &self.spec.mappings {
            for h in &m.hostnames {
                out.insert(h.clone(), m.ip);
            }
        }
        out
    }

    /// The address of the name `name` on this network, else of the VM
    /// `name`'s nic on it.
    pub fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.mapping().get(name) {
            return Some(*ip);
        }
        self.env
            .domains
            .get(name)?
            .nics
            .iter()
            .find(|n| n.net == self.spec.name)
            .and_then(|n| n.ip)
    }
}
