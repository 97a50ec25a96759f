//! Computed columns (`expr:` in the schema): each is evaluated over the batch, in schema
//! order, and written into its column in place (the decoder left it at its default), so
//! a computed column may use the ones before it. A row that cannot be computed is
//! rejected (dead-lettered) with the column named.

use crate::expr::eval::RowErrors;
use crate::expr::Expr;
use crate::{Stage, StageBatch};

/// The computed columns of a schema, as one stage.
#[derive(Debug)]
pub struct Compute {
    /// Block index and expression (converted to the column's type) of each column.
    columns: Vec<(usize, String, Expr)>,
    errors: RowErrors,
}

impl Compute {
    /// Columns `(block index, name, expression)`, in schema order.
    pub fn new(columns: Vec<(usize, String, Expr)>) -> Self {
        Compute { columns, errors: RowErrors::default() }
    }
}

impl Stage for Compute {
    fn kind(&self) -> &'static str {
        "computed columns"
    }

    fn apply(&mut self, b: &mut StageBatch<'_>) -> Result<(), String> {
        let rows = b.block.rows();
        for (index, name, expr) in &self.columns {
            self.errors.rows.clear();
            let v = expr.eval(b.block, rows, b.batch_time.secs, &mut self.errors);
            v.store(&mut b.block.columns_mut()[*index]);
            for (row, why) in self.errors.rows.drain(..) {
                if b.keep[row] && !b.rejected.iter().any(|(r, _)| *r == row) {
                    b.rejected.push((row, format!("column `{name}` = {}: {why}", expr.text())));
                }
            }
        }
        Ok(())
    }
}
