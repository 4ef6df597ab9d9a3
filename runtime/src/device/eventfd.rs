//! A Linux eventfd: the counter `COPY_SUBMIT` adds 1 to when an asynchronous copy ends, so a
//! program can `poll` its copies together with its other files.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An eventfd owned by this process (closed on drop).
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new eventfd with counter 0; reads do not block (`EFD_NONBLOCK`), so [`Self::take`]
    /// can poll.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointer; it returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd, is open and owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Reads and resets the counter: the number of signals since the last read (0 when none).
    pub fn take(&self) -> io::Result<u64> {
        let mut counter = [0u8; 8];
        // SAFETY: `counter` is writable for the 8 bytes an eventfd read writes.
        let read = unsafe { libc::read(self.fd.as_raw_fd(), counter.as_mut_ptr().cast(), 8) };
        if read == 8 {
            return Ok(u64::from_ne_bytes(counter));
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(error)
        }
    }

    /// Waits until the counter is not 0 or `timeout_ms` passes; whether it is not 0.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pollfd` is one valid, writable pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if ready == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(ready == 1 && pollfd.revents & libc::POLLIN != 0)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_adds_up_writes_and_resets_on_read() {
        let eventfd = EventFd::new().unwrap();
        assert_eq!(eventfd.take().unwrap(), 0);
        assert!(!eventfd.wait_readable(0).unwrap());
        for _ in 0..3 {
            let one = 1u64.to_ne_bytes();
            // SAFETY: `one` is readable for the 8 bytes an eventfd write reads.
            let written =
                unsafe { libc::write(eventfd.as_fd().as_raw_fd(), one.as_ptr().cast(), 8) };
            assert_eq!(written, 8);
        }
        assert!(eventfd.wait_readable(0).unwrap());
        assert_eq!(eventfd.take().unwrap(), 3);
        assert_eq!(eventfd.take().unwrap(), 0);
    }
}
