//! `lago copy-to-vm`: Copy file/dir to a virtual machine from the local host.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("copy-to-vm")
        .about("Copy file/dir to a virtual machine from the local host")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to copy files to"),
        )
        .arg(
            Arg::new("local_path")
                .value_name("LOCAL_PATH")
                .required(true)
                .help("Path of the file/dir to copy from the host"),
        )
        .arg(
            Arg::new("remote_path")
                .value_name("REMOTE_PATH")
                .required(true)
                .help("Path in the VM to copy the file/dir to"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago copy-to-vm"))
}
