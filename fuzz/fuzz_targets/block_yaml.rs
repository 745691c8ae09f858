//! The block-style YAML reader on arbitrary text: whenever it reads a value, the general
//! parser (serde_saphyr, called as the manifests loader calls it) reads the same one,
//! for a document and, when it is a sequence, for a `kind: List` item span.
#![no_main]

use k8s_gateway::sources::block_yaml;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(value) = block_yaml::parse(text) else {
        return;
    };
    let documents = serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("read {value} where the general parser fails: {e}"));
    assert_eq!(documents, vec![value.clone()], "as a document");
    if let Value::Array(items) = value {
        let read = serde_saphyr::from_str::<Vec<Value>>(text)
            .unwrap_or_else(|e| panic!("read a sequence the general parser refuses: {e}"));
        assert_eq!(read, items, "as a list item span");
    }
});
