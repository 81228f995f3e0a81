//! `lago export`: the VMs' disks written into a folder by their providers'
//! `export_disks`, and an init file that describes the same VMs and
//! networks with their disks pointing at the exported images.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lago_plugin_api::spec::{DiskSpec, NetSpec, VmSpec};
use serde_json::{json, Map, Value};

use super::{plugin_err, Environment, SNAPSHOTS_KEY};
use crate::error::Error;
use crate::plugins::into_result;

/// What `lago export` was asked for (Lago's options).
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// `-n`: only these VMs (all when empty).
    pub vms: Vec<String>,
    /// `-s`: merge each disk with its backing chain.
    pub standalone: bool,
    /// `-c`: compress the images with xz.
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

/// The exported images' names as the provider writes them: `<vm>_<disk>.qcow2`.
fn exported_name(vm: &VmSpec, disk: &DiskSpec) -> String {
    format!("{}_{}.qcow2", vm.name, disk.name)
}

/// The disks an export writes: every disk with a path but ISO images.
fn exported_disks(vm: &VmSpec) -> impl Iterator<Item = &DiskSpec> {
    vm.disks
        .iter()
        .filter(|d| d.format != "iso" && d.path.is_some())
}

/// A net as an init file entry: what the user chose, not what was planned
/// (addresses are leased anew by the next init).
fn net_entry(net: &NetSpec) -> Value {
    let mut m: Map<String, Value> = net.extra.clone().into_iter().collect();
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

/// A VM as an init file entry, its exported disks based on the images in
/// the init file's folder (`$LAGO_INITFILE_PATH`): the next init puts an
/// overlay on each, so the export itself is never written to.
pub fn vm_entry(vm: &VmSpec) -> Result<Value, Error> {
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
            let mut e: Map<String, Value> = n.extra.clone().into_iter().collect();
            e.insert("net".into(), json!(n.net));
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
            Ok(json!({
                "name": d.name,
                "dev": d.dev,
                "type": "template",
                "template_type": "qcow2",
                "format": "qcow2",
                "path": format!("$LAGO_INITFILE_PATH/{}", exported_name(vm, d)),
                "metadata": d.metadata,
            }))
        })
        .collect::<Result<_, _>>()?;
    m.insert("disks".into(), Value::Array(disks));
    Ok(v)
}

impl Environment<'_> {
    /// `lago export`: refuses running VMs (naming them); with
    /// `collect_only` returns `{VM: [disk path, ...]}` and writes nothing;
    /// else exports each VM's disks (in parallel unless `with_threads` is
    /// off), writes the init file beside them and returns
    /// `{VM: [exported path, ...]}`.
    pub fn export(&self, opts: &ExportOptions) -> Result<Value, Error> {
        let vms = self.select(&opts.vms)?;
        let states = self.states()?;
        let running: Vec<&str> = vms
            .iter()
            .filter(|vm| states.vms.get(&vm.name).is_some_and(|s| s != "down"))
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
        if opts.compress {
            return Err(Error::user(
                "export: -c/--compress is not supported yet; export without it and compress \
                 the images with xz",
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
        let export_one = |vm: &VmSpec| -> Result<(), Error> {
            let paths = into_result(self.session(vm)?.export_disks(
                vm.name.as_str().into(),
                dst.as_str().into(),
                opts.standalone,
                opts.compress,
            ))
            .map_err(plugin_err(format_args!("exporting VM `{}`", vm.name)))?;
            let paths: Vec<Value> = paths.into_iter().map(|p| json!(p.as_str())).collect();
            written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(vm.name.clone(), Value::Array(paths));
            Ok(())
        };
        if opts.with_threads {
            self.each_vm(&vms, export_one)?;
        } else {
            vms.iter().try_for_each(|vm| export_one(vm))?;
        }
        self.write_init_file(&vms, &init_path)?;
        Ok(Value::Object(
            written.into_inner().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    /// The exported init file (JSON, which is YAML too): the VMs exported and
    /// the networks they use.
    fn write_init_file(&self, vms: &[&VmSpec], path: &Path) -> Result<(), Error> {
        let mut domains = Map::new();
        let mut nets = Map::new();
        for vm in vms {
            domains.insert(vm.name.clone(), vm_entry(vm)?);
            for nic in &vm.nics {
                if let Some(net) = self.env.nets.get(&nic.net) {
                    nets.insert(net.name.clone(), net_entry(net));
                }
            }
        }
        let text = serde_json::to_string_pretty(&json!({"domains": domains, "nets": nets}))?;
        // It holds root passwords: 0600, as the prefix's own secrets.
        crate::prefix::write_atomic(path, text.as_bytes(), Some(0o600))?;
        Ok(())
    }
}
