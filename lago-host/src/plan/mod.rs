//! Planning: from a checked init file and the leased subnets to the planned
//! [`EnvSpec`]: addresses, MACs, DNS names, hypervisor names, disk paths.
//!
//! Pure: it reads no file except to check that deploy scripts exist, and
//! writes none.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{
    truthy, DhcpRange, DiskSpec, DiskType, EnvSpec, HostMapping, NetSpan, NetSpec, NetType,
    NicSpec, PrefixInfo, VmSpec, MAKE_A_COPY_KEY, SOURCE_PATH_KEY,
};
use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::config::Config;
use crate::initfile::{disk_name_dev, expand_vars, InitError, InitFile, KeyPath};

mod build_steps;
#[cfg(test)]
mod tests;

/// Default DNS domain of the management network.
pub const DEFAULT_DNS_DOMAIN: &str = "lago.local";
/// Default DHCP pool start (last octet) when the init file gives none.
pub const DEFAULT_DHCP_START: u8 = 100;

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

/// The variables paths may use besides the process environment.
pub struct PathVars<'a> {
    pub initfile_dir: Option<&'a Path>,
    pub prefix: &'a Path,
    pub workdir: Option<&'a Path>,
    /// Other variables (the process environment for `lago`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl PathVars<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        match name {
            "LAGO_INITFILE_PATH" => self.initfile_dir.map(s).or_else(|| (self.env)(name)),
            "LAGO_PREFIX_PATH" => Some(s(self.prefix)),
            "LAGO_WORKDIR_PATH" => self.workdir.map(s).or_else(|| (self.env)(name)),
            _ => (self.env)(name),
        }
    }

    /// Expand `$VAR` and `${VAR}` in `raw`; an undefined variable is an error.
    pub fn expand(&self, raw: &str) -> Result<String, String> {
        expand_vars(raw, &|n| self.lookup(n))
    }

    /// Expand variables and a leading `~` (the `HOME` of the environment),
    /// make the path absolute (relative paths are taken from the current
    /// directory, as Lago does) and resolve `.` and `..` by name, so that a
    /// path through the prefix or workdir being created
    /// (`$LAGO_PREFIX_PATH/../../scripts/x.sh`) names the file it means.
    pub fn path(&self, raw: &str) -> Result<PathBuf, String> {
        let e = self.expand(raw)?;
        let e = match e.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let home = (self.env)("HOME").ok_or("`~` in a path but HOME is not set")?;
                format!("{home}{rest}")
            }
            _ => e,
        };
        let p = PathBuf::from(e);
        let abs = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        };
        Ok(lexical_normal(&abs))
    }
}

/// `abs` with `.` and `..` resolved by name (`/a/b/../c` → `/a/c`).
fn lexical_normal(abs: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Where a deploy script is copied in the prefix: its path flattened
/// (`/a/b/c.sh` -> `scripts/a_b_c.sh`, as Lago named the copies), with
/// `-2`, `-3`, ... added when another script already has that name
/// (`a_b/c.sh` and `a/b_c.sh` flatten alike: neither may replace the other).
fn script_copy_name(src: &Path, dir: &Path, copied: &BTreeMap<PathBuf, PathBuf>) -> PathBuf {
    let flat = src
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    let taken = |p: &PathBuf| copied.values().any(|d| d == p);
    let mut dest = dir.join(&flat);
    let mut n = 2;
    while taken(&dest) {
        dest = dir.join(format!("{flat}-{n}"));
        n += 1;
    }
    dest
}

/// The MAC lago gives a nic with an address: `54:52:` and the four octets.
pub fn mac_from_ip(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("54:52:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
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
    let root = KeyPath::root();
    let tag = prefix.tag().to_string();
    let mgmt_nets = init.mgmt_nets();

    // Each net's /24 (first three octets) and gateway.
    struct NetState {
        base: Option<[u8; 3]>,
        gw: Option<Ipv4Addr>,
        taken: BTreeSet<u8>,
        pool: Option<(u8, u8)>,
    }
    let mut states: BTreeMap<&str, NetState> = BTreeMap::new();
    for (name, n) in &init.nets {
        let (base, gw) = match (subnets.get(name), n.gw) {
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
        if n.net_type == NetType::Nat && base.is_none() {
            return Err(init.error(
                root.key("nets").key(name),
                format!("network {name} has no leased subnet"),
                Some("a subnet leased for every nat network"),
            ));
        }
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
        states.insert(
            name,
            NetState {
                base,
                gw,
                taken,
                pool,
            },
        );
    }

    // Static addresses first: they are honoured (moved into the leased
    // subnet keeping their last octet) or the init file was already refused.
    for (vm, d) in &init.domains {
        for (i, nic) in d.nics.iter().enumerate() {
            let (Some(ip), Some(st)) = (nic.ip, states.get_mut(nic.net.as_str())) else {
                continue;
            };
            if st.base.is_some() && !st.taken.insert(ip.octets()[3]) {
                return Err(init.error(
                    root.key("domains").key(vm).key("nics").idx(i).key("ip"),
                    format!("static IP {ip} is taken on network {}", nic.net),
                    Some("an address not used by another nic, the gateway or the DHCP pool"),
                ));
            }
        }
    }

    let mut domains = BTreeMap::new();
    let mut mappings: BTreeMap<&str, Vec<HostMapping>> = BTreeMap::new();
    let mut macs: BTreeSet<String> = BTreeSet::new();
    let mut dns: BTreeMap<String, String> = BTreeMap::new();
    let mut copies: Vec<(PathBuf, PathBuf)> = Vec::new();
    // Each deploy script's copy in the prefix, by the source it copies.
    let mut copied: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();

    for (vm, d) in &init.domains {
        let vp = root.key("domains").key(vm);
        let mgmt = init.mgmt_net_of(d).unwrap_or_default().to_string();
        let mut nics = Vec::with_capacity(d.nics.len());
        let mut seen_nets: BTreeSet<&str> = BTreeSet::new();
        for (i, nic) in d.nics.iter().enumerate() {
            let np = vp.key("nics").idx(i);
            let st = states.get_mut(nic.net.as_str()).ok_or_else(|| {
                init.error(
                    np.key("net"),
                    format!("unknown network {:?}", nic.net),
                    None,
                )
            })?;
            let ip = match (nic.ip, st.base) {
                (Some(ip), Some(b)) => Some(Ipv4Addr::new(b[0], b[1], b[2], ip.octets()[3])),
                (Some(ip), None) => Some(ip),
                (None, Some(b)) => {
                    let Some(o) = (2..=254u8).find(|o| !st.taken.contains(o)) else {
                        return Err(init.error(
                            np,
                            format!("network {} has no free address left for this nic", nic.net),
                            Some("fewer nics on the network, or a smaller DHCP pool"),
                        ));
                    };
                    st.taken.insert(o);
                    Some(Ipv4Addr::new(b[0], b[1], b[2], o))
                }
                (None, None) => None,
            };
            let mac = match ip {
                Some(ip) => mac_from_ip(ip),
                None => synthetic_mac(&prefix.uuid, vm, i, &macs),
            };
            if !macs.insert(mac.clone()) {
                return Err(init.error(
                    np,
                    format!("MAC {mac} of this nic is already used in the environment"),
                    Some("a different address for each nic"),
                ));
            }
            // The how-many-th nic of this VM on this net (Lago's `<vm>-<net>-<n>`).
            let on_net = d.nics[..i].iter().filter(|n| n.net == nic.net).count();
            if let Some(ip) = ip {
                // Lago's names (`Prefix._add_nic_to_mapping`): `<vm>` for the
                // management nic, `<vm>-eth<i>`, `<vm>-<net>` for the first
                // nic on a net and `<vm>-<net>-<n>` for every one.
                let mut hostnames = Vec::with_capacity(4);
                if nic.net == mgmt && !seen_nets.contains(mgmt.as_str()) {
                    hostnames.push(vm.clone());
                }
                hostnames.push(format!("{vm}-eth{i}"));
                if on_net == 0 {
                    hostnames.push(format!("{vm}-{}", nic.net));
                }
                hostnames.push(format!("{vm}-{}-{on_net}", nic.net));
                for h in &hostnames {
                    if let Some(other) = dns.insert(h.clone(), format!("{vm} nic {i}")) {
                        return Err(init.error(
                            np,
                            format!("DNS name {h} of VM {vm} nic {i} is also the name of {other}"),
                            Some("VM and network names whose DNS names do not collide"),
                        ));
                    }
                }
                mappings
                    .entry(nic.net.as_str())
                    .or_default()
                    .push(HostMapping {
                        vm: vm.clone(),
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

        let mut disks = Vec::with_capacity(d.disks.len());
        for (i, disk) in d.disks.iter().enumerate() {
            let dp = vp.key("disks").idx(i);
            let (name, dev) = disk_name_dev(disk, i);
            let expand = |raw: &str| {
                vars.path(raw).map_err(|why| {
                    init.error(
                        dp.key("path"),
                        why,
                        Some("a path whose variables are defined"),
                    )
                })
            };
            let given = disk.path.as_deref().map(expand).transpose()?;
            if let Some(g) = given.as_deref().filter(|g| g.is_dir()) {
                return Err(init.error(
                    dp.key("path"),
                    format!("the disk path {} is a folder", g.display()),
                    Some("the path of an image file"),
                ));
            }
            let images = prefix.images_dir();
            let spec = match disk.disk_type {
                DiskType::Template => {
                    let qcow2_base = disk.template_type.as_deref() == Some("qcow2");
                    DiskSpec {
                        disk_type: DiskType::Template,
                        name: name.clone(),
                        dev,
                        format: "qcow2".into(),
                        path: Some(images.join(format!("{vm}_{name}.qcow2"))),
                        template_name: disk.template_name.clone(),
                        template_type: Some(
                            disk.template_type.clone().unwrap_or_else(|| "lago".into()),
                        ),
                        template_version: disk.template_version.clone(),
                        base: if qcow2_base { given } else { None },
                        base_format: if qcow2_base {
                            Some(disk.format.clone().unwrap_or_else(|| "qcow2".into()))
                        } else {
                            None
                        },
                        url: disk.url.clone(),
                        size: disk.size.clone(),
                        build: disk.build.clone(),
                        metadata: disk.metadata.clone(),
                        extra: disk.extra.clone(),
                    }
                }
                DiskType::File => {
                    let format = disk.format.clone().unwrap_or_else(|| {
                        format_from_name(disk.path.as_deref().or(disk.url.as_deref()).unwrap_or(""))
                    });
                    let in_prefix = images.join(format!("{vm}_{name}.{}", ext_of(&format)));
                    let mut extra = disk.extra.clone();
                    // Lago's `make_a_copy` of a `path`: the copy, in the
                    // prefix, is the disk; the path is only read.
                    let copies_path = truthy(extra.get(MAKE_A_COPY_KEY))
                        && disk.url.is_none()
                        && !extra.contains_key(SOURCE_PATH_KEY)
                        && !extra.contains_key("original_path");
                    let path = match given {
                        Some(p) if copies_path => {
                            extra.insert(
                                SOURCE_PATH_KEY.into(),
                                Value::String(p.display().to_string()),
                            );
                            in_prefix
                        }
                        Some(p) => p,
                        None => in_prefix,
                    };
                    DiskSpec {
                        disk_type: DiskType::File,
                        name: name.clone(),
                        dev,
                        format,
                        path: Some(path),
                        template_name: disk.template_name.clone(),
                        template_type: disk.template_type.clone(),
                        template_version: disk.template_version.clone(),
                        base: None,
                        base_format: None,
                        url: disk.url.clone(),
                        size: disk.size.clone(),
                        build: disk.build.clone(),
                        metadata: disk.metadata.clone(),
                        extra,
                    }
                }
                DiskType::Empty => {
                    let format = disk.format.clone().unwrap_or_else(|| "qcow2".into());
                    DiskSpec {
                        disk_type: DiskType::Empty,
                        name: name.clone(),
                        path: Some(images.join(format!("{vm}_{name}.{}", ext_of(&format)))),
                        dev,
                        format,
                        template_name: disk.template_name.clone(),
                        template_type: disk.template_type.clone(),
                        template_version: disk.template_version.clone(),
                        base: None,
                        base_format: None,
                        url: disk.url.clone(),
                        size: disk.size.clone(),
                        build: disk.build.clone(),
                        metadata: disk.metadata.clone(),
                        extra: disk.extra.clone(),
                    }
                }
            };
            let mut spec = spec;
            if let Some(build) = &spec.build {
                let planned =
                    build_steps::plan_build(build, vars, vars.initfile_dir).map_err(|why| {
                        init.error(dp.key("build"), why, Some("variables that are defined"))
                    })?;
                spec.build = Some(planned);
            }
            disks.push(spec);
        }

        // Deploy scripts: checked now, copied into the prefix by init.
        let mut metadata = d.metadata.clone();
        if let Some(Value::Array(scripts)) = metadata.get("deploy-scripts") {
            let sp = vp.key("metadata").key("deploy-scripts");
            let mut out = Vec::with_capacity(scripts.len());
            for (i, s) in scripts.iter().enumerate() {
                let raw = s.as_str().unwrap_or_default();
                let src = vars.path(raw).map_err(|why| {
                    init.error(sp.idx(i), why, Some("a path whose variables are defined"))
                })?;
                if !src.is_file() {
                    return Err(init.error(
                        sp.idx(i),
                        format!("deploy script {} does not exist", src.display()),
                        Some("the path of an existing script file"),
                    ));
                }
                let dest = match copied.get(&src) {
                    Some(dest) => dest.clone(),
                    None => {
                        let dest = script_copy_name(&src, &prefix.scripts_dir(), &copied);
                        copied.insert(src.clone(), dest.clone());
                        copies.push((src, dest.clone()));
                        dest
                    }
                };
                out.push(Value::String(dest.to_string_lossy().into_owned()));
            }
            metadata.insert("deploy-scripts".into(), Value::Array(out));
        }

        domains.insert(
            vm.clone(),
            VmSpec {
                name: vm.clone(),
                libvirt_name: format!("{tag}-{vm}"),
                memory: d.memory.unwrap_or(defaults.memory),
                vcpu: d.vcpu.unwrap_or(defaults.vcpu),
                cpu_model: d.cpu_model.clone(),
                cpu_custom: d.cpu_custom.clone(),
                nics,
                disks,
                mgmt_net: mgmt.clone(),
                artifacts: d.artifacts.clone(),
                groups: d.groups.clone(),
                bootstrap: d.bootstrap.unwrap_or(true),
                ssh_user: d
                    .ssh_user
                    .clone()
                    .unwrap_or_else(|| defaults.ssh_user.clone()),
                ssh_password: d.ssh_password.clone(),
                root_password: d
                    .root_password
                    .clone()
                    .or_else(|| defaults.root_password.clone()),
                service_provider: d.service_provider.clone(),
                vm_provider: d
                    .vm_provider
                    .clone()
                    .unwrap_or_else(|| defaults.vm_provider.clone()),
                vm_type: d
                    .vm_type
                    .clone()
                    .unwrap_or_else(|| defaults.vm_type.clone()),
                metadata,
                boot_time_sec: d.boot_time_sec,
                distro: d.distro.clone(),
                ssh_host_key: None,
                host: d.host.clone(),
                extra: d.extra.clone(),
            },
        );
    }

    // Nets with VMs on other hosts than the default one span those hosts:
    // each such host's bridge takes an address of the subnet (NAT nets), so
    // that SSH can jump through the host to its VMs.
    let mut spans: BTreeMap<&str, NetSpan> = BTreeMap::new();
    for d in init.domains.values() {
        let Some(h) = &d.host else { continue };
        for nic in &d.nics {
            let span = spans.entry(nic.net.as_str()).or_insert_with(|| NetSpan {
                vni: vxlan_id(&prefix.uuid, &nic.net),
                hosts: Vec::new(),
                host_addresses: BTreeMap::new(),
            });
            if !span.hosts.contains(h) {
                span.hosts.push(h.clone());
            }
        }
    }
    for (net, span) in spans.iter_mut() {
        let Some(st) = states.get_mut(net) else {
            continue;
        };
        let (Some(b), true) = (st.base, init.nets[*net].net_type == NetType::Nat) else {
            continue;
        };
        for h in &span.hosts {
            let Some(o) = (2..=254u8).find(|o| !st.taken.contains(o)) else {
                return Err(init.error(
                    root.key("nets").key(net),
                    format!("network {net} has no free address left for host {h}"),
                    Some("fewer nics on the network, or a smaller DHCP pool"),
                ));
            };
            st.taken.insert(o);
            span.host_addresses
                .insert(h.clone(), Ipv4Addr::new(b[0], b[1], b[2], o));
        }
    }

    let mut nets = BTreeMap::new();
    for (idx, (name, n)) in init.nets.iter().enumerate() {
        let st = &states[name.as_str()];
        let span = spans.remove(name.as_str());
        let is_mgmt = mgmt_nets.contains(name.as_str());
        let dhcp = if n.net_type == NetType::Nat {
            let base = st.base.unwrap_or([192, 168, 200]);
            let range = match st.pool {
                Some(r) => Some(r),
                None => {
                    // Default pool: .100-.254, starting above every planned
                    // address when the plan reaches past .99; none when full.
                    let highest = st.taken.iter().next_back().copied().unwrap_or(1);
                    let start = DEFAULT_DHCP_START.max(highest.saturating_add(1));
                    (highest < 254).then_some((start, 254))
                }
            };
            range.map(|(s, e)| DhcpRange {
                start: Ipv4Addr::new(base[0], base[1], base[2], s),
                end: Ipv4Addr::new(base[0], base[1], base[2], e),
            })
        } else {
            None
        };
        nets.insert(
            name.clone(),
            NetSpec {
                name: name.clone(),
                net_type: n.net_type,
                management: is_mgmt,
                libvirt_name: format!("{tag}-{name}"),
                bridge: format!("lg{tag}-{idx}"),
                gw: st.gw,
                prefix_len: 24,
                dhcp,
                dns_domain_name: if is_mgmt {
                    Some(
                        n.dns_domain_name
                            .clone()
                            .unwrap_or_else(|| DEFAULT_DNS_DOMAIN.into()),
                    )
                } else {
                    None
                },
                // VXLAN takes 50 bytes of a 1500-byte underlay frame.
                mtu: n.mtu.or(span.as_ref().map(|_| SPAN_MTU)),
                mappings: mappings.remove(name.as_str()).unwrap_or_default(),
                span,
                extra: net_extra(n),
            },
        );
    }

    Ok(Plan {
        env: EnvSpec {
            prefix: prefix.clone(),
            nets,
            domains,
            hosts: init.hosts.clone(),
            extra: init.extra.clone(),
        },
        copies,
    })
}

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

/// A net's free-form keys, plus its `dns_records` (`{host: ip}`) for the
/// provider to serve.
fn net_extra(n: &crate::initfile::NetDef) -> lago_plugin_api::spec::Extra {
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

/// A stable MAC for a nic without an address: `54:52:00:` and three bytes
/// of a hash of the prefix uuid, the VM and the nic index.
fn synthetic_mac(uuid: &str, vm: &str, idx: usize, used: &BTreeSet<String>) -> String {
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

fn format_from_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".iso") {
        "iso".into()
    } else if lower.ends_with(".raw") || lower.ends_with(".img") {
        "raw".into()
    } else {
        "qcow2".into()
    }
}

fn ext_of(format: &str) -> &str {
    match format {
        "iso" => "iso",
        "raw" => "raw",
        _ => "qcow2",
    }
}
