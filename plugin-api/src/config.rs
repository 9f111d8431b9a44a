//! Helpers for reading a plugin's config section (the `[plugins.<name>]` table, as JSON).

use serde_json::Value;

/// A list of strings under `key`: `Ok(None)` when absent, an error naming the key otherwise.
pub fn string_list(config: &Value, key: &str) -> Result<Option<Vec<String>>, String> {
    match config.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{key} must be a list of strings")))
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_lists_and_names_bad_keys() {
        assert_eq!(string_list(&json!({"a": ["x"]}), "a"), Ok(Some(vec!["x".to_owned()])));
        assert_eq!(string_list(&json!({}), "a"), Ok(None));
        assert_eq!(string_list(&Value::Null, "a"), Ok(None));
        assert!(string_list(&json!({"a": "x"}), "a").unwrap_err().contains('a'));
    }
}
