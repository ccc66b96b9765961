//! What JSON hookrun accepts: nested at most [`MAX_DEPTH`] levels. Stored
//! records wrap what they were given a few levels deeper (a run's `input`,
//! a trigger's `metadata`), and the JSON parser refuses documents nested
//! 128 levels deep; keeping accepted JSON well below that makes "accepted"
//! imply "can be stored, read back, listed and run".

/// Deepest nesting of arrays and objects accepted in any JSON hookrun is
/// given: trigger bodies, management bodies, agent answers.
pub const MAX_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in a JSON text; brackets
/// inside strings do not count. Works on any bytes (invalid JSON included),
/// without recursion.
pub fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Err names the limit when `bytes` nests deeper than [`MAX_DEPTH`].
pub fn check_depth(bytes: &[u8]) -> Result<(), String> {
    if depth(bytes) > MAX_DEPTH {
        Err(format!(
            "JSON nested deeper than {MAX_DEPTH} levels is not accepted"
        ))
    } else {
        Ok(())
    }
}

/// An update's field where `null` means "remove": present, even as null,
/// it is `Some(value)`; absent (with `#[serde(default)]`), `None`.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings() {
        assert_eq!(depth(b"1"), 0);
        assert_eq!(depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(depth(br#"{"a":"[[[[{{{"}"#), 1);
        assert_eq!(
            depth(br#"{"a":"\"[[["}"#),
            1,
            "escaped quotes stay in the string"
        );
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check_depth(deep.as_bytes()).is_ok());
        let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(check_depth(deeper.as_bytes()).unwrap_err().contains("64"));
    }

    /// Found by fuzzing (`json_depth`): a repeated key keeps only its last
    /// value, so the parsed value can be shallower than the text. The count
    /// is of the text, which is what the parser (and its limit) reads.
    #[test]
    fn a_repeated_key_counts_as_deep_as_its_text() {
        let text = br#"{"a":[1,{}],"a":"\"{"}"#;
        assert_eq!(depth(text), 3);
        let v: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(v["a"], "\"{");
    }

    /// What is accepted survives being wrapped in a stored record and read
    /// back by the JSON parser.
    #[test]
    fn the_deepest_accepted_document_reads_back_inside_a_record() {
        let doc = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let record = serde_json::json!({ "run": { "input": { "wrapped": value } } });
        let text = serde_json::to_string(&record).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }
}
