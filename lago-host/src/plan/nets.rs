//! The planned nets: each one's libvirt name and bridge, gateway, DHCP pool,
//! DNS domain, MTU, span and the host mappings of its nics.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use lago_plugin_api::spec::{DhcpRange, Extra, HostMapping, NetSpan, NetSpec, NetType};
use serde_json::Value;

use super::addresses::{AddressBook, NetAddresses};
use super::names::{bridge_name, libvirt_name};
use super::spans::SPAN_MTU;
use crate::initfile::{InitFile, NetDef};

/// Default DNS domain of the management network.
pub const DEFAULT_DNS_DOMAIN: &str = "lago.local";
/// Default DHCP pool start (last octet) when the init file gives none.
pub const DEFAULT_DHCP_START: u8 = 100;

/// Every net of `init` (prefix tagged `tag`), with its addresses from
/// `book`, its span and its nics' mappings (both taken from the maps).
pub fn net_specs(
    init: &InitFile,
    tag: &str,
    book: &AddressBook<'_>,
    mut spans: BTreeMap<&str, NetSpan>,
    mut mappings: BTreeMap<&str, Vec<HostMapping>>,
) -> BTreeMap<String, NetSpec> {
    let mgmt_nets = init.mgmt_nets();
    let mut nets = BTreeMap::new();
    for (idx, (name, n)) in init.nets.iter().enumerate() {
        let addresses = &book[name.as_str()];
        let span = spans.remove(name.as_str());
        let is_mgmt = mgmt_nets.contains(name.as_str());
        nets.insert(
            name.clone(),
            NetSpec {
                name: name.clone(),
                net_type: n.net_type,
                management: is_mgmt,
                libvirt_name: libvirt_name(tag, name),
                bridge: bridge_name(tag, idx),
                gw: addresses.gw,
                prefix_len: 24,
                dhcp: dhcp_range(n, addresses),
                dns_domain_name: is_mgmt.then(|| {
                    n.dns_domain_name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_DNS_DOMAIN.into())
                }),
                // VXLAN takes 50 bytes of a 1500-byte underlay frame.
                mtu: n.mtu.or(span.as_ref().map(|_| SPAN_MTU)),
                mappings: mappings.remove(name.as_str()).unwrap_or_default(),
                span,
                extra: net_extra(n),
            },
        );
    }
    nets
}

/// The DHCP pool of a NAT net: the one the init file gives, else `.100` to
/// `.254`, starting above every planned address when the plan reaches past
/// `.99`; none when the subnet is full, and none on other nets.
fn dhcp_range(n: &NetDef, addresses: &NetAddresses) -> Option<DhcpRange> {
    if n.net_type != NetType::Nat {
        return None;
    }
    let base = addresses.base.unwrap_or([192, 168, 200]);
    let range = match addresses.pool {
        Some(r) => Some(r),
        None => {
            let highest = addresses.taken.iter().next_back().copied().unwrap_or(1);
            let start = DEFAULT_DHCP_START.max(highest.saturating_add(1));
            (highest < 254).then_some((start, 254))
        }
    };
    range.map(|(s, e)| DhcpRange {
        start: Ipv4Addr::new(base[0], base[1], base[2], s),
        end: Ipv4Addr::new(base[0], base[1], base[2], e),
    })
}

/// A net's free-form keys, plus its `dns_records` (`{host: ip}`) for the
/// provider to serve.
fn net_extra(n: &NetDef) -> Extra {
    let mut extra = n.extra.clone();
    if !n.dns_records.is_empty() {
        let records = n
            .dns_records
            .iter()
            .map(|(h, ip)| (h.clone(), Value::String(ip.to_string())))
            .collect();
        extra.insert("dns_records".into(), Value::Object(records));
    }
    extra
}
