//! `lago collect`: Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("collect")
        .about("Collect logs from VMs, list of collected logs can be specified in the init file, under artifacts parameter")
        .long_about(
            "Collect logs from VMs, list of collected logs can be specified in the init file, \
             under artifacts parameter. Each VM's paths land in OUTPUT/<vm>/<path with every \
             / replaced by _> (/var/log -> OUTPUT/vm0/_var_log), modes kept; an existing \
             OUTPUT is first renamed to OUTPUT.YYYY-MM-DD_HH:MM:SS. A path missing in a VM \
             is skipped with a warning unless --no-skip. A VM that is not running is read \
             offline when its provider can, else it is an error.",
        )
        .arg(
            Arg::new("output")
                .long("output")
                .required(true)
                .value_name("OUTPUT")
                .help("Path to place all the extracted at"),
        )
        .arg(
            Arg::new("no_skip")
                .long("no-skip")
                .action(ArgAction::SetTrue)
                .help("do not skip missing paths"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let structured = ctx.out_format() != "default";
    let output = args
        .get_one::<String>("output")
        .ok_or_else(|| Error::user("lago collect needs --output"))?;
    let output =
        std::path::absolute(output).map_err(|e| Error::user(format!("--output {output}: {e}")))?;
    let no_skip = args.get_flag("no_skip");
    let env = open_env(ctx)?;
    let collection = env.collect_artifacts(&output, !no_skip)?;
    Ok(if structured {
        Output::Data(serde_json::to_value(collection)?)
    } else {
        Output::Nothing
    })
}
