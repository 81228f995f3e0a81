//! The `ssh` vm-provider: machines that already exist (bare metal, a VM of
//! another tool), reached over SSH through the host's SSH layer. No libvirt.
//!
//! * networks and disks are not lago's to manage: `start_networks`,
//!   `stop_networks`, `prepare` and `cleanup` do nothing, networks are `up`;
//! * `state`: `running` when the machine answers SSH (`true` succeeds), else
//!   `down`;
//! * `start`/`stop`/`shutdown`/`reboot`: the local command configured in the
//!   VM's `ssh-provider` mapping of the init file, run with `sh -c` (the
//!   environment has `LAGO_VM_NAME` and `LAGO_VM_IP`); without one, `start`,
//!   `stop` and `shutdown` do nothing and `reboot` runs `reboot` in the machine;
//! * `bootstrap`: appends the prefix's public key to the login user's
//!   `~/.ssh/authorized_keys` (once);
//! * `extract_paths`: copies over SFTP; snapshots, disk export, offline
//!   extraction and the serial console are not possible and say so.
//!
//! ```yaml
//! domains:
//!   box1:
//!     vm-provider: ssh
//!     ssh-password: secret
//!     nics: [{net: lab, ip: 10.0.0.5}]
//!     ssh-provider: {reboot: "ipmitool -H bmc1 power cycle"}
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::serde_json::Value;
use lago_plugin_api::spec::{EnvSpec, NetSpec, SnapshotInfo, VmSpec};
use lago_plugin_api::{
    host, tracing, ErrorKind, PluginError, PluginResult, ProviderSessionPlugin, VmProviderPlugin,
};

/// The init-file key holding a VM's configured commands.
pub const COMMANDS_KEY: &str = "ssh-provider";

/// The `ssh` vm-provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct SshProvider;

impl VmProviderPlugin for SshProvider {
    fn open(&self, env: &EnvSpec) -> PluginResult<Box<dyn ProviderSessionPlugin>> {
        Ok(Box::new(SshSession {
            pubkey: env.prefix.ssh_pubkey_path(),
        }))
    }
}

/// One environment's machines.
pub struct SshSession {
    pubkey: PathBuf,
}

/// The configured local command for `action`, if any.
pub fn configured_command(vm: &VmSpec, action: &str) -> Option<String> {
    vm.extra
        .get(COMMANDS_KEY)
        .and_then(|m| m.get(action))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn run_local(vm: &VmSpec, action: &str, cmd: &str) -> PluginResult<()> {
    tracing::debug!("ssh provider: {action} {}: running `{cmd}`", vm.name);
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).env("LAGO_VM_NAME", &vm.name);
    if let Some(ip) = vm.mgmt_ip() {
        c.env("LAGO_VM_IP", ip.to_string());
    }
    let out = c.output().map_err(|e| {
        PluginError::internal(format!(
            "ssh provider: cannot run `{cmd}` for {}: {e}",
            vm.name
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PluginError::user(format!(
            "ssh provider: the {action} command of {} (`{cmd}`) failed ({}): {}",
            vm.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn action(vm: &VmSpec, name: &str) -> PluginResult<()> {
    match configured_command(vm, name) {
        Some(cmd) => run_local(vm, name, &cmd),
        None => Ok(()),
    }
}

fn not_possible(what: &str, vm: &VmSpec) -> PluginError {
    PluginError::user(format!(
        "VM {}: {what} is not supported by provider ssh (the machine is not managed by lago)",
        vm.name
    ))
}

impl ProviderSessionPlugin for SshSession {
    fn start_networks(&self, _nets: &[&NetSpec]) -> PluginResult<()> {
        Ok(())
    }
    fn stop_networks(&self, _nets: &[&NetSpec]) -> PluginResult<()> {
        Ok(())
    }
    fn network_state(&self, _net: &NetSpec) -> PluginResult<String> {
        Ok("up".to_string())
    }
    fn prepare(&self, _vm: &VmSpec) -> PluginResult<()> {
        Ok(())
    }
    fn bootstrap(&self, vm: &VmSpec) -> PluginResult<()> {
        let key = std::fs::read_to_string(&self.pubkey).map_err(|e| {
            PluginError::internal(format!(
                "ssh provider: cannot read the prefix key {}: {e}",
                self.pubkey.display()
            ))
        })?;
        let key = key.trim();
        let script = "umask 077; mkdir -p ~/.ssh; touch ~/.ssh/authorized_keys; \
                      grep -qxF \"$1\" ~/.ssh/authorized_keys || printf '%s\\n' \"$1\" >> ~/.ssh/authorized_keys";
        let st = host()?.ssh_exec(vm, &["sh", "-c", script, "lago-bootstrap", key], b"")?;
        if st.success() {
            Ok(())
        } else {
            Err(PluginError::user(format!(
                "ssh provider: cannot install the prefix key in {} (exit {}): {}",
                vm.name,
                st.code,
                st.stderr().trim()
            )))
        }
    }
    fn start(&self, vm: &VmSpec) -> PluginResult<()> {
        action(vm, "start")
    }
    fn stop(&self, vm: &VmSpec) -> PluginResult<()> {
        action(vm, "stop")
    }
    fn shutdown(&self, vm: &VmSpec) -> PluginResult<()> {
        action(vm, "shutdown")
    }
    fn reboot(&self, vm: &VmSpec) -> PluginResult<()> {
        match configured_command(vm, "reboot") {
            Some(cmd) => run_local(vm, "reboot", &cmd),
            None => {
                // The connection drops while the machine goes down: only a
                // refusal to start the reboot is an error.
                let st = host()?.ssh_exec(
                    vm,
                    &["sh", "-c", "(sleep 1; reboot) >/dev/null 2>&1 &"],
                    b"",
                )?;
                if st.success() {
                    Ok(())
                } else {
                    Err(PluginError::user(format!(
                        "{}: reboot failed: {}",
                        vm.name,
                        st.stderr().trim()
                    )))
                }
            }
        }
    }
    fn state(&self, vm: &VmSpec) -> PluginResult<String> {
        match host()?.ssh_exec(vm, &["true"], b"") {
            Ok(st) if st.success() => Ok("running".to_string()),
            Ok(_) => Ok("down".to_string()),
            Err(e) if e.kind == ErrorKind::NotImplemented => Err(e),
            Err(e) => {
                tracing::debug!("ssh provider: {} does not answer: {e}", vm.name);
                Ok("down".to_string())
            }
        }
    }
    fn defined(&self, _vm: &VmSpec) -> PluginResult<bool> {
        Ok(true)
    }
    fn create_snapshot(&self, vm: &VmSpec, _name: &str) -> PluginResult<SnapshotInfo> {
        Err(not_possible("a snapshot", vm))
    }
    fn revert_snapshot(&self, vm: &VmSpec, _name: &str) -> PluginResult<()> {
        Err(not_possible("reverting a snapshot", vm))
    }
    fn export_disks(
        &self,
        vm: &VmSpec,
        _dst_dir: &str,
        _standalone: bool,
        _compress: bool,
    ) -> PluginResult<Vec<String>> {
        Err(not_possible("exporting disks", vm))
    }
    fn extract_paths(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> PluginResult<()> {
        let h = host()?;
        for (remote, local) in pairs {
            if ignore_nopath && !h.ssh_exec(vm, &["test", "-e", remote], b"")?.success() {
                tracing::warn!("{}: {remote} does not exist, skipped", vm.name);
                continue;
            }
            h.ssh_download(vm, remote, Path::new(local))?;
        }
        Ok(())
    }
    fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        _pairs: &[(String, String)],
        _ignore_nopath: bool,
    ) -> PluginResult<()> {
        Err(not_possible(
            "reading the disks of a machine that is down",
            vm,
        ))
    }
    fn interactive_console(&self, vm: &VmSpec) -> PluginResult<i32> {
        Err(PluginError::user(format!(
            "{}: the ssh provider has no serial console; use `lago shell {}`",
            vm.name, vm.name
        )))
    }
    fn cleanup(&self) -> PluginResult<()> {
        Ok(())
    }
}

lago_plugin_api::export_plugins! {
    providers: ["ssh" => SshProvider],
}

#[cfg(test)]
mod tests {
    use super::*;
    use lago_plugin_api::serde_json::{self, json};

    fn vm(extra: Value) -> Result<VmSpec, serde_json::Error> {
        let mut v = json!({
            "name": "box1", "libvirt_name": "x-box1", "memory": 512, "vcpu": 1,
            "nics": [{"net": "lab", "ip": "10.0.0.5", "mac": "54:52:0a:00:00:05"}],
            "disks": [], "mgmt_net": "lab", "vm-provider": "ssh", "vm-type": "default"
        });
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(v)
    }

    #[test]
    fn configured_commands_run_locally_with_the_vm_in_the_environment(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("lago-ssh-provider-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let out = dir.join("out");
        let cmd = format!("echo \"$LAGO_VM_NAME $LAGO_VM_IP\" > {}", out.display());
        let vm = vm(json!({COMMANDS_KEY: {"start": cmd, "stop": "exit 3"}}))?;
        let s = SshSession {
            pubkey: dir.join("none.pub"),
        };
        s.start(&vm)?;
        assert_eq!(std::fs::read_to_string(&out)?, "box1 10.0.0.5\n");
        let err = s.stop(&vm).err().map(|e| e.kind);
        assert_eq!(err, Some(ErrorKind::User));
        // Without a configured command: nothing to do.
        s.shutdown(&vm)?;
        let err = s.create_snapshot(&vm, "x").err();
        assert_eq!(err.as_ref().map(|e| e.kind), Some(ErrorKind::User));
        let msg = err.map(|e| e.message().to_string()).unwrap_or_default();
        assert!(msg.contains("not supported by provider ssh"), "{msg}");
        let err = s.export_disks(&vm, dir.to_str().unwrap_or("."), false, false);
        let err = err.err();
        assert_eq!(err.as_ref().map(|e| e.kind), Some(ErrorKind::User));
        let msg = err.map(|e| e.message().to_string()).unwrap_or_default();
        assert!(
            msg.contains("box1: exporting disks is not supported by provider ssh"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn without_a_host_ssh_calls_fail_cleanly() -> Result<(), Box<dyn std::error::Error>> {
        let s = SshSession {
            pubkey: "/nonexistent".into(),
        };
        let vm = vm(json!({}))?;
        assert!(s.state(&vm).is_err());
        Ok(())
    }
}
