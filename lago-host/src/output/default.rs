//! Lago's `DefaultOutFormatPlugin`.

use lago_plugin_api::{OutFormatPlugin, PluginResult};
use serde_json::Value;

use super::py_str;
use crate::initfile::rules::escape_unsafe;

const INDENT_UNIT: &str = "    ";

/// The `default` out-format.
pub struct DefaultFormat;

impl OutFormatPlugin for DefaultFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        Ok(render(tree, ""))
    }
}

/// A line-for-line port of Lago's `DefaultOutFormatPlugin.format`, except
/// that control and bidi characters in keys and values are written as
/// escapes (`\n`, `\u{1b}`): a value must never forge a line.
pub fn render(obj: &Value, indent: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    match obj {
        Value::Array(items) => {
            if !indent.is_empty() {
                lines.push(String::new());
            }
            for item in items {
                lines.push(format!("{indent}{}", render(item, "")));
            }
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let deeper = format!("{indent}{INDENT_UNIT}");
            for key in keys {
                let value = &map[key];
                let key = escape_unsafe(key);
                match value {
                    Value::Object(inner) => {
                        if inner.is_empty() {
                            continue;
                        }
                        lines.push(format!("{indent}[{key}]:"));
                        let s = render(value, &deeper);
                        if !s.is_empty() {
                            lines.push(s);
                        }
                    }
                    Value::Null => {}
                    Value::String(s) if s.is_empty() => {}
                    _ => lines.push(format!("{indent}{key}: {}", render(value, &deeper))),
                }
            }
        }
        scalar => lines.push(escape_unsafe(&py_str(scalar)).into_owned()),
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_lists_and_skips() {
        let tree = json!({
            "b": {"y": true, "x": 1, "e": "", "n": null, "m": {}},
            "a": "text",
            "l": ["one", "two"],
            "empty": [],
        });
        assert_eq!(
            render(&tree, ""),
            "a: text\n[b]:\n    x: 1\n    y: True\nempty: \nl: \n    one\n    two"
        );
    }

    #[test]
    fn newlines_cannot_forge_lines() {
        let tree = json!({"vm0": {"foo": "a\n[vm1]:", "b\nar": ["\u{1b}]0;x\u{7}"]}});
        assert_eq!(
            render(&tree, ""),
            "[vm0]:\n    b\\nar: \n        \\u{1b}]0;x\\u{7}\n    foo: a\\n[vm1]:"
        );
    }

    #[test]
    fn top_level_list() {
        assert_eq!(render(&json!(["default", "other"]), ""), "default\nother");
    }
}
