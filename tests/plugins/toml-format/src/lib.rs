//! An example third-party out-format: `-f toml` renders the tree as TOML-ish
//! text (scalars first, then one `[table]` per nested mapping, dotted paths).
//! Built only against `lago-plugin-api`.

use lago_plugin_api::serde_json::Value;
use lago_plugin_api::{OutFormatPlugin, PluginResult};

pub struct Toml;

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"\"".to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(scalar).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(_) => "{}".to_string(),
        other => other.to_string(),
    }
}

fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

fn table(
    path: &[String],
    map: &lago_plugin_api::serde_json::Map<String, Value>,
    out: &mut Vec<String>,
) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    if !path.is_empty() {
        out.push(format!("[{}]", path.join(".")));
    }
    for k in &keys {
        if !map[*k].is_object() {
            out.push(format!("{} = {}", quote_key(k), scalar(&map[*k])));
        }
    }
    for k in keys {
        if let Value::Object(inner) = &map[k] {
            let mut p = path.to_vec();
            p.push(quote_key(k));
            table(&p, inner, out);
        }
    }
}

impl OutFormatPlugin for Toml {
    fn format(&self, tree: &Value) -> PluginResult<String> {
        let mut out = Vec::new();
        match tree {
            Value::Object(m) => table(&[], m, &mut out),
            other => out.push(format!("value = {}", scalar(other))),
        }
        Ok(out.join("\n"))
    }
}

lago_plugin_api::export_plugins! {
    out_formats: ["toml" => Toml],
}
