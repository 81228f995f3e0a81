//! `lago list`: the prefixes of a workdir.

use clap::{Arg, ArgAction, ArgMatches, Command};
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
        .arg(
            Arg::new("details")
                .long("details")
                .action(ArgAction::SetTrue)
                .help("For each prefix also whether it is the current one, initialized, and its path"),
        )
}

/// The prefix names, as Lago printed them: one per line in the default
/// format, a list in the others (`["default","p1"]` with `-f json`).
/// `--details`: `{NAME: {current, initialized, path}}` instead.
pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let wd = match args.get_one::<String>("workdir_path") {
        Some(p) => Workdir::open(std::path::Path::new(p))?,
        None => ctx.workdir()?,
    };
    if !args.get_flag("details") {
        let names = wd.prefixes()?;
        return Ok(if names.is_empty() && ctx.out_format() == "default" {
            Output::Nothing
        } else if ctx.out_format() == "default" {
            Output::Text(names.join("\n"))
        } else {
            Output::Data(serde_json::Value::from(names))
        });
    }
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
