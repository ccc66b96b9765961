//! Input mapping by JSON pointer: any mapping the validation accepts maps
//! any payload without a panic, and a required field is either found or
//! named in the error.
#![no_main]

use hookrun_core::ids::{AgentId, TriggerId, WorkspaceId};
use hookrun_core::model::Trigger;
use hookrun_core::services::ingress::input::map_input;
use hookrun_core::services::triggers::validate;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (mapping, payload) = text.split_once('\0').unwrap_or((&text, "{}"));
    let Ok(Value::Object(mapping)) = serde_json::from_str::<Value>(mapping) else {
        return;
    };
    let Ok(payload) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    if validate::mapping(&mapping).is_err() {
        return;
    }
    let now = chrono::Utc::now();
    let trigger = Trigger {
        id: TriggerId::parse("trg_fuzz").unwrap(),
        workspace_id: WorkspaceId::parse("ws_fuzz").unwrap(),
        agent_id: AgentId::parse("agt_fuzz").unwrap(),
        name: "fuzz".into(),
        description: None,
        token_hash: String::new(),
        token_prefix: String::new(),
        is_active: true,
        secret_sealed: None,
        signature: Default::default(),
        allowed_sources: Default::default(),
        input_mapping: Some(mapping),
        event_types: vec![],
        environment: Default::default(),
        rate_limit_per_minute: None,
        metadata: serde_json::json!({}),
        agent_route: false,
        respond_when: Default::default(),
        concurrency: None,
        last_used_at: None,
        created_by_id: String::new(),
        created_at: now,
        updated_at: now,
    };
    match map_input(&trigger, payload, Some("event"), Some("fuzz")) {
        Ok((input, message)) => {
            assert!(input.is_object());
            assert!(!message.is_empty());
        }
        Err(e) => assert!(e.to_string().contains("required input field"), "{e}"),
    }
});
