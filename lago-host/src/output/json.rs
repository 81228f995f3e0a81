//! Lago's `JSONOutFormatPlugin`: `json.dumps(info, sort_keys=True, indent=4)`.

use std::fmt::Write as _;

use lago_plugin_api::{OutFormatPlugin, PluginResult};
use serde_json::Value;

use super::py_float;

/// The `json` out-format.
pub struct JsonFormat;

impl OutFormatPlugin for JsonFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        let mut out = String::new();
        write_value(tree, 0, &mut out);
        Ok(out)
    }
}

const INDENT: &str = "    ";

fn newline_indent(level: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..level {
        out.push_str(INDENT);
    }
}

/// Python's encoder with `indent=4`, `sort_keys=True`, `ensure_ascii=True`
/// and the Python 3 separators (`,` and `: `).
pub fn write_value(v: &Value, level: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(level + 1, out);
                write_value(item, level + 1, out);
            }
            newline_indent(level, out);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(level + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(&map[key], level + 1, out);
            }
            newline_indent(level, out);
            out.push('}');
        }
    }
}

fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        py_float(f)
    }
}

/// A JSON string as Python's `ensure_ascii` encoder writes it.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(v: &Value) -> String {
        let mut s = String::new();
        write_value(v, 0, &mut s);
        s
    }

    #[test]
    fn python_layout() {
        assert_eq!(
            fmt(&json!({"b": [1, 2.5], "a": {}, "c": []})),
            "{\n    \"a\": {},\n    \"b\": [\n        1,\n        2.5\n    ],\n    \"c\": []\n}"
        );
    }

    #[test]
    fn ascii_escapes() {
        assert_eq!(
            fmt(&json!("é\u{1F600}\u{7f}\"\n")),
            r#""\u00e9\ud83d\ude00\u007f\"\n""#
        );
    }
}
