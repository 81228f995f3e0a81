//! `lago start`: Deploy lago resources: start the VMs (all, or those named) and wait until each answers SSH.

use clap::{Arg, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("start")
        .about("Deploy lago resources: start the VMs (all, or those named) and wait until each answers SSH")
        .arg(
            Arg::new("vm_names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vm to start"),
        )
        .arg(
            Arg::new("cold")
                .long("cold")
                .action(clap::ArgAction::SetTrue)
                .help("Boot every VM, even one that could start warm from its template's saved memory ([lago] warm_start = off for this start)"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    if args.get_flag("cold") {
        // the provider reads it through the host (docs/template.md, warm starts)
        ctx.config.set("lago", "warm_start", "off");
        crate::plugins::host::set_config(&ctx.config);
    }
    // `Env::start` holds the prefix lock: a `destroy` meanwhile is refused.
    let env = open_env(ctx)?;
    crate::progress::task("Start Prefix", || env.start(&vm_names(args, "vm_names")))?;
    Ok(Output::Nothing)
}
