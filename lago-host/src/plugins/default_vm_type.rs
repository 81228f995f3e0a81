//! The built-in `default` vm-type (Lago's `DefaultVM`): what every VM does
//! unless its `vm-type` plugin overrides a method. A vm-type plugin's
//! [`Delegate`](lago_plugin_api::ErrorKind::Delegate) answer lands here.

use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::{PluginError, PluginResult, PluginSet, VmTypePlugin};
use serde_json::Value;

/// The name of the built-in vm-type.
pub const DEFAULT_VM_TYPE: &str = "default";

/// The `default` vm-type.
pub struct DefaultVmType;

impl VmTypePlugin for DefaultVmType {
    fn normalize_spec(&self, vm: Value) -> PluginResult<Value> {
        Ok(vm)
    }

    /// The VM's `distro`, else its first disk's template metadata, else
    /// `unknown`.
    fn distro(&self, vm: &VmSpec) -> PluginResult<String> {
        if let Some(d) = &vm.distro {
            return Ok(d.clone());
        }
        let from_disk = vm
            .disks
            .iter()
            .find_map(|d| d.metadata.get("distro").and_then(Value::as_str));
        Ok(from_disk.unwrap_or("unknown").to_string())
    }

    fn artifact_paths(&self, vm: &VmSpec) -> PluginResult<Vec<String>> {
        Ok(vm.artifacts.clone())
    }

    fn wait_for_ssh(&self, _vm: &VmSpec) -> PluginResult<()> {
        Err(PluginError::not_implemented("wait_for_ssh"))
    }

    fn after_start(&self, _vm: &VmSpec) -> PluginResult<()> {
        Ok(())
    }
}

fn builtin() -> PluginSet {
    PluginSet::new().vm_type(DEFAULT_VM_TYPE, DefaultVmType)
}

inventory::submit! { crate::plugins::Builtin(builtin) }
