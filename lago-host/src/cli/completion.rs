//! `lago completion SHELL` (a completion script, clap_complete) and
//! `lago man` (the man page, clap_mangen). Both describe the built-in verbs
//! and the verbs of the installed plugins (a plugin whose verb cannot be
//! used is left out, with the warning `lago plugins` gives).

use clap::{Arg, ArgMatches, Command};
use clap_complete::Shell;

use super::{plugin_verb, root_command, Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("completion")
        .about("Print a shell completion script (built-in and plugin verbs)")
        .after_help(
            "Install, e.g.: lago completion bash > /etc/bash_completion.d/lago; \
             lago completion zsh > \"${fpath[1]}/_lago\"; \
             lago completion fish > ~/.config/fish/completions/lago.fish",
        )
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(["bash", "zsh", "fish"])
                .help("The shell to complete for"),
        )
}

pub fn man_command() -> Command {
    Command::new("man")
        .about("Print the man page (roff) of lago, its verbs and plugin verbs: lago man | man -l -")
}

/// The whole command line: the built-in verbs and every usable plugin verb.
fn full_command(ctx: &mut Context) -> Result<Command, Error> {
    let mut root = root_command(&ctx.bin_name);
    for verb in plugin_verb::collect(ctx)?.verbs.values() {
        if plugin_verb::validate(verb).is_ok() {
            root = root.subcommand(plugin_verb::command(verb));
        }
    }
    Ok(root)
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let shell = match args.get_one::<String>("shell").map(String::as_str) {
        Some("bash") => Shell::Bash,
        Some("zsh") => Shell::Zsh,
        Some("fish") => Shell::Fish,
        other => {
            return Err(Error::user(format!(
                "lago completion: unknown shell {other:?} (expected bash, zsh or fish)"
            )))
        }
    };
    let mut cmd = full_command(ctx)?;
    let name = ctx.bin_name.clone();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    Ok(Output::Text(String::from_utf8_lossy(&out).into_owned()))
}

pub fn run_man(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let cmd = full_command(ctx)?;
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    // One page: each verb's section after the main one.
    for sub in cmd.get_subcommands() {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().name(name));
        out.extend_from_slice(b"\n");
        page.render_name_section(&mut out)?;
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
    }
    Ok(Output::Text(String::from_utf8_lossy(&out).into_owned()))
}
