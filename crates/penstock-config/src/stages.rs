//! The stages of a pipeline, checked when the file is loaded: computed columns
//! (`expr:` in the schema) and `transforms:`. Every expression is parsed and typed
//! against the columns it may use here, so a bad one is refused with the file's line
//! and column before anything starts.

use crate::error::{ConfigError, Locator};
use crate::model::TransformFile;
use penstock_codec::{ColumnType, FieldSpec};
use penstock_stages::expr::{Expr, ExprError};
use penstock_stages::{Compute, Filter, Stage, Stages};
use serde_saphyr::Spanned;

/// One checked transform.
#[derive(Debug, Clone)]
pub enum Transform {
    /// `filter:`: keep the rows where the expression is true.
    Filter(Expr),
}

/// The checked stages of a pipeline.
#[derive(Debug, Clone, Default)]
pub struct StageSpecs {
    /// Computed columns: block index, column name, expression (converted to the
    /// column's type), in schema order.
    pub computed: Vec<(usize, String, Expr)>,
    /// `transforms:`, in order.
    pub transforms: Vec<Transform>,
}

impl StageSpecs {
    /// True when there is nothing to run between decode and sink.
    pub fn is_empty(&self) -> bool {
        self.computed.is_empty() && self.transforms.is_empty()
    }

    /// The stages to run: computed columns first (filters may use them), then the
    /// transforms in order.
    pub fn build(&self) -> Stages {
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        if !self.computed.is_empty() {
            stages.push(Box::new(Compute::new(self.computed.clone())));
        }
        for t in &self.transforms {
            match t {
                Transform::Filter(e) => stages.push(Box::new(Filter::new(e.clone()))),
            }
        }
        Stages::new(stages)
    }
}

/// An expression's error as the file's: what is wrong, and where in the expression.
pub(crate) fn expression_message(text: &str, e: &ExprError) -> String {
    if e.line > 0 {
        format!("expression `{text}`: {} (line {}, column {} of the expression)", e.message, e.line, e.column)
    } else {
        format!("expression `{text}`: {}", e.message)
    }
}

/// Checks the computed column `index` of `fields`: its expression over the columns
/// before it, converted to its type.
pub(crate) fn computed(fields: &[FieldSpec], index: usize, text: &str) -> Result<Expr, String> {
    let before: Vec<(String, ColumnType)> = fields[..index].iter().map(|f| (f.column.clone(), f.ty.clone())).collect();
    let e = Expr::compile(text, &before).map_err(|e| expression_message(text, &e))?;
    e.converted_to(&fields[index].ty).map_err(|m| format!("expression `{text}`: {m}"))
}

/// Checks `transforms:` against the batch's columns.
pub(crate) fn transforms(
    file: Option<&Spanned<Vec<Spanned<TransformFile>>>>,
    columns: &[(String, ColumnType)],
    loc: &Locator<'_>,
) -> Result<Vec<Transform>, ConfigError> {
    let Some(list) = file else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (i, t) in list.value.iter().enumerate() {
        let path = format!("transforms[{i}]");
        match &t.value {
            TransformFile::Filter(text) => {
                let at = |m: String| loc.spanned(&t.referenced, &format!("{path}.filter"), m);
                let e = Expr::compile(text, columns).map_err(|e| at(expression_message(text, &e)))?;
                let ty = e.ty();
                if !(ty.is_integer() || matches!(ty.base, penstock_stages::expr::ty::Base::Nothing)) {
                    return Err(at(format!("a filter must be a condition (UInt8 or Bool), but `{text}` is {ty}")));
                }
                out.push(Transform::Filter(e));
            }
        }
    }
    Ok(out)
}
