//! `lago export`: a VM's disks written into a folder with `qemu-img
//! convert`, never touching the VM's own images.
//!
//! - layered (default): a disk over a template store image
//!   ([`DiskSpec::template_image`]) becomes a qcow2 layer holding only what
//!   differs from that image (`convert -B IMAGE`), whose backing file is then
//!   the image's store name (`repo:template:version`, no folder), which the
//!   store of the machine that re-inits it provides;
//! - standalone, and disks without a template image: merged with the whole
//!   backing chain;
//! - internal snapshots and ISO images are not exported; compression (`-c`)
//!   is the host's, on the files returned here.
//!
//! Each image is written as `NAME.partial` and renamed when complete;
//! `qemu-img convert -p`'s progress is logged at each tenth.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lago_plugin_api::spec::{DiskSpec, VmSpec};
use lago_plugin_api::tracing;

use crate::error::{ProviderError, Result};
use crate::session::LibvirtSession;
use crate::tools::{argv_string, run};

/// The file name a disk is exported as: `<vm>_<disk>.qcow2`.
pub fn export_name(vm: &VmSpec, disk: &DiskSpec) -> String {
    format!("{}_{}.qcow2", vm.name, disk.name)
}

/// The `qemu-img convert` that exports `disk` to `dst`: over `layer_on`
/// (the template image, format) when given, else merged.
pub fn convert_command(src: &Path, layer_on: Option<(&Path, &str)>, dst: &Path) -> Command {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-p", "-O", "qcow2"]);
    if let Some((base, fmt)) = layer_on {
        cmd.arg("-B").arg(base).args(["-F", fmt]);
    }
    cmd.arg(src).arg(dst);
    cmd
}

/// The percentages in `qemu-img convert -p` output (`    (12.34/100%)\r`).
pub fn progress_percents(text: &str) -> impl Iterator<Item = f64> + '_ {
    text.split(['\r', '\n']).filter_map(|part| {
        let inner = part.trim().strip_prefix('(')?.strip_suffix("/100%)")?;
        inner.parse().ok()
    })
}

/// Runs a `qemu-img convert -p`, logging `what: N% of SIZE bytes` at each
/// tenth; errors as [`run`].
fn run_with_progress(cmd: &mut Command, what: &str, size: u64) -> Result<()> {
    let argv = argv_string(cmd);
    let could_not = |e: std::io::Error| ProviderError::Command {
        what: what.to_string(),
        argv: argv.clone(),
        status: format!("could not run: {e}"),
        stderr: String::new(),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(could_not)?;
    let stderr = child.stderr.take();
    // stderr is read aside so a chatty tool cannot block on a full pipe.
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    let mut logged = 0u32;
    if let Some(mut out) = child.stdout.take() {
        let mut buf = [0u8; 256];
        loop {
            let n = match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for pct in progress_percents(&String::from_utf8_lossy(&buf[..n])) {
                let tenth = (pct / 10.0) as u32;
                if tenth > logged && tenth < 10 {
                    logged = tenth;
                    tracing::info!("{what}: {}% of {size} bytes", tenth * 10);
                }
            }
        }
    }
    let status = child.wait().map_err(could_not)?;
    let stderr = err_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(ProviderError::Command {
        what: what.to_string(),
        argv,
        status: match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        },
        stderr: stderr.trim().to_string(),
    })
}

/// `dst` with `.partial` appended.
fn partial(dst: &Path) -> PathBuf {
    let mut name = dst.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Exports one disk to `dst` (see the module doc); on failure nothing is
/// left at `dst` or `dst.partial`.
fn export_disk(vm: &str, src: &Path, disk: &DiskSpec, dst: &Path, standalone: bool) -> Result<()> {
    let template = if standalone {
        None
    } else {
        disk.template_image()
    };
    let size = std::fs::metadata(src).map(|m| m.len()).unwrap_or(0);
    let what = format!("VM {vm}: exporting disk '{}'", disk.name);
    tracing::info!(
        "{what} ({size} bytes, {}) to {}",
        if template.is_some() {
            "layered"
        } else {
            "standalone"
        },
        dst.display()
    );
    let tmp = partial(dst);
    let layer_on = template
        .as_ref()
        .map(|(t, fmt)| (t.as_path(), fmt.as_str()));
    let result = run_with_progress(&mut convert_command(src, layer_on, &tmp), &what, size)
        .and_then(|()| match &template {
            Some((image, fmt)) => {
                // The backing file named by the template's store name alone.
                let name = image.file_name().map(PathBuf::from).unwrap_or_default();
                run(
                    Command::new("qemu-img")
                        .args(["rebase", "-u", "-F", fmt, "-b"])
                        .arg(&name)
                        .arg(&tmp),
                    &what,
                )
                .map(drop)
            }
            None => Ok(()),
        })
        .and_then(|()| {
            std::fs::rename(&tmp, dst)
                .map_err(|e| ProviderError::io("moving the exported image to", dst, e))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl LibvirtSession {
    /// Exports the VM's disks into `dst_dir` (see [`crate::export`]); returns
    /// the written paths. The VM must be down.
    pub fn export_disks(&self, vm: &str, dst_dir: &str, standalone: bool) -> Result<Vec<String>> {
        let spec = self.vm(vm)?;
        self.default_host_only(spec, "export")?;
        if self.state(vm)? != "down" {
            return Err(ProviderError::Spec(format!(
                "VM {vm} is running: stop it before exporting its disks"
            )));
        }
        let dst_dir = PathBuf::from(dst_dir);
        std::fs::create_dir_all(&dst_dir)
            .map_err(|e| ProviderError::io("creating the export folder", &dst_dir, e))?;
        let mut written = Vec::new();
        for disk in spec.disks.iter().filter(|d| d.format != "iso") {
            let Some(src) = &disk.path else { continue };
            let dst = dst_dir.join(export_name(spec, disk));
            // Never replace or write through an entry already there (a user's
            // file, or DIR/vm0_root.qcow2 -> /victim): refuse it.
            if dst.symlink_metadata().is_ok() {
                for done in &written {
                    let _ = std::fs::remove_file(done);
                }
                return Err(ProviderError::Spec(format!(
                    "{} already exists: export into a folder without it",
                    dst.display()
                )));
            }
            if let Err(e) = export_disk(vm, src, disk, &dst, standalone) {
                // Leave no part of this VM's export behind.
                for done in &written {
                    let _ = std::fs::remove_file(done);
                }
                return Err(e);
            }
            let out = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
            tracing::info!("VM {vm}: disk '{}' exported: {out} bytes", disk.name);
            written.push(dst.display().to_string());
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lago_plugin_api::serde_json::{self, json, Value};

    fn qemu_img(args: &[&str]) -> String {
        let out = Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn backing(path: &Path) -> Value {
        let info: Value = serde_json::from_str(&qemu_img(&[
            "info",
            "--output",
            "json",
            path.to_str().expect("utf-8"),
        ]))
        .expect("json");
        info["backing-filename"].clone()
    }

    #[test]
    fn progress_is_read_from_qemu_img_output() {
        let text = "    (0.00/100%)\r    (12.50/100%)\r    (100.00/100%)\r\n";
        let got: Vec<f64> = progress_percents(text).collect();
        assert_eq!(got, vec![0.0, 12.5, 100.0]);
        assert_eq!(progress_percents("no progress here").count(), 0);
    }

    /// A layered export keeps only the template's store name as backing
    /// file; standalone and disks without a template image are merged; the
    /// source is not changed and no `.partial` file is left.
    #[test]
    fn layered_and_standalone_disks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("embedded:tiny:v1");
        let s = |p: &Path| p.to_str().expect("utf-8").to_string();
        qemu_img(&["create", "-q", "-f", "qcow2", &s(&store), "16M"]);
        let disk_path = dir.path().join("vm0_root.qcow2");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            &s(&store),
            &s(&disk_path),
        ]);
        let disk: DiskSpec = serde_json::from_value(json!({
            "type": "template", "name": "root", "dev": "vda", "format": "qcow2",
            "path": disk_path, "template_type": "lago", "base": store, "base_format": "qcow2"
        }))
        .expect("disk");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).expect("mkdir");

        let layered = out.join("layered.qcow2");
        export_disk("vm0", &disk_path, &disk, &layered, false).expect("exports");
        assert_eq!(backing(&layered), json!("embedded:tiny:v1"));
        assert!(!partial(&layered).exists());

        let standalone = out.join("standalone.qcow2");
        export_disk("vm0", &disk_path, &disk, &standalone, true).expect("exports");
        assert_eq!(backing(&standalone), Value::Null);

        // A qcow2-template disk has no template image: merged.
        let mut own_base = disk.clone();
        own_base.template_type = Some("qcow2".into());
        let merged = out.join("merged.qcow2");
        export_disk("vm0", &disk_path, &own_base, &merged, false).expect("exports");
        assert_eq!(backing(&merged), Value::Null);

        assert_eq!(
            backing(&disk_path),
            json!(s(&store)),
            "the source is unchanged"
        );

        // A failed export leaves nothing.
        let missing = dir.path().join("missing.qcow2");
        let failed = out.join("failed.qcow2");
        assert!(export_disk("vm0", &missing, &disk, &failed, false).is_err());
        assert!(!failed.exists() && !partial(&failed).exists());
    }
}
