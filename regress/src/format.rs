//! Sample files: the documented JSON format and plain CSV.
//!
//! JSON (`chronicle bench --out FILE` writes it):
//! ```json
//! {"format": "chronicle-samples/1",
//!  "meta": {"created_at": "...", "host": "...", "command": "..."},
//!  "samples": [{"scenario": "hook.PreToolUse.Bash", "value_ns": 1834000, "iteration": 0}, ...]}
//! ```
//! CSV: header `scenario,value_ns` with an optional third column `iteration`. Rows with the same
//! scenario and iteration in baseline and candidate were measured adjacently and are paired.
//! The scenario `calibration` is reserved for the reference workload measured in the same run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Csv { line: usize, message: String },
    #[error("not a chronicle sample file: {0}")]
    Json(String),
    #[error("no samples")]
    Empty,
}

/// Samples by scenario, in the order scenarios first appear.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    #[serde(default)]
    pub meta: BTreeMap<String, serde_json::Value>,
    order: Vec<String>,
    values: BTreeMap<String, Vec<(f64, Option<u64>)>>,
}

#[derive(Serialize, Deserialize)]
struct JsonSample {
    scenario: String,
    value_ns: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iteration: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct JsonFile {
    format: String,
    #[serde(default)]
    meta: BTreeMap<String, serde_json::Value>,
    samples: Vec<JsonSample>,
}

pub const FORMAT: &str = "chronicle-samples/1";

impl SampleSet {
    pub fn push(&mut self, scenario: &str, value_ns: f64, iteration: Option<u64>) {
        if !self.values.contains_key(scenario) {
            self.order.push(scenario.to_owned());
        }
        self.values.entry(scenario.to_owned()).or_default().push((value_ns, iteration));
    }

    /// Samples without iterations (for tests and synthetic data).
    pub fn unpaired(data: &[(&str, Vec<f64>)]) -> SampleSet {
        let mut s = SampleSet::default();
        for (name, v) in data {
            for x in v {
                s.push(name, *x, None);
            }
        }
        s
    }

    /// Only the scenarios for which `keep` is true (iterations kept).
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> SampleSet {
        let mut out = SampleSet { meta: self.meta.clone(), ..SampleSet::default() };
        for name in self.order.iter().filter(|n| keep(n)) {
            for (v, i) in &self.values[name] {
                out.push(name, *v, *i);
            }
        }
        out
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    pub fn values(&self, scenario: &str) -> Option<Vec<f64>> {
        self.values.get(scenario).map(|v| v.iter().map(|(x, _)| *x).collect())
    }

    pub fn len(&self) -> usize {
        self.values.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (baseline, candidate) values of `scenario` measured in the same iteration.
    pub fn paired_with(&self, other: &SampleSet, scenario: &str) -> Vec<(f64, f64)> {
        let (Some(a), Some(b)) = (self.values.get(scenario), other.values.get(scenario)) else { return Vec::new() };
        let by_iter: BTreeMap<u64, f64> = b.iter().filter_map(|(x, i)| i.map(|i| (i, *x))).collect();
        a.iter().filter_map(|(x, i)| i.and_then(|i| by_iter.get(&i)).map(|y| (*x, *y))).filter(|(x, y)| *x > 0.0 && *y > 0.0).collect()
    }

    /// Parses JSON (first non-blank character `{`) or CSV.
    pub fn parse(text: &str) -> Result<SampleSet, ParseError> {
        let set = if text.trim_start().starts_with('{') { Self::parse_json(text)? } else { Self::parse_csv(text)? };
        if set.is_empty() {
            return Err(ParseError::Empty);
        }
        Ok(set)
    }

    fn parse_json(text: &str) -> Result<SampleSet, ParseError> {
        let f: JsonFile = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
        if f.format != FORMAT {
            return Err(ParseError::Json(format!("format {:?}, expected {FORMAT:?}", f.format)));
        }
        let mut s = SampleSet { meta: f.meta, ..SampleSet::default() };
        for x in f.samples {
            s.push(&x.scenario, x.value_ns, x.iteration);
        }
        Ok(s)
    }

    fn parse_csv(text: &str) -> Result<SampleSet, ParseError> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or(ParseError::Empty)?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols.len() < 2 || cols[0] != "scenario" || cols[1] != "value_ns" || (cols.len() == 3 && cols[2] != "iteration") || cols.len() > 3
        {
            return Err(ParseError::Csv { line: 1, message: "header must be `scenario,value_ns` or `scenario,value_ns,iteration`".into() });
        }
        let mut s = SampleSet::default();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != cols.len() {
                return Err(ParseError::Csv { line: i + 1, message: format!("expected {} fields", cols.len()) });
            }
            let v: f64 =
                f[1].parse().map_err(|_| ParseError::Csv { line: i + 1, message: format!("value_ns {:?} is not a number", f[1]) })?;
            if !v.is_finite() || v < 0.0 {
                return Err(ParseError::Csv { line: i + 1, message: "value_ns must be a non-negative number".into() });
            }
            let it = match f.get(2) {
                Some(x) => {
                    Some(x.parse().map_err(|_| ParseError::Csv { line: i + 1, message: format!("iteration {x:?} is not an integer") })?)
                }
                None => None,
            };
            s.push(f[0], v, it);
        }
        Ok(s)
    }

    pub fn to_json(&self) -> String {
        let mut samples = Vec::with_capacity(self.len());
        for name in &self.order {
            for (v, i) in &self.values[name] {
                samples.push(JsonSample { scenario: name.clone(), value_ns: *v, iteration: *i });
            }
        }
        serde_json::to_string_pretty(&JsonFile { format: FORMAT.into(), meta: self.meta.clone(), samples }).unwrap_or_default()
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::from("scenario,value_ns,iteration\n");
        for name in &self.order {
            for (v, i) in &self.values[name] {
                out.push_str(&format!("{name},{v},{}\n", i.map(|i| i.to_string()).unwrap_or_default()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_round_trip_and_pair_by_iteration() {
        let csv = "scenario,value_ns,iteration\nhook,100,0\nhook,110,1\ncalibration,50,0\n";
        let s = SampleSet::parse(csv).unwrap();
        assert_eq!(s.values("hook"), Some(vec![100.0, 110.0]));
        let back = SampleSet::parse(&s.to_json()).unwrap();
        assert_eq!(back.values("calibration"), Some(vec![50.0]));
        let other = SampleSet::parse("scenario,value_ns,iteration\nhook,120,1\nhook,130,7\n").unwrap();
        assert_eq!(s.paired_with(&other, "hook"), vec![(110.0, 120.0)]);
        assert!(SampleSet::parse("scenario,value_ns\nx,5\n").unwrap().paired_with(&s, "x").is_empty());
    }

    #[test]
    fn bad_input_names_the_line() {
        assert_eq!(
            SampleSet::parse("scenario,value_ns\nx,abc\n"),
            Err(ParseError::Csv { line: 2, message: "value_ns \"abc\" is not a number".into() })
        );
        assert!(matches!(SampleSet::parse("a,b\n"), Err(ParseError::Csv { line: 1, .. })));
        assert_eq!(SampleSet::parse("scenario,value_ns\n"), Err(ParseError::Empty));
        assert!(matches!(SampleSet::parse("{\"format\":\"x\",\"samples\":[]}"), Err(ParseError::Json(_))));
    }
}
