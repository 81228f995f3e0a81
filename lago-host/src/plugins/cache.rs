//! The plugin index: what each library on the search path held when it was
//! last opened, so that `lago plugins` and verbs that need one plugin do not
//! `dlopen` every library on every call (the `local-libvirt` provider alone
//! pulls in libvirt and ~50 shared libraries: ~15 ms and ~9 MB).
//!
//! One JSON file, `$XDG_CACHE_HOME/lago/plugin-index.json` (else
//! `~/.cache/lago/plugin-index.json`). An entry is used only while its
//! library file has the same size, modification time and inode, and the
//! whole index only for the same `lago` executable (path, size, mtime) and
//! interface version; anything else is opened and the index rewritten.
//! `LAGO_PLUGIN_INDEX=0` disables it. A library's real load still checks
//! its version and layout: the index only spares opening libraries a
//! command does not use.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lago_plugin_api::INTERFACE_VERSION;
use serde::{Deserialize, Serialize};

use super::PluginKind;

/// The environment variable that disables the index (`0`).
pub const INDEX_VAR: &str = "LAGO_PLUGIN_INDEX";

/// Identity of a file: a changed file is opened again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub size: u64,
    pub mtime_ns: i128,
    pub ino: u64,
}

impl FileId {
    pub fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileId {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ino: m.ino(),
        })
    }
}

/// What opening a library gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Not a lago plugin library.
    NotPlugin,
    /// A lago plugin library that was refused.
    Skipped { warning: String, details: String },
    /// Its plugins.
    Plugins {
        version: String,
        plugins: Vec<(PluginKind, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: PathBuf,
    pub id: FileId,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HostId {
    exe: PathBuf,
    exe_id: Option<FileId>,
    interface: String,
}

impl HostId {
    fn current() -> Option<HostId> {
        let exe = std::env::current_exe().ok()?;
        Some(HostId {
            exe_id: FileId::of(&exe),
            exe,
            interface: INTERFACE_VERSION.to_string(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexFile {
    host: HostId,
    libraries: Vec<IndexEntry>,
}

/// The index as read at start, and what to write back.
#[derive(Debug, Default)]
pub struct Index {
    path: Option<PathBuf>,
    host: Option<HostId>,
    entries: Vec<IndexEntry>,
    dirty: bool,
}

impl Index {
    /// The index file of this user (unless disabled).
    pub fn default_path() -> Option<PathBuf> {
        if std::env::var(INDEX_VAR).is_ok_and(|v| v == "0") {
            return None;
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("lago").join("plugin-index.json"))
    }

    /// Read the index at `path` (`None`: no index). A missing, unreadable or
    /// foreign index is an empty one.
    pub fn open(path: Option<PathBuf>) -> Index {
        let host = HostId::current();
        let entries = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<IndexFile>(&bytes).ok())
            .filter(|f| Some(&f.host) == host.as_ref())
            .map(|f| f.libraries)
            .unwrap_or_default();
        Index {
            path,
            host,
            entries,
            dirty: false,
        }
    }

    /// The recorded outcome of `path`, if the file is unchanged.
    pub fn lookup(&self, path: &Path, id: &FileId) -> Option<&Outcome> {
        self.entries
            .iter()
            .find(|e| e.path == path && &e.id == id)
            .map(|e| &e.outcome)
    }

    /// Record what opening `path` gave.
    pub fn record(&mut self, path: &Path, id: FileId, outcome: Outcome) {
        self.entries.retain(|e| e.path != path);
        self.entries.push(IndexEntry {
            path: path.to_path_buf(),
            id,
            outcome,
        });
        self.dirty = true;
    }

    /// Forget libraries that are no longer candidates.
    pub fn retain(&mut self, candidates: &[PathBuf]) {
        let before = self.entries.len();
        self.entries.retain(|e| candidates.contains(&e.path));
        self.dirty |= self.entries.len() != before;
    }

    /// Write the index back when it changed (atomically; errors only logged).
    pub fn save(&mut self) {
        let (Some(path), Some(host)) = (&self.path, &self.host) else {
            return;
        };
        if !self.dirty {
            return;
        }
        let file = IndexFile {
            host: host.clone(),
            libraries: self.entries.clone(),
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
            std::fs::rename(&tmp, path)
        };
        match write() {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::debug!("cannot write the plugin index {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_invalidation() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let lib = dir.path().join("libx.so");
        std::fs::write(&lib, b"one")?;
        let index_path = dir.path().join("cache/plugin-index.json");
        let id = FileId::of(&lib).ok_or_else(|| std::io::Error::other("no metadata"))?;
        let mut idx = Index::open(Some(index_path.clone()));
        assert!(idx.lookup(&lib, &id).is_none());
        let outcome = Outcome::Plugins {
            version: "0.1.0".into(),
            plugins: vec![(PluginKind::OutFormat, "x".into())],
        };
        idx.record(&lib, id.clone(), outcome.clone());
        idx.save();
        let idx = Index::open(Some(index_path.clone()));
        assert_eq!(idx.lookup(&lib, &id), Some(&outcome));
        std::fs::write(&lib, b"changed")?;
        let id2 = FileId::of(&lib).ok_or_else(|| std::io::Error::other("no metadata"))?;
        assert!(idx.lookup(&lib, &id2).is_none());
        Ok(())
    }
}
