//! The built-in out-formats, rendering exactly as Lago's own plugins do so
//! that scripts written against Lago's output keep working:
//!
//! * `default` ([`default::DefaultFormat`]): keys sorted; a non-empty mapping
//!   as a `[key]:` line with its entries indented four more spaces; a scalar as
//!   `key: value`; booleans `True`/`False`; null, empty strings and empty
//!   mappings left out; a list's items one per line under `key: `.
//! * `json` ([`json::JsonFormat`]): sorted keys, indent 4, non-ASCII escaped
//!   (Python's `json.dumps(sort_keys=True, indent=4)`).
//! * `yaml` ([`yaml::YamlFormat`]): block style, sorted keys.
//! * `flat` ([`flat::FlatFormat`]): one `path/to/key: value` line per leaf,
//!   with a top-level `Prefix` key dropped.
//!
//! Unlike Lago, `default` and `flat` write control and bidi characters in
//! keys and values as escapes (`\n`, `\t`, `\u{1b}`): a value (from an init
//! file, a plugin or stored state) can never forge a line or drive the
//! terminal.
//!
//! They are ordinary [`OutFormatPlugin`](lago_plugin_api::OutFormatPlugin)s
//! registered through `inventory`, like any plugin the registry holds.

use lago_plugin_api::PluginSet;
use serde_json::Value;

pub mod default;
pub mod flat;
pub mod json;
pub mod yaml;

fn builtin_formats() -> PluginSet {
    PluginSet::new()
        .out_format("default", default::DefaultFormat)
        .out_format("json", json::JsonFormat)
        .out_format("yaml", yaml::YamlFormat)
        .out_format("flat", flat::FlatFormat)
}

inventory::submit! { crate::plugins::Builtin(builtin_formats) }

/// Python's `str()` of a JSON scalar: `True`/`False`/`None`, integers as
/// they are, floats as Python's `repr` writes them.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => py_float(f),
            _ => n.to_string(),
        },
        // Not reached by the formats (they recurse into containers); Python
        // would print its repr, JSON text is the closest.
        other => other.to_string(),
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `1.0` for integral
/// values, exponent form (`1e+16`, `1e-05`) outside [1e-4, 1e16).
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust's `{:e}`: "1e16", "1.5e-5" → Python: "1e+16", "1.5e-05".
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(-2.25), "-2.25");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(123456789.125), "123456789.125");
        assert_eq!(py_float(0.0), "0.0");
    }

    #[test]
    fn python_scalars() {
        assert_eq!(py_str(&Value::Bool(true)), "True");
        assert_eq!(py_str(&Value::Null), "None");
        assert_eq!(py_str(&serde_json::json!(42)), "42");
        assert_eq!(py_str(&serde_json::json!("x y")), "x y");
    }
}
