//! An HTTP/1.1 client on the loop: URL handling (the `url` crate), the request writer,
//! the response parser and body decoders (RFC 9112), and a client with a connection pool.

mod chunk_ext;
mod client;
mod error;
pub mod parse;
mod pool;
pub mod request;
#[cfg(feature = "tls")]
mod tls;
mod trailer;

pub use client::{Client, ClientOptions, Response};
pub use error::{HttpError, HttpErrorKind};
