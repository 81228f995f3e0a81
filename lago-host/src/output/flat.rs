//! Lago's `FlatOutFormatPlugin`: one `path/to/key: value` line per leaf.

use lago_plugin_api::{OutFormatPlugin, PluginResult};
use serde_json::Value;

use super::py_str;
use crate::initfile::rules::escape_unsafe;

/// The `flat` out-format.
pub struct FlatFormat;

impl OutFormatPlugin for FlatFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        Ok(render(tree, "/"))
    }
}

/// Lago starts from `tree["Prefix"]`; a tree without that key is flattened
/// whole. Keys are sorted, lists are flattened in place (each item under the
/// list's key). Unlike Lago's code, the items of a list of scalars do not
/// accumulate on one line (`k: a`, `k: a: b`): each gives its own `k: item`.
/// Control and bidi characters in keys and values are written as escapes
/// (`\n`, `\u{1b}`): values come from plugins and stored state too, and one
/// must never forge a line or drive the terminal.
pub fn render(tree: &Value, delimiter: &str) -> String {
    let root = match tree {
        Value::Object(m) if m.contains_key("Prefix") => &m["Prefix"],
        other => other,
    };
    let mut acc = Vec::new();
    dfs(root, &mut Vec::new(), delimiter, &mut acc);
    acc.join("\n")
}

fn dfs<'a>(node: &'a Value, path: &mut Vec<&'a str>, delimiter: &str, acc: &mut Vec<String>) {
    match node {
        Value::Array(items) => {
            for item in items {
                dfs(item, path, delimiter, acc);
            }
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                path.push(key.as_str());
                dfs(&map[key], path, delimiter, acc);
                path.pop();
            }
        }
        leaf => {
            let value = escape_unsafe(&py_str(leaf)).into_owned();
            match path.split_last() {
                Some((last, init)) => {
                    let init: Vec<_> = init.iter().map(|k| escape_unsafe(k)).collect();
                    let mut line = init.join(delimiter);
                    if !init.is_empty() {
                        line.push_str(delimiter);
                    }
                    line.push_str(&escape_unsafe(last));
                    line.push_str(": ");
                    line.push_str(&value);
                    acc.push(line);
                }
                None => acc.push(value),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_shape() {
        let tree = json!({"Prefix": {
            "VMs": {"vm0": {"status": "down", "groups": ["a", "b"]}},
            "Networks": {"lago": {"gateway": "192.168.200.1", "management": true}},
        }});
        assert_eq!(
            render(&tree, "/"),
            "Networks/lago/gateway: 192.168.200.1\nNetworks/lago/management: True\n\
             VMs/vm0/groups: a\nVMs/vm0/groups: b\nVMs/vm0/status: down"
        );
    }

    #[test]
    fn without_prefix_and_scalars() {
        assert_eq!(render(&json!({"a": {"b": null}}), "/"), "a/b: None");
        assert_eq!(render(&json!(["x", "y"]), "/"), "x\ny");
    }

    #[test]
    fn newlines_cannot_forge_lines() {
        let tree = json!({"VMs": {"vm0": {"foo": "a\nVMs/vm1/status: up", "k\ney": "\u{1b}[2J"}}});
        assert_eq!(
            render(&tree, "/"),
            "VMs/vm0/foo: a\\nVMs/vm1/status: up\nVMs/vm0/k\\ney: \\u{1b}[2J"
        );
    }
}
