//! `lago shell`: Open shell on the domain or run as script/command.

use std::io::Write;
use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::env::open_env;
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("shell")
        .about("Open shell on the domain or run as script/command")
        .arg(
            Arg::new("host")
                .value_name("HOST")
                .required(true)
                .help("Host to connect to (a unique suffix of its name is enough)"),
        )
        .arg(
            Arg::new("args")
                .value_name("ARGS")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help(
                    "If none provided, an interactive shell will be started. If arguments \
                     start with -c, what follows will be executed as a command. Otherwise, \
                     if a single one is provided and is a local file, it will be run as a \
                     script on the domain; else the arguments are the remote command.",
                ),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let env = open_env(ctx)?;
    let host = args
        .get_one::<String>("host")
        .ok_or_else(|| Error::user("lago shell needs the name of a VM"))?;
    let vm = env.get_vm_by_suffix(host)?;
    vm.ssh_ready()?;
    let argv: Vec<String> = args
        .get_many::<String>("args")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let status = match argv.as_slice() {
        [] => return Ok(Output::Exit(vm.interactive_ssh::<String>(&[])?)),
        // `-c COMMAND...`: a command line for the remote shell.
        [flag, rest @ ..] if flag == "-c" => vm.ssh_command(&rest.join(" "))?,
        // One argument naming a local file: run it as a script.
        [one] if Path::new(one).is_file() => vm.ssh_script(Path::new(one))?,
        // One argument: a command line, as `ssh host 'cmd | cmd'` takes it.
        [one] => vm.ssh_command(one)?,
        // Several: the remote command's arguments, passed exactly.
        many => vm.ssh(many)?,
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    stdout.write_all(&status.out)?;
    stdout.flush()?;
    stderr.write_all(&status.err)?;
    Ok(Output::Exit(status.code))
}
