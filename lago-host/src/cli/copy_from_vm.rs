//! `lago copy-from-vm`: Copy file from a virtual machine to local machine.

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("copy-from-vm")
        .about("Copy file from a virtual machine to local machine")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to copy files from"),
        )
        .arg(
            Arg::new("remote_path")
                .value_name("REMOTE_PATH")
                .required(true)
                .help("Path of the file/dir to copy from the host"),
        )
        .arg(
            Arg::new("local_path")
                .value_name("LOCAL_PATH")
                .required(true)
                .help("Path on the local host to copy the file/dir to"),
        )
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago copy-from-vm"))
}
