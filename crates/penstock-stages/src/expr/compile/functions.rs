//! The functions an expression may call: arity, argument types and result type of
//! each, as ClickHouse types them; conversions and branches (`if`, `multiIf`, `CASE`,
//! `coalesce`) with the supertype rules.

use super::*;

impl Checker<'_> {
    pub(super) fn function(&self, e: &Expr, f: &Function) -> Result<Node, ExprError> {
        let name = f.name.to_string();
        let lower = name.to_ascii_lowercase();
        // toStartOfInterval takes an INTERVAL, not an expression.
        if lower == "tostartofinterval" {
            return self.start_of_interval(e, f);
        }
        let mut args = self.args(e, f)?;
        let n = args.len();
        let want = |k: usize| -> Result<(), ExprError> {
            if n == k {
                Ok(())
            } else {
                Err(err(e, format!("{name} takes {k} argument(s), not {n}")))
            }
        };
        let conversion = |target: Base| -> Option<(Ty, OnBad)> {
            let rest = name.strip_prefix("to")?;
            let bad = if rest.ends_with("OrNull") {
                OnBad::Null
            } else if rest.ends_with("OrZero") {
                OnBad::Zero
            } else {
                OnBad::Fail
            };
            Some((Ty::of(target), bad))
        };
        let int_target = |s: &str| -> Option<Base> {
            let s = s.trim_end_matches("OrNull").trim_end_matches("OrZero");
            Some(match s {
                "toInt8" => Base::Int { signed: true, bits: 8 },
                "toInt16" => Base::Int { signed: true, bits: 16 },
                "toInt32" => Base::Int { signed: true, bits: 32 },
                "toInt64" => Base::Int { signed: true, bits: 64 },
                "toUInt8" => Base::Int { signed: false, bits: 8 },
                "toUInt16" => Base::Int { signed: false, bits: 16 },
                "toUInt32" => Base::Int { signed: false, bits: 32 },
                "toUInt64" => Base::Int { signed: false, bits: 64 },
                "toFloat32" => Base::Float(32),
                "toFloat64" => Base::Float(64),
                "toDate" => Base::Date,
                "toDateTime" => Base::DateTime,
                _ => return None,
            })
        };
        if let Some(base) = int_target(&name) {
            want(1)?;
            let (ty, bad) = conversion(base).expect("a to* name");
            return self.convert(e, args.remove(0), ty, bad);
        }
        if let Some(rest) = name.strip_prefix("toDecimal") {
            let class = rest.trim_end_matches("OrNull").trim_end_matches("OrZero");
            let precision = match class {
                "32" => 9,
                "64" => 18,
                "128" => 38,
                _ => return Err(self.unknown(e, &name)),
            };
            want(2)?;
            let scale = const_int(&args[1])
                .and_then(|s| u8::try_from(s).ok())
                .filter(|s| *s <= precision)
                .ok_or_else(|| err(e, format!("{name}: the scale must be a constant from 0 to {precision}")))?;
            let (ty, bad) = conversion(Base::Decimal { precision, scale }).expect("a to* name");
            return self.convert(e, args.remove(0), ty, bad);
        }
        match lower.as_str() {
            "and" | "or" => {
                if n < 2 {
                    return Err(err(e, format!("{name} takes at least 2 arguments")));
                }
                let nodes = self.check_logical(e, args)?;
                Ok(if lower == "and" { Node::And(nodes) } else { Node::Or(nodes) })
            }
            "not" => {
                want(1)?;
                Ok(Node::Not(Box::new(self.check_logical(e, args)?.remove(0))))
            }
            "if" => {
                want(3)?;
                let other = args.pop().expect("3 args");
                let then = args.pop().expect("3 args");
                let cond = self.check_logical(e, vec![args.pop().expect("3 args")])?.remove(0);
                self.branches(e, vec![(cond, then)], other)
            }
            "multiif" => {
                if n < 3 || n % 2 == 0 {
                    return Err(err(e, "multiIf takes cond1, then1, ..., else (an odd number, at least 3)"));
                }
                let other = args.pop().expect("odd count");
                let mut pairs = Vec::new();
                let mut it = args.into_iter();
                while let (Some(c), Some(t)) = (it.next(), it.next()) {
                    pairs.push((self.check_logical(e, vec![c])?.remove(0), t));
                }
                self.branches(e, pairs, other)
            }
            "coalesce" | "ifnull" => {
                if lower == "ifnull" {
                    want(2)?;
                } else if n == 0 {
                    return Err(err(e, "coalesce takes at least 1 argument"));
                }
                let mut ty = args[0].ty();
                for a in &args[1..] {
                    ty = supertype(&ty, &a.ty()).map_err(|m| err(e, m))?;
                }
                // NULL only when every argument can be.
                ty.nullable = args.iter().all(|a| a.ty().nullable);
                let target = Ty { base: ty.base.clone(), nullable: true };
                let args = args.into_iter().map(|a| self.same(e, a, &target)).collect::<Result<_, _>>()?;
                Ok(Node::Coalesce(args, ty))
            }
            "isnull" | "isnotnull" => {
                want(1)?;
                Ok(Node::IsNull(Box::new(args.remove(0)), lower == "isnotnull"))
            }
            "lower" => self.string_fn(e, StrFn::Lower, args),
            "upper" => self.string_fn(e, StrFn::Upper, args),
            "trim" | "trimboth" => self.string_fn(e, StrFn::Trim, args),
            "trimleft" => self.string_fn(e, StrFn::TrimLeft, args),
            "trimright" => self.string_fn(e, StrFn::TrimRight, args),
            "concat" => self.string_fn(e, StrFn::Concat, args),
            "substring" | "substr" => self.string_fn(e, StrFn::Substring, args),
            "length" => self.string_fn(e, StrFn::Length, args),
            "replaceall" => self.string_fn(e, StrFn::ReplaceAll, args),
            "tostring" => {
                want(1)?;
                self.convert(e, args.remove(0), Ty::of(Base::String), OnBad::Fail)
            }
            "tostartofminute" | "tostartofhour" | "tostartofday" | "toyyyymmdd" => {
                want(1)?;
                let f = match lower.as_str() {
                    "tostartofminute" => TimeFn::StartOfMinute,
                    "tostartofhour" => TimeFn::StartOfHour,
                    "tostartofday" => TimeFn::StartOfDay,
                    _ => TimeFn::YyyyMmDd,
                };
                self.time_fn(e, f, args.remove(0))
            }
            "round" => {
                if n == 0 || n > 2 {
                    return Err(err(e, "round takes 1 or 2 arguments"));
                }
                let digits = if n == 2 {
                    const_int(&args[1])
                        .and_then(|d| i32::try_from(d).ok())
                        .ok_or_else(|| err(e, "round: the number of digits must be a constant integer"))?
                } else {
                    0
                };
                let x = args.remove(0);
                let ty = x.ty();
                if !ty.is_number() {
                    return Err(err(e, format!("round needs a number, not {ty}")));
                }
                Ok(Node::Round(Box::new(x), digits, ty))
            }
            "intdiv" => {
                want(2)?;
                let b = args.pop().expect("2 args");
                let a = args.pop().expect("2 args");
                if !a.ty().is_integer() || !b.ty().is_integer() {
                    return Err(err(e, "intDiv needs integers"));
                }
                self.arith(e, Arith::IntDiv, a, b)
            }
            "now" => {
                want(0)?;
                Ok(Node::Now)
            }
            _ => Err(self.unknown(e, &name)),
        }
    }

    pub(super) fn unknown(&self, e: &Expr, name: &str) -> ExprError {
        err(e, format!("unknown function {name}; the functions Penstock computes are: {}", FUNCTIONS.join(", ")))
    }

    pub(super) fn check_logical(&self, e: &Expr, args: Vec<Node>) -> Result<Vec<Node>, ExprError> {
        for a in &args {
            let t = a.ty();
            if !(t.is_integer() || matches!(t.base, Base::Nothing | Base::Float(_))) {
                return Err(err(e, format!("a condition must be a number (UInt8), not {t}")));
            }
        }
        Ok(args)
    }

    /// `if`/`multiIf`/`CASE`: every branch converted to the branches' supertype.
    pub(super) fn branches(&self, e: &Expr, pairs: Vec<(Node, Node)>, other: Node) -> Result<Node, ExprError> {
        let mut ty = other.ty();
        for (_, t) in &pairs {
            ty = supertype(&ty, &t.ty()).map_err(|m| err(e, m))?;
        }
        let pairs =
            pairs.into_iter().map(|(c, t)| Ok((c, self.same(e, t, &ty)?))).collect::<Result<Vec<_>, ExprError>>()?;
        let other = self.same(e, other, &ty)?;
        Ok(Node::If(pairs, Box::new(other), ty))
    }

    /// `n` converted to `ty` when its base differs (a lossless widening, by supertype).
    pub(super) fn same(&self, e: &Expr, n: Node, ty: &Ty) -> Result<Node, ExprError> {
        if n.ty().base == ty.base || matches!(n.ty().base, Base::Nothing) {
            Ok(n)
        } else {
            let nullable = n.ty().nullable;
            self.convert(e, n, Ty { base: ty.base.clone(), nullable }, OnBad::Fail)
        }
    }

    /// A conversion to `target` (its nullability: the argument's, or NULL on bad input
    /// for `OrNull`).
    pub(super) fn convert(&self, e: &Expr, a: Node, target: Ty, bad: OnBad) -> Result<Node, ExprError> {
        let from = a.ty();
        let ok = match (&from.base, &target.base) {
            (Base::Nothing, _) => true,
            (_, Base::String) => true,
            (Base::String, _) => true,
            (f, Base::Int { .. } | Base::Float(_) | Base::Decimal { .. } | Base::Bool) => {
                matches!(
                    f,
                    Base::Int { .. }
                        | Base::Bool
                        | Base::Float(_)
                        | Base::Decimal { .. }
                        | Base::Date
                        | Base::DateTime
                        | Base::Enum { .. }
                )
            }
            (f, Base::Date | Base::DateTime | Base::DateTime64(_)) => {
                matches!(f, Base::Int { .. } | Base::Date | Base::DateTime | Base::DateTime64(_))
            }
            _ => false,
        };
        if !ok {
            return Err(err(e, format!("cannot convert {} to {}", from.base, target.base)));
        }
        let nullable = from.nullable || bad == OnBad::Null;
        Ok(Node::Convert(Box::new(a), Ty { base: target.base, nullable }, bad))
    }

    pub(super) fn string_fn(&self, e: &Expr, f: StrFn, args: Vec<Node>) -> Result<Node, ExprError> {
        let n = args.len();
        let arity_ok = match f {
            StrFn::Concat => n >= 2,
            StrFn::Substring => n == 2 || n == 3,
            StrFn::ReplaceAll => n == 3,
            _ => n == 1,
        };
        if !arity_ok {
            return Err(err(e, format!("wrong number of arguments ({n}) for {f:?}")));
        }
        let nullable = args.iter().any(|a| a.ty().nullable);
        for (i, a) in args.iter().enumerate() {
            let t = a.ty();
            let want_string = match f {
                StrFn::Substring => i == 0,
                StrFn::Concat => false,
                _ => true,
            };
            if matches!(t.base, Base::Nothing) {
                continue;
            }
            if want_string && t.base != Base::String {
                return Err(err(e, format!("argument {} must be a String, not {t}", i + 1)));
            }
            if f == StrFn::Substring && i > 0 && !t.is_integer() {
                return Err(err(e, format!("argument {} of substring must be an integer, not {t}", i + 1)));
            }
        }
        // concat of non-strings: ClickHouse converts them to text.
        let args = if f == StrFn::Concat {
            args.into_iter()
                .map(|a| {
                    if a.ty().base == Base::String {
                        Ok(a)
                    } else {
                        self.convert(e, a, Ty::of(Base::String), OnBad::Fail)
                    }
                })
                .collect::<Result<_, _>>()?
        } else {
            args
        };
        let base = if f == StrFn::Length { Base::Int { signed: false, bits: 64 } } else { Base::String };
        Ok(Node::Str(f, args, Ty { base, nullable }))
    }

    pub(super) fn time_fn(&self, e: &Expr, f: TimeFn, a: Node) -> Result<Node, ExprError> {
        let t = a.ty();
        if !t.is_time() {
            return Err(err(e, format!("{f:?} needs a Date or DateTime, not {t}")));
        }
        let base = match f {
            TimeFn::YyyyMmDd => Base::Int { signed: false, bits: 32 },
            _ => Base::DateTime,
        };
        if f != TimeFn::YyyyMmDd && matches!(t.base, Base::Date) && f != TimeFn::StartOfDay {
            return Err(err(e, format!("{f:?} needs a DateTime, not Date")));
        }
        Ok(Node::Time(f, Box::new(a), Ty { base, nullable: t.nullable }))
    }

    pub(super) fn start_of_interval(&self, e: &Expr, f: &Function) -> Result<Node, ExprError> {
        let FunctionArguments::List(list) = &f.args else {
            return Err(err(e, "toStartOfInterval(time, INTERVAL n unit)"));
        };
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(t)), FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Interval(iv)))] =
            list.args.as_slice()
        else {
            return Err(err(
                e,
                "toStartOfInterval takes a time and an INTERVAL, e.g. toStartOfInterval(t, INTERVAL 5 MINUTE)",
            ));
        };
        let n = match self.node(&iv.value)? {
            ref c if const_int(c).is_some() => const_int(c).expect("checked"),
            _ => return Err(err(e, "the INTERVAL length must be a constant integer")),
        };
        let unit = match iv.leading_field {
            Some(DateTimeField::Second) => 1,
            Some(DateTimeField::Minute) => 60,
            Some(DateTimeField::Hour) => 3600,
            _ => return Err(err(e, "toStartOfInterval: Penstock computes SECOND, MINUTE and HOUR intervals")),
        };
        if n <= 0 {
            return Err(err(e, "the INTERVAL length must be positive"));
        }
        let a = self.node(t)?;
        if !matches!(a.ty().base, Base::DateTime) {
            return Err(err(e, format!("toStartOfInterval needs a DateTime, not {}", a.ty())));
        }
        let nullable = a.ty().nullable;
        Ok(Node::Time(TimeFn::StartOfInterval(n as i64 * unit), Box::new(a), Ty { base: Base::DateTime, nullable }))
    }
}
