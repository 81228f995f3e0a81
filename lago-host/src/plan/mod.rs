//! Planning: from a checked init file and the leased subnets to the planned
//! [`EnvSpec`]: addresses, MACs, DNS names, hypervisor names, disk paths.
//!
//! [`plan`] goes step by step: each net's addresses, static ones first
//! (`addresses`); then, VM after VM, its nics (`nics`: address, MAC, DNS
//! names), its disks (`disks`, with their `build:` steps: `build_steps`),
//! its deploy scripts (`scripts`) and the VM itself with the [`Defaults`]
//! (`vms`); then the nets that span hosts (`spans`), and last the nets
//! (`nets`). Names come from `names`; paths expand through [`PathVars`].
//!
//! Pure: it reads no file except to check that deploy scripts exist (and
//! that disk paths are not folders), and writes none.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use lago_plugin_api::spec::{EnvSpec, NetType, PrefixInfo};

use crate::initfile::{InitError, InitFile};

mod addresses;
mod build_steps;
mod disks;
mod names;
mod nets;
mod nics;
mod scripts;
mod spans;
mod vars;
mod vms;

#[cfg(test)]
mod tests;

pub use addresses::mac_from_ip;
pub use nets::{DEFAULT_DHCP_START, DEFAULT_DNS_DOMAIN};
pub use spans::{vxlan_id, SPAN_MTU};
pub use vars::PathVars;
pub use vms::Defaults;

/// The subnets a plan needs leased: one per NAT net, in net-name order, with
/// the exact subnet when the net names a `gw`.
pub fn lease_requests(init: &InitFile) -> Vec<(String, Option<Ipv4Addr>)> {
    init.nets
        .iter()
        .filter(|(_, n)| n.net_type == NetType::Nat)
        .map(|(k, n)| (k.clone(), n.gw))
        .collect()
}

/// A finished plan: the spec, and the files init copies into the prefix.
#[derive(Debug, Clone)]
pub struct Plan {
    pub env: EnvSpec,
    /// (source, destination in the prefix) of each deploy script.
    pub copies: Vec<(PathBuf, PathBuf)>,
}

/// Plan the environment. `subnets` maps each NAT net to its leased subnet
/// (network address); nets absent from it have no subnet.
pub fn plan(
    init: &InitFile,
    prefix: &PrefixInfo,
    subnets: &BTreeMap<String, Ipv4Addr>,
    defaults: &Defaults,
    vars: &PathVars<'_>,
) -> Result<Plan, InitError> {
    let mut book = addresses::address_book(init, subnets)?;
    addresses::reserve_static(init, &mut book)?;
    let mut nics = nics::Nics::new(init, &prefix.uuid);
    let mut scripts = scripts::DeployScripts::new(prefix.scripts_dir());
    let mut domains = BTreeMap::new();
    for (vm, d) in &init.domains {
        let mgmt_net = init.mgmt_net_of(d).unwrap_or_default().to_string();
        let vm_nics = nics.plan_vm(vm, d, &mgmt_net, &mut book)?;
        let disks = disks::plan_disks(init, vm, d, &prefix.images_dir(), vars)?;
        let metadata = scripts.plan_metadata(init, vm, d, vars)?;
        let planned = vms::Planned {
            libvirt_name: names::libvirt_name(prefix.tag(), vm),
            mgmt_net,
            nics: vm_nics,
            disks,
            metadata,
        };
        domains.insert(vm.clone(), vms::vm_spec(vm, d, defaults, planned));
    }
    let spans = spans::plan_spans(init, &prefix.uuid, &mut book)?;
    let nets = nets::net_specs(init, prefix.tag(), &book, spans, nics.mappings);
    Ok(Plan {
        env: EnvSpec {
            prefix: prefix.clone(),
            nets,
            domains,
            hosts: init.hosts.clone(),
            extra: init.extra.clone(),
        },
        copies: scripts.copies,
    })
}
