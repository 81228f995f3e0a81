//! The only place that names the YAML crate: swap `serde_yaml` for a
//! maintained fork here and nowhere else.

use serde_json::{Map, Number, Value};
use serde_yaml as yaml;

/// A syntax error with its 1-based position when the parser knows it.
#[derive(Debug)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Parse YAML (anchors, aliases and `<<` merge keys applied) into a JSON
/// value. Mapping keys that are numbers or booleans become strings.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut v: yaml::Value = yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        SyntaxError {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_position(&e.to_string()),
        }
    })?;
    v.apply_merge().map_err(|e| SyntaxError {
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    to_json(v)
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

fn to_json(v: yaml::Value) -> Result<Value, SyntaxError> {
    Ok(match v {
        yaml::Value::Null => Value::Null,
        yaml::Value::Bool(b) => Value::Bool(b),
        yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        yaml::Value::String(s) => Value::String(s),
        yaml::Value::Sequence(seq) => {
            Value::Array(seq.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    yaml::Value::String(s) => s,
                    yaml::Value::Number(n) => n.to_string(),
                    yaml::Value::Bool(b) => b.to_string(),
                    yaml::Value::Null => "null".to_string(),
                    other => {
                        return Err(SyntaxError {
                            line: None,
                            column: None,
                            message: format!(
                                "a mapping key must be a string, found {}",
                                kind(&other)
                            ),
                        })
                    }
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        yaml::Value::Tagged(t) => to_json(t.value)?,
    })
}

fn kind(v: &yaml::Value) -> &'static str {
    match v {
        yaml::Value::Sequence(_) => "a list",
        yaml::Value::Mapping(_) => "a mapping",
        _ => "a tagged value",
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
