//! `lago plugins`: every plugin the registry holds (built-in and loaded),
//! by kind and name, with its source (`built-in` or the library's path) and
//! the interface version it was built against.

use clap::{ArgMatches, Command};
use serde_json::{json, Map, Value};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("plugins")
        .about("List every plugin: kind, name, source (built-in or .so path) and interface version")
        .long_about(
            "List every plugin: kind, name, source (built-in or .so path) and interface version.\n\
             Libraries are looked for in $LAGO_PLUGIN_PATH (colon-separated), \
             ~/.local/lib/lago/plugins, /usr/lib/lago/plugins and the folder of the lago \
             executable (liblago_*.so only). Output: {KIND: {NAME: {source, version}}}.",
        )
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let reg = ctx.plugin_index()?;
    let mut tree = Map::new();
    for info in reg.list() {
        let kind = tree
            .entry(info.kind.as_str().to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = kind {
            m.insert(
                info.name,
                json!({"source": info.source, "version": info.version}),
            );
        }
    }
    Ok(Output::Data(Value::Object(tree)))
}
