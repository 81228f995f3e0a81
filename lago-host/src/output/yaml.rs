//! Lago's `YAMLOutFormatPlugin` (`yaml.dump(info)`: block style, sorted keys).
//!
//! The only module of the output formats that touches `serde_yaml`.

use lago_plugin_api::{OutFormatPlugin, PluginError, PluginResult};
use serde_json::Value;

/// The `yaml` out-format.
pub struct YamlFormat;

impl OutFormatPlugin for YamlFormat {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        let mut s = serde_yaml::to_string(&sorted(tree))
            .map_err(|e| PluginError::internal(format!("cannot write YAML: {e}")))?;
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }
}

/// A YAML value with every mapping's keys in sorted order.
fn sorted(v: &Value) -> serde_yaml::Value {
    match v {
        Value::Null => serde_yaml::Value::Null,
        Value::Bool(b) => serde_yaml::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => serde_yaml::Value::Number(i.into()),
            (None, Some(u), _) => serde_yaml::Value::Number(u.into()),
            (None, None, Some(f)) => serde_yaml::Value::Number(f.into()),
            _ => serde_yaml::Value::String(n.to_string()),
        },
        Value::String(s) => serde_yaml::Value::String(s.clone()),
        Value::Array(items) => serde_yaml::Value::Sequence(items.iter().map(sorted).collect()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut m = serde_yaml::Mapping::new();
            for k in keys {
                m.insert(serde_yaml::Value::String(k.clone()), sorted(&map[k]));
            }
            serde_yaml::Value::Mapping(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_sorted() -> PluginResult<()> {
        let out = YamlFormat.format(&json!({"b": [1, "x"], "a": {"d": true, "c": null}}))?;
        assert_eq!(out, "a:\n  c: null\n  d: true\nb:\n- 1\n- x");
        Ok(())
    }
}
