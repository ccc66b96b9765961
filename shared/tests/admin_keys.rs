//! Admin keys on the embedded store: two admin keys revoking each other at
//! once never both go (the workspace always keeps one), and a key revoked
//! meanwhile answers 404, not a second success.

use hookrun_core::model::Role;
use hookrun_core::services::admin::{self, CreateAdminKey};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{App, Error, Settings};

#[tokio::test]
async fn concurrent_revocations_keep_an_admin_key() {
    let app = App::embedded(SqliteStore::in_memory().unwrap(), Settings::default());
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let first = admin::list_keys(&app, &ws, 10, None).await.unwrap().data[0]
        .id
        .clone();
    let mut current = first;
    for round in 0..20 {
        let (other, _) = admin::create_key(
            &app,
            &ws,
            CreateAdminKey {
                name: format!("round {round}"),
                role: Role::Admin,
            },
        )
        .await
        .unwrap();
        let (a, b) = tokio::join!(
            admin::revoke_key(&app, &ws, &current),
            admin::revoke_key(&app, &ws, &other.id)
        );
        let outcomes = [&a, &b];
        let revoked = outcomes.iter().filter(|r| r.is_ok()).count();
        let kept = outcomes
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict(_))))
            .count();
        assert_eq!((revoked, kept), (1, 1), "round {round}: {a:?} {b:?}");
        let left = admin::list_keys(&app, &ws, 10, None).await.unwrap().data;
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        current = left[0].id.clone();
    }
    // Revoked once: a second revocation finds nothing.
    let (extra, _) = admin::create_key(
        &app,
        &ws,
        CreateAdminKey {
            name: "extra".into(),
            role: Role::Viewer,
        },
    )
    .await
    .unwrap();
    admin::revoke_key(&app, &ws, &extra.id).await.unwrap();
    assert!(matches!(
        admin::revoke_key(&app, &ws, &extra.id).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn the_store_can_always_add_a_key_even_at_the_cap() {
    let app = App::embedded(SqliteStore::in_memory().unwrap(), Settings::default());
    let ws = admin::bootstrap(&app, None).await.unwrap().workspace.id;
    let viewer = |n: usize| CreateAdminKey {
        name: format!("viewer {n}"),
        role: Role::Viewer,
    };
    for n in 1..admin::MAX_KEYS_PER_WORKSPACE {
        admin::create_key(&app, &ws, viewer(n)).await.unwrap();
    }
    assert!(matches!(
        admin::create_key(&app, &ws, viewer(0)).await,
        Err(Error::Conflict(_))
    ));
    let (recovered, key) = admin::recover_key(
        &app,
        &ws,
        CreateAdminKey {
            name: "recovered".into(),
            role: Role::Admin,
        },
    )
    .await
    .unwrap();
    assert_eq!(recovered.role, Role::Admin);
    assert!(key.starts_with("hka_"));
}
