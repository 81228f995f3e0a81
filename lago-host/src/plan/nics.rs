//! The nics of the VMs: each one's address, MAC and DNS names, checked
//! against every nic planned before it, and the host mappings (address, MAC,
//! names) each net serves.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use lago_plugin_api::spec::{HostMapping, NicSpec};

use super::addresses::{mac_from_ip, synthetic_mac, AddressBook};
use super::names::nic_hostnames;
use crate::initfile::{DomainDef, InitError, InitFile, KeyPath, NicDef};

/// The nics planned so far, VM after VM.
pub struct Nics<'a> {
    init: &'a InitFile,
    uuid: &'a str,
    macs: BTreeSet<String>,
    /// Who has each DNS name (`<vm> nic <i>`).
    dns: BTreeMap<String, String>,
    /// Each net's host mappings.
    pub mappings: BTreeMap<&'a str, Vec<HostMapping>>,
}

impl<'a> Nics<'a> {
    /// No nic planned yet in the environment of prefix `uuid`.
    pub fn new(init: &'a InitFile, uuid: &'a str) -> Nics<'a> {
        Nics {
            init,
            uuid,
            macs: BTreeSet::new(),
            dns: BTreeMap::new(),
            mappings: BTreeMap::new(),
        }
    }

    /// The nics of VM `vm`, whose management net is `mgmt`.
    pub fn plan_vm(
        &mut self,
        vm: &str,
        d: &'a DomainDef,
        mgmt: &str,
        book: &mut AddressBook<'_>,
    ) -> Result<Vec<NicSpec>, InitError> {
        let vp = KeyPath::root().key("domains").key(vm);
        let mut nics = Vec::with_capacity(d.nics.len());
        let mut seen_nets: BTreeSet<&str> = BTreeSet::new();
        for (i, nic) in d.nics.iter().enumerate() {
            let np = vp.key("nics").idx(i);
            let ip = self.address(&np, nic, book)?;
            let mac = self.mac(&np, vm, i, ip)?;
            if let Some(ip) = ip {
                // The how-many-th nic of this VM on this net (Lago's `<vm>-<net>-<n>`).
                let on_net = d.nics[..i].iter().filter(|n| n.net == nic.net).count();
                let first_mgmt = nic.net == mgmt && !seen_nets.contains(mgmt);
                let hostnames = nic_hostnames(vm, i, &nic.net, first_mgmt, on_net);
                self.name(&np, vm, i, &hostnames)?;
                self.mappings
                    .entry(nic.net.as_str())
                    .or_default()
                    .push(HostMapping {
                        vm: vm.to_string(),
                        ip,
                        mac: mac.clone(),
                        hostnames,
                    });
            }
            seen_nets.insert(nic.net.as_str());
            nics.push(NicSpec {
                net: nic.net.clone(),
                ip,
                mac,
                extra: nic.extra.clone(),
            });
        }
        Ok(nics)
    }

    /// The address of `nic` (at `np`): its static one moved into the net's
    /// /24 (already taken by `addresses::reserve_static`), the next
    /// free one, or none on a net without a subnet.
    fn address(
        &self,
        np: &KeyPath,
        nic: &NicDef,
        book: &mut AddressBook<'_>,
    ) -> Result<Option<Ipv4Addr>, InitError> {
        let init = self.init;
        let net = book.get_mut(nic.net.as_str()).ok_or_else(|| {
            init.error(
                np.key("net"),
                format!("unknown network {:?}", nic.net),
                None,
            )
        })?;
        Ok(match (nic.ip, net.base) {
            (Some(ip), Some(b)) => Some(Ipv4Addr::new(b[0], b[1], b[2], ip.octets()[3])),
            (Some(ip), None) => Some(ip),
            (None, Some(b)) => Some(net.take_free(b).ok_or_else(|| {
                init.error(
                    np.clone(),
                    format!("network {} has no free address left for this nic", nic.net),
                    Some("fewer nics on the network, or a smaller DHCP pool"),
                )
            })?),
            (None, None) => None,
        })
    }

    /// The MAC of nic `i` of `vm` (at `np`), on `ip`: one no other nic has.
    fn mac(
        &mut self,
        np: &KeyPath,
        vm: &str,
        i: usize,
        ip: Option<Ipv4Addr>,
    ) -> Result<String, InitError> {
        let mac = match ip {
            Some(ip) => mac_from_ip(ip),
            None => synthetic_mac(self.uuid, vm, i, &self.macs),
        };
        if !self.macs.insert(mac.clone()) {
            return Err(self.init.error(
                np.clone(),
                format!("MAC {mac} of this nic is already used in the environment"),
                Some("a different address for each nic"),
            ));
        }
        Ok(mac)
    }

    /// Give nic `i` of `vm` (at `np`) its DNS names: names no other nic has.
    fn name(
        &mut self,
        np: &KeyPath,
        vm: &str,
        i: usize,
        hostnames: &[String],
    ) -> Result<(), InitError> {
        for h in hostnames {
            if let Some(other) = self.dns.insert(h.clone(), format!("{vm} nic {i}")) {
                return Err(self.init.error(
                    np.clone(),
                    format!("DNS name {h} of VM {vm} nic {i} is also the name of {other}"),
                    Some("VM and network names whose DNS names do not collide"),
                ));
            }
        }
        Ok(())
    }
}
