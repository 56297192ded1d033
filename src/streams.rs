//! Streams: asyncio's `streams.py`. `StreamReader` / `StreamWriter` over a transport, and
//! `open_connection` / `start_server` to make them.
//!
//! The reader's buffer is filled by a protocol (`data_received` appends and wakes the
//! waiting coroutine) and emptied by the `read*` coroutines, which hand data on as `Bytes`
//! split off the buffer, without copying. Flow control in both directions:
//! - reading: above twice the limit (64 KiB by default) the transport stops reading, and it
//!   resumes once the buffer is back at or below the limit (asyncio's rule);
//! - writing: `drain().await` waits while the transport has told the protocol to pause.
//!
//! Memory: a connection's reader, writer and protocol share one `StreamState`, and a big
//! read buffer is let go once emptied (a small one is kept for the next message), so an
//! idle connection holds little.

use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::event_loop::{get_running_loop, EventLoop};
use crate::sys::socket::SockAddr;
use crate::tasks::create_task;
use crate::transport::{Protocol, Server, ServerOptions, Transport};

/// asyncio's default buffer limit for a `StreamReader`.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The largest read buffer a reader keeps once it is emptied. Keeping a small one means
/// a connection trading small messages allocates nothing per message (the next
/// `feed_data` reuses it once the bytes handed out are dropped); a bigger one is let go,
/// so an idle connection does not sit on it.
const KEEP_EMPTIED_BUFFER: usize = 4096;

/// Why a read gave less than asked (asyncio's `IncompleteReadError` and
/// `LimitOverrunError`, and the connection's own error).
#[derive(Debug)]
pub enum StreamError {
    /// The stream ended first; `partial` is what was read (asyncio's `IncompleteReadError`).
    IncompleteRead {
        /// The bytes read before the end.
        partial: Bytes,
        /// How many were wanted, if a count was asked for.
        expected: Option<usize>,
    },
    /// No separator within the buffer limit (asyncio's `LimitOverrunError`); `consumed`
    /// bytes were looked at and are still in the buffer (for `readuntil`).
    LimitOverrun {
        /// How many bytes were searched.
        consumed: usize,
    },
    /// The connection failed.
    Io(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::IncompleteRead { partial, expected: Some(n) } => {
                write!(f, "{} bytes read on a total of {n} expected bytes", partial.len())
            }
            StreamError::IncompleteRead { partial, expected: None } => {
                write!(f, "stream ended after {} bytes, before the separator", partial.len())
            }
            StreamError::LimitOverrun { consumed } => {
                write!(f, "separator not found within the buffer limit ({consumed} bytes searched)")
            }
            StreamError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StreamError> for io::Error {
    fn from(error: StreamError) -> io::Error {
        match error {
            StreamError::Io(e) => e,
            StreamError::IncompleteRead { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, error.to_string())
            }
            StreamError::LimitOverrun { .. } => io::Error::new(io::ErrorKind::InvalidData, error.to_string()),
        }
    }
}

/// A copy of a connection error for each reader that asks (io::Error is not `Clone`).
struct StoredError {
    kind: io::ErrorKind,
    raw: Option<i32>,
    message: String,
}

impl StoredError {
    fn new(error: &io::Error) -> StoredError {
        StoredError { kind: error.kind(), raw: error.raw_os_error(), message: error.to_string() }
    }

    fn to_error(&self) -> io::Error {
        match self.raw {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

/// What a connection's reader, writer and protocol share: one allocation per connection
/// (a reader made with [`StreamReader::new`] has it to itself).
struct StreamState {
    reader: ReaderState,
    writer: WriterState,
}

/// The reader's side (asyncio's `StreamReader` attributes). Every connection has one
/// for as long as it lives, so it is kept small: the error is boxed and set once, and the
/// transport sits in a `Cell` (no borrow flag), used through
/// [`with_transport`](Self::with_transport).
struct ReaderState {
    buffer: RefCell<BytesMut>,
    eof: Cell<bool>,
    paused: Cell<bool>,
    /// The buffer's storage grew past [`KEEP_EMPTIED_BUFFER`]: let it go once emptied.
    big: Cell<bool>,
    /// What ended the stream, if it failed (boxed: almost every connection ends without).
    error: OnceCell<Box<StoredError>>,
    waiter: Cell<Option<Waker>>,
    limit: usize,
    /// Set by `connection_made`, cleared by `connection_lost`; for pausing reading.
    transport: Cell<Option<Transport>>,
}

impl ReaderState {
    /// Calls `f` with the transport, if there is one.
    fn with_transport(&self, f: impl FnOnce(&Transport)) {
        let transport = self.transport.take();
        if let Some(transport) = &transport {
            f(transport);
        }
        self.transport.set(transport);
    }
}

/// The writer's side (asyncio's `FlowControlMixin` and the protocol's `_closed` future).
struct WriterState {
    /// The transport asked the protocol to pause writing.
    paused: Cell<bool>,
    /// Whether and how the connection was lost (`connection_lost` was called).
    lost: Cell<Lost>,
    /// Coroutines in `drain` or `wait_closed`, woken when writing resumes or the
    /// connection is lost; each looks again at what it waits for. A `Cell` taken and put
    /// back, as no borrow needs to outlive a call.
    waiters: Cell<Vec<Waker>>,
}

/// How far a connection is from `connection_lost`, and how it ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lost {
    No,
    Cleanly,
    WithError,
}

impl WriterState {
    fn park(&self, waker: &Waker) {
        let mut waiters = self.waiters.take();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        self.waiters.set(waiters);
    }

    fn wake_all(&self) {
        self.waiters.take().into_iter().for_each(Waker::wake);
    }
}

impl StreamState {
    fn new(limit: usize) -> Rc<StreamState> {
        Rc::new(StreamState {
            reader: ReaderState {
                buffer: RefCell::new(BytesMut::new()),
                eof: Cell::new(false),
                paused: Cell::new(false),
                big: Cell::new(false),
                error: OnceCell::new(),
                waiter: Cell::new(None),
                limit: limit.max(1),
                transport: Cell::new(None),
            },
            writer: WriterState {
                paused: Cell::new(false),
                lost: Cell::new(Lost::No),
                waiters: Cell::new(Vec::new()),
            },
        })
    }
}

/// The reading half of a stream connection (asyncio's `asyncio.StreamReader`).
pub struct StreamReader {
    shared: Rc<StreamState>,
}

impl StreamReader {
    /// A reader with the given buffer limit, fed by [`feed_data`](Self::feed_data) and
    /// [`feed_eof`](Self::feed_eof) (asyncio's `StreamReader(limit=...)`).
    pub fn new(limit: usize) -> StreamReader {
        StreamReader { shared: StreamState::new(limit) }
    }

    fn state(&self) -> &ReaderState {
        &self.shared.reader
    }

    /// Appends bytes to the buffer and wakes a waiting read (asyncio's `feed_data`).
    pub fn feed_data(&self, data: &[u8]) {
        let state = self.state();
        {
            let mut buffer = state.buffer.borrow_mut();
            buffer.extend_from_slice(data);
            if buffer.capacity() > KEEP_EMPTIED_BUFFER {
                state.big.set(true);
            }
        }
        self.wake();
        if !state.paused.get() && state.buffer.borrow().len() > 2 * state.limit {
            state.with_transport(|transport| {
                transport.pause_reading();
                state.paused.set(true);
            });
        }
    }

    /// Marks the end of the stream (asyncio's `feed_eof`).
    pub fn feed_eof(&self) {
        self.state().eof.set(true);
        self.wake();
    }

    /// Ends the stream with an error that reads will return (asyncio's `set_exception`).
    /// The first error is the one kept: it is what ended the stream.
    pub fn set_exception(&self, error: &io::Error) {
        let _ = self.state().error.set(Box::new(StoredError::new(error)));
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.state().waiter.take() {
            waker.wake();
        }
    }

    /// True once the stream ended and the buffer is empty (asyncio's `at_eof`).
    pub fn at_eof(&self) -> bool {
        self.state().eof.get() && self.state().buffer.borrow().is_empty()
    }

    /// Bytes received and not read yet (what asyncio keeps in `StreamReader._buffer`,
    /// which has no public accessor); a connection pool uses it to refuse a connection
    /// that holds bytes nobody asked for.
    pub fn buffered(&self) -> usize {
        self.state().buffer.borrow().len()
    }

    /// The buffer limit.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Splits `n` bytes off the front of the buffer, resuming the transport if the
    /// buffer is back within its limit. An emptied buffer whose storage is big is let go
    /// (the bytes handed out keep what they use); a small one is kept for the next data.
    fn take(&self, n: usize) -> Bytes {
        let state = self.state();
        let data = {
            let mut buffer = state.buffer.borrow_mut();
            let data = buffer.split_to(n).freeze();
            if buffer.is_empty() && state.big.replace(false) {
                *buffer = BytesMut::new();
            }
            data
        };
        if state.paused.get() && state.buffer.borrow().len() <= state.limit {
            state.paused.set(false);
            state.with_transport(Transport::resume_reading);
        }
        data
    }

    /// Nothing more to read now: an error if the connection failed, else park the waker.
    /// A read that needs more than the buffer may hold resumes a paused transport first
    /// (asyncio's `_wait_for_data`), or it would wait forever.
    fn wait(&self, cx: &Context<'_>) -> Poll<Result<Bytes, StreamError>> {
        let state = self.state();
        if let Some(error) = state.error.get() {
            return Poll::Ready(Err(StreamError::Io(error.to_error())));
        }
        if state.paused.replace(false) {
            state.with_transport(Transport::resume_reading);
        }
        state.waiter.set(Some(cx.waker().clone()));
        Poll::Pending
    }

    /// Reads up to `n` bytes: what is buffered, or waits for some; empty at end of stream
    /// (asyncio's `read(n)`).
    pub async fn read(&self, n: usize) -> Result<Bytes, StreamError> {
        poll_fn(|cx| self.poll_read(cx, n)).await
    }

    fn poll_read(&self, cx: &Context<'_>, n: usize) -> Poll<Result<Bytes, StreamError>> {
        let available = self.state().buffer.borrow().len();
        if n == 0 || available > 0 {
            return Poll::Ready(Ok(self.take(available.min(n))));
        }
        if self.state().eof.get() {
            return Poll::Ready(Ok(Bytes::new()));
        }
        self.wait(cx)
    }

    /// Reads until the end of the stream (asyncio's `read(-1)`).
    pub async fn read_to_end(&self) -> Result<Bytes, StreamError> {
        poll_fn(|cx| {
            if self.state().eof.get() {
                let len = self.state().buffer.borrow().len();
                return Poll::Ready(Ok(self.take(len)));
            }
            self.wait(cx)
        })
        .await
    }

    /// Reads exactly `n` bytes, or fails with `IncompleteRead` holding what came before
    /// the end (asyncio's `readexactly`).
    pub async fn readexactly(&self, n: usize) -> Result<Bytes, StreamError> {
        poll_fn(|cx| {
            let available = self.state().buffer.borrow().len();
            if available >= n {
                return Poll::Ready(Ok(self.take(n)));
            }
            if self.state().eof.get() {
                let partial = self.take(available);
                return Poll::Ready(Err(StreamError::IncompleteRead { partial, expected: Some(n) }));
            }
            self.wait(cx)
        })
        .await
    }

    /// Reads up to and including `separator` (asyncio's `readuntil`). At the end of the
    /// stream without it: `IncompleteRead` with the rest. No separator within the limit:
    /// `LimitOverrun`, and the data stays in the buffer.
    pub async fn readuntil(&self, separator: &[u8]) -> Result<Bytes, StreamError> {
        let mut searched = 0;
        poll_fn(|cx| self.poll_readuntil(cx, separator, &mut searched)).await
    }

    /// The heart of `readuntil`: `searched` remembers how far earlier polls looked, so each
    /// byte is scanned about once however the data arrives.
    fn poll_readuntil(
        &self,
        cx: &Context<'_>,
        separator: &[u8],
        searched: &mut usize,
    ) -> Poll<Result<Bytes, StreamError>> {
        assert!(!separator.is_empty(), "readuntil needs a non-empty separator");
        let found = {
            let buffer = self.state().buffer.borrow();
            let from = searched.saturating_sub(separator.len() - 1);
            let found =
                buffer[from..].windows(separator.len()).position(|w| w == separator).map(|i| from + i);
            *searched = buffer.len();
            found
        };
        match found {
            Some(at) if at + separator.len() > self.state().limit => {
                Poll::Ready(Err(StreamError::LimitOverrun { consumed: at + separator.len() }))
            }
            Some(at) => Poll::Ready(Ok(self.take(at + separator.len()))),
            None if *searched > self.state().limit => {
                Poll::Ready(Err(StreamError::LimitOverrun { consumed: *searched }))
            }
            None if self.state().eof.get() => {
                let partial = self.take(*searched);
                Poll::Ready(Err(StreamError::IncompleteRead { partial, expected: None }))
            }
            None => self.wait(cx),
        }
    }

    /// Reads one line, `\n` included (asyncio's `readline`). At the end of the stream,
    /// the last partial line (empty once nothing is left). A line longer than the limit is
    /// a `LimitOverrun`, and is dropped from the buffer, as asyncio does.
    pub async fn readline(&self) -> Result<Bytes, StreamError> {
        let mut searched = 0;
        poll_fn(|cx| self.poll_readline(cx, &mut searched)).await
    }

    fn poll_readline(&self, cx: &Context<'_>, searched: &mut usize) -> Poll<Result<Bytes, StreamError>> {
        match self.poll_readuntil(cx, b"\n", searched) {
            Poll::Ready(Err(StreamError::IncompleteRead { partial, .. })) => Poll::Ready(Ok(partial)),
            Poll::Ready(Err(StreamError::LimitOverrun { consumed })) => {
                let buffer_len = self.state().buffer.borrow().len();
                let newline = self.state().buffer.borrow().iter().position(|b| *b == b'\n');
                drop(self.take(newline.map_or(buffer_len, |at| at + 1)));
                Poll::Ready(Err(StreamError::LimitOverrun { consumed }))
            }
            other => other,
        }
    }

    /// The lines of the stream as an async stream (asyncio's `async for line in reader`);
    /// it ends at the end of the stream.
    pub fn lines(&self) -> Lines<'_> {
        Lines { reader: self, searched: 0, done: false }
    }
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("buffered", &self.state().buffer.borrow().len())
            .field("eof", &self.state().eof.get())
            .field("paused", &self.state().paused.get())
            .finish()
    }
}

/// The lines of a [`StreamReader`], from [`StreamReader::lines`]: a
/// [`futures_core::Stream`], also usable with `next().await`.
pub struct Lines<'a> {
    reader: &'a StreamReader,
    searched: usize,
    done: bool,
}

impl Lines<'_> {
    /// The next line, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<Bytes, StreamError>> {
        poll_fn(|cx| self.poll_next_line(cx)).await
    }

    fn poll_next_line(&mut self, cx: &Context<'_>) -> Poll<Option<Result<Bytes, StreamError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let line = std::task::ready!(self.reader.poll_readline(cx, &mut self.searched));
        self.searched = 0;
        match line {
            Ok(line) if line.is_empty() => {
                self.done = true;
                Poll::Ready(None)
            }
            other => Poll::Ready(Some(other)),
        }
    }
}

impl futures_core::Stream for Lines<'_> {
    type Item = Result<Bytes, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_line(cx)
    }
}

/// The protocol behind a stream pair (asyncio's `StreamReaderProtocol`).
struct StreamProtocol {
    reader: StreamReader,
}

impl StreamProtocol {
    /// The protocol of a new connection; the reader and writer come once the transport
    /// is there ([`pair`](Self::pair)).
    fn new(limit: usize) -> StreamProtocol {
        StreamProtocol { reader: StreamReader::new(limit) }
    }

    /// The reader and writer of this connection.
    fn pair(&self, transport: Transport) -> (StreamReader, StreamWriter) {
        let shared = &self.reader.shared;
        (StreamReader { shared: shared.clone() }, StreamWriter { transport, shared: shared.clone() })
    }

    fn writer(&self) -> &WriterState {
        &self.reader.shared.writer
    }
}

impl Protocol for StreamProtocol {
    fn connection_made(&mut self, transport: &Transport) {
        self.reader.state().transport.set(Some(transport.clone()));
    }

    fn data_received(&mut self, data: &[u8]) {
        self.reader.feed_data(data);
    }

    /// Keeps the connection open so the writer can still write (a half-close), as
    /// asyncio's stream protocol does; the writer closes it.
    fn eof_received(&mut self) -> bool {
        self.reader.feed_eof();
        true
    }

    /// As asyncio's: a failure goes to the reader (and from there to `drain`), a clean
    /// close is the reader's end of stream; `drain` and `wait_closed` waiters wake.
    fn connection_lost(&mut self, error: Option<io::Error>) {
        let lost = match &error {
            Some(error) => {
                self.reader.set_exception(error);
                Lost::WithError
            }
            None => {
                self.reader.feed_eof();
                Lost::Cleanly
            }
        };
        drop(self.reader.state().transport.take());
        let writer = self.writer();
        writer.lost.set(lost);
        writer.paused.set(false);
        writer.wake_all();
    }

    fn pause_writing(&mut self) {
        self.writer().paused.set(true);
    }

    fn resume_writing(&mut self) {
        self.writer().paused.set(false);
        self.writer().wake_all();
    }
}

/// The writing half of a stream connection (asyncio's `asyncio.StreamWriter`).
pub struct StreamWriter {
    transport: Transport,
    shared: Rc<StreamState>,
}

impl StreamWriter {
    /// Writes `data` (asyncio's `StreamWriter.write`); follow with `drain().await` to
    /// respect flow control.
    pub fn write(&self, data: &[u8]) {
        self.transport.write(data);
    }

    /// Writes each piece in turn (asyncio's `writelines`).
    pub fn writelines<'a>(&self, pieces: impl IntoIterator<Item = &'a [u8]>) {
        pieces.into_iter().for_each(|piece| self.write(piece));
    }

    /// Waits while the transport's buffer is above its high-water mark (asyncio's
    /// `drain`). An error once the connection is lost: the connection's error if it
    /// failed (as asyncio raises the reader's exception), else `BrokenPipe`. A transport
    /// that has just died (a `write` hit a reset, say) has its `connection_lost` still to
    /// come: drain waits for it, so `write` then `drain` reports the failure, as asyncio's
    /// drain lets `connection_lost` run before it looks.
    ///
    /// A plain function returning the future rather than an `async fn`: the future is
    /// then one pointer, and it sits in every task that writes to a connection.
    pub fn drain(&self) -> impl Future<Output = io::Result<()>> + '_ {
        poll_fn(|cx| {
            if let Some(error) = self.shared.reader.error.get() {
                return Poll::Ready(Err(error.to_error()));
            }
            let writer = &self.shared.writer;
            if writer.lost.get() != Lost::No {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")));
            }
            if self.transport.is_closed() {
                writer.park(cx.waker());
                return Poll::Pending;
            }
            if !writer.paused.get() {
                return Poll::Ready(Ok(()));
            }
            writer.park(cx.waker());
            Poll::Pending
        })
    }

    /// Closes the writing side after the buffer is flushed (asyncio's `write_eof`).
    pub fn write_eof(&self) {
        self.transport.write_eof();
    }

    /// True: streams over sockets can half-close (asyncio's `can_write_eof`).
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Closes the connection after flushing (asyncio's `StreamWriter.close`).
    pub fn close(&self) {
        self.transport.close();
    }

    /// True once closing (asyncio's `is_closing`).
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// Waits until the connection is closed (asyncio's `wait_closed`): `Ok` if it closed
    /// cleanly, the connection's error if it failed (a reset, or a final flush that
    /// could not finish), as asyncio's raises it. Data written and not yet sent when the
    /// error struck is lost, and this is where a writer that did not drain learns of it.
    pub async fn wait_closed(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let writer = &self.shared.writer;
            match writer.lost.get() {
                Lost::Cleanly => Poll::Ready(Ok(())),
                Lost::WithError => Poll::Ready(Err(self.connection_error())),
                Lost::No => {
                    writer.park(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The error the connection ended with, kept by the reader.
    fn connection_error(&self) -> io::Error {
        match self.shared.reader.error.get() {
            Some(error) => error.to_error(),
            None => io::Error::new(io::ErrorKind::BrokenPipe, "connection failed"),
        }
    }

    /// The transport underneath (asyncio's `StreamWriter.transport`).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The remote address (asyncio's `get_extra_info("peername")`).
    pub fn peer_addr(&self) -> Option<&SockAddr> {
        self.transport.peer_addr()
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter").field("transport", &self.transport).finish()
    }
}

/// Connects to `host:port` and returns the stream pair (asyncio's
/// `asyncio.open_connection`).
///
/// # Panics
/// Outside a running loop.
pub async fn open_connection(host: &str, port: u16) -> io::Result<(StreamReader, StreamWriter)> {
    let event_loop = running_loop("open_connection");
    let (transport, protocol) =
        event_loop.create_connection(|| StreamProtocol::new(DEFAULT_LIMIT), host, port).await?;
    let pair = protocol.borrow().pair(transport);
    Ok(pair)
}

/// Connects to the Unix socket at `path` (asyncio's `asyncio.open_unix_connection`).
///
/// # Panics
/// Outside a running loop.
pub async fn open_unix_connection(path: impl AsRef<Path>) -> io::Result<(StreamReader, StreamWriter)> {
    let event_loop = running_loop("open_unix_connection");
    let (transport, protocol) =
        event_loop.create_unix_connection(|| StreamProtocol::new(DEFAULT_LIMIT), path).await?;
    let pair = protocol.borrow().pair(transport);
    Ok(pair)
}

/// Serves `host:port`, calling `client_connected(reader, writer)` as a new task for each
/// connection (asyncio's `asyncio.start_server`).
///
/// # Panics
/// Outside a running loop.
pub async fn start_server<F, Fut>(client_connected: F, host: &str, port: u16) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    start_server_with_options(client_connected, host, port, ServerOptions::default()).await
}

/// [`start_server`] with a listen backlog and `SO_REUSEPORT` of your choice (asyncio's
/// `start_server(..., backlog=..., reuse_port=...)`, which passes them to
/// `create_server`): a server that must take a thousand connections at once wants a
/// backlog of 1024, not asyncio's default of 100.
///
/// # Panics
/// Outside a running loop.
pub async fn start_server_with_options<F, Fut>(
    client_connected: F,
    host: &str,
    port: u16,
    options: ServerOptions,
) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let event_loop = running_loop("start_server");
    event_loop.create_server(client_protocol_factory(client_connected), host, port, options).await
}

/// Serves the Unix socket at `path` (asyncio's `asyncio.start_unix_server`).
///
/// # Panics
/// Outside a running loop.
pub async fn start_unix_server<F, Fut>(client_connected: F, path: impl AsRef<Path>) -> io::Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let event_loop = running_loop("start_unix_server");
    event_loop
        .create_unix_server(client_protocol_factory(client_connected), path, ServerOptions::default())
        .await
}

/// A protocol that, once connected, starts `client_connected` as a task with the pair.
struct ClientConnected<F> {
    stream: StreamProtocol,
    /// Until `connection_made` has started the task.
    client_connected: Option<Rc<F>>,
}

fn client_protocol_factory<F, Fut>(client_connected: F) -> impl Fn() -> ClientConnected<F>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let client_connected = Rc::new(client_connected);
    move || ClientConnected {
        stream: StreamProtocol::new(DEFAULT_LIMIT),
        client_connected: Some(client_connected.clone()),
    }
}

impl<F, Fut> Protocol for ClientConnected<F>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    fn connection_made(&mut self, transport: &Transport) {
        self.stream.connection_made(transport);
        if let Some(client_connected) = self.client_connected.take() {
            let (reader, writer) = self.stream.pair(transport.clone());
            create_task(client_connected(reader, writer));
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.stream.data_received(data);
    }

    fn eof_received(&mut self) -> bool {
        self.stream.eof_received()
    }

    fn connection_lost(&mut self, error: Option<io::Error>) {
        self.stream.connection_lost(error);
    }

    fn pause_writing(&mut self) {
        self.stream.pause_writing();
    }

    fn resume_writing(&mut self) {
        self.stream.resume_writing();
    }
}

fn running_loop(what: &str) -> EventLoop {
    get_running_loop().unwrap_or_else(|_| panic!("{what} called outside a running event loop"))
}
