//! Expressions against ClickHouse itself: every expression below is computed by
//! Penstock over a block and by ClickHouse over the same rows — ClickHouse 26.9's engine
//! in-process (chdb) for all of them, the 18.16 server for those it has — and the
//! type, every row's value (as `toString` writes it) and which rows fail must agree.
//!
//! Rows are given once as JSON; Penstock's JSON decoder fills the block, ClickHouse
//! reads the same lines with `JSONEachRow`. ClickHouse evaluates each row alone
//! (`WHERE id = k`) so a failing row is told apart from the others.

use penstock_codec::{ColumnType, DecodeLimits, FieldSpec, JsonDecoder, MessageMeta};
use penstock_stages::expr::eval::RowErrors;
use penstock_stages::expr::vector::Data;
use penstock_stages::expr::Expr;
use penstock_testkit::Chdb;

/// Columns of the test table (the 18.16 table leaves out what that server lacks).
const COLUMNS: &[(&str, &str, bool)] = &[
    ("id", "UInt32", true),
    ("i8", "Int8", true),
    ("u8", "UInt8", true),
    ("i32", "Int32", true),
    ("u64", "UInt64", true),
    ("i64", "Int64", true),
    ("f64", "Float64", true),
    ("f32", "Float32", true),
    ("d", "Decimal(12, 2)", true),
    ("s", "String", true),
    ("ns", "Nullable(String)", true),
    ("ni", "Nullable(Int32)", true),
    ("dt", "DateTime('UTC')", true),
    ("d0", "Date", true),
    ("e", "Enum8('purchase' = 1, 'refund' = 2, 'view' = 3)", true),
    ("dt3", "DateTime64(3, 'UTC')", false),
    ("b", "Bool", false),
];

const ROWS: &[&str] = &[
    r#"{"id":1,"i8":-128,"u8":255,"i32":-7,"u64":18446744073709551615,"i64":-9223372036854775808,"f64":0.1,"f32":1.5,"d":12.34,"s":"Hello World","ns":null,"ni":null,"dt":"2026-11-30 23:59:59","d0":"2026-02-28","e":"purchase","dt3":"2026-11-30 23:59:59.123","b":true}"#,
    r#"{"id":2,"i8":127,"u8":0,"i32":2147483647,"u64":0,"i64":9223372036854775807,"f64":-2.5,"f32":-0.25,"d":-0.05,"s":"  padded  ","ns":"42","ni":0,"dt":"1970-01-01 00:00:00","d0":"1970-01-01","e":"refund","dt3":"1970-01-01 00:00:00.000","b":false}"#,
    r#"{"id":3,"i8":0,"u8":7,"i32":0,"u64":300,"i64":-1,"f64":1e21,"f32":3.0,"d":0,"s":"","ns":"abc","ni":-5,"dt":"2000-02-29 12:30:45","d0":"2000-02-29","e":"view","dt3":"2000-02-29 12:30:45.999","b":true}"#,
    r#"{"id":4,"i8":-3,"u8":200,"i32":-2147483648,"u64":4294967296,"i64":1000000,"f64":123.456,"f32":1e-7,"d":9999999999.99,"s":"12.5","ns":"-3","ni":2147483647,"dt":"2026-06-15 06:07:08","d0":"2100-01-01","e":"purchase","dt3":"2026-06-15 06:07:08.5","b":false}"#,
    r#"{"id":5,"i8":5,"u8":5,"i32":5,"u64":5,"i64":5,"f64":2.5,"f32":0.1,"d":2.50,"s":"café_100%","ns":"","ni":7,"dt":"2026-12-01 00:00:01","d0":"2026-12-01","e":"view","dt3":"2026-12-01 00:00:01.001","b":true}"#,
    r#"{"id":6,"i8":-1,"u8":1,"i32":-100,"u64":1,"i64":-100,"f64":-0.0000001,"f32":-1.5,"d":-12.34,"s":"2026-11-21 10:00:00","ns":"2026-11-21","ni":-1,"dt":"2026-11-21 10:00:00","d0":"2026-11-21","e":"refund","dt3":"2026-11-21 10:00:00.010","b":false}"#,
];

/// Expressions computed by both, and whether the 18.16 server is compared too. Penstock
/// follows 26.9 where the two servers differ; `false` marks what 18.16 lacks (ILIKE,
/// trim*, toStartOfInterval, the OrNull/OrZero decimal conversions, Decimal with Float,
/// toStartOfDay of a Date, Bool, DateTime64) or computes differently: the result type
/// of `%`; `OR`, `IN` and `if` with NULL; `round` of a float (18.16 rounds halves away
/// from zero, 26.9 to even); integers wrapping in `round(x, -1)`; dates past 2038
/// compared with times; bad text from a Nullable(String) (18.16 throws, 26.9 gives
/// NULL); and its own bugs (`toInt32OrNull('2026-11-21')` is -20261121 there).
const EXPRESSIONS: &[(&str, bool)] = &[
    // arithmetic and its types
    ("u8 + u8", true),
    ("i8 + u8", true),
    ("u8 - u8", true),
    ("i32 * i32", true),
    ("u64 + u64", true),
    ("i64 * 2", true),
    ("u64 * u64", true),
    ("i32 / 2", true),
    ("f64 / 0", true),
    ("i32 % 3", false),
    ("u64 % 7", true),
    ("i8 % u8", false),
    ("intDiv(i32, 3)", true),
    ("-i8", true),
    ("-u8", true),
    ("f32 * 2", true),
    ("f64 + i32", true),
    ("d * 100", true),
    ("d + d", true),
    ("d - 1", true),
    ("d / 4", true),
    ("d * 1.5", false),
    ("ni + 1", true),
    ("ni * NULL", true),
    ("intDiv(i32, u8)", true),
    ("i32 % u8", false),
    // comparisons and logic
    ("u8 > 100", true),
    ("i8 < u8", true),
    ("i64 < u64", true),
    ("f64 >= 2.5", true),
    ("d > 2.5", false),
    ("d = 12.34", false),
    ("s = 'Hello World'", true),
    ("s < 'a'", true),
    ("s != ''", true),
    ("ns = '42'", true),
    ("ni > 0", true),
    ("e = 'view'", true),
    ("e != 'purchase'", true),
    ("dt > '2026-01-01 00:00:00'", true),
    ("d0 = '2026-02-28'", true),
    ("d0 < dt", false),
    ("u8 > 100 AND i8 < 0", true),
    ("u8 > 100 OR i8 < 0", true),
    ("ni > 0 AND u8 > 0", true),
    ("ni > 0 OR u8 > 0", false),
    ("NOT (u8 > 100)", true),
    ("NOT ni", true),
    ("u8 BETWEEN 5 AND 200", true),
    ("u8 IN (0, 7, 255)", true),
    ("u8 NOT IN (0, 7)", true),
    ("s IN ('', 'Hello World')", true),
    ("ni IN (0, 7)", false),
    ("ni NOT IN (0, 7)", false),
    ("e IN ('view', 'refund')", true),
    ("s LIKE 'Hello%'", true),
    ("s LIKE '%d'", true),
    ("s LIKE 'caf__100\\%'", true),
    ("s NOT LIKE '%o%'", true),
    ("s ILIKE 'hello%'", false),
    ("ns LIKE '%'", true),
    ("ns IS NULL", true),
    ("ns IS NOT NULL", true),
    ("isNull(ni)", true),
    ("isNotNull(ni)", true),
    // conditionals
    ("if(u8 > 100, 'big', 'small')", true),
    ("if(u8 > 100, u8, i8)", true),
    ("if(ni > 0, ni, 0)", false),
    ("multiIf(u8 > 200, 'a', u8 > 5, 'b', 'c')", true),
    ("CASE WHEN u8 > 200 THEN 1 WHEN u8 > 5 THEN 2 ELSE 3 END", true),
    ("coalesce(ns, s)", true),
    ("coalesce(ni, i32)", true),
    ("ifNull(ns, 'none')", true),
    ("ifNull(ni, -1)", true),
    ("if(u8 = 0, 0, intDiv(100, u8))", false),
    // strings
    ("lower(s)", true),
    ("upper(s)", true),
    ("trim(s)", false),
    ("trimLeft(s)", false),
    ("trimRight(s)", false),
    ("concat(s, '-', ns)", true),
    ("concat(s, '!')", true),
    ("substring(s, 1, 5)", true),
    ("substring(s, 3)", true),
    ("substring(s, -3)", true),
    ("substring(s, 2, 100)", true),
    ("length(s)", true),
    ("length(ns)", true),
    ("replaceAll(s, 'l', 'L')", true),
    ("replaceAll(s, ' ', '')", true),
    // conversions
    ("toString(u64)", true),
    ("toString(i8)", true),
    ("toString(f64)", true),
    ("toString(f32)", true),
    ("toString(d)", true),
    ("toString(dt)", true),
    ("toString(d0)", true),
    ("toString(e)", true),
    ("toInt8(i32)", true),
    ("toUInt8(u64)", true),
    ("toUInt32(i8)", true),
    ("toInt64(f64)", true),
    ("toInt32(d)", true),
    ("toUInt16(d0)", true),
    ("toUInt32(dt)", true),
    ("toInt32(s)", true),
    ("toInt32OrNull(s)", true),
    ("toInt32OrZero(s)", true),
    ("toInt32OrNull(ns)", false),
    ("toUInt8OrNull(ns)", true),
    ("toFloat64(s)", true),
    ("toFloat64OrNull(s)", true),
    ("toFloat64OrZero(ns)", true),
    ("toFloat32(f64)", true),
    ("toFloat64(d)", true),
    ("toDecimal32(u8, 2)", true),
    ("toDecimal64(f64, 3)", false),
    ("toDecimal64(d, 1)", true),
    ("toDecimal32OrNull(s, 2)", false),
    ("toDecimal64OrZero(ns, 2)", false),
    ("toDate(dt)", true),
    ("toDate(s)", true),
    ("toDate(ns)", false),
    ("toDateTime(ns)", false),
    ("toDate(u64)", false),
    ("toDateTime(d0)", true),
    ("CAST(u8 AS Int8)", true),
    ("CAST(s AS String)", true),
    ("toUInt64(round(d * 100))", true),
    // time
    ("toStartOfMinute(dt)", true),
    ("toStartOfHour(dt)", true),
    ("toStartOfDay(dt)", true),
    ("toStartOfDay(d0)", false),
    ("toYYYYMMDD(dt)", true),
    ("toYYYYMMDD(d0)", true),
    ("toStartOfInterval(dt, INTERVAL 15 MINUTE)", false),
    ("toStartOfInterval(dt, INTERVAL 5 HOUR)", false),
    ("toStartOfInterval(dt, INTERVAL 30 SECOND)", false),
    // rounding
    ("round(f64)", false),
    ("round(f64, 1)", true),
    ("round(f32)", true),
    ("round(d)", true),
    ("round(d, 1)", true),
    ("round(i32, -1)", false),
    // newer types
    ("toString(dt3)", false),
    ("dt3 > dt", false),
    ("toStartOfMinute(dt3)", false),
    ("toDate(dt3)", false),
    ("b AND u8 > 0", false),
    ("toString(b)", false),
    ("if(b, 1, 0)", false),
];

/// Normalised type name: times in UTC whether or not named so.
fn norm_type(t: &str) -> String {
    t.trim().replace("('UTC')", "").replace(", 'UTC'", "")
}

/// One cell of a result: a value's text (`\N` for NULL), or that the row failed.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Value(String),
    Failed,
}

/// What Penstock computes: the type, and per row its value or failure; `Err` when
/// the expression is refused.
fn penstock(expr: &str, with_new_types: bool) -> Result<(String, Vec<Cell>), String> {
    let cols: Vec<(&str, &str)> = COLUMNS.iter().filter(|c| c.2 || with_new_types).map(|(n, t, _)| (*n, *t)).collect();
    let fields: Vec<FieldSpec> =
        cols.iter().map(|(n, t)| FieldSpec::from_key(*n, ColumnType::parse(t).unwrap())).collect();
    let mut decoder = JsonDecoder::new(fields, DecodeLimits::default()).unwrap();
    let mut block = decoder.new_block();
    let meta = MessageMeta::outside_kafka();
    for r in ROWS {
        decoder.decode(r.as_bytes(), &meta, &mut block).unwrap_or_else(|e| panic!("row {r}: {e:?}"));
    }
    let schema: Vec<(String, ColumnType)> =
        cols.iter().map(|(n, t)| (n.to_string(), ColumnType::parse(t).unwrap())).collect();
    let typed = Expr::compile(expr, &schema).map_err(|e| e.to_string())?;
    let text = Expr::compile(&format!("toString({expr})"), &schema).map_err(|e| e.to_string())?;
    let mut errors = RowErrors::default();
    let v = text.eval(&block, block.rows(), 0, &mut errors);
    let cells = (0..block.rows())
        .map(|i| {
            if errors.rows.iter().any(|(r, _)| *r == i) {
                Cell::Failed
            } else if v.is_null(i) {
                Cell::Value("\\N".into())
            } else {
                assert!(matches!(v.data, Data::Str(_)));
                Cell::Value(String::from_utf8_lossy(v.bytes(i)).into_owned())
            }
        })
        .collect();
    Ok((norm_type(&typed.ty().to_string()), cells))
}

fn create_sql(with_new_types: bool) -> String {
    let cols: Vec<String> =
        COLUMNS.iter().filter(|c| c.2 || with_new_types).map(|(n, t, _)| format!("`{n}` {t}")).collect();
    format!("CREATE TABLE t ({}) ENGINE = Memory", cols.join(", "))
}

/// The rows without the columns an older table lacks.
fn rows_for(with_new_types: bool) -> String {
    ROWS.iter()
        .map(|r| {
            if with_new_types {
                return r.to_string();
            }
            let mut r = r.to_string();
            for (n, _, old) in COLUMNS {
                if !old {
                    if let Some(p) = r.find(&format!(",\"{n}\":")) {
                        let end = r[p + 1..].find([',', '}']).map_or(r.len() - 1, |e| p + 1 + e);
                        r.replace_range(p..end, "");
                    }
                }
            }
            r
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Per-expression result of ClickHouse: (type, cells), or the analysis error.
type Oracle = Result<(String, Vec<Cell>), String>;

fn compare(engine: &str, exprs: &[&str], oracle: impl Fn(&str) -> Oracle, with_new_types: bool) {
    let mut bad = Vec::new();
    for e in exprs {
        let ours = penstock(e, with_new_types);
        let theirs = oracle(e);
        match (&ours, &theirs) {
            (Ok(o), Ok(t)) if o == t => {}
            // Every row failed: ClickHouse gives no type to compare.
            (Ok(o), Ok(t)) if t.0.is_empty() && o.1 == t.1 => {}
            (Err(_), Err(_)) => {}
            _ => bad.push(format!("`{e}`:\n    Penstock: {ours:?}\n    {engine}: {theirs:?}")),
        }
    }
    assert!(bad.is_empty(), "{} of {} expressions differ from {engine}:\n{}", bad.len(), exprs.len(), bad.join("\n"));
}

/// Splits ClickHouse's per-row answers into the type and a cell.
fn cell(answer: &Result<String, String>) -> (Option<String>, Cell) {
    match answer {
        Err(_) => (None, Cell::Failed),
        Ok(text) => {
            let line = text.trim_end_matches('\n');
            match line.split_once('\t') {
                Some((ty, v)) => (Some(norm_type(ty)), Cell::Value(v.to_string())),
                None => (None, Cell::Value(line.to_string())),
            }
        }
    }
}

fn oracle_from(answers: Vec<Result<String, String>>) -> Oracle {
    let mut ty = None;
    let mut cells = Vec::new();
    for a in &answers {
        let (t, c) = cell(a);
        if t.is_some() {
            ty = t;
        }
        cells.push(c);
    }
    if cells.iter().all(|c| *c == Cell::Failed) {
        // Refused for every row alike: an analysis error (or every row fails; Penstock
        // must then fail every row too, which `penstock` reports as Failed cells).
        return match &answers[0] {
            Err(e)
                if e.contains("ILLEGAL_TYPE")
                    || e.contains("UNKNOWN_FUNCTION")
                    || e.contains("NO_COMMON_TYPE")
                    || e.contains("Code: 43")
                    || e.contains("Code: 46")
                    || e.contains("Code: 386") =>
            {
                Err(e.lines().next().unwrap_or_default().to_string())
            }
            _ => Ok((ty.unwrap_or_default(), cells)),
        };
    }
    Ok((ty.unwrap_or_default(), cells))
}

fn queries(e: &str) -> Vec<String> {
    (1..=ROWS.len())
        .map(|id| format!("SELECT toTypeName({e}), toString({e}) FROM t WHERE id = {id} FORMAT TSVRaw"))
        .collect()
}

/// 18.16 writes the same values differently, and only that is normalised here: NULL
/// as `ᴺᵁᴸᴸ` in its raw TSV, day 0 as `0000-00-00`, decimals with every digit of their
/// scale (`2.50`; 26.9 writes `2.5`, which Penstock follows).
fn old_server_text(answer: &str) -> String {
    let line = answer.trim_end_matches('\n').replace("ᴺᵁᴸᴸ", "\\N").replace("0000-00-00", "1970-01-01");
    let Some((ty, v)) = line.split_once('\t') else { return line };
    let decimal_digits = v.split_once('.').is_some_and(|(i, f)| {
        i.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) && f.chars().all(|c| c.is_ascii_digit())
    });
    let v = if decimal_digits { v.trim_end_matches('0').trim_end_matches('.').to_string() } else { v.to_string() };
    format!("{ty}\t{v}")
}

#[test]
fn expressions_agree_with_clickhouse_26_9() {
    let chdb = Chdb::new().expect("chdb session");
    // One chdb process for the table (Memory) and every query.
    let all: Vec<&str> = EXPRESSIONS.iter().map(|(e, _)| *e).collect();
    let mut statements = vec![create_sql(true), format!("INSERT INTO t FORMAT JSONEachRow {}", rows_for(true))];
    statements.extend(all.iter().flat_map(|e| queries(e)));
    let mut answers = chdb.run(&statements).expect("chdb");
    for r in answers.drain(..2) {
        r.expect("setup");
    }
    let per = ROWS.len();
    let lookup = |e: &str| {
        let i = all.iter().position(|x| *x == e).expect("listed");
        oracle_from(answers[i * per..(i + 1) * per].to_vec())
    };
    compare("ClickHouse 26.9 (chdb)", &all, lookup, true);
}

#[test]
fn expressions_agree_with_the_clickhouse_18_16_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = penstock_testkit::ClickHouseServer::start_in(dir.path()).expect("ClickHouse");
    server.query("CREATE DATABASE conf");
    let create = create_sql(false).replace("CREATE TABLE t", "CREATE TABLE conf.t");
    server.query(&create);
    server.query(&format!("INSERT INTO conf.t FORMAT JSONEachRow\n{}", rows_for(false)));
    let old: Vec<&str> = EXPRESSIONS.iter().filter(|(_, old)| *old).map(|(e, _)| *e).collect();
    let lookup = |e: &str| {
        let answers = queries(e)
            .iter()
            .map(|q| {
                let q = q.replace("FROM t ", "FROM conf.t ").replace("TSVRaw", "TabSeparatedRaw");
                server.try_query(&q).map(|a| old_server_text(&a))
            })
            .collect();
        oracle_from(answers)
    };
    compare("ClickHouse 18.16", &old, lookup, false);
}
