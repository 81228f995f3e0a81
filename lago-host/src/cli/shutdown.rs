//! `lago shutdown`: Shutdown and destroy, or reboot vms.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("shutdown")
        .about("Shutdown and destroy, or reboot vms")
        .long_about(
            "This command will shutdown or reboot the given vms. Networks that will not have \
             running vms connected to them after running this command will be stopped as well.",
        )
        .arg(
            Arg::new("reboot")
                .short('r')
                .long("reboot")
                .action(ArgAction::SetTrue)
                .help("If specified, reboot the requested vms"),
        )
        .arg(
            Arg::new("vm_names")
                .value_name("VM_NAME")
                .num_args(0..)
                .help("Name of the vms to shutdown"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    open_env(ctx)?.shutdown(&vm_names(args, "vm_names"), args.get_flag("reboot"))?;
    Ok(Output::Nothing)
}
