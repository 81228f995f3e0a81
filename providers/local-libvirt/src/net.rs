//! Network XML, as Lago writes it.
//!
//! - NAT: `<forward mode='nat'>`, the planned bridge (STP off, no forward
//!   delay), the gateway with DHCP (the planned range and one static host
//!   entry per planned nic), DNS host records, the DNS domain (management
//!   net), and Lago's IPv6 ULA `fd8f:1391:3a82:<third octet>::1/64` with
//!   DHCPv6 entries `fd8f:1391:3a82:<third octet>::<IPv4>` (optional).
//! - Bridge: an isolated network: a bridge, no forward, no addresses
//!   (libvirt creates and removes the bridge itself).
//!
//! Networks are created transient.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use lago_plugin_api::spec::{EnvSpec, HostMapping, NetSpec, NetType};

use crate::error::{ProviderError, Result};
use crate::xml::Element;

/// Lago's IPv6 ULA prefix; the subnet id is the IPv4 third octet written
/// in decimal digits (`192.168.200.1` → `fd8f:1391:3a82:200::`).
pub const IPV6_ULA: &str = "fd8f:1391:3a82:";

/// What [`network_xml`] needs besides the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetXmlOptions {
    /// Add the IPv6 ULA subnet to NAT networks. libvirt waits for IPv6
    /// duplicate address detection when it starts such a network.
    pub ipv6: bool,
}

impl Default for NetXmlOptions {
    fn default() -> Self {
        NetXmlOptions { ipv6: true }
    }
}

/// `fd8f:1391:3a82:<third octet>::` for a gateway.
pub fn ipv6_prefix(gw: Ipv4Addr) -> String {
    format!("{IPV6_ULA}{}::", gw.octets()[2])
}

/// libvirt's namespace for dnsmasq options in network XML (libvirt >= 5.6).
const DNSMASQ_NS: &str = "http://libvirt.org/schemas/network/dnsmasq/1.0";

/// A DHCPv6 reservation matched by the NIC's MAC address: `dhcp-host=<mac>,
/// [<ipv6>],<name>`, a dnsmasq option (libvirt's IPv6 `<host>` takes only a
/// DUID or a name). Lago reserved by DUID-LL (`0:3:0:1:<mac>`), which only
/// guests that send a DUID-LL match: systemd-networkd sends DUID-EN, so a
/// real distribution got a dynamic address other than its AAAA record, and
/// the non-management net learnt the VM's plain name from its request (and
/// answered it with no A record). dnsmasq finds the MAC of a directly
/// connected client whatever its DUID, and the reservation's name replaces
/// the one the client sends.
///
/// Errors: [`ProviderError::Spec`] when the MAC or the name holds anything
/// but what they are made of (the line is dnsmasq configuration).
fn dhcp6_host(mac: &str, ip: &str, name: &str) -> Result<String> {
    let mac_ok = mac.len() == 17 && mac.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !mac_ok || !name_ok {
        return Err(ProviderError::Spec(format!(
            "DHCPv6 host entry: MAC {mac:?} or name {name:?} is not one"
        )));
    }
    Ok(format!(
        "dhcp-host={},[{ip}],{name}",
        mac.to_ascii_lowercase()
    ))
}

/// DNS records: IPv4 address → host names, names sorted and deduplicated.
fn dns_records<'a>(
    mappings: impl Iterator<Item = &'a HostMapping>,
) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let mut records: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for m in mappings {
        let names = records.entry(m.ip).or_default();
        for h in &m.hostnames {
            if !names.contains(h) {
                names.push(h.clone());
            }
        }
    }
    for names in records.values_mut() {
        names.sort();
    }
    records.retain(|_, names| !names.is_empty());
    records
}

/// `records` plus the init file's `dns_records: {host: ip}` of `net` (kept
/// by the host in `extra`); a name lago planned wins over a user's, as in
/// Lago's `_add_dns_records`.
fn with_user_records(
    mut records: BTreeMap<Ipv4Addr, Vec<String>>,
    net: &NetSpec,
) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let Some(serde_json::Value::Object(user)) = net.extra.get("dns_records") else {
        return records;
    };
    let planned: Vec<String> = records.values().flatten().cloned().collect();
    for (host, ip) in user {
        let Some(ip) = ip.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) else {
            continue;
        };
        if !planned.contains(host) {
            let names = records.entry(ip).or_default();
            names.push(host.clone());
            names.sort();
        }
    }
    records
}

/// The network XML of `net`.
///
/// DNS: a management net answers for the names of every nic of the
/// environment (all nets' mappings, as [`EnvSpec::dns_records`]), so that `vm1-eth1` resolves through the
/// DNS server VMs get from their management nic; another NAT net answers for
/// its own mappings. Plain names are not forwarded upstream.
pub fn network_xml(env: &EnvSpec, net: &NetSpec, opts: &NetXmlOptions) -> Result<String> {
    match net.net_type {
        NetType::Bridge => Ok(bridge_only(net).render()),
        NetType::Nat => nat_xml(env, net, opts, bridge_only(net)),
    }
}

/// A network's name, bridge and MTU: all of a `bridge` net, the start of
/// the others.
fn bridge_only(net: &NetSpec) -> Element {
    let mut root = Element::new("network")
        .child(Element::new("name").text(&net.libvirt_name))
        .child(
            Element::new("bridge")
                .attr("name", &net.bridge)
                .attr("stp", "off")
                .attr("delay", 0),
        );
    if let Some(mtu) = net.mtu {
        root.push(Element::new("mtu").attr("size", mtu));
    }
    root
}

fn nat_xml(
    env: &EnvSpec,
    net: &NetSpec,
    opts: &NetXmlOptions,
    mut root: Element,
) -> Result<String> {
    let gw = net.gw.ok_or_else(|| {
        ProviderError::Spec(format!(
            "net {}: a NAT network needs a gateway address",
            net.name
        ))
    })?;
    if !(8..=30).contains(&net.prefix_len) {
        return Err(ProviderError::Spec(format!(
            "net {}: prefix length {} is outside 8..30",
            net.name, net.prefix_len
        )));
    }
    root.push(Element::new("forward").attr("mode", "nat").child(
        Element::new("nat").child(Element::new("port").attr("start", 1024).attr("end", 65535)),
    ));
    if net.management {
        if let Some(domain) = &net.dns_domain_name {
            root.push(
                Element::new("domain")
                    .attr("name", domain)
                    .attr("localOnly", "yes"),
            );
        }
    }

    // DNS host records.
    let records = if net.management {
        let mut all: Vec<&HostMapping> =
            env.nets.values().flat_map(|n| n.mappings.iter()).collect();
        if !env.nets.contains_key(&net.name) {
            all.extend(net.mappings.iter());
        }
        dns_records(all.into_iter())
    } else {
        dns_records(net.mappings.iter())
    };
    let records = if net.management {
        with_user_records(records, net)
    } else {
        records
    };
    let v6 = opts.ipv6.then(|| ipv6_prefix(gw));
    let mut dns = Element::new("dns").attr("forwardPlainNames", "no");
    for (ip, names) in &records {
        let mut host = Element::new("host").attr("ip", ip);
        for n in names {
            host.push(Element::new("hostname").text(n));
        }
        dns.push(host);
        if let Some(p) = &v6 {
            // AAAA records only for addresses of this net's subnet.
            if same_subnet(*ip, gw, net.prefix_len) {
                let mut host6 = Element::new("host").attr("ip", format!("{p}{ip}"));
                for n in names {
                    host6.push(Element::new("hostname").text(n));
                }
                dns.push(host6);
            }
        }
    }
    root.push(dns);

    // IPv4 with DHCP.
    let mut ip4 = Element::new("ip")
        .attr("address", gw)
        .attr("prefix", net.prefix_len);
    let mut ip6 = v6.as_ref().map(|p| {
        Element::new("ip")
            .attr("family", "ipv6")
            .attr("address", format!("{p}1"))
            .attr("prefix", 64)
    });
    let mut dnsmasq = Element::new("dnsmasq:options");
    if net.dhcp.is_some() || !net.mappings.is_empty() {
        let mut dhcp = Element::new("dhcp");
        let mut dhcp6 = Element::new("dhcp");
        if let Some(range) = &net.dhcp {
            dhcp.push(
                Element::new("range")
                    .attr("start", range.start)
                    .attr("end", range.end),
            );
            if let Some(p) = &v6 {
                dhcp6.push(
                    Element::new("range")
                        .attr("start", format!("{p}{}", range.start))
                        .attr("end", format!("{p}{}", range.end)),
                );
            }
        }
        let mut seen_ip = Vec::new();
        let mut seen_mac = Vec::new();
        for m in &net.mappings {
            if seen_ip.contains(&m.ip) || seen_mac.contains(&m.mac.to_ascii_lowercase()) {
                continue;
            }
            seen_ip.push(m.ip);
            seen_mac.push(m.mac.to_ascii_lowercase());
            let name = m.hostnames.first().unwrap_or(&m.vm);
            dhcp.push(
                Element::new("host")
                    .attr("mac", &m.mac)
                    .attr("name", name)
                    .attr("ip", m.ip),
            );
            if let Some(p) = &v6 {
                let line = dhcp6_host(&m.mac, &format!("{p}{}", m.ip), name)?;
                dnsmasq.push(Element::new("dnsmasq:option").attr("value", line));
            }
        }
        ip4.push(dhcp);
        if let Some(ip6) = ip6.as_mut() {
            ip6.push(dhcp6);
        }
    }
    root.push(ip4);
    if let Some(ip6) = ip6 {
        root.push(ip6);
    }
    if dnsmasq.has_child("dnsmasq:option") {
        root.set_attr("xmlns:dnsmasq", DNSMASQ_NS);
        root.push(dnsmasq);
    }
    Ok(root.render())
}

/// The network of a spanned net on another host than the default one: a
/// bridge of the same name with no forwarding (traffic leaves through the
/// default host's gateway), no DHCP and no DNS (the default host's serve
/// the whole net), and on a NAT net the host's own address in the subnet,
/// so that SSH can jump through the host to its VMs.
pub fn span_network_xml(net: &NetSpec, host_address: Option<Ipv4Addr>) -> String {
    let mut root = bridge_only(net);
    if let Some(addr) = host_address {
        root.push(Element::new("dns").attr("enable", "no"));
        root.push(
            Element::new("ip")
                .attr("address", addr)
                .attr("prefix", net.prefix_len),
        );
    }
    root.render()
}

/// The IPv4 `(address, prefix length)` pairs of a libvirt network XML
/// (`<ip address=... prefix=...>` or `netmask=...`).
pub fn ipv4_addresses(xml: &str) -> Vec<(Ipv4Addr, u8)> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("ip") && n.attribute("family").is_none_or(|f| f == "ipv4"))
        .filter_map(|n| {
            let addr: Ipv4Addr = n.attribute("address")?.parse().ok()?;
            let len = match (n.attribute("prefix"), n.attribute("netmask")) {
                (Some(p), _) => p.parse().ok()?,
                (None, Some(m)) => u32::from(m.parse::<Ipv4Addr>().ok()?).count_ones() as u8,
                (None, None) => 24,
            };
            Some((addr, len))
        })
        .collect()
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix_len: u8) -> bool {
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_prefix_uses_third_octet() {
        assert_eq!(
            ipv6_prefix(Ipv4Addr::new(192, 168, 203, 1)),
            "fd8f:1391:3a82:203::"
        );
    }

    #[test]
    fn dhcp6_reservations_match_the_mac() {
        assert_eq!(
            dhcp6_host(
                "54:52:C0:A8:CB:02",
                "fd8f:1391:3a82:203::192.168.203.2",
                "vm0-eth1"
            )
            .expect("entry"),
            "dhcp-host=54:52:c0:a8:cb:02,[fd8f:1391:3a82:203::192.168.203.2],vm0-eth1"
        );
        // The line is dnsmasq configuration: nothing else gets into it.
        for (mac, name) in [
            ("54:52:c0:a8:cb:02", "vm0\ndhcp-script=/tmp/x"),
            ("54:52:c0:a8:cb:02", "vm,0"),
            ("54:52:c0:a8:cb:02,x", "vm0"),
            ("54:52:c0:a8:cb:02", ""),
        ] {
            assert!(dhcp6_host(mac, "fd8f::1", name).is_err(), "{mac} {name}");
        }
    }

    #[test]
    fn subnet_check() {
        let gw = Ipv4Addr::new(192, 168, 200, 1);
        assert!(same_subnet(Ipv4Addr::new(192, 168, 200, 77), gw, 24));
        assert!(!same_subnet(Ipv4Addr::new(192, 168, 201, 77), gw, 24));
    }

    #[test]
    fn records_group_names_by_ip() {
        let m = |vm: &str, ip: [u8; 4], names: &[&str]| HostMapping {
            vm: vm.to_string(),
            ip: Ipv4Addr::from(ip),
            mac: "54:52:00:00:00:00".to_string(),
            hostnames: names.iter().map(|s| s.to_string()).collect(),
        };
        let maps = [
            m("vm0", [192, 168, 200, 2], &["vm0-eth0", "vm0"]),
            m("vm0", [192, 168, 200, 2], &["vm0", "vm0-lago"]),
            m("vm1", [192, 168, 200, 3], &[]),
        ];
        let r = dns_records(maps.iter());
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[&Ipv4Addr::new(192, 168, 200, 2)],
            vec!["vm0", "vm0-eth0", "vm0-lago"]
        );
    }

    #[test]
    fn management_net_serves_the_init_files_dns_records() {
        let net: NetSpec = serde_json::from_value(serde_json::json!({
            "name": "lago", "type": "nat", "management": true, "libvirt_name": "abcd-lago",
            "bridge": "lgabcd-0", "gw": "192.168.200.1",
            "mappings": [{"vm": "vm0", "ip": "192.168.200.2", "mac": "54:52:c0:a8:c8:02",
                          "hostnames": ["vm0", "vm0-eth0"]}],
            "dns_records": {"www.example.org": "127.0.0.1", "vm0": "10.0.0.9"}
        }))
        .expect("net");
        let r = with_user_records(dns_records(net.mappings.iter()), &net);
        assert_eq!(r[&Ipv4Addr::new(127, 0, 0, 1)], vec!["www.example.org"]);
        // A planned name wins over the user's record of the same name.
        assert!(!r.contains_key(&Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(r[&Ipv4Addr::new(192, 168, 200, 2)], vec!["vm0", "vm0-eth0"]);
    }

    #[test]
    fn span_networks_and_addresses() {
        let net: NetSpec = serde_json::from_value(serde_json::json!({
            "name": "lago", "type": "nat", "libvirt_name": "t-lago", "bridge": "lgt-0",
            "gw": "192.168.203.1", "mtu": 1450
        }))
        .expect("net");
        let xml = span_network_xml(&net, Some(Ipv4Addr::new(192, 168, 203, 4)));
        assert!(!xml.contains("<forward"), "{xml}");
        assert!(!xml.contains("<dhcp"), "{xml}");
        assert!(
            xml.contains(r#"<dns enable="no"/>"#) || xml.contains("<dns enable='no'/>"),
            "{xml}"
        );
        assert!(xml.contains("192.168.203.4"), "{xml}");
        assert_eq!(
            ipv4_addresses(&xml),
            vec![(Ipv4Addr::new(192, 168, 203, 4), 24)]
        );
        let bare = span_network_xml(&net, None);
        assert!(!bare.contains("<ip"), "{bare}");
        assert_eq!(
            ipv4_addresses(
                "<network><ip address='10.1.2.1' netmask='255.255.0.0'/><ip family='ipv6' address='fd00::1' prefix='64'/></network>"
            ),
            vec![(Ipv4Addr::new(10, 1, 2, 1), 16)]
        );
    }
}
