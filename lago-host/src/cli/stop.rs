//! `lago stop`: Destroy lago resources: stop the VMs (all, or those named) at once, without a clean shutdown.

use clap::{Arg, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("stop")
        .about("Destroy lago resources: stop the VMs (all, or those named) at once, without a clean shutdown")
        .arg(
            Arg::new("vm_names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vm to stop"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    open_env(ctx)?.stop(&vm_names(args, "vm_names"))?;
    Ok(Output::Nothing)
}
