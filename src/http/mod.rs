//! An HTTP/1.1 client on the loop: URL handling, the request writer, the response parser,
//! body decoders, and a client with a connection pool.

pub mod parse;
