//! A plugin whose methods panic: lago must report an error naming the
//! plugin and carry on (`-f panic`, `lago explode`, `lago bad-spec` whose
//! spec panics).

use lago_plugin_api::serde_json::Value;
use lago_plugin_api::{CliContext, CliPlugin, CliSpec, OutFormatPlugin, PluginResult};

pub struct PanicFormat;

impl OutFormatPlugin for PanicFormat {
    fn format(&self, _tree: &Value) -> PluginResult<String> {
        panic!("the panic out-format always panics")
    }
}

pub struct Explode;

impl CliPlugin for Explode {
    fn spec(&self) -> CliSpec {
        CliSpec::new("explode", "Panic (a test plugin)")
    }
    fn run(&self, _args: &Value, _ctx: &CliContext) -> PluginResult<Value> {
        let v: Vec<u8> = Vec::new();
        // An index out of bounds, as a real bug would.
        Ok(Value::from(v[usize::from(v.is_empty())]))
    }
}

/// A verb whose spec panics: only this verb is disabled, with a warning.
pub struct BadSpec;

impl CliPlugin for BadSpec {
    fn spec(&self) -> CliSpec {
        panic!("the bad-spec verb cannot describe itself")
    }
    fn run(&self, _args: &Value, _ctx: &CliContext) -> PluginResult<Value> {
        Ok(Value::Null)
    }
}

lago_plugin_api::export_plugins! {
    out_formats: ["panic" => PanicFormat],
    verbs: ["explode" => Explode, "bad-spec" => BadSpec],
}
