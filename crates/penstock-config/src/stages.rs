//! The stages of a pipeline, checked when the file is loaded: computed columns
//! (`expr:` in the schema) and `transforms:`. Every expression is parsed and typed
//! against the columns it may use here, so a bad one is refused with the file's line
//! and column before anything starts.

use crate::error::{ConfigError, Locator};
use crate::model::{DedupFile, DedupKeyFile, LeaseFile, TransformFile};
use penstock_codec::{ColumnType, FieldSpec};
use penstock_stages::dedup::{DedupTime, KeyStore};
use penstock_stages::expr::{Expr, ExprError};
use penstock_stages::{Compute, Dedup, DedupSpec, Filter, Stage, Stages};
use serde_saphyr::Spanned;

/// One checked transform.
#[derive(Debug, Clone)]
pub enum Transform {
    /// `filter:`: keep the rows where the expression is true.
    Filter(Expr),
    /// `dedup:`: drop rows whose key was seen within the window. `name` labels its
    /// store and changelog (`dedup`, `dedup-2`, ...).
    Dedup {
        /// The checked spec.
        spec: DedupSpec,
        /// Its label.
        name: String,
    },
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

    /// The dedup stages' labels and specs, in order.
    pub fn dedups(&self) -> impl Iterator<Item = (&str, &DedupSpec)> {
        self.transforms.iter().filter_map(|t| match t {
            Transform::Dedup { spec, name } => Some((name.as_str(), spec)),
            Transform::Filter(_) => None,
        })
    }

    /// The dedup whose key routes rows through an internal topic (`repartition: true`).
    pub fn repartition(&self) -> Option<(&str, &DedupSpec)> {
        self.dedups().find(|(_, d)| d.repartition)
    }

    /// True when a stage keeps state (needs `state:`).
    pub fn has_state(&self) -> bool {
        self.dedups().next().is_some()
    }

    /// The stages to run: computed columns first (filters may use them), then the
    /// transforms in order. Stateful stages take their store from `store`, called with
    /// each one's label.
    pub fn build(&self, mut store: impl FnMut(&str) -> Box<dyn KeyStore>) -> Stages {
        let mut stages: Vec<Box<dyn Stage>> = Vec::new();
        if !self.computed.is_empty() {
            stages.push(Box::new(Compute::new(self.computed.clone())));
        }
        for t in &self.transforms {
            match t {
                Transform::Filter(e) => stages.push(Box::new(Filter::new(e.clone()))),
                Transform::Dedup { spec, name } => stages.push(Box::new(Dedup::new(spec.clone(), name, store(name)))),
            }
        }
        Stages::new(stages)
    }

    /// The stages of a pipeline without stateful stages (their absence checked when
    /// the file was loaded).
    pub fn build_stateless(&self) -> Stages {
        self.build(|name| unreachable!("stage `{name}` keeps state on a path that refuses it"))
    }
}

/// Checks a `dedup:` against the batch's columns.
fn dedup(d: &DedupFile, columns: &[(String, ColumnType)]) -> Result<DedupSpec, String> {
    let names: Vec<&str> = match &d.key {
        DedupKeyFile::One(k) => vec![k.as_str()],
        DedupKeyFile::Many(k) => k.iter().map(String::as_str).collect(),
    };
    if names.is_empty() {
        return Err("`key` names no column".into());
    }
    let known = || columns.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let find = |n: &str| columns.iter().position(|(c, _)| c == n);
    let mut keys = Vec::new();
    for n in names {
        let Some(i) = find(n) else {
            return Err(format!("key `{n}` is not a column; the columns are {}", known()));
        };
        keys.push((i, n.to_string()));
    }
    let time = match d.time.as_deref().map(str::trim) {
        None | Some("_timestamp") => DedupTime::Kafka,
        Some(n) => {
            let Some(i) = find(n) else {
                return Err(format!(
                    "time `{n}` is not a column; use `_timestamp` (the Kafka timestamp) or one of {}",
                    known()
                ));
            };
            DedupTime::column(i, n, &columns[i].1)?
        }
    };
    let window_ms = i64::try_from(d.window.0.as_millis()).unwrap_or(i64::MAX);
    if window_ms < 1 {
        return Err("`window` must be at least 1ms".into());
    }
    if d.repartition_lease.is_some() && !d.repartition {
        return Err("`repartition_lease` applies only with `repartition: true`".into());
    }
    let repartition_lease = d.repartition_lease.unwrap_or_default() == LeaseFile::Group;
    Ok(DedupSpec { keys, time, window_ms, repartition: d.repartition, repartition_lease })
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

/// Checks `transforms:` against the batch's columns. `stateful` says whether the
/// path runs stateful stages (Kafka → ClickHouse) or refuses them.
pub(crate) fn transforms(
    file: Option<&Spanned<Vec<Spanned<TransformFile>>>>,
    columns: &[(String, ColumnType)],
    loc: &Locator<'_>,
    stateful: bool,
) -> Result<Vec<Transform>, ConfigError> {
    let Some(list) = file else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut dedups = 0;
    for (i, t) in list.value.iter().enumerate() {
        let path = format!("transforms[{i}]");
        match &t.value {
            TransformFile::Dedup(d) => {
                let at = |m: String| loc.spanned(&t.referenced, &format!("{path}.dedup"), m);
                if !stateful {
                    return Err(at("dedup keeps state per source partition and runs on Kafka → ClickHouse pipelines; this pipeline's sink or source cannot run it".into()));
                }
                dedups += 1;
                let name = if dedups == 1 { "dedup".to_string() } else { format!("dedup-{dedups}") };
                let spec = dedup(d, columns).map_err(at)?;
                if spec.repartition
                    && out.iter().any(|t| matches!(t, Transform::Dedup { spec, .. } if spec.repartition))
                {
                    return Err(at("only one dedup can repartition (rows are routed by one key)".into()));
                }
                out.push(Transform::Dedup { spec, name });
            }
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
