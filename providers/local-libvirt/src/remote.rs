//! Disks of VMs on another host than lago's, through libvirt's storage API
//! (no shared file system, no daemon of lago's own).
//!
//! On each such host:
//! - the pool [`TEMPLATE_POOL`] (a `dir` pool at [`TEMPLATE_POOL_DIR`])
//!   keeps templates, uploaded once and named by their sha1, so later
//!   environments reuse them; a template counts only once its
//!   `<sha1>.done` marker volume exists (an interrupted upload is redone);
//! - the environment's own pool `<tag>-images` (at
//!   `/var/lib/libvirt/images/lago-<uuid>`) holds the VMs' overlays (qcow2
//!   volumes backed by a template volume), empty disks, copies of `file`
//!   disks, seed ISOs and console logs. `destroy` deletes those volumes by
//!   name (never a file lago did not make) and the pool.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{DiskSpec, DiskType, EnvSpec, VmSpec};
use virt::connect::Connect;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::error::{is_code, ProviderError, Result};
use crate::xml::Element;
use lago_plugin_api::tracing;

/// The pool of uploaded templates, shared by the environments on a host.
pub const TEMPLATE_POOL: &str = "lago-templates";
/// Where [`TEMPLATE_POOL`] keeps its files on the host.
pub const TEMPLATE_POOL_DIR: &str = "/var/lib/libvirt/images/lago-templates";
/// Bytes per stream write when uploading.
const CHUNK: usize = 4 << 20;

/// The name of the environment's pool on every remote host.
pub fn env_pool_name(env: &EnvSpec) -> String {
    format!("{}-images", env.prefix.tag())
}

fn env_pool_dir(env: &EnvSpec) -> String {
    format!("/var/lib/libvirt/images/lago-{}", env.prefix.uuid)
}

/// The environment's pool on `host`, made when missing.
fn ensure_env_pool(conn: &Connect, host: &str, env: &EnvSpec) -> Result<StoragePool> {
    ensure_pool(conn, host, &env_pool_name(env), &env_pool_dir(env))
}

/// The volume name of one disk of a VM.
pub fn disk_volume_name(vm: &VmSpec, disk: &DiskSpec) -> String {
    format!("{}-{}.{}", vm.name, disk.name, disk.format)
}

/// The volume name of a VM's seed ISO.
pub fn seed_volume_name(vm: &VmSpec) -> String {
    format!("{}-seed.iso", vm.name)
}

/// The volume name of a VM's serial console log.
pub fn console_volume_name(vm: &VmSpec) -> String {
    format!("{}.console.log", vm.name)
}

/// Every volume name lago makes for `vm` in the environment's pool.
pub fn vm_volume_names(vm: &VmSpec) -> Vec<String> {
    let mut out: Vec<String> = vm.disks.iter().map(|d| disk_volume_name(vm, d)).collect();
    out.push(seed_volume_name(vm));
    out.push(console_volume_name(vm));
    out
}

fn lv(what: impl Into<String>, host: &str) -> impl FnOnce(virt::error::Error) -> ProviderError {
    let what = what.into();
    let host = host.to_string();
    move |e| ProviderError::libvirt(format!("{what} on host {host}"), e)
}

/// The pool named `name`, defined (persistent, `dir` at `dir`), built and
/// started when missing or inactive.
pub fn ensure_pool(conn: &Connect, host: &str, name: &str, dir: &str) -> Result<StoragePool> {
    let pool = match conn.lookup_storage_pool_by_name(name) {
        Ok(p) => p,
        Err(e) if is_code(&e, ErrorNumber::NoStoragePool) => {
            let xml = Element::new("pool")
                .attr("type", "dir")
                .child(Element::new("name").text(name))
                .child(Element::new("target").child(Element::new("path").text(dir)))
                .render();
            match conn.define_storage_pool_xml(&xml, 0) {
                Ok(p) => {
                    p.build(0)
                        .map_err(lv(format!("building storage pool {name} at {dir}"), host))?;
                    p
                }
                // Defined meanwhile (another lago on the same host).
                Err(e) => conn
                    .lookup_storage_pool_by_name(name)
                    .map_err(|_| lv(format!("defining storage pool {name}"), host)(e))?,
            }
        }
        Err(e) => return Err(lv(format!("looking up storage pool {name}"), host)(e)),
    };
    if !pool.is_active().unwrap_or(false) {
        pool.create(0)
            .map_err(lv(format!("starting storage pool {name}"), host))?;
    }
    Ok(pool)
}

fn lookup_vol(pool: &StoragePool, name: &str) -> Option<StorageVol> {
    pool.lookup_storage_vol_by_name(name).ok()
}

fn delete_vol_if_there(pool: &StoragePool, host: &str, name: &str) -> Result<()> {
    if let Some(v) = lookup_vol(pool, name) {
        v.delete(0)
            .map_err(lv(format!("deleting volume {name}"), host))?;
    }
    Ok(())
}

fn create_vol(pool: &StoragePool, host: &str, xml: &str, name: &str) -> Result<StorageVol> {
    StorageVol::create_xml(pool, xml, 0).map_err(lv(format!("creating volume {name}"), host))
}

fn vol_xml(name: &str, capacity: u64, format: &str) -> Element {
    Element::new("volume")
        .child(Element::new("name").text(name))
        .child(
            Element::new("capacity")
                .attr("unit", "bytes")
                .text(capacity),
        )
        .child(Element::new("target").child(Element::new("format").attr("type", format)))
}

fn vol_path(vol: &StorageVol, host: &str, name: &str) -> Result<PathBuf> {
    vol.path()
        .map(PathBuf::from)
        .map_err(lv(format!("reading the path of volume {name}"), host))
}

/// Uploads the local file `src` into a new volume `name` of `pool` (a
/// volume of that name is replaced) and returns the volume's path on the
/// host.
pub fn upload_file(pool: &StoragePool, host: &str, name: &str, src: &Path) -> Result<PathBuf> {
    let mut file =
        std::fs::File::open(src).map_err(|e| ProviderError::io("opening for upload", src, e))?;
    let len = file
        .metadata()
        .map_err(|e| ProviderError::io("reading the size of", src, e))?
        .len();
    delete_vol_if_there(pool, host, name)?;
    let vol = create_vol(pool, host, &vol_xml(name, len, "raw").render(), name)?;
    let conn = pool
        .connect()
        .map_err(lv("reaching the connection of a pool", host))?;
    let uploaded = (|| {
        let stream = Stream::new(&conn, 0).map_err(lv("opening an upload stream", host))?;
        vol.upload(&stream, 0, len, 0)
            .map_err(lv(format!("uploading {}", src.display()), host))?;
        each_chunk(&mut file, src, |chunk| {
            let mut sent = 0;
            while sent < chunk.len() {
                let k = stream
                    .send(&chunk[sent..])
                    .map_err(lv(format!("uploading {}", src.display()), host))?;
                // libvirt sends all or fails; never loop on a 0.
                sent += usize::try_from(k).unwrap_or(0).max(1);
            }
            Ok(())
        })?;
        stream.finish().map_err(lv(
            format!("finishing the upload of {}", src.display()),
            host,
        ))
    })();
    if let Err(e) = uploaded {
        let _ = vol.delete(0);
        return Err(e);
    }
    vol_path(&vol, host, name)
}

/// Calls `f` with each chunk ([`CHUNK`] bytes at most) of `file` (read
/// from `path`, named in errors) until its end.
fn each_chunk(
    file: &mut std::fs::File,
    path: &Path,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ProviderError::io("reading", path, e))?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

/// The sha1 of a template image: the template store's `<image>.hash` file
/// beside it when there is one, else computed.
pub fn template_sha1(base: &Path) -> Result<String> {
    let mut hash_file = base.as_os_str().to_owned();
    hash_file.push(".hash");
    if let Ok(s) = std::fs::read_to_string(&hash_file) {
        let s = s.trim();
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_ascii_lowercase());
        }
    }
    use sha1::Digest;
    let mut f = std::fs::File::open(base)
        .map_err(|e| ProviderError::io("opening the template", base, e))?;
    let mut h = sha1::Sha1::new();
    each_chunk(&mut f, base, |chunk| {
        h.update(chunk);
        Ok(())
    })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The template `base` (format `fmt`) on the host: its volume path in
/// [`TEMPLATE_POOL`], uploaded unless a complete copy is there already.
pub fn ensure_template(conn: &Connect, host: &str, base: &Path, fmt: &str) -> Result<PathBuf> {
    let pool = ensure_pool(conn, host, TEMPLATE_POOL, TEMPLATE_POOL_DIR)?;
    let _ = pool.refresh(0);
    let sha = template_sha1(base)?;
    let name = format!("{sha}.{fmt}");
    let done = format!("{sha}.done");
    if let (Some(vol), Some(_)) = (lookup_vol(&pool, &name), lookup_vol(&pool, &done)) {
        tracing::debug!("template {} is on host {host} already", base.display());
        return vol_path(&vol, host, &name);
    }
    tracing::info!("uploading template {} to host {host}", base.display());
    let path = upload_file(&pool, host, &name, base)?;
    delete_vol_if_there(&pool, host, &done)?;
    create_vol(&pool, host, &vol_xml(&done, 0, "raw").render(), &done)?;
    Ok(path)
}

/// `qemu-img info --output=json` of a local image.
pub fn image_info(image: &Path) -> Result<serde_json::Value> {
    let mut cmd = std::process::Command::new("qemu-img");
    cmd.args(["info", "--output=json", "-U", "--"]).arg(image);
    let out = crate::tools::run(&mut cmd, &format!("reading {}", image.display()))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        ProviderError::Spec(format!(
            "qemu-img info of {}: unreadable output: {e}",
            image.display()
        ))
    })
}

/// The virtual size, in bytes, in `info` ([`image_info`] of `image`).
fn virtual_size(image: &Path, info: &serde_json::Value) -> Result<u64> {
    info.get("virtual-size")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            ProviderError::Spec(format!(
                "qemu-img info of {}: no virtual size",
                image.display()
            ))
        })
}

/// Refuses an image that names a backing file (`info`: its
/// [`image_info`]): QEMU would open that path on the VM's host and show its
/// bytes to the guest (any file of that host, e.g. a private key).
pub fn refuse_backing_file(
    vm: &VmSpec,
    disk: &DiskSpec,
    image: &Path,
    info: &serde_json::Value,
) -> Result<()> {
    match info.get("backing-filename") {
        Some(b) => Err(ProviderError::Spec(format!(
            "VM {}: disk '{}': {} has a backing file ({b}); a file disk must be a \
             whole image (qemu-img convert it, or use it as a template)",
            vm.name,
            disk.name,
            image.display()
        ))),
        None => Ok(()),
    }
}

/// `10G`, `512M`, `1024` (bytes), `1.5T`: a size in bytes (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], s[i..].to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let shift = match unit.trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        _ => return None,
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then(|| (n * (1u64 << shift) as f64) as u64)
}

/// Makes the volumes of every disk of `vm` in the environment's pool on
/// `host` ([`vm_paths`] finds them at start). Templates go to the
/// host's template pool first. `build:` steps are refused (they edit the
/// image with libguestfs on lago's host).
pub fn prepare_vm_disks(conn: &Connect, host: &str, env: &EnvSpec, vm: &VmSpec) -> Result<()> {
    let pool = ensure_env_pool(conn, host, env)?;
    for disk in &vm.disks {
        if disk.build.is_some() {
            return Err(ProviderError::Spec(format!(
                "VM {}: disk '{}' has `build:` steps, which run on lago's host only; \
                 VMs on host {host} cannot use them",
                vm.name, disk.name
            )));
        }
        let name = disk_volume_name(vm, disk);
        delete_vol_if_there(&pool, host, &name)?;
        match (disk.disk_type, disk.template_image()) {
            (DiskType::Template, Some((base, fmt))) => {
                // A layered template (an export's overlay) would point at a
                // path of lago's machine on the host.
                let info = image_info(&base)?;
                refuse_backing_file(vm, disk, &base, &info)?;
                let tmpl = ensure_template(conn, host, &base, &fmt)?;
                let xml = vol_xml(&name, virtual_size(&base, &info)?, "qcow2").child(
                    Element::new("backingStore")
                        .child(Element::new("path").text(tmpl.display()))
                        .child(Element::new("format").attr("type", &fmt)),
                );
                create_vol(&pool, host, &xml.render(), &name)?;
            }
            (DiskType::Empty, _) => {
                let size = disk.size.as_deref().and_then(parse_size).ok_or_else(|| {
                    ProviderError::Spec(format!(
                        "VM {}: empty disk '{}' has no readable size",
                        vm.name, disk.name
                    ))
                })?;
                create_vol(
                    &pool,
                    host,
                    &vol_xml(&name, size, &disk.format).render(),
                    &name,
                )?;
            }
            _ => {
                // A file (or a template used as it is): its local image,
                // uploaded whole.
                let src = crate::disks::planned_path(vm, disk)?;
                if !src.is_file() {
                    return Err(crate::disks::missing_image(vm, disk, src));
                }
                if disk.format != "iso" && disk.format != "raw" {
                    refuse_backing_file(vm, disk, src, &image_info(src)?)?;
                }
                upload_file(&pool, host, &name, src)?;
            }
        }
    }
    Ok(())
}

/// Uploads the VM's seed ISO (built locally) and returns its path on the
/// host.
pub fn upload_seed(
    conn: &Connect,
    host: &str,
    env: &EnvSpec,
    vm: &VmSpec,
    iso: &Path,
) -> Result<PathBuf> {
    let pool = ensure_env_pool(conn, host, env)?;
    upload_file(&pool, host, &seed_volume_name(vm), iso)
}

/// Paths on the host of the VM's volumes that exist: disks by disk name,
/// the seed under `seed`, and where the console log goes (`console`, made
/// as an empty volume so `destroy` finds it).
pub fn vm_paths(
    conn: &Connect,
    host: &str,
    env: &EnvSpec,
    vm: &VmSpec,
) -> Result<BTreeMap<String, PathBuf>> {
    let pool = ensure_env_pool(conn, host, env)?;
    let _ = pool.refresh(0);
    let mut out = BTreeMap::new();
    for disk in &vm.disks {
        let name = disk_volume_name(vm, disk);
        let vol = lookup_vol(&pool, &name).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "VM {}: disk '{}' has no volume on host {host} (run `lago init` again)",
                vm.name, disk.name
            ))
        })?;
        out.insert(disk.name.clone(), vol_path(&vol, host, &name)?);
    }
    if let Some(v) = lookup_vol(&pool, &seed_volume_name(vm)) {
        out.insert("seed".into(), vol_path(&v, host, &seed_volume_name(vm))?);
    }
    let log = console_volume_name(vm);
    let vol = match lookup_vol(&pool, &log) {
        Some(v) => v,
        None => create_vol(&pool, host, &vol_xml(&log, 0, "raw").render(), &log)?,
    };
    out.insert("console".into(), vol_path(&vol, host, &log)?);
    Ok(out)
}

/// Removes the environment's pool on the host: the volumes lago made (by
/// name, from the spec), then the pool's folder (only when empty) and its
/// definition. A host without the pool is fine.
pub fn remove_env_pool(conn: &Connect, host: &str, env: &EnvSpec, vms: &[&VmSpec]) -> Result<bool> {
    let name = env_pool_name(env);
    let pool = match conn.lookup_storage_pool_by_name(&name) {
        Ok(p) => p,
        Err(e) if is_code(&e, ErrorNumber::NoStoragePool) => return Ok(false),
        Err(e) => return Err(lv(format!("looking up storage pool {name}"), host)(e)),
    };
    if !pool.is_active().unwrap_or(false) {
        let _ = pool.create(0);
    }
    let _ = pool.refresh(0);
    for vm in vms {
        for v in vm_volume_names(vm) {
            delete_vol_if_there(&pool, host, &v)?;
        }
    }
    // libvirt removes the folder of an inactive pool only, and only when
    // it is empty (a file lago did not make stays, with its folder).
    let _ = pool.destroy();
    if let Err(e) = pool.delete(0) {
        tracing::warn!(
            "storage pool {name} on host {host}: its folder {} is left in place: {e}",
            env_pool_dir(env)
        );
    }
    pool.undefine()
        .map_err(lv(format!("undefining storage pool {name}"), host))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G"), Some(10 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("3Q"), None);
    }
}
