//! `--json [--pretty]`, shared by every command that prints a JSON document.

use clap::Args;

/// `--json` and `--pretty`.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct JsonArgs {
    /// Print the command's JSON document (docs/json-output.md) instead of text: compact when
    /// stdout is not a terminal, indented on a terminal.
    #[arg(long)]
    pub json: bool,
    /// With --json: indent the document even when stdout is not a terminal.
    #[arg(long, requires = "json")]
    pub pretty: bool,
}
