//! Disks of an init file written by `lago export`: their images are made
//! ready in the new prefix before the provider puts its overlay on them.
//!
//! Such a disk is a `template_type: qcow2` disk whose `path` is the exported
//! image (planned as the disk's `base`). Two things may need doing:
//! - the image is xz-compressed (`export -c`): it is decompressed into the
//!   prefix, and the copy becomes the base;
//! - the disk says `layered: true` (a layered export): the image holds only
//!   what the VM wrote over its template, and its backing file names the
//!   template's store image of the exporting machine. The template
//!   (`template_name`, `template_version`) is imported into this machine's
//!   store as for any template disk, the image is copied (or decompressed)
//!   into the prefix, and the copy's backing file is set to the store image
//!   (`qemu-img rebase -u`). When the disk carries `template_sha1`, the
//!   store image must have that hash: a layer over another build of the
//!   template would read as a damaged disk.
//!
//! The export folder itself is only read, so one export re-inits any number
//! of times, on any machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::spec::{DiskSpec, DiskType};
use serde_json::Value;

use super::{xz, StoredImage, TemplateError};

/// Disk key: the image is a layer over the disk's template.
pub const LAYERED_KEY: &str = "layered";
/// Disk key: the sha1 of the template image the layer was made over.
pub const TEMPLATE_SHA1_KEY: &str = "template_sha1";

/// Whether `disk` is a layer of a layered export.
pub fn is_layered(disk: &DiskSpec) -> bool {
    disk.template_type.as_deref() == Some("qcow2")
        && matches!(disk.extra.get(LAYERED_KEY), Some(Value::Bool(true)))
}

/// The exported image `disk` is made from, when it needs work in the
/// prefix before the provider uses it: a layer, a compressed image under
/// an overlay (the disk's `base`), or the compressed image a `make_a_copy`
/// file disk copies (its [`DiskSpec::copy_source`]). `None`: nothing to do.
pub fn image_to_prepare(disk: &DiskSpec) -> Result<Option<PathBuf>, TemplateError> {
    let image = match disk.disk_type {
        DiskType::File => disk.copy_source(),
        _ if disk.template_type.as_deref() != Some("qcow2") => None,
        _ if is_layered(disk) => return Ok(disk.base.clone()),
        _ => disk.base.clone(),
    };
    match image {
        Some(image) if image.is_file() => {
            let compressed = xz::is_xz(&image).map_err(|source| TemplateError::Io {
                what: format!("reading {}", image.display()),
                source,
            })?;
            Ok(compressed.then_some(image))
        }
        _ => Ok(None),
    }
}

/// Where the prepared copy of `vm`'s disk goes in the prefix: the base of
/// its overlay in the images folder, or, for a file disk, its own path.
pub fn prepared_path(images_dir: &Path, vm: &str, disk: &DiskSpec) -> PathBuf {
    match (&disk.disk_type, &disk.path) {
        (DiskType::File, Some(path)) => path.clone(),
        _ => images_dir.join(format!("{vm}_{}.export.qcow2", disk.name)),
    }
}

fn bad(image: &Path, reason: impl Into<String>) -> TemplateError {
    TemplateError::BadExport {
        image: image.display().to_string(),
        reason: reason.into(),
    }
}

/// Makes `image` (an exported image) ready at `dst`: decompressed when it
/// is xz, else copied; then, for a layer, rebased onto `template` (the
/// store image of its template). On failure nothing is left at `dst`.
pub fn prepare(
    image: &Path,
    dst: &Path,
    template: Option<(&StoredImage, Option<&str>)>,
    what: &str,
) -> Result<(), TemplateError> {
    if let Some((stored, Some(expected))) = template {
        if stored.hash != expected {
            return Err(bad(
                image,
                format!(
                    "it is a layer over the template image with sha1 {expected}, but the store's \
                     image {} has sha1 {} (another build of the template): export it again \
                     standalone (lago export -s)",
                    stored.path.display(),
                    stored.hash
                ),
            ));
        }
    }
    if !image.is_file() {
        return Err(bad(
            image,
            "not found: an export's images stay in the folder of its init file",
        ));
    }
    let io = |what: String| move |source| TemplateError::Io { what, source };
    let compressed = xz::is_xz(image).map_err(io(format!("reading {}", image.display())))?;
    if compressed {
        xz::decompress(image, dst, &format!("{what}: decompressing"))
            .map_err(|e| bad(image, format!("decompressing: {e}")))?;
    } else {
        std::fs::copy(image, dst).map_err(io(format!(
            "copying {} to {}",
            image.display(),
            dst.display()
        )))?;
    }
    let result = match template {
        Some((stored, _)) => rebase(dst, stored).map_err(|reason| bad(image, reason)),
        None => check_standalone(dst).map_err(|reason| bad(image, reason)),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    result
}

/// `qemu-img info` of `path` as JSON.
fn info(path: &Path) -> Result<Value, String> {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json", "-U"])
        .arg(path)
        .output()
        .map_err(|e| format!("running qemu-img: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "qemu-img info: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("qemu-img info: {e}"))
}

/// Points the layer at `dst` to `stored` (without touching its data: the
/// layer was made over the same image).
fn rebase(dst: &Path, stored: &StoredImage) -> Result<(), String> {
    let info = info(dst)?;
    if info["format"] != "qcow2" || info["backing-filename"].as_str().is_none() {
        return Err("a layered export must be a qcow2 image with a backing file".into());
    }
    let out = Command::new("qemu-img")
        .args(["rebase", "-u", "-F", &stored.format, "-b"])
        .arg(&stored.path)
        .arg(dst)
        .output()
        .map_err(|e| format!("running qemu-img: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "qemu-img rebase: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A non-layered export must be a qcow2 image of its own: a backing file
/// would be looked up relative to the prefix.
fn check_standalone(dst: &Path) -> Result<(), String> {
    let info = info(dst)?;
    if info["format"] != "qcow2" {
        return Err(format!("expected a qcow2 image, found {}", info["format"]));
    }
    if let Some(backing) = info["backing-filename"].as_str() {
        return Err(format!(
            "it has the backing file {backing}: a layered export needs `layered: true` and its \
             template_name/template_version"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img(args: &[&str]) {
        let out = Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stored(path: PathBuf, hash: &str) -> StoredImage {
        StoredImage {
            path,
            format: "qcow2".into(),
            hash: hash.into(),
            metadata: serde_json::json!({}),
        }
    }

    /// A layer (compressed or not) is copied and rebased onto the store
    /// image; the exported file is not changed; a layer over another build
    /// of the template, or a standalone image with a backing file, is
    /// refused and leaves nothing.
    #[test]
    fn layers_are_rebased_onto_the_store_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        let s = |p: &Path| p.to_str().expect("utf-8").to_string();
        let store = p("embedded:tiny:v1");
        qemu_img(&["create", "-q", "-f", "qcow2", &s(&store), "8M"]);
        // The layer as exported: its backing file a bare store name.
        let layer = p("vm0_root.qcow2");
        let (backing, size) = ("embedded:other:v1", "8M");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-F",
            "qcow2",
            "-b",
            backing,
            &s(&layer),
            size,
        ]);
        let compressed = p("vm0_root.qcow2.xz");
        xz::compress(&layer, &compressed, "t").expect("compresses");

        for (i, image) in [&layer, &compressed].into_iter().enumerate() {
            let dst = p(&format!("prefix{i}.qcow2"));
            let st = stored(store.clone(), "aa");
            prepare(image, &dst, Some((&st, Some("aa"))), "t").expect("prepares");
            let info = info(&dst).expect("info");
            assert_eq!(info["backing-filename"], store.display().to_string());
        }
        assert_eq!(
            info(&layer).expect("info")["backing-filename"],
            "embedded:other:v1"
        );

        let dst = p("refused.qcow2");
        let st = stored(store.clone(), "bb");
        let err = prepare(&layer, &dst, Some((&st, Some("aa"))), "t").expect_err("refused");
        assert!(
            err.to_string().contains("another build of the template"),
            "{err}"
        );
        assert!(!dst.exists());
        let err = prepare(&layer, &dst, None, "t").expect_err("refused");
        assert!(err.to_string().contains("has the backing file"), "{err}");
        assert!(!dst.exists());
        let err = prepare(&p("gone.qcow2"), &dst, None, "t").expect_err("refused");
        assert!(
            err.is_user_error() && err.to_string().contains("not found"),
            "{err}"
        );
    }
}
