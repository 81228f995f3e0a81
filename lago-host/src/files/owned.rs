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
//! entered, and is reported instead of removed. A bind mount of the same
//! file system has the same `st_dev`, so before anything is removed the
//! mount table ([`mounts_at_or_below`]) is asked too: any mount point at or
//! below the folder stops the removal with nothing removed.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The marker file of a workdir lago made (empty).
pub const WORKDIR_MARKER: &str = ".lago-workdir";
/// The current-prefix link inside a workdir.
pub const CURRENT_LINK: &str = "current";
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
        name != CURRENT_LINK
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

/// The mount points at or below `root` (after resolving its links), from
/// `/proc/self/mountinfo` (its 5th field, with the kernel's `\ooo` octal
/// escapes decoded). A bind mount of a folder of the same file system is
/// found here although its `st_dev` is the same as its parent's.
pub fn mounts_at_or_below(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let root = match fs::canonicalize(root) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let table = fs::read("/proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in table.split(|b| *b == b'\n') {
        let Some(field) = line.split(|b| *b == b' ').nth(4) else {
            continue;
        };
        let point = PathBuf::from(<std::ffi::OsString as OsStringExt>::from_vec(
            unescape_octal(field),
        ));
        if point.starts_with(&root) && !out.contains(&point) {
            out.push(point);
        }
    }
    Ok(out)
}

/// Decode mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field.get(i + 1..i + 4);
        match digits {
            Some(d) if field[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// Remove the folder `root` and everything in it, never following a
/// symlink and never entering another file system. Entries of `root` named
/// in `last` (its marker) go after everything else, so a removal stopped
/// half-way still leaves a folder lago recognises. Returns the folders left
/// because they are on another file system; when there are any, `root`,
/// the `last` entries and the folders holding the mount points stay. A
/// mount point at or below `root` ([`mounts_at_or_below`], a bind mount of
/// the same file system too) is returned before anything is removed.
pub fn remove_tree(root: &Path, last: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let meta = fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a folder (lago removes only folders it made)",
        ));
    }
    let mounts = mounts_at_or_below(root)?;
    if !mounts.is_empty() {
        return Ok(mounts);
    }
    let mut left = Vec::new();
    remove_below(root, meta.dev(), last, &mut left)?;
    // The markers go only when nothing else is left (an entry that appeared
    // meanwhile keeps them: the folder stays recognisably lago's).
    let only_markers = fs::read_dir(root)?
        .flatten()
        .all(|e| last.iter().any(|l| e.file_name() == *l));
    if !only_markers && left.is_empty() {
        return Err(std::io::Error::new(
            ErrorKind::DirectoryNotEmpty,
            "an entry appeared while it was removed",
        ));
    }
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
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_octal(br"/a\040b\134c\011"), b"/a b\\c\t".to_vec());
        assert_eq!(unescape_octal(br"/x\09"), br"/x\09".to_vec());
        let root = mounts_at_or_below(Path::new("/")).expect("mountinfo");
        assert!(root.contains(&PathBuf::from("/")), "{root:?}");
    }

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
