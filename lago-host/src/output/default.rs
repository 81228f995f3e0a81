//! Lago's `DefaultOutFormatPlugin`.

use lago_plugin_api::{OutFormatPlugin, PluginResult};
use serde_json::Value;

use super::py_str;

const INDENT_UNIT: &str = "    ";

/// The `default` out-format.
pub struct DefaultFormat;

impl OutFormatPlugin for DefaultFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        Ok(render(tree, ""))
    }
}

/// A line-for-line port of Lago's `DefaultOutFormatPlugin.format`.
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
        scalar => lines.push(py_str(scalar)),
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
    fn top_level_list() {
        assert_eq!(render(&json!(["default", "other"]), ""), "default\nother");
    }
}
