//! `lago export`: the VMs' disks written into a folder by their providers'
//! `export_disks`, and an init file that describes the same VMs and
//! networks with their disks pointing at the exported images.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lago_plugin_api::spec::{DiskSpec, DiskType, EnvSpec, Extra, NetSpec, VmSpec, MAKE_A_COPY_KEY};
use serde_json::{json, Map, Value};

use super::{Env, VmState, SNAPSHOTS_KEY};
use crate::error::Error;
use crate::initfile::InitFile;
use crate::templates::{
    self,
    exported::{LAYERED_KEY, TEMPLATE_SHA1_KEY},
};

/// A mutex's data, also after a panic elsewhere (the data stays valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a provider already compressed this file.
fn is_xz_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "xz")
}

/// What `lago export` was asked for (Lago's options).
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// `-n`: only these VMs (all when empty).
    pub vms: Vec<String>,
    /// `-s`: merge each disk with its backing chain.
    pub standalone: bool,
    /// `-c`: compress each exported image with xz (`<vm>_<disk>.qcow2.xz`).
    pub compress: bool,
    /// `-d`: where the images and the init file go.
    pub dst_dir: PathBuf,
    /// `--init-file-name` (default `LagoInitFile`).
    pub init_file_name: String,
    /// `--collect-only`: say what would be exported, write nothing.
    pub collect_only: bool,
    /// `--without-threads` clears it: one VM at a time.
    pub with_threads: bool,
}

/// The exported image's file name: `<vm>_<disk>.qcow2` as the provider
/// writes it, `.xz` added when compressed.
fn exported_name(vm: &VmSpec, disk: &DiskSpec, compress: bool) -> String {
    let xz = if compress { ".xz" } else { "" };
    format!("{}_{}.qcow2{xz}", vm.name, disk.name)
}

/// The disks an export writes: every disk with a path but ISO images.
fn exported_disks(vm: &VmSpec) -> impl Iterator<Item = &DiskSpec> {
    vm.disks
        .iter()
        .filter(|d| d.format != "iso" && d.path.is_some())
}

/// The template an exported layer is made over: the template's name, its
/// version (from the store name `repo:template:version` of its image) and
/// the image's sha1 (the store's `.hash` beside it), or None when the disk
/// is exported merged.
fn layer_template(disk: &DiskSpec, standalone: bool) -> Option<(String, String, Option<String>)> {
    if standalone {
        return None;
    }
    let (image, _) = disk.template_image()?;
    let store_name = image.file_name()?.to_str()?.to_string();
    // `repo:template:version`, or `repo:template:version:<sha1>` (a rebuilt template)
    let mut parts = store_name.splitn(4, ':');
    let (_repo, template, version) = (parts.next()?, parts.next()?, parts.next()?);
    let mut hash_file = image.clone().into_os_string();
    hash_file.push(".hash");
    let sha1 = std::fs::read_to_string(hash_file)
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    Some((template.to_string(), version.to_string(), sha1))
}

/// An exported disk as an init file entry (see docs/cli.md, export), its
/// `path` the exported image beside the init file. A disk from a template:
/// a `template_type: qcow2` disk; for a layer, `layered: true` with the
/// template it is made over (name, version, sha1), which `init` takes from
/// its store. Any other disk (an `empty` data disk, a `file`): a `file`
/// disk with `make_a_copy`, as Lago's `generate_init` wrote it, so the
/// next environment writes to its own copy, never to the export.
fn disk_entry(vm: &VmSpec, d: &DiskSpec, standalone: bool, compress: bool) -> Value {
    let path = format!("$LAGO_INITFILE_PATH/{}", exported_name(vm, d, compress));
    if d.disk_type != DiskType::Template {
        return json!({
            "name": d.name,
            "dev": d.dev,
            "type": "file",
            (MAKE_A_COPY_KEY): true,
            "format": "qcow2",
            "path": path,
            "metadata": d.metadata,
        });
    }
    let mut e = json!({
        "name": d.name,
        "dev": d.dev,
        "type": "template",
        "template_type": "qcow2",
        "format": "qcow2",
        "path": path,
        // Required of a template disk; names the image's origin.
        "template_name": d.template_name.clone().unwrap_or_else(|| d.name.clone()),
        "metadata": d.metadata,
    });
    if let (Some((template, version, sha1)), Some(m)) =
        (layer_template(d, standalone), e.as_object_mut())
    {
        m.insert(LAYERED_KEY.into(), json!(true));
        m.insert("template_name".into(), json!(template));
        m.insert("template_version".into(), json!(version));
        if let Some(sha1) = sha1 {
            m.insert(TEMPLATE_SHA1_KEY.into(), json!(sha1));
        }
    }
    e
}

/// Key of a planned net or nic (among its free-form keys) that lists the
/// addresses the init file wrote (`gw`, `dhcp`; `ip`): an export keeps
/// them, as Lago's `generate_init` did; addresses lago chose itself are
/// leased anew by the next init.
pub const WRITTEN_KEY: &str = "lago_written";

/// Marks in the planned `env` the addresses `init` wrote ([`WRITTEN_KEY`]):
/// each net's `gw` and `dhcp`, each nic's `ip`.
pub fn mark_written(init: &InitFile, env: &mut EnvSpec) {
    let mark = |extra: &mut Extra, keys: &[(&str, bool)]| {
        let written: Vec<Value> = keys.iter().filter(|k| k.1).map(|k| json!(k.0)).collect();
        if !written.is_empty() {
            extra.insert(WRITTEN_KEY.into(), Value::Array(written));
        }
    };
    for (name, def) in &init.nets {
        if let Some(net) = env.nets.get_mut(name) {
            let keys = [("gw", def.gw.is_some()), ("dhcp", def.dhcp.is_some())];
            mark(&mut net.extra, &keys);
        }
    }
    for (name, def) in &init.domains {
        if let Some(vm) = env.domains.get_mut(name) {
            for (nic, d) in vm.nics.iter_mut().zip(&def.nics) {
                mark(&mut nic.extra, &[("ip", d.ip.is_some())]);
            }
        }
    }
}

/// Free-form keys as an init file entry (without [`WRITTEN_KEY`]), and a
/// test of whether the init file wrote `key` ([`mark_written`]).
fn user_keys(extra: &Extra) -> (Map<String, Value>, impl Fn(&str) -> bool + '_) {
    let written = move |key: &str| {
        extra
            .get(WRITTEN_KEY)
            .and_then(Value::as_array)
            .is_some_and(|keys| keys.iter().any(|k| k == key))
    };
    let keys = extra
        .iter()
        .filter(|(k, _)| *k != WRITTEN_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (keys, written)
}

/// A net as an init file entry: what the user chose (with the addresses
/// the init file wrote, as planned), not what lago planned itself
/// (addresses it chose are leased anew by the next init).
fn net_entry(net: &NetSpec) -> Value {
    let (mut m, written) = user_keys(&net.extra);
    if let (true, Some(gw)) = (written("gw"), net.gw) {
        m.insert("gw".into(), json!(gw.to_string()));
    }
    if let (true, Some(d)) = (written("dhcp"), &net.dhcp) {
        // Last octets: the pool moves with the subnet the next init leases.
        let (start, end) = (d.start.octets()[3], d.end.octets()[3]);
        m.insert("dhcp".into(), json!({"start": start, "end": end}));
    }
    m.insert("type".into(), json!(net.net_type));
    m.insert("management".into(), json!(net.management));
    if let Some(d) = &net.dns_domain_name {
        m.insert("dns_domain_name".into(), json!(d));
    }
    if let Some(mtu) = net.mtu {
        m.insert("mtu".into(), json!(mtu));
    }
    Value::Object(m)
}

/// A VM as an init file entry, its exported disks ([`disk_entry`]) based on
/// the images in the init file's folder (`$LAGO_INITFILE_PATH`): the next
/// init puts an overlay on each (on a copy in the prefix when compressed or
/// layered), so the export itself is never written to.
pub fn vm_entry(vm: &VmSpec, standalone: bool, compress: bool) -> Result<Value, Error> {
    let mut v = serde_json::to_value(vm)?;
    let Some(m) = v.as_object_mut() else {
        return Err(Error::internal("a VM spec is not an object"));
    };
    for planned in [
        "name",
        "libvirt_name",
        "mgmt_net",
        "ssh_host_key",
        SNAPSHOTS_KEY,
    ] {
        m.remove(planned);
    }
    let nics: Vec<Value> = vm
        .nics
        .iter()
        .map(|n| {
            let (mut e, written) = user_keys(&n.extra);
            e.insert("net".into(), json!(n.net));
            if let (true, Some(ip)) = (written("ip"), n.ip) {
                e.insert("ip".into(), json!(ip.to_string()));
            }
            Value::Object(e)
        })
        .collect();
    m.insert("nics".into(), Value::Array(nics));
    let disks: Vec<Value> = vm
        .disks
        .iter()
        .map(|d| {
            if d.format == "iso" || d.path.is_none() {
                return serde_json::to_value(d);
            }
            Ok(disk_entry(vm, d, standalone, compress))
        })
        .collect::<Result<_, _>>()?;
    m.insert("disks".into(), Value::Array(disks));
    Ok(v)
}

/// The folder of the export that holds the VMs' deploy scripts.
pub const EXPORTED_SCRIPTS_DIR: &str = "scripts";

/// The deploy scripts of a VM entry that live in the source prefix (init
/// copied every script there) are copied into `dst_dir/scripts/` and the
/// entry points at the copies (`$LAGO_INITFILE_PATH/scripts/NAME`), so the
/// export re-inits without its source prefix. (Lago's `generate_init`
/// dropped `deploy-scripts`; keeping them keeps what the VMs were set up
/// with.) A copy never replaces a file already there; each copy is added
/// to `files` (removed again if the export fails).
fn export_scripts(
    entry: &mut Value,
    prefix_scripts: &Path,
    dst_dir: &Path,
    files: &Mutex<Vec<PathBuf>>,
) -> Result<(), Error> {
    let Some(list) = entry
        .pointer_mut("/metadata/deploy-scripts")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let dest_dir = dst_dir.join(EXPORTED_SCRIPTS_DIR);
    for item in list.iter_mut() {
        let Some(src) = item.as_str().map(PathBuf::from) else {
            continue;
        };
        let (true, Some(name)) = (src.starts_with(prefix_scripts), src.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let dest = dest_dir.join(&name);
        // Two VMs may share one script: copied once.
        if !lock(files).contains(&dest) {
            std::fs::create_dir_all(&dest_dir)?;
            copy_new(&src, &dest)?;
            lock(files).push(dest);
        }
        *item = json!(format!("$LAGO_INITFILE_PATH/{EXPORTED_SCRIPTS_DIR}/{name}"));
    }
    Ok(())
}

/// Copy `src` to `dest`, which must not exist yet, with `src`'s permission
/// bits (no setuid, setgid or sticky bit).
fn copy_new(src: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut from = std::fs::File::open(src)?;
    let mode = std::fs::Permissions::from_mode(from.metadata()?.permissions().mode() & 0o777);
    let mut to = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::user(format!(
                "export: {} already exists (expected a destination without it)",
                dest.display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    std::io::copy(&mut from, &mut to)?;
    to.set_permissions(mode)?;
    Ok(())
}

impl Env<'_> {
    /// `lago export`: refuses running VMs (naming them); with
    /// `collect_only` returns `{VM: [disk path, ...]}` and writes nothing;
    /// else exports each VM's disks (in parallel unless `with_threads` is
    /// off), writes the init file beside them and returns
    /// `{VM: [exported path, ...]}`.
    pub(crate) fn export_vms(&self, opts: &ExportOptions) -> Result<Value, Error> {
        let vms = self.select(&opts.vms)?;
        super::default_host_only(&vms, "export")?;
        let states = self.states()?;
        let running: Vec<&str> = vms
            .iter()
            .filter(|vm| states.vms.get(&vm.name).is_some_and(VmState::is_defined))
            .map(|vm| vm.name.as_str())
            .collect();
        if !running.is_empty() {
            return Err(Error::user(format!(
                "export: VM {} must be down (lago stop) before its disks are exported",
                running.join(", ")
            )));
        }
        if opts.collect_only {
            return Ok(Value::Object(
                vms.iter()
                    .map(|vm| {
                        let paths: Vec<Value> = exported_disks(vm)
                            .filter_map(|d| d.path.as_ref())
                            .map(|p| json!(p.display().to_string()))
                            .collect();
                        (vm.name.clone(), Value::Array(paths))
                    })
                    .collect(),
            ));
        }
        std::fs::create_dir_all(&opts.dst_dir)?;
        let init_path = opts.dst_dir.join(&opts.init_file_name);
        // Never write through a file (or a planted symlink) already there;
        // checked before any disk is written.
        if init_path.symlink_metadata().is_ok() {
            return Err(Error::user(format!(
                "export: {} already exists (expected a destination without it)",
                init_path.display()
            )));
        }
        let dst = opts.dst_dir.to_string_lossy().into_owned();
        let written: Mutex<Map<String, Value>> = Mutex::new(Map::new());
        // Every file this export wrote, removed again if it fails.
        let files: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
        let export_one = |vm: &VmSpec| -> Result<(), Error> {
            let paths =
                self.provider(vm)?
                    .export_disks(vm, &dst, opts.standalone, opts.compress)?;
            let mut paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
            lock(&files).extend(paths.iter().cloned());
            if opts.compress {
                for path in paths.iter_mut().filter(|p| !is_xz_name(p)) {
                    let mut xz = path.clone().into_os_string();
                    xz.push(".xz");
                    let xz = PathBuf::from(xz);
                    let what = format!("VM {}: compressing {}", vm.name, path.display());
                    let size = templates::xz::compress(path, &xz, &what)?;
                    lock(&files).push(xz.clone());
                    tracing::info!("{what}: {size} bytes");
                    std::fs::remove_file(&*path)?;
                    *path = xz;
                }
            }
            let paths = paths.iter().map(|p| json!(p.display().to_string()));
            lock(&written).insert(vm.name.clone(), Value::Array(paths.collect()));
            Ok(())
        };
        let result = if opts.with_threads {
            self.each_vm(&vms, export_one)
        } else {
            vms.iter().try_for_each(|vm| export_one(vm))
        }
        .and_then(|()| {
            let path = opts.dst_dir.join(&opts.init_file_name);
            self.write_init_file(&vms, opts, &path, &files)
        });
        if let Err(e) = result {
            for file in lock(&files).iter() {
                let _ = std::fs::remove_file(file);
            }
            return Err(e);
        }
        Ok(Value::Object(
            written.into_inner().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    /// The exported init file (JSON, which is YAML too): the VMs exported and
    /// the networks they use.
    fn write_init_file(
        &self,
        vms: &[&VmSpec],
        opts: &ExportOptions,
        path: &Path,
        files: &Mutex<Vec<PathBuf>>,
    ) -> Result<(), Error> {
        let mut domains = Map::new();
        let mut nets = Map::new();
        let scripts = self.spec.prefix.scripts_dir();
        for vm in vms {
            let mut entry = vm_entry(vm, opts.standalone, opts.compress)?;
            export_scripts(&mut entry, &scripts, &opts.dst_dir, files)?;
            domains.insert(vm.name.clone(), entry);
            for nic in &vm.nics {
                if let Some(net) = self.spec.nets.get(&nic.net) {
                    nets.insert(net.name.clone(), net_entry(net));
                }
            }
        }
        let text = serde_json::to_string_pretty(&json!({"domains": domains, "nets": nets}))?;
        // It holds root passwords: 0600, as the prefix's own secrets.
        crate::files::write_atomic(path, text.as_bytes(), Some(0o600))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(extra: Value) -> DiskSpec {
        let mut d = json!({
            "type": "template", "name": "root", "dev": "vda", "format": "qcow2",
            "path": "/p/images/vm0_root.qcow2", "template_name": "tiny",
            "template_type": "lago", "metadata": {"distro": "busybox"}
        });
        if let (Some(m), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(d).expect("a disk")
    }

    fn vm() -> VmSpec {
        serde_json::from_value(json!({
            "name": "vm0", "libvirt_name": "x-vm0", "memory": 256, "vcpu": 1, "nics": [],
            "disks": [], "mgmt_net": "m",
            "vm-provider": "local-libvirt", "vm-type": "default"
        }))
        .expect("a vm")
    }

    #[test]
    fn layered_entries_name_their_template() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("embedded:tiny:v2");
        std::fs::write(&image, b"").expect("write");
        std::fs::write(dir.path().join("embedded:tiny:v2.hash"), "abc123\n").expect("write");
        let d = disk(json!({"base": image, "base_format": "qcow2"}));

        let e = disk_entry(&vm(), &d, false, true);
        assert_eq!(e["path"], "$LAGO_INITFILE_PATH/vm0_root.qcow2.xz");
        assert_eq!(e["template_type"], "qcow2");
        assert_eq!(e[LAYERED_KEY], true);
        assert_eq!(e["template_name"], "tiny");
        assert_eq!(e["template_version"], "v2");
        assert_eq!(e[TEMPLATE_SHA1_KEY], "abc123");
        assert_eq!(e["metadata"]["distro"], "busybox");

        let e = disk_entry(&vm(), &d, true, false);
        assert_eq!(e["path"], "$LAGO_INITFILE_PATH/vm0_root.qcow2");
        assert!(e.get(LAYERED_KEY).is_none(), "{e}");
        assert!(e.get("template_version").is_none(), "{e}");

        // A disk re-initialised from a layered export: its template image
        // comes from the spec, so it is exported layered again.
        let again = disk(json!({
            "template_type": "qcow2", "base": "/p/images/vm0_root.export.qcow2",
            lago_plugin_api::spec::TEMPLATE_IMAGE_KEY: {"path": image, "format": "qcow2"}
        }));
        let e = disk_entry(&vm(), &again, false, false);
        assert_eq!(e[LAYERED_KEY], true, "{e}");
        assert_eq!(e["template_version"], "v2", "{e}");
    }

    /// Lago's generate_init: an empty disk (and a file disk) is exported as
    /// a `file` disk with `make_a_copy`, whatever its format was.
    #[test]
    fn blank_and_file_disks_are_exported_as_file_disks_with_a_copy() {
        for (kind, format) in [("empty", "raw"), ("file", "qcow2")] {
            let d: DiskSpec = serde_json::from_value(json!({
                "type": kind, "name": "data", "dev": "sdb", "format": format,
                "path": "/p/images/vm0_data.img", "size": "1G", "metadata": {"k": "v"}
            }))
            .expect("a disk");
            let e = disk_entry(&vm(), &d, false, true);
            assert_eq!(e["type"], "file", "{e}");
            assert_eq!(e[MAKE_A_COPY_KEY], true, "{e}");
            assert_eq!(e["format"], "qcow2", "{e}");
            assert_eq!(e["path"], "$LAGO_INITFILE_PATH/vm0_data.qcow2.xz", "{e}");
            assert_eq!(e["dev"], "sdb", "{e}");
            assert_eq!(e["metadata"]["k"], "v", "{e}");
            for absent in ["template_name", "template_type", LAYERED_KEY, "size"] {
                assert!(e.get(absent).is_none(), "{absent} in {e}");
            }
        }
    }
}
