//! The parser: tokens → a postfix program (a Pratt parser bounded in nodes and depth).

use super::lex::{Tok, Token};
use super::{syntax, ExprError, FUNCTIONS, MAX_DEPTH, MAX_NODES, MAX_VARIABLES};

/// One postfix instruction: pushes a value or replaces its operands on the stack by a result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Instr {
    /// 0-based input index.
    Var(usize),
    Const(f64),
    Neg,
    Not,
    Bin(BinOp),
    Call(Func),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

/// Binding powers, Python's order: comparisons < `|` < `&` < `+ -` < `* / %` < unary < `**`.
pub(super) const UNARY_BP: u8 = 60;

impl BinOp {
    /// (operator, left binding power, right binding power); left-associative operators bind
    /// their right side one tighter, `**` binds it at the unary level so `2**-1` and `2**3**2`
    /// parse as in Python.
    pub(super) fn from_tok(tok: &Tok) -> Option<(BinOp, u8, u8)> {
        let Tok::Op(op) = tok else { return None };
        Some(match *op {
            "<" => (BinOp::Lt, 10, 11),
            "<=" => (BinOp::Le, 10, 11),
            ">" => (BinOp::Gt, 10, 11),
            ">=" => (BinOp::Ge, 10, 11),
            "==" => (BinOp::Eq, 10, 11),
            "!=" => (BinOp::Ne, 10, 11),
            "|" => (BinOp::Or, 20, 21),
            "&" => (BinOp::And, 30, 31),
            "+" => (BinOp::Add, 40, 41),
            "-" => (BinOp::Sub, 40, 41),
            "*" => (BinOp::Mul, 50, 51),
            "/" => (BinOp::Div, 50, 51),
            "%" => (BinOp::Mod, 50, 51),
            "**" => (BinOp::Pow, 70, UNARY_BP),
            _ => return None,
        })
    }

    pub(super) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
}

/// Whether a sub-expression is a boolean array (numpy refuses `~ & |` on float arrays).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Num,
    Bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Parsed {
    pub(super) kind: Kind,
    pub(super) at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Func {
    Where,
    Min,
    Max,
    Mod,
    Abs,
    Sqrt,
    Log,
    Log10,
    Exp,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Arcsin,
    Arccos,
    Arctan,
    Arcsinh,
    Arccosh,
    Arctanh,
    GetMask,
    SetMask,
    MaskedEqual,
    MaskedNotEqual,
    MaskedGreater,
    MaskedGreaterEqual,
    MaskedLess,
    MaskedLessEqual,
    MaskedInside,
    MaskedOutside,
    MaskedInvalid,
    MaskedWhere,
}

impl Func {
    pub(super) fn from_name(name: &str) -> Option<(Func, &'static str)> {
        let f = match name {
            "where" => Func::Where,
            "min" | "minimum" => Func::Min,
            "max" | "maximum" => Func::Max,
            "mod" => Func::Mod,
            "abs" => Func::Abs,
            "sqrt" => Func::Sqrt,
            "log" => Func::Log,
            "log10" => Func::Log10,
            "exp" => Func::Exp,
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "arcsin" => Func::Arcsin,
            "arccos" => Func::Arccos,
            "arctan" => Func::Arctan,
            "arcsinh" => Func::Arcsinh,
            "arccosh" => Func::Arccosh,
            "arctanh" => Func::Arctanh,
            "getmask" => Func::GetMask,
            "setmask" => Func::SetMask,
            "masked_equal" => Func::MaskedEqual,
            "masked_not_equal" => Func::MaskedNotEqual,
            "masked_greater" => Func::MaskedGreater,
            "masked_greater_equal" => Func::MaskedGreaterEqual,
            "masked_less" => Func::MaskedLess,
            "masked_less_equal" => Func::MaskedLessEqual,
            "masked_inside" => Func::MaskedInside,
            "masked_outside" => Func::MaskedOutside,
            "masked_invalid" => Func::MaskedInvalid,
            "masked_where" => Func::MaskedWhere,
            _ => return None,
        };
        let static_name = FUNCTIONS.iter().find(|(n, _)| *n == name)?.0;
        Some((f, static_name))
    }

    pub(super) fn arity(self) -> usize {
        match self {
            Func::Where | Func::MaskedInside | Func::MaskedOutside => 3,
            Func::Min
            | Func::Max
            | Func::Mod
            | Func::SetMask
            | Func::MaskedEqual
            | Func::MaskedNotEqual
            | Func::MaskedGreater
            | Func::MaskedGreaterEqual
            | Func::MaskedLess
            | Func::MaskedLessEqual
            | Func::MaskedWhere => 2,
            _ => 1,
        }
    }
}

pub(super) struct Parser<'t> {
    pub(super) tokens: &'t [Token],
    pub(super) pos: usize,
    pub(super) program: Vec<Instr>,
    pub(super) used: [bool; MAX_VARIABLES],
    pub(super) depth: usize,
}

impl Parser<'_> {
    /// The current token; the lexer always ends the list with `End`, which is never consumed.
    pub(super) fn peek(&self) -> Token {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::End,
                at: 0,
            })
    }

    pub(super) fn advance(&mut self) -> Token {
        let t = self.peek();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    pub(super) fn emit(&mut self, instr: Instr, at: usize) -> Result<(), ExprError> {
        if self.program.len() >= MAX_NODES {
            return Err(ExprError::TooManyNodes {
                offset: at,
                max: MAX_NODES,
            });
        }
        self.program.push(instr);
        Ok(())
    }

    pub(super) fn expr(&mut self, min_bp: u8) -> Result<Parsed, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep {
                offset: self.peek().at,
                max: MAX_DEPTH,
            });
        }
        self.depth += 1;
        let result = self.expr_inner(min_bp);
        self.depth -= 1;
        result
    }

    pub(super) fn expr_inner(&mut self, min_bp: u8) -> Result<Parsed, ExprError> {
        let mut lhs = self.prefix()?;
        // Set once this loop built a comparison: Python would chain a second one
        // (`a < b < c` means `a < b and b < c`), which Terracotta rejects too.
        let mut compared = false;
        loop {
            let t = self.peek();
            let Some((op, lbp, rbp)) = BinOp::from_tok(&t.tok) else {
                break;
            };
            if lbp < min_bp {
                break;
            }
            if compared && op.is_comparison() {
                return Err(syntax(
                    "chained comparisons are not supported (use parentheses and '&')",
                    t.at,
                ));
            }
            self.advance();
            let rhs = self.expr(rbp)?;
            let kind = match op {
                BinOp::And | BinOp::Or => {
                    let name = if op == BinOp::And { "&" } else { "|" };
                    for side in [lhs, rhs] {
                        if side.kind != Kind::Bool {
                            return Err(ExprError::NotBoolean {
                                op: name,
                                offset: side.at,
                            });
                        }
                    }
                    Kind::Bool
                }
                _ if op.is_comparison() => Kind::Bool,
                _ => Kind::Num,
            };
            self.emit(Instr::Bin(op), t.at)?;
            lhs = Parsed { kind, at: lhs.at };
            compared = op.is_comparison();
        }
        Ok(lhs)
    }

    pub(super) fn prefix(&mut self) -> Result<Parsed, ExprError> {
        let t = self.advance();
        let at = t.at;
        match t.tok {
            Tok::Num(v) => {
                self.emit(Instr::Const(v), at)?;
                Ok(Parsed {
                    kind: Kind::Num,
                    at,
                })
            }
            Tok::Op("-") => {
                self.expr(UNARY_BP)?;
                self.emit(Instr::Neg, at)?;
                Ok(Parsed {
                    kind: Kind::Num,
                    at,
                })
            }
            Tok::Op("+") => {
                let operand = self.expr(UNARY_BP)?;
                Ok(Parsed {
                    kind: operand.kind,
                    at,
                })
            }
            Tok::Op("~") => {
                let operand = self.expr(UNARY_BP)?;
                if operand.kind != Kind::Bool {
                    return Err(ExprError::NotBoolean {
                        op: "~",
                        offset: operand.at,
                    });
                }
                self.emit(Instr::Not, at)?;
                Ok(Parsed {
                    kind: Kind::Bool,
                    at,
                })
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect_close()?;
                Ok(Parsed {
                    kind: inner.kind,
                    at,
                })
            }
            Tok::Ident(name) => self.ident(&name, at),
            Tok::End => Err(syntax("unexpected end of expression, expected a value", at)),
            other => Err(syntax(
                format!("expected a value, found {}", other.describe()),
                at,
            )),
        }
    }

    pub(super) fn expect_close(&mut self) -> Result<(), ExprError> {
        let t = self.peek();
        if t.tok == Tok::RParen {
            self.advance();
            Ok(())
        } else {
            Err(syntax(
                format!("expected ')', found {}", t.tok.describe()),
                t.at,
            ))
        }
    }

    pub(super) fn ident(&mut self, name: &str, at: usize) -> Result<Parsed, ExprError> {
        let num = Parsed {
            kind: Kind::Num,
            at,
        };
        if let Some(digits) = name.strip_prefix('v') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return match digits.parse::<usize>() {
                    Ok(n) if (1..=MAX_VARIABLES).contains(&n) && !digits.starts_with('0') => {
                        self.used[n - 1] = true;
                        self.emit(Instr::Var(n - 1), at)?;
                        Ok(num)
                    }
                    _ => Err(ExprError::UnknownVariable {
                        name: name.to_string(),
                        offset: at,
                        max: MAX_VARIABLES,
                    }),
                };
            }
        }
        let constant = match name {
            "pi" => Some(std::f64::consts::PI),
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            _ => None,
        };
        if let Some(c) = constant {
            self.emit(Instr::Const(c), at)?;
            return Ok(num);
        }
        let called = self.peek().tok == Tok::LParen;
        let Some((func, static_name)) = Func::from_name(name) else {
            return Err(if called {
                ExprError::UnknownFunction {
                    name: name.to_string(),
                    offset: at,
                }
            } else {
                ExprError::UnknownName {
                    name: name.to_string(),
                    offset: at,
                    max: MAX_VARIABLES,
                }
            });
        };
        if !called {
            return Err(syntax(
                format!("function {name} must be called: expected '(' after it"),
                at,
            ));
        }
        self.advance();
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                let t = self.peek();
                match t.tok {
                    Tok::Comma => {
                        self.advance();
                        // Python allows one trailing comma in a call.
                        if self.peek().tok == Tok::RParen {
                            break;
                        }
                    }
                    Tok::RParen => break,
                    other => {
                        return Err(syntax(
                            format!(
                                "expected ',' or ')' in call of {name}, found {}",
                                other.describe()
                            ),
                            t.at,
                        ))
                    }
                }
            }
        }
        self.expect_close()?;
        if args.len() != func.arity() {
            return Err(ExprError::WrongArgCount {
                name: static_name,
                offset: at,
                got: args.len(),
                expected: func.arity(),
            });
        }
        self.emit(Instr::Call(func), at)?;
        let kind = match func {
            Func::GetMask => Kind::Bool,
            Func::Where if args[1].kind == Kind::Bool && args[2].kind == Kind::Bool => Kind::Bool,
            _ => Kind::Num,
        };
        Ok(Parsed { kind, at })
    }
}

/// The deepest stack a well-formed postfix program reaches.
pub(super) fn max_stack(program: &[Instr]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for instr in program {
        match instr {
            Instr::Var(_) | Instr::Const(_) => depth += 1,
            Instr::Neg | Instr::Not => {}
            Instr::Bin(_) => depth = depth.saturating_sub(1),
            Instr::Call(f) => depth = (depth + 1).saturating_sub(f.arity()),
        }
        max = max.max(depth);
    }
    max
}
