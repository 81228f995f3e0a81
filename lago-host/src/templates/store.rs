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

    /// The image of `version`, imported from its source first when missing,
    /// or again when the source now publishes another hash for it (a
    /// template rebuilt under the same version name).
    pub fn ensure(&self, version: &ResolvedVersion) -> Result<StoredImage, TemplateError> {
        let name = version.store_name();
        let published = version.source.expected_hash(&version.handle)?;
        let current = |image: &StoredImage| published.as_ref().is_none_or(|h| *h == image.hash);
        if let Some(image) = self.lookup(&name)? {
            if current(&image) {
                return Ok(image);
            }
        }
        std::fs::create_dir_all(&self.root).map_err(|source| TemplateError::Io {
            what: format!("creating template store {}", self.root.display()),
            source,
        })?;
        let _lock = self.lock(&name)?;
        // Another process may have imported it while we waited for the lock.
        if let Some(image) = self.lookup(&name)? {
            if current(&image) {
                return Ok(image);
            }
            tracing::info!(
                "template {name} changed at its source (sha1 {} in the store): importing it again",
                image.hash
            );
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
        if !path.is_file() {
            return Ok(None);
        }
        let read = |ext: &str| {
            let file = self.file(name, ext);
            std::fs::read_to_string(&file).map_err(|source| TemplateError::Io {
                what: format!("reading {}", file.display()),
                source,
            })
        };
        let hash = read("hash")?.trim().to_string();
        let metadata_text = read("metadata")?;
        let metadata =
            serde_json::from_str(&metadata_text).map_err(|e| TemplateError::BadMetadata {
                location: self.file(name, "metadata").display().to_string(),
                reason: e.to_string(),
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
        let open = |write: bool| {
            OpenOptions::new()
                .create(write)
                .truncate(false)
                .read(!write)
                .write(write)
                .open(&path)
        };
        // A store shared by the users of group `lago` (docs/install.md):
        // another user's lock file may be read-only to us, and a lock needs
        // only an open file.
        let file = match open(true) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.is_file() => {
                open(false)
            }
            other => other,
        }
        .map_err(|source| TemplateError::Io {
            what: format!("opening lock {}", path.display()),
            source,
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
            let mut file = File::create(&tmp).map_err(|source| TemplateError::Io {
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

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), TemplateError> {
    let io_err = |source| TemplateError::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    let tmp = path.with_extension(format!(
        "{}.partial",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, data).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// `qcow2` when the file starts with qcow2's magic, else `raw`.
pub fn image_format(path: &Path) -> Result<String, TemplateError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|source| TemplateError::Io {
        what: format!("opening {}", path.display()),
        source,
    })?;
    let n = file.read(&mut magic).map_err(|source| TemplateError::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    Ok(if n == 4 && &magic == b"QFI\xfb" {
        "qcow2"
    } else {
        "raw"
    }
    .to_string())
}
