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
    let node = Node::deserialize(&mut de)?;
    de.end()?;
    // JSON has no merge keys: a repeated `<<` is a repeated key like any other.
    node.into_value(false).map_err(de::Error::custom)
}

/// The merge key of YAML 1.1 (`<<: *anchor`), as PyYAML reads it.
pub const MERGE_KEY: &str = "<<";

/// A parsed document before merge keys are applied: mappings keep their
/// pairs in written order, and a mapping may repeat [`MERGE_KEY`] (PyYAML
/// merges every one of them). Any other repeated key is refused while
/// parsing, so the parser's error carries its position. Keys that are
/// numbers, booleans or null become their text.
#[derive(Debug)]
pub enum Node {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value, with merge keys applied as PyYAML's `flatten_mapping`
    /// does when `merges` is set (see [`flatten`]).
    pub fn into_value(self, merges: bool) -> Result<Value, String> {
        Ok(match self {
            Node::Scalar(v) => v,
            Node::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .map(|n| n.into_value(merges))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(pairs) => {
                let pairs = if merges { flatten(pairs)? } else { pairs };
                let mut out = Map::new();
                for (k, v) in pairs {
                    if !merges && out.contains_key(&k) {
                        return Err(format!("duplicate key {k:?}"));
                    }
                    // Later pairs win: merged ones come first, so the
                    // mapping's own keys override them.
                    out.insert(k, v.into_value(merges)?);
                }
                Value::Object(out)
            }
        })
    }
}

/// PyYAML's `SafeConstructor.flatten_mapping`: every `<<` pair is removed;
/// a mapping value is flattened itself and its pairs merged; a list of
/// mappings is flattened item by item and merged last item first (so the
/// first item wins); the merged pairs of all `<<` keys, in written order,
/// go before the mapping's own pairs, and a later pair wins.
fn flatten(pairs: Vec<(String, Node)>) -> Result<Vec<(String, Node)>, String> {
    let mut merged = Vec::new();
    let mut own = Vec::new();
    for (k, v) in pairs {
        if k != MERGE_KEY {
            own.push((k, v));
            continue;
        }
        match v {
            Node::Map(inner) => merged.extend(flatten(inner)?),
            Node::Seq(items) => {
                let mut each = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Node::Map(inner) => each.push(flatten(inner)?),
                        _ => return Err(merge_refused("a list holding something else")),
                    }
                }
                each.into_iter().rev().for_each(|p| merged.extend(p));
            }
            Node::Scalar(s) => return Err(merge_refused(&format!("{s}"))),
        }
    }
    merged.extend(own);
    Ok(merged)
}

fn merge_refused(found: &str) -> String {
    format!(
        "the merge key `<<` takes a mapping or a list of mappings (an anchor such as *base), found {found}"
    )
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    /// An integer past 64 bits (PyYAML reads any size): kept as its digits,
    /// refused with its position where a number is expected.
    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    /// A tagged value (`!tag value`): the tag is dropped, the value kept.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (_tag, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<Node>(variant)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out: Vec<(String, Node)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(Key(k)) = map.next_key()? {
            if k != MERGE_KEY && !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
            out.push((k, map.next_value()?));
        }
        Ok(Node::Map(out))
    }
}

/// A mapping key: text, or a scalar read as its text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        match Node::deserialize(d)? {
            Node::Scalar(Value::String(s)) => Ok(Key(s)),
            Node::Scalar(Value::Null) => Ok(Key("null".to_string())),
            Node::Scalar(v) => Ok(Key(v.to_string())),
            Node::Seq(_) => Err(de::Error::custom(
                "a mapping key must be a string, found a list",
            )),
            Node::Map(_) => Err(de::Error::custom(
                "a mapping key must be a string, found a mapping",
            )),
        }
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
