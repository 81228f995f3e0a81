//! The planned environment, as stored in a prefix and handed to plugins.
//!
//! `lago init` turns a LagoInitFile into an [`EnvSpec`]: every VM and network
//! with its addresses, MACs, hypervisor names and disk paths decided. The host
//! stores it in the prefix (`virt/env`, one JSON file per net and per VM) and
//! every plugin call gets the part it needs as JSON of these types. Plugins never
//! read the init file themselves.
//!
//! Keys the host does not know are kept in each `extra` map, so a vm-type or
//! provider plugin can read its own keys and the stored spec round-trips.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Free-form keys kept as written (sorted by key).
pub type Extra = BTreeMap<String, Value>;

/// The whole planned environment of one prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvSpec {
    pub prefix: PrefixInfo,
    #[serde(default)]
    pub nets: BTreeMap<String, NetSpec>,
    /// The VMs ("domains" in the init file), by name.
    #[serde(default)]
    pub domains: BTreeMap<String, VmSpec>,
    /// The libvirt hosts besides the default one (init file `hosts:`), by
    /// name; empty when the whole environment is on the default host. See
    /// docs/multi-host.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, HostSpec>,
    /// Top-level keys of the init file that the host does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How the default host (VMs without `host:`) is named in output.
pub const DEFAULT_HOST: &str = "default";

impl EnvSpec {
    /// The host a VM runs on, None for the default host.
    pub fn host_of(&self, vm: &VmSpec) -> Option<(&str, &HostSpec)> {
        let name = vm.host.as_deref()?;
        self.hosts.get_key_value(name).map(|(k, h)| (k.as_str(), h))
    }

    /// The management network of a VM: the net of its management nic.
    pub fn mgmt_net_of(&self, vm: &VmSpec) -> Option<&NetSpec> {
        self.nets.get(&vm.mgmt_net)
    }

    /// The first management network of the environment (by name). An
    /// environment may have several; each VM is on exactly one of them
    /// ([`EnvSpec::mgmt_net_of`]).
    pub fn mgmt_net(&self) -> Option<&NetSpec> {
        self.nets.values().find(|n| n.management)
    }

    /// Every DNS name of the environment with its address: the records a
    /// provider serves on the management network (`<vm>` for each management
    /// nic, `<vm>-eth<i>` and `<vm>-<net>` for every nic with an address, on
    /// every net).
    pub fn dns_records(&self) -> BTreeMap<String, Ipv4Addr> {
        let mut out = BTreeMap::new();
        for net in self.nets.values() {
            for m in &net.mappings {
                for h in &m.hostnames {
                    out.insert(h.clone(), m.ip);
                }
            }
        }
        out
    }
}

/// Where a prefix lives and who it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixInfo {
    /// The prefix name inside its workdir (`default` unless `-P` chose one).
    pub name: String,
    /// Absolute path of the prefix folder.
    pub path: PathBuf,
    /// Absolute path of the workdir holding the prefix, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// The prefix uuid (hex, 32 characters, no dashes).
    pub uuid: String,
}

impl PrefixInfo {
    /// Short, stable tag that prefixes every hypervisor object of this prefix.
    pub fn tag(&self) -> &str {
        self.uuid.get(..8).unwrap_or(&self.uuid)
    }
    /// Disk images of the prefix (overlays, seeds, copies).
    pub fn images_dir(&self) -> PathBuf {
        self.path.join("images")
    }
    /// Log files (lago.log, serial consoles).
    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }
    /// The prefix's SSH private key (OpenSSH format, mode 0600).
    pub fn ssh_key_path(&self) -> PathBuf {
        self.path.join("id_ed25519")
    }
    /// The prefix's SSH public key (one OpenSSH line).
    pub fn ssh_pubkey_path(&self) -> PathBuf {
        self.path.join("id_ed25519.pub")
    }
    /// Folder of the per-VM SSH host keys generated at init.
    pub fn host_keys_dir(&self) -> PathBuf {
        self.path.join("host-keys")
    }
    /// Serial console log of a VM.
    pub fn console_log_path(&self, vm: &str) -> PathBuf {
        self.logs_dir().join(format!("{vm}.console.log"))
    }
    /// How a VM started last, written by its provider: `warm`, or
    /// `cold: <reason>` (`lago status` shows `last start`; see
    /// docs/template.md, "Warm starts").
    pub fn last_start_path(&self, vm: &str) -> PathBuf {
        self.path.join("warm").join(vm)
    }
    /// How VM `vm` started last, `warm` or `cold`, as its provider recorded
    /// it in [`Self::last_start_path`] (`warm`, or `cold: <reason>`); None
    /// when nothing (readable) is recorded.
    pub fn last_start(&self, vm: &str) -> Option<&'static str> {
        let text = std::fs::read_to_string(self.last_start_path(vm)).ok()?;
        match text.split(':').next().map(str::trim) {
            Some("warm") => Some("warm"),
            Some("cold") => Some("cold"),
            _ => None,
        }
    }
    /// The private SSH host key of a VM (OpenSSH format, mode 0600), handed
    /// to the VM by the bootstrap seed. Its public half is
    /// [`VmSpec::ssh_host_key`].
    pub fn host_key_path(&self, vm: &str) -> PathBuf {
        self.host_keys_dir().join(vm)
    }
    /// Deploy scripts copied at init.
    pub fn scripts_dir(&self) -> PathBuf {
        self.path.join("scripts")
    }
    /// The stored planned state (`env`, `nets/<net>.json`, `vms/<vm>.json`).
    pub fn virt_dir(&self) -> PathBuf {
        self.path.join("virt")
    }
    /// The main log file of the prefix.
    pub fn log_path(&self) -> PathBuf {
        self.logs_dir().join("lago.log")
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetType {
    /// NATed to the host, with DHCP and DNS served by the provider.
    Nat,
    /// An isolated bridge: no NAT, no DHCP.
    Bridge,
}

/// A planned network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub net_type: NetType,
    #[serde(default)]
    pub management: bool,
    /// Name of the network in the hypervisor, unique per prefix.
    pub libvirt_name: String,
    /// Name of the host bridge (at most 15 characters).
    pub bridge: String,
    /// Gateway (host side) address; the subnet is its /24. None for a bridge
    /// network without addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<Ipv4Addr>,
    #[serde(default = "default_prefix_len")]
    pub prefix_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// One entry per planned nic on this net: the DHCP host entries, and on a
    /// management net the DNS records.
    #[serde(default)]
    pub mappings: Vec<HostMapping>,
    /// How the net reaches VMs on other hosts than the default one; None
    /// when all of its VMs run on the default host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<NetSpan>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One libvirt host of a multi-host environment (init file `hosts: NAME:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// libvirt's URL of the host: `qemu+ssh://root@hv2/system`,
    /// `qemu+tcp://hv2/system`, `qemu+tls://...`.
    pub libvirt_url: String,
    /// Where the SSH jump to the host's VMs and the tunnel set-up go:
    /// `[user@]host[:port]`, read by OpenSSH with the user's own
    /// configuration and keys. Default: the user and host of `libvirt_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// The host's IPv4 address as the other hosts reach it (the far end of
    /// the VXLAN tunnels). Default: the host name of `libvirt_url`, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl HostSpec {
    /// The host name of `libvirt_url` (`hv2` in `qemu+ssh://root@hv2:2222/system`);
    /// None for a local URL such as `qemu:///system`.
    pub fn url_host(&self) -> Option<&str> {
        url_host(&self.libvirt_url)
    }

    /// The OpenSSH destination of the host: `ssh`, else the user and host
    /// of `libvirt_url` (and its port for a `qemu+ssh` URL), as
    /// [`SshDest::parse`] reads them. None when neither names a host or
    /// the destination does not read as `[user@]host[:port]`.
    pub fn ssh_dest(&self) -> Option<SshDest> {
        if let Some(s) = &self.ssh {
            return SshDest::parse(s);
        }
        let rest = self.libvirt_url.split_once("://")?.1;
        let dest = SshDest::parse(rest.split('/').next().unwrap_or(""))?;
        if self.libvirt_url.starts_with("qemu+ssh") {
            return Some(dest);
        }
        // Another transport's port is libvirt's, not sshd's.
        Some(SshDest { port: None, ..dest })
    }
}

/// An OpenSSH destination `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshDest {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshDest {
    /// Reads `[user@]host[:port]` (`[v6]:port` for IPv6). None when a part
    /// is empty, the port is not a number, a part starts with `-` (it would
    /// read as an option to `ssh`) or holds other characters than letters,
    /// digits, `.`, `-`, `_` (and `:` in an IPv6 address).
    pub fn parse(s: &str) -> Option<SshDest> {
        let (user, hostport) = match s.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, s),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, rest) = v6.split_once(']')?;
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if rest.is_empty() => None,
                None => return None,
            };
            (h.to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (hostport.to_string(), None),
            }
        };
        // Names and addresses only: nothing a shell or ssh_config reads
        // specially.
        let bad = |p: &str| {
            p.is_empty()
                || p.starts_with('-')
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        };
        if bad(&host) || user.as_deref().is_some_and(bad) {
            return None;
        }
        Some(SshDest { user, host, port })
    }

    /// `ssh` arguments that reach the destination: `[-p PORT] [USER@]HOST`
    /// (the destination last, after `--`).
    pub fn ssh_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = self.port {
            out.push("-p".to_string());
            out.push(p.to_string());
        }
        out.push("--".to_string());
        out.push(self.user_at_host());
        out
    }

    /// `[user@]host`.
    pub fn user_at_host(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl std::fmt::Display for SshDest {
    /// `[user@]host[:port]`, as OpenSSH's `ProxyJump` reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.user {
            Some(u) => write!(f, "{u}@{host}")?,
            None => write!(f, "{host}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// The host name of a libvirt URL, None when it names no host (local).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then_some(host)
}

/// A network whose VMs run on several hosts: one L2 segment joined by VXLAN
/// between the hosts' bridges; DHCP, DNS and the gateway stay on the
/// default host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpan {
    /// The VXLAN network identifier (24 bits), unique per prefix and net.
    pub vni: u32,
    /// The hosts (besides the default one) the net reaches.
    pub hosts: Vec<String>,
    /// The address each of those hosts' bridges takes in the net's subnet,
    /// so that the host can forward SSH to its VMs (NAT nets only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_addresses: BTreeMap<String, Ipv4Addr>,
}

impl NetSpec {
    /// The network address of the net's subnet, when it has one.
    pub fn subnet(&self) -> Option<Ipv4Addr> {
        let gw = u32::from(self.gw?);
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        };
        Some(Ipv4Addr::from(gw & mask))
    }
}

fn default_prefix_len() -> u8 {
    24
}

/// DHCP pool, full addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

/// A planned nic seen from its network: the DHCP host entry and its DNS names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMapping {
    /// The VM owning the nic.
    pub vm: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// DNS names: `<vm>` (management nic), `<vm>-eth<i>`, `<vm>-<net>`.
    pub hostnames: Vec<String>,
}

/// A planned VM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSpec {
    pub name: String,
    /// Name of the domain in the hypervisor, unique per prefix.
    pub libvirt_name: String,
    /// MiB.
    pub memory: u64,
    pub vcpu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// libvirt CPU XML as a dict: `@attr` → attribute, `#text` → text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_custom: Option<Value>,
    pub nics: Vec<NicSpec>,
    pub disks: Vec<DiskSpec>,
    /// Name of the management network (the net of the management nic).
    pub mgmt_net: String,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "yes")]
    pub bootstrap: bool,
    #[serde(rename = "ssh-user", default = "default_ssh_user")]
    pub ssh_user: String,
    #[serde(
        rename = "ssh-password",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ssh_password: Option<String>,
    #[serde(
        rename = "root-password",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub root_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider: Option<String>,
    #[serde(rename = "vm-provider")]
    pub vm_provider: String,
    #[serde(rename = "vm-type")]
    pub vm_type: String,
    #[serde(default)]
    pub metadata: Extra,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// The VM's SSH host public key (one OpenSSH line), pinned at init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_host_key: Option<String>,
    /// The host the VM runs on (a key of [`EnvSpec::hosts`]); None for the
    /// default host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl VmSpec {
    /// The planned address of the management nic.
    pub fn mgmt_ip(&self) -> Option<Ipv4Addr> {
        self.mgmt_nic().and_then(|n| n.ip)
    }
    /// The management nic: the VM's (only) nic on its management net.
    pub fn mgmt_nic(&self) -> Option<&NicSpec> {
        self.nics.iter().find(|n| n.net == self.mgmt_net)
    }
    /// A string of the template metadata of the VM's first disk (e.g.
    /// `bootstrap`, `ssh-host-key`); `None` when absent or not a string.
    pub fn template_metadata(&self, key: &str) -> Option<&str> {
        self.disks
            .first()
            .and_then(|d| d.metadata.get(key))
            .and_then(|v| v.as_str())
    }
    /// Whether the VM's template reads no bootstrap seed (template metadata
    /// `bootstrap: offline`): lago writes its hostname, root password and
    /// keys into the VM's disk at init instead, as Lago's `bootstrap` did
    /// with virt-sysprep.
    pub fn offline_bootstrap(&self) -> bool {
        self.template_metadata("bootstrap") == Some("offline")
    }
}

fn yes() -> bool {
    true
}

fn default_ssh_user() -> String {
    "root".to_string()
}

/// A planned nic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicSpec {
    pub net: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    pub mac: String,
    /// Keys of the init file's nic entry that the host does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    /// An image from a template repository (an overlay on the store image).
    Template,
    /// A local image file (or a URL), used as it is or copied.
    File,
    /// A new, empty image of `size`.
    Empty,
}

/// A planned disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    #[serde(rename = "type")]
    pub disk_type: DiskType,
    pub name: String,
    /// Guest device: `vd*` (virtio-blk), `sd*` (virtio-scsi), `hd*`.
    pub dev: String,
    /// Image format: `qcow2`, `raw`, or `iso` (attached as a cdrom).
    pub format: String,
    /// The image file the VM uses, once planned (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// `lago` (from a repository) or `qcow2` (an explicit `path` as base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<String>,
    /// The backing image of a template overlay (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// Format of `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Size for `empty` disks, e.g. `10G`, `512M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Value>,
    /// Template metadata (distro, root-password, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Extra,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Disk key (`extra`) set by the host on a disk re-initialised from a
/// layered export: `{path, format}` of the template store image under the
/// disk's chain (its `base` is then the exported layer's copy in the prefix).
pub const TEMPLATE_IMAGE_KEY: &str = "template_image";

impl DiskSpec {
    /// The template store image (`repo:template:version`) at the bottom of
    /// this disk's backing chain and its format, which a layered `lago
    /// export` keeps as the exported layer's backing file: the `base` of a
    /// disk from a template repository, or [`TEMPLATE_IMAGE_KEY`] of a disk
    /// re-initialised from a layered export. `None` for other disks (a
    /// layered export merges them).
    pub fn template_image(&self) -> Option<(PathBuf, String)> {
        if let Some(Value::Object(m)) = self.extra.get(TEMPLATE_IMAGE_KEY) {
            let path = m.get("path")?.as_str()?;
            let format = m.get("format").and_then(Value::as_str).unwrap_or("qcow2");
            return Some((PathBuf::from(path), format.to_string()));
        }
        match (self.disk_type, self.template_type.as_deref()) {
            (DiskType::Template, Some("lago") | None) => Some((
                self.base.clone()?,
                self.base_format.clone().unwrap_or_else(|| "qcow2".into()),
            )),
            _ => None,
        }
    }

    /// The image a `file` disk with `make_a_copy` is copied from (Lago's
    /// `make_a_copy`: the image at `path` is copied into the prefix and the
    /// copy is used): `extra.source_path` (or `extra.original_path`), which
    /// the host plans from the init file's `path`. `None` for a disk that is
    /// used where it is, or whose copy comes from its `url`.
    pub fn copy_source(&self) -> Option<PathBuf> {
        if self.disk_type != DiskType::File || !truthy(self.extra.get(MAKE_A_COPY_KEY)) {
            return None;
        }
        ["source_path", "original_path"]
            .iter()
            .find_map(|k| self.extra.get(*k)?.as_str().map(PathBuf::from))
    }
}

/// Disk key (Lago's): a `file` disk is used as a copy in the prefix.
pub const MAKE_A_COPY_KEY: &str = "make_a_copy";
/// Disk key: the image a `make_a_copy` file disk is copied from.
pub const SOURCE_PATH_KEY: &str = "source_path";

/// Whether a flag read from an init file is set: `true`, a string `true`,
/// `yes` or `1` (any case), or a non-zero number (Lago's files write
/// `make_a_copy: 'True'`).
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1"),
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// What a provider kept in one VM's snapshot (`create_snapshot`'s answer,
/// stored by the host in the VM's `snapshots` and shown by `snapshot -l`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Whether the VM's memory (its running state) was kept: a revert then
    /// resumes the VM where it was, without booting. False for a disk-only
    /// snapshot (of a stopped VM, or where memory cannot be kept).
    pub memory: bool,
    /// The VM's state when the snapshot was taken (`running`, `down`, ...).
    pub state: String,
    /// The disks the snapshot holds.
    pub disks: Vec<SnapshotDisk>,
}

/// Whether `name` is a snapshot name lago accepts: 1 to 64 of `A-Z a-z 0-9
/// . _ -`, not starting with `.` or `-` (providers use it as a file name and
/// a command argument).
pub fn valid_snapshot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// One disk of a [`SnapshotInfo`] (Lago's shape: name, dev, path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDisk {
    pub name: String,
    pub dev: String,
    /// The image holding the snapshot (absolute).
    pub path: PathBuf,
    pub format: String,
}

#[cfg(test)]
mod host_tests {
    use super::*;

    fn host(url: &str, ssh: Option<&str>) -> HostSpec {
        HostSpec {
            libvirt_url: url.into(),
            ssh: ssh.map(Into::into),
            address: None,
            extra: Extra::new(),
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("qemu:///system"), None);
        assert_eq!(url_host("qemu+ssh://root@hv2/system"), Some("hv2"));
        assert_eq!(
            url_host("qemu+tcp://10.0.0.2:16509/system"),
            Some("10.0.0.2")
        );
        assert_eq!(
            url_host("qemu+ssh://root@[fd00::2]:22/system"),
            Some("fd00::2")
        );
        assert_eq!(url_host("no url"), None);
    }

    #[test]
    fn ssh_destinations() {
        let d = host("qemu+ssh://root@hv2:2222/system", None)
            .ssh_dest()
            .expect("dest");
        assert_eq!(d.to_string(), "root@hv2:2222");
        assert_eq!(d.ssh_args(), ["-p", "2222", "--", "root@hv2"]);
        // qemu+tcp's port is libvirt's, not sshd's.
        let d = host("qemu+tcp://10.0.0.2:16509/system", None)
            .ssh_dest()
            .expect("dest");
        assert_eq!(d.to_string(), "10.0.0.2");
        let d = host("qemu+tcp://10.0.0.2/system", Some("admin@10.0.0.9:22"))
            .ssh_dest()
            .expect("dest");
        assert_eq!((d.user.as_deref(), d.port), (Some("admin"), Some(22)));
        assert_eq!(host("qemu:///system", None).ssh_dest(), None);
        for bad in ["-oProxyCommand=x", "root@-x", "a b", "h:port", "", "root@"] {
            assert_eq!(SshDest::parse(bad), None, "{bad}");
        }
        assert_eq!(
            SshDest::parse("[fd00::2]:22").map(|d| d.to_string()),
            Some("[fd00::2]:22".into())
        );
    }
}
