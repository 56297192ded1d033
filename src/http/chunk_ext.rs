//! The chunk extensions of a chunk-size line (RFC 9112 section 7.1.1), checked a byte at a
//! time as they arrive:
//!
//! ```text
//! chunk-ext     = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val = token / quoted-string
//! ```
//!
//! Nothing reads the extensions, but what is not one is not let through: a control byte, a
//! bare CR, an empty name or value, an unterminated quoted-string. A recipient that skips
//! to the line end whatever it holds reads a different message than one that parses it,
//! which is how request smuggling starts. Whitespace before the line end is tolerated, as
//! it is after the chunk size.

use super::parse::{is_tchar, show, ParseError};

/// Where the check of a chunk-size line's extensions stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ext {
    /// After an extension: BWS, `;` or the line end.
    Between,
    /// After `;`: BWS, then a name.
    BeforeName,
    /// Inside a name (a token).
    Name,
    /// After a name and BWS: `=`, `;` or the line end.
    AfterName,
    /// After `=`: BWS, then a value.
    BeforeValue,
    /// Inside a token value.
    Token,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash inside a quoted-string: the escaped byte.
    QuotedPair,
}

impl Ext {
    /// Whether a CR or LF here ends the chunk-size line (elsewhere it is an error).
    pub(crate) fn may_end_line(self) -> bool {
        matches!(self, Ext::Between | Ext::Name | Ext::AfterName | Ext::Token)
    }

    /// The state after byte `b`, or an error naming the byte and where it was. A CR or LF
    /// where the line may end is the caller's to handle, before calling this.
    pub(crate) fn next(self, b: u8) -> Result<Ext, ParseError> {
        let space = b == b' ' || b == b'\t';
        let next = match self {
            Ext::Between if space => Some(Ext::Between),
            Ext::Between | Ext::Name | Ext::AfterName | Ext::Token if b == b';' => Some(Ext::BeforeName),
            Ext::BeforeName if space => Some(Ext::BeforeName),
            Ext::BeforeName | Ext::Name if is_tchar(b) => Some(Ext::Name),
            Ext::Name | Ext::AfterName if space => Some(Ext::AfterName),
            Ext::Name | Ext::AfterName if b == b'=' => Some(Ext::BeforeValue),
            Ext::BeforeValue if space => Some(Ext::BeforeValue),
            Ext::BeforeValue if b == b'"' => Some(Ext::Quoted),
            Ext::BeforeValue | Ext::Token if is_tchar(b) => Some(Ext::Token),
            Ext::Token if space => Some(Ext::Between),
            Ext::Quoted if b == b'"' => Some(Ext::Between),
            Ext::Quoted if b == b'\\' => Some(Ext::QuotedPair),
            Ext::Quoted if is_qdtext(b) => Some(Ext::Quoted),
            Ext::QuotedPair if space || (b > 0x20 && b != 0x7f) => Some(Ext::Quoted),
            _ => None,
        };
        next.ok_or_else(|| {
            ParseError::new(format!("invalid chunk extension: unexpected {} {}", show(&[b]), self.place()))
        })
    }

    /// Where in the grammar this state is, for an error message.
    fn place(self) -> &'static str {
        match self {
            Ext::Between => "after a chunk extension",
            Ext::BeforeName => "where a chunk extension name was expected",
            Ext::Name => "in a chunk extension name",
            Ext::AfterName => "after a chunk extension name",
            Ext::BeforeValue => "where a chunk extension value was expected",
            Ext::Token => "in a chunk extension value",
            Ext::Quoted => "in a quoted chunk extension value",
            Ext::QuotedPair => "after a backslash in a quoted chunk extension value",
        }
    }
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 section 5.6.4).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}
