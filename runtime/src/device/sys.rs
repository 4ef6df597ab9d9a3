//! The three system calls the device needs (`ioctl`, `mmap`, `munmap`), through `libc`: the
//! standard library does not expose them, and `libc` knows each target's calling convention,
//! so the runtime works on every Linux architecture (x86-64 and arm64 GPU servers alike).
//! The ioctl numbers come from `hsa_p2p_core::abi`.

use std::io;
use std::os::fd::RawFd;

/// `PROT_READ | PROT_WRITE`.
pub const PROT_READ_WRITE: i32 = libc::PROT_READ | libc::PROT_WRITE;

/// The result of a call that returns -1 and sets `errno` on failure.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ioctl(fd, cmd, arg)` with a pointer argument.
///
/// # Safety
///
/// `arg` must point to memory of the size encoded in `cmd`, valid for the direction `cmd`
/// encodes, for the duration of the call.
pub unsafe fn ioctl(fd: RawFd, cmd: u32, arg: *mut u8) -> io::Result<()> {
    // CAST: the request parameter is `unsigned long` in glibc and `int` in musl; the module's
    // numbers are 32-bit `_IOC` values, which both represent (musl's `int` keeps the bits).
    let request = cmd as libc::Ioctl;
    // SAFETY: guaranteed by the caller.
    check(unsafe { libc::ioctl(fd, request, arg) })
}

/// `offset` as C's `off_t`, bit for bit: the kernel reads mmap's offset as an unsigned long, and
/// the module's offsets carry the buffer handle in their high bits (`abi::mmap_offset`), so
/// offsets past `i64::MAX` are valid for its device (a negative `off_t` in C's view).
#[cfg(target_pointer_width = "64")]
fn off_t_bits(offset: u64) -> io::Result<libc::off_t> {
    // CAST: a 64-bit off_t holds every u64 bit pattern; the sign is C's view only.
    Ok(offset as libc::off_t)
}

/// `offset` as C's `off_t` where that has 32 bits: only offsets it can hold.
#[cfg(not(target_pointer_width = "64"))]
fn off_t_bits(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))
}

/// `mmap(NULL, len, protection, MAP_SHARED, fd, offset)`.
pub fn mmap_shared(fd: RawFd, len: usize, protection: i32, offset: u64) -> io::Result<*mut u8> {
    let offset = off_t_bits(offset)?;
    // SAFETY: a new mapping at an address the kernel chooses touches no existing memory.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            protection,
            libc::MAP_SHARED,
            fd,
            offset,
        )
    };
    if address == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(address.cast())
    }
}

/// `munmap(address, len)`.
///
/// # Safety
///
/// `[address, address + len)` must be a mapping made by [`mmap_shared`] that nothing uses
/// any more.
pub unsafe fn munmap(address: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: guaranteed by the caller.
    check(unsafe { libc::munmap(address.cast(), len) })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_shared_mapping_writes_through_to_the_file() {
        let mut file = tempfile::tempfile().unwrap();
        file.set_len(8192).unwrap();
        let address = mmap_shared(file.as_raw_fd(), 8192, PROT_READ_WRITE, 4096).unwrap();
        // SAFETY: the mapping is 8192 bytes long and only used here.
        unsafe { std::ptr::copy_nonoverlapping(b"via libc".as_ptr(), address, 8) };
        // SAFETY: made by mmap_shared above, no longer used.
        unsafe { munmap(address, 8192) }.unwrap();
        let mut read = [0u8; 8];
        file.seek(SeekFrom::Start(4096)).unwrap();
        file.read_exact(&mut read).unwrap();
        assert_eq!(&read, b"via libc");
    }

    #[test]
    fn offsets_with_the_top_bit_set_reach_the_driver() {
        // The module's mmap offsets carry the buffer handle in their high bits
        // (abi::mmap_offset); the kernel reads the offset as an unsigned long and lets
        // character devices use all of it. /dev/zero is such a device.
        let zero = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/zero")
            .unwrap();
        let offset = hsa_p2p_core::abi::mmap_offset(0xdead_beef);
        assert!(offset > i64::MAX as u64, "the case needs the top bit set");
        let address = mmap_shared(zero.as_raw_fd(), 4096, PROT_READ_WRITE, offset).unwrap();
        // SAFETY: made by mmap_shared above, no longer used.
        unsafe { munmap(address, 4096) }.unwrap();
    }

    #[test]
    fn errors_carry_the_os_error() {
        let file = tempfile::tempfile().unwrap();
        let mut block = [0u8; 8];
        // SAFETY: `block` is writable for the 8 bytes the (arbitrary) request could encode.
        let error =
            unsafe { ioctl(file.as_raw_fd(), 0xc008_5001, block.as_mut_ptr()) }.unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOTTY));
        let error = mmap_shared(-1, 4096, PROT_READ_WRITE, 0).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EBADF));
        // Not a multiple of the page size.
        let error = mmap_shared(file.as_raw_fd(), 4096, PROT_READ_WRITE, 100).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    }
}
