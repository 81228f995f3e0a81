//! An example third-party vm-type plugin in the shape of oVirt
//! system-tests' plugin: the types `ovirt-engine` and `ovirt-host`. Each
//! overrides a little and delegates the rest to lago's `default` vm-type:
//!
//! * `ovirt-engine` overrides `distro` (from `metadata.ovirt-distro`, else
//!   delegates) and `artifact_paths` (adds the engine's logs), and adds the
//!   verb `engine-info`;
//! * `ovirt-host` overrides nothing but `normalize_spec` (a default of 3 vcpus).

use lago_plugin_api::serde_json::{json, Value};
use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::{ArgSpec, CliSpec, PluginError, PluginResult, VmTypePlugin};

pub struct Engine;

impl VmTypePlugin for Engine {
    fn distro(&self, vm: &VmSpec) -> PluginResult<String> {
        match vm.metadata.get("ovirt-distro").and_then(Value::as_str) {
            Some(d) => Ok(d.to_string()),
            None => Err(PluginError::delegate()),
        }
    }

    fn artifact_paths(&self, vm: &VmSpec) -> PluginResult<Vec<String>> {
        let mut paths = vm.artifacts.clone();
        paths.push("/var/log/ovirt-engine".to_string());
        Ok(paths)
    }

    fn verbs(&self) -> Vec<CliSpec> {
        vec![CliSpec::new(
            "engine-info",
            "Show what the ovirt-engine plugin knows of each engine VM",
        )
        .arg(ArgSpec::option("field", "Only this field").short('F'))]
    }

    fn run_verb(&self, verb: &str, args: &Value, vm: &VmSpec) -> PluginResult<Value> {
        if verb != "engine-info" {
            return Err(PluginError::not_found(format!("no verb `{verb}`")));
        }
        let info = json!({
            "name": vm.name,
            "vm-type": vm.vm_type,
            "memory": vm.memory,
            "mgmt_net": vm.mgmt_net,
            "api": format!("https://{}/ovirt-engine/api", vm.name),
        });
        match args["field"].as_str() {
            Some(f) => info
                .get(f)
                .cloned()
                .ok_or_else(|| PluginError::user(format!("engine-info: no field `{f}`"))),
            None => Ok(info),
        }
    }
}

pub struct Host;

impl VmTypePlugin for Host {
    fn normalize_spec(&self, mut vm: Value) -> PluginResult<Value> {
        if let Some(m) = vm.as_object_mut() {
            m.entry("vcpu").or_insert(json!(3));
        }
        Ok(vm)
    }
}

lago_plugin_api::export_plugins! {
    vm_types: ["ovirt-engine" => Engine, "ovirt-host" => Host],
}
