//! An example third-party CLI verb: `lago hello [--name NAME] [-s] [WORDS]...`.
//! Built only against `lago-plugin-api`; logs through `tracing` (forwarded
//! to the host's log).

use lago_plugin_api::serde_json::{json, Value};
use lago_plugin_api::{tracing, ArgSpec, CliContext, CliPlugin, CliSpec, PluginResult};

pub struct Hello;

impl CliPlugin for Hello {
    fn spec(&self) -> CliSpec {
        CliSpec::new("hello", "Say hello (an example plugin verb)")
            .arg(ArgSpec::option("name", "Who to greet").default_value("world"))
            .arg(ArgSpec::flag("shout", "Greet loudly").short('s'))
            .arg(ArgSpec::positional("words", "Words to add").multiple())
    }

    fn run(&self, args: &Value, ctx: &CliContext) -> PluginResult<Value> {
        let name = args["name"].as_str().unwrap_or("world");
        let mut greeting = format!("hello, {name}");
        if let Some(words) = args["words"].as_array() {
            for w in words.iter().filter_map(Value::as_str) {
                greeting.push(' ');
                greeting.push_str(w);
            }
        }
        if args["shout"].as_bool() == Some(true) {
            greeting = greeting.to_uppercase();
        }
        tracing::info!(name, "hello plugin greeting");
        Ok(json!({
            "greeting": greeting,
            "out_format": ctx.out_format,
            "has_prefix": ctx.prefix.is_some(),
        }))
    }
}

lago_plugin_api::export_plugins! {
    verbs: ["hello" => Hello],
}
