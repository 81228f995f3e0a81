//! libvirt's QEMU save image (`virsh save`, `virDomainSave`), as far as warm
//! starts need it: read the header and the embedded domain XML, and write a
//! copy whose XML is another domain's (name, UUID, MACs, paths).
//!
//! Layout (libvirt `src/qemu/qemu_saveimage.h`, version 2, unchanged from
//! libvirt 1.x to 11.x): a 92-byte header in host byte order
//!
//! ```text
//! magic "LibvirtQemudSave" (16 bytes), version u32 (2), data_len u32,
//! was_running u32, compressed u32 (0 = raw), cookieOffset u32, 14 unused u32
//! ```
//!
//! then `data_len` bytes: the domain XML, NUL, the cookie (CPU definition),
//! NUL, zero padding (libvirt leaves room to edit the XML), then QEMU's
//! migration stream up to the end of the file. A restore reads the XML from
//! the file; lago writes one image per clone with that clone's XML in the
//! same `data_len`, so the stream is copied unchanged (`copy_file_range`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{ProviderError, Result};

/// The header's magic of a complete image (`LibvirtQemudPart` while libvirt
/// is still writing it).
pub const MAGIC: &[u8; 16] = b"LibvirtQemudSave";
/// The header version lago reads and writes.
pub const VERSION: u32 = 2;
/// Size of the header.
pub const HEADER_LEN: usize = 92;
/// The largest XML area lago reads (libvirt's own images: a few KiB of XML
/// plus 64 KiB of padding).
const MAX_DATA_LEN: u32 = 16 << 20;

/// The header and the XML of a save image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveImage {
    pub data_len: u32,
    pub was_running: u32,
    /// 0 = raw; lago only uses raw images.
    pub compressed: u32,
    /// The domain XML the image restores.
    pub xml: String,
    /// The cookie after the XML (libvirt's CPU definition), if any.
    pub cookie: Option<String>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The NUL-terminated string at the start of `b`.
fn c_string(b: &[u8], what: &str) -> Result<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8(b[..end].to_vec())
        .map_err(|_| ProviderError::Spec(format!("save image: the {what} is not UTF-8")))
}

impl SaveImage {
    /// Parses the header and the data area (`bytes` holds at least
    /// [`HEADER_LEN`] + `data_len` bytes of the image).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad =
            |why: &str| ProviderError::Spec(format!("not a usable libvirt save image: {why}"));
        if bytes.len() < HEADER_LEN {
            return Err(bad("shorter than its header"));
        }
        if &bytes[..16] != MAGIC {
            return Err(bad("wrong magic (not a save image, or an incomplete one)"));
        }
        let version = u32_at(bytes, 16);
        if version != VERSION {
            return Err(bad(&format!(
                "header version {version}, lago reads {VERSION}"
            )));
        }
        let data_len = u32_at(bytes, 20);
        let was_running = u32_at(bytes, 24);
        let compressed = u32_at(bytes, 28);
        let cookie_offset = u32_at(bytes, 32);
        if data_len > MAX_DATA_LEN || bytes.len() < HEADER_LEN + data_len as usize {
            return Err(bad("its XML area is cut short"));
        }
        if cookie_offset != 0 && cookie_offset >= data_len {
            return Err(bad("its cookie lies outside the XML area"));
        }
        let data = &bytes[HEADER_LEN..HEADER_LEN + data_len as usize];
        let xml_end = if cookie_offset == 0 {
            data.len()
        } else {
            cookie_offset as usize
        };
        let xml = c_string(&data[..xml_end], "domain XML")?;
        let cookie = match cookie_offset {
            0 => None,
            off => Some(c_string(&data[off as usize..], "cookie")?),
        };
        Ok(SaveImage {
            data_len,
            was_running,
            compressed,
            xml,
            cookie,
        })
    }

    /// Reads the header and XML of the image at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let io = |e| ProviderError::io("reading the save image", path, e);
        let mut f = File::open(path).map_err(io)?;
        let mut head = vec![0u8; HEADER_LEN];
        f.read_exact(&mut head).map_err(io)?;
        let data_len = u32_at(&head, 20).min(MAX_DATA_LEN) as usize;
        head.resize(HEADER_LEN + data_len, 0);
        f.read_exact(&mut head[HEADER_LEN..]).map_err(io)?;
        Self::parse(&head)
    }

    /// Where QEMU's migration stream starts.
    pub fn stream_offset(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.data_len)
    }

    /// Header and data area with `xml` instead of the image's XML, the same
    /// cookie and the same `data_len`; an error when `xml` does not fit.
    pub fn render(&self, xml: &str) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(self.data_len as usize);
        data.extend_from_slice(xml.as_bytes());
        data.push(0);
        let cookie_offset = match &self.cookie {
            None => 0,
            Some(c) => {
                let off = data.len() as u32;
                data.extend_from_slice(c.as_bytes());
                data.push(0);
                off
            }
        };
        if data.len() > self.data_len as usize {
            return Err(ProviderError::Spec(format!(
                "the clone's domain XML ({} bytes) does not fit the save image's XML area ({} bytes)",
                data.len(),
                self.data_len
            )));
        }
        data.resize(self.data_len as usize, 0);
        let mut out = Vec::with_capacity(HEADER_LEN + data.len());
        out.extend_from_slice(MAGIC);
        for v in [
            VERSION,
            self.data_len,
            self.was_running,
            self.compressed,
            cookie_offset,
        ] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.resize(HEADER_LEN, 0);
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Writes `dst`: this image (at `src`) with `xml` as its domain XML.
    /// The stream is copied with `copy_file_range` (std's `io::copy`
    /// between files); `dst` is created new (mode 0600), never overwritten.
    pub fn write_clone(&self, src: &Path, dst: &Path, xml: &str) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let head = self.render(xml)?;
        let rd = |e| ProviderError::io("reading the warm image", src, e);
        let wr = |e| ProviderError::io("writing the clone's save image", dst, e);
        let mut s = File::open(src).map_err(rd)?;
        s.seek(SeekFrom::Start(self.stream_offset())).map_err(rd)?;
        let mut d = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
            .map_err(wr)?;
        d.write_all(&head).map_err(wr)?;
        std::io::copy(&mut s, &mut d).map_err(wr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up image: header, XML, cookie, padding, a fake stream.
    fn image(xml: &str, cookie: Option<&str>, data_len: u32) -> Vec<u8> {
        let img = SaveImage {
            data_len,
            was_running: 1,
            compressed: 0,
            xml: String::new(),
            cookie: cookie.map(str::to_string),
        };
        let mut b = img.render(xml).expect("fits");
        b.extend_from_slice(b"QEVM\0\0\0\x03stream");
        b
    }

    #[test]
    fn parse_reads_what_render_writes() {
        let b = image("<domain/>", Some("<cpu/>"), 4096);
        assert_eq!(b.len(), HEADER_LEN + 4096 + 14);
        assert_eq!(&b[..16], MAGIC);
        let img = SaveImage::parse(&b).expect("parses");
        assert_eq!(img.xml, "<domain/>");
        assert_eq!(img.cookie.as_deref(), Some("<cpu/>"));
        assert_eq!(img.data_len, 4096);
        assert_eq!(img.was_running, 1);
        assert_eq!(img.stream_offset(), (HEADER_LEN + 4096) as u64);
        // the cookie offset is right after the XML's NUL
        assert_eq!(u32_at(&b, 32), 10);
    }

    #[test]
    fn no_cookie() {
        let img = SaveImage::parse(&image("<domain/>", None, 100)).expect("parses");
        assert_eq!(img.cookie, None);
        assert_eq!(img.xml, "<domain/>");
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        let b = image("<domain/>", None, 100);
        let mut part = b.clone();
        part[..16].copy_from_slice(b"LibvirtQemudPart");
        assert!(SaveImage::parse(&part).is_err());
        let mut v3 = b.clone();
        v3[16..20].copy_from_slice(&3u32.to_ne_bytes());
        let e = SaveImage::parse(&v3).expect_err("version 3");
        assert!(e.to_string().contains("header version 3"), "{e}");
        assert!(SaveImage::parse(&b[..HEADER_LEN + 50]).is_err());
        assert!(SaveImage::parse(b"short").is_err());
    }

    #[test]
    fn xml_too_big_for_the_area_is_refused() {
        let img = SaveImage::parse(&image("<domain/>", Some("<cpu/>"), 20)).expect("parses");
        let e = img.render("<domain><name>much longer</name></domain>");
        assert!(e.expect_err("too big").to_string().contains("does not fit"));
    }

    #[test]
    fn write_clone_keeps_the_stream_and_replaces_the_xml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("a.sav");
        std::fs::write(&src, image("<domain>a</domain>", Some("<cpu/>"), 512)).expect("write");
        let img = SaveImage::read(&src).expect("reads");
        let dst = dir.path().join("b.sav");
        img.write_clone(&src, &dst, "<domain>bb</domain>")
            .expect("clone");
        let got = std::fs::read(&dst).expect("read");
        let back = SaveImage::parse(&got).expect("parses");
        assert_eq!(back.xml, "<domain>bb</domain>");
        assert_eq!(back.cookie.as_deref(), Some("<cpu/>"));
        assert_eq!(back.data_len, 512);
        assert!(got.ends_with(b"QEVM\0\0\0\x03stream"));
        assert_eq!(
            got.len(),
            std::fs::metadata(&src).expect("meta").len() as usize
        );
        // never overwrites
        assert!(img.write_clone(&src, &dst, "<domain/>").is_err());
    }
}
