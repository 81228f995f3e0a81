//! `qemu-img` (scripts/install-deps.sh installs it).

use std::path::Path;
use std::process::Command;

use crate::assert::text;

/// Whether `qemu-img` can be run.
pub fn available() -> bool {
    Command::new("qemu-img").arg("--version").output().is_ok()
}

/// Makes an empty image of `format` and `size` (`16M`) at `path`.
pub fn create(path: &Path, format: &str, size: &str) {
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(path)
        .arg(size)
        .output()
        .expect("qemu-img (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "qemu-img create {}: {}",
        path.display(),
        text(&out.stderr)
    );
}

/// `qemu-img info --output json` of an image.
pub fn info(path: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json", "-U"])
        .arg(path)
        .output()
        .expect("run qemu-img");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("qemu-img info is JSON")
}

/// The internal snapshots of a qcow2 image (`qemu-img snapshot -l`).
pub fn snapshots(path: &Path) -> String {
    let out = Command::new("qemu-img")
        .args(["snapshot", "-l", "-U"])
        .arg(path)
        .output()
        .expect("qemu-img");
    text(&out.stdout)
}
