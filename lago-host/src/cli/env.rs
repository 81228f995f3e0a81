//! The CLI's glue between clap/[`Context`] and the library API
//! ([`crate::sdk`]): the verbs' environment and their VM name lists.

use clap::ArgMatches;

use super::Context;
use crate::error::Error;
use crate::sdk::Env;

/// The environment of the prefix a verb works on (`-w`, `-P`, `-p`), with
/// every plugin loaded. The prefix must be initialized.
pub fn open_env(ctx: &mut Context) -> Result<Env<'_>, Error> {
    let prefix = ctx.prefix()?;
    let config = ctx.config.clone();
    Ok(Env::open(prefix, config, ctx.plugins()?)?)
}

/// The VM names given to a verb under the argument `id` (`VM_NAME...`),
/// none meaning all.
pub fn vm_names(args: &ArgMatches, id: &str) -> Vec<String> {
    args.get_many::<String>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}
