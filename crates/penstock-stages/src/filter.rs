//! `filter: "<expression>"`: keeps the rows where the expression is true (non-zero and
//! not NULL), as ClickHouse's `WHERE` does. Dropped rows are counted, not dead-lettered;
//! rows the expression cannot be computed for are rejected (dead-lettered).

use crate::expr::eval::RowErrors;
use crate::expr::Expr;
use crate::{Stage, StageBatch};

/// The filter stage.
#[derive(Debug)]
pub struct Filter {
    expr: Expr,
    errors: RowErrors,
}

impl Filter {
    /// A filter keeping the rows where `expr` is true.
    pub fn new(expr: Expr) -> Self {
        Filter { expr, errors: RowErrors::default() }
    }
}

impl Stage for Filter {
    fn kind(&self) -> &'static str {
        "filter"
    }

    fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
        self.errors.rows.clear();
        let rows = b.block.rows();
        let v = self.expr.eval(b.block, rows, b.batch_time.secs, &mut self.errors);
        for (i, keep) in b.keep.iter_mut().enumerate() {
            *keep &= v.truthy(i);
        }
        for (row, why) in self.errors.rows.drain(..) {
            if !b.rejected.iter().any(|(r, _)| *r == row) {
                b.rejected.push((row, format!("filter `{}`: {why}", self.expr.text())));
            }
        }
        Ok(())
    }
}
