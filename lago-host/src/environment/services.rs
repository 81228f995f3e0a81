//! Services inside a VM through the vm-service plugins (Lago's
//! `vm.service(name)`): the VM's `service_provider` picks the plugin; when
//! it names none, each installed vm-service plugin is asked whether the VM
//! has its service manager (`is_supported`, in name order: `systemd` before
//! `sysvinit`), the first that says yes wins and is stored in the prefix's
//! VM spec, so later calls skip the detection.

use lago_plugin_api::abi::VmServiceBox;
use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::ServiceState;

use super::Env;
use crate::error::Error;
use crate::plugins::client::about as plugin_err;
use crate::plugins::into_result;

/// One service of one VM, driven by a vm-service plugin.
pub struct Service<'e> {
    vm: VmSpec,
    vm_json: String,
    provider: String,
    plugin: &'e VmServiceBox,
    name: String,
}

impl Service<'_> {
    /// The vm-service plugin in charge (`systemd`, `sysvinit`, ...).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The service's name in the VM.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn what(&self) -> String {
        format!(
            "service `{}` of VM `{}` ({})",
            self.name, self.vm.name, self.provider
        )
    }

    /// MISSING, INACTIVE or ACTIVE.
    pub fn state(&self) -> Result<ServiceState, Error> {
        into_result(
            self.plugin
                .state(self.vm_json.as_str().into(), self.name.as_str().into()),
        )
        .map_err(plugin_err(self.what()))
    }

    /// Lago's `alive()`: whether the service is running.
    pub fn alive(&self) -> Result<bool, Error> {
        Ok(self.state()? == ServiceState::Active)
    }

    /// Lago's `exists()`: whether the VM has the service at all.
    pub fn exists(&self) -> Result<bool, Error> {
        Ok(self.state()? != ServiceState::Missing)
    }

    /// Starts the service; an error when the VM's service manager refuses.
    pub fn start(&self) -> Result<(), Error> {
        into_result(
            self.plugin
                .start(self.vm_json.as_str().into(), self.name.as_str().into()),
        )
        .map_err(plugin_err(format!("starting the {}", self.what())))
    }

    /// Stops the service; an error when the VM's service manager refuses.
    pub fn stop(&self) -> Result<(), Error> {
        into_result(
            self.plugin
                .stop(self.vm_json.as_str().into(), self.name.as_str().into()),
        )
        .map_err(plugin_err(format!("stopping the {}", self.what())))
    }
}

impl<'r> Env<'r> {
    fn service_plugin(&self, vm: &VmSpec, name: &str) -> Result<&'r VmServiceBox, Error> {
        let registry: &'r crate::plugins::Registry = self.registry;
        registry
            .services
            .get(name)
            .map(|e| &e.plugin)
            .ok_or_else(|| {
                Error::user(format!(
                    "VM `{}` has service_provider `{name}`, which no vm-service plugin provides; \
                     installed: {}",
                    vm.name,
                    self.service_plugin_names()
                ))
            })
    }

    fn service_plugin_names(&self) -> String {
        let names: Vec<&str> = self.registry.services.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Asks every installed vm-service plugin, in name order, whether the
    /// (running) VM has its service manager; the first that does, or `None`.
    /// Nothing is stored.
    pub fn detect_service_provider(&self, vm: &str) -> Result<Option<String>, Error> {
        let vm = self.vm(vm)?;
        let json = serde_json::to_string(vm)?;
        for (name, entry) in &self.registry.services {
            let supported = into_result(entry.plugin.is_supported(json.as_str().into())).map_err(
                plugin_err(format_args!(
                    "asking vm-service `{name}` about VM `{}`",
                    vm.name
                )),
            )?;
            tracing::debug!(
                "VM `{}`: vm-service `{name}` supported: {supported}",
                vm.name
            );
            if supported {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// The VM's vm-service plugin: its `service_provider`, else the one
    /// detected (stored in the prefix's VM spec), else an error naming the
    /// plugins tried.
    pub fn service_provider(&self, vm: &str) -> Result<String, Error> {
        let spec = self.vm(vm)?;
        if let Some(name) = &spec.service_provider {
            return Ok(name.clone());
        }
        let Some(found) = self.detect_service_provider(vm)? else {
            return Err(Error::user(format!(
                "VM `{}` has no service manager lago knows (asked: {}); set its \
                 `service_provider` or install a vm-service plugin for it",
                spec.name,
                self.service_plugin_names()
            )));
        };
        // Only this field changes, on the stored spec under the state lock:
        // writing back the whole spec loaded earlier would undo what another
        // process stored meanwhile (a snapshot's record).
        self.prefix.update_vm(&spec.name, |stored| {
            stored.service_provider = Some(found.clone());
        })?;
        tracing::info!(
            "VM `{}`: detected service provider `{found}` (stored)",
            spec.name
        );
        Ok(found)
    }

    /// The service `name` of VM `vm` (Lago's `vm.service(name)`), driven by
    /// the VM's vm-service plugin ([`Env::service_provider`]).
    pub fn service(&self, vm: &str, name: &str) -> Result<Service<'r>, Error> {
        let provider = self.service_provider(vm)?;
        let mut spec = self.vm(vm)?.clone();
        let plugin = self.service_plugin(&spec, &provider)?;
        spec.service_provider = Some(provider.clone());
        Ok(Service {
            vm_json: serde_json::to_string(&spec)?,
            vm: spec,
            provider,
            plugin,
            name: name.to_string(),
        })
    }
}
