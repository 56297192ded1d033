//! The trailer section of a chunked body (RFC 9112 section 7.1.2), checked a byte at a time
//! as it arrives.
//!
//! Its field lines are dropped, never merged into the head nor used for framing (RFC 9110
//! section 6.5), but they must be field lines (RFC 9112 section 5): a token name, the
//! colon right after it (whitespace before it is an error, section 5.1), and a value of
//! visible bytes, spaces, tabs and obs-text; no NUL, no bare CR, no other control byte.
//! An obs-fold continuation line is read as part of the value, as in the head (section 5.2).
//! The caller bounds the section's size.

use super::parse::{is_tchar, show, ParseError};

/// Where the check of a trailer section stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trailer {
    /// At the start of a line: a field name, an obs-fold continuation (once a field has
    /// been seen), or the empty line that ends the section.
    LineStart { after_field: bool },
    /// Inside a field name.
    Name,
    /// Inside a field value (after the colon).
    Value,
    /// After a CR in a value: the LF must follow.
    ValueLf,
    /// After a CR at the start of a line: the LF that ends the section must follow.
    EndLf,
}

impl Trailer {
    /// At the start of the trailer section, right after the last chunk's line.
    pub(crate) const START: Trailer = Trailer::LineStart { after_field: false };

    /// The state after byte `b`: `None` when `b` ended the trailer section (and so the
    /// body), an error naming what is wrong.
    pub(crate) fn next(self, b: u8) -> Result<Option<Trailer>, ParseError> {
        let space = b == b' ' || b == b'\t';
        let next = match (self, b) {
            (Trailer::LineStart { .. }, b'\r') => Trailer::EndLf,
            (Trailer::LineStart { .. } | Trailer::EndLf, b'\n') => return Ok(None),
            (Trailer::EndLf, _) => {
                return Err(ParseError::new("missing LF after CR at the end of the chunked trailer section"))
            }
            (Trailer::LineStart { after_field: true }, _) if space => Trailer::Value,
            (Trailer::LineStart { after_field: false }, _) if space => {
                return Err(invalid("a line starts with whitespace before any field (obs-fold)"))
            }
            (Trailer::LineStart { .. } | Trailer::Name, _) if is_tchar(b) => Trailer::Name,
            (Trailer::LineStart { .. }, b':') => return Err(invalid("empty field name")),
            (Trailer::Name, b':') => Trailer::Value,
            (Trailer::Name, _) if space => return Err(invalid("whitespace in or after the field name")),
            (Trailer::Name, b'\r' | b'\n') => return Err(invalid("a field line without a colon")),
            (Trailer::LineStart { .. } | Trailer::Name, _) => {
                return Err(invalid(&format!("unexpected {} in a field name", show(&[b]))))
            }
            (Trailer::Value, b'\r') => Trailer::ValueLf,
            (Trailer::Value | Trailer::ValueLf, b'\n') => Trailer::LineStart { after_field: true },
            (Trailer::Value, _) if space || (b > 0x20 && b != 0x7f) => Trailer::Value,
            (Trailer::Value, _) => {
                return Err(invalid(&format!("unexpected {} in a field value", show(&[b]))))
            }
            (Trailer::ValueLf, _) => return Err(invalid("a bare CR in a field value")),
        };
        Ok(Some(next))
    }
}

fn invalid(what: &str) -> ParseError {
    ParseError::new(format!("invalid trailer field: {what}"))
}
