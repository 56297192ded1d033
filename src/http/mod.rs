//! An HTTP/1.1 client on the loop: URL handling (the `url` crate), the request writer,
//! the response parser and body decoders (RFC 9112), and a client with a connection pool.

mod client;
mod error;
pub mod parse;
mod pool;
pub mod request;
#[cfg(feature = "tls")]
mod tls;

pub use client::{Client, ClientOptions, Response};
pub use error::{HttpError, HttpErrorKind};
