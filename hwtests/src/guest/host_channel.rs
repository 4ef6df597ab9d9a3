//! The guest's end of the host channel: a serial line to the host that emulates the machine,
//! over which a test asks for what only the host can do — remove a GPU from its slot or put it
//! back — at the moment the test chooses, and waits for the answer.
//!
//! One request per line, one reply per line, both JSON ([`HostRequest`], [`HostReply`]); the
//! host's end (`xtask/src/vm/protocol.rs` reads and writes these types, `xtask/src/vm/qmp.rs`
//! carries them out with QEMU's QMP) answers every request, and only requests. On a real
//! machine there is no host to ask: the tests that need one are skipped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the guest asks of the host; PCI addresses are the guest's (`0000:03:00.0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum HostRequest {
    /// Remove the device at `address` the orderly way (QMP `device_del`: the slot's attention
    /// button; the guest's pciehp removes the driver, then powers the slot off); answered once
    /// QEMU has deleted the device.
    Unplug {
        /// The device.
        address: String,
    },
    /// Put the device that was at `address` back, with the properties it booted with (QMP
    /// `device_add`); answered once QEMU has added it (the guest binds it on its own).
    Plug {
        /// The device.
        address: String,
    },
    /// Whether QEMU still has the device at `address` (after the guest cut its slot's power).
    Present {
        /// The device.
        address: String,
    },
}

/// The host's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReply {
    /// Whether the request was carried out (for [`HostRequest::Present`]: whether it is there).
    pub ok: bool,
    /// What happened, or why not.
    pub detail: String,
}

/// An open host channel.
pub struct HostChannel {
    writer: File,
    reader: BufReader<File>,
}

impl HostChannel {
    /// Opens the serial line at `path` (e.g. `/dev/ttyS1`) in raw mode: no echo of the
    /// host's replies back to it, no line-ending translation.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|error| format!("cannot open the host channel {}: {error}", path.display()))?;
        raw_mode(&file).map_err(|error| {
            format!(
                "cannot put the host channel {} in raw mode: {error}",
                path.display()
            )
        })?;
        let reader = BufReader::new(file.try_clone().map_err(|error| error.to_string())?);
        Ok(HostChannel {
            writer: file,
            reader,
        })
    }

    /// Sends `request` and waits up to `timeout` for the host's reply.
    pub fn ask(&mut self, request: &HostRequest, timeout: Duration) -> Result<HostReply, String> {
        let line = serde_json::to_string(request).map_err(|error| error.to_string())?;
        writeln!(self.writer, "{line}")
            .and_then(|()| self.writer.flush())
            .map_err(|error| format!("cannot send {line} to the host: {error}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !readable(self.reader.get_ref(), left) {
                return Err(format!("the host did not answer {line} within {timeout:?}"));
            }
            let mut reply = String::new();
            self.reader
                .read_line(&mut reply)
                .map_err(|error| format!("reading the host's answer to {line}: {error}"))?;
            let reply = reply.trim();
            // Noise before the first request (the line's idle state) is no answer.
            if reply.is_empty() {
                continue;
            }
            return serde_json::from_str(reply)
                .map_err(|error| format!("the host answered {reply:?} to {line}: {error}"));
        }
    }
}

/// Whether `file` has something to read within `timeout` (or the line has data buffered).
fn readable(file: &File, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, millis) > 0 }
}

/// `cfmakeraw` on the serial line.
fn raw_mode(file: &File) -> std::io::Result<()> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a valid termios to fill.
    if unsafe { libc::tcgetattr(file.as_raw_fd(), &mut termios) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a valid termios.
    unsafe { libc::cfmakeraw(&mut termios) };
    // SAFETY: a valid descriptor and termios.
    if unsafe { libc::tcsetattr(file.as_raw_fd(), libc::TCSANOW, &termios) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_tagged_json_line() {
        let line = serde_json::to_string(&HostRequest::Unplug {
            address: "0000:03:00.0".into(),
        })
        .unwrap();
        assert_eq!(line, r#"{"request":"unplug","address":"0000:03:00.0"}"#);
        let back: HostRequest = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, HostRequest::Unplug { .. }));
        assert!(serde_json::from_str::<HostRequest>(r#"{"request":"reboot"}"#).is_err());
    }
}
