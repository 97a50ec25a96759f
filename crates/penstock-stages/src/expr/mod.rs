//! ClickHouse SQL expressions over blocks: `filter` conditions and computed columns.
//!
//! An expression is parsed with sqlparser's ClickHouse dialect ([`compile`]), checked
//! against the batch's columns and typed by ClickHouse's rules ([`ty`]) when the
//! pipeline file is loaded, then evaluated over whole column buffers ([`eval`]): one
//! loop per node, no value tree per row. The functions it knows are listed in
//! [`compile::FUNCTIONS`]; anything else is refused at load time. Conformance with
//! ClickHouse (chdb's 26.9 engine, and the 18.16 server) is tested in
//! `tests/conformance.rs`.

pub mod compile;
pub mod eval;
pub mod plan;
pub mod text;
pub mod ty;
pub mod vector;

use eval::{Ctx, RowErrors};
use penstock_codec::{Block, ColumnType};
use plan::Node;
use ty::Ty;
use vector::Vector;

/// Why an expression was refused: where in its text (1-based line and column; 0 when
/// the parser's message says where) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// Line in the expression text (1-based), 0 when unknown.
    pub line: u64,
    /// Column in the expression text (1-based), 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl ExprError {
    fn at(line: u64, column: u64, message: String) -> Self {
        ExprError { line, column, message }
    }

    fn parse(message: String) -> Self {
        let message = message.strip_prefix("sql parser error: ").unwrap_or(&message).to_string();
        ExprError { line: 0, column: 0, message }
    }
}

/// A checked expression, ready to run over batches with the columns it was checked
/// against.
#[derive(Debug, Clone)]
pub struct Expr {
    node: Node,
    types: Vec<Ty>,
    text: String,
}

impl Expr {
    /// Parses and checks `text` against `columns` (name and type of each column of the
    /// batch, in block order).
    pub fn compile(text: &str, columns: &[(String, ColumnType)]) -> Result<Expr, ExprError> {
        let scope: Vec<(String, Result<Ty, String>)> =
            columns.iter().map(|(n, t)| (n.clone(), Ty::from_column(t))).collect();
        let node = compile::compile(text, &scope)?;
        let types = scope.into_iter().map(|(_, t)| t.unwrap_or(Ty::of(ty::Base::Nothing))).collect();
        Ok(Expr { node, types, text: text.to_string() })
    }

    /// The expression's type, e.g. `UInt8`, `Nullable(String)`.
    pub fn ty(&self) -> Ty {
        self.node.ty()
    }

    /// The text it was compiled from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The expression with its result converted to `target` (a computed column's type);
    /// `Err` names why the types do not convert, or that the expression can be NULL
    /// when the column cannot.
    pub fn converted_to(mut self, target: &ColumnType) -> Result<Expr, String> {
        let want = Ty::from_column(target)?;
        let have = self.node.ty();
        if have.nullable && !want.nullable {
            return Err(format!(
                "the expression is {have}, which can be NULL, but the column is {target}: make the column Nullable or wrap the expression in ifNull(..., default)"
            ));
        }
        if have.base != want.base {
            let ok = !matches!(
                (&have.base, &want.base),
                (ty::Base::String, b) | (b, ty::Base::String) if !matches!(b, ty::Base::String | ty::Base::Nothing)
            ) || matches!(want.base, ty::Base::String);
            if !ok {
                return Err(format!("the expression is {have}, which does not convert to {target}"));
            }
            self.node =
                Node::Convert(Box::new(self.node), Ty { base: want.base, nullable: have.nullable }, plan::OnBad::Fail);
        }
        Ok(self)
    }

    /// Evaluates over the first `rows` rows of `block` (the batch's time is `now`, in
    /// seconds). Rows that cannot be computed are added to `errors`.
    pub fn eval(&self, block: &Block, rows: usize, now: i64, errors: &mut RowErrors) -> Vector {
        let cx = Ctx { block, types: &self.types, rows, now };
        eval::eval(&self.node, &cx, errors)
    }
}
