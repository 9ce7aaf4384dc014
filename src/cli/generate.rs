//! Generated from the grammar: shell completions and the man page.

use super::args::Cli;
use super::output::print_bytes;
use crate::error::{Error, Result};
use clap::CommandFactory;

/// The man page, generated from the clap definition.
pub fn render_man(out: &mut Vec<u8>) -> Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out).map_err(|e| Error::io("cannot render the man page", e))
}

/// `age-oauth man`.
pub(super) fn cmd_man() -> Result<i32> {
    let mut out = Vec::new();
    render_man(&mut out)?;
    print_bytes(&out)
}

/// `age-oauth completions SHELL`.
pub(super) fn cmd_completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "age-oauth", &mut out);
    print_bytes(&out)
}
