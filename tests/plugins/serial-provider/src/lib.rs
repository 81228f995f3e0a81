//! A vm-provider for machines that have no SSH (`serial`): it tells lago
//! that its VMs need no SSH wait (`needs_ssh`), so `lago start` returns once
//! they are started. Its "machines" are files: `<prefix>/serial/<vm>` holds
//! the state, so it persists between `lago` processes.

use std::path::PathBuf;

use lago_plugin_api::spec::{EnvSpec, NetSpec, VmSpec};
use lago_plugin_api::{PluginError, PluginResult, ProviderSessionPlugin, VmProviderPlugin};

pub struct Serial;

impl VmProviderPlugin for Serial {
    fn open(&self, env: &EnvSpec) -> PluginResult<Box<dyn ProviderSessionPlugin>> {
        Ok(Box::new(Session {
            dir: env.prefix.path.join("serial"),
        }))
    }
}

struct Session {
    dir: PathBuf,
}

impl Session {
    fn set(&self, vm: &VmSpec, state: &str) -> PluginResult<()> {
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join(&vm.name), state))
            .map_err(|e| PluginError::internal(format!("serial provider: {e}")))
    }
}

impl ProviderSessionPlugin for Session {
    fn start_networks(&self, _nets: &[&NetSpec]) -> PluginResult<()> {
        Ok(())
    }
    fn stop_networks(&self, _nets: &[&NetSpec]) -> PluginResult<()> {
        Ok(())
    }
    fn network_state(&self, _net: &NetSpec) -> PluginResult<String> {
        Ok("up".into())
    }
    fn prepare(&self, vm: &VmSpec) -> PluginResult<()> {
        self.set(vm, "down")
    }
    fn bootstrap(&self, _vm: &VmSpec) -> PluginResult<()> {
        Ok(())
    }
    fn start(&self, vm: &VmSpec) -> PluginResult<()> {
        self.set(vm, "running")
    }
    fn stop(&self, vm: &VmSpec) -> PluginResult<()> {
        self.set(vm, "down")
    }
    fn state(&self, vm: &VmSpec) -> PluginResult<String> {
        Ok(std::fs::read_to_string(self.dir.join(&vm.name)).unwrap_or_else(|_| "down".into()))
    }
    fn defined(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(self.dir.join(&vm.name).is_file())
    }
    fn cleanup(&self) -> PluginResult<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(PluginError::internal(format!("serial provider: {e}")))
            }
            _ => Ok(()),
        }
    }
    fn needs_ssh(&self, _vm: &VmSpec) -> PluginResult<bool> {
        Ok(false)
    }
}

lago_plugin_api::export_plugins! {
    providers: ["serial" => Serial],
}
