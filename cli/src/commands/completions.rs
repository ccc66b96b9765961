//! `hookrun completions SHELL`: the completion script clap_complete
//! writes for the whole command tree, so it never lags behind the flags.

use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// bash, zsh, fish, powershell or elvish.
    pub shell: Shell,
}

pub fn print(args: Args, mut cmd: clap::Command) {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    crate::output::write_bytes(&script);
}
