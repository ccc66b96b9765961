//! The nesting count that guards every JSON input never says less than the
//! parser sees: a document the parser reads is at most as deep as counted
//! (more shallow only where a repeated key replaced a deeper value, which
//! the parser still had to read through).
#![no_main]

use hookrun_core::json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let counted = json::depth(data);
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        assert!(counted >= depth(&v), "{}", String::from_utf8_lossy(data));
        assert!(counted <= 128, "the parser reads at most 128 levels");
    }
    let _ = json::check_depth(data);
});
