//! The local template store (`[init] template_store`), laid out as Lago's:
//!
//! ```text
//! repo:template:version            the image (present = complete)
//! repo:template:version.hash       its sha1
//! repo:template:version.metadata   JSON: distro, root-password, ...
//! repo:template:version.tmp        while downloading
//! repo:template:version.lock       per-image lock: concurrent inits fetch once
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::repo::ResolvedVersion;
use super::TemplateError;

/// How long an init waits for another process importing the same image.
const LOCK_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
pub struct TemplateStore {
    root: PathBuf,
}

/// An image ready in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredImage {
    pub path: PathBuf,
    /// `qcow2` or `raw`, read from the image itself.
    pub format: String,
    pub hash: String,
    pub metadata: serde_json::Value,
}

impl TemplateStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, name: &str, ext: &str) -> PathBuf {
        if ext.is_empty() {
            self.root.join(name)
        } else {
            self.root.join(format!("{name}.{ext}"))
        }
    }

    /// The image of `version`, imported from its source first when missing.
    ///
    /// The store name is `repo:template:version`, as Lago's. When the source
    /// now publishes another hash for it (a template rebuilt under the same
    /// version name, or another repository file with the same repository
    /// name), the stored image is left as it is, since prefixes of any user
    /// may be built on it, and the new one is kept beside it as
    /// `repo:template:version:<sha1>`.
    pub fn ensure(&self, version: &ResolvedVersion) -> Result<StoredImage, TemplateError> {
        let base = version.store_name();
        let published = version.source.expected_hash(&version.handle)?;
        let current = |image: &StoredImage| published.as_ref().is_none_or(|h| *h == image.hash);
        // The name to use: the plain one unless it holds another image.
        let pick = |store: &Self| -> Result<(String, Option<StoredImage>), TemplateError> {
            match (store.lookup(&base)?, published.as_deref()) {
                (Some(image), _) if current(&image) => Ok((base.clone(), Some(image))),
                (Some(image), Some(hash)) => {
                    tracing::info!(
                        "template {base} in the store has sha1 {}, its source now publishes \
                         {hash}: keeping both",
                        image.hash
                    );
                    let alt = format!("{base}:{hash}");
                    let found = store.lookup(&alt)?.filter(|i| current(i));
                    Ok((alt, found))
                }
                _ => Ok((base.clone(), None)),
            }
        };
        if let (_, Some(image)) = pick(self)? {
            return Ok(image);
        }
        std::fs::create_dir_all(&self.root).map_err(|source| TemplateError::Io {
            what: format!("creating template store {}", self.root.display()),
            source,
        })?;
        let _lock = self.lock(&base)?;
        // Another process may have imported it while we waited for the lock.
        let (name, found) = pick(self)?;
        if let Some(image) = found {
            return Ok(image);
        }
        crate::progress::task(format_args!("Download template {name}"), || {
            self.import(version, &name, published.as_deref())
        })?;
        self.lookup(&name)?.ok_or_else(|| TemplateError::Io {
            what: format!("reading back imported image {name}"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }

    /// The stored image `name`, if it is complete.
    pub fn lookup(&self, name: &str) -> Result<Option<StoredImage>, TemplateError> {
        let path = self.file(name, "");
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TemplateError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                })
            }
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(TemplateError::BadStoreFile {
                    path,
                    what: if meta.file_type().is_symlink() {
                        "a symbolic link".into()
                    } else {
                        "not a regular file".into()
                    },
                })
            }
            Ok(meta) => {
                use std::os::unix::fs::MetadataExt;
                // SAFETY: geteuid has no preconditions.
                let me = unsafe { libc::geteuid() };
                let store_group = std::fs::metadata(&self.root).map(|m| m.gid()).ok();
                if meta.uid() != 0 && meta.uid() != me && Some(meta.gid()) != store_group {
                    return Err(TemplateError::BadStoreFile {
                        path,
                        what: format!(
                            "owned by uid {} and gid {}: neither root, you, nor the store's group",
                            meta.uid(),
                            meta.gid()
                        ),
                    });
                }
            }
        }
        let read = |ext: &str| read_store_text(&self.file(name, ext));
        let hash = read("hash")?.trim().to_string();
        let metadata_text = read("metadata")?;
        let metadata =
            super::parse_metadata(&metadata_text).map_err(|reason| TemplateError::BadMetadata {
                location: self.file(name, "metadata").display().to_string(),
                reason,
            })?;
        let format = image_format(&path)?;
        Ok(Some(StoredImage {
            path,
            format,
            hash,
            metadata,
        }))
    }

    fn lock(&self, name: &str) -> Result<File, TemplateError> {
        let path = self.file(name, "lock");
        // A store shared by the users of group `lago` (docs/install.md):
        // never through a planted symlink (root would create its target);
        // another user's lock file may be read-only to us.
        let file = crate::files::open_shared_lock(&path, true).map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                TemplateError::BadStoreFile {
                    path: path.clone(),
                    what: source.to_string(),
                }
            } else {
                TemplateError::Io {
                    what: format!("opening lock {}", path.display()),
                    source,
                }
            }
        })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(TemplateError::LockTimeout {
                        path,
                        waited: LOCK_TIMEOUT,
                    })
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(TemplateError::Io {
                        what: format!("locking {}", path.display()),
                        source,
                    })
                }
            }
        }
    }

    /// Fetches into `.tmp`, checks the hash, writes `.hash` and `.metadata`,
    /// and renames the image into place last.
    fn import(
        &self,
        version: &ResolvedVersion,
        name: &str,
        expected: Option<&str>,
    ) -> Result<(), TemplateError> {
        let tmp = self.file(name, "tmp");
        let result = (|| {
            let mut file = create_fresh(&tmp).map_err(|source| TemplateError::Io {
                what: format!("creating {}", tmp.display()),
                source,
            })?;
            tracing::info!(
                "importing template {} from {}",
                name,
                version.source.describe(&version.handle)
            );
            let got = version.source.fetch(&version.handle, &mut file)?;
            file.sync_all().map_err(|source| TemplateError::Io {
                what: format!("writing {}", tmp.display()),
                source,
            })?;
            if let Some(expected) = expected {
                if expected != got {
                    return Err(TemplateError::HashMismatch {
                        image: version.source.describe(&version.handle),
                        expected: expected.to_string(),
                        got,
                    });
                }
            }
            let metadata = version.source.metadata(&version.handle)?;
            let metadata_text = serde_json::to_string_pretty(&metadata).map_err(|e| {
                TemplateError::BadMetadata {
                    location: name.to_string(),
                    reason: e.to_string(),
                }
            })?;
            write_atomic(&self.file(name, "metadata"), metadata_text.as_bytes())?;
            write_atomic(&self.file(name, "hash"), got.as_bytes())?;
            std::fs::rename(&tmp, self.file(name, "")).map_err(|source| TemplateError::Io {
                what: format!("moving {} into place", tmp.display()),
                source,
            })
        })();
        if result.is_err() {
            // Keep nothing of a failed import.
            for ext in ["tmp", "hash", "metadata"] {
                let _ = std::fs::remove_file(self.file(name, ext));
            }
        }
        result
    }
}

/// A small file of the store written atomically (see
/// [`crate::files::write_atomic`]: a planted file or link at the temporary
/// name is removed, never followed).
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), TemplateError> {
    crate::files::write_atomic(path, data, None).map_err(|source| TemplateError::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

/// Creates `path` anew in the (maybe shared) store: whatever is there (a
/// file, or a symbolic link another user planted) is removed, never
/// followed, and the new file is made with `O_EXCL | O_NOFOLLOW`.
fn create_fresh(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Reads a small text file of the store (`.hash`, `.metadata`): never
/// through a symbolic link, never blocking, only a regular file.
fn read_store_text(path: &Path) -> Result<String, TemplateError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |what: &str| TemplateError::BadStoreFile {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    let io_err = |source| TemplateError::Io {
        what: format!("reading {}", path.display()),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => bad("a symbolic link"),
            _ => io_err(e),
        })?;
    if !file.metadata().map_err(io_err)?.file_type().is_file() {
        return Err(bad("not a regular file"));
    }
    let mut text = String::new();
    file.take(1 << 20)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    Ok(text)
}

/// `qcow2` when the file starts with qcow2's magic, else `raw`. A qcow2
/// image that names another file (a backing file, or an external data
/// file) is refused: a store image stands alone, and such a link would
/// have lago (as root, maybe) hand that file to QEMU and to libvirt's
/// relabelling.
pub fn image_format(path: &Path) -> Result<String, TemplateError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // magic, version, backing_file_offset (8 bytes, big-endian), ...,
    // incompatible_features at byte 72 (version 3).
    let mut header = [0u8; 80];
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| TemplateError::Io {
            what: format!("opening {}", path.display()),
            source,
        })?;
    let mut n = 0;
    while n < header.len() {
        match file.read(&mut header[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(TemplateError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                })
            }
        }
    }
    if n < 4 || &header[..4] != b"QFI\xfb" {
        return Ok("raw".to_string());
    }
    let be64 = |at: usize| u64::from_be_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let version = u32::from_be_bytes(header[4..8].try_into().unwrap_or([0; 4]));
    // bit 2 of incompatible_features: an external data file
    const EXTERNAL_DATA_FILE: u64 = 1 << 2;
    if n < 72 || be64(8) != 0 {
        return Err(TemplateError::BadStoreFile {
            path: path.to_path_buf(),
            what: "a qcow2 image with a backing file (a store image must stand alone)".into(),
        });
    }
    if version >= 3 && n == header.len() && be64(72) & EXTERNAL_DATA_FILE != 0 {
        return Err(TemplateError::BadStoreFile {
            path: path.to_path_buf(),
            what: "a qcow2 image with an external data file (a store image must stand alone)"
                .into(),
        });
    }
    Ok("qcow2".to_string())
}
