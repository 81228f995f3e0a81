//! `lago deploy`: Run scripts that install necessary RPMs and configuration.
//!
//! Each VM's `metadata.deploy-scripts` (the copies init put in the prefix)
//! run over SSH, the VMs in parallel and each VM's scripts in order. Quiet
//! on success with the default out-format, as Lago; with `-f json` (or any
//! other format) the scripts run per VM, with their exit codes and times.

use clap::{ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("deploy")
        .about("Run scripts that install necessary RPMs and configuration")
        .long_about(
            "Run each VM's deploy scripts (metadata: deploy-scripts in the init file, copied \
             into the prefix at init) over SSH: the VMs in parallel, the scripts of one VM in \
             order. A failing script fails the deploy, naming the VM, the script, its exit \
             code and the last lines of its output; every script's output is kept in the \
             prefix log (logs/lago.log).",
        )
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let structured = ctx.out_format() != "default";
    let env = open_env(ctx)?;
    let runs = env.deploy()?;
    Ok(if structured {
        Output::Data(serde_json::to_value(runs)?)
    } else {
        Output::Nothing
    })
}
