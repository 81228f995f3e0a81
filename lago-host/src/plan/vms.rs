//! The planned VMs: what each entry gives, the defaults for what it leaves
//! out, and its planned nics, disks and metadata.

use lago_plugin_api::spec::{DiskSpec, Extra, NicSpec, VmSpec};

use crate::config::Config;
use crate::initfile::DomainDef;

/// Values for what a VM's entry leaves out.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub memory: u64,
    pub vcpu: u32,
    pub ssh_user: String,
    pub root_password: Option<String>,
    pub vm_type: String,
    pub vm_provider: String,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            memory: 1024,
            vcpu: 2,
            ssh_user: "root".into(),
            root_password: Some("123456".into()),
            vm_type: "default".into(),
            vm_provider: "local-libvirt".into(),
        }
    }
}

impl Defaults {
    pub fn from_config(c: &Config) -> Defaults {
        Defaults {
            ssh_user: c.ssh_user().to_string(),
            root_password: c.default_root_password().map(str::to_string),
            vm_type: c.default_vm_type().to_string(),
            vm_provider: c.default_vm_provider().to_string(),
            ..Defaults::default()
        }
    }
}

/// What the planner made of a VM's entry.
pub struct Planned {
    pub libvirt_name: String,
    pub mgmt_net: String,
    pub nics: Vec<NicSpec>,
    pub disks: Vec<DiskSpec>,
    pub metadata: Extra,
}

/// VM `vm` as planned: its entry `d`, with `defaults` for what it leaves
/// out.
pub fn vm_spec(vm: &str, d: &DomainDef, defaults: &Defaults, planned: Planned) -> VmSpec {
    let or_default =
        |v: &Option<String>, default: &String| v.clone().unwrap_or_else(|| default.clone());
    VmSpec {
        name: vm.to_string(),
        libvirt_name: planned.libvirt_name,
        memory: d.memory.unwrap_or(defaults.memory),
        vcpu: d.vcpu.unwrap_or(defaults.vcpu),
        cpu_model: d.cpu_model.clone(),
        cpu_custom: d.cpu_custom.clone(),
        nics: planned.nics,
        disks: planned.disks,
        mgmt_net: planned.mgmt_net,
        artifacts: d.artifacts.clone(),
        groups: d.groups.clone(),
        bootstrap: d.bootstrap.unwrap_or(true),
        ssh_user: or_default(&d.ssh_user, &defaults.ssh_user),
        ssh_password: d.ssh_password.clone(),
        root_password: d
            .root_password
            .clone()
            .or_else(|| defaults.root_password.clone()),
        service_provider: d.service_provider.clone(),
        vm_provider: or_default(&d.vm_provider, &defaults.vm_provider),
        vm_type: or_default(&d.vm_type, &defaults.vm_type),
        metadata: planned.metadata,
        boot_time_sec: d.boot_time_sec,
        distro: d.distro.clone(),
        ssh_host_key: None,
        host: d.host.clone(),
        extra: d.extra.clone(),
    }
}
