//! The `systemd` vm-service plugin (Lago's `SystemdService`): services of a
//! VM whose init is systemd, driven with `systemctl` over the host's SSH.
//!
//! * supported when `/usr/bin/systemctl` exists in the VM;
//! * `state`: `systemctl status NAME` exits 0 → ACTIVE; else a `Loaded: loaded`
//!   line → INACTIVE; else MISSING;
//! * `start`/`stop`: `systemctl start|stop NAME`, an error naming the service
//!   and the command's output when it fails.

use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::{
    host, CommandStatus, PluginError, PluginResult, ServiceState, VmServicePlugin,
};

/// Where systemctl lives in the VM.
pub const BIN_PATH: &str = "/usr/bin/systemctl";

/// The `systemd` vm-service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systemd;

fn run(vm: &VmSpec, argv: &[&str]) -> PluginResult<CommandStatus> {
    host()?.ssh_exec(vm, argv, b"")
}

/// The service state from `systemctl status` output (Lago's rules).
pub fn state_from_status(status: &CommandStatus) -> ServiceState {
    if status.code == 0 {
        return ServiceState::Active;
    }
    let out = status.stdout();
    let loaded = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Loaded:"))
        .and_then(|l| l.split_whitespace().nth(1));
    match loaded {
        Some("loaded") => ServiceState::Inactive,
        _ => ServiceState::Missing,
    }
}

fn request(vm: &VmSpec, action: &str, service: &str) -> PluginResult<()> {
    let st = run(vm, &[BIN_PATH, action, service])?;
    if st.success() {
        Ok(())
    } else {
        Err(PluginError::user(format!(
            "systemd: `systemctl {action} {service}` in {} exited with {}: {}",
            vm.name,
            st.code,
            st.stderr().trim()
        )))
    }
}

impl VmServicePlugin for Systemd {
    fn is_supported(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(run(vm, &["test", "-e", BIN_PATH])?.success())
    }

    fn state(&self, vm: &VmSpec, service: &str) -> PluginResult<ServiceState> {
        Ok(state_from_status(&run(vm, &[BIN_PATH, "status", service])?))
    }

    fn start(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        request(vm, "start", service)
    }

    fn stop(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        request(vm, "stop", service)
    }
}

lago_plugin_api::export_plugins! {
    services: ["systemd" => Systemd],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i32, out: &str) -> CommandStatus {
        CommandStatus {
            code,
            out: out.as_bytes().to_vec().into(),
            err: Default::default(),
        }
    }

    #[test]
    fn states_follow_lago() {
        assert_eq!(state_from_status(&status(0, "")), ServiceState::Active);
        let inactive = "● sshd.service - OpenSSH\n   Loaded: loaded (/usr/lib/systemd/system/sshd.service; enabled)\n   Active: inactive (dead)\n";
        assert_eq!(
            state_from_status(&status(3, inactive)),
            ServiceState::Inactive
        );
        let missing = "Unit nope.service could not be found.\n";
        assert_eq!(
            state_from_status(&status(4, missing)),
            ServiceState::Missing
        );
        let not_found = "   Loaded: not-found (Reason: No such file)\n";
        assert_eq!(
            state_from_status(&status(3, not_found)),
            ServiceState::Missing
        );
    }

    #[test]
    fn without_a_host_calls_fail_cleanly() {
        let err = host().err().map(|e| e.kind);
        assert_eq!(err, Some(lago_plugin_api::ErrorKind::Internal));
    }
}
