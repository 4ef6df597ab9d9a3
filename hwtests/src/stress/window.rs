//! Access to device mappings that never takes a signal.
//!
//! The campaign must read and write `mmap`ed VRAM while other threads free the buffer and
//! other processes unbind its GPU. A plain load from a revoked mapping raises `SIGBUS` and kills
//! the worker, which would hide the oracle's verdict. Instead the bytes travel through a memfd
//! with `pwrite`/`pread`: the kernel copies from or to the mapping with `copy_{from,to}_user`,
//! so a revoked mapping (zapped PTEs, a fault handler refusing) makes the system call fail with
//! `EFAULT` — the verdict "revoked" — while a live one behaves like memory.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A memfd used as the go-between for mapping accesses.
#[derive(Debug)]
pub struct Window {
    memfd: OwnedFd,
}

/// What an access found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every byte was transferred.
    Done,
    /// The mapping faulted: the module revoked it (or never backed it).
    Revoked,
}

impl Window {
    /// A new window (one per thread: accesses use the memfd's first bytes).
    pub fn new() -> io::Result<Self> {
        // SAFETY: the name is NUL-terminated; the flags are valid for memfd_create.
        let fd = unsafe { libc::memfd_create(c"hsa-p2p-stress".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(Window {
            memfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Copies `out.len()` bytes from user address `from` (a device mapping) into `out`.
    ///
    /// # Safety
    ///
    /// `[from, from + out.len())` must lie inside one mapping of this process that stays
    /// mapped (not necessarily backed) for the call: a revoked range is fine, an unmapped
    /// one gives [`Access::Revoked`] too but could be reused by another mapping.
    pub unsafe fn read(&self, from: *const u8, out: &mut [u8]) -> io::Result<Access> {
        // SAFETY: the kernel reads user memory at `from` (faults give EFAULT, not UB).
        let access = self.transfer(|fd, done| unsafe {
            libc::pwrite(
                fd,
                from.add(done).cast(),
                out.len() - done,
                done as libc::off_t,
            )
        })?;
        if access == Access::Revoked {
            return Ok(access);
        }
        // SAFETY: `out` is writable for its length.
        let read = self.transfer(|fd, done| unsafe {
            libc::pread(
                fd,
                out.as_mut_ptr().add(done).cast(),
                out.len() - done,
                done as libc::off_t,
            )
        })?;
        match read {
            Access::Done => Ok(Access::Done),
            Access::Revoked => Err(io::Error::other("memfd read back short")),
        }
    }

    /// Copies `data` to user address `to` (a device mapping).
    ///
    /// # Safety
    ///
    /// As for [`Window::read`], for `[to, to + data.len())`.
    pub unsafe fn write(&self, to: *mut u8, data: &[u8]) -> io::Result<Access> {
        // SAFETY: `data` is readable for its length.
        let staged = self.transfer(|fd, done| unsafe {
            libc::pwrite(
                fd,
                data.as_ptr().add(done).cast(),
                data.len() - done,
                done as libc::off_t,
            )
        })?;
        if staged != Access::Done {
            return Err(io::Error::other("memfd write short"));
        }
        // SAFETY: the kernel writes user memory at `to` (faults give EFAULT, not UB).
        self.transfer(|fd, done| unsafe {
            libc::pread(
                fd,
                to.add(done).cast(),
                data.len() - done,
                done as libc::off_t,
            )
        })
    }

    /// Runs `step(fd, done)` until it has moved everything (`len` is implied by the steps
    /// returning 0 only at the end); `EFAULT` or a stalled step is [`Access::Revoked`].
    fn transfer(&self, mut step: impl FnMut(i32, usize) -> isize) -> io::Result<Access> {
        let mut done = 0usize;
        loop {
            let moved = step(self.memfd.as_raw_fd(), done);
            match moved {
                0 => return Ok(Access::Done),
                n if n > 0 => done += n as usize,
                _ => {
                    let error = io::Error::last_os_error();
                    match error.raw_os_error() {
                        Some(libc::EINTR) => {}
                        Some(libc::EFAULT) => return Ok(Access::Revoked),
                        _ => return Err(error),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared file mapping reaching past the end of its file: the first page is memory, the
    /// second raises `SIGBUS` on access, like a mapping the module revoked.
    struct HalfBacked {
        address: *mut u8,
        _file: std::fs::File,
    }

    const PAGE: usize = 4096;

    impl HalfBacked {
        fn new() -> Self {
            let file = tempfile::tempfile().unwrap();
            file.set_len(PAGE as u64).unwrap();
            // SAFETY: a fresh shared mapping of our own file, unmapped on drop.
            let address = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(address, libc::MAP_FAILED);
            HalfBacked {
                address: address.cast(),
                _file: file,
            }
        }
    }

    impl Drop for HalfBacked {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            unsafe { libc::munmap(self.address.cast(), 2 * PAGE) };
        }
    }

    #[test]
    fn a_backed_range_round_trips() {
        let mapping = HalfBacked::new();
        let window = Window::new().unwrap();
        let data: Vec<u8> = (0..PAGE).map(|i| (i * 7) as u8).collect();
        // SAFETY: the first page of the mapping is backed.
        unsafe {
            assert_eq!(window.write(mapping.address, &data).unwrap(), Access::Done);
            let mut back = vec![0u8; PAGE];
            assert_eq!(
                window.read(mapping.address, &mut back).unwrap(),
                Access::Done
            );
            assert_eq!(back, data);
        }
    }

    #[test]
    fn a_range_that_would_raise_sigbus_is_revoked_instead() {
        let mapping = HalfBacked::new();
        let window = Window::new().unwrap();
        let mut out = vec![0u8; PAGE];
        // SAFETY: the second page is mapped (but not backed: access faults).
        unsafe {
            let past_end = mapping.address.add(PAGE);
            assert_eq!(window.read(past_end, &mut out).unwrap(), Access::Revoked);
            assert_eq!(window.write(past_end, &out).unwrap(), Access::Revoked);
            // A range straddling the end moves what it can, then reports the fault.
            let straddling = mapping.address.add(PAGE / 2);
            assert_eq!(window.read(straddling, &mut out).unwrap(), Access::Revoked);
        }
    }
}
