//! Placeholder: HTTP/1.1 response parsing and body framing are being written.
