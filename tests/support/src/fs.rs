//! File trees: modes, snapshots, copies.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha1::{Digest, Sha1};

/// The permission bits of `p` (symlinks followed).
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

/// The permission bits of `p` itself (a symlink's own).
pub fn lmode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// Sets the permission bits of `p`.
pub fn set_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// The SHA-1 of a file's content.
pub fn sha1_file(p: &Path) -> Vec<u8> {
    Sha1::digest(std::fs::read(p).expect("read")).to_vec()
}

/// One entry of a [`snapshot`]: relative path, mode, SHA-1 of a file.
pub type Entry = (String, u32, Option<Vec<u8>>);

/// (relative path, mode, SHA-1 of files) of every entry of a tree, sorted;
/// symlinks followed. `mode` gives an entry's mode ([`mode`] or [`lmode`]).
pub fn snapshot_with(root: &Path, mode: fn(&Path) -> u32) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let rel = p
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::metadata(&p).expect("stat");
        if meta.is_dir() {
            out.push((rel, mode(&p), None));
            for e in std::fs::read_dir(&p).expect("list") {
                stack.push(e.expect("entry").path());
            }
        } else {
            out.push((rel, mode(&p), Some(sha1_file(&p))));
        }
    }
    out.sort();
    out
}

/// [`snapshot_with`] the modes symlinks point to.
pub fn snapshot(root: &Path) -> Vec<Entry> {
    snapshot_with(root, mode)
}

/// Copies the tree `from` to `to` (made).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read tree").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Writes `body` to `dir/name` (folders made); returns its path.
pub fn write_file(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p
}

/// How many `*.lease` files `dir` holds (none when it does not exist).
pub fn lease_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".lease"))
                .count()
        })
        .unwrap_or(0)
}
