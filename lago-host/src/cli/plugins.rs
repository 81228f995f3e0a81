//! `lago plugins`: every plugin the registry holds (built-in and loaded),
//! by kind and name, with its source (`built-in` or the library's path), how
//! it was found (`origin`: `built-in`, `packaged` for
//! `/usr/lib/lago/plugins`, `user`, `LAGO_PLUGIN_PATH` or `beside the
//! executable`) and the interface version it was built against. Two plugins of one kind and
//! name are both listed: the first found under the name, the others in its
//! `conflicts` list (and one warning each); verbs that need that plugin
//! refuse to run until one is removed.

use clap::{ArgMatches, Command};
use serde_json::{json, Map, Value};

use super::{Context, Output};
use crate::error::Error;
use crate::plugins::discovery::Origin;
use crate::plugins::Source;

pub fn command() -> Command {
    Command::new("plugins")
        .about("List every plugin: kind, name, source (built-in or .so path) and interface version")
        .long_about(
            "List every plugin: kind, name, source (built-in or .so path) and interface version.\n\
             Libraries are looked for in $LAGO_PLUGIN_PATH (colon-separated), \
             ~/.local/lib/lago/plugins, /usr/lib/lago/plugins and the folder of the lago \
             executable (liblago_*.so only). Output: {KIND: {NAME: {source, origin, version}}}, \
             origin being built-in, packaged (/usr/lib/lago/plugins), user, LAGO_PLUGIN_PATH \
             or `beside the executable`; a name two plugins claim also has \
             `conflicts: [{source, origin, version}, ...]`.",
        )
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let search_path = ctx.search_path.clone();
    let origin = |source: &str| {
        if source == Source::BuiltIn.to_string() {
            return "built-in";
        }
        search_path
            .origin(std::path::Path::new(source))
            .map_or("unknown", Origin::as_str)
    };
    let reg = ctx.plugin_index()?;
    for c in reg.conflicts() {
        tracing::warn!("{}", c.error());
    }
    let mut tree = Map::new();
    for info in reg.list() {
        let Value::Object(kind) = tree
            .entry(info.kind.as_str().to_string())
            .or_insert_with(|| Value::Object(Map::new()))
        else {
            continue;
        };
        let this = json!({
            "source": info.source,
            "origin": origin(&info.source),
            "version": info.version,
        });
        match kind.get_mut(&info.name) {
            // list() gives one name's plugins in search order: the first
            // found is the entry, later ones its conflicts.
            Some(Value::Object(first)) if first["source"] != this["source"] => {
                if let Value::Array(others) = first
                    .entry("conflicts")
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    others.push(this);
                }
            }
            Some(_) => {}
            None => {
                kind.insert(info.name, this);
            }
        }
    }
    Ok(Output::Data(Value::Object(tree)))
}
