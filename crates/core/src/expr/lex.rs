//! The lexer: expression text → tokens with their character offsets.

use super::{syntax, ExprError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Num(v) => format!("number {v}"),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Op(o) => format!("'{o}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::End => "the end of the expression".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

pub(super) fn lex(chars: &[char]) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let at = i;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            let (value, end) = lex_number(chars, i)?;
            out.push(Token {
                tok: Tok::Num(value),
                at,
            });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
            {
                end += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[i..end].iter().collect()),
                at,
            });
            i = end;
            continue;
        }
        let (tok, width) = match (c, next) {
            ('*', Some('*')) => (Tok::Op("**"), 2),
            ('<', Some('=')) => (Tok::Op("<="), 2),
            ('>', Some('=')) => (Tok::Op(">="), 2),
            ('=', Some('=')) => (Tok::Op("=="), 2),
            ('!', Some('=')) => (Tok::Op("!="), 2),
            ('/', Some('/')) => return Err(syntax("floor division '//' is not supported", at)),
            ('+', _) => (Tok::Op("+"), 1),
            ('-', _) => (Tok::Op("-"), 1),
            ('*', _) => (Tok::Op("*"), 1),
            ('/', _) => (Tok::Op("/"), 1),
            ('%', _) => (Tok::Op("%"), 1),
            ('<', _) => (Tok::Op("<"), 1),
            ('>', _) => (Tok::Op(">"), 1),
            ('&', _) => (Tok::Op("&"), 1),
            ('|', _) => (Tok::Op("|"), 1),
            ('~', _) => (Tok::Op("~"), 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('=', _) => return Err(syntax("unexpected '=' (use '==' to compare)", at)),
            ('^', _) => {
                return Err(syntax(
                    "operator '^' is not supported (use '**' for powers)",
                    at,
                ))
            }
            _ => return Err(syntax(format!("unexpected character {c:?}"), at)),
        };
        out.push(Token { tok, at });
        i += width;
    }
    out.push(Token {
        tok: Tok::End,
        at: chars.len(),
    });
    Ok(out)
}

/// Lexes a Python float/int literal (`12`, `1.5`, `.5`, `5.`, `1e-3`) starting at `start`;
/// returns its value and the index after it.
pub(super) fn lex_number(chars: &[char], start: usize) -> Result<(f64, usize), ExprError> {
    let digits = |mut i: usize| {
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = digits(start);
    if chars.get(end) == Some(&'.') {
        end = digits(end + 1);
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let mut exp = end + 1;
        if matches!(chars.get(exp), Some('+' | '-')) {
            exp += 1;
        }
        let exp_end = digits(exp);
        if exp_end == exp {
            return Err(syntax(
                format!(
                    "malformed number '{}'",
                    chars[start..exp].iter().collect::<String>()
                ),
                start,
            ));
        }
        end = exp_end;
    }
    if chars
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
    {
        return Err(syntax(
            format!("unexpected {:?} right after a number", chars[end]),
            end,
        ));
    }
    let text: String = chars[start..end].iter().collect();
    text.parse::<f64>()
        .map(|v| (v, end))
        .map_err(|_| syntax(format!("malformed number '{text}'"), start))
}
