//! The one read buffer every transport of a thread shares: a read is handed on to the
//! protocol before the next read starts, so idle connections cost no buffer of their own
//! and no read allocates.

use std::cell::RefCell;

/// How much one readable event reads at most: 64 KiB, which is also the largest UDP payload.
pub(crate) const READ_SIZE: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
}

/// Runs `read` with the thread's read buffer, or, if a read is somehow already using it,
/// with a fresh one.
pub(crate) fn with_read_buffer<R>(read: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => read(&mut buffer),
        Err(_) => read(&mut vec![0; READ_SIZE]),
    })
}
