//! Reading an init file from disk: only a regular file under a size cap (a
//! FIFO, a device or a folder is refused before anything is read), a UTF-8
//! byte-order mark skipped, and JSON parsed with duplicate keys refused as
//! the YAML parser refuses them.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest init file lago reads (real ones are a few KiB).
pub const MAX_INIT_FILE_BYTES: u64 = 4 << 20;

/// The text of the init file at `path`, or why it cannot be one.
pub fn read_text(path: &Path) -> Result<String, String> {
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer;
    // fstat on the opened file then decides (no window between check and use).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read the init file: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the init file: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the init file is not a regular file (it is {})",
            kind(&meta.file_type())
        ));
    }
    if meta.len() > MAX_INIT_FILE_BYTES {
        return Err(format!(
            "the init file is {} bytes, more than the {MAX_INIT_FILE_BYTES} lago reads",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The cap holds even if the file grows while it is read.
    file.take(MAX_INIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the init file: {e}"))?;
    if bytes.len() as u64 > MAX_INIT_FILE_BYTES {
        return Err(format!(
            "the init file is more than the {MAX_INIT_FILE_BYTES} bytes lago reads"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "the init file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(strip_bom(&text).to_string())
}

/// The text without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Parse JSON into a value, refusing a mapping that repeats a key (serde_json
/// alone keeps the last one silently).
pub fn json_no_duplicates(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Checked::deserialize(&mut de)?;
    de.end()?;
    Ok(v.0)
}

struct Checked(Value);

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor).map(Checked)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Checked(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            let Checked(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_duplicates_refused() {
        let e = json_no_duplicates("{\"a\": 1,\n \"b\": {\"c\": 1, \"c\": 2}}").expect_err("dup");
        assert!(e.to_string().contains("duplicate key \"c\""), "{e}");
        assert_eq!(e.line(), 2);
        let v = json_no_duplicates("{\"a\": [1, {\"b\": null}], \"c\": 1.5}").expect("ok");
        assert_eq!(v["a"][1]["b"], Value::Null);
    }

    #[test]
    fn non_files_refused_at_once() {
        let e = read_text(Path::new("/dev/zero")).expect_err("device");
        assert!(e.contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_text(&fifo).expect_err("fifo");
        assert!(e.contains("a FIFO"), "{e}");
        let e = read_text(dir.path()).expect_err("dir");
        assert!(
            e.contains("not a regular file") || e.contains("folder"),
            "{e}"
        );
        let bom = dir.path().join("bom");
        std::fs::write(&bom, "\u{feff}a: 1\n").expect("write");
        assert_eq!(read_text(&bom).expect("bom"), "a: 1\n");
    }
}
