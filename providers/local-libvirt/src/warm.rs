//! Warm starts: a VM starts by restoring the memory of its template booted
//! once, then receives its own identity (docs/template.md, "Warm starts").
//!
//! Design (libvirt 9.0 / QEMU 7.2; see docs/template.md for the choice):
//!
//! - **Warm image** of a VM *shape* (template sha1, the domain XML lago
//!   writes for the VM with its identity replaced by placeholders: memory,
//!   vCPUs, machine and CPU, devices; libvirt and QEMU versions; lago's warm
//!   format [`FORMAT_VERSION`]), kept beside the template in the store:
//!   `<template>.warm/<sha1 of the key>/{memory.sav,disk.qcow2,key.txt}`.
//!   Made once (under `<key>.lock`) by booting the template with the
//!   identity channel [`IDENTITY_CHANNEL`] and `<genid/>`, telling the
//!   guest's agent to `park` (DHCP stopped, NICs down without an address),
//!   then `virDomainSave`; the overlay the boot wrote (`disk.qcow2`, backed
//!   by the template) is frozen read-only beside the memory. The boot domain
//!   is created with `AUTODESTROY`: a killed lago leaves no domain.
//! - **Clone**: the VM's fresh overlay is replaced by a copy of the frozen
//!   one (same backing template: a later cold start sees the same disk the
//!   saved memory knew); a per-clone copy of the save image gets the VM's
//!   XML (name, UUID, MACs, networks, disk and console paths; see
//!   [`clone_xml`] and [`crate::saveimage`]); `virDomainRestoreFlags`
//!   restores it as an ordinary transient domain (libvirt makes a new
//!   genid, so a vmgenid-aware kernel reseeds its RNG); the identity goes
//!   over the channel ([`identity_message`]) and the agent answers `ok`.
//! - Anything that does not fit ([`cold_reason`]) or fails boots cold, with
//!   the reason logged: warm is a fast path, never a new way to fail.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use lago_plugin_api::spec::{DiskType, EnvSpec, NetType, VmSpec};
use sha1::{Digest, Sha1};

use crate::domain::IDENTITY_CHANNEL;
use crate::error::{ProviderError, Result};
use crate::seed::SeedData;

/// lago's warm-image format: bump it when the image, the key or the guest
/// protocol changes, so that no older image is ever restored.
pub const FORMAT_VERSION: u32 = 2;
/// The guest side's protocol, from the template metadata `"warm-start"`
/// (scripts/template/rootfs/etc/lago/warm-agent speaks both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentProtocol {
    /// `lago-warm-1`: the NICs get their MACs and then DHCP.
    V1,
    /// `lago-warm-2`: a NIC's `mac` line also carries its planned IPv4
    /// address, router and DNS domain, set before the agent answers, so SSH
    /// does not wait for DHCP.
    V2,
}

impl AgentProtocol {
    /// The metadata values lago knows, newest first.
    pub const NAMES: [&'static str; 2] = ["lago-warm-2", "lago-warm-1"];

    /// The protocol of a template's metadata value, None for any other.
    pub fn from_metadata(value: Option<&str>) -> Option<Self> {
        match value? {
            "lago-warm-1" => Some(AgentProtocol::V1),
            "lago-warm-2" => Some(AgentProtocol::V2),
            _ => None,
        }
    }

    /// The protocol of `vm`'s template disk, None when it has no agent.
    pub fn of(vm: &VmSpec) -> Option<Self> {
        let disk = vm.disks.first()?;
        Self::from_metadata(disk.metadata.get("warm-start").and_then(|v| v.as_str()))
    }
}
/// The config key (`[lago] warm_start`) and its environment variable form.
pub const SETTING: (&str, &str) = ("lago", "warm_start");
const SETTING_ENV: &str = "LAGO__LAGO__WARM_START";

/// `[lago] warm_start`: `auto` (warm where possible, the default) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmSetting {
    Auto,
    Off,
}

impl WarmSetting {
    /// Parses the setting's value (`auto`/`on`/`yes`/`true`/`1`, `off`/`no`/
    /// `false`/`0`/`cold`); an error names the accepted values.
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" | "on" | "yes" | "true" | "1" | "warm" => Ok(WarmSetting::Auto),
            "off" | "no" | "false" | "0" | "cold" => Ok(WarmSetting::Off),
            other => Err(ProviderError::Config(format!(
                "[lago] warm_start = {other}: expected auto or off"
            ))),
        }
    }

    /// The setting from the host's configuration (which also maps
    /// `LAGO__LAGO__WARM_START`), else that variable, else `auto`.
    pub fn current() -> Result<Self> {
        let (section, key) = SETTING;
        let value = lago_plugin_api::host()
            .ok()
            .and_then(|h| h.config(section, key))
            .or_else(|| std::env::var(SETTING_ENV).ok());
        value.map_or(Ok(WarmSetting::Auto), |v| Self::parse(&v))
    }
}

/// Why `vm` cannot start warm, or None when it can. `fresh`: its disk is
/// still the overlay `init` made (see [`fresh_marker`]).
pub fn cold_reason(vm: &VmSpec, fresh: bool) -> Option<String> {
    if vm.host.is_some() {
        return Some("it runs on another host (warm images are local)".into());
    }
    if !vm.bootstrap {
        return Some("bootstrap is off, and a warm VM gets its identity like a seed".into());
    }
    if vm.nics.is_empty() {
        return Some("it has no NIC".into());
    }
    let [disk] = vm.disks.as_slice() else {
        return Some(format!(
            "it has {} disks; a warm image has the template's disk only",
            vm.disks.len()
        ));
    };
    if disk.disk_type != DiskType::Template || disk.base.is_none() {
        return Some(format!(
            "its disk '{}' is not a template overlay",
            disk.name
        ));
    }
    if disk.build.is_some() {
        return Some(format!(
            "its disk '{}' has build steps, which the template's memory does not know",
            disk.name
        ));
    }
    if AgentProtocol::of(vm).is_none() {
        return Some(format!(
            "its template has no identity agent for warm starts (template metadata \"warm-start\": \"{}\")",
            AgentProtocol::NAMES[0]
        ));
    }
    if disk.template_type.as_deref() == Some("qcow2") {
        return Some(format!(
            "its disk '{}' is based on an image outside the template store",
            disk.name
        ));
    }
    if !fresh {
        return Some("its disk has been used since init (only a fresh disk starts warm)".into());
    }
    None
}

/// The marker `prepare` leaves beside a VM whose disk is a fresh template
/// overlay; the first start of the VM (warm or cold) removes it.
pub fn fresh_marker(env: &EnvSpec, vm: &VmSpec) -> PathBuf {
    env.prefix
        .images_dir()
        .join(format!("{}.warm-fresh", vm.name))
}

/// The marker a warm start of `vm` holds locked (`flock`) while it
/// restores the VM and hands it its identity. Found unlocked, the start was
/// killed half-way: its domain has no identity and must go (see
/// `LibvirtSession::drop_abandoned_warm_start`).
pub fn restoring_marker(env: &EnvSpec, vm: &VmSpec) -> PathBuf {
    env.prefix
        .images_dir()
        .join(format!("{}.warm-restoring", vm.name))
}

/// Where a warm start keeps the VM's fresh overlay while the VM's disk is
/// the warm image's copy, so that a failed or abandoned start puts it back
/// without needing the template (`<disk>.fresh-overlay`).
pub fn fresh_overlay_backup(disk: &Path) -> PathBuf {
    disk.with_extension("fresh-overlay")
}

/// Records how `vm` started last (`warm`, or `cold: reason`) where
/// `lago status` reads it ([`PrefixInfo::last_start_path`](lago_plugin_api::spec::PrefixInfo::last_start_path)).
pub fn record_last_start(env: &EnvSpec, vm: &VmSpec, how: &str) -> Result<()> {
    let path = env.prefix.last_start_path(&vm.name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ProviderError::io("creating the warm-start records", dir, e))?;
    }
    std::fs::write(&path, format!("{how}\n"))
        .map_err(|e| ProviderError::io("recording the VM's last start", &path, e))
}

/// What a warm image is made for: equal keys, equal images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmKey {
    /// The template image in the store (the warm images live beside it).
    pub template: PathBuf,
    /// Its sha1, from the store's `.hash` record.
    pub template_sha1: String,
    /// The domain XML of the shape (identity replaced by placeholders).
    pub shape_xml: String,
    /// `virConnectGetVersion` (QEMU) and `virConnectGetLibVersion`.
    pub qemu_version: u32,
    pub libvirt_version: u32,
    /// The template file's size and modification time (`SIZE MTIME_NS`):
    /// a store image changed in place without a new `.hash` still makes
    /// another key.
    pub template_stamp: String,
}

impl WarmKey {
    /// The key as text (written to `key.txt` beside the image).
    pub fn describe(&self) -> String {
        format!(
            "lago warm image format {FORMAT_VERSION}\ntemplate {}\ntemplate sha1 {}\ntemplate file {}\nqemu {}\nlibvirt {}\n\n{}\n",
            self.template.display(),
            self.template_sha1,
            self.template_stamp,
            self.qemu_version,
            self.libvirt_version,
            self.shape_xml
        )
    }

    /// sha1 (hex) of [`describe`](Self::describe).
    pub fn digest(&self) -> String {
        let mut h = Sha1::new();
        h.update(self.describe().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The folder of this key's warm images: `<template>.warm`.
    pub fn store_dir(&self) -> PathBuf {
        let mut name = self
            .template
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".warm");
        self.template.with_file_name(name)
    }

    /// The warm image of this key (it may not exist yet).
    pub fn image(&self) -> WarmImage {
        WarmImage {
            dir: self.store_dir().join(self.digest()),
        }
    }
}

/// `SIZE MTIME_NS` of the template file (see [`WarmKey::template_stamp`]).
pub fn template_stamp(template: &Path) -> Result<String> {
    let meta = std::fs::metadata(template)
        .map_err(|e| ProviderError::io("reading the template's size and time", template, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{} {mtime}", meta.len()))
}

/// The template's sha1 recorded by the store (`<image>.hash`).
pub fn template_sha1(template: &Path) -> Result<String> {
    let mut name = template
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".hash");
    let path = template.with_file_name(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ProviderError::io("reading the template's sha1", &path, e))?;
    let hash = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if hash.len() != 40 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ProviderError::Spec(format!(
            "{}: not a sha1 ({hash:?})",
            path.display()
        )));
    }
    Ok(hash)
}

/// One warm image on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmImage {
    pub dir: PathBuf,
}

impl WarmImage {
    /// The libvirt save image.
    pub fn memory(&self) -> PathBuf {
        self.dir.join("memory.sav")
    }
    /// The frozen overlay (backed by the template) the memory was saved with.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    /// The key it was made for (`key.txt`).
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("key.txt")
    }
    /// Complete and made for `key`: both files are there (the folder is
    /// renamed into place last) and `key.txt` is `key`'s description. A
    /// folder that exists but is not this is damaged (a file deleted or
    /// edited since) and is made again.
    pub fn is_complete_for(&self, key: &WarmKey) -> bool {
        self.memory().is_file()
            && self.disk().is_file()
            && std::fs::read_to_string(self.key_file()).is_ok_and(|k| k == key.describe())
    }
    /// The folder an image is made in before it is renamed into place.
    pub fn staging(&self) -> PathBuf {
        self.dir.with_extension("tmp")
    }
    /// Held while the image is made: two starts make it once.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.with_extension("lock")
    }

    /// Takes the image's lock if no other process holds it (None when one
    /// does), creating the store folder.
    pub fn try_lock(&self) -> Result<Option<File>> {
        let f = self.lock_file()?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(ProviderError::io(
                "locking the warm image",
                self.lock_path(),
                e,
            )),
        }
    }

    /// Takes the image's lock (blocking), creating the store folder.
    pub fn lock(&self) -> Result<File> {
        let f = self.lock_file()?;
        f.lock()
            .map_err(|e| ProviderError::io("locking the warm image", self.lock_path(), e))?;
        Ok(f)
    }

    fn lock_file(&self) -> Result<File> {
        let path = self.lock_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ProviderError::io("creating the warm image folder", dir, e))?;
        }
        open_lock_file(&path)
    }
}

/// Removes the warm images of the template store that can never be
/// restored again, after a new one was made for `current` (a rare event, so
/// its cost does not matter): in `current`'s folder, images made by another
/// QEMU, libvirt or warm format, and unfinished ones nobody is making;
/// anywhere in the store, the warm images of a template whose store image
/// is gone. Only what lago made is touched: in a folder `<name>.warm`,
/// folders named by a sha1 (`.tmp` for unfinished ones) whose `key.txt`
/// starts as lago writes it; an image whose lock another process holds
/// stays. Returns the folders removed; one that cannot be removed is logged
/// and skipped.
pub fn prune_stale(current: &WarmKey) -> Vec<PathBuf> {
    let Some(store) = current.template.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(store) else {
        return Vec::new();
    };
    let described = current.describe();
    let now = versions(&described);
    let mut removed = Vec::new();
    for dir in entries.flatten().map(|e| e.path()) {
        let Some(template) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".warm"))
        else {
            continue;
        };
        let template_gone = !store.join(template).exists();
        if !template_gone && dir != current.store_dir() {
            continue;
        }
        let Ok(images) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in images.flatten().map(|e| e.path()) {
            let Some((sha1, unfinished)) = image_folder_name(&path) else {
                continue;
            };
            let key = std::fs::read_to_string(path.join("key.txt")).ok();
            let stale =
                template_gone || unfinished || key.as_deref().is_some_and(|k| versions(k) != now);
            let made_by_lago = unfinished
                || key
                    .as_deref()
                    .is_some_and(|k| k.starts_with("lago warm image format "));
            if stale && made_by_lago && remove_unlocked(&dir.join(sha1), &path) {
                removed.push(path);
            }
        }
        if template_gone {
            // only once empty: anything else in it stays
            let _ = std::fs::remove_dir(&dir);
        }
    }
    removed
}

/// The lines of a key that no later start can match once they changed.
fn versions(key: &str) -> Vec<&str> {
    key.lines()
        .filter(|l| {
            l.starts_with("lago warm image format ")
                || l.starts_with("qemu ")
                || l.starts_with("libvirt ")
        })
        .collect()
}

/// `(sha1, unfinished)` of a warm image folder `<sha1>` or `<sha1>.tmp`.
fn image_folder_name(path: &Path) -> Option<(&str, bool)> {
    let name = path.file_name()?.to_str()?;
    let (sha1, unfinished) = match name.strip_suffix(".tmp") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let is_sha1 = sha1.len() == 40 && sha1.chars().all(|c| c.is_ascii_hexdigit());
    (is_sha1 && path.is_dir()).then_some((sha1, unfinished))
}

/// Removes `path` (an image folder of `image`) unless another process holds
/// `image`'s lock (it is making or using it); true when removed.
fn remove_unlocked(image: &Path, path: &Path) -> bool {
    let img = WarmImage {
        dir: image.to_path_buf(),
    };
    let Ok(Some(_lock)) = img.try_lock() else {
        return false;
    };
    match std::fs::remove_dir_all(path) {
        Ok(()) => {
            if !img.dir.exists() && !img.staging().exists() {
                let _ = std::fs::remove_file(img.lock_path());
            }
            true
        }
        Err(e) => {
            lago_plugin_api::tracing::warn!(
                "could not remove the stale warm image {}: {e}",
                path.display()
            );
            false
        }
    }
}

/// Opens (creating it, never truncating) a file used only for its `flock`.
pub fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ProviderError::io("opening the lock file", path, e))
}

/// The bake domain's MAC of NIC `i` (locally made, never a clone's).
pub fn bake_mac(digest: &str, i: usize) -> String {
    let b = |at: usize| digest.get(at..at + 2).unwrap_or("00");
    format!("52:54:00:{}:{}:{:02x}", b(0), b(2), i & 0xff)
}

/// Placeholders of the shape XML.
pub const SHAPE_NAME: &str = "lago-warm-shape";
pub const SHAPE_DIR: &str = "/lago-warm-shape";

/// The shape of `vm`: the same VM with placeholder identity (libvirt name,
/// disk path, MACs, network names): its domain XML is part of the key.
pub fn shape_of(env: &EnvSpec, vm: &VmSpec) -> (EnvSpec, VmSpec) {
    let mut env = env.clone();
    let mut vm = vm.clone();
    vm.name = SHAPE_NAME.into();
    vm.libvirt_name = SHAPE_NAME.into();
    for d in &mut vm.disks {
        d.path = Some(Path::new(SHAPE_DIR).join(format!("{}.qcow2", d.name)));
    }
    for (i, nic) in vm.nics.iter_mut().enumerate() {
        nic.mac = format!("52:54:00:00:00:{:02x}", i & 0xff);
        if let Some(net) = env.nets.get_mut(&nic.net) {
            net.libvirt_name = format!("{SHAPE_NAME}-net");
        }
    }
    (env, vm)
}

/// A clone's identity in its domain XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneIdentity {
    pub name: String,
    pub uuid: String,
    /// The path of the VM's (first and only) disk.
    pub disk: PathBuf,
    /// Per NIC, in order: (MAC, libvirt network name).
    pub nics: Vec<(String, String)>,
    pub console_log: PathBuf,
}

/// The saved domain XML with a clone's identity: name, UUID, the first
/// disk's source, each NIC's MAC and network, the serial log; host paths of
/// unix channels and ptys are dropped (libvirt makes new ones). Everything
/// else (the ABI QEMU's state depends on) is kept byte for byte.
pub fn clone_xml(saved: &str, id: &CloneIdentity) -> Result<String> {
    let bad = |why: String| ProviderError::Spec(format!("the warm image's domain XML: {why}"));
    let doc = roxmltree::Document::parse(saved).map_err(|e| bad(e.to_string()))?;
    let root = doc.root_element();
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let esc = crate::xml::escape;
    let text_of = |parent: roxmltree::Node, tag: &str| {
        parent
            .children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.first_child().filter(|c| c.is_text()))
            .map(|t| t.range())
    };
    edits.push((
        text_of(root, "name").ok_or_else(|| bad("no <name>".into()))?,
        esc(&id.name),
    ));
    if let Some(r) = text_of(root, "uuid") {
        edits.push((r, esc(&id.uuid)));
    }
    let devices = root
        .children()
        .find(|n| n.has_tag_name("devices"))
        .ok_or_else(|| bad("no <devices>".into()))?;
    let attr_value = |n: roxmltree::Node, child: &str, attr: &str| {
        n.children()
            .find(|c| c.has_tag_name(child))
            .and_then(|c| c.attributes().find(|a| a.name() == attr))
            .map(|a| a.range_value())
    };
    let disk = devices
        .children()
        .find(|n| n.has_tag_name("disk") && n.attribute("device") == Some("disk"))
        .ok_or_else(|| bad("no disk".into()))?;
    edits.push((
        attr_value(disk, "source", "file")
            .ok_or_else(|| bad("the disk has no source file".into()))?,
        esc(&id.disk.display().to_string()),
    ));
    let ifaces: Vec<_> = devices
        .children()
        .filter(|n| n.has_tag_name("interface"))
        .collect();
    if ifaces.len() != id.nics.len() {
        return Err(bad(format!(
            "{} NICs, the VM has {}",
            ifaces.len(),
            id.nics.len()
        )));
    }
    for (iface, (mac, net)) in ifaces.iter().zip(&id.nics) {
        edits.push((
            attr_value(*iface, "mac", "address").ok_or_else(|| bad("a NIC without MAC".into()))?,
            esc(mac),
        ));
        edits.push((
            attr_value(*iface, "source", "network")
                .ok_or_else(|| bad("a NIC not on a network".into()))?,
            esc(net),
        ));
    }
    for dev in devices.children().filter(|n| n.is_element()) {
        match dev.tag_name().name() {
            "serial" => {
                if let Some(r) = attr_value(dev, "log", "file") {
                    edits.push((r, esc(&id.console_log.display().to_string())));
                }
            }
            "channel" | "console" => {}
            _ => continue,
        }
        // host paths libvirt made for the bake domain: a unix channel's
        // socket, a pty's device
        let is_auto = matches!(dev.attribute("type"), Some("unix" | "pty"));
        if let Some(src) = dev.children().find(|c| c.has_tag_name("source")) {
            if is_auto {
                if let Some(a) = src.attributes().find(|a| a.name() == "path") {
                    edits.push((a.range(), String::new()));
                }
            }
        }
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = saved.to_string();
    for (r, s) in edits {
        out.replace_range(r, &s);
    }
    Ok(out)
}

/// A NIC of a clone as its agent is told: its MAC and, for
/// [`AgentProtocol::V2`] on a DHCP network, the address DHCP will give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIdentity {
    pub mac: String,
    pub address: Option<NicAddress>,
}

/// A NIC's planned IPv4 address as its DHCP lease gives it: address and
/// prefix length, the router (libvirt's dnsmasq, also the DNS server) and
/// the DNS domain of a management network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicAddress {
    pub ip: std::net::Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<std::net::Ipv4Addr>,
    pub domain: Option<String>,
}

/// The NICs of `vm` as [`identity_message`] takes them: addresses only for
/// `protocol` V2, and only where the network hands out the planned address
/// by DHCP (a NAT network with a DHCP range and a planned IP).
pub fn nic_identities(env: &EnvSpec, vm: &VmSpec, protocol: AgentProtocol) -> Vec<NicIdentity> {
    vm.nics
        .iter()
        .map(|nic| {
            let net = env.nets.get(&nic.net);
            let address = match (protocol, net, nic.ip) {
                (AgentProtocol::V2, Some(net), Some(ip))
                    if net.net_type == NetType::Nat && net.dhcp.is_some() =>
                {
                    Some(NicAddress {
                        ip,
                        prefix_len: net.prefix_len,
                        router: net.gw,
                        // the DHCP domain option: the management net's only
                        domain: net
                            .dns_domain_name
                            .clone()
                            .filter(|d| net.management && is_domain_name(d)),
                    })
                }
                _ => None,
            };
            NicIdentity {
                mac: nic.mac.to_ascii_lowercase(),
                address,
            }
        })
        .collect()
}

/// A DNS domain the agent can take as one word: letters, digits, `-`, `.`.
fn is_domain_name(d: &str) -> bool {
    !d.is_empty()
        && d != "-"
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The identity message for the guest's agent (protocol in
/// scripts/template/rootfs/etc/lago/warm-agent): `identity`, the items,
/// `end`. `random` is host randomness for the guest's pool.
pub fn identity_message(
    seed: &SeedData,
    nics: &[NicIdentity],
    machine_id: &str,
    random: &[u8],
    now: SystemTime,
) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut msg = format!(
        "identity\ntime {secs}\nrandom {}\nmachine-id {machine_id}\n",
        b64(random)
    );
    for nic in nics {
        msg.push_str(&format!("mac {}", nic.mac.to_ascii_lowercase()));
        if let Some(a) = &nic.address {
            let router = a.router.map_or("-".to_string(), |r| r.to_string());
            let domain = a.domain.as_deref().unwrap_or("-");
            msg.push_str(&format!(" {}/{} {router} {domain}", a.ip, a.prefix_len));
        }
        msg.push('\n');
    }
    msg.push_str(&format!("meta-data {}\n", b64(seed.meta_data().as_bytes())));
    msg.push_str(&format!("user-data {}\n", b64(seed.user_data().as_bytes())));
    msg.push_str("end\n");
    msg
}

/// Sends `message` on the domain's identity channel and returns the agent's
/// one-line answer (check it with [`expect_answer`]), waiting at most
/// `timeout`. Runs on its own thread with a blocking stream: on time-out
/// the caller destroys the domain, which ends it.
pub fn exchange(
    conn: &virt::connect::Connect,
    domain: &str,
    message: &str,
    timeout: Duration,
) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (conn, domain_name, message) = (conn.clone(), domain.to_string(), message.to_string());
    std::thread::spawn(move || {
        let _ = tx.send(exchange_blocking(&conn, &domain_name, &message));
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout(format!(
            "the guest's identity agent of {domain} did not answer within {} s",
            timeout.as_secs()
        ))),
    }
}

fn exchange_blocking(conn: &virt::connect::Connect, domain: &str, message: &str) -> Result<String> {
    let lv = |what: &str| {
        let what = format!("{what} (identity channel of {domain})");
        move |e| ProviderError::libvirt(what, e)
    };
    let dom = conn
        .lookup_domain_by_name(domain)
        .map_err(lv("looking up"))?;
    let stream = virt::stream::Stream::new(conn, 0).map_err(lv("opening a stream"))?;
    dom.open_channel(
        Some(IDENTITY_CHANNEL),
        &stream,
        virt::sys::VIR_DOMAIN_CHANNEL_FORCE,
    )
    .map_err(lv("opening"))?;
    let mut sent = 0;
    let bytes = message.as_bytes();
    while sent < bytes.len() {
        let n = stream.send(&bytes[sent..]).map_err(lv("writing"))?;
        if n <= 0 {
            return Err(ProviderError::Spec(format!(
                "the identity channel of {domain} closed while lago wrote"
            )));
        }
        sent += n as usize;
    }
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = stream.recv(&mut buf).map_err(lv("reading"))?;
        if n <= 0 {
            let _ = stream.abort();
            return Err(ProviderError::Spec(format!(
                "the identity channel of {domain} closed before the agent answered"
            )));
        }
        line.extend_from_slice(&buf[..n as usize]);
        if let Some(end) = line.iter().position(|&c| c == b'\n') {
            let answer = String::from_utf8_lossy(&line[..end]).trim().to_string();
            let _ = stream.finish();
            return Ok(answer);
        }
        if line.len() > 4096 {
            let _ = stream.abort();
            return Err(ProviderError::Spec(format!(
                "the identity agent of {domain} sent a line longer than 4 KiB"
            )));
        }
    }
}

/// Checks the agent's answer (from [`exchange`]).
pub fn expect_answer(domain: &str, got: Result<String>, want: &str) -> Result<()> {
    let got = got?;
    if got == want {
        return Ok(());
    }
    // the guest's words are data: shown escaped and cut short
    let shown: String = got.escape_debug().take(200).collect();
    Err(ProviderError::Spec(format!(
        "the identity agent of {domain} answered \"{shown}\", not \"{want}\""
    )))
}

/// `virDomainSave` (no safe wrapper in `virt` 0.5): saves the running
/// domain's memory to `path` (written by libvirtd) and stops it.
pub fn save_domain(dom: &virt::domain::Domain, path: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ProviderError::Spec(format!("{}: a path with a NUL byte", path.display())))?;
    // SAFETY: `dom` is a live domain handle for the duration of the call and
    // `c` a NUL-terminated string that outlives it; virDomainSave only
    // reads both.
    let rc = unsafe { virt::sys::virDomainSave(dom.as_ptr(), c.as_ptr()) };
    if rc < 0 {
        return Err(ProviderError::libvirt(
            format!("saving the warm image to {}", path.display()),
            virt::error::Error::last_error(),
        ));
    }
    Ok(())
}

/// A fresh machine-id (32 hex digits) and 64 bytes for the guest's pool.
pub fn randomness() -> (String, Vec<u8>) {
    use rand::RngCore;
    let mut rng = rand::rngs::OsRng;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let mut pool = vec![0u8; 64];
    rng.fill_bytes(&mut pool);
    (id.iter().map(|b| format!("{b:02x}")).collect(), pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = r#"<domain type='qemu'>
  <name>lago-warm-0123456789ab</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <genid>aaaaaaaa-2222-3333-4444-555555555555</genid>
  <memory unit='KiB'>262144</memory>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file='/store/t.warm/abc.tmp/disk.qcow2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/store/t'/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:01:23:00'/>
      <source network='bake-net'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <log file='/store/t.warm/abc.tmp/console.log' append='off'/>
      <target type='isa-serial' port='0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
    </console>
    <channel type='unix'>
      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-3-lago-warm-01/org.lago.id.0'/>
      <target type='virtio' name='org.lago.id.0'/>
    </channel>
  </devices>
</domain>"#;

    fn id() -> CloneIdentity {
        CloneIdentity {
            name: "a1b2c3d4-vm1".into(),
            uuid: "99999999-8888-7777-6666-555555555555".into(),
            disk: PathBuf::from("/prefix/images/vm1_root.qcow2"),
            nics: vec![("52:54:00:aa:bb:01".into(), "a1b2c3d4-net & co".into())],
            console_log: PathBuf::from("/prefix/logs/vm1.console.log"),
        }
    }

    #[test]
    fn clone_xml_rewrites_identity_only() {
        let out = clone_xml(SAVED, &id()).expect("rewrites");
        let doc = roxmltree::Document::parse(&out).expect("still XML");
        let root = doc.root_element();
        let text = |tag: &str| {
            root.descendants()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        assert_eq!(text("name").as_deref(), Some("a1b2c3d4-vm1"));
        assert_eq!(
            text("uuid").as_deref(),
            Some("99999999-8888-7777-6666-555555555555")
        );
        // the ABI parts are untouched
        assert!(out.contains("machine='pc-i440fx-7.2'"));
        assert!(out.contains("<genid>aaaaaaaa-2222-3333-4444-555555555555</genid>"));
        assert!(out.contains("<source file='/prefix/images/vm1_root.qcow2'/>"));
        // the backing store (the template) stays
        assert!(out.contains("<source file='/store/t'/>"));
        assert!(out.contains("<mac address='52:54:00:aa:bb:01'/>"));
        // attribute values are escaped
        assert!(out.contains("network='a1b2c3d4-net &amp; co'"));
        assert!(out.contains("<log file='/prefix/logs/vm1.console.log' append='off'/>"));
        assert!(!out.contains("/dev/pts/3'/>"), "{out}");
        assert!(!out.contains("domain-3-lago-warm"), "{out}");
        assert!(!out.contains("abc.tmp"));
        assert!(!out.contains("bake-net"));
    }

    #[test]
    fn clone_xml_refuses_another_nic_count() {
        let mut two = id();
        two.nics.push(("52:54:00:aa:bb:02".into(), "n2".into()));
        let e = clone_xml(SAVED, &two).expect_err("2 NICs");
        assert!(e.to_string().contains("1 NICs, the VM has 2"), "{e}");
        assert!(clone_xml("<domain/>", &id()).is_err());
        assert!(clone_xml("not xml", &id()).is_err());
    }

    fn key() -> WarmKey {
        WarmKey {
            template: PathBuf::from("/var/lib/lago/store/embedded:lago-tiny:v1"),
            template_sha1: "0123456789abcdef0123456789abcdef01234567".into(),
            shape_xml: "<domain><memory>256</memory></domain>".into(),
            qemu_version: 7_002_000,
            libvirt_version: 9_000_000,
            template_stamp: "15938048 1765000000000000000".into(),
        }
    }

    #[test]
    fn key_changes_with_each_input() {
        let base = key().digest();
        assert_eq!(base.len(), 40);
        assert_eq!(base, key().digest(), "stable");
        let mut k = key();
        k.template_sha1 = "1".repeat(40);
        assert_ne!(k.digest(), base);
        let mut k = key();
        k.shape_xml = "<domain><memory>512</memory></domain>".into();
        assert_ne!(k.digest(), base);
        let mut k = key();
        k.qemu_version += 1;
        assert_ne!(k.digest(), base);
        let mut k = key();
        k.libvirt_version += 1;
        assert_ne!(k.digest(), base);
        let mut k = key();
        k.template_stamp = "15938048 1765000000000000001".into();
        assert_ne!(k.digest(), base, "the template changed in place");
        assert!(key()
            .describe()
            .contains(&format!("format {FORMAT_VERSION}")));
    }

    #[test]
    fn image_lives_beside_the_template() {
        let k = key();
        let img = k.image();
        assert_eq!(
            img.dir,
            PathBuf::from(format!(
                "/var/lib/lago/store/embedded:lago-tiny:v1.warm/{}",
                k.digest()
            ))
        );
        assert!(img.staging().to_string_lossy().ends_with(".tmp"));
        assert!(img.lock_path().to_string_lossy().ends_with(".lock"));
        assert!(img.memory().ends_with("memory.sav"));
    }

    #[test]
    fn template_sha1_reads_the_store_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("repo:t:v1");
        std::fs::write(
            dir.path().join("repo:t:v1.hash"),
            "ABCDEF0123456789abcdef0123456789abcdef01\n",
        )
        .expect("write");
        assert_eq!(
            template_sha1(&t).expect("reads"),
            "abcdef0123456789abcdef0123456789abcdef01"
        );
        std::fs::write(dir.path().join("repo:t:v1.hash"), "nope").expect("write");
        assert!(template_sha1(&t).is_err());
        assert!(template_sha1(&dir.path().join("other")).is_err());
    }

    #[test]
    fn prune_removes_only_stale_images_lago_made() {
        let store = tempfile::tempdir().expect("tmp");
        let template = store.path().join("repo:t:v1");
        std::fs::write(&template, b"qcow2").expect("template");
        let current = WarmKey {
            template: template.clone(),
            ..key()
        };
        let old_qemu = WarmKey {
            qemu_version: current.qemu_version - 1,
            shape_xml: "<domain>old</domain>".into(),
            ..current.clone()
        };
        let other_shape = WarmKey {
            shape_xml: "<domain>other</domain>".into(),
            ..current.clone()
        };
        let make = |k: &WarmKey| {
            let dir = k.image().dir;
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("key.txt"), k.describe()).expect("key");
            std::fs::write(dir.join("memory.sav"), b"m").expect("mem");
            dir
        };
        let now = make(&current);
        let stale = make(&old_qemu);
        let kept = make(&other_shape);
        let unfinished = current.store_dir().join(format!("{}.tmp", "a".repeat(40)));
        std::fs::create_dir_all(&unfinished).expect("tmp");
        let foreign = current.store_dir().join("my-notes");
        std::fs::create_dir_all(&foreign).expect("foreign");
        let not_ours = current.store_dir().join("b".repeat(40));
        std::fs::create_dir_all(&not_ours).expect("not ours");
        std::fs::write(not_ours.join("key.txt"), "something else").expect("key");
        // a gone template's images
        let gone = WarmKey {
            template: store.path().join("repo:gone:v1"),
            ..current.clone()
        };
        let orphan = make(&gone);
        // an image being made by another process (its lock held) stays
        let busy_key = WarmKey {
            libvirt_version: 1,
            ..current.clone()
        };
        let busy = make(&busy_key);
        let held = busy_key.image().lock().expect("lock");

        let mut removed = prune_stale(&current);
        removed.sort();
        let mut want = vec![stale.clone(), unfinished.clone(), orphan.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(now.exists() && kept.exists() && foreign.exists() && not_ours.exists());
        assert!(busy.exists(), "a locked image stays");
        assert!(
            !gone.store_dir().exists(),
            "the gone template's empty folder goes"
        );
        assert!(template.exists());
        drop(held);
        // Another test's child, forked while the lock was held, shares the
        // lock until it execs: ask again for a while.
        let mut removed = prune_stale(&current);
        for _ in 0..100 {
            if !removed.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            removed = prune_stale(&current);
        }
        assert_eq!(removed, vec![busy]);
    }

    #[test]
    fn setting_values() {
        assert_eq!(WarmSetting::parse("auto").expect("ok"), WarmSetting::Auto);
        assert_eq!(WarmSetting::parse(" OFF ").expect("ok"), WarmSetting::Off);
        let e = WarmSetting::parse("sometimes").expect_err("bad");
        assert!(e.to_string().contains("expected auto or off"));
    }

    #[test]
    fn identity_message_format() {
        let seed = SeedData {
            instance_id: "u-vm1".into(),
            hostname: "vm1".into(),
            authorized_keys: vec!["ssh-ed25519 AAAA me".into()],
            root_password: None,
            host_key: None,
        };
        let nics = [
            NicIdentity {
                mac: "52:54:00:AA:BB:01".into(),
                address: None,
            },
            NicIdentity {
                mac: "52:54:00:aa:bb:02".into(),
                address: Some(NicAddress {
                    ip: "192.168.200.3".parse().expect("ip"),
                    prefix_len: 24,
                    router: Some("192.168.200.1".parse().expect("ip")),
                    domain: None,
                }),
            },
        ];
        let msg = identity_message(
            &seed,
            &nics,
            &"0".repeat(32),
            &[1, 2, 3],
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "identity");
        assert_eq!(lines[1], "time 1700000000");
        assert_eq!(lines[2], "random AQID");
        assert_eq!(lines[4], "mac 52:54:00:aa:bb:01");
        assert_eq!(
            lines[5],
            "mac 52:54:00:aa:bb:02 192.168.200.3/24 192.168.200.1 -"
        );
        assert!(lines[6].starts_with("meta-data "));
        let md = base64::engine::general_purpose::STANDARD
            .decode(lines[6].trim_start_matches("meta-data "))
            .expect("base64");
        assert!(String::from_utf8_lossy(&md).contains("vm1"));
        assert_eq!(*lines.last().expect("end"), "end");
        // one line per item: nothing the guest reads spans lines
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn nic_addresses_only_for_v2_on_dhcp_nets() {
        let env: EnvSpec = serde_json::from_value(serde_json::json!({
            "prefix": {"name": "default", "path": "/p", "uuid": "u"},
            "nets": {
                "mgmt": {"name": "mgmt", "type": "nat", "management": true, "libvirt_name": "x-mgmt",
                         "bridge": "br0", "gw": "192.168.200.1", "prefix_len": 24,
                         "dhcp": {"start": "192.168.200.100", "end": "192.168.200.254"}, "dns_domain_name": "lago.local"},
                "iso": {"name": "iso", "type": "nat", "management": false, "libvirt_name": "x-iso",
                        "bridge": "br1", "gw": "192.168.201.1", "prefix_len": 24},
                "evil": {"name": "evil", "type": "nat", "management": true, "libvirt_name": "x-evil",
                         "bridge": "br2", "gw": "192.168.202.1", "prefix_len": 24,
                         "dhcp": {"start": "192.168.202.100", "end": "192.168.202.254"}, "dns_domain_name": "a b"}
            },
            "vms": {}
        }))
        .expect("env");
        let vm: VmSpec = serde_json::from_value(serde_json::json!({
            "name": "vm1", "libvirt_name": "x-vm1", "memory": 256, "vcpu": 1,
            "nics": [{"net": "mgmt", "ip": "192.168.200.3", "mac": "52:54:00:00:00:01"},
                     {"net": "iso", "ip": "192.168.201.3", "mac": "52:54:00:00:00:02"},
                     {"net": "mgmt", "mac": "52:54:00:00:00:03"},
                     {"net": "evil", "ip": "192.168.202.3", "mac": "52:54:00:00:00:04"}],
            "disks": [], "mgmt_net": "mgmt", "vm-provider": "local-libvirt", "vm-type": "default"
        }))
        .expect("vm");
        let v2 = nic_identities(&env, &vm, AgentProtocol::V2);
        let a = v2[0].address.as_ref().expect("dhcp net, planned ip");
        assert_eq!(a.ip.to_string(), "192.168.200.3");
        assert_eq!(
            a.router.map(|r| r.to_string()).as_deref(),
            Some("192.168.200.1")
        );
        assert_eq!(a.domain.as_deref(), Some("lago.local"));
        assert_eq!(v2[1].address, None, "no DHCP on that net");
        assert_eq!(v2[2].address, None, "no planned IP");
        let evil = v2[3].address.as_ref().expect("address");
        assert_eq!(
            evil.domain, None,
            "a domain that is not one word is not sent"
        );
        let v1 = nic_identities(&env, &vm, AgentProtocol::V1);
        assert!(v1.iter().all(|n| n.address.is_none()));
        assert_eq!(v1.len(), 4);
    }

    #[test]
    fn agent_protocols() {
        assert_eq!(
            AgentProtocol::from_metadata(Some("lago-warm-1")),
            Some(AgentProtocol::V1)
        );
        assert_eq!(
            AgentProtocol::from_metadata(Some("lago-warm-2")),
            Some(AgentProtocol::V2)
        );
        assert_eq!(AgentProtocol::from_metadata(Some("lago-warm-3")), None);
        assert_eq!(AgentProtocol::from_metadata(None), None);
    }

    #[test]
    fn answers() {
        assert!(expect_answer("d", Ok("ok".into()), "ok").is_ok());
        let e = expect_answer("d", Ok("error bad mac\u{1b}[2J".into()), "ok").expect_err("no");
        assert!(e.to_string().contains("error bad mac\\u{1b}[2J"), "{e}");
    }

    #[test]
    fn cold_reasons() {
        let vm: VmSpec = serde_json::from_value(serde_json::json!({
            "name": "vm1", "libvirt_name": "x-vm1", "memory": 256, "vcpu": 1,
            "nics": [{"net": "n", "mac": "52:54:00:00:00:01"}],
            "disks": [{"type": "template", "name": "root", "dev": "vda", "format": "qcow2",
                       "path": "/p/images/vm1_root.qcow2", "base": "/store/t", "template_type": "lago",
                       "metadata": {"warm-start": "lago-warm-1"}}],
            "mgmt_net": "n", "vm-provider": "local-libvirt", "vm-type": "default"
        }))
        .expect("spec");
        assert_eq!(cold_reason(&vm, true), None);
        assert!(cold_reason(&vm, false)
            .expect("used")
            .contains("used since init"));
        let mut v = vm.clone();
        v.bootstrap = false;
        assert!(cold_reason(&v, true).expect("r").contains("bootstrap"));
        let mut v = vm.clone();
        v.disks[0].build = Some(serde_json::json!([{"virt-customize": {}}]));
        assert!(cold_reason(&v, true).expect("r").contains("build steps"));
        let mut v = vm.clone();
        v.host = Some("h2".into());
        assert!(cold_reason(&v, true).expect("r").contains("another host"));
        let mut v = vm.clone();
        v.disks.push(v.disks[0].clone());
        assert!(cold_reason(&v, true).expect("r").contains("2 disks"));
        let mut v = vm.clone();
        v.disks[0].metadata.clear();
        assert!(cold_reason(&v, true)
            .expect("r")
            .contains("no identity agent"));
        let mut v = vm;
        v.nics.clear();
        assert!(cold_reason(&v, true).expect("r").contains("no NIC"));
    }
}
