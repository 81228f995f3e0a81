//! What lago made, and removing only that.
//!
//! lago deletes a folder only when it made it (issue 8):
//! - a **prefix** is a folder holding a regular `uuid` file of 32 hex
//!   characters (init writes it first, before anything else; prefixes made by
//!   every earlier lago have it too);
//! - a **workdir** is a folder holding the marker [`WORKDIR_MARKER`] (init
//!   writes it when it makes the workdir, or adopts an older workdir), or,
//!   for workdirs made before the marker existed, at least one prefix.
//!
//! Removal ([`remove_tree`]) walks the folder itself: a symlink is removed,
//! never followed; a folder on another file system (a mount point) is not
//! entered, and is reported instead of removed.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The marker file of a workdir lago made (empty).
pub const WORKDIR_MARKER: &str = ".lago-workdir";
/// The marker file of a prefix lago made: its uuid, written first.
pub const PREFIX_MARKER: &str = "uuid";

/// Whether `path` is a prefix lago made: a folder (not reached through a
/// symlink at its last component is fine) holding a regular `uuid` file of
/// 32 hex characters.
pub fn is_lago_prefix(path: &Path) -> bool {
    let marker = path.join(PREFIX_MARKER);
    let regular = fs::symlink_metadata(&marker).is_ok_and(|m| m.file_type().is_file());
    regular
        && fs::read_to_string(&marker).is_ok_and(|s| {
            let s = s.trim();
            s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Whether `path` is a workdir lago made: it has [`WORKDIR_MARKER`], or
/// (made by an older lago) at least one prefix among its folders.
pub fn is_lago_workdir(path: &Path) -> bool {
    let marker = path.join(WORKDIR_MARKER);
    if fs::symlink_metadata(&marker).is_ok_and(|m| m.file_type().is_file()) {
        return true;
    }
    let Ok(rd) = fs::read_dir(path) else {
        return false;
    };
    rd.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name != super::CURRENT
            && !name.starts_with('.')
            && e.file_type().is_ok_and(|t| t.is_dir())
            && is_lago_prefix(&e.path())
    })
}

/// Write the workdir marker (when missing).
pub fn mark_workdir(path: &Path) -> std::io::Result<()> {
    let marker = path.join(WORKDIR_MARKER);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Remove the folder `root` and everything in it, never following a
/// symlink and never entering another file system. Entries of `root` named
/// in `last` (its marker) go after everything else, so a removal stopped
/// half-way still leaves a folder lago recognises. Returns the folders left
/// because they are on another file system; when there are any, `root`,
/// the `last` entries and the folders holding the mount points stay.
pub fn remove_tree(root: &Path, last: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let meta = fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a folder (lago removes only folders it made)",
        ));
    }
    let mut left = Vec::new();
    remove_below(root, meta.dev(), last, &mut left)?;
    if left.is_empty() {
        for name in last {
            match fs::remove_file(root.join(name)) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::remove_dir(root)?;
    }
    Ok(left)
}

fn remove_below(
    dir: &Path,
    dev: u64,
    skip: &[&str],
    left: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        if skip.iter().any(|s| ent.file_name() == *s) {
            continue;
        }
        let path = ent.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let removed = if meta.is_dir() {
            if meta.dev() != dev {
                left.push(path);
                continue;
            }
            let before = left.len();
            remove_below(&path, dev, &[], left)?;
            if left.len() > before {
                continue;
            }
            fs::remove_dir(&path)
        } else {
            // Files, symlinks (the link, never its target), FIFOs, sockets.
            fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_removal_without_following_links() -> std::io::Result<()> {
        let t = tempfile::tempdir()?;
        let outside = t.path().join("outside");
        fs::create_dir_all(&outside)?;
        fs::write(outside.join("keep"), "x")?;
        let p = t.path().join("wd/p1");
        fs::create_dir_all(p.join("images/sub"))?;
        assert!(!is_lago_prefix(&p));
        assert!(!is_lago_workdir(&t.path().join("wd")));
        fs::write(p.join("uuid"), "not a uuid")?;
        assert!(!is_lago_prefix(&p));
        fs::write(p.join("uuid"), "0123456789abcdef0123456789abcdef")?;
        assert!(is_lago_prefix(&p));
        assert!(is_lago_workdir(&t.path().join("wd")), "legacy rule");
        std::os::unix::fs::symlink(&outside, p.join("images/link"))?;
        std::os::unix::fs::symlink(&outside, p.join("images/sub/link2"))?;
        fs::write(p.join("images/sub/disk"), "d")?;
        assert!(remove_tree(&p, &[PREFIX_MARKER])?.is_empty());
        assert!(!p.exists());
        assert!(outside.join("keep").exists(), "links are not followed");
        // a symlink as the root is refused
        std::os::unix::fs::symlink(&outside, t.path().join("l"))?;
        assert!(remove_tree(&t.path().join("l"), &[]).is_err());
        assert!(outside.join("keep").exists());
        Ok(())
    }
}
