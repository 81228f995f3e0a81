//! The addresses of each net: its /24 (the leased subnet, or the one its
//! `gw` names), its gateway, its DHCP pool and the last octets taken so far,
//! and the MACs that go with the addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use lago_plugin_api::spec::NetType;
use sha1::{Digest, Sha1};

use crate::initfile::{InitError, InitFile, KeyPath, NetDef};

/// One net's addresses.
pub struct NetAddresses {
    /// The first three octets of the net's /24, when it has one.
    pub base: Option<[u8; 3]>,
    pub gw: Option<Ipv4Addr>,
    /// Last octets of the gateway, the DHCP pool and the planned addresses.
    pub taken: BTreeSet<u8>,
    /// The DHCP pool the init file gives a NAT net (last octets).
    pub pool: Option<(u8, u8)>,
}

/// Every net's addresses, by net name.
pub type AddressBook<'a> = BTreeMap<&'a str, NetAddresses>;

impl NetAddresses {
    /// Net `n` on `leased` (its subnet's network address, if it has one): a
    /// `gw` keeps its last octet in the leased subnet.
    fn new(n: &NetDef, leased: Option<&Ipv4Addr>) -> NetAddresses {
        let (base, gw) = match (leased, n.gw) {
            (Some(s), gw) => {
                let o = s.octets();
                let base = [o[0], o[1], o[2]];
                let gw = match gw {
                    Some(g) => Ipv4Addr::new(base[0], base[1], base[2], g.octets()[3]),
                    None => Ipv4Addr::new(base[0], base[1], base[2], 1),
                };
                (Some(base), Some(gw))
            }
            (None, Some(g)) => {
                let o = g.octets();
                (Some([o[0], o[1], o[2]]), Some(g))
            }
            (None, None) => (None, None),
        };
        let mut taken = BTreeSet::new();
        if let Some(g) = gw {
            taken.insert(g.octets()[3]);
        }
        let pool = if n.net_type == NetType::Nat {
            n.dhcp
        } else {
            None
        };
        if let Some((s, e)) = pool {
            taken.extend(s..=e);
        }
        NetAddresses {
            base,
            gw,
            taken,
            pool,
        }
    }

    /// The lowest free address from `.2` in the /24 `base`, now taken;
    /// `None` when none is left.
    pub fn take_free(&mut self, base: [u8; 3]) -> Option<Ipv4Addr> {
        let o = (2..=254u8).find(|o| !self.taken.contains(o))?;
        self.taken.insert(o);
        Some(Ipv4Addr::new(base[0], base[1], base[2], o))
    }
}

/// Each net's addresses on the subnets leased for them (`subnets`, by net);
/// a NAT net without a leased subnet is refused.
pub fn address_book<'a>(
    init: &'a InitFile,
    subnets: &BTreeMap<String, Ipv4Addr>,
) -> Result<AddressBook<'a>, InitError> {
    let mut book = AddressBook::new();
    for (name, n) in &init.nets {
        let net = NetAddresses::new(n, subnets.get(name));
        if n.net_type == NetType::Nat && net.base.is_none() {
            return Err(init.error(
                KeyPath::root().key("nets").key(name),
                format!("network {name} has no leased subnet"),
                Some("a subnet leased for every nat network"),
            ));
        }
        book.insert(name, net);
    }
    Ok(book)
}

/// Take the static addresses first: they are honoured (moved into the
/// leased subnet keeping their last octet) or the init file was already
/// refused; two nics asking for one is refused here.
pub fn reserve_static(init: &InitFile, book: &mut AddressBook<'_>) -> Result<(), InitError> {
    for (vm, d) in &init.domains {
        for (i, nic) in d.nics.iter().enumerate() {
            let (Some(ip), Some(net)) = (nic.ip, book.get_mut(nic.net.as_str())) else {
                continue;
            };
            if net.base.is_some() && !net.taken.insert(ip.octets()[3]) {
                return Err(init.error(
                    KeyPath::root()
                        .key("domains")
                        .key(vm)
                        .key("nics")
                        .idx(i)
                        .key("ip"),
                    format!("static IP {ip} is taken on network {}", nic.net),
                    Some("an address not used by another nic, the gateway or the DHCP pool"),
                ));
            }
        }
    }
    Ok(())
}

/// The MAC lago gives a nic with an address: `54:52:` and the four octets.
pub fn mac_from_ip(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("54:52:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// A stable MAC for a nic without an address: `54:52:00:` and three bytes
/// of a hash of the prefix uuid, the VM and the nic index.
pub fn synthetic_mac(uuid: &str, vm: &str, idx: usize, used: &BTreeSet<String>) -> String {
    let mut salt = 0u32;
    loop {
        let mut h = Sha1::new();
        h.update(uuid.as_bytes());
        h.update([0]);
        h.update(vm.as_bytes());
        h.update(idx.to_le_bytes());
        h.update(salt.to_le_bytes());
        let d = h.finalize();
        let mac = format!("54:52:00:{:02x}:{:02x}:{:02x}", d[0], d[1], d[2]);
        if !used.contains(&mac) {
            return mac;
        }
        salt += 1;
    }
}
