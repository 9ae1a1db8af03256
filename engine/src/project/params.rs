//! Typed pipe parameters. A value is parsed into its declared type, checked against
//! `min`/`max`/`allowed`, and bound as a DataFusion placeholder (`$name`): never spliced
//! into SQL text.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::common::ScalarValue;

/// The types a parameter can be declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Int,
    Float,
    String,
    Bool,
    Date,
    Timestamp,
}

pub const TYPES: &[&str] = &["int", "float", "string", "bool", "date", "timestamp"];

impl ParamType {
    pub fn parse(name: &str) -> Option<ParamType> {
        Some(match name {
            "int" => ParamType::Int,
            "float" => ParamType::Float,
            "string" => ParamType::String,
            "bool" => ParamType::Bool,
            "date" => ParamType::Date,
            "timestamp" => ParamType::Timestamp,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::String => "string",
            ParamType::Bool => "bool",
            ParamType::Date => "date",
            ParamType::Timestamp => "timestamp",
        }
    }

    /// What a value of this type looks like, for error messages.
    pub fn expected(&self) -> &'static str {
        match self {
            ParamType::Int => "an integer",
            ParamType::Float => "a number",
            ParamType::String => "a string",
            ParamType::Bool => "true or false",
            ParamType::Date => "a date (YYYY-MM-DD)",
            ParamType::Timestamp => "a timestamp (YYYY-MM-DD[ HH:MM:SS[.ffffff]])",
        }
    }

    /// Parses a value given as text (command line, query string). Dates and timestamps
    /// must lie within the engine's range (see `DATE_RANGE`).
    pub fn parse_text(&self, text: &str) -> Result<ParamValue, String> {
        let value = self.parse_unchecked(text)?;
        check_in_range(&value).map_err(|why| format!("`{}` {why}", text.trim()))?;
        Ok(value)
    }

    fn parse_unchecked(&self, text: &str) -> Result<ParamValue, String> {
        let bad = || format!("`{text}` is not {}", self.expected());
        Ok(match self {
            ParamType::Int => ParamValue::Int(text.trim().parse().map_err(|_| bad())?),
            ParamType::Float => {
                let v: f64 = text.trim().parse().map_err(|_| bad())?;
                if !v.is_finite() {
                    return Err(bad());
                }
                ParamValue::Float(v)
            }
            ParamType::String => ParamValue::String(text.to_string()),
            ParamType::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => ParamValue::Bool(true),
                "false" | "0" | "no" => ParamValue::Bool(false),
                _ => return Err(bad()),
            },
            ParamType::Date => ParamValue::Date(
                NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| bad())?,
            ),
            ParamType::Timestamp => {
                ParamValue::Timestamp(parse_timestamp(text.trim()).ok_or_else(bad)?)
            }
        })
    }

    /// Converts a TOML value (a default, a bound, an allowed value) into this type.
    pub fn from_toml(&self, value: &toml::Value) -> Result<ParamValue, String> {
        let wrong = || format!("{} is not {}", describe_toml(value), self.expected());
        match (self, value) {
            (ParamType::Int, toml::Value::Integer(i)) => Ok(ParamValue::Int(*i)),
            // `nan` and `inf` are TOML floats, but no bound or default can be one.
            (ParamType::Float, toml::Value::Float(f)) if !f.is_finite() => {
                Err(format!("{} is not a finite number", describe_toml(value)))
            }
            (ParamType::Float, toml::Value::Float(f)) => Ok(ParamValue::Float(*f)),
            (ParamType::Float, toml::Value::Integer(i)) => Ok(ParamValue::Float(*i as f64)),
            (ParamType::String, toml::Value::String(s)) => Ok(ParamValue::String(s.clone())),
            (ParamType::Bool, toml::Value::Boolean(b)) => Ok(ParamValue::Bool(*b)),
            (ParamType::Date | ParamType::Timestamp, toml::Value::String(s)) => {
                self.parse_unchecked(s).map_err(|_| wrong()).and_then(|v| {
                    check_in_range(&v).map_err(|why| format!("{} {why}", describe_toml(value)))?;
                    Ok(v)
                })
            }
            (ParamType::Date | ParamType::Timestamp, toml::Value::Datetime(d)) => self
                .parse_unchecked(&d.to_string().replace('T', " "))
                .map_err(|_| wrong())
                .and_then(|v| {
                    check_in_range(&v).map_err(|why| format!("{} {why}", describe_toml(value)))?;
                    Ok(v)
                }),
            _ => Err(wrong()),
        }
    }
}

/// The dates a date or timestamp parameter may take: those a nanosecond timestamp can
/// hold (1677-09-21 00:12:43 to 2262-04-11 23:47:16 UTC; the whole days: `DATE_RANGE`). Sources'
/// timestamps are nanoseconds, and a value outside this range overflows when it is
/// compared with them: that is the caller's bad value (400, exit 2), not a failed run.
pub const DATE_RANGE: (&str, &str) = ("1677-09-22", "2262-04-11");

/// Refuses a date or timestamp a nanosecond timestamp cannot hold (other values pass).
fn check_in_range(value: &ParamValue) -> Result<(), String> {
    let at = match value {
        ParamValue::Date(d) => d.and_hms_opt(0, 0, 0),
        ParamValue::Timestamp(t) => Some(*t),
        _ => return Ok(()),
    };
    if at.and_then(|t| t.and_utc().timestamp_nanos_opt()).is_none() {
        return Err(format!(
            "is outside the range of dates the engine can compare, {} to {}",
            DATE_RANGE.0, DATE_RANGE.1
        ));
    }
    Ok(())
}

fn describe_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    const FORMATS: &[&str] = &[
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    let text = text.strip_suffix('Z').unwrap_or(text);
    for f in FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed, typed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    String(String),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    /// An optional parameter that was not given and has no default: a typed NULL, so
    /// SQL can test `$p IS NULL`.
    Null(ParamType),
}

impl ParamValue {
    /// The DataFusion literal the placeholder is bound to.
    pub fn to_scalar(&self) -> ScalarValue {
        match self {
            ParamValue::Int(i) => ScalarValue::Int64(Some(*i)),
            ParamValue::Float(f) => ScalarValue::Float64(Some(*f)),
            ParamValue::String(s) => ScalarValue::Utf8(Some(s.clone())),
            ParamValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
            ParamValue::Date(d) => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
                ScalarValue::Date32(Some((*d - epoch).num_days() as i32))
            }
            ParamValue::Timestamp(t) => {
                ScalarValue::TimestampMicrosecond(Some(t.and_utc().timestamp_micros()), None)
            }
            ParamValue::Null(ty) => match ty {
                ParamType::Int => ScalarValue::Int64(None),
                ParamType::Float => ScalarValue::Float64(None),
                ParamType::String => ScalarValue::Utf8(None),
                ParamType::Bool => ScalarValue::Boolean(None),
                ParamType::Date => ScalarValue::Date32(None),
                ParamType::Timestamp => ScalarValue::TimestampMicrosecond(None, None),
            },
        }
    }

    /// Orders two values of the same type; `None` for mismatched types or NaN.
    fn compare(&self, other: &ParamValue) -> Option<std::cmp::Ordering> {
        use ParamValue::*;
        match (self, other) {
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (String(a), String(b)) => Some(a.cmp(b)),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::String(s) => write!(f, "{s:?}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Date(d) => write!(f, "{d}"),
            ParamValue::Timestamp(t) => write!(f, "{t}"),
            ParamValue::Null(_) => write!(f, "null"),
        }
    }
}

/// A declared parameter of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub description: Option<String>,
    pub default: Option<ParamValue>,
    pub required: bool,
    pub min: Option<ParamValue>,
    pub max: Option<ParamValue>,
    pub allowed: Vec<ParamValue>,
}

impl Param {
    /// Checks a typed value against `min`, `max` and `allowed`. A float that is not a
    /// number compares with no bound, so it is refused where bounds are declared.
    pub fn check(&self, value: &ParamValue) -> Result<(), String> {
        if let ParamValue::Float(f) = value
            && !f.is_finite()
            && (self.min.is_some() || self.max.is_some())
        {
            return Err(format!("{value} is not a number within the bounds"));
        }
        if let Some(min) = &self.min
            && value.compare(min) == Some(std::cmp::Ordering::Less)
        {
            return Err(format!("{value} is below the minimum {min}"));
        }
        if let Some(max) = &self.max
            && value.compare(max) == Some(std::cmp::Ordering::Greater)
        {
            return Err(format!("{value} is above the maximum {max}"));
        }
        if !self.allowed.is_empty() && !self.allowed.contains(value) {
            let list: Vec<String> = self.allowed.iter().map(|v| v.to_string()).collect();
            return Err(format!(
                "{value} is not one of the allowed values: {}",
                list.join(", ")
            ));
        }
        Ok(())
    }
}

/// Resolves the values given for a pipe's parameters (as text, e.g. `--param k=v` or a
/// query string) against its declarations: unknown names, ill-typed or out-of-range
/// values and missing required parameters are errors naming the parameter.
/// Returns a value for every declared parameter: given, default, or a typed NULL for an
/// optional parameter without a default.
pub fn resolve(
    declared: &BTreeMap<String, Param>,
    given: &[(String, String)],
) -> Result<HashMap<String, ParamValue>, (String, String)> {
    let mut values = HashMap::new();
    for (name, text) in given {
        let param = declared.get(name).ok_or_else(|| {
            let known: Vec<&str> = declared.keys().map(|s| s.as_str()).collect();
            (
                name.clone(),
                format!(
                    "unknown parameter (declared: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        if values.contains_key(name) {
            return Err((name.clone(), "given more than once".to_string()));
        }
        let value = param
            .ty
            .parse_text(text)
            .map_err(|e| (name.clone(), format!("{e} (expected type {})", param.ty)))?;
        param.check(&value).map_err(|e| (name.clone(), e))?;
        values.insert(name.clone(), value);
    }
    for (name, param) in declared {
        if values.contains_key(name) {
            continue;
        }
        match &param.default {
            Some(d) => {
                values.insert(name.clone(), d.clone());
            }
            None if param.required => {
                return Err((
                    name.clone(),
                    format!("is required (type {}): pass --param {name}=VALUE", param.ty),
                ));
            }
            None => {
                values.insert(name.clone(), ParamValue::Null(param.ty));
            }
        }
    }
    Ok(values)
}

/// A value of the right type used to plan a pipe when no value is given (validation):
/// its default, its minimum, its first allowed value, or a neutral value of its type.
pub fn planning_value(param: &Param) -> ParamValue {
    if let Some(v) = param
        .default
        .as_ref()
        .or(param.min.as_ref())
        .or(param.allowed.first())
    {
        return v.clone();
    }
    match param.ty {
        ParamType::Int => ParamValue::Int(0),
        ParamType::Float => ParamValue::Float(0.0),
        ParamType::String => ParamValue::String(String::new()),
        ParamType::Bool => ParamValue::Bool(false),
        ParamType::Date => ParamValue::Date(NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")),
        ParamType::Timestamp => ParamValue::Timestamp(
            NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("timestamp"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(ty: ParamType) -> Param {
        Param {
            name: "p".into(),
            ty,
            description: None,
            default: None,
            required: false,
            min: None,
            max: None,
            allowed: vec![],
        }
    }

    #[test]
    fn parses_each_type() {
        assert_eq!(
            ParamType::Int.parse_text("42").unwrap(),
            ParamValue::Int(42)
        );
        assert!(ParamType::Int.parse_text("4x").is_err());
        assert_eq!(
            ParamType::Bool.parse_text("TRUE").unwrap(),
            ParamValue::Bool(true)
        );
        assert!(ParamType::Date.parse_text("2024-13-01").is_err());
        assert!(
            ParamType::Timestamp
                .parse_text("2024-01-01T10:00:00")
                .is_ok()
        );
        assert!(ParamType::Float.parse_text("inf").is_err());
        assert!(ParamType::Float.parse_text("nan").is_err());
    }

    #[test]
    fn dates_outside_the_engines_range_are_refused() {
        for text in [
            "+10000-01-01",
            "1600-01-01",
            "2262-04-12",
            "+10000-01-01 00:00:00",
        ] {
            for ty in [ParamType::Date, ParamType::Timestamp] {
                if ty == ParamType::Date && text.contains(' ') {
                    continue;
                }
                let err = ty.parse_text(text).unwrap_err();
                assert!(err.contains("outside the range"), "{ty} {text}: {err}");
            }
        }
        assert!(ParamType::Date.parse_text("2262-04-11").is_ok());
        assert!(
            ParamType::Timestamp
                .parse_text("1677-09-22 00:00:00")
                .is_ok()
        );
        let far = toml::Value::String("9999-01-01".into());
        assert!(
            ParamType::Date
                .from_toml(&far)
                .unwrap_err()
                .contains("outside the range")
        );
    }

    #[test]
    fn nan_never_passes_bounds() {
        let mut p = param(ParamType::Float);
        p.min = Some(ParamValue::Float(0.0));
        assert!(p.check(&ParamValue::Float(f64::NAN)).is_err());
        assert!(p.check(&ParamValue::Float(f64::INFINITY)).is_err());
        assert!(
            ParamType::Float
                .from_toml(&toml::Value::Float(f64::NAN))
                .is_err()
        );
        assert!(ParamType::Float.from_toml(&toml::Value::Float(1.5)).is_ok());
    }

    #[test]
    fn checks_bounds_and_allowed() {
        let mut p = param(ParamType::Int);
        p.min = Some(ParamValue::Int(1));
        p.max = Some(ParamValue::Int(10));
        assert!(p.check(&ParamValue::Int(0)).is_err());
        assert!(p.check(&ParamValue::Int(11)).is_err());
        assert!(p.check(&ParamValue::Int(5)).is_ok());
        let mut s = param(ParamType::String);
        s.allowed = vec![ParamValue::String("won".into())];
        assert!(s.check(&ParamValue::String("lost".into())).is_err());
    }

    #[test]
    fn scalar_of_date_is_days_since_epoch() {
        let d = ParamType::Date.parse_text("1970-01-11").unwrap();
        assert_eq!(d.to_scalar(), ScalarValue::Date32(Some(10)));
    }
}
