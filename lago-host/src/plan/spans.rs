//! Nets that span hosts: a net with VMs on other hosts than the default one
//! reaches those hosts through a VXLAN tunnel, and on a NAT net each such
//! host's bridge takes an address of the subnet, so that SSH can jump
//! through the host to its VMs.

use std::collections::BTreeMap;

use lago_plugin_api::spec::{NetSpan, NetType};

use super::addresses::AddressBook;
use crate::initfile::{InitError, InitFile, KeyPath};

/// The MTU of a net that spans hosts, unless the init file sets one: a
/// 1500-byte underlay less VXLAN's 50 bytes of headers.
pub const SPAN_MTU: u32 = 1450;

/// The VXLAN network identifier of net `net` of prefix `uuid`: 24 bits of
/// an FNV-1a hash, never 0. Stable, so that `start` after `stop` joins the
/// same segment; a clash with another environment's tunnel on the same host
/// is reported by the provider.
pub fn vxlan_id(uuid: &str, net: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in uuid.bytes().chain([0]).chain(net.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (((h >> 8) ^ (h & 0xff)) & 0x00ff_ffff).max(1)
}

/// The span of each net that has VMs on other hosts (prefix `uuid`), with
/// the hosts' addresses taken from `book`.
pub fn plan_spans<'a>(
    init: &'a InitFile,
    uuid: &str,
    book: &mut AddressBook<'_>,
) -> Result<BTreeMap<&'a str, NetSpan>, InitError> {
    let mut spans = spans_of_hosts(init, uuid);
    give_host_addresses(init, &mut spans, book)?;
    Ok(spans)
}

/// The hosts each net reaches, in the order of their VMs.
fn spans_of_hosts<'a>(init: &'a InitFile, uuid: &str) -> BTreeMap<&'a str, NetSpan> {
    let mut spans: BTreeMap<&str, NetSpan> = BTreeMap::new();
    for d in init.domains.values() {
        let Some(h) = &d.host else { continue };
        for nic in &d.nics {
            let span = spans.entry(nic.net.as_str()).or_insert_with(|| NetSpan {
                vni: vxlan_id(uuid, &nic.net),
                hosts: Vec::new(),
                host_addresses: BTreeMap::new(),
            });
            if !span.hosts.contains(h) {
                span.hosts.push(h.clone());
            }
        }
    }
    spans
}

/// An address for each host of a spanning NAT net, after every nic's.
fn give_host_addresses(
    init: &InitFile,
    spans: &mut BTreeMap<&str, NetSpan>,
    book: &mut AddressBook<'_>,
) -> Result<(), InitError> {
    for (net, span) in spans.iter_mut() {
        let Some(addresses) = book.get_mut(*net) else {
            continue;
        };
        let (Some(b), true) = (addresses.base, init.nets[*net].net_type == NetType::Nat) else {
            continue;
        };
        for h in &span.hosts {
            let Some(ip) = addresses.take_free(b) else {
                return Err(init.error(
                    KeyPath::root().key("nets").key(net),
                    format!("network {net} has no free address left for host {h}"),
                    Some("fewer nics on the network, or a smaller DHCP pool"),
                ));
            };
            span.host_addresses.insert(h.clone(), ip);
        }
    }
    Ok(())
}
