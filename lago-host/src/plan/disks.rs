//! The disks of a VM: each one's name, device, format and image path (in the
//! prefix's images, or the file the init file names), its base or the copy
//! of its source, and its planned `build:` steps.

use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{truthy, DiskSpec, DiskType, MAKE_A_COPY_KEY, SOURCE_PATH_KEY};
use serde_json::Value;

use super::build_steps::plan_build;
use super::vars::PathVars;
use crate::initfile::{disk_name_dev, DiskDef, DomainDef, InitError, InitFile, KeyPath};

/// The disks of VM `vm` (`d`), with their images in `images` when the init
/// file gives no path.
pub fn plan_disks(
    init: &InitFile,
    vm: &str,
    d: &DomainDef,
    images: &Path,
    vars: &PathVars<'_>,
) -> Result<Vec<DiskSpec>, InitError> {
    let vp = KeyPath::root().key("domains").key(vm);
    let mut disks = Vec::with_capacity(d.disks.len());
    for (i, disk) in d.disks.iter().enumerate() {
        let dp = vp.key("disks").idx(i);
        let given = given_path(init, &dp, disk, vars)?;
        let (name, dev) = disk_name_dev(disk, i);
        let in_prefix = |format: &str| images.join(format!("{vm}_{name}.{}", ext_of(format)));
        let mut spec = match disk.disk_type {
            DiskType::Template => template_disk(disk, given, in_prefix("qcow2")),
            DiskType::File => file_disk(disk, given, &in_prefix),
            DiskType::Empty => empty_disk(disk, &in_prefix),
        };
        spec.name = name;
        spec.dev = dev;
        if let Some(build) = &spec.build {
            let planned = plan_build(build, vars, vars.initfile_dir).map_err(|why| {
                init.error(dp.key("build"), why, Some("variables that are defined"))
            })?;
            spec.build = Some(planned);
        }
        disks.push(spec);
    }
    Ok(disks)
}

/// The disk's `path` (at `dp`), expanded and absolute; a folder is refused.
fn given_path(
    init: &InitFile,
    dp: &KeyPath,
    disk: &DiskDef,
    vars: &PathVars<'_>,
) -> Result<Option<PathBuf>, InitError> {
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
    Ok(given)
}

/// What every planned disk takes from its entry as it is (the name and
/// device are set by [`plan_disks`]).
fn as_written(disk: &DiskDef, format: String, path: PathBuf) -> DiskSpec {
    DiskSpec {
        disk_type: disk.disk_type,
        name: String::new(),
        dev: String::new(),
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
        extra: disk.extra.clone(),
    }
}

/// A template disk: a qcow2 overlay in the prefix, over the template (a
/// `lago` repository's, or the `path` given when `template_type: qcow2`).
fn template_disk(disk: &DiskDef, given: Option<PathBuf>, in_prefix: PathBuf) -> DiskSpec {
    let qcow2_base = disk.template_type.as_deref() == Some("qcow2");
    DiskSpec {
        template_type: Some(disk.template_type.clone().unwrap_or_else(|| "lago".into())),
        base: if qcow2_base { given } else { None },
        base_format: if qcow2_base {
            Some(disk.format.clone().unwrap_or_else(|| "qcow2".into()))
        } else {
            None
        },
        ..as_written(disk, "qcow2".into(), in_prefix)
    }
}

/// A file disk: the file the init file names, or an image in the prefix
/// (`in_prefix` of its format) when it names none or asks for a copy.
fn file_disk(
    disk: &DiskDef,
    given: Option<PathBuf>,
    in_prefix: &dyn Fn(&str) -> PathBuf,
) -> DiskSpec {
    let format = disk.format.clone().unwrap_or_else(|| {
        format_from_name(disk.path.as_deref().or(disk.url.as_deref()).unwrap_or(""))
    });
    let in_prefix = in_prefix(&format);
    let mut spec = as_written(disk, format, in_prefix.clone());
    // Lago's `make_a_copy` of a `path`: the copy, in the prefix, is the
    // disk; the path is only read.
    let copies_path = truthy(spec.extra.get(MAKE_A_COPY_KEY))
        && disk.url.is_none()
        && !spec.extra.contains_key(SOURCE_PATH_KEY)
        && !spec.extra.contains_key("original_path");
    spec.path = Some(match given {
        Some(p) if copies_path => {
            spec.extra.insert(
                SOURCE_PATH_KEY.into(),
                Value::String(p.display().to_string()),
            );
            in_prefix
        }
        Some(p) => p,
        None => in_prefix,
    });
    spec
}

/// An empty disk: a new image in the prefix, qcow2 unless a format is given.
fn empty_disk(disk: &DiskDef, in_prefix: &dyn Fn(&str) -> PathBuf) -> DiskSpec {
    let format = disk.format.clone().unwrap_or_else(|| "qcow2".into());
    let path = in_prefix(&format);
    as_written(disk, format, path)
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
