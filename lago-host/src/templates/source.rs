//! Where template images come from: a folder (`file`) or a web server (`http`).
//!
//! Beside each image `HANDLE` a source serves `HANDLE.hash` (sha1, hex) and
//! `HANDLE.metadata` (JSON). The http source tries `HANDLE.xz` first and unpacks it.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

use sha1::{Digest, Sha1};

use super::TemplateError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File { root: PathBuf },
    Http { baseurl: String },
}

impl Source {
    /// Where the image `handle` is, for messages.
    pub fn describe(&self, handle: &str) -> String {
        match self {
            Source::File { root } => root.join(handle).display().to_string(),
            Source::Http { baseurl } => format!("{baseurl}/{handle}"),
        }
    }

    /// The sha1 the source publishes for `handle`, if it publishes one.
    pub fn expected_hash(&self, handle: &str) -> Result<Option<String>, TemplateError> {
        let text = self.read_sidecar(handle, "hash")?;
        Ok(text.and_then(|t| t.split_whitespace().next().map(str::to_ascii_lowercase)))
    }

    /// The metadata the source publishes for `handle` (empty when none).
    pub fn metadata(&self, handle: &str) -> Result<serde_json::Value, TemplateError> {
        match self.read_sidecar(handle, "metadata")? {
            None => Ok(serde_json::Value::Object(Default::default())),
            Some(text) => {
                super::parse_metadata(&text).map_err(|reason| TemplateError::BadMetadata {
                    location: self.describe(&format!("{handle}.metadata")),
                    reason,
                })
            }
        }
    }

    fn read_sidecar(&self, handle: &str, ext: &str) -> Result<Option<String>, TemplateError> {
        match self {
            Source::File { root } => {
                let path = root.join(format!("{handle}.{ext}"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Some(text)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(TemplateError::Io {
                        what: format!("reading {}", path.display()),
                        source,
                    }),
                }
            }
            Source::Http { baseurl } => {
                let handle = handle.strip_suffix(".xz").unwrap_or(handle);
                let url = format!("{baseurl}/{handle}.{ext}");
                match http_get(&url) {
                    Ok(Some(mut reader)) => {
                        let mut text = String::new();
                        reader
                            .read_to_string(&mut text)
                            .map_err(|e| TemplateError::Download {
                                url: url.clone(),
                                reason: e.to_string(),
                            })?;
                        Ok(Some(text))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Copies or downloads the image into `dest`, returning its sha1 (hex).
    pub fn fetch(&self, handle: &str, dest: &mut File) -> Result<String, TemplateError> {
        match self {
            Source::File { root } => {
                let path = root.join(handle);
                let file = File::open(&path).map_err(|source| TemplateError::Io {
                    what: format!("opening template image {}", path.display()),
                    source,
                })?;
                let size = file.metadata().ok().map(|m| m.len());
                let bytes = crate::progress::bytes(format_args!("copying {handle}"), size);
                copy_hashing(BufReader::new(file), dest, bytes).map_err(|source| {
                    TemplateError::Io {
                        what: format!("copying template image {}", path.display()),
                        source,
                    }
                })
            }
            Source::Http { baseurl } => {
                let url = format!("{baseurl}/{handle}");
                let xz_url = format!("{url}.xz");
                if let Some(reader) = http_get(&xz_url)? {
                    let bytes = crate::progress::bytes(format_args!("downloading {handle}"), None);
                    let mut hashing = HashingWriter::new(dest, bytes);
                    lzma_rs::xz_decompress(&mut BufReader::new(reader), &mut hashing).map_err(
                        |e| TemplateError::Download {
                            url: xz_url.clone(),
                            reason: format!("unpacking xz: {e:?}"),
                        },
                    )?;
                    return Ok(hashing.finish());
                }
                let reader = http_get(&url)?.ok_or_else(|| TemplateError::Download {
                    url: url.clone(),
                    reason: "not found (neither it nor its .xz)".to_string(),
                })?;
                let bytes = crate::progress::bytes(format_args!("downloading {handle}"), None);
                copy_hashing(reader, dest, bytes).map_err(|e| TemplateError::Download {
                    url,
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// GET `url`; `Ok(None)` on 404.
fn http_get(url: &str) -> Result<Option<Box<dyn Read + Send + Sync + 'static>>, TemplateError> {
    match ureq::get(url).call() {
        Ok(response) => Ok(Some(Box::new(response.into_body().into_reader()))),
        Err(ureq::Error::StatusCode(404)) => Ok(None),
        Err(e) => Err(TemplateError::Download {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn http_get_string(url: &str) -> Result<String, TemplateError> {
    let mut reader = http_get(url)?.ok_or_else(|| TemplateError::Download {
        url: url.to_string(),
        reason: "not found".to_string(),
    })?;
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| TemplateError::Download {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    Ok(text)
}

fn copy_hashing(
    mut reader: impl Read,
    dest: &mut File,
    bytes: crate::progress::Bytes,
) -> io::Result<String> {
    let mut hashing = HashingWriter::new(dest, bytes);
    io::copy(&mut reader, &mut hashing)?;
    Ok(hashing.finish())
}

/// Writes through to a file while hashing what passes, and counting it in
/// the live view.
struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: Sha1,
    bytes: crate::progress::Bytes,
}

impl<'a> HashingWriter<'a> {
    fn new(inner: &'a mut File, bytes: crate::progress::Bytes) -> Self {
        Self {
            inner,
            hasher: Sha1::new(),
            bytes,
        }
    }
    fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes.add(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
