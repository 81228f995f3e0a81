//! Adapters: plain-trait implementations seen through the FFI-safe traits.
//!
//! Each adapter decodes the JSON arguments, calls the plain method under
//! `catch_unwind`, and encodes the result. A panic becomes
//! `PluginError { kind: Panic, message: "<kind> plugin `<name>` panicked: <payload>" }`,
//! a JSON decoding failure an `Internal` error naming the plugin.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, RVec},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::abi::{
    CliVerb, CliVerbBox, CliVerb_TO, OutFormat, OutFormatBox, OutFormat_TO, ProviderSession,
    ProviderSessionBox, ProviderSession_TO, VmProvider, VmProviderBox, VmProvider_TO, VmService,
    VmServiceBox, VmService_TO, VmType, VmTypeBox, VmType_TO,
};
use crate::error::{ErrorKind, PluginError};
use crate::plugin::{
    CliPlugin, OutFormatPlugin, PluginResult, ProviderSessionPlugin, VmProviderPlugin,
    VmServicePlugin, VmTypePlugin,
};
use crate::spec::{EnvSpec, NetSpec, VmSpec};
use crate::types::{CliContext, CliSpec, ServiceState};

/// Who is being called, for error messages: kind and name.
#[derive(Debug, Clone)]
struct Who {
    kind: &'static str,
    name: String,
}

impl Who {
    fn new(kind: &'static str, name: &str) -> Who {
        Who {
            kind,
            name: name.to_string(),
        }
    }

    /// Run `f` with panics caught; give not-implemented errors the plugin's name.
    fn guard<T>(&self, f: impl FnOnce() -> PluginResult<T>) -> RResult<T, PluginError> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => RResult::ROk(v),
            Ok(Err(mut e)) => {
                if e.kind == ErrorKind::NotImplemented {
                    e.message = format!("{} `{}`: {}", self.kind, self.name, e.message).into();
                }
                RResult::RErr(e)
            }
            Err(payload) => RResult::RErr(PluginError::new(
                ErrorKind::Panic,
                format!(
                    "{} plugin `{}` panicked: {}",
                    self.kind,
                    self.name,
                    panic_message(payload.as_ref())
                ),
            )),
        }
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, json: RStr<'_>) -> PluginResult<T> {
        serde_json::from_str(json.as_str()).map_err(|e| {
            PluginError::internal(format!(
                "{} plugin `{}`: cannot decode the {what} it was given: {e}",
                self.kind, self.name
            ))
        })
    }

    fn encode<T: serde::Serialize>(&self, value: &T) -> PluginResult<RString> {
        serde_json::to_string(value)
            .map(RString::from)
            .map_err(|e| {
                PluginError::internal(format!(
                    "{} plugin `{}`: cannot encode its result: {e}",
                    self.kind, self.name
                ))
            })
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_string()
    }
}

fn rvec_strings(v: Vec<String>) -> RVec<RString> {
    v.into_iter().map(RString::from).collect()
}

// ---------------------------------------------------------------- out-format

struct OutFormatAdapter<P> {
    who: Who,
    plugin: P,
}

impl<P: OutFormatPlugin> OutFormat for OutFormatAdapter<P> {
    fn format(&self, tree_json: RStr<'_>) -> RResult<RString, PluginError> {
        self.who.guard(|| {
            let tree: Value = self.who.decode("tree", tree_json)?;
            self.plugin.format(&tree).map(RString::from)
        })
    }
}

/// Wrap a plain out-format as an FFI-safe object.
pub fn out_format<P: OutFormatPlugin>(name: &str, plugin: P) -> OutFormatBox {
    OutFormat_TO::from_value(
        OutFormatAdapter {
            who: Who::new("out-format", name),
            plugin,
        },
        TD_Opaque,
    )
}

// ---------------------------------------------------------------- cli

struct CliAdapter<P> {
    who: Who,
    plugin: P,
}

impl<P: CliPlugin> CliVerb for CliAdapter<P> {
    fn spec(&self) -> RResult<CliSpec, PluginError> {
        self.who.guard(|| {
            let mut spec = self.plugin.spec();
            spec.name = RString::from(self.who.name.as_str());
            Ok(spec)
        })
    }

    fn run(&self, args_json: RStr<'_>, ctx_json: RStr<'_>) -> RResult<RString, PluginError> {
        self.who.guard(|| {
            let args: Value = self.who.decode("arguments", args_json)?;
            let ctx: CliContext = self.who.decode("context", ctx_json)?;
            let out = self.plugin.run(&args, &ctx)?;
            self.who.encode(&out)
        })
    }
}

/// Wrap a plain CLI verb as an FFI-safe object.
pub fn cli_verb<P: CliPlugin>(name: &str, plugin: P) -> CliVerbBox {
    CliVerb_TO::from_value(
        CliAdapter {
            who: Who::new("cli", name),
            plugin,
        },
        TD_Opaque,
    )
}

// ---------------------------------------------------------------- vm-provider

struct ProviderAdapter<P> {
    who: Who,
    plugin: P,
}

impl<P: VmProviderPlugin> VmProvider for ProviderAdapter<P> {
    fn open(&self, env_json: RStr<'_>) -> RResult<ProviderSessionBox, PluginError> {
        self.who.guard(|| {
            let env: EnvSpec = self.who.decode("environment", env_json)?;
            let session = self.plugin.open(&env)?;
            Ok(ProviderSession_TO::from_value(
                SessionAdapter {
                    who: self.who.clone(),
                    env,
                    session,
                },
                TD_Opaque,
            ))
        })
    }
}

struct SessionAdapter {
    who: Who,
    env: EnvSpec,
    session: Box<dyn ProviderSessionPlugin>,
}

impl SessionAdapter {
    fn vm(&self, name: RStr<'_>) -> PluginResult<&VmSpec> {
        self.env.domains.get(name.as_str()).ok_or_else(|| {
            PluginError::not_found(format!(
                "no VM `{name}` in the environment of prefix `{}`",
                self.env.prefix.name
            ))
        })
    }

    fn net(&self, name: &str) -> PluginResult<&NetSpec> {
        self.env.nets.get(name).ok_or_else(|| {
            PluginError::not_found(format!(
                "no network `{name}` in the environment of prefix `{}`",
                self.env.prefix.name
            ))
        })
    }

    fn nets(&self, names: &RVec<RString>) -> PluginResult<Vec<&NetSpec>> {
        names.iter().map(|n| self.net(n.as_str())).collect()
    }

    fn pairs(&self, json: RStr<'_>) -> PluginResult<Vec<(String, String)>> {
        self.who.decode("path pairs", json)
    }

    fn on_vm<T>(
        &self,
        vm: RStr<'_>,
        f: impl FnOnce(&dyn ProviderSessionPlugin, &VmSpec) -> PluginResult<T>,
    ) -> RResult<T, PluginError> {
        self.who.guard(|| f(self.session.as_ref(), self.vm(vm)?))
    }
}

impl ProviderSession for SessionAdapter {
    fn start_networks(&self, nets: RVec<RString>) -> RResult<(), PluginError> {
        self.who
            .guard(|| self.session.start_networks(&self.nets(&nets)?))
    }
    fn stop_networks(&self, nets: RVec<RString>) -> RResult<(), PluginError> {
        self.who
            .guard(|| self.session.stop_networks(&self.nets(&nets)?))
    }
    fn network_state(&self, net: RStr<'_>) -> RResult<RString, PluginError> {
        self.who.guard(|| {
            self.session
                .network_state(self.net(net.as_str())?)
                .map(RString::from)
        })
    }
    fn prepare(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.prepare(vm))
    }
    fn bootstrap(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.bootstrap(vm))
    }
    fn start(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.start(vm))
    }
    fn stop(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.stop(vm))
    }
    fn shutdown(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.shutdown(vm))
    }
    fn reboot(&self, vm: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.reboot(vm))
    }
    fn state(&self, vm: RStr<'_>) -> RResult<RString, PluginError> {
        self.on_vm(vm, |s, vm| s.state(vm).map(RString::from))
    }
    fn defined(&self, vm: RStr<'_>) -> RResult<bool, PluginError> {
        self.on_vm(vm, |s, vm| s.defined(vm))
    }
    fn create_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<RString, PluginError> {
        self.on_vm(vm, |s, vm| {
            let info = s.create_snapshot(vm, name.as_str())?;
            self.who.encode(&info)
        })
    }
    fn revert_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.revert_snapshot(vm, name.as_str()))
    }
    fn check_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.check_snapshot(vm, name.as_str()))
    }
    fn delete_snapshot(&self, vm: RStr<'_>, name: RStr<'_>) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| s.delete_snapshot(vm, name.as_str()))
    }
    fn export_disks(
        &self,
        vm: RStr<'_>,
        dst_dir: RStr<'_>,
        standalone: bool,
        compress: bool,
    ) -> RResult<RVec<RString>, PluginError> {
        self.on_vm(vm, |s, vm| {
            s.export_disks(vm, dst_dir.as_str(), standalone, compress)
                .map(rvec_strings)
        })
    }
    fn extract_paths(
        &self,
        vm: RStr<'_>,
        pairs_json: RStr<'_>,
        ignore_nopath: bool,
    ) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| {
            s.extract_paths(vm, &self.pairs(pairs_json)?, ignore_nopath)
        })
    }
    fn extract_paths_dead(
        &self,
        vm: RStr<'_>,
        pairs_json: RStr<'_>,
        ignore_nopath: bool,
    ) -> RResult<(), PluginError> {
        self.on_vm(vm, |s, vm| {
            s.extract_paths_dead(vm, &self.pairs(pairs_json)?, ignore_nopath)
        })
    }
    fn interactive_console(&self, vm: RStr<'_>) -> RResult<i32, PluginError> {
        self.on_vm(vm, |s, vm| s.interactive_console(vm))
    }
    fn cleanup(&self) -> RResult<(), PluginError> {
        self.who.guard(|| self.session.cleanup())
    }
    fn needs_ssh(&self, vm: RStr<'_>) -> RResult<bool, PluginError> {
        self.on_vm(vm, |s, vm| s.needs_ssh(vm))
    }
    fn used_subnets(&self) -> RResult<RString, PluginError> {
        self.who
            .guard(|| self.who.encode(&self.session.used_subnets()?))
    }
}

/// Wrap a plain vm-provider as an FFI-safe object.
pub fn vm_provider<P: VmProviderPlugin>(name: &str, plugin: P) -> VmProviderBox {
    VmProvider_TO::from_value(
        ProviderAdapter {
            who: Who::new("vm-provider", name),
            plugin,
        },
        TD_Opaque,
    )
}

// ---------------------------------------------------------------- vm-type

struct VmTypeAdapter<P> {
    who: Who,
    plugin: P,
}

impl<P: VmTypePlugin> VmTypeAdapter<P> {
    fn with_vm<T>(
        &self,
        vm_json: RStr<'_>,
        f: impl FnOnce(&VmSpec) -> PluginResult<T>,
    ) -> RResult<T, PluginError> {
        self.who.guard(|| {
            let vm: VmSpec = self.who.decode("VM spec", vm_json)?;
            f(&vm)
        })
    }
}

impl<P: VmTypePlugin> VmType for VmTypeAdapter<P> {
    fn normalize_spec(&self, vm_json: RStr<'_>) -> RResult<RString, PluginError> {
        self.who.guard(|| {
            let vm: Value = self.who.decode("VM definition", vm_json)?;
            let out = self.plugin.normalize_spec(vm)?;
            self.who.encode(&out)
        })
    }
    fn distro(&self, vm_json: RStr<'_>) -> RResult<RString, PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.distro(vm).map(RString::from))
    }
    fn artifact_paths(&self, vm_json: RStr<'_>) -> RResult<RVec<RString>, PluginError> {
        self.with_vm(vm_json, |vm| {
            self.plugin.artifact_paths(vm).map(rvec_strings)
        })
    }
    fn wait_for_ssh(&self, vm_json: RStr<'_>) -> RResult<(), PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.wait_for_ssh(vm))
    }
    fn after_start(&self, vm_json: RStr<'_>) -> RResult<(), PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.after_start(vm))
    }
    fn verbs(&self) -> RResult<RVec<CliSpec>, PluginError> {
        self.who
            .guard(|| Ok(self.plugin.verbs().into_iter().collect()))
    }
    fn run_verb(
        &self,
        verb: RStr<'_>,
        args_json: RStr<'_>,
        vm_json: RStr<'_>,
    ) -> RResult<RString, PluginError> {
        self.with_vm(vm_json, |vm| {
            let args: Value = self.who.decode("arguments", args_json)?;
            let out = self.plugin.run_verb(verb.as_str(), &args, vm)?;
            self.who.encode(&out)
        })
    }
}

/// Wrap a plain vm-type as an FFI-safe object.
pub fn vm_type<P: VmTypePlugin>(name: &str, plugin: P) -> VmTypeBox {
    VmType_TO::from_value(
        VmTypeAdapter {
            who: Who::new("vm-type", name),
            plugin,
        },
        TD_Opaque,
    )
}

// ---------------------------------------------------------------- vm-service

struct ServiceAdapter<P> {
    who: Who,
    plugin: P,
}

impl<P: VmServicePlugin> ServiceAdapter<P> {
    fn with_vm<T>(
        &self,
        vm_json: RStr<'_>,
        f: impl FnOnce(&VmSpec) -> PluginResult<T>,
    ) -> RResult<T, PluginError> {
        self.who.guard(|| {
            let vm: VmSpec = self.who.decode("VM spec", vm_json)?;
            f(&vm)
        })
    }
}

impl<P: VmServicePlugin> VmService for ServiceAdapter<P> {
    fn is_supported(&self, vm_json: RStr<'_>) -> RResult<bool, PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.is_supported(vm))
    }
    fn state(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<ServiceState, PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.state(vm, service.as_str()))
    }
    fn start(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<(), PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.start(vm, service.as_str()))
    }
    fn stop(&self, vm_json: RStr<'_>, service: RStr<'_>) -> RResult<(), PluginError> {
        self.with_vm(vm_json, |vm| self.plugin.stop(vm, service.as_str()))
    }
}

/// Wrap a plain vm-service as an FFI-safe object.
pub fn vm_service<P: VmServicePlugin>(name: &str, plugin: P) -> VmServiceBox {
    VmService_TO::from_value(
        ServiceAdapter {
            who: Who::new("vm-service", name),
            plugin,
        },
        TD_Opaque,
    )
}
