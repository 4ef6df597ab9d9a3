//! The three system calls the device needs (`ioctl`, `mmap`, `munmap`), made directly: the
//! standard library does not expose them and the workspace keeps its dependency list short.
//! Linux x86-64 only; elsewhere every call fails with `ENOSYS`.

use std::io;
use std::os::fd::RawFd;

/// `PROT_READ | PROT_WRITE`.
pub const PROT_READ_WRITE: i32 = 0x1 | 0x2;
/// `MAP_SHARED`.
pub const MAP_SHARED: usize = 0x01;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod raw {
    use std::arch::asm;

    pub const SYS_MMAP: usize = 9;
    pub const SYS_MUNMAP: usize = 11;
    pub const SYS_IOCTL: usize = 16;

    /// A system call with up to six arguments; returns the raw result (`-errno` on failure).
    ///
    /// # Safety
    ///
    /// The arguments must be valid for system call `number` (pointers included).
    pub unsafe fn syscall6(number: usize, args: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: the x86-64 Linux system call convention; rcx and r11 are clobbered by
        // `syscall`; the caller guarantees the arguments.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") number as isize => ret,
                in("rdi") args[0],
                in("rsi") args[1],
                in("rdx") args[2],
                in("r10") args[3],
                in("r8") args[4],
                in("r9") args[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn check(ret: isize) -> io::Result<usize> {
    if (-4095..0).contains(&ret) {
        Err(io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// `ioctl(fd, cmd, arg)` with a pointer argument.
///
/// # Safety
///
/// `arg` must point to memory of the size encoded in `cmd`, valid for the direction `cmd`
/// encodes, for the duration of the call.
pub unsafe fn ioctl(fd: RawFd, cmd: u32, arg: *mut u8) -> io::Result<usize> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: guaranteed by the caller.
        check(unsafe {
            raw::syscall6(
                raw::SYS_IOCTL,
                [fd as usize, cmd as usize, arg as usize, 0, 0, 0],
            )
        })
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (fd, cmd, arg);
        Err(io::Error::from_raw_os_error(38))
    }
}

/// `mmap(NULL, len, protection, MAP_SHARED, fd, offset)`.
pub fn mmap_shared(fd: RawFd, len: usize, protection: i32, offset: u64) -> io::Result<*mut u8> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: a new mapping at an address the kernel chooses touches no existing memory.
        check(unsafe {
            raw::syscall6(
                raw::SYS_MMAP,
                [
                    0,
                    len,
                    protection as usize,
                    MAP_SHARED,
                    fd as usize,
                    offset as usize,
                ],
            )
        })
        .map(|address| address as *mut u8)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (fd, len, protection, offset);
        Err(io::Error::from_raw_os_error(38))
    }
}

/// `munmap(address, len)`.
///
/// # Safety
///
/// `[address, address + len)` must be a mapping made by [`mmap_shared`] that nothing uses
/// any more.
pub unsafe fn munmap(address: *mut u8, len: usize) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: guaranteed by the caller.
        check(unsafe { raw::syscall6(raw::SYS_MUNMAP, [address as usize, len, 0, 0, 0, 0]) })
            .map(drop)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (address, len);
        Err(io::Error::from_raw_os_error(38))
    }
}
