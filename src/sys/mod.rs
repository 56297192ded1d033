//! The only place in evloop with `unsafe` code, every block with a `// SAFETY:` comment.
//! Thin, checked wrappers around the Linux system calls the loop needs (`epoll`,
//! `eventfd`, `socket`, `signal`) and the fault injection of the deterministic mode
//! (`faults`), plus the two places Rust itself asks for `unsafe`: a
//! waker built from a plain number (`waker`) and a future polled in place inside an `Rc`
//! (`pinned`). Everything above this module is safe Rust.
//!
//! Each wrapper turns a `-1` return into an [`std::io::Error`] built from `errno`, and owns
//! its file descriptor through [`std::os::fd::OwnedFd`], so a descriptor is closed exactly once.

pub mod epoll;
pub mod eventfd;
pub mod faults;
pub mod pinned;
pub mod signal;
pub mod socket;
pub mod waker;

use std::io;

/// Turns the C convention "-1 means error, see errno" into an `io::Result`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`check`] for calls that return `ssize_t`.
fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}
