//! Writing results to stdout so that `p2pctl … | head` ends quietly instead of panicking.

use std::io::{self, Write};

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
