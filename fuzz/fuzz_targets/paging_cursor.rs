//! Paging cursors come from clients: any text is a page or "invalid
//! cursor", on both indexes, never a panic.
#![no_main]

use std::sync::OnceLock;

use hookrun_core::error::StoreError;
use hookrun_core::ports::{Condition, Index, Item, ItemTable, Query};
use hookrun_core::sqlite::SqliteStore;
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (tokio::runtime::Runtime, SqliteStore) {
    static STORE: OnceLock<(tokio::runtime::Runtime, SqliteStore)> = OnceLock::new();
    STORE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = SqliteStore::in_memory().unwrap();
        rt.block_on(async {
            for i in 0..5 {
                let item = Item::new("P", format!("s{i}"), serde_json::json!({ "i": i }))
                    .with_gsi1("G", format!("g{i}"));
                store.put(item, Condition::None).await.unwrap();
            }
        });
        (rt, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, store) = setup();
    let cursor = String::from_utf8_lossy(data).into_owned();
    for (index, pk) in [(Index::Primary, "P"), (Index::Gsi1, "G")] {
        let q = Query::partition(index, pk).limit(2).after(Some(cursor.clone()));
        match rt.block_on(store.query(q)) {
            Ok(page) => assert!(page.items.len() <= 2),
            Err(StoreError::InvalidCursor) => {}
            Err(e) => panic!("a cursor is a page or invalid, not {e:?}"),
        }
    }
});
