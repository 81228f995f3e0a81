//! `lago list`: the prefixes of a workdir.

use clap::{Arg, ArgMatches, Command};
use serde_json::{json, Map};

use super::{Context, Output};
use crate::error::Error;
use crate::prefix::Workdir;

pub fn command() -> Command {
    Command::new("list")
        .about("List the prefixes (envs) in a Workdir")
        .arg(Arg::new("workdir_path").value_name("WORKDIR_PATH").help(
            "Path to the Workdir. If not provided Lago will try to find a Workdir relative to the current directory.",
        ))
}

/// `{NAME: {current, initialized, path}}` for every prefix of the workdir.
pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let wd = match args.get_one::<String>("workdir_path") {
        Some(p) => Workdir::open(std::path::Path::new(p))?,
        None => ctx.workdir()?,
    };
    let current = wd.current()?;
    let mut out = Map::new();
    for name in wd.prefixes()? {
        let p = wd.resolve(Some(&name))?;
        out.insert(
            name.clone(),
            json!({
                "current": current.as_deref() == Some(name.as_str()),
                "initialized": p.is_initialized(),
                "path": p.path().display().to_string(),
            }),
        );
    }
    Ok(Output::Data(serde_json::Value::Object(out)))
}
