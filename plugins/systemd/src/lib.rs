//! The `systemd` vm-service plugin (Lago's `SystemdService`): services of a
//! VM whose init is systemd, driven with `systemctl` over the host's SSH.
//!
//! * supported when `/usr/bin/systemctl` exists in the VM;
//! * `state`: `systemctl status NAME` exits 0 → ACTIVE; else a `Loaded: loaded`
//!   line → INACTIVE; else MISSING;
//! * `start`/`stop`: `systemctl start|stop NAME`, an error naming the service
//!   and the command's output when it fails.

use lago_plugin_api::{CommandStatus, ServiceState, ServiceTool, ToolService};

/// Where systemctl lives in the VM.
pub const BIN_PATH: &str = "/usr/bin/systemctl";

/// The `systemd` vm-service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Systemd;

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

impl ServiceTool for Systemd {
    const NAME: &'static str = "systemd";
    const BIN_PATH: &'static str = BIN_PATH;

    fn argv<'a>(action: &'a str, service: &'a str) -> Vec<&'a str> {
        vec![BIN_PATH, action, service]
    }

    fn state_from_status(status: &CommandStatus) -> ServiceState {
        state_from_status(status)
    }
}

lago_plugin_api::export_plugins! {
    services: ["systemd" => ToolService(Systemd)],
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
        let err = lago_plugin_api::host().err().map(|e| e.kind);
        assert_eq!(err, Some(lago_plugin_api::ErrorKind::Internal));
    }
}
