//! `time_key_format`: a strftime-style format, parsed (and so checked) once at
//! configuration time; `codec::timefmt` writes times with it.
//!
//! Supports the usual conversions plus Fluent Bit's `%L` (milliseconds) and the
//! `%3N` / `%6N` / `%9N` (`%N` = `%9N`) fractions of a second.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unsupported conversion '%{0}' (supported: %Y %C %y %m %d %e %j %H %I %M %S %p %a %A %b %B %h %F %T %D %R %s %u %w %z %Z %L %N %3N %6N %9N %n %t %%)")]
pub struct TimeFormatError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(String),
    Conv(char),
    /// Fraction of a second with this many digits.
    Frac(u8),
}

/// A parsed time format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    pub(crate) toks: Vec<Tok>,
}

impl TimeFormat {
    pub fn parse(fmt: &str) -> Result<TimeFormat, TimeFormatError> {
        let mut toks = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some(d) = chars.next() else {
                return Err(TimeFormatError(String::new()));
            };
            let tok = match d {
                '%' => {
                    lit.push('%');
                    continue;
                }
                'n' => {
                    lit.push('\n');
                    continue;
                }
                't' => {
                    lit.push('\t');
                    continue;
                }
                'L' => Tok::Frac(3),
                'N' => Tok::Frac(9),
                '3' | '6' | '9' => {
                    if chars.next_if_eq(&'N').is_none() {
                        return Err(TimeFormatError(d.to_string()));
                    }
                    Tok::Frac(d as u8 - b'0')
                }
                'Y' | 'C' | 'y' | 'm' | 'd' | 'e' | 'j' | 'H' | 'I' | 'M' | 'S' | 'p' | 'a'
                | 'A' | 'b' | 'B' | 'h' | 'F' | 'T' | 'D' | 'R' | 's' | 'u' | 'w' | 'z' | 'Z' => {
                    Tok::Conv(d)
                }
                other => return Err(TimeFormatError(other.to_string())),
            };
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            toks.push(tok);
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        Ok(TimeFormat { toks })
    }

    /// Whether the output depends on the fraction of a second.
    pub fn uses_fraction(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Frac(_)))
    }
}
