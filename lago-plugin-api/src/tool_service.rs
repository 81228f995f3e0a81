//! A vm-service driven by one tool inside the VM (`systemctl`, `service`).
//!
//! The plugin says where the tool lives, how to call it and how to read its
//! `status`; [`ToolService`] runs it over the host's SSH and turns a failed
//! `start`/`stop` into an error naming the command and its output:
//!
//! ```ignore
//! struct Systemd;
//! impl ServiceTool for Systemd { /* NAME, BIN_PATH, argv, state_from_status */ }
//! lago_plugin_api::export_plugins! { services: ["systemd" => ToolService(Systemd)] }
//! ```

use crate::spec::VmSpec;
use crate::{host, CommandStatus, PluginError, PluginResult, ServiceState, VmServicePlugin};

/// What a tool-driven service manager needs to say about itself.
pub trait ServiceTool: Send + Sync + 'static {
    /// The plugin's name, for messages (`systemd`).
    const NAME: &'static str;
    /// The tool's path in the VM: the manager is supported when it exists.
    const BIN_PATH: &'static str;
    /// The argument vector that applies `action` (`status`, `start`,
    /// `stop`) to `service`.
    fn argv<'a>(action: &'a str, service: &'a str) -> Vec<&'a str>;
    /// The service's state from the result of its `status` command.
    fn state_from_status(status: &CommandStatus) -> ServiceState;
}

/// The [`VmServicePlugin`] of a [`ServiceTool`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ToolService<T>(pub T);

fn run(vm: &VmSpec, argv: &[&str]) -> PluginResult<CommandStatus> {
    host()?.ssh_exec(vm, argv, b"")
}

impl<T: ServiceTool> ToolService<T> {
    fn request(&self, vm: &VmSpec, action: &str, service: &str) -> PluginResult<()> {
        let argv = T::argv(action, service);
        let st = run(vm, &argv)?;
        if st.success() {
            return Ok(());
        }
        Err(PluginError::user(format!(
            "{}: `{}` in {} exited with {}: {}",
            T::NAME,
            argv.join(" "),
            vm.name,
            st.code,
            st.stderr().trim()
        )))
    }
}

impl<T: ServiceTool> VmServicePlugin for ToolService<T> {
    fn is_supported(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(run(vm, &["test", "-e", T::BIN_PATH])?.success())
    }

    fn state(&self, vm: &VmSpec, service: &str) -> PluginResult<ServiceState> {
        Ok(T::state_from_status(&run(vm, &T::argv("status", service))?))
    }

    fn start(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        self.request(vm, "start", service)
    }

    fn stop(&self, vm: &VmSpec, service: &str) -> PluginResult<()> {
        self.request(vm, "stop", service)
    }
}
