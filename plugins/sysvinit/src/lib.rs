//! The `sysvinit` vm-service plugin (Lago's `SysVInitService`): services of
//! a VM driven with `/sbin/service` over the host's SSH.
//!
//! * supported when `/sbin/service` exists in the VM;
//! * `state`: `service NAME status` exits 0 → ACTIVE; output ending with
//!   `is stopped` → INACTIVE; else MISSING;
//! * `start`/`stop`: `service NAME start|stop`.

use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::{
    host, CommandStatus, PluginError, PluginResult, ServiceState, VmServicePlugin,
};

/// Where `service` lives in the VM.
pub const BIN_PATH: &str = "/sbin/service";

/// The `sysvinit` vm-service.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysVInit;

fn run(vm: &VmSpec, argv: &[&str]) -> PluginResult<CommandStatus> {
    host()?.ssh_exec(vm, argv, b"")
}

/// The service state from `service NAME status` (Lago's rules).
pub fn state_from_status(status: &CommandStatus) -> ServiceState {
    if status.code == 0 {
        ServiceState::Active
    } else if status.stdout().trim_end().ends_with("is stopped") {
        ServiceState::Inactive
    } else {
        ServiceState::Missing
    }
}

fn request(vm: &VmSpec, action: &str, service: &str) -> PluginResult<()> {
    let st = run(vm, &[BIN_PATH, service, action])?;
    if st.success() {
        Ok(())
    } else {
        Err(PluginError::user(format!(
            "sysvinit: `service {service} {action}` in {} exited with {}: {}",
            vm.name,
            st.code,
            st.stderr().trim()
        )))
    }
}

impl VmServicePlugin for SysVInit {
    fn is_supported(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(run(vm, &["test", "-e", BIN_PATH])?.success())
    }

    fn state(&self, vm: &VmSpec, service: &str) -> PluginResult<ServiceState> {
        Ok(state_from_status(&run(vm, &[BIN_PATH, service, "status"])?))
    }

    fn start(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        request(vm, "start", service)
    }

    fn stop(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        request(vm, "stop", service)
    }
}

lago_plugin_api::export_plugins! {
    services: ["sysvinit" => SysVInit],
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
        assert_eq!(
            state_from_status(&status(0, "sshd is running")),
            ServiceState::Active
        );
        assert_eq!(
            state_from_status(&status(3, "sshd is stopped\n")),
            ServiceState::Inactive
        );
        assert_eq!(
            state_from_status(&status(1, "sshd: unrecognized service\n")),
            ServiceState::Missing
        );
    }
}
