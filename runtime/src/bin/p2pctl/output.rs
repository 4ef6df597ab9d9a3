//! Writing results to stdout so that `p2pctl … | head` ends quietly instead of panicking.

use std::io::{self, IsTerminal, Write};

use hsa_p2p_runtime::cli::JsonArgs;

/// Writes `text` to stdout. When the reader has gone away (a closed pipe), the process ends
/// successfully, as a command killed by SIGPIPE would without the noise.
pub fn emit(text: impl AsRef<str>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_ref().as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        result => result,
    }
}

/// Writes `document` as JSON: indented when asked (`--pretty`) or when stdout is a terminal,
/// else on one line (a 16x16 matrix stays a line, not hundreds).
pub fn emit_json(document: &impl serde::Serialize, options: JsonArgs) -> anyhow::Result<()> {
    let text = if options.pretty || io::stdout().is_terminal() {
        serde_json::to_string_pretty(document)?
    } else {
        serde_json::to_string(document)?
    };
    emit(text + "\n")?;
    Ok(())
}
