//! The only place that names the YAML crate: swap `serde_yaml` for a
//! maintained fork here and nowhere else.

use serde::Deserialize;
use serde_json::Value;
use serde_yaml as yaml;

use super::read::Node;

/// A syntax error with its 1-based position when the parser knows it.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Parse YAML into a JSON value: anchors and aliases expanded, and `<<`
/// merge keys applied as PyYAML (which Lago used) applies them, nested
/// merges, repeated `<<` keys and `<<: [*a, *b]` included (see
/// [`Node::into_value`]). Mapping keys that are numbers or booleans become
/// strings. A repeated key other than `<<` is an error at its mapping.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    let node = Node::deserialize(yaml::Deserializer::from_str(text)).map_err(|e| {
        let loc = e.location();
        SyntaxError {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_position(&e.to_string()),
        }
    })?;
    node.into_value(true).map_err(|message| SyntaxError {
        line: None,
        column: None,
        message,
    })
}

/// Render a value as YAML (used by the yaml out-format and tests).
pub fn to_string<T: serde::Serialize>(v: &T) -> Result<String, String> {
    yaml::to_string(v).map_err(|e| e.to_string())
}

fn strip_position(msg: &str) -> String {
    // serde_yaml appends " at line L column C"; we print the position ourselves.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_merge() {
        let v = parse("base: &b\n  memory: 512\n  vcpu: 1\nvm:\n  <<: *b\n  vcpu: 2\n1: one\n")
            .expect("parse");
        assert_eq!(v["vm"]["memory"], 512);
        assert_eq!(v["vm"]["vcpu"], 2);
        assert_eq!(v["1"], "one");
    }

    #[test]
    fn syntax_error_position() {
        let e = parse("a: 1\nb: [1, 2\n").expect_err("bad");
        assert!(e.line.is_some(), "{e:?}");
        let e = parse("a: 1\na: 2\n").expect_err("dup");
        assert!(e.message.contains("duplicate"), "{e:?}");
    }
}
