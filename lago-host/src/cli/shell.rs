//! `lago shell`: Open shell on the domain or run as script/command.

use std::io::Write;
use std::path::Path;

use clap::{Arg, ArgMatches, Command};

use super::{Context, Output};
use crate::environment;
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
    let env = environment::from_context(ctx)?;
    let host = args
        .get_one::<String>("host")
        .ok_or_else(|| Error::user("lago shell needs the name of a VM"))?;
    let vm = env.vm_by_suffix(host)?;
    let target = env.ssh_ready(vm)?;
    let argv: Vec<String> = args
        .get_many::<String>("args")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let ssh_err =
        |e: crate::ssh::SshError| Error::user(format!("VM `{}`: {}", vm.name, e.chain_string()));

    let status = match argv.as_slice() {
        [] => {
            return Ok(Output::Exit(
                env.ssh()
                    .interactive::<String>(&target, None)
                    .map_err(ssh_err)?,
            ))
        }
        // `-c COMMAND...`: a command line for the remote shell.
        [flag, rest @ ..] if flag == "-c" => env
            .ssh()
            .exec_command(&target, &rest.join(" "), None, None)
            .map_err(ssh_err)?,
        // One argument naming a local file: run it as a script.
        [one] if Path::new(one).is_file() => {
            let script = std::fs::read(one)
                .map_err(|e| Error::user(format!("reading script {one}: {e}")))?;
            env.ssh()
                .exec_script(&target, &script, None)
                .map_err(ssh_err)?
        }
        // One argument: a command line, as `ssh host 'cmd | cmd'` takes it.
        [one] => env
            .ssh()
            .exec_command(&target, one, None, None)
            .map_err(ssh_err)?,
        // Several: the remote command's arguments, passed exactly.
        many => env.ssh().exec(&target, many, None, None).map_err(ssh_err)?,
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    stdout.write_all(&status.out)?;
    stdout.flush()?;
    stderr.write_all(&status.err)?;
    Ok(Output::Exit(status.code))
}
