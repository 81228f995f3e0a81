//! The `sysvinit` vm-service plugin (Lago's `SysVInitService`): services of
//! a VM driven with `/sbin/service` over the host's SSH.
//!
//! * supported when `/sbin/service` exists in the VM;
//! * `state`: `service NAME status` exits 0 → ACTIVE; output ending with
//!   `is stopped` → INACTIVE; else MISSING;
//! * `start`/`stop`: `service NAME start|stop`.

use lago_plugin_api::{CommandStatus, ServiceState, ServiceTool, ToolService};

/// Where `service` lives in the VM.
pub const BIN_PATH: &str = "/sbin/service";

/// The `sysvinit` vm-service.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysVInit;

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

impl ServiceTool for SysVInit {
    const NAME: &'static str = "sysvinit";
    const BIN_PATH: &'static str = BIN_PATH;

    fn argv<'a>(action: &'a str, service: &'a str) -> Vec<&'a str> {
        vec![BIN_PATH, service, action]
    }

    fn state_from_status(status: &CommandStatus) -> ServiceState {
        state_from_status(status)
    }
}

lago_plugin_api::export_plugins! {
    services: ["sysvinit" => ToolService(SysVInit)],
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
