//! The provider behind lago's plugin traits.
//!
//! [`LocalLibvirt`] is the `local-libvirt` vm-provider: `open` reads the
//! settings (the host's configuration when the library was initialised by
//! `lago`, else the environment) and returns a [`LibvirtSession`].

use lago_plugin_api::spec::{EnvSpec, NetSpec, SnapshotInfo, VmSpec};
use lago_plugin_api::{
    tracing, ErrorKind, PluginError, PluginResult, ProviderSessionPlugin, VmProviderPlugin,
};

use crate::error::{Kind, ProviderError};
use crate::options::{env_var_name, ProviderOptions};
use crate::session::LibvirtSession;

impl From<ProviderError> for PluginError {
    fn from(e: ProviderError) -> Self {
        let kind = match e.kind() {
            Kind::User => ErrorKind::User,
            Kind::Internal => ErrorKind::Internal,
            Kind::NotImplemented => ErrorKind::NotImplemented,
            Kind::NotFound => ErrorKind::NotFound,
        };
        PluginError::new(kind, e.to_string())
    }
}

/// The `local-libvirt` vm-provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalLibvirt;

impl LocalLibvirt {
    /// The settings: `[section] key` from the host's configuration, falling
    /// back to the environment variable the configuration layer maps to it.
    pub fn options() -> Result<ProviderOptions, ProviderError> {
        let host = lago_plugin_api::host().ok();
        ProviderOptions::from_lookup(|section, key| {
            // The configuration may spell the section `local_libvirt`
            // (from `LAGO__LOCAL_LIBVIRT__KEY`).
            let alt = section.replace('-', "_");
            host.and_then(|h| h.config(section, key).or_else(|| h.config(&alt, key)))
                .or_else(|| std::env::var(env_var_name(section, key)).ok())
        })
    }
}

impl VmProviderPlugin for LocalLibvirt {
    fn open(&self, env: &EnvSpec) -> PluginResult<Box<dyn ProviderSessionPlugin>> {
        let opts = Self::options()?;
        tracing::debug!(
            libvirt_url = %opts.libvirt_url,
            domain_type = ?opts.domain_type,
            "local-libvirt session for prefix {}",
            env.prefix.path.display()
        );
        Ok(Box::new(LibvirtSession::new(env.clone(), opts)))
    }
}

fn names<'a>(nets: impl Iterator<Item = &'a NetSpec>) -> Vec<String> {
    nets.map(|n| n.name.clone()).collect()
}

impl ProviderSessionPlugin for LibvirtSession {
    fn start_networks(&self, nets: &[&NetSpec]) -> PluginResult<()> {
        if nets.is_empty() {
            return Ok(());
        }
        Ok(LibvirtSession::start_networks(
            self,
            &names(nets.iter().copied()),
        )?)
    }

    fn stop_networks(&self, nets: &[&NetSpec]) -> PluginResult<()> {
        if nets.is_empty() {
            return Ok(());
        }
        let kept = LibvirtSession::stop_networks(self, &names(nets.iter().copied()))?;
        if !kept.is_empty() {
            tracing::info!(
                "networks still used by running VMs, left up: {}",
                kept.join(", ")
            );
        }
        Ok(())
    }

    fn network_state(&self, net: &NetSpec) -> PluginResult<String> {
        Ok(LibvirtSession::network_state(self, &net.name)?.to_string())
    }

    fn prepare(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::prepare(self, &vm.name)?)
    }

    fn bootstrap(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::bootstrap(self, &vm.name)?)
    }

    fn start(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::start(self, &vm.name)?)
    }

    fn stop(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::stop(self, &vm.name)?)
    }

    fn shutdown(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::shutdown(self, &vm.name)?)
    }

    fn reboot(&self, vm: &VmSpec) -> PluginResult<()> {
        Ok(LibvirtSession::reboot(self, &vm.name)?)
    }

    fn state(&self, vm: &VmSpec) -> PluginResult<String> {
        Ok(LibvirtSession::state(self, &vm.name)?)
    }

    fn defined(&self, vm: &VmSpec) -> PluginResult<bool> {
        Ok(LibvirtSession::defined(self, &vm.name)?)
    }

    fn create_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<SnapshotInfo> {
        Ok(LibvirtSession::create_snapshot(self, &vm.name, name)?)
    }

    fn revert_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Ok(LibvirtSession::revert_snapshot(self, &vm.name, name)?)
    }

    fn check_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Ok(LibvirtSession::check_snapshot(self, &vm.name, name)?)
    }

    fn delete_snapshot(&self, vm: &VmSpec, name: &str) -> PluginResult<()> {
        Ok(LibvirtSession::delete_snapshot(self, &vm.name, name)?)
    }

    fn export_disks(
        &self,
        vm: &VmSpec,
        dst_dir: &str,
        standalone: bool,
        // The host compresses the returned images (see export.rs).
        _compress: bool,
    ) -> PluginResult<Vec<String>> {
        Ok(LibvirtSession::export_disks(
            self, &vm.name, dst_dir, standalone,
        )?)
    }

    fn extract_paths(
        &self,
        vm: &VmSpec,
        _pairs: &[(String, String)],
        _ignore_nopath: bool,
    ) -> PluginResult<()> {
        Ok(LibvirtSession::extract_paths(self, &vm.name)?)
    }

    fn extract_paths_dead(
        &self,
        vm: &VmSpec,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> PluginResult<()> {
        Ok(LibvirtSession::extract_paths_dead(
            self,
            &vm.name,
            pairs,
            ignore_nopath,
        )?)
    }

    fn interactive_console(&self, vm: &VmSpec) -> PluginResult<i32> {
        Ok(LibvirtSession::interactive_console(self, &vm.name)?)
    }

    fn used_subnets(&self) -> PluginResult<Vec<(std::net::Ipv4Addr, u8, String)>> {
        Ok(LibvirtSession::used_subnets(self)?)
    }

    fn cleanup(&self) -> PluginResult<()> {
        let report = LibvirtSession::cleanup(self)?;
        self.remove_snapshots()?;
        if !report.domains.is_empty() || !report.networks.is_empty() {
            tracing::info!(
                "removed domains [{}] and networks [{}]",
                report.domains.join(", "),
                report.networks.join(", ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map() {
        let e: PluginError = ProviderError::Spec("bad".into()).into();
        assert_eq!(e.kind, ErrorKind::User);
        assert_eq!(e.message(), "bad");
        let e: PluginError = ProviderError::NotImplemented("snapshots".into()).into();
        assert_eq!(e.kind, ErrorKind::NotImplemented);
        assert!(e.message().contains("snapshots: not implemented yet"));
        let e: PluginError = ProviderError::NotFound("no VM".into()).into();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e: PluginError = ProviderError::Timeout("slow".into()).into();
        assert_eq!(e.kind, ErrorKind::Internal);
    }
}
