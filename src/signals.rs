//! Placeholder: signal handling is being written.
